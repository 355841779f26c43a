#!/usr/bin/env python3
"""The Musterstadt switching scenario, against a running clsmd with the
simulated gateways and GWAs (scripts/demo.sh starts all of them).

  a. the supplier schedules the heat pumps of one feeder (market, green light)
  b. the VNB turns that feeder yellow, then red: the market schedules are
     suspended; the VNB dims the feeder's §14a wallboxes, floors respected,
     and the supplier is told (ex-post information)
  c. an aggregator's request in the red feeder is rejected with its reason
  d. two conflicting market requests on one installation: the second is
     rejected, naming the first
  e. a TSO request through the cascade over a whole transformer area, with
     the 12-minute deadline
  f. the light back to green: the VNB releases its restriction, the market
     schedules resume
  g. meter data: the gateways post signed meter values on their own; the VNB
     reads those of a heat pump in its grid, the TSO may not

Each step prints a table: requests, decisions, devices confirmed, p50/p99
time to confirmation, deadline misses, and the expectations checked.

  scripts/scenario.py URL ADMIN_TOKEN    exit status 0 when every expectation held
"""
import json
import sys
import time
import urllib.error
import urllib.request

VNB = "9907100000019"
TSO = "9907100000026"
LF = "9907100000033"
AGG = "9907100000040"
FEEDER = "UW-MUS.T1.F1"
OTHER_FEEDER = "UW-MUS.T1.F2"
AREA = "UW-MUS.T2"
FINAL = ("completed", "partially_completed", "late", "failed", "cancelled", "superseded",
         "expired", "rejected")
NAMES = {VNB: "VNB", TSO: "TSO", LF: "supplier", AGG: "aggregator"}


class Api:
    def __init__(self, url, admin):
        self.url = url.rstrip("/")
        self.tokens = {"admin": admin}

    def call(self, method, path, body=None, who="admin"):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.tokens[who])
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, json.loads(raw) if raw else None

    def token(self, party):
        st, doc = self.call("POST", "/v1/parties/%s/tokens" % party, {"label": "scenario"})
        if st != 201:
            raise SystemExit("scenario: no token for %s: %s %s" % (party, st, doc))
        self.tokens[party] = doc["token"]


def payload(event):
    """An event's payload as an object (the audit listing keeps the stored text)."""
    p = event.get("payload")
    if isinstance(p, str):
        try:
            p = json.loads(p)
        except ValueError:
            p = None
    return p if isinstance(p, dict) else {}


