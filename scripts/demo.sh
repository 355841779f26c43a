#!/bin/sh
# demo.sh - run clsm on one machine: start clsmd on the embedded SQLite store,
# import the fictional town Musterstadt and print a summary of it.
#
# Environment:
#   DEMO_ONESHOT=1  exit (0) after the summary instead of serving until Ctrl-C
#   DEMO_PORT=N     API port (default 8080; 0 picks a free one)
#   BUILD_DIR=dir   where clsmd and clsmctl are (default build)
#   DEMO_DIR=dir    store and log (default var/demo, emptied first)
set -eu
cd "$(dirname "$0")/.."

build=${BUILD_DIR:-build}
dir=${DEMO_DIR:-var/demo}
port=${DEMO_PORT:-8080}
token=${DEMO_ADMIN_TOKEN:-demo-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')}

for bin in clsmd clsmctl; do
	[ -x "$build/$bin" ] || { echo "demo: $build/$bin is missing; run 'make build'" >&2; exit 1; }
done

rm -rf "$dir"
mkdir -p "$dir"

# Start clsmd and wait for its "api listening" line; sets pid and url.
start() {
	"$build/clsmd" --set "api.listen=127.0.0.1:$1" --set "store.path=$dir/clsm.db" \
		--set "auth.admin_token=$token" 2>"$dir/clsmd.log" &
	pid=$!
	url=""
	i=0
	while [ $i -lt 100 ]; do
		addr=$(sed -n 's/.*msg="api listening" addr=\([^ ]*\).*/\1/p' "$dir/clsmd.log")
		if [ -n "$addr" ]; then
			url="http://$addr"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
stop() {
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
trap 'stop; exit 130' INT TERM

if ! start "$port"; then
	if [ -z "${DEMO_PORT:-}" ] && grep -q 'cannot listen' "$dir/clsmd.log"; then
		echo "demo: port $port is taken; using a free one" >&2
		start 0 || true
	fi
fi
if [ -z "$url" ]; then
	echo "demo: clsmd did not start:" >&2
	cat "$dir/clsmd.log" >&2
	stop
	exit 1
fi

ctl() { "$build/clsmctl" --url "$url" --token "$token" "$@"; }

echo "== clsmd is up at $url (store $dir/clsm.db, log $dir/clsmd.log)"
echo "== importing Musterstadt (data/musterstadt/musterstadt.json)"
ctl import data/musterstadt/musterstadt.json
echo
echo "== installations per segment and kind"
ctl summary
echo

if [ "${DEMO_ONESHOT:-0}" = 1 ]; then
	stop
	echo "== demo finished"
	exit 0
fi

echo "== clsmd keeps serving; try:"
echo "   $build/clsmctl --url $url --token $token get installations segment=UW-MUS.T1"
echo "   $build/clsmctl --url $url --token $token set-light UW-MUS.T1.F1 yellow --reason 'feeder at 90 %'"
echo "   curl -H 'Authorization: Bearer $token' $url/v1/segments"
echo "== Ctrl-C stops it"
wait "$pid"
