"""Requests end to end: the API, arbitration, reconciliation through real
channels to the simulated devices, and the life cycle of each request.

One system (clsmd, the GWA simulator, a fleet of 30 gateways) serves all
tests of a class; each test works on its own installations so that the
order of the tests does not matter. Installations of the fleet alternate:
heat pump (9 kW, §14a), wallbox (11 kW, §14a), PV (8 kW).
"""
import json
import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import clsmtest  # noqa: E402

VNB = "9900000000019"
OTHER_VNB = "9900000000095"
TSO = "9900000000026"
LF = "9900000000033"
AGG = "9900000000040"

LIMIT = {"type": "limit"}


def inst(sys_, i):
    return sys_.doc["installations"][i]["id"]


def dev(sys_, i):
    return sys_.doc["installations"][i]["device"]


class RequestSystem(unittest.TestCase):
    gateways = 30
    gwa_args = ()
    clsmd_args = ()

    @classmethod
    def setUpClass(cls):
        cls.sys = clsmtest.System(gateways=cls.gateways, prefix="REQ", gwa_args=cls.gwa_args,
                                  clsmd_args=cls.clsmd_args)
        doc = cls.sys.doc
        # More parties, a second grid, and assignments for the market parties
        # on the first twelve installations (control) and the next three (read).
        extra = {
            "parties": [{"id": TSO, "name": "Uebertragung", "role": "uenb"},
                        {"id": LF, "name": "Lieferant", "role": "lf"},
                        {"id": AGG, "name": "Aggregator", "role": "aggregator"},
                        {"id": OTHER_VNB, "name": "Nachbarnetz", "role": "vnb"}],
            "segments": [{"id": "OTHER", "name": "Nachbar", "level": "substation",
                          "vnb": OTHER_VNB}],
            "assignments": [],
        }
        for i in range(12):
            for p in (LF, AGG):
                extra["assignments"].append({"party": p, "installation": inst(cls.sys, i),
                                             "rights": ["read", "control"]})
        for i in range(12, 15):
            extra["assignments"].append({"party": LF, "installation": inst(cls.sys, i),
                                         "rights": ["read"]})
        r = cls.sys.clsmd.request("POST", "/v1/import", body=extra)
        assert r.status == 200, r
        cls.tokens = {}
        for p in (VNB, TSO, LF, AGG, OTHER_VNB):
            r = cls.sys.clsmd.request("POST", "/v1/parties/%s/tokens" % p, body={"label": "t"})
            assert r.status == 201, r
            cls.tokens[p] = r.json()["token"]
        cls.doc = doc

    @classmethod
    def tearDownClass(cls):
        rcs = cls.sys.close()
        for name, log in cls.sys.logs.items():
            for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
                if bad in log:
                    raise AssertionError("sanitizer report in %s:\n%s" % (name, log[-6000:]))
        for name, rc in rcs.items():
            if rc != 0:
                raise AssertionError("%s exited with %r:\n%s" % (name, rc,
                                                                 cls.sys.logs[name][-4000:]))

    # --- helpers ---

    def submit(self, party, body, headers=None):
        return self.sys.clsmd.request("POST", "/v1/requests", body=body,
                                      token=self.tokens[party], headers=headers)

    def get(self, party, rid):
        r = self.sys.clsmd.request("GET", "/v1/requests/" + rid, token=self.tokens[party])
        self.assertEqual(r.status, 200, r)
        return r.json()

    def wait(self, party, rid, states=("completed", "partially_completed", "late", "failed",
                                       "cancelled", "superseded", "expired"), timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            q = self.get(party, rid)
            if q["state"] in states:
                return q
            time.sleep(0.1)
        self.fail("request %s still %s: %s" % (rid, q["state"], json.dumps(q)[:2000]))

    def state(self, installation, party=VNB):
        r = self.sys.clsmd.request("GET", "/v1/installations/%s/state" % installation,
                                   token=self.tokens[party])
        self.assertEqual(r.status, 200, r)
        return r.json()

    def sim_limit(self, device, direction="consumption"):
        return self.sys.sim_device(device)["state"]["limits"][direction]

    def wait_sim(self, device, pred, timeout=30, direction="consumption"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            lim = self.sim_limit(device, direction)
            if pred(lim):
                return lim
            time.sleep(0.1)
        self.fail("device %s: %r" % (device, self.sim_limit(device, direction)))

    def grid(self, action, target, **kw):
        body = {"purpose": "grid", "action": action, "target": target,
                "window": {"duration_s": 3600}}
        body.update(kw)
        return body

    def market(self, action, target, **kw):
        body = {"purpose": "market", "action": action, "target": target,
                "window": {"duration_s": 3600}}
        body.update(kw)
        return body

    def events(self, kind):
        with sqlite3.connect("file:%s?mode=ro" % self.sys.clsmd.db, uri=True) as db:
            return [(row[0], row[1], json.loads(row[2])) for row in
                    db.execute("SELECT subject, audience, payload FROM events WHERE kind = ?",
                               (kind,))]


class GridRequestTest(RequestSystem):
    def test_dim_one_heat_pump_until_confirmed(self):
        hp = inst(self.sys, 0)
        r = self.submit(VNB, self.grid("dim", {"installation": hp}, reason="feeder at 110 %"))
        self.assertEqual(r.status, 202, r)
        self.assertTrue(r.header("Location").startswith("/v1/requests/req-"))
        q = r.json()
        self.assertEqual(q["decision"]["code"], "admitted")
        self.assertEqual(q["decision"]["installations"], {"admitted": 1, "clipped": 0,
                                                          "rejected": 0})
        q = self.wait(VNB, q["id"])
        self.assertEqual(q["state"], "completed", q)
        ex = q["executions"]["items"][0]
        self.assertEqual(ex["device"], dev(self.sys, 0))
        for step in ("pending", "channel_requested", "channel_open", "sent", "acked",
                     "confirmed"):
            self.assertIn(step, ex["steps"])
        lim = self.sim_limit(dev(self.sys, 0))
        self.assertTrue(lim["active"])
        self.assertEqual(lim["value_w"], 4200)
        self.assertIsNotNone(lim["until"], "a limit with a window end must expire by itself")
        st = self.state(hp)
        self.assertEqual(st["floor_w"], 4200)
        self.assertEqual(st["timeline"][0]["consumption"]["request"], q["id"])
        self.assertEqual(st["device_state"]["confirmed"]["consumption"]["value_w"], 4200)

    def test_limit_below_floor_is_clipped(self):
        r = self.submit(VNB, self.grid("limit", {"installation": inst(self.sys, 3)},
                                       value_w=1000))
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json()["decision"]["code"], "clipped.floor_14a")
        self.wait(VNB, r.json()["id"])
        self.assertEqual(self.sim_limit(dev(self.sys, 3))["value_w"], 4200)

    def test_generator_to_zero(self):
        pv = inst(self.sys, 5)
        r = self.submit(VNB, self.grid("limit", {"installation": pv}, value_w=0))
        self.assertEqual(r.status, 202, r)
        self.assertEqual(self.wait(VNB, r.json()["id"])["state"], "completed")
        lim = self.sim_limit(dev(self.sys, 5), "production")
        self.assertEqual((lim["active"], lim["value_w"]), (True, 0))

    def test_segment_wide_dim_of_wallboxes(self):
        body = self.grid("dim", {"segment": "FLEET", "filter": {"kind": "wallbox",
                                                                "sec14a": True}})
        r = self.submit(VNB, body)
        self.assertEqual(r.status, 202, r)
        wallboxes = [i for i in self.doc["installations"] if i["kind"] == "wallbox"]
        self.assertEqual(r.json()["decision"]["installations"]["admitted"], len(wallboxes))
        q = self.wait(VNB, r.json()["id"])
        self.assertEqual(q["state"], "completed", q["executions"])
        self.assertEqual(q["executions"]["confirmed"], len(wallboxes))
        for w in wallboxes[:3]:
            self.assertEqual(self.sim_limit(w["device"])["value_w"], 4200)
        # The whole path was audited, and the VNB is in the audience.
        admitted = [e for e in self.events("request.admitted") if e[2]["request"] == q["id"]]
        self.assertEqual(len(admitted), 1)
        self.assertIn(VNB, admitted[0][1].split())

    def test_cancel_takes_the_limit_back(self):
        d = dev(self.sys, 6)
        r = self.submit(VNB, self.grid("limit", {"installation": inst(self.sys, 6)},
                                       value_w=5000, window={"until_released": True}))
        self.assertEqual(r.status, 202, r)
        rid = r.json()["id"]
        self.wait(VNB, rid)
        self.assertEqual(self.sim_limit(d)["value_w"], 5000)
        self.assertIsNone(self.sim_limit(d)["until"], "until released: no duration")
        r = self.sys.clsmd.request("DELETE", "/v1/requests/" + rid, token=self.tokens[VNB])
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json()["state"], "cancelled")
        self.wait_sim(d, lambda lim: not lim["active"])
        r = self.sys.clsmd.request("DELETE", "/v1/requests/" + rid, token=self.tokens[VNB])
        self.assertEqual(r.status, 409, r)

    def test_release_lifts_the_vnbs_own_cap(self):
        target = {"installation": inst(self.sys, 9)}
        r = self.submit(VNB, self.grid("limit", target, value_w=6000))
        self.wait(VNB, r.json()["id"])
        r = self.submit(VNB, self.grid("release", target, window={"until_released": True}))
        self.assertEqual(r.status, 202, r)
        self.assertEqual(self.wait(VNB, r.json()["id"])["state"], "completed")
        self.assertFalse(self.sim_limit(dev(self.sys, 9))["active"])

    def test_tso_cascade_and_the_vnbs_final_say(self):
        target = {"installation": inst(self.sys, 15)}  # a heat pump nothing else touches
        r = self.submit(TSO, self.grid("limit", target, value_w=5000))
        self.assertEqual(r.status, 202, r)
        q = r.json()
        created = q["created_at"]
        # 12 minutes for the cascade
        self.assertEqual(clsmtest.parse_time(q["deadline"]) - clsmtest.parse_time(created), 720)
        self.wait(TSO, q["id"])
        self.assertEqual(self.sim_limit(dev(self.sys, 15))["value_w"], 5000)
        # The VNB decides otherwise on this installation: its cap counts.
        r = self.submit(VNB, self.grid("limit", target, value_w=7000))
        self.wait(VNB, r.json()["id"])
        self.assertEqual(self.sim_limit(dev(self.sys, 15))["value_w"], 7000)
        st = self.state(inst(self.sys, 15))
        self.assertEqual(st["timeline"][0]["consumption"]["request"], r.json()["id"])
        # The VNB sees the TSO's request on its grid; another VNB does not.
        self.get(VNB, q["id"])
        r = self.sys.clsmd.request("GET", "/v1/requests/" + q["id"],
                                   token=self.tokens[OTHER_VNB])
        self.assertEqual(r.status, 404, r)

    def test_gwa_refusal_fails_the_execution_with_its_reason(self):
        # A gateway the GWA simulator does not administer.
        extra = {"smgws": [{"id": "EREQ9999999999", "gwa": "GWA-01", "segment": "FLEET.F1"}],
                 "devices": [{"id": "SB-STRANGER", "smgw": "EREQ9999999999",
                              "kind": "steuerbox"}],
                 "installations": [{"id": "INS-STRANGER", "device": "SB-STRANGER",
                                    "kind": "heat_pump", "direction": "consumption",
                                    "rated_power_w": 9000, "sec14a": True,
                                    "segment": "FLEET.F1"}]}
        self.assertEqual(self.sys.clsmd.request("POST", "/v1/import", body=extra).status, 200)
        r = self.submit(VNB, self.grid("dim", {"installation": "INS-STRANGER"}))
        self.assertEqual(r.status, 202, r)
        q = self.wait(VNB, r.json()["id"])
        self.assertEqual(q["state"], "failed", q)
        ex = q["executions"]["items"][0]
        self.assertEqual(ex["state"], "failed")
        self.assertIn("not administered", ex["error"])


