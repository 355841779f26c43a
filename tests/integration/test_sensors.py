"""Sensors behind the gateways (docs/protocols/lpc-mqtt.md §6, src/meter/
sensors.h): clsmd keeps a channel open to every device of kind "sensor",
reads the telemetry the fleet simulator's sensor models send through it,
and raises alarms as events for the parties of the household: smoke, a
door open too long, a fill level above its threshold. A quiet sensor raises
none."""
import json
import os
import sqlite3
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import clsmtest  # noqa: E402

LF = "9900000000033"


class SensorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        gw = ["ESNS%010d" % i for i in range(1, 5)]
        cls.sensor = ["SN-" + g for g in gw]
        cls.sys = clsmtest.System(
            gateways=4, prefix="SNS", sensors=4,
            smgw_args=("--telemetry", "1", "--fault", "smoke:" + cls.sensor[0],
                       "--fault", "door:" + cls.sensor[1],
                       "--fault", "fill:%s:95" % cls.sensor[2]),
            clsmd_args=("--set", "sensor.door_open_alarm_s=2", "--set", "sensor.rescan_s=1"))
        inst = cls.sys.doc["installations"][0]["id"]
        r = cls.sys.clsmd.request("POST", "/v1/import", body={
            "parties": [{"id": LF, "name": "Lieferant", "role": "lf"}],
            "assignments": [{"party": LF, "installation": inst, "rights": ["read"]}]})
        assert r.status == 200, r

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

    def events(self, kind):
        with sqlite3.connect("file:%s?mode=ro" % self.sys.clsmd.db, uri=True) as db:
            return [(s, set(a.split()), json.loads(p)) for s, a, p in db.execute(
                "SELECT subject, audience, payload FROM events WHERE kind = ? ORDER BY seq",
                (kind,))]

    def test_alarms_of_smoke_door_and_fill_level(self):
        want = {("device:" + self.sensor[0], "smoke"), ("device:" + self.sensor[1], "door_open"),
                ("device:" + self.sensor[2], "fill_level")}
        deadline = time.time() + 60
        while True:
            got = {(s, p["alarm"]) for s, _, p in self.events("sensor.alarm")}
            if want <= got or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(got, want)  # the quiet fourth sensor raises nothing
        alarms = {s: (a, p) for s, a, p in self.events("sensor.alarm")}
        # The household's supplier hears of its smoke alarm; other households'
        # alarms are for the admin only.
        self.assertEqual(alarms["device:" + self.sensor[0]][0], {LF})
        self.assertEqual(alarms["device:" + self.sensor[1]][0], set())
        self.assertEqual(alarms["device:" + self.sensor[2]][1]["value"], 95)
        door = alarms["device:" + self.sensor[1]][1]
        self.assertGreaterEqual(clsmtest_seconds(door["at"]) - clsmtest_seconds(door["since"]), 2)
        # Every sensor's channel is kept open, without any command.
        chans = self.sys.clsmd.request("GET", "/v1/channels").json()["items"]
        open_devices = {c["device"] for c in chans if c["state"] == "open"}
        self.assertTrue(set(self.sensor) <= open_devices, open_devices)
        self.assertEqual(self.events("sensor.cleared"), [])


def clsmtest_seconds(s):
    import calendar
    base, _, frac = s.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + \
        (int(frac) / 10 ** len(frac) if frac else 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
