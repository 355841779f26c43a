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