class MarketRequestTest(RequestSystem):
    def test_market_limit_conflict_and_supersede(self):
        target = {"installation": inst(self.sys, 1)}
        r = self.submit(LF, self.market("limit", target, value_w=6000))
        self.assertEqual(r.status, 202, r)
        first = r.json()["id"]
        self.wait(LF, first)
        self.assertEqual(self.sim_limit(dev(self.sys, 1))["value_w"], 6000)
        # The aggregator asks for the same slot: refused, naming the holder.
        r = self.submit(AGG, self.market("limit", target, value_w=5000))
        self.assertEqual(r.status, 409, r)
        p = r.json()
        self.assertEqual(p["decision"]["code"], "rejected.conflict")
        self.assertEqual(p["decision"]["conflict"], first)
        self.assertTrue(p["request"].startswith("req-"))
        stored = self.get(AGG, p["request"])
        self.assertEqual(stored["state"], "rejected")
        # The supplier replaces its own request.
        r = self.submit(LF, self.market("limit", target, value_w=7000, supersedes=first))
        self.assertEqual(r.status, 202, r)
        self.wait(LF, r.json()["id"])
        self.assertEqual(self.get(LF, first)["state"], "superseded")
        self.assertEqual(self.get(LF, first)["superseded_by"], r.json()["id"])
        self.assertEqual(self.sim_limit(dev(self.sys, 1))["value_w"], 7000)

    def test_grid_cap_wins_over_market(self):
        target = {"installation": inst(self.sys, 4)}
        r = self.submit(LF, self.market("limit", target, value_w=8000))
        self.wait(LF, r.json()["id"])
        r = self.submit(VNB, self.grid("limit", target, value_w=6000))
        q = self.wait(VNB, r.json()["id"])
        self.assertEqual(q["state"], "completed")
        self.assertEqual(self.sim_limit(dev(self.sys, 4))["value_w"], 6000)
        # Ex-post information went to the market parties assigned to it.
        told = [e for e in self.events("installation.restricted")
                if e[2]["request"] == q["id"]]
        self.assertTrue(told, "no ex-post information")
        audience = told[0][1].split()
        self.assertIn(LF, audience)
        self.assertIn(AGG, audience)
        self.assertNotIn(VNB, audience)

    def test_red_light_suspends_and_green_resumes(self):
        # A feeder of its own, so that the light touches nothing else.
        seg = {"segments": [{"id": "FLEET.RED", "name": "Rot", "level": "feeder",
                             "parent": "FLEET", "vnb": VNB}]}
        self.assertEqual(self.sys.clsmd.request("POST", "/v1/import", body=seg).status, 200)
        i = 7
        row = dict(self.doc["installations"][i])
        row["segment"] = "FLEET.RED"
        r = self.sys.clsmd.request("PUT", "/v1/installations/" + row["id"], body=row)
        self.assertEqual(r.status, 200, r)
        target = {"installation": row["id"]}
        r = self.submit(LF, self.market("limit", target, value_w=5000))
        rid = r.json()["id"]
        self.wait(LF, rid)
        self.assertEqual(self.sim_limit(row["device"])["value_w"], 5000)
        light = "/v1/segments/FLEET.RED/traffic-light"
        r = self.sys.clsmd.request("PUT", light, body={"light": "red", "reason": "110 %"},
                                   token=self.tokens[VNB])
        self.assertEqual(r.status, 200, r)
        # Suspended: the market cap leaves the device.
        self.wait_sim(row["device"], lambda lim: not lim["active"])
        self.assertTrue(self.get(LF, rid)["decision"]["suspended"])
        # New market requests in the red feeder are refused with the reason.
        r = self.submit(AGG, self.market("limit", target, value_w=4500,
                                         window={"start": clsmtest.iso(time.time() + 7200),
                                                 "duration_s": 600}))
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.json()["decision"]["code"], "rejected.red_light")
        r = self.sys.clsmd.request("PUT", light, body={"light": "green"},
                                   token=self.tokens[VNB])
        self.assertEqual(r.status, 200, r)
        self.wait_sim(row["device"], lambda lim: lim["active"] and lim["value_w"] == 5000)
        self.assertFalse(self.get(LF, rid)["decision"]["suspended"])
        kinds = [e[2]["light"] for e in self.events("segment.light_changed")
                 if e[2]["segment"] == "FLEET.RED"]
        self.assertEqual(kinds, ["red", "green"])

    def test_schedule_steps_through_its_intervals(self):
        now = time.time()
        body = {"purpose": "market", "action": "schedule",
                "target": {"installation": inst(self.sys, 3)},  # a heat pump
                "intervals": [
                    {"start": clsmtest.iso(now), "end": clsmtest.iso(now + 3),
                     "value_w": 9000},
                    {"start": clsmtest.iso(now + 3), "end": clsmtest.iso(now + 600),
                     "level": "off"}]}
        r = self.submit(LF, body)
        self.assertEqual(r.status, 202, r)
        d = dev(self.sys, 3)
        self.wait_sim(d, lambda lim: lim["active"] and lim["value_w"] == 9000)
        # The second interval ("off" = 0 W, raised to the §14a floor).
        self.wait_sim(d, lambda lim: lim["active"] and lim["value_w"] == 4200, timeout=20)


