#!/bin/sh
# switch_storm.sh - one segment-wide grid request over N gateways, until
# every device confirmed (DESIGN.md §7).
#
# A synthetic fleet of N gateways, each with one §14a heat pump behind a
# Steuerbox (scripts/fleet.py), is run by clsm-smgw-sim with clsm-gwa-sim
# as its GWA and clsmd on SQLite. No channel is open at the start. The VNB
# sends one `dim` over the whole segment: clsmd admits it, asks the GWA for
# N channels (in batches), the GWA wakes the gateways (signed datagrams),
# each gateway fetches its order, dials clsmd over mutual TLS, and the
# Steuerbox takes the limit and reports it back. The run ends when the
# request is final. Then the same once more with the channels still open
# (a `limit` over the segment).
#
# Printed: seconds until every device confirmed, devices per second, the
# ratio to the TLS-handshake bound of `openssl speed` for the curve on this
# machine (each device costs at least one full mutual-TLS handshake), p50
# and p99 of the time to confirmation, deadline misses, and CPU seconds of
# each process.
#
# Usage: bench/switch_storm.sh [N] [CURVE]      (default 10000 brainpoolP256r1)
#        bench/switch_storm.sh --100k [CURVE]   (N = 100,000)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-10000}
[ "$n" = --100k ] && n=100000
curve=${2:-brainpoolP256r1}
build=${BUILD_DIR:-$here/build}
work=$(mktemp -d)
token=bench-admin-token-0123456789
vnb=9900000000019
pids=""
trap 'for p in $pids; do kill $p 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
. "$here/bench/lib.sh"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
gwa=$(free_port)
udp=$(python3 -c 'import socket; s=socket.socket(type=socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
api=$(free_port)
chan=$(free_port)
stats=$(free_port)

echo "switch storm: $n gateways ($curve), one §14a heat pump each, $(nproc) cores for everything"
t0=$(date +%s)
python3 "$here/scripts/fleet.py" --gateways "$n" --prefix XST --kinds heat_pump \
	--gwa "GWA-01=https://127.0.0.1:$gwa" --out "$work/fleet.json" --ids "$work/ids"
CLSM_PKI="$build/clsm-pki" "$here/scripts/mkpki.sh" "$work/pki" --curve "$curve" \
	--gateways "$work/ids" --gwa GWA-01 >/dev/null
echo "set-up: PKI and fleet in $(($(date +%s) - t0)) s"

wait_log() { # file pattern
	for _ in $(seq 600); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "switch_storm: $(basename "$1") did not start" >&2
	tail -20 "$1" >&2
	exit 1
}

"$build/clsm-smgw-sim" --pki "$work/pki" --registry "$work/fleet.json" --udp "127.0.0.1:$udp" \
	--telemetry 0 --stats "127.0.0.1:$stats" --log-level warn 2>"$work/smgw.log" &
smgw_pid=$!
pids="$pids $smgw_pid"
"$build/clsm-gwa-sim" --id GWA-01 --pki "$work/pki" --registry "$work/fleet.json" \
	--listen "127.0.0.1:$gwa" --wakeup "127.0.0.1:$udp" --log-level warn 2>"$work/gwa.log" &
gwa_pid=$!
pids="$pids $gwa_pid"
"$build/clsmd" --set "api.listen=127.0.0.1:$api" --set "store.path=$work/clsm.db" \
	--set "auth.admin_token=$token" --set log.level=warn \
	--set "tls.cert=$work/pki/emt/clsmd.crt" --set "tls.key=$work/pki/emt/clsmd.key" \
	--set "tls.smgw_ca=$work/pki/smgw-ca.crt" --set "tls.gwa_ca=$work/pki/gwa-ca.crt" \
	--set "channel.listen=127.0.0.1:$chan" --set "meter.listen=127.0.0.1:0" --set "channel.max_channels=15000" \
	--set "request.max_targets=200000" 2>"$work/clsmd.log" &
clsmd_pid=$!
pids="$pids $clsmd_pid"
for _ in $(seq 300); do
	curl -sf "http://127.0.0.1:$api/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
sleep 1
t0=$(date +%s)
"$build/clsmctl" --url "http://127.0.0.1:$api" --token "$token" import "$work/fleet.json" >/dev/null
echo "set-up: registry of $n gateways imported in $(($(date +%s) - t0)) s"
vtoken=$(curl -sf -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
	-d '{"label":"bench"}' "http://127.0.0.1:$api/v1/parties/$vnb/tokens" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

bound=$(tls_bound "$curve" | awk '{print $4}')

# One storm: submit, wait until final, print the figures.
storm() { # label body
	c0=$(cpu_ticks "$clsmd_pid") s0=$(cpu_ticks "$smgw_pid") g0=$(cpu_ticks "$gwa_pid")
	open=$(curl -s "http://127.0.0.1:$api/metrics" | awk '$1 == "clsm_channels{state=\"open\"}" {print $2}')
	python3 - "$api" "$vtoken" "$2" "$1" "$open" "${bound:-0}" <<'PY'
import json, sys, time, urllib.request
api, token, body, label, open_before, bound = sys.argv[1:7]
base = "http://127.0.0.1:%s" % api
def call(method, path, data=None):
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())
t0 = time.time()
q = call("POST", "/v1/requests", body.encode())
admitted = time.time() - t0
rid = q["id"]
while q["state"] not in ("completed", "partially_completed", "late", "failed", "expired"):
    time.sleep(0.5)
    q = call("GET", "/v1/requests/%s?limit=1" % rid)
elapsed = time.time() - t0
ex = q["executions"]
times, after = [], None
while True:
    page = call("GET", "/v1/requests/%s?limit=1000%s" % (rid, "&after=" + after if after else ""))
    for e in page["executions"]["items"]:
        s = e["steps"]
        if "confirmed" in s:
            def t(v):
                import calendar
                b, _, f = v.rstrip("Z").partition(".")
                return calendar.timegm(time.strptime(b, "%Y-%m-%dT%H:%M:%S")) + int(f or 0) / 1000
            times.append(t(s["confirmed"]) - t(s["pending"]))
    after = page["executions"]["next"]
    if not after:
        break
times.sort()
pct = lambda p: times[min(len(times) - 1, int(p * len(times)))] if times else float("nan")
rate = ex["confirmed"] / elapsed
print("%s: %s devices, %s channels open before; admitted in %.2f s; final '%s' after %.1f s:"
      " %d confirmed, %d failed, %d late" % (label, ex["total"], open_before or 0, admitted,
                                             q["state"], elapsed, ex["confirmed"], ex["failed"],
                                             ex["late"]))
line = "  %.0f devices/s; time to confirmation p50 %.1f s, p99 %.1f s" % (rate, pct(0.5), pct(0.99))
if float(bound) > 0:
    line += "; %.0f%% of the TLS-handshake bound (%s/s)" % (100 * rate / float(bound), bound)
print(line)
PY
	c1=$(cpu_ticks "$clsmd_pid") s1=$(cpu_ticks "$smgw_pid") g1=$(cpu_ticks "$gwa_pid")
	awk -v c="$((c1 - c0))" -v s="$((s1 - s0))" -v g="$((g1 - g0))" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "  CPU: clsmd %.1f s, gateway fleet %.1f s, GWA %.1f s\n", c / hz, s / hz, g / hz }'
	# Where the work went: wake-ups, order fetches and channel dials so far.
	curl -s "http://127.0.0.1:$stats/v1/stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print("  fleet so far: %d wake-ups accepted (%d refused), %d order fetches (%d failed),"
      " %d channels opened (%d failed)" % (s["wakeups_accepted"],
      sum(s["wakeups_rejected"].values()), s["fetches_ok"], s["fetches_failed"],
      s["channels_opened"], s["channels_failed"]))'
}

storm "cold (no channel open)" '{"purpose":"grid","action":"dim","target":{"segment":"FLEET"},"window":{"duration_s":3600},"reason":"switch storm"}'
storm "warm (channels kept open)" '{"purpose":"grid","action":"limit","value_w":5000,"target":{"segment":"FLEET"},"window":{"duration_s":3600},"reason":"switch storm, warm"}'
echo "memory: clsmd $(rss_kib "$clsmd_pid") KiB, gateway fleet $(rss_kib "$smgw_pid") KiB, GWA $(rss_kib "$gwa_pid") KiB"
