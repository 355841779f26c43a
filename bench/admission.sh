#!/bin/sh
# admission.sh - durable request admission through the API (DESIGN.md §7:
# >= 5,000 requests/s, p99 <= 20 ms).
#
# The release clsmd on a fresh SQLite store (store.synchronous=full, the
# default: an answer is given only once the request is on disk) with a
# synthetic registry of N gateways, one §14a heat pump each (scripts/fleet.py).
# wrk posts grid requests of the VNB, each to one installation drawn at
# random, each with its own Idempotency-Key. Their windows start an hour
# ahead, so what is measured is admission - parse, authority, arbitration
# against the installation's other requests, the durable write of request,
# targets and audit event, the answer - and not the execution that follows.
# As a reference under the same load, GET /healthz of the same clsmd (HTTP
# and the loop, nothing else); the ratio is printed.
#
# Usage: bench/admission.sh [SECONDS] [CONNECTIONS] [N]    (default 10 32 10000)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
conns=${2:-32}
n=${3:-10000}
build=${BUILD_DIR:-$here/build}
work=$(mktemp -d)
token=bench-admin-token-0123456789
vnb=9900000000019
clsmd_pid=""
trap 'kill $clsmd_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
. "$here/bench/lib.sh"

python3 "$here/scripts/fleet.py" --gateways "$n" --prefix XAD --kinds heat_pump \
	--gwa "GWA-01=https://127.0.0.1:9" --out "$work/fleet.json" --ids "$work/gw-ids"
python3 -c 'import json,sys; print("\n".join(i["id"] for i in json.load(open(sys.argv[1]))["installations"]))' \
	"$work/fleet.json" >"$work/ids.txt"
port=$(free_port)
"$build/clsmd" --set "api.listen=127.0.0.1:$port" --set "store.path=$work/clsm.db" \
	--set "auth.admin_token=$token" --set log.level=warn --set api.max_connections=4096 \
	2>"$work/clsmd.log" &
clsmd_pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 300); do
	curl -sf "$url/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
"$build/clsmctl" --url "$url" --token "$token" import "$work/fleet.json" >/dev/null
vtoken=$("$build/clsmctl" --url "$url" --token "$token" token create "$vnb" --label bench)

start=$(python3 -c 'import datetime; print((datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))')
cat >"$work/post.lua" <<LUA
local ids = {}
for line in io.lines("$work/ids.txt") do ids[#ids + 1] = line end
local n = 0
math.randomseed(7)
request = function()
  n = n + 1
  local body = '{"purpose":"grid","action":"dim","target":{"installation":"' ..
    ids[math.random(#ids)] .. '"},"window":{"start":"$start","duration_s":900},' ..
    '"reason":"admission benchmark"}'
  return wrk.format("POST", "/v1/requests", {["Authorization"] = "Bearer $vtoken",
    ["Content-Type"] = "application/json", ["Idempotency-Key"] = "bench-" .. os.time() .. "-" .. n}, body)
end
LUA
# One probe first: the request must be admitted (202), or nothing is measured.
probe=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $vtoken" \
	-H 'Content-Type: application/json' \
	-d "{\"purpose\":\"grid\",\"action\":\"dim\",\"target\":{\"installation\":\"$(head -1 "$work/ids.txt")\"},\"window\":{\"start\":\"$start\",\"duration_s\":900},\"reason\":\"probe\"}" \
	"$url/v1/requests")
[ "$probe" = 202 ] || { echo "admission.sh: probe request answered $probe" >&2; exit 1; }

rounds=${ROUNDS:-3}
wrk_once() { # url [script]
	out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency ${2:+-s "$2"} "$1")
	echo "$out" | awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2}
		/Non-2xx/ {e=$NF} END {printf "%s %s %s %s\n", r, p50, p99, e ? e : 0}'
}
median_line() { # name rounds-file
	sort -n -k1 "$2" | awk -v n="$1" '{l[NR]=$0} END {split(l[int((NR+1)/2)], f, " ");
		printf "%-24s %10s req/s   p50 %8s   p99 %8s   non-2xx %s   (median of %d)\n",
		n, f[1], f[2], f[3], f[4], NR}'
}

echo "POST /v1/requests: wrk -t1 -c$conns -d${secs}s x $rounds rounds, $n installations, store.synchronous=full"
c0=$(cpu_ticks "$clsmd_pid")
for r in $(seq "$rounds"); do
	wrk_once "$url/v1/requests" "$work/post.lua" >>"$work/post.txt"
	wrk_once "$url/healthz" >>"$work/health.txt"
done
c1=$(cpu_ticks "$clsmd_pid")
median_line "admission (durable)" "$work/post.txt"
median_line "reference GET /healthz" "$work/health.txt"
awk -v a="$(sort -n -k1 "$work/post.txt" | awk '{l[NR]=$1} END {print l[int((NR+1)/2)]}')" \
	-v h="$(sort -n -k1 "$work/health.txt" | awk '{l[NR]=$1} END {print l[int((NR+1)/2)]}')" \
	'BEGIN { printf "ratio admission / healthz: %.2f\n", a / h }'
echo "store after the run: $(du -k "$work/clsm.db" | cut -f1) KiB database, $(du -k "$work/clsm.db-wal" 2>/dev/null | cut -f1 || echo 0) KiB WAL; clsmd $(rss_kib "$clsmd_pid") KiB RSS"
awk -v t="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "clsmd CPU over all rounds: %.1f s\n", t / hz }'
