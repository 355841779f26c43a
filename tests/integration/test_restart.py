"""Durability: whatever clsmd acknowledged survives SIGKILL and a restart.

Writes of every kind are acknowledged one by one, then the process is
killed without warning while a writer thread keeps sending; after a restart
on the same store every acknowledged write is there, exactly as answered,
and nothing half-written appears.
"""
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import clsmtest  # noqa: E402

VNB = "9900000000001"
LF = "9900000000002"


def base_doc():
    return {
        "parties": [{"id": VNB, "name": "Netz", "role": "vnb"},
                    {"id": LF, "name": "Lieferant", "role": "lf"}],
        "segments": [{"id": "S", "name": "s", "level": "substation", "vnb": VNB},
                     {"id": "S.F1", "name": "f", "level": "feeder", "parent": "S", "vnb": VNB}],
        "gwas": [{"id": "G", "name": "g", "endpoint": "https://127.0.0.1:9441"}],
        "smgws": [{"id": "EABC0000000001", "gwa": "G", "segment": "S.F1"}],
        "devices": [{"id": "D1", "smgw": "EABC0000000001", "kind": "steuerbox"}],
    }


def installation(i):
    return {"id": "HP-%05d" % i, "device": "D1", "output": i % 16, "kind": "heat_pump",
            "direction": "consumption", "rated_power_w": 6000 + i, "sec14a": True,
            "segment": "S.F1"}


class RestartTest(unittest.TestCase):
    def setUp(self):
        self.server = clsmtest.Clsmd().start()

    def tearDown(self):
        self.server.cleanup()

    def restart(self):
        self.assertEqual(self.server.kill(), -signal.SIGKILL)
        self.server.start()

    def test_acknowledged_writes_survive_sigkill(self):
        s = self.server
        self.assertEqual(s.request("POST", "/v1/import", body=base_doc()).status, 200)
        r = s.request("PUT", "/v1/segments/S.F1/traffic-light", body={"light": "red", "reason": "x"})
        self.assertEqual(r.status, 200)
        light = r.json()
        r = s.request("POST", "/v1/parties/%s/tokens" % LF, body={"label": "erp"})
        self.assertEqual(r.status, 201)
        token = r.json()["token"]
        created = {}
        for i in range(10):
            r = s.request("POST", "/v1/installations", body=installation(i))
            self.assertEqual(r.status, 201, r)
            created[r.json()["id"]] = r.json()
        r = s.request("PATCH", "/v1/installations/HP-00003", body={"rated_power_w": 12345})
        self.assertEqual(r.status, 200)
        created["HP-00003"] = r.json()
        self.assertEqual(s.request("DELETE", "/v1/installations/HP-00004").status, 204)
        del created["HP-00004"]
        r = s.request("POST", "/v1/assignments",
                      body={"party": LF, "installation": "HP-00001", "rights": ["read"]})
        self.assertEqual(r.status, 201)
        assignment = r.json()

        self.restart()

        for iid, body in created.items():
            r = s.request("GET", "/v1/installations/" + iid)
            self.assertEqual(r.status, 200, iid)
            self.assertEqual(r.json(), body)
        self.assertEqual(s.request("GET", "/v1/installations/HP-00004").status, 404)
        self.assertEqual(s.request("GET", "/v1/segments/S.F1").json(), light)
        self.assertEqual(s.request("GET", "/v1/assignments/" + assignment["id"]).json(), assignment)
        # The party token still works and still sees only its assignment.
        r = s.request("GET", "/v1/installations", token=token)
        self.assertEqual([i["id"] for i in r.json()["items"]], ["HP-00001"])

    def test_kill_under_write_load(self):
        """Acknowledged creates are all there; the one in flight at the kill
        is there completely or not at all."""
        s = self.server
        self.assertEqual(s.request("POST", "/v1/import", body=base_doc()).status, 200)
        acked, sent = [], []
        stop = threading.Event()

        def writer():
            i = 0
            while not stop.is_set():
                body = {"id": "99%011d" % (100000 + i), "name": "party %d" % i, "role": "msb"}
                sent.append(body["id"])
                try:
                    r = s.request("POST", "/v1/parties", body=body)
                except OSError:
                    return
                if r.status == 201:
                    acked.append(r.json())
                i += 1

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(1.5)
        self.assertEqual(s.kill(), -signal.SIGKILL)
        stop.set()
        t.join(10)
        self.assertGreater(len(acked), 20, "the writer made too little progress to mean anything")
        s.start()
        for body in acked:
            r = s.request("GET", "/v1/parties/" + body["id"])
            self.assertEqual(r.status, 200, body["id"])
            self.assertEqual(r.json(), body)
        # Writes sent but never answered are either complete or absent.
        for pid in sent[len(acked):]:
            r = s.request("GET", "/v1/parties/" + pid)
            self.assertIn(r.status, (200, 404))
            if r.status == 200:
                self.assertEqual(r.json()["role"], "msb")

    def test_import_is_atomic_across_a_kill(self):
        """A big import either lands whole or not at all."""
        s = self.server
        doc = base_doc()
        doc["installations"] = [installation(i) for i in range(16)]
        doc["parties"] += [{"id": "99%011d" % (200000 + i), "name": "p", "role": "msb"}
                           for i in range(20000)]
        result = {}

        def importer():
            try:
                result["r"] = s.request("POST", "/v1/import", body=doc)
            except OSError as e:
                result["e"] = e

        t = threading.Thread(target=importer)
        t.start()
        time.sleep(0.3)
        s.kill()
        t.join(30)
        s.start()
        r = s.request("GET", "/v1/parties?limit=1000")
        n = len(r.json()["items"])
        landed = s.request("GET", "/v1/installations/HP-00015").status == 200
        if landed:
            self.assertEqual(n, 1000)  # a full page: the 20,002 parties are there
            self.assertEqual(s.request("GET", "/v1/parties/99000000219999").status, 200)
        else:
            self.assertEqual(n, 0)
            self.assertNotIn("r", result)


if __name__ == "__main__":
    clsmtest.main()
