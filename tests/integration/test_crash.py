"""Crash safety: clsmd is killed with SIGKILL while a segment-wide grid
request is executing, and started again on the same store. Every device
must end in its desired state, every admitted request must reach a final
state, and no device may apply a command id twice (the fleet simulator
counts applications per id).
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
FINAL = ("completed", "partially_completed", "late", "failed", "cancelled", "superseded",
         "expired", "rejected")


class CrashTest(unittest.TestCase):
    def test_kill_during_segment_wide_request(self):
        gateways = 60
        # Some devices answer slowly, so that the kill lands with commands
        # in every stage: asked for, sent, acknowledged, read back.
        slow = []
        for i in range(1, gateways, 4):
            slow += ["--fault", "slow:SB-ECRS%010d:400" % i]
        sys_ = clsmtest.System(gateways=gateways, prefix="CRS", smgw_args=slow)
        try:
            self.run_crash(sys_)
        finally:
            rcs = sys_.close()
            for name, log in sys_.logs.items():
                for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
                    self.assertNotIn(bad, log, "sanitizer report in %s" % name)
            for name, rc in rcs.items():
                self.assertEqual(rc, 0, "%s exited with %r" % (name, rc))

    def run_crash(self, sys_):
        c = sys_.clsmd
        token = c.request("POST", "/v1/parties/%s/tokens" % VNB, body={"label": "t"}).json()[
            "token"]
        body = {"purpose": "grid", "action": "dim",
                "target": {"segment": "FLEET", "filter": {"sec14a": True}},
                "window": {"duration_s": 3600}, "reason": "crash test"}
        r = c.request("POST", "/v1/requests", body=body, token=token)
        self.assertEqual(r.status, 202, r)
        rid = r.json()["id"]
        targets = r.json()["decision"]["installations"]["admitted"]
        self.assertGreater(targets, 30)
        time.sleep(0.35)
        progress = c.request("GET", "/v1/requests/" + rid, token=token).json()["executions"]
        c.kill()
        self.assertLess(progress["confirmed"], progress["total"],
                        "everything was done before the kill; the test proves nothing")
        c.start()
        deadline = time.time() + 90
        while time.time() < deadline:
            q = c.request("GET", "/v1/requests/" + rid, token=token).json()
            if q["state"] in FINAL:
                break
            time.sleep(0.2)
        self.assertIn(q["state"], ("completed", "late"), json.dumps(q)[:3000])
        self.assertEqual(q["executions"]["confirmed"], q["executions"]["total"])
        # Every admitted request is final.
        for item in c.request("GET", "/v1/requests?limit=1000").json()["items"]:
            self.assertIn(item["state"], FINAL, item)
        # Every device holds the desired limit.
        devices = sorted({e["device"] for e in q["executions"]["items"]})
        self.assertEqual(len(devices), q["executions"]["total"])
        for d in devices:
            st = sys_.sim_device(d)["state"]
            self.assertTrue(st["limits"]["consumption"]["active"], (d, st))
        # No command id was applied twice on any device.
        with sqlite3.connect("file:%s?mode=ro" % c.db, uri=True) as db:
            cmds = db.execute("SELECT id, device, state FROM commands").fetchall()
        self.assertGreaterEqual(len(cmds), len(devices))
        for cid, dev, _state in cmds:
            applied = sys_.sim_device(dev, cmd=cid)["applied"]
            self.assertLessEqual(applied, 1, "command %s applied %d times on %s" %
                                 (cid, applied, dev))
        # The audit chain survived the kill.
        with sqlite3.connect("file:%s?mode=ro" % c.db, uri=True) as db:
            kinds = [r[0] for r in db.execute("SELECT kind FROM events ORDER BY seq")]
        self.assertIn("request.admitted", kinds)
        self.assertIn("request.finished", kinds)


if __name__ == "__main__":
    unittest.main(verbosity=2)
