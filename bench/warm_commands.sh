#!/bin/sh
# warm_commands.sh - confirmed commands per second over open channels.
#
# N gateways of a synthetic fleet open their channels (bench/chanload, each
# device answering as the Steuerbox model does), then M commands go through
# the operator path: POST /v1/devices/{id}/commands (W in flight, spread
# over the devices), stored durably, sent over the channel, acknowledged,
# the state read back and the command confirmed and audited. The run ends
# when clsmd's /metrics counts all M as finished.
#
# Printed: confirmed commands per second, and the CPU time clsmd and the
# load generator spent per command while the commands ran (both share the
# machine's cores, so the per-command CPU of clsmd is the figure that
# carries to other machines: 1 s divided by it is what one core sustains).
#
# Usage: bench/warm_commands.sh [N] [M] [W]   (defaults 1000 30000 64)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000}
m=${2:-30000}
w=${3:-64}
rounds=${ROUNDS:-3}
build=${BUILD_DIR:-$here/build}
work=$(mktemp -d)
token=bench-admin-token-0123456789
clsmd_pid=""
load_pid=""
trap 'kill $load_pid $clsmd_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

. "$here/bench/lib.sh"

python3 "$here/scripts/fleet.py" --gateways "$n" --prefix XWC --out "$work/fleet.json" \
	--ids "$work/ids"
CLSM_PKI="$build/clsm-pki" "$here/scripts/mkpki.sh" "$work/pki" --gateways "$work/ids" >/dev/null
pki=$work/pki
hz=$(getconf CLK_TCK)

echo "warm commands: $n devices on open channels, $m commands per round, $w in flight," \
	"$rounds rounds, $(nproc) cores shared by clsmd and the load generator"
for r in $(seq "$rounds"); do
	api=$(free_port)
	chan=$(free_port)
	rm -f "$work"/clsm.db*
	"$build/clsmd" --set "api.listen=127.0.0.1:$api" --set "store.path=$work/clsm.db" \
		--set "auth.admin_token=$token" --set log.level=warn \
		--set "tls.cert=$pki/emt/clsmd.crt" --set "tls.key=$pki/emt/clsmd.key" \
		--set "tls.smgw_ca=$pki/smgw-ca.crt" --set "tls.gwa_ca=$pki/gwa-ca.crt" \
		--set "channel.listen=127.0.0.1:$chan" --set "meter.listen=127.0.0.1:0" 2>"$work/clsmd.log" &
	clsmd_pid=$!
	for _ in $(seq 100); do
		curl -sf "http://127.0.0.1:$api/healthz" >/dev/null 2>&1 && break
		sleep 0.1
	done
	"$build/clsmctl" --url "http://127.0.0.1:$api" --token "$token" import "$work/fleet.json" >/dev/null
	"$build/chanload" devices "127.0.0.1:$chan" "$pki" -n "$n" -c 64 --api "127.0.0.1:$api" \
		--token "$token" -m "$m" -w "$w" >"$work/load.out" &
	load_pid=$!
	until grep -q '^channels' "$work/load.out"; do
		kill -0 "$load_pid" 2>/dev/null || { cat "$work/load.out" "$work/clsmd.log" >&2; exit 1; }
		sleep 0.05
	done
	c0=$(cpu_ticks "$clsmd_pid")
	l0=$(cpu_ticks "$load_pid")
	l1=$l0
	until grep -q '^commands' "$work/load.out"; do
		kill -0 "$load_pid" 2>/dev/null || { cat "$work/load.out" "$work/clsmd.log" >&2; exit 1; }
		l1=$(cpu_ticks "$load_pid" 2>/dev/null || echo "$l1")
		sleep 0.1
	done
	c1=$(cpu_ticks "$clsmd_pid")
	wait "$load_pid" || echo "round $r: not every command was confirmed" >&2
	load_pid=""
	sed -n 's/^commands //p' "$work/load.out" | awk -v c="$((c1 - c0))" -v l="$((l1 - l0))" \
		-v hz="$hz" -v m="$m" '{
		for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "%s %.1f %.1f %s %s\n", v["confirmed_per_s"], c * 1e6 / hz / m, l * 1e6 / hz / m,
			v["confirmed"], v["failed"] }' >>"$work/rounds"
	kill "$clsmd_pid"
	wait "$clsmd_pid" 2>/dev/null || true
	clsmd_pid=""
done
sort -n -k1 "$work/rounds" | awk '{l[NR]=$0} END {split(l[int((NR+1)/2)], f, " ");
	printf "confirmed %s per s (median of %d rounds; confirmed %s, failed %s)\n", f[1], NR, f[4], f[5]
	printf "CPU per command: clsmd %s us, load generator %s us -> one core of clsmd sustains %.0f per s\n",
		f[2], f[3], 1e6 / f[2] }'
