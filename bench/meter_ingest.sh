#!/bin/sh
# meter_ingest.sh - meter data ingestion end to end, and the query of a month
# of one metering point (DESIGN.md §7: >= 100,000 readings/s).
#
# G gateways of a test PKI each post D signed documents (CMS SignedData,
# signed beforehand with `openssl cms`) over mutual TLS to the release
# clsmd's meter data listener, one keep-alive connection per gateway (curl),
# all gateways at once. A document holds one day of 15-minute values (1.8.0,
# 2.8.0, 1.7.0) of P metering points: P x 96 x 3 values. Printed: values
# stored per second over the whole run (from the first request to the last
# answer), documents per second, clsmd's CPU time per 1,000 values, and as a
# reference on the same machine, what SQLite alone takes per second for the
# same rows in the same table, one transaction per document with
# synchronous=FULL (python3's sqlite3). Then GET
# /v1/metering-points/{id}/readings over a month of one point at 15m, 1h and
# 1d: p50 and p99 of 50 requests each.
#
# Usage: bench/meter_ingest.sh [G] [D] [P]      (default 8 30 10)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
g=${1:-8}
d=${2:-30}
p=${3:-10}
build=${BUILD_DIR:-$here/build}
work=$(mktemp -d)
token=bench-admin-token-0123456789
pids=""
trap 'for x in $pids; do kill $x 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
. "$here/bench/lib.sh"

api=$(free_port)
meter=$(free_port)
python3 "$here/scripts/fleet.py" --gateways "$g" --prefix XMD --kinds heat_pump \
	--gwa "GWA-01=https://127.0.0.1:9" --out "$work/fleet.json" --ids "$work/ids"
CLSM_PKI="$build/clsm-pki" "$here/scripts/mkpki.sh" "$work/pki" --gateways "$work/ids" \
	--gwa GWA-01 >/dev/null
"$build/clsmd" --set "api.listen=127.0.0.1:$api" --set "store.path=$work/clsm.db" \
	--set "auth.admin_token=$token" --set log.level=warn \
	--set "tls.cert=$work/pki/emt/clsmd.crt" --set "tls.key=$work/pki/emt/clsmd.key" \
	--set "tls.smgw_ca=$work/pki/smgw-chain.pem" --set "channel.listen=127.0.0.1:0" \
	--set "meter.listen=127.0.0.1:$meter" 2>"$work/clsmd.log" &
clsmd_pid=$!
pids="$pids $clsmd_pid"
for _ in $(seq 300); do
	curl -sf "http://127.0.0.1:$api/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
"$build/clsmctl" --url "http://127.0.0.1:$api" --token "$token" import "$work/fleet.json" >/dev/null

