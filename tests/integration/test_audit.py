"""The audit listing (GET /v1/audit) and `clsmctl audit verify`.

Events are written by what the API records (commands that fail with channels
off, webhook subscriptions). Then clsmd is stopped and copies of its SQLite
file are tampered with by Python's sqlite3 module - a payload edited, a row
deleted, a row inserted (with a hash computed by this file's own
implementation of the hash), the end cut off - and verify, reading the file
itself or through a clsmd started on it, finds each; the untouched log
verifies.
"""
import hashlib
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import clsmtest  # noqa: E402

VNB = "9900000000001"
CONTROL = {"type": "limit", "direction": "consumption", "value_w": 4200, "active": True,
           "duration_s": 3600}


def base_doc():
    return {
        "parties": [{"id": VNB, "name": "Netz", "role": "vnb"}],
        "segments": [{"id": "S", "name": "s", "level": "substation", "vnb": VNB}],
        "gwas": [{"id": "G", "name": "g", "endpoint": "https://127.0.0.1:9441"}],
        "smgws": [{"id": "EABC0000000001", "gwa": "G", "segment": "S"}],
        "devices": [{"id": "D1", "smgw": "EABC0000000001", "kind": "steuerbox"}],
    }


def event_hash(prev, seq, time_ms, kind, subject, actor, audience, payload):
    """The event hash of audit.h, written again from its description."""
    h = hashlib.sha256()
    fields = [prev, str(seq).encode(), str(time_ms).encode(), kind.encode(), subject.encode(),
              actor.encode(), payload.encode()]
    if audience:
        fields.append(audience.encode())
    for f in fields:
        h.update(struct.pack(">Q", len(f)))
        h.update(f)
    return h.digest()


def tamper(path, fn):
    """Change the file with 'fn(db)' and close it (which folds the write-ahead
    log into the file, so that a copy of the file alone has the change)."""
    db = sqlite3.connect(path)
    try:
        out = fn(db)
        db.commit()
        return out
    finally:
        db.close()


def ctl_db(path, *args):
    return subprocess.run([clsmtest.CLSMCTL, "audit", "verify", "--db", path] + list(args),
                          capture_output=True, text=True, timeout=60)


class AuditTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = clsmtest.Clsmd().start()
        s = cls.server
        assert s.request("POST", "/v1/import", body=base_doc()).status == 200
        cls.token = s.request("POST", "/v1/parties/%s/tokens" % VNB, body={}).json()["token"]
        for i in range(6):
            assert s.request("POST", "/v1/devices/D1/commands",
                             body={"control": CONTROL}).status == 202
            r = s.request("POST", "/v1/webhooks", body={"url": "http://127.0.0.1:9/%d" % i},
                          token=cls.token)
            assert r.status == 201, r
            s.request("DELETE", "/v1/webhooks/" + r.json()["id"], token=cls.token)
        cls.n = 18
        deadline = time.time() + 10
        while s.request("GET", "/v1/audit?limit=1").json()["last_seq"] < cls.n:
            assert time.time() < deadline, "the events were not written"
            time.sleep(0.02)

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        log = cls.server.log()
        cls.server.cleanup()
        if rc != 0:
            raise AssertionError("clsmd exited with %r:\n%s" % (rc, log[-4000:]))
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            if bad in log:
                raise AssertionError("sanitizer report in the clsmd log:\n" + log[-8000:])

    def tearDown(self):
        if self.server.proc is None:
            self.server.start()

    def stopped_copy(self, name):
        """A copy of the database of the stopped server."""
        if self.server.proc is not None:
            self.assertEqual(self.server.stop(), 0)
        path = os.path.join(self.server.workdir, name)
        shutil.copy(self.server.db, path)
        return path

    # --- GET /v1/audit ------------------------------------------------------------

    def test_listing(self):
        s = self.server
        page = s.request("GET", "/v1/audit?limit=5")
        self.assertEqual(page.status, 200)
        body = page.json()
        self.assertEqual([e["seq"] for e in body["items"]], [1, 2, 3, 4, 5])
        self.assertEqual(body["next_after"], 5)
        self.assertGreaterEqual(body["last_seq"], self.n)
        e = body["items"][0]
        self.assertEqual(sorted(e), ["actor", "audience", "hash", "kind", "payload", "prev_hash",
                                     "seq", "subject", "time", "time_ms"])
        self.assertEqual(e["prev_hash"], "00" * 32)
        self.assertIsInstance(e["payload"], str)  # the very text the hash covers
        for a, b in zip(body["items"], body["items"][1:]):
            self.assertEqual(b["prev_hash"], a["hash"])
        # This file's hash agrees with clsmd's, audiences included.
        items = s.request("GET", "/v1/audit?limit=1000").json()["items"]
        self.assertTrue(any(i["audience"] == VNB for i in items))
        for i in items:
            self.assertEqual(event_hash(bytes.fromhex(i["prev_hash"]), i["seq"], i["time_ms"],
                                        i["kind"], i["subject"], i["actor"], i["audience"],
                                        i["payload"]).hex(), i["hash"])
        self.assertEqual(items[-1]["hash"], s.request("GET", "/v1/audit").json()["last_hash"])
        nxt = s.request("GET", "/v1/audit?after=5&limit=2").json()
        self.assertEqual([e["seq"] for e in nxt["items"]], [6, 7])
        end = s.request("GET", "/v1/audit?after=%d" % items[-1]["seq"]).json()
        self.assertEqual((end["items"], end["next_after"]), ([], None))

    def test_listing_errors(self):
        s = self.server
        for q, field in (("after=-1", "after"), ("after=x", "after"), ("limit=0", "limit"),
                         ("limit=1001", "limit"), ("cursor=1", "cursor")):
            r = s.request("GET", "/v1/audit?" + q)
            self.assertEqual(r.status, 400, q)
            self.assertEqual(r.json().get("field"), field, q)
        self.assertEqual(s.request("GET", "/v1/audit", token=None).status, 401)
        self.assertEqual(s.request("GET", "/v1/audit", token=self.token).status, 403)

    # --- clsmctl audit verify ----------------------------------------------------------

    def test_verify_through_the_api(self):
        r = clsmtest.ctl(self.server, "audit", "verify")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("audit chain intact", r.stdout)
        j = json.loads(clsmtest.ctl(self.server, "--json", "audit", "verify").stdout)
        listing = self.server.request("GET", "/v1/audit").json()
        self.assertTrue(j["ok"])
        self.assertEqual(j["last_seq"], listing["last_seq"])
        self.assertEqual(j["last_hash"], listing["last_hash"])
        # An anchor recorded earlier must match.
        first = self.server.request("GET", "/v1/audit?limit=3").json()["items"][2]
        r = clsmtest.ctl(self.server, "audit", "verify", "--anchor", "3:" + first["hash"])
        self.assertEqual(r.returncode, 0, r.stdout)
        r = clsmtest.ctl(self.server, "audit", "verify", "--anchor", "3:" + "ab" * 32)
        self.assertEqual(r.returncode, 1)
        self.assertIn("event 3 does not match its hash", r.stdout)
        # Only the admin may list the log.
        r = clsmtest.ctl(self.server, "audit", "verify", token=self.token)
        self.assertEqual(r.returncode, 1)
        self.assertIn("403", r.stderr)
        for bad in (["audit"], ["audit", "check"], ["audit", "verify", "--anchor", "x"],
                    ["audit", "verify", "--anchor", "3:abc"], ["audit", "verify", "extra"]):
            self.assertEqual(clsmtest.ctl(self.server, *bad).returncode, 2, bad)

    def test_untouched_file_verifies(self):
        path = self.stopped_copy("untouched.db")
        r = ctl_db(path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"audit chain intact: \d+ events, 1 to \d+; last hash [0-9a-f]{64}")

    def test_edited_payload(self):
        pristine = self.stopped_copy("pristine.db")
        path = self.stopped_copy("edited.db")
        def edit(db):
            seq = db.execute("SELECT min(seq) FROM events WHERE kind = 'command.failed'"
                             " AND seq > 1").fetchone()[0]
            db.execute("UPDATE events SET payload = replace(payload, 'D1', 'D2') WHERE seq = ?",
                       (seq,))
            return seq

        seq = tamper(path, edit)
        r = ctl_db(path)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("audit chain BROKEN: event %d does not match its hash" % seq, r.stdout)
        self.assertIn("events 1 to %d are intact" % (seq - 1), r.stdout)
        # A clsmd started on the edited file does not hide it either.
        try:
            shutil.copy(path, self.server.db)
            self.server.start()
            r = clsmtest.ctl(self.server, "audit", "verify")
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn("event %d does not match its hash" % seq, r.stdout)
            j = json.loads(clsmtest.ctl(self.server, "--json", "audit", "verify").stdout)
            self.assertEqual((j["ok"], j["fault"], j["seq"], j["checked"]),
                             (False, "hash", seq, seq - 1))
        finally:
            if self.server.proc is not None:
                self.assertEqual(self.server.stop(), 0)
            shutil.copy(pristine, self.server.db)
        self.assertEqual(ctl_db(self.server.db).returncode, 0)

    def test_deleted_row(self):
        path = self.stopped_copy("deleted.db")
        tamper(path, lambda db: db.execute("DELETE FROM events WHERE seq = 7"))
        r = ctl_db(path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("event 7 is missing: the log goes from 6 to 8", r.stdout)
        tamper(path, lambda db: db.execute("DELETE FROM events WHERE seq IN (8, 9)"))
        r = ctl_db(path)
        self.assertIn("events 7 to 9 are missing", r.stdout)

    def test_inserted_row(self):
        path = self.stopped_copy("inserted.db")

        def insert(db):
            rows = db.execute("SELECT seq, time, kind, subject, actor, audience, payload, hash"
                              " FROM events WHERE seq = 3").fetchone()
            # Make room after event 3 and insert an event that hashes right
            # and links to event 3: the event after it no longer links.
            db.execute("UPDATE events SET seq = -seq WHERE seq > 3")
            db.execute("UPDATE events SET seq = 1 - seq WHERE seq < 0")
            payload = json.dumps({"forged": True}, separators=(",", ":"))
            h = event_hash(rows[7], 4, rows[1] + 1, "command.confirmed", "device:D1", "admin", "",
                           payload)
            db.execute("INSERT INTO events (seq, time, kind, subject, actor, audience, payload,"
                       " prev_hash, hash) VALUES (4, ?, 'command.confirmed', 'device:D1',"
                       " 'admin', '', ?, ?, ?)", (rows[1] + 1, payload, rows[7], h))

        tamper(path, insert)
        r = ctl_db(path)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("event 5 does not link to event 4", r.stdout)

    def test_cut_off_end_needs_an_anchor(self):
        path = self.stopped_copy("cut.db")

        def cut(db):
            row = db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
            db.execute("DELETE FROM events WHERE seq = ?", (row[0],))
            return row

        last, last_hash = tamper(path, cut)
        # The rows alone still form a chain ...
        self.assertEqual(ctl_db(path).returncode, 0)
        # ... but not one that reaches a hash recorded before.
        r = ctl_db(path, "--anchor", "%d:%s" % (last, last_hash.hex()))
        self.assertEqual(r.returncode, 1)
        self.assertIn("the anchored event %d is not in the log" % last, r.stdout)
        r = ctl_db(self.stopped_copy("whole.db"), "--anchor", "%d:%s" % (last, last_hash.hex()))
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_unreadable_file(self):
        r = ctl_db(os.path.join(self.server.workdir, "missing.db"))
        self.assertEqual(r.returncode, 2)
        other = os.path.join(self.server.workdir, "other.db")
        tamper(other, lambda db: db.execute("CREATE TABLE t (x)"))
        r = ctl_db(other)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no such table: events", r.stderr)


if __name__ == "__main__":
    clsmtest.main()
