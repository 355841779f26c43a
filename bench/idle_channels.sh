#!/bin/sh
# idle_channels.sh - memory clsmd spends per open, idle CLS channel.
#
# N gateways of a synthetic fleet (scripts/fleet.py, certificates from
# clsm-pki on the given curve, each sending its sub-CA along as the fleet
# simulator does) open a channel each with bench/chanload and hold it. The
# resident set of clsmd is read before the first and after the last channel
# opened; the difference divided by N is the cost of one channel (TLS state,
# the peer's certificates, the channel and its driver, libevent buffers).
#
# Reference on the same machine: nginx (one worker) holding the same number
# of mutually authenticated TLS connections, idle after the handshake.
#
# Usage: bench/idle_channels.sh [N] [CURVE]   (N up to about the descriptor
# limit of one process; default 10000)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-10000}
curve=${2:-brainpoolP256r1}
build=${BUILD_DIR:-$here/build}
work=$(mktemp -d)
token=bench-admin-token-0123456789
clsmd_pid=""
nginx_pid=""
load_pid=""
trap 'kill $load_pid $clsmd_pid $nginx_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

. "$here/bench/lib.sh"

limit=$(ulimit -n)
if [ "$limit" != unlimited ] && [ "$limit" -lt $((n + 200)) ]; then
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	limit=$(ulimit -n)
	if [ "$limit" != unlimited ] && [ "$limit" -lt $((n + 200)) ]; then
		echo "idle_channels: $n channels need $((n + 200)) descriptors; the limit is $limit" >&2
		exit 1
	fi
fi

python3 "$here/scripts/fleet.py" --gateways "$n" --prefix XIC --out "$work/fleet.json" \
	--ids "$work/ids"
CLSM_PKI="$build/clsm-pki" "$here/scripts/mkpki.sh" "$work/pki" --curve "$curve" \
	--gateways "$work/ids" >/dev/null
pki=$work/pki

# Hold N connections to 127.0.0.1:PORT and print the resident set of PID
# before and after, in KiB: "before after seconds".
hold() { # pid port [--tls-only | metrics-url]
	before=$(rss_kib "$1")
	tls_only=""
	[ "${3:-}" = --tls-only ] && tls_only=--tls-only
	"$build/chanload" idle "127.0.0.1:$2" "$pki" -n "$n" -c 64 -t 3600 $tls_only >"$work/load.out" &
	load_pid=$!
	i=0
	until grep -q '^channels' "$work/load.out"; do
		kill -0 "$load_pid" 2>/dev/null || { echo "chanload failed" >&2; exit 1; }
		i=$((i + 1))
		[ $i -lt 6000 ] || { echo "channels did not open in 10 minutes" >&2; exit 1; }
		sleep 0.1
	done
	sleep 1
	after=$(rss_kib "$1")
	open=?
	case ${3:-} in
	http://*) open=$(curl -s "$3" | awk '$1 == "clsm_channels{state=\"open\"}" {print $2}') ;;
	esac
	secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$work/load.out")
	failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' "$work/load.out")
	[ "$failed" = 0 ] || echo "warning: $failed connections failed" >&2
	kill "$load_pid"
	wait "$load_pid" 2>/dev/null || true
	load_pid=""
	echo "$before $after $secs $open"
}

api=$(free_port)
chan=$(free_port)
"$build/clsmd" --set "api.listen=127.0.0.1:$api" --set "store.path=$work/clsm.db" \
	--set "auth.admin_token=$token" --set log.level=error \
	--set "tls.cert=$pki/emt/clsmd.crt" --set "tls.key=$pki/emt/clsmd.key" \
	--set "tls.smgw_ca=$pki/smgw-ca.crt" --set "tls.gwa_ca=$pki/gwa-ca.crt" \
	--set "channel.listen=127.0.0.1:$chan" --set "meter.listen=127.0.0.1:0" --set "channel.max_channels=$n" \
	2>"$work/clsmd.log" &
clsmd_pid=$!
for _ in $(seq 100); do
	curl -sf "http://127.0.0.1:$api/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
"$build/clsmctl" --url "http://127.0.0.1:$api" --token "$token" import "$work/fleet.json" >/dev/null

echo "idle channels: $n gateways on $curve, held open by chanload"
set -- $(hold "$clsmd_pid" "$chan" "http://127.0.0.1:$api/metrics")
awk -v b="$1" -v a="$2" -v s="$3" -v n="$n" -v o="$4" 'BEGIN {
	printf "clsmd: RSS %d -> %d KiB, %.1f KiB per channel (%s open, opened in %s s)\n",
		b, a, (a - b) / n, o, s }'
clsmd_per=$(awk -v b="$1" -v a="$2" -v n="$n" 'BEGIN {printf "%.2f", (a - b) / n}')
kill "$clsmd_pid"
wait "$clsmd_pid" 2>/dev/null || true
clsmd_pid=""

if command -v nginx >/dev/null 2>&1; then
	nport=$(free_port)
	nginx_mtls "$work" "$pki" "$curve" "$nport" $((n + 100)) \
		"client_header_timeout 3600s; keepalive_timeout 3600s;"
	worker=$nginx_worker
	set -- $(hold "$worker" "$nport" --tls-only)
	awk -v b="$1" -v a="$2" -v n="$n" -v c="$clsmd_per" 'BEGIN {
		p = (a - b) / n
		printf "nginx (reference): RSS %d -> %d KiB, %.1f KiB per idle mTLS connection\n", b, a, p
		printf "ratio clsmd/nginx: %.2f\n", c / p }'
else
	echo "nginx not installed: no reference run (scripts/install-deps.sh bench installs it)"
fi
