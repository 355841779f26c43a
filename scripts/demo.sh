#!/bin/sh
# demo.sh - run clsm on one machine: a test PKI, the fleet of Musterstadt's
# 500 gateways with their devices (clsm-smgw-sim), its two gateway
# administrators (clsm-gwa-sim), and clsmd on the embedded SQLite store.
# Imports Musterstadt, prints a summary, then runs the switching scenario
# (scripts/scenario.py): a supplier's schedule, a red feeder with the VNB
# dimming its §14a wallboxes, a rejected aggregator, conflicting market
# requests, a TSO cascade request, and the light back to green - each
# through the whole path (arbiter, GWA, wake-up, channel, device).
#
# Environment:
#   DEMO_ONESHOT=1  exit after the scenario (0 only if every expectation
#                   held) instead of serving until Ctrl-C
#   DEMO_PORT=N     API port (default 8080; 0 picks a free one)
#   DEMO_UDP_PORT=N the fleet's wake-up port (default 9440)
#   BUILD_DIR=dir   where the binaries are (default build)
#   DEMO_DIR=dir    store, PKI and logs (default var/demo; the store is made anew)
# The GWAs listen on 127.0.0.1:9441 and :9442, as data/musterstadt names them.
set -eu
cd "$(dirname "$0")/.."

build=${BUILD_DIR:-build}
dir=${DEMO_DIR:-var/demo}
port=${DEMO_PORT:-8080}
udp=${DEMO_UDP_PORT:-9440}
town=data/musterstadt/musterstadt.json
token=${DEMO_ADMIN_TOKEN:-demo-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')}
pids=""

for bin in clsmd clsmctl clsm-pki clsm-gwa-sim clsm-smgw-sim; do
	[ -x "$build/$bin" ] || { echo "demo: $build/$bin is missing; run 'make build'" >&2; exit 1; }
done

stop() {
	for p in $pids; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $pids; do
		wait "$p" 2>/dev/null || true
	done
	pids=""
}
trap 'stop; exit 130' INT TERM

# Wait until 'file' has a line matching 'pattern'; print the first match of
# 'extract' (a sed expression) from it.
wait_for() { # file pattern extract pid
	i=0
	while [ $i -lt 200 ]; do
		v=$(sed -n "/$2/{s/$3/\\1/p;q}" "$1" 2>/dev/null)
		[ -n "$v" ] && { echo "$v"; return 0; }
		kill -0 "$4" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	echo "demo: $(basename "$1" .log) did not start:" >&2
	tail -20 "$1" >&2
	return 1
}

rm -rf "$dir/clsm.db" "$dir/clsm.db-wal" "$dir/clsm.db-shm" "$dir"/*.log
mkdir -p "$dir"

echo "== test PKI for Musterstadt's gateways ($dir/pki)"
grep -o '"id": "E[A-Z][A-Z][A-Z][0-9]\{10\}"' "$town" | cut -d'"' -f4 | sort -u >"$dir/gateways.ids"
CLSM_PKI="$build/clsm-pki" scripts/mkpki.sh "$dir/pki" --gateways "$dir/gateways.ids" \
	--gwa GWA-01 --gwa GWA-02

meter=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$build/clsm-smgw-sim" --pki "$dir/pki" --registry "$town" --udp "127.0.0.1:$udp" \
	--telemetry 60 --meter "127.0.0.1:$meter" --meter-period-s 10 2>"$dir/smgw-sim.log" &
pids="$pids $!"
wait_for "$dir/smgw-sim.log" 'smgw-sim ready' '.*gateways=\([0-9]*\).*' $! >/dev/null || { stop; exit 1; }
for g in 1 2; do
	"$build/clsm-gwa-sim" --id "GWA-0$g" --pki "$dir/pki" --registry "$town" \
		--listen "127.0.0.1:944$g" --wakeup "127.0.0.1:$udp" 2>"$dir/gwa-0$g.log" &
	pids="$pids $!"
	wait_for "$dir/gwa-0$g.log" 'gwa listening' '.*addr=\([^ ]*\).*' $! >/dev/null || { stop; exit 1; }
done

start_clsmd() {
	"$build/clsmd" --set "api.listen=127.0.0.1:$1" --set "store.path=$dir/clsm.db" \
		--set "auth.admin_token=$token" \
		--set "tls.cert=$dir/pki/emt/clsmd.crt" --set "tls.key=$dir/pki/emt/clsmd.key" \
		--set "tls.smgw_ca=$dir/pki/smgw-ca.crt" --set "tls.gwa_ca=$dir/pki/gwa-ca.crt" \
		--set "channel.listen=127.0.0.1:0" --set "meter.listen=127.0.0.1:$meter" 2>"$dir/clsmd.log" &
	clsmd_pid=$!
}
start_clsmd "$port"
if ! addr=$(wait_for "$dir/clsmd.log" 'api listening' '.*addr=\([^ ]*\).*' $clsmd_pid 2>/dev/null); then
	if [ -z "${DEMO_PORT:-}" ] && grep -q 'cannot listen' "$dir/clsmd.log"; then
		echo "demo: port $port is taken; using a free one" >&2
		start_clsmd 0
		addr=$(wait_for "$dir/clsmd.log" 'api listening' '.*addr=\([^ ]*\).*' $clsmd_pid) ||
			{ stop; exit 1; }
	else
		cat "$dir/clsmd.log" >&2
		stop
		exit 1
	fi
fi
pids="$pids $clsmd_pid"
url="http://$addr"
ctl() { "$build/clsmctl" --url "$url" --token "$token" "$@"; }

echo "== clsmd is up at $url (logs in $dir)"
echo "== importing Musterstadt ($town)"
ctl import "$town"
echo
echo "== installations per segment and kind"
ctl summary
echo

echo "== the switching scenario (scripts/scenario.py)"
scenario=0
python3 scripts/scenario.py "$url" "$token" || scenario=$?

if [ "${DEMO_ONESHOT:-0}" = 1 ]; then
	stop
	[ "$scenario" -eq 0 ] || { echo "demo: not every expectation held" >&2; exit 1; }
	# Built with sanitizers (make check), a report in any log is a failure.
	if grep -l -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$dir"/*.log >&2; then
		echo "demo: sanitizer reports in the logs above" >&2
		exit 1
	fi
	echo "== demo finished"
	exit 0
fi

echo
echo "== everything keeps running; try:"
echo "   $build/clsmctl --url $url --token $token get installations segment=UW-MUS.T1"
echo "   $build/clsmctl --url $url --token $token command SB-00002 '{\"type\":\"switch\",\"level\":\"dim\"}' --wait"
echo "   $build/clsmctl --url $url --token $token set-light UW-MUS.T1.F1 yellow --reason 'feeder at 90 %'"
echo "== Ctrl-C stops it"
wait $clsmd_pid
stop