echo "meter data: $g gateways x $d documents x $p metering points x 96 quarter hours x 3 values"
t0=$(date +%s)
python3 - "$work" "$g" "$d" "$p" "$meter" <<'PY'
import os, re, subprocess, sys, time
work, g, d, p, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
pem = open(os.path.join(work, "pki", "smgw", "gateways.pem")).read()
blocks = [m.group(0) + "\n" for m in
          re.finditer(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", pem, re.S)]
certs = [b for b in blocks if b.startswith("-----BEGIN CERTIFICATE")]
keys = [b for b in blocks if "PRIVATE KEY" in b.split("\n")[0]]
ids = open(os.path.join(work, "ids")).read().split()
today = int(time.time()) // 86400 * 86400
iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
for gi in range(g):
    gw = ids[gi]
    gdir = os.path.join(work, "docs", gw)
    os.makedirs(gdir)
    crt, key = os.path.join(gdir, "gw.crt"), os.path.join(gdir, "gw.key")
    open(crt, "w").write(certs[gi])
    open(key, "w").write(keys[gi])
    cfg = []
    for di in range(d):
        day = today - (di + 1) * 86400
        out = ["<MeterData xmlns='urn:clsm:cosem-xml:1' id='d%d' smgw='%s' created='%s'>"
               % (di, gw, iso(time.time() - 60))]
        for pi in range(p):
            mp = "DE%031d" % (gi * 1000 + pi + 1)
            out.append("<MeteringPoint id='%s' meter='M%d' medium='electricity'>"
                       "<ProfileGeneric period='900'><CaptureObjects>"
                       "<CaptureObject index='1' obis='1-0:1.8.0' scaler='-1' unit='30'/>"
                       "<CaptureObject index='2' obis='1-0:2.8.0' scaler='-1' unit='30'/>"
                       "<CaptureObject index='3' obis='1-0:1.7.0' scaler='0' unit='27'/>"
                       "</CaptureObjects><Buffer>" % (mp, pi))
            for q in range(96):
                out.append("<Entry time='%s'><Value index='1'>%d</Value><Value index='2'>%d"
                           "</Value><Value index='3'>%d</Value></Entry>"
                           % (iso(day + 900 * q), 100000 + di * 96 + q, 50 + q, 3000 + q))
            out.append("</Buffer></ProfileGeneric></MeteringPoint>")
        out.append("</MeterData>")
        xml = os.path.join(gdir, "d%d.xml" % di)
        open(xml, "w").write("\n".join(out))
        der = os.path.join(gdir, "d%d.der" % di)
        subprocess.run(["openssl", "cms", "-sign", "-binary", "-nodetach", "-outform", "DER",
                        "-md", "sha256", "-signer", crt, "-inkey", key, "-in", xml, "-out", der],
                       check=True)
        cfg.append('url = "https://127.0.0.1:%s/v1/meter-data"\ndata-binary = "@%s"\n'
                   'cert = "%s"\nkey = "%s"\ncacert = "%s"\n'
                   'header = "Content-Type: application/pkcs7-mime"\noutput = "/dev/null"\n'
                   'write-out = "%%{http_code}\\n"\ntlsv1.2\ntls-max = "1.2"\ncurves = "brainpoolP256r1"\n'
                   % (port, der, crt, key, os.path.join(work, "pki", "emt-chain.pem")))
    open(os.path.join(gdir, "curl.cfg"), "w").write("next\n".join(cfg))
PY
echo "set-up: fleet, PKI and $((g * d)) signed documents in $(($(date +%s) - t0)) s"

c0=$(cpu_ticks "$clsmd_pid")
s0=$(date +%s.%N)
for dir in "$work"/docs/*/; do
	curl -s -K "$dir/curl.cfg" >"$dir/codes" 2>"$dir/err" &
done
wait_curls() {
	for dir in "$work"/docs/*/; do
		while [ "$(wc -l <"$dir/codes")" -lt "$d" ] && kill -0 "$clsmd_pid"; do sleep 0.05; done
	done
}
wait_curls
s1=$(date +%s.%N)
c1=$(cpu_ticks "$clsmd_pid")
bad=$(cat "$work"/docs/*/codes | grep -vc '^201$' || true)
values=$((g * d * p * 96 * 3))
awk -v v="$values" -v n="$((g * d))" -v s0="$s0" -v s1="$s1" -v c="$((c1 - c0))" \
	-v hz="$(getconf CLK_TCK)" -v bad="$bad" 'BEGIN {
	t = s1 - s0
	printf "ingestion: %d values in %d documents in %.2f s: %.0f values/s, %.1f documents/s; %d answers not 201\n", v, n, t, v / t, n / t, bad
	printf "  clsmd CPU %.2f s: %.1f ms per 1,000 values\n", c / hz, 1000 * c / hz / v * 1000 }'

# Reference: the same rows into the same table with SQLite alone.
python3 - "$work" "$g" "$d" "$p" <<'PY'
import os, sqlite3, sys, time
work, g, d, p = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
db = sqlite3.connect(os.path.join(work, "ref.db"), isolation_level=None)
db.execute("PRAGMA journal_mode = WAL")
db.execute("PRAGMA synchronous = FULL")
db.execute("CREATE TABLE readings (point TEXT NOT NULL, obis TEXT NOT NULL, time INTEGER NOT NULL,"
           " value INTEGER NOT NULL, scaler INTEGER NOT NULL, unit INTEGER NOT NULL,"
           " status INTEGER NOT NULL, smgw TEXT NOT NULL, res INTEGER NOT NULL DEFAULT 0,"
           " PRIMARY KEY (point, obis, time)) STRICT, WITHOUT ROWID")
db.execute("CREATE INDEX readings_raw_time ON readings(time) WHERE res = 0")
today = int(time.time()) // 86400 * 86400
docs = []
for gi in range(g):
    for di in range(d):
        day = today - (di + 1) * 86400
        docs.append([("DE%031d" % (gi * 1000 + pi + 1), o, (day + 900 * q) * 1000, q, -1, 30, 0,
                      "gw") for pi in range(p) for q in range(96)
                     for o in ("1-0:1.8.0", "1-0:2.8.0", "1-0:1.7.0")])
t0 = time.time()
for rows in docs:
    db.execute("BEGIN")
    db.executemany("INSERT OR IGNORE INTO readings (point, obis, time, value, scaler, unit,"
                   " status, smgw) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("COMMIT")
t = time.time() - t0
n = sum(len(r) for r in docs)
print("reference: SQLite alone (python3 sqlite3, one transaction per document): %.0f values/s" % (n / t))
PY

# A month of one metering point, queried.
python3 - "$api" "$token" <<'PY'
import http.client, sys, time
api, token = sys.argv[1], sys.argv[2]
mp = "DE%031d" % 1
to = int(time.time()) // 86400 * 86400
frm = to - 30 * 86400
iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
c = http.client.HTTPConnection("127.0.0.1", int(api))
for res in ("15m", "1h", "1d"):
    times, n = [], 0
    for _ in range(50):
        t0 = time.perf_counter()
        c.request("GET", "/v1/metering-points/%s/readings?from=%s&to=%s&resolution=%s"
                  % (mp, iso(frm), iso(to), res), headers={"Authorization": "Bearer " + token})
        r = c.getresponse()
        body = r.read()
        times.append(time.perf_counter() - t0)
        assert r.status == 200, body[:200]
        n = body.count(b'"obis"')
    times.sort()
    print("query: a month of one metering point at %s: %d items, p50 %.1f ms, p99 %.1f ms"
          % (res, n, 1000 * times[len(times) // 2], 1000 * times[int(len(times) * 0.99)]))
PY
