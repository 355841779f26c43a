"""Meter data end to end (DESIGN.md §5.6, docs/protocols/meter-data.md):
gateways of the test PKI post COSEM-XML documents in CMS SignedData
(signed with `openssl cms`) over mutual TLS (curl: Python's ssl module
cannot offer brainpool groups as a client) to clsmd's meter data listener;
what they pushed is read back through the API at every resolution, by the
parties entitled to it and by no one else. Every kind of bad document is
refused with its reason, stores nothing and is recorded in the event log.
"""
import calendar
import http.server
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import clsmtest  # noqa: E402

VNB = "9900000000019"
OTHER_VNB = "9900000000095"
LF = "9900000000033"
OTHER_LF = "9900000000040"
TSO = "9900000000026"
AGG = "9900000000057"
MSB = "9900000000064"
NS = "urn:clsm:cosem-xml:1"


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def quarter(now, back):
    """The start of the quarter hour 'back' quarters before the last one."""
    return (int(now) // 900 - back) * 900


def document(smgw, points, doc_id=None, created=None):
    """points: [(metering point, medium, [(obis, scaler, unit)], [(time, [values])], period)]"""
    created = created or iso(time.time() - 60)
    out = ["<?xml version='1.0' encoding='UTF-8'?>",
           "<MeterData xmlns='%s' id='%s' smgw='%s' created='%s'>" %
           (NS, doc_id or "doc-%d" % int(time.time() * 1000), smgw, created)]
    for mp, medium, objs, entries, period in points:
        out.append("<MeteringPoint id='%s' meter='M-%s' medium='%s'>" % (mp, mp[-6:], medium))
        out.append("<ProfileGeneric%s><CaptureObjects>" %
                   (" period='%d'" % period if period else ""))
        for i, (obis, scaler, unit) in enumerate(objs, 1):
            out.append("<CaptureObject index='%d' obis='%s' scaler='%d' unit='%d'/>" %
                       (i, obis, scaler, unit))
        out.append("</CaptureObjects><Buffer>")
        for t, values in entries:
            out.append("<Entry time='%s'>%s</Entry>" % (
                t if isinstance(t, str) else iso(t),
                "".join("<Value index='%d'>%d</Value>" % (i, v)
                        for i, v in enumerate(values, 1) if v is not None)))
        out.append("</Buffer></ProfileGeneric></MeteringPoint>")
    out.append("</MeterData>")
    return "\n".join(out)


ELEC = [("1-0:1.8.0", -1, 30), ("1-0:2.8.0", -1, 30), ("1-0:1.7.0", 0, 27)]


class MeterDataTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sys = clsmtest.System(gateways=4, prefix="MTR",
                                  clsmd_args=("--set", "request.compliance_grace_s=2",
                                              "--set", "meter.retention_days=1"))
        s = cls.sys
        cls.gws = [g["id"] for g in s.doc["smgws"]]
        cls.inst = s.doc["installations"]
        # Metering points on the first two gateways' installations; a second
        # grid with its own VNB, and a supplier assigned to the first one.
        cls.mp = ["DE00012345678900000000000000%05d" % i for i in range(2)]
        extra = {
            "parties": [{"id": OTHER_VNB, "name": "Nachbarnetz", "role": "vnb"},
                        {"id": LF, "name": "Lieferant", "role": "lf"},
                        {"id": OTHER_LF, "name": "Anderer", "role": "lf"},
                        {"id": TSO, "name": "Uebertragung", "role": "uenb"},
                        {"id": AGG, "name": "Aggregator", "role": "aggregator"},
                        {"id": MSB, "name": "Messstellenbetrieb", "role": "msb"}],
            "segments": [{"id": "OTHER", "name": "Nachbar", "level": "substation",
                          "vnb": OTHER_VNB}],
            "assignments": [{"party": LF, "installation": cls.inst[0]["id"],
                             "rights": ["read"]},
                            {"party": MSB, "installation": cls.inst[0]["id"],
                             "rights": ["read"]},
                            {"party": AGG, "installation": cls.inst[1]["id"],
                             "rights": ["read", "control"]}],
        }
        r = s.clsmd.request("POST", "/v1/import", body=extra)
        assert r.status == 200, r
        for i in range(2):
            body = dict(cls.inst[i], metering_point=cls.mp[i])
            for k in ("created_at", "updated_at"):
                body.pop(k, None)
            r = s.clsmd.request("PUT", "/v1/installations/" + cls.inst[i]["id"], body=body)
            assert r.status == 200, r
        cls.tokens = {}
        for p in (VNB, OTHER_VNB, LF, OTHER_LF, TSO, AGG, MSB):
            r = s.clsmd.request("POST", "/v1/parties/%s/tokens" % p, body={"label": "t"})
            assert r.status == 201, r
            cls.tokens[p] = r.json()["token"]
        # Each gateway's certificate and key out of the bundle, for curl and
        # openssl cms.
        cls.keys = {}
        with open(os.path.join(s.pki, "smgw", "gateways.pem")) as f:
            pem = f.read()
        blocks = [m.group(0) + "\n" for m in
                  re.finditer(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", pem, re.S)]
        certs = [b for b in blocks if b.startswith("-----BEGIN CERTIFICATE")]
        keys = [b for b in blocks if "PRIVATE KEY" in b.split("\n")[0]]
        for gw, c, k in zip(cls.gws, certs, keys):
            cp, kp = os.path.join(s.dir, gw + ".crt"), os.path.join(s.dir, gw + ".key")
            with open(cp, "w") as f:
                f.write(c)
            with open(kp, "w") as f:
                f.write(k)
            cls.keys[gw] = (cp, kp)
        subprocess.run([clsmtest.CLSM_PKI, "leaf", s.pki, "--ca", "smgw", "--cn", cls.gws[3],
                        "--not-after", "-1", "--out", os.path.join(s.dir, "expired")],
                       check=True, capture_output=True)

    @classmethod
    def tearDownClass(cls):
        rcs = cls.sys.close()
        for name, log in cls.sys.logs.items():
            for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
                if bad in log:
                    raise AssertionError("sanitizer report in %s:\n%s" % (name, log[-6000:]))
        for name, rc in rcs.items():
            if rc != 0:
                raise AssertionError("%s exited with %r" % (name, rc))

    # --- helpers ---

    def sign(self, gw, text, key_of=None):
        cert, key = self.keys[key_of or gw]
        path = os.path.join(self.sys.dir, "doc.xml")
        with open(path, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
        return subprocess.run(["openssl", "cms", "-sign", "-binary", "-nodetach", "-outform",
                               "DER", "-md", "sha256", "-signer", cert, "-inkey", key, "-in", path],
                              check=True, capture_output=True).stdout

    def post(self, gw, body, tls=None):
        """POST as gateway 'gw' (or with the certificate pair 'tls');
        returns (status, parsed answer or curl's error text)."""
        cert, key = tls or self.keys[gw]
        path = os.path.join(self.sys.dir, "body.der")
        with open(path, "wb") as f:
            f.write(body)
        p = subprocess.run(["curl", "-s", "--tlsv1.2", "--tls-max", "1.2", "--curves",
                            "brainpoolP256r1:prime256v1", "--cert", cert, "--key", key,
                            "--cacert", os.path.join(self.sys.pki, "emt-chain.pem"),
                            "-H", "Content-Type: application/pkcs7-mime; smime-type=signed-data",
                            "--data-binary", "@" + path, "-w", "\n%{http_code}",
                            "https://127.0.0.1:%d/v1/meter-data" % self.sys.meter_port],
                           capture_output=True, timeout=60)
        if p.returncode != 0:
            return 0, p.stderr.decode() or "curl exit %d" % p.returncode
        text, _, code = p.stdout.decode().rpartition("\n")
        return int(code), json.loads(text) if text else None

    def readings(self, mp, token="admin", **q):
        query = "&".join("%s=%s" % kv for kv in q.items())
        r = self.sys.clsmd.request("GET", "/v1/metering-points/%s/readings?%s" % (mp, query),
                                   token=token)
        return r

    def rejected(self):
        out, after = [], 0
        while True:
            r = self.sys.clsmd.request("GET", "/v1/audit?limit=1000&after=%d" % after)
            self.assertEqual(r.status, 200, r)
            page = r.json()
            out += [json.loads(e["payload"]) for e in page["items"]
                    if e["kind"] == "meter_data.rejected"]
            if not page.get("next_after"):
                return out
            after = page["next_after"]

    # --- tests ---

    def test_values_pushed_are_served_at_every_resolution(self):
        now = time.time()
        base = quarter(now, 8) // 3600 * 3600  # a whole hour, two hours back at least
        entries = []
        for q in range(8):  # two hours of quarter hours
            entries.append((base + q * 900, [10000 + 25 * q, 500 + q, 4000 + 100 * q]))
        doc = document(self.gws[0], [(self.mp[0], "electricity", ELEC, entries, 900)],
                       doc_id="resolutions")
        status, ans = self.post(self.gws[0], self.sign(self.gws[0], doc))
        self.assertEqual(status, 201, ans)
        self.assertEqual((ans["values"], ans["stored"], ans["duplicate"]), (24, 24, False))
        frm, to = iso(base), iso(base + 7200)
        r = self.readings(self.mp[0], **{"from": frm, "to": to})
        self.assertEqual(r.status, 200, r)
        items = r.json()["items"]
        self.assertEqual(len(items), 24)
        got = {(i["obis"], i["time"]): (i["value"], i["scaler"], i["unit"]) for i in items}
        for q, (t, values) in enumerate(entries):
            for (obis, scaler, unit), v in zip(ELEC, values):
                self.assertEqual(got[(obis, iso(t).replace("Z", ".000Z"))],
                                 (v, scaler, "Wh" if unit == 30 else "W"))
        # Hours: a register's last value, a power's mean.
        r = self.readings(self.mp[0], **{"from": frm, "to": to, "resolution": "1h"}).json()
        hours = {(i["obis"], i["time"]): i for i in r["items"]}
        self.assertEqual(len(hours), 6)
        for h in range(2):
            t = iso(base + 3600 * h).replace("Z", ".000Z")
            self.assertEqual(hours[("1-0:1.8.0", t)]["value"], entries[4 * h + 3][1][0])
            self.assertEqual(hours[("1-0:2.8.0", t)]["value"], entries[4 * h + 3][1][1])
            mean = sum(e[1][2] for e in entries[4 * h:4 * h + 4]) / 4
            self.assertEqual(hours[("1-0:1.7.0", t)]["value"], round(mean))
            self.assertEqual(hours[("1-0:1.7.0", t)]["count"], 4)
        # Days, one OBIS code.
        r = self.readings(self.mp[0], **{"from": frm, "to": to, "resolution": "1d",
                                         "obis": "1-0:1.8.0"}).json()
        self.assertEqual(len(r["items"]), 1 if base // 86400 == (base + 7199) // 86400 else 2)
        self.assertEqual(r["items"][-1]["value"], entries[-1][1][0])
        # Bad queries.
        for q in ({"resolution": "5m"}, {"obis": "1.8.0"}, {"from": "yesterday"},
                  {"from": to, "to": frm}, {"limit": "5"}):
            self.assertEqual(self.readings(self.mp[0], **q).status, 400, q)

    def test_sent_twice_stores_once(self):
        t = quarter(time.time(), 20)
        doc = document(self.gws[1], [(self.mp[1], "electricity", ELEC, [(t, [1, 2, 3])], 900)],
                       doc_id="twice")
        body = self.sign(self.gws[1], doc)
        self.assertEqual(self.post(self.gws[1], body)[0], 201)
        status, ans = self.post(self.gws[1], body)
        self.assertEqual(status, 200, ans)
        self.assertEqual((ans["duplicate"], ans["stored"]), (True, 0))
        # The same values in a new document: taken, nothing new stored.
        doc2 = doc.replace("id='twice'", "id='twice-again'")
        status, ans = self.post(self.gws[1], self.sign(self.gws[1], doc2))
        self.assertEqual((status, ans["duplicate"], ans["stored"]), (201, False, 0))

    def test_entitlement(self):
        t = quarter(time.time(), 30)
        doc = document(self.gws[0], [(self.mp[0], "electricity", ELEC[:1], [(t, [77])], 900)],
                       doc_id="entitlement")
        self.assertEqual(self.post(self.gws[0], self.sign(self.gws[0], doc))[0], 201)
        q = {"from": iso(t), "to": iso(t + 900)}
        self.assertEqual(self.readings(self.mp[0], **q).json()["items"][0]["value"], 77)
        # Every role: the grid's VNB, the supplier and the metering point
        # operator assigned to it; not another VNB, the TSO, an unassigned
        # supplier or an aggregator assigned elsewhere.
        for party, want in ((VNB, 200), (LF, 200), (MSB, 200), (OTHER_VNB, 404), (TSO, 404),
                            (OTHER_LF, 404), (AGG, 404)):
            r = self.readings(self.mp[0], token=self.tokens[party], **q)
            self.assertEqual(r.status, want, (party, r))
            if want == 200:
                self.assertEqual(r.json()["items"][0]["value"], 77)
        # Forwarded star-shaped: the values went out as an event for the
        # entitled parties (webhooks and streams deliver by audience).
        with sqlite3.connect("file:%s?mode=ro" % self.sys.clsmd.db, uri=True) as db:
            rows = db.execute("SELECT audience, payload FROM events WHERE kind ="
                              " 'meter_data.values' AND subject = ?",
                              ("metering_point:" + self.mp[0],)).fetchall()
        sent = [(set(a.split()), json.loads(p)) for a, p in rows
                if json.loads(p)["document"] == "entitlement"]
        self.assertEqual(len(sent), 1)
        self.assertEqual(sent[0][0], {VNB, LF, MSB})
        self.assertEqual(sent[0][1]["values"], [{"obis": "1-0:1.8.0", "time": iso(t).replace(
            "Z", ".000Z"), "value": 77, "scaler": -1, "unit": "Wh", "status": 0}])
        # The supplier is assigned to the first installation only; the
        # aggregator to the second.
        self.assertEqual(self.readings(self.mp[1], token=self.tokens[LF]).status, 404)
        self.assertEqual(self.readings(self.mp[1], token=self.tokens[AGG]).status, 200)
        self.assertEqual(self.readings("DE0009999999999999999999999999999").status, 404)
        self.assertEqual(self.readings("nonsense").status, 404)
        self.assertEqual(self.readings(self.mp[0], token="wrong-token").status, 401)

    def test_meter_without_installation_belongs_to_its_first_gateway(self):
        water = "DE0001234567890000000000000WATER1"
        t = quarter(time.time(), 4) // 86400 * 86400
        doc = document(self.gws[2], [(water, "water", [("8-0:1.0.0", -3, 13)], [(t, [123456])],
                                      86400)], doc_id="water-1")
        status, ans = self.post(self.gws[2], self.sign(self.gws[2], doc))
        self.assertEqual(status, 201, ans)
        r = self.readings(water, **{"from": iso(t), "to": iso(t + 86400), "resolution": "1d"})
        self.assertEqual(r.json()["items"][0]["unit"], "m3")
        with sqlite3.connect("file:%s?mode=ro" % self.sys.clsmd.db, uri=True) as db:
            aud = db.execute("SELECT audience FROM events WHERE kind = 'meter_data.values'"
                             " AND subject = ?", ("metering_point:" + water,)).fetchall()
        self.assertEqual(aud, [(VNB,)])
        # The gateway's VNB sees it; another gateway cannot write to it.
        self.assertEqual(self.readings(water, token=self.tokens[VNB]).status, 200)
        self.assertEqual(self.readings(water, token=self.tokens[OTHER_VNB]).status, 404)
        doc = doc.replace(self.gws[2], self.gws[3]).replace("water-1", "water-2")
        status, ans = self.post(self.gws[3], self.sign(self.gws[3], doc))
        self.assertEqual(status, 403, ans)
        self.assertIn("is not behind gateway", ans["detail"])

    def test_refusals_store_nothing_and_are_recorded(self):
        gw, mp = self.gws[0], self.mp[0]
        t = quarter(time.time(), 50)
        good = document(gw, [(mp, "electricity", ELEC, [(t, [5, 6, 7])], 900)], doc_id="bad")
        signed = self.sign(gw, good)
        tampered = bytearray(signed)
        at = bytes(tampered).find(b"MeterData")
        tampered[at] ^= 0x20
        bomb = ("<!DOCTYPE MeterData [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;'>"
                "<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;'>]>\n") + good.split("\n", 1)[1].replace(
                    "<Buffer>", "<Buffer>&c;")
        xxe = ("<!DOCTYPE MeterData [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>\n" +
               good.split("\n", 1)[1])
        cases = [
            ("tampered signature", gw, bytes(tampered), None, 403, "signature does not verify"),
            ("another gateway's signature", gw, self.sign(gw, good, key_of=self.gws[1]), None,
             403, "not the gateway of this connection"),
            ("document of another gateway", self.gws[1],
             self.sign(self.gws[1], good.replace("smgw='%s'" % gw, "smgw='%s'" % self.gws[1])),
             None, 403, "is not behind gateway"),
            ("names another gateway", self.gws[1], self.sign(self.gws[1], good), None, 403,
             "the document names gateway"),
            ("XML bomb", gw, self.sign(gw, bomb), None, 422, "document type declaration"),
            ("external entity", gw, self.sign(gw, xxe), None, 422, "document type declaration"),
            ("wrong unit", gw, self.sign(gw, good.replace("scaler='0' unit='27'",
                                                          "scaler='0' unit='30'")),
             None, 422, "does not fit"),
            ("far future", gw, self.sign(gw, good.replace(iso(t), iso(t + 10 * 86400))), None,
             422, "in the future"),
            ("not CMS", gw, good.encode(), None, 400, "not a DER-encoded CMS"),
        ]
        before = len(self.rejected())
        for name, sender, body, tls, want, reason in cases:
            status, ans = self.post(sender, body, tls)
            self.assertEqual(status, want, (name, ans))
            self.assertIn(reason, ans["detail"], name)
        # Too large for the listener: refused before it is read.
        status, ans = self.post(gw, b"\x30" * (5 * 1024 * 1024 + 1))
        self.assertEqual(status, 413, ans)
        # An expired gateway certificate does not get through TLS at all.
        expired = (os.path.join(self.sys.dir, "expired.crt"),
                   os.path.join(self.sys.dir, "expired.key"))
        status, err = self.post(self.gws[3], self.sign(self.gws[3], good), tls=expired)
        self.assertEqual(status, 0, err)
        # Nothing of any of them was stored, every refusal is on record.
        r = self.readings(mp, **{"from": iso(t), "to": iso(t + 900)})
        self.assertEqual(r.json()["items"], [])
        got = self.rejected()[before:]
        self.assertEqual(len(got), len(cases))
        for (name, _, _, _, want, reason), ev in zip(cases, got):
            self.assertEqual(ev["status"], want, name)
            self.assertIn(reason, ev["reason"], name)

    def test_switched_device_drawing_too_much_is_reported(self):
        """Measured power from meter values above the cap the device
        confirmed, for longer than the grace period: noncompliant; back
        under it: compliant again. Both on the state and as events."""
        inst, mp, gw = self.inst[0], self.mp[0], self.gws[0]
        r = self.sys.clsmd.request("POST", "/v1/requests", token=self.tokens[VNB], body={
            "purpose": "grid", "action": "limit", "value_w": 4200,
            "target": {"installation": inst["id"]}, "window": {"duration_s": 3600},
            "reason": "compliance test"})
        self.assertEqual(r.status, 202, r)
        rid = r.json()["id"]
        deadline = time.time() + 60
        while self.sys.clsmd.request("GET", "/v1/requests/" + rid).json()["state"] != "completed":
            self.assertLess(time.time(), deadline, "the limit was not confirmed")
            time.sleep(0.1)

        def state():
            r = self.sys.clsmd.request("GET", "/v1/installations/%s/state" % inst["id"])
            return r.json()["device_state"]["confirmed"]
        t0 = calendar.timegm(time.strptime(state()["at"][:19], "%Y-%m-%dT%H:%M:%S")) + 1
        while time.time() < t0 + 5:
            time.sleep(0.1)

        def push(doc_id, entries):
            # Fed-in power (2.7) alongside, 0: the net of both is judged.
            doc = document(gw, [(mp, "electricity", [("1-0:1.7.0", 0, 27), ("1-0:2.7.0", 0, 27)],
                                 [(t, v + [0]) for t, v in entries], None)], doc_id=doc_id)
            status, ans = self.post(gw, self.sign(gw, doc))
            self.assertEqual(status, 201, ans)

        def events(kind):
            with sqlite3.connect("file:%s?mode=ro" % self.sys.clsmd.db, uri=True) as db:
                return [(set(a.split()), json.loads(p)) for a, p in db.execute(
                    "SELECT audience, payload FROM events WHERE kind = ? AND subject = ?",
                    (kind, "installation:" + inst["id"]))]
        # Over the cap (4,200 W plus 5 %) for 1 s: not yet.
        push("over-1", [(t0, [9000]), (t0 + 1, [9100])])
        self.assertEqual(state()["compliance"]["state"], "compliant")
        self.assertEqual(events("installation.noncompliant"), [])
        # Over it for 3 s, beyond the grace of 2 s.
        push("over-2", [(t0 + 3, [8800])])
        c = state()["compliance"]
        self.assertEqual((c["state"], c["limit_w"], c["direction"]),
                         ("noncompliant", 4200, "consumption"), c)
        ev = events("installation.noncompliant")
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0][0], {VNB, LF, MSB})  # the grid's VNB and the assigned parties
        self.assertEqual((ev[0][1]["measured_w"], ev[0][1]["limit_w"]), (8800, 4200))
        # Values older than what was judged change nothing; back under the cap
        # it complies again.
        push("old", [(t0 - 600, [9999])])
        push("under", [(t0 + 4, [4300])])
        self.assertEqual(state()["compliance"]["state"], "compliant")
        self.assertEqual(len(events("installation.compliant")), 1)
        self.sys.clsmd.request("DELETE", "/v1/requests/" + rid, token=self.tokens[VNB])

    def test_old_values_are_condensed_to_hours(self):
        """Values older than meter.retention_days (1 here) become one value
        per hour: a register's last, a power's mean; recent ones stay."""
        gw, mp = self.gws[1], self.mp[1]
        base = (int(time.time()) // 3600 - 72) * 3600  # three days back, on the hour
        entries = [(base + 900 * q, [1000 + q, 10, 400 * (q + 1)]) for q in range(8)]
        recent = quarter(time.time(), 12)
        # A second profile with the register in another scaler within the
        # first hour: condensed with the rest, the last value wins.
        doc = document(gw, [(mp, "electricity", ELEC, entries + [(recent, [2000, 11, 5])], 900),
                            (mp, "electricity", [("1-0:1.8.0", 0, 30)], [(base + 1860, [100])],
                             None)], doc_id="retention")
        doc = doc.replace("</ProfileGeneric></MeteringPoint>\n<MeteringPoint id='%s' meter='M-%s'"
                          " medium='electricity'>" % (mp, mp[-6:]), "</ProfileGeneric>", 1)
        status, ans = self.post(gw, self.sign(gw, doc))
        self.assertEqual((status, ans["stored"]), (201, 28), ans)

        def rows():  # (res, count) of the two old hours, and of the recent quarter
            with sqlite3.connect("file:%s?mode=ro" % self.sys.clsmd.db, uri=True) as db:
                q = ("SELECT res, count(*) FROM readings WHERE point = ? AND time >= ? AND"
                     " time < ? GROUP BY res ORDER BY res")
                return (db.execute(q, (mp, base * 1000, (base + 7200) * 1000)).fetchall(),
                        db.execute(q, (mp, recent * 1000, (recent + 900) * 1000)).fetchall())
        deadline = time.time() + 30
        while rows() != ([(3600, 6)], [(0, 3)]):
            self.assertLess(time.time(), deadline, rows())
            time.sleep(0.2)
        r = self.readings(mp, **{"from": iso(base), "to": iso(base + 7200)}).json()["items"]
        got = {(i["obis"], i["time"][:19]): (i["value"], i["count"]) for i in r}
        h0, h1 = iso(base)[:19], iso(base + 3600)[:19]
        self.assertEqual(got, {("1-0:1.8.0", h0): (1003, 5), ("1-0:1.8.0", h1): (1007, 4),
                               ("1-0:2.8.0", h0): (10, 4), ("1-0:2.8.0", h1): (10, 4),
                               ("1-0:1.7.0", h0): (1000, 4), ("1-0:1.7.0", h1): (2600, 4)})
        # The store still takes everything else (the condensing never broke
        # the shared commit).
        t = quarter(time.time(), 13)
        doc = document(gw, [(mp, "electricity", ELEC[:1], [(t, [3000])], 900)],
                       doc_id="after-retention")
        self.assertEqual(self.post(gw, self.sign(gw, doc))[0], 201)
        # The recent quarter hour is as it was sent.
        r = self.readings(mp, **{"from": iso(recent), "to": iso(recent + 900)}).json()["items"]
        self.assertEqual({i["obis"]: i["value"] for i in r},
                         {"1-0:1.8.0": 2000, "1-0:2.8.0": 11, "1-0:1.7.0": 5})

    def test_forwarded_to_the_suppliers_webhook(self):
        """Star-shaped forwarding: the supplier's webhook subscription gets
        the values of its metering point, and nothing of another one's."""
        got = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            r = self.sys.clsmd.request("POST", "/v1/webhooks", token=self.tokens[LF], body={
                "url": "http://127.0.0.1:%d/hook" % httpd.server_address[1],
                "kinds": ["meter_data."]})
            self.assertEqual(r.status, 201, r)
            hook = r.json()["id"]
            t = quarter(time.time(), 40)
            for gw, mp, doc_id in ((self.gws[0], self.mp[0], "hook-mine"),
                                   (self.gws[1], self.mp[1], "hook-other")):
                doc = document(gw, [(mp, "electricity", ELEC, [(t, [50, 5, 500])], 900)],
                               doc_id=doc_id)
                self.assertEqual(self.post(gw, self.sign(gw, doc))[0], 201)
            deadline = time.time() + 20
            while not any(e["payload"]["document"] == "hook-mine" for b in got for e in b):
                self.assertLess(time.time(), deadline, got)
                time.sleep(0.1)
            time.sleep(0.5)
            events = [e for batch in got for e in batch]
            self.assertEqual({e["payload"]["document"] for e in events}, {"hook-mine"})
            ev = events[0]
            self.assertEqual(ev["kind"], "meter_data.values")
            self.assertEqual(ev["payload"]["metering_point"], self.mp[0])
            self.assertEqual({v["obis"]: v["value"] for v in ev["payload"]["values"]},
                             {"1-0:1.8.0": 50, "1-0:2.8.0": 5, "1-0:1.7.0": 500})
            self.sys.clsmd.request("DELETE", "/v1/webhooks/" + hook, token=self.tokens[LF])
        finally:
            httpd.shutdown()

    def test_listener_takes_only_meter_data(self):
        cert, key = self.keys[self.gws[0]]
        p = subprocess.run(["curl", "-s", "--tlsv1.2", "--tls-max", "1.2", "--curves",
                            "brainpoolP256r1", "--cert", cert, "--key", key, "--cacert",
                            os.path.join(self.sys.pki, "emt-chain.pem"), "-w", " %{http_code}",
                            "https://127.0.0.1:%d/v1/meter-data" % self.sys.meter_port],
                           capture_output=True, timeout=30)
        self.assertTrue(p.stdout.decode().endswith(" 405"), p.stdout)


class SimulatorPushTest(unittest.TestCase):
    """The gateway simulator posts its meters' values by itself: every
    gateway's electricity meter (of its installation's metering point) and,
    for some households, a water, gas or heat meter."""

    @classmethod
    def setUpClass(cls):
        cls.sys = clsmtest.System(gateways=3, prefix="MSP", meter_period_s=1)

    @classmethod
    def tearDownClass(cls):
        MeterDataTest.tearDownClass.__func__(cls)

    def test_gateways_push_their_meters(self):
        deadline = time.time() + 30
        while time.time() < deadline and self.sys.sim_stats()["meter_pushes_ok"] < 9:
            time.sleep(0.2)
        st = self.sys.sim_stats()
        self.assertGreaterEqual(st["meter_pushes_ok"], 9, st)
        self.assertEqual(st["meter_pushes_failed"], 0, st)
        for inst in self.sys.doc["installations"]:
            r = self.sys.clsmd.request("GET", "/v1/metering-points/%s/readings?resolution=1h" %
                                       inst["metering_point"])
            self.assertEqual(r.status, 200, r)
            units = {i["obis"]: i["unit"] for i in r.json()["items"]}
            self.assertEqual(units, {"1-0:1.8.0": "Wh", "1-0:2.8.0": "Wh", "1-0:1.7.0": "W",
                                     "1-0:2.7.0": "W"})
        # The first gateway's household also has a water meter.
        water = "DE0000000000000000W" + self.sys.doc["smgws"][0]["id"]
        r = self.sys.clsmd.request("GET", "/v1/metering-points/%s/readings" % water)
        self.assertEqual(r.status, 200, r)
        self.assertEqual({i["unit"] for i in r.json()["items"]}, {"m3"})
        # Registers only grow from one push to the next (the stored values:
        # a 15-minute bucket shows only its last one).
        inst = self.sys.doc["installations"][0]
        with sqlite3.connect("file:%s?mode=ro" % self.sys.clsmd.db, uri=True) as db:
            values = [v for (v,) in db.execute(
                "SELECT value FROM readings WHERE point = ? AND obis = '1-0:1.8.0' ORDER BY time",
                (inst["metering_point"],))]
        self.assertGreaterEqual(len(values), 3)
        self.assertEqual(values, sorted(values))


if __name__ == "__main__":
    unittest.main(verbosity=2)