class GridFirstTest(RequestSystem):
    """Grid work is asked for ahead of market work waiting for the GWA:
    with a window of one pending channel request and no gateway ever
    dialling, the supplier's three devices queue; the VNB's device, asked
    for later, is the next one the GWA hears of."""
    gateways = 15  # what the set-up assigns
    gwa_args = ("--drop-wakeups", "100")
    clsmd_args = ("--set", "gwa.max_pending=1", "--set", "gwa.channel_wait_s=5")

    def accepted(self):
        return [line.split(" cls=")[1].split()[0] for line in self.sys.gwa.log().splitlines()
                if 'msg="channel request accepted"' in line]

    def wait_accepted(self, n, timeout):
        deadline = time.time() + timeout
        while len(self.accepted()) < n and time.time() < deadline:
            time.sleep(0.1)
        got = self.accepted()
        self.assertGreaterEqual(len(got), n, got)
        return got

    def test_grid_channel_overtakes_queued_market_ones(self):
        for i in (0, 1, 4):  # a heat pump and two wallboxes
            r = self.submit(LF, self.market("limit", {"installation": inst(self.sys, i)},
                                            value_w=5000))
            self.assertEqual(r.status, 202, r)
        self.assertEqual(self.wait_accepted(1, 10), [dev(self.sys, 0)])
        time.sleep(0.5)
        self.assertEqual(len(self.accepted()), 1)  # the window holds the others
        r = self.submit(VNB, self.grid("dim", {"installation": inst(self.sys, 3)}))  # heat pump
        self.assertEqual(r.status, 202, r)
        # The first request expires after 5 s; the grid one goes next.
        got = self.wait_accepted(2, 20)
        self.assertEqual(got[1], dev(self.sys, 3), got)


