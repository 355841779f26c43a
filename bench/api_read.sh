#!/bin/sh
# api_read.sh - read throughput and latency of GET /v1/installations/{id}.
#
# Starts the release clsmd on a fresh store, imports Musterstadt, and drives
# it with wrk over random installation ids, once with the admin token and
# once with a VNB token (visibility check in the query). As a reference on
# the same machine and with the same load, nginx (one worker) serves a static
# file of the same size; the ratio clsmd/nginx is printed.
#
# Usage: bench/api_read.sh [SECONDS] [CONNECTIONS]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
conns=${2:-32}
build=${BUILD_DIR:-$here/build}
work=$(mktemp -d)
token=bench-admin-token-0123456789
trap 'kill $clsmd_pid $nginx_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
clsmd_pid=""
nginx_pid=""

"$build/clsmd" --set api.listen=127.0.0.1:0 --set "store.path=$work/clsm.db" \
	--set "auth.admin_token=$token" --set log.level=warn --set api.max_connections=4096 \
	2>"$work/clsmd.log" &
clsmd_pid=$!
# log.level=warn hides the listening line; find the port from the socket.
port=""
for _ in $(seq 100); do
	port=$(ss -Hltnp 2>/dev/null | awk -v p="pid=$clsmd_pid," '$0 ~ p {split($4,a,":"); print a[length(a)]; exit}')
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "$port" ] || { echo "clsmd did not start" >&2; cat "$work/clsmd.log" >&2; exit 1; }
url="http://127.0.0.1:$port"
ctl() { "$build/clsmctl" --url "$url" --token "$token" "$@"; }
ctl import "$here/data/musterstadt/musterstadt.json" >/dev/null
vnb=$(python3 -c 'import json,sys; print(next(p["id"] for p in json.load(open(sys.argv[1]))["parties"] if p["role"]=="vnb"))' "$here/data/musterstadt/musterstadt.json")
vnb_token=$(ctl token create "$vnb" --label bench)
python3 -c 'import json,sys; print("\n".join(i["id"] for i in json.load(open(sys.argv[1]))["installations"]))' \
	"$here/data/musterstadt/musterstadt.json" >"$work/ids.txt"
cat >"$work/ids.lua" <<LUA
local ids = {}
for line in io.lines("$work/ids.txt") do ids[#ids + 1] = line end
local token = os.getenv("BENCH_TOKEN")
math.randomseed(42)
request = function()
  return wrk.format("GET", "/v1/installations/" .. ids[math.random(#ids)], {["Authorization"] = "Bearer " .. token})
end
LUA
sample=$(curl -s -H "Authorization: Bearer $token" "$url/v1/installations/$(head -1 "$work/ids.txt")")

rounds=${ROUNDS:-3}

# One wrk run: prints "rps p50 p99 non2xx".
wrk_once() { # url script
	out=$(BENCH_TOKEN=${BENCH_TOKEN:-} wrk -t1 -c"$conns" -d"${secs}s" --latency ${2:+-s "$2"} "$1")
	echo "$out" | awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2}
		/Non-2xx/ {e=$NF} END {printf "%s %s %s %s\n", r, p50, p99, e ? e : 0}'
}

# Runs alternate between the systems so that drift on the machine hits all
# of them alike; each line reports the median round.
median_line() { # name rounds-file
	sort -n -k1 "$2" | awk -v n="$1" '{l[NR]=$0} END {split(l[int((NR+1)/2)], f, " ");
		printf "%-28s %12s req/s   p50 %8s   p99 %8s   non-2xx %s   (median of %d)\n",
		n, f[1], f[2], f[3], f[4], NR}'
}

echo "GET /v1/installations/{id}: wrk -t1 -c$conns -d${secs}s x $rounds rounds, $(wc -l <"$work/ids.txt") random ids, response $(printf %s "$sample" | wc -c) bytes"
have_nginx=0
if command -v nginx >/dev/null 2>&1; then
	mkdir -p "$work/www"
	chmod 755 "$work" "$work/www"
	printf %s "$sample" >"$work/www/inst.json"
	chmod 644 "$work/www/inst.json"
	nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cat >"$work/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nport;
    location / { root $work/www; default_type application/json; }
  }
}
NGX
	nginx -c "$work/nginx.conf" 2>"$work/nginx-stderr.log" &
	nginx_pid=$!
	for _ in $(seq 50); do
		curl -sf "http://127.0.0.1:$nport/inst.json" >/dev/null && break
		sleep 0.1
	done
	curl -sf "http://127.0.0.1:$nport/inst.json" >/dev/null ||
		{ cat "$work/nginx-stderr.log" "$work/nginx-error.log" >&2; exit 1; }
	have_nginx=1
else
	echo "nginx not installed: no reference run (scripts/install-deps.sh bench installs it)"
fi

for _ in $(seq "$rounds"); do
	BENCH_TOKEN=$token wrk_once "$url" "$work/ids.lua" >>"$work/admin"
	BENCH_TOKEN=$vnb_token wrk_once "$url" "$work/ids.lua" >>"$work/vnb"
	[ $have_nginx = 1 ] && wrk_once "http://127.0.0.1:$nport/inst.json" "" >>"$work/nginx"
done
median_line "clsmd (admin token)" "$work/admin"
median_line "clsmd (VNB token)" "$work/vnb"
if [ $have_nginx = 1 ]; then
	median_line "nginx static (reference)" "$work/nginx"
	a=$(sort -n "$work/admin" | awk '{l[NR]=$1} END {print l[int((NR+1)/2)]}')
	v=$(sort -n "$work/vnb" | awk '{l[NR]=$1} END {print l[int((NR+1)/2)]}')
	n=$(sort -n "$work/nginx" | awk '{l[NR]=$1} END {print l[int((NR+1)/2)]}')
	awk -v a="$a" -v v="$v" -v n="$n" 'BEGIN {
		printf "ratio clsmd/nginx (medians): admin %.2f, VNB %.2f\n", a / n, v / n }'
fi
