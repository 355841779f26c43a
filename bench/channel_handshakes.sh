#!/bin/sh
# channel_handshakes.sh - how many CLS channels clsmd opens per second.
#
# A synthetic fleet of gateways (scripts/fleet.py, certificates from
# clsm-pki on brainpoolP256r1) dials clsmd's channel listener with
# bench/chanload: mutual-TLS handshake with a fresh gateway certificate
# each time (no session resumption), MQTT CONNECT as the gateway's device,
# SUBSCRIBE, SUBACK (clsmd checks the device against the registry and audits
# the open), close. CONC exchanges run at once.
#
# Reference on the same machine, same client, same certificates and TLS
# parameters: nginx (one worker) with ssl_verify_client on, answering
# GET / with a few bytes. Both servers issue session tickets and keep
# OpenSSL's session cache, as clsmd does so that gateways can resume; the
# load generator never resumes, so every handshake is a full one. Besides the rates the script prints the server's
# CPU time per handshake, and the bound the elliptic-curve operations put on
# a handshake (from `openssl speed`), so that the figures can be compared on
# other machines.
#
# Usage: bench/channel_handshakes.sh [SECONDS] [CONC] [CURVE]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
conc=${2:-16}
curve=${3:-brainpoolP256r1}
rounds=${ROUNDS:-3}
gateways=${GATEWAYS:-2000}
build=${BUILD_DIR:-$here/build}
work=$(mktemp -d)
token=bench-admin-token-0123456789
clsmd_pid=""
nginx_pid=""
trap 'kill $clsmd_pid $nginx_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

. "$here/bench/lib.sh"

python3 "$here/scripts/fleet.py" --gateways "$gateways" --prefix XHS --out "$work/fleet.json" \
	--ids "$work/ids"
CLSM_PKI="$build/clsm-pki" "$here/scripts/mkpki.sh" "$work/pki" --curve "$curve" \
	--gateways "$work/ids" >/dev/null
pki=$work/pki

api=$(free_port)
chan=$(free_port)
"$build/clsmd" --set "api.listen=127.0.0.1:$api" --set "store.path=$work/clsm.db" \
	--set "auth.admin_token=$token" --set log.level=error \
	--set "tls.cert=$pki/emt/clsmd.crt" --set "tls.key=$pki/emt/clsmd.key" \
	--set "tls.smgw_ca=$pki/smgw-ca.crt" --set "tls.gwa_ca=$pki/gwa-ca.crt" \
	--set "channel.listen=127.0.0.1:$chan" --set "meter.listen=127.0.0.1:0" 2>"$work/clsmd.log" &
clsmd_pid=$!
for _ in $(seq 100); do
	curl -sf "http://127.0.0.1:$api/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
"$build/clsmctl" --url "http://127.0.0.1:$api" --token "$token" import "$work/fleet.json" >/dev/null

have_nginx=0
if command -v nginx >/dev/null 2>&1; then
	nport=$(free_port)
	nginx_mtls "$work" "$pki" "$curve" "$nport" 4096
	have_nginx=1
else
	echo "nginx not installed: no reference run (scripts/install-deps.sh bench installs it)"
fi

# One run: prints "per_s server_cpu_ms_per_handshake tls".
run_once() { # pid port [--http]
	t0=$(cpu_ticks "$1")
	out=$("$build/chanload" open "127.0.0.1:$2" "$pki" -c "$conc" -t "$secs" ${3:-})
	t1=$(cpu_ticks "$1")
	echo "$out" | awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" '{
		for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		if (v["failed"] + 0 > 0) printf "chanload: %d exchanges failed\n", v["failed"] > "/dev/stderr"
		printf "%s %.3f\n", v["per_s"], (v["done"] > 0 ? t * 1000 / hz / v["done"] : 0) }'
}

median_line() { # name file
	sort -n -k1 "$2" | awk -v n="$1" '{l[NR]=$0} END {split(l[int((NR+1)/2)], f, " ");
		printf "%-36s %8s per s   server CPU %6s ms per handshake   (median of %d)\n", n, f[1], f[2], NR}'
}
median() { sort -n -k1 "$1" | awk '{l[NR]=$1} END {print l[int((NR+1)/2)]}'; }

echo "channel opens: chanload -c $conc, ${secs}s x $rounds rounds, $gateways gateways, $curve," \
	"$(nproc) cores shared by client and server"
for _ in $(seq "$rounds"); do
	run_once "$clsmd_pid" "$chan" >>"$work/clsmd"
	[ $have_nginx = 1 ] && run_once "$nginx_worker" "$nport" --http >>"$work/nginx"
done
"$build/chanload" open "127.0.0.1:$chan" "$pki" -c 1 -t 1 | sed -n 's/.*tls="\(.*\)"/negotiated with clsmd: \1/p'
[ $have_nginx = 1 ] && "$build/chanload" open "127.0.0.1:$nport" "$pki" -c 1 -t 1 --http |
	sed -n 's/.*tls="\(.*\)"/negotiated with nginx: \1/p'
median_line "clsmd: TLS + CONNECT/SUBSCRIBE" "$work/clsmd"
[ $have_nginx = 1 ] && median_line "nginx mTLS + GET (reference)" "$work/nginx"

set -- $(tls_bound "$curve")
if [ $# -eq 4 ]; then
	awk -v e="$1" -v s="$2" -v v="$3" -v b="$4" -v n="$(nproc)" -v c="$(median "$work/clsmd")" \
		-v g="${nginx_worker:+$(median "$work/nginx")}" 'BEGIN {
		printf "openssl speed: ecdh %d/s, sign %d/s, verify %d/s per core\n", e, s, v
		printf "crypto bound: %.0f full handshakes per s on %d cores (client and server)\n", b, n
		printf "clsmd at %.0f%% of the bound", 100 * c / b
		if (g != "") printf ", %.2f x nginx", c / g
		printf "\n" }'
fi