def iso(t):
    ms = int(round(t * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def parse_time(s):
    import calendar
    base, _, frac = s.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + \
        (int(frac) / 10 ** len(frac) if frac else 0)


class Scenario:
    def __init__(self, api):
        self.api = api
        self.failed = []
        self.rows = []
        self.checks = []

    # --- bookkeeping ---

    def expect(self, ok, what):
        self.checks.append((bool(ok), what))
        if not ok:
            self.failed.append(what)
        return ok

    def submit(self, who, body):
        st, doc = self.api.call("POST", "/v1/requests", body, who)
        rid = doc.get("id") or doc.get("request") if isinstance(doc, dict) else None
        return st, doc, rid

    def wait(self, who, rid, timeout=60):
        deadline = time.time() + timeout
        while True:
            st, q = self.api.call("GET", "/v1/requests/%s" % rid, who=who)
            if st != 200:
                return None
            if q["state"] in FINAL or time.time() > deadline:
                return q
            time.sleep(0.2)

    def row(self, who, q, status=None, decision=None):
        """One line of the step's table from a request document."""
        if q is None:
            self.rows.append((NAMES.get(who, who), "-", status, decision, "", "", "", "", ""))
            return
        ex = q.get("executions", {})
        times = []
        for item in ex.get("items", []):
            s = item.get("steps", {})
            if "confirmed" in s and "pending" in s:
                times.append((parse_time(s["confirmed"]) - parse_time(s["pending"])) * 1000)
        times.sort()

        def pct(p):
            if not times:
                return "-"
            return "%.0f ms" % times[min(len(times) - 1, int(p * len(times)))]
        self.rows.append((NAMES.get(who, who), q["id"], q["state"],
                          decision or q["decision"]["code"], str(ex.get("total", 0)),
                          "%d/%d" % (ex.get("confirmed", 0), ex.get("total", 0)), pct(0.5),
                          pct(0.99), str(ex.get("late", 0))))

    def table(self, title):
        print("\n== %s" % title)
        head = ("party", "request", "state", "decision", "devices", "confirmed", "p50", "p99",
                "late")
        rows = [head] + self.rows if self.rows else []
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))] if rows else []
        for r in rows:
            print("  " + "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
        for ok, what in self.checks:
            print("  [%s] %s" % ("ok" if ok else "FAILED", what))
        self.rows = []
        self.checks = []

    def installation_state(self, inst, who=VNB):
        st, doc = self.api.call("GET", "/v1/installations/%s/state" % inst, who=who)
        return doc if st == 200 else None

    def confirmed(self, inst, pred, timeout=20):
        """Wait until the device behind 'inst' confirms a consumption cap
        that satisfies pred (the cap dict, or None when none)."""
        deadline = time.time() + timeout
        while True:
            doc = self.installation_state(inst)
            c = doc and doc["device_state"]["confirmed"].get("consumption")
            cap = c if c and c.get("active") else None
            if pred(cap) or time.time() > deadline:
                return pred(cap)
            time.sleep(0.2)

    def light(self, segment, light, reason):
        st, _ = self.api.call("PUT", "/v1/segments/%s/traffic-light" % segment,
                              {"light": light, "reason": reason}, VNB)
        return st == 200

    # --- the steps ---

    def a_supplier_schedule(self):
        now = time.time()
        body = {"purpose": "market", "action": "schedule",
                "target": {"segment": FEEDER, "filter": {"kind": "heat_pump"}},
                "intervals": [
                    {"start": iso(now), "end": iso(now + 1200), "value_w": 6000},
                    {"start": iso(now + 1200), "end": iso(now + 3600), "level": "dim"}],
                "reason": "cheap hours: shift heating"}
        st, doc, rid = self.submit(LF, body)
        q = self.wait(LF, rid) if st == 202 else None
        self.row(LF, q, status=st)
        self.expect(st == 202, "the supplier's schedule is admitted (202)")
        self.expect(q and q["state"] == "completed",
                    "every heat pump it controls confirmed the schedule")
        self.schedule = rid
        self.hp = next((t["installation"] for t in (q or {}).get("targets", [])
                        if t["code"] == "admitted"), None)
        self.expect(self.hp and self.confirmed(self.hp, lambda c: c and c["value_w"] > 0),
                    "a heat pump holds the market cap")
        self.table("a. the supplier schedules the heat pumps of %s (market, green)" % FEEDER)

    def b_red_and_dim(self):
        self.expect(self.light(FEEDER, "yellow", "transformer at 90 %"), "light yellow")
        self.expect(self.light(FEEDER, "red", "transformer at 110 %"), "light red")
        st, q = self.api.call("GET", "/v1/requests/%s" % self.schedule, who=LF)
        self.expect(st == 200 and q["decision"].get("suspended"),
                    "the supplier's schedule is suspended")
        self.expect(self.hp and self.confirmed(self.hp, lambda c: c is None),
                    "its heat pumps are released from the market cap")
        body = {"purpose": "grid", "action": "dim",
                "target": {"segment": FEEDER, "filter": {"kind": "wallbox", "sec14a": True}},
                "window": {"until_released": True}, "reason": "feeder overload"}
        st, doc, rid = self.submit(VNB, body)
        q = self.wait(VNB, rid) if st == 202 else None
        self.row(VNB, q, status=st)
        self.expect(q and q["state"] == "completed", "every §14a wallbox confirmed the dim")
        floors_ok = True
        for t in (q or {}).get("targets", [])[:50]:
            doc = self.installation_state(t["installation"])
            cap = doc and doc["timeline"][0].get("consumption")
            floors_ok = floors_ok and cap is not None and cap["cap_w"] >= doc["floor_w"] > 0
        self.expect(q and floors_ok, "no wallbox below its §14a floor")
        self.dim = rid
        told = [e for e in self.audit_since(self.audit_mark())
                if e["kind"] == "installation.restricted" and
                LF in (e.get("audience") or "").split() and
                payload(e).get("request") == rid]
        self.expect(told, "the supplier got ex-post information (installation.restricted)")
        self.table("b. %s yellow, then red: market suspended; the VNB dims the §14a wallboxes"
                   % FEEDER)

    def audit_mark(self):
        return getattr(self, "_mark", 0)

    def audit_since(self, after):
        """Every event after seq 'after' (admin view of the event log)."""
        out = []
        while True:
            st, page = self.api.call("GET", "/v1/audit?limit=1000&after=%d" % after)
            if st != 200:
                return out
            out += page["items"]
            if page.get("next_after") is None:
                return out
            after = page["next_after"]

    def c_aggregator_in_red(self):
        body = {"purpose": "market", "action": "limit",
                "target": {"segment": FEEDER, "filter": {"kind": "pv"}}, "value_w": 3000,
                "window": {"duration_s": 3600}, "reason": "sell flexibility"}
        st, doc, rid = self.submit(AGG, body)
        code = (doc or {}).get("decision", {}).get("code")
        self.row(AGG, None, status="rejected" if st == 409 else st, decision=code)
        self.expect(st == 409 and code == "rejected.red_light",
                    "the aggregator's request is rejected: red light")
        self.table("c. an aggregator asks for flexibility in the red feeder")

    def d_conflict(self):
        st, items = self.api.call("GET", "/v1/installations?segment=%s&kind=heat_pump&limit=1000"
                                  % OTHER_FEEDER, who=LF)
        inst = items["items"][0]["id"] if st == 200 and items["items"] else None
        body = {"purpose": "market", "action": "limit", "target": {"installation": inst},
                "value_w": 5000, "window": {"duration_s": 1800}}
        st1, doc1, first = self.submit(LF, body)
        q1 = self.wait(LF, first) if st1 == 202 else None
        self.row(LF, q1, status=st1)
        body2 = dict(body, value_w=4500, reason="second thoughts, without supersedes")
        st2, doc2, second = self.submit(LF, body2)
        dec = (doc2 or {}).get("decision", {})
        self.row(LF, None, status="rejected" if st2 == 409 else st2, decision=dec.get("code"))
        self.expect(q1 and q1["state"] == "completed", "the first request is executed")
        self.expect(st2 == 409 and dec.get("code") == "rejected.conflict" and
                    dec.get("conflict") == first,
                    "the second is rejected, naming the first (%s)" % first)
        self.table("d. two conflicting market requests on %s" % inst)

    def e_cascade(self):
        body = {"purpose": "grid", "action": "dim",
                "target": {"segment": AREA, "filter": {"sec14a": True}},
                "window": {"duration_s": 1800}, "reason": "TSO: frequency support"}
        st, doc, rid = self.submit(TSO, body)
        q = self.wait(TSO, rid, timeout=120) if st == 202 else None
        self.row(TSO, q, status=st)
        self.expect(st == 202, "the TSO's request passes the cascade (202)")
        dl = q and parse_time(q["deadline"]) - parse_time(q["created_at"])
        self.expect(q and abs(dl - 720) < 1, "its deadline is 12 minutes")
        self.expect(q and q["state"] == "completed" and q["executions"]["late"] == 0,
                    "every device of %s confirmed within the deadline" % AREA)
        self.table("e. a TSO request through the cascade over %s" % AREA)

    def f_green(self):
        self.expect(self.light(FEEDER, "green", "transformer back at 70 %"), "light green")
        body = {"purpose": "grid", "action": "release",
                "target": {"segment": FEEDER, "filter": {"kind": "wallbox", "sec14a": True}},
                "window": {"until_released": True}}
        st, doc, rid = self.submit(VNB, body)
        q = self.wait(VNB, rid) if st == 202 else None
        self.row(VNB, q, status=st)
        self.expect(q and q["state"] == "completed", "the VNB's release is confirmed")
        st, s = self.api.call("GET", "/v1/requests/%s" % self.schedule, who=LF)
        self.expect(st == 200 and not s["decision"].get("suspended"),
                    "the supplier's schedule resumes")
        self.expect(self.hp and self.confirmed(self.hp, lambda c: c and c["value_w"] > 0),
                    "its heat pumps hold the market cap again")
        self.table("f. %s green again: restriction released, market resumed" % FEEDER)

    def g_meter_data(self):
        st, doc = self.api.call("GET", "/v1/installations?segment=%s&kind=heat_pump" % FEEDER)
        inst = next((i for i in (doc or {}).get("items", []) if i.get("metering_point")), None)
        if not self.expect(inst is not None, "a heat pump of %s names its metering point" % FEEDER):
            self.table("g. meter data")
            return
        mp = inst["metering_point"]
        path = "/v1/metering-points/%s/readings?resolution=15m" % mp
        items, deadline = [], time.time() + 30
        while time.time() < deadline:
            st, r = self.api.call("GET", path, who=VNB)
            if st == 200 and len({i["obis"] for i in r["items"]}) == 4:
                items = r["items"]
                break
            time.sleep(0.5)
        print("\n== g. meter data of %s (metering point %s), as the VNB reads it" %
              (inst["id"], mp))
        for i in items:
            print("  %-10s %s  %12s  (x10^%d)  %-2s  %d value(s)" %
                  (i["obis"], i["time"], i["value"], i["scaler"], i["unit"], i["count"]))
        self.expect(len(items) >= 4, "its gateway pushed signed energy and power values; the "
                    "VNB reads them per quarter hour")
        st, _ = self.api.call("GET", path, who=TSO)
        self.expect(st == 404, "the TSO is not entitled to them (404)")
        self.table("g. checks")

    def run(self):
        for p in (VNB, TSO, LF, AGG):
            self.api.token(p)
        st, audit = self.api.call("GET", "/v1/audit?limit=1")
        self._mark = 0
        if st == 200 and audit.get("items"):
            self._mark = max(0, audit["items"][-1]["seq"] - 1)
        for step in (self.a_supplier_schedule, self.b_red_and_dim, self.c_aggregator_in_red,
                     self.d_conflict, self.e_cascade, self.f_green, self.g_meter_data):
            try:
                step()
            except Exception as e:  # a failing step must not hide the others
                self.expect(False, "%s raised %r" % (step.__name__, e))
                self.table(step.__name__)
        print()
        if self.failed:
            print("== %d expectation(s) failed:" % len(self.failed))
            for f in self.failed:
                print("   - " + f)
            return 1
        print("== every expectation held")
        return 0


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    return Scenario(Api(sys.argv[1], sys.argv[2])).run()


if __name__ == "__main__":
    sys.exit(main())
