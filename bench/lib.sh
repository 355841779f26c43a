# lib.sh - what the benchmark scripts share; sourced, not run.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# The bound the curve's arithmetic puts on full mutual-TLS handshakes on
# this machine, from `openssl speed`: prints "ecdh sign verify bound" (per
# core, and handshakes per second on all cores), or nothing for a curve it
# does not know. Per handshake each side does one ECDH key generation and
# one derivation (two ECDH operations), one signature (ServerKeyExchange or
# CertificateVerify) and two verifications (the peer's certificate against
# its trusted sub-CA, and the peer's signature).
tls_bound() { # curve
	case $1 in
	brainpoolP256r1) sp=brp256r1 name=brainpoolP256r1 ;;
	brainpoolP384r1) sp=brp384r1 name=brainpoolP384r1 ;;
	prime256v1) sp=p256 name=nistp256 ;;
	secp384r1) sp=p384 name=nistp384 ;;
	*) return 0 ;;
	esac
	openssl speed -seconds 2 "ecdh$sp" "ecdsa$sp" 2>/dev/null | awk -v n="($name)" -v c="$(nproc)" '
		$4 == n && $3 == "ecdsa" { sign = $(NF-1); verify = $NF }
		$4 == n && $3 == "ecdh" { ecdh = $NF }
		END { if (ecdh && sign && verify) {
			side = 2 / ecdh + 1 / sign + 2 / verify
			printf "%d %d %d %.0f\n", ecdh, sign, verify, c / (2 * side) } }'
}

# nginx with one worker as the mutual-TLS reference server on 127.0.0.1:PORT:
# clsmd's TLS profile (its defaults, read with --check-config from $build),
# so that both negotiate alike, and client certificates checked against the
# test PKI's root; "ok" to GET /. EXTRA goes into the http block. Sets
# nginx_pid and nginx_worker (the pid to measure); exits when it does not
# start.
nginx_mtls() { # work pki curve port connections [extra]
	_nw=$1 _npki=$2 _ncurve=$3 _nport=$4 _nconns=$5 _nextra=${6:-}
	chmod 755 "$_nw"
	_ntls() { "$build/clsmd" --check-config | awk -F' = ' -v k="$1" '
		/^\[/ { t = ($0 == "[tls]") } t && $1 == k { print $2 }'; }
	# OpenSSL 3.0 signs TLS 1.3 handshakes with NIST keys only; clsmd then
	# settles on TLS 1.2, nginx would fail the handshake instead.
	_nprotocols="TLSv1.2 TLSv1.3"
	case $_ncurve in brainpool*) _nprotocols=TLSv1.2 ;; esac
	cat >"$_nw/nginx.conf" <<NGX
worker_processes 1;
worker_rlimit_nofile $((_nconns + 200));
daemon off;
pid $_nw/nginx.pid;
error_log $_nw/nginx-error.log;
events { worker_connections $_nconns; }
http {
  access_log off;
  $_nextra
  server {
    listen 127.0.0.1:$_nport ssl;
    ssl_certificate $_npki/emt/clsmd.crt;
    ssl_certificate_key $_npki/emt/clsmd.key;
    ssl_client_certificate $_npki/root.crt;
    ssl_verify_client on;
    ssl_verify_depth 2;
    ssl_protocols $_nprotocols;
    ssl_ciphers $(_ntls ciphers);
    ssl_ecdh_curve $(_ntls curves);
    ssl_session_cache builtin:20480;
    ssl_session_tickets on;
    location / { return 200 "ok\n"; }
  }
}
NGX
	nginx -c "$_nw/nginx.conf" 2>"$_nw/nginx-stderr.log" &
	nginx_pid=$!
	sleep 0.5
	nginx_worker=$(pgrep -P "$nginx_pid" | head -1)
	[ -n "$nginx_worker" ] || { cat "$_nw/nginx-stderr.log" "$_nw/nginx-error.log" >&2; exit 1; }
}