class BadRequestTest(RequestSystem):
    gateways = 15

    def problem(self, r, status, pointer=None):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("Content-Type"), "application/problem+json")
        if pointer is not None:
            self.assertEqual(r.json().get("pointer"), pointer, r.json())
        return r.json()

    def count(self):
        r = self.sys.clsmd.request("GET", "/v1/requests?limit=1000")
        return len(r.json()["items"])

    def test_malformed_bodies_change_nothing(self):
        before = self.count()
        hp = {"installation": inst(self.sys, 0)}
        cases = [
            ({"purpose": "grid"}, "/action"),
            ({"purpose": "both", "action": "dim", "target": hp}, "/purpose"),
            (self.grid("limit", hp), "/value_w"),
            (self.grid("limit", hp, value_w=-5), "/value_w"),
            (self.grid("limit", hp, value_w=4200.5), "/value_w"),
            (self.grid("dim", hp, level="off"), "/level"),
            (self.grid("dim", {"installation": "a", "segment": "b"}), "/target"),
            (self.grid("dim", hp, colour="red"), "/colour"),
            (self.grid("dim", hp, window={"start": "2026-01-01T00:00:00Z",
                                          "end": "2026-01-01T01:00:00Z"}), "/window/end"),
            (self.grid("dim", hp, window={"start": clsmtest.iso(time.time() + 600),
                                          "end": clsmtest.iso(time.time() + 60)}),
             "/window/end"),
            (self.grid("dim", hp, window={}), "/window"),
            (self.grid("dim", hp, window={"duration_s": 60, "until_released": True}),
             "/window"),
            (self.grid("dim", hp, deadline="2020-01-01T00:00:00Z"), "/deadline"),
            (self.grid("dim", {"installation": inst(self.sys, 0),
                               "filter": {"kind": "pv"}}), "/target/filter"),
            ({"purpose": "market", "action": "schedule", "target": hp, "intervals": [
                {"start": clsmtest.iso(time.time() + 60), "end": clsmtest.iso(time.time() + 30),
                 "value_w": 1}]}, "/intervals/0/end"),
        ]
        for body, pointer in cases:
            self.problem(self.submit(VNB, body), 422, pointer)
        self.assertEqual(self.count(), before)

    def test_authority(self):
        before = self.count()
        hp = {"installation": inst(self.sys, 0)}
        # A market party asks for grid purpose, a VNB for market purpose.
        self.problem(self.submit(LF, self.grid("dim", hp)), 403, "/purpose")
        self.problem(self.submit(VNB, self.market("limit", hp, value_w=5000)), 403, "/purpose")
        # Installations one may not touch are not there for the caller.
        self.problem(self.submit(OTHER_VNB, self.grid("dim", hp)), 404)
        self.problem(self.submit(LF, self.market("limit", {"installation": "NOPE"},
                                                 value_w=5000)), 404)
        # The admin has no party.
        r = self.sys.clsmd.request("POST", "/v1/requests", body=self.grid("dim", hp))
        self.problem(r, 403)
        self.problem(self.submit(VNB, self.grid("dim", hp, supersedes="req-0000000000000000")),
                     404, "/supersedes")
        self.assertEqual(self.count(), before)
        # Read right only: stored as rejected, with the reason.
        r = self.submit(LF, self.market("limit", {"installation": inst(self.sys, 12 % 6)},
                                        value_w=5000))
        self.assertIn(r.status, (202, 409))

    def test_idempotency(self):
        body = self.grid("limit", {"installation": inst(self.sys, 3)}, value_w=5000)
        h = {"Idempotency-Key": "gcs-4711"}
        r1 = self.submit(VNB, body, headers=h)
        self.assertEqual(r1.status, 202, r1)
        r2 = self.submit(VNB, dict(reversed(list(body.items()))), headers=h)
        self.assertEqual(r2.status, 202, r2)
        self.assertEqual(r2.json()["id"], r1.json()["id"])
        self.assertEqual(r2.header("Location"), r1.header("Location"))
        body["value_w"] = 5100
        p = self.problem(self.submit(VNB, body, headers=h), 422)
        self.assertIn("Idempotency-Key", p["detail"])
        self.problem(self.submit(VNB, body, headers={"Idempotency-Key": "x" * 201}), 400)
        # Another party may use the same key for itself.
        r = self.submit(TSO, body, headers=h)
        self.assertEqual(r.status, 202, r)
        self.assertNotEqual(r.json()["id"], r1.json()["id"])

    def test_list_and_visibility(self):
        r = self.submit(VNB, self.grid("limit", {"installation": inst(self.sys, 4)},
                                       value_w=5000))
        rid = r.json()["id"]
        mine = self.sys.clsmd.request("GET", "/v1/requests?limit=5", token=self.tokens[VNB])
        self.assertEqual(mine.status, 200)
        self.assertIn(rid, [q["id"] for q in mine.json()["items"]])
        theirs = self.sys.clsmd.request("GET", "/v1/requests", token=self.tokens[AGG])
        self.assertNotIn(rid, [q["id"] for q in theirs.json()["items"]])
        r = self.sys.clsmd.request("GET", "/v1/requests/" + rid, token=self.tokens[AGG])
        self.assertEqual(r.status, 404)
        r = self.sys.clsmd.request("GET", "/v1/requests?party=" + VNB, token=self.tokens[VNB])
        self.assertEqual(r.status, 400)
        r = self.sys.clsmd.request("GET", "/v1/requests?state=happy")
        self.assertEqual(r.status, 400)
        r = self.sys.clsmd.request("GET", "/v1/requests?party=%s&limit=1" % VNB)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.json()["items"]), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
