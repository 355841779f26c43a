"""clsmctl against a real clsmd: import (JSON and CSV), get, set-light,
summary, token and me; readable tables, --json, and clear errors."""
import json
import os
import socket
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import clsmtest  # noqa: E402
from clsmtest import ctl  # noqa: E402

MUSTERSTADT = os.path.join(clsmtest.SOURCE_DIR, "data", "musterstadt", "musterstadt.json")


class ClsmctlTest(clsmtest.ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        r = ctl(cls.server, "import", MUSTERSTADT)
        if r.returncode != 0:
            raise AssertionError(r.stderr)
        cls.import_output = r.stdout
        with open(MUSTERSTADT) as f:
            cls.doc = json.load(f)

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        p = os.path.join(self.tmp.name, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def test_import_summary_table(self):
        lines = self.import_output.splitlines()
        self.assertEqual(lines[0].split(), ["kind", "created", "updated", "unchanged"])
        counts = {l.split()[0]: tuple(int(x) for x in l.split()[1:]) for l in lines[1:]}
        for kind, items in self.doc.items():
            self.assertEqual(counts[kind], (len(items), 0, 0), kind)

    def test_reimport_updates(self):
        r = ctl(self.server, "--json", "import", MUSTERSTADT)
        self.assertEqual(r.returncode, 0, r.stderr)
        res = json.loads(r.stdout)["imported"]
        # Other tests of this class may have changed a few; the rest is unchanged.
        n = len(self.doc["installations"])
        self.assertEqual(res["installations"]["created"], 0)
        self.assertEqual(res["installations"]["updated"] + res["installations"]["unchanged"], n)
        self.assertGreater(res["installations"]["unchanged"], n - 10)

    def test_get_list_with_filters(self):
        feeder = self.doc["segments"][-1]["id"]
        want = sorted(i["id"] for i in self.doc["installations"]
                      if i["segment"] == feeder and i["kind"] == "heat_pump")
        r = ctl(self.server, "get", "installations", "segment=" + feeder, "kind=heat_pump")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = r.stdout.splitlines()
        self.assertEqual(rows[0].split()[:3], ["id", "device", "output"])
        self.assertEqual([row.split()[0] for row in rows[1:]], want)
        self.assertIn("%d installations" % len(want), r.stderr)
        r = ctl(self.server, "--json", "get", "installations", "segment=" + feeder,
                "kind=heat_pump")
        self.assertEqual(sorted(i["id"] for i in json.loads(r.stdout)), want)

    def test_get_follows_pages(self):
        r = ctl(self.server, "--json", "get", "assignments")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(json.loads(r.stdout)), len(self.doc["assignments"]))

    def test_get_one(self):
        inst = self.doc["installations"][0]
        r = ctl(self.server, "get", "installation", inst["id"])
        self.assertEqual(r.returncode, 0, r.stderr)
        fields = dict(line.split(None, 1) for line in r.stdout.splitlines()[1:])
        self.assertEqual(fields["rated_power_w"].strip(), str(inst["rated_power_w"]))
        r = ctl(self.server, "get", "installations", "NOPE-1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("404", r.stderr)
        self.assertIn("NOPE-1", r.stderr)

    def test_set_light(self):
        feeder = self.doc["segments"][-1]["id"]
        r = ctl(self.server, "set-light", feeder, "yellow", "--reason", "90 % load")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("%s is yellow since" % feeder, r.stdout)
        seg = self.server.request("GET", "/v1/segments/" + feeder).json()
        self.assertEqual((seg["traffic_light"], seg["light_reason"]), ("yellow", "90 % load"))
        r = ctl(self.server, "set-light", feeder, "purple")
        self.assertEqual(r.returncode, 1)
        self.assertIn("422", r.stderr)
        ctl(self.server, "set-light", feeder, "green", check=True)

    def test_summary(self):
        """The totals equal a count over every installation the API lists
        (other tests of this class may have added some)."""
        r = ctl(self.server, "summary")
        self.assertEqual(r.returncode, 0, r.stderr)
        insts = json.loads(ctl(self.server, "--json", "get", "installations", check=True).stdout)
        self.assertGreaterEqual(len(insts), len(self.doc["installations"]))
        rows = [l.split() for l in r.stdout.splitlines()]
        header, total = rows[0], rows[-1]
        self.assertEqual(header[:2], ["segment", "level"])
        self.assertEqual(total[0], "total")
        self.assertEqual(int(total[-1]), len(insts))
        by_kind = {}
        for i in insts:
            by_kind[i["kind"]] = by_kind.get(i["kind"], 0) + 1
        for kind, n in by_kind.items():
            self.assertEqual(int(total[header.index(kind) - 1]), n, kind)
        self.assertEqual(int(total[header.index("§14a") - 1]), sum(1 for i in insts if i["sec14a"]))
        # One row per segment with installations; its total is its count.
        feeder = self.doc["smgws"][0]["segment"]
        row = next(r for r in rows if r[0] == feeder)
        self.assertEqual(int(row[-1]), sum(1 for i in insts if i["segment"] == feeder))

    def test_token_and_me(self):
        lf = next(p for p in self.doc["parties"] if p["role"] == "lf")
        r = ctl(self.server, "token", "create", lf["id"], "--label", "erp")
        self.assertEqual(r.returncode, 0, r.stderr)
        token = r.stdout.strip()
        self.assertTrue(token.startswith("clsm_"))
        r = ctl(self.server, "me", token=token)
        self.assertEqual(r.stdout.strip(), "party %s, role lf" % lf["id"])
        r = ctl(self.server, "--json", "get", "installations", token=token)
        mine = {a["installation"] for a in self.doc["assignments"] if a["party"] == lf["id"]}
        self.assertEqual({i["id"] for i in json.loads(r.stdout)}, mine)
        r = ctl(self.server, "token", "create", "9999999999999")
        self.assertEqual(r.returncode, 1)
        self.assertIn("404", r.stderr)

    def test_csv_import(self):
        dev = self.doc["devices"][0]
        seg = self.doc["smgws"][0]["segment"]
        p = self.write("installations.csv",
                       "id;device;output;kind;direction;rated_power_w;sec14a;segment\n"
                       "CSV-1;%s;7;heat_pump;consumption;8000;true;%s\n"
                       "CSV-2;%s;8;pv;production;5000;;%s\n" % (dev["id"], seg, dev["id"], seg))
        r = ctl(self.server, "import", p)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("installations", r.stdout)
        got = self.server.request("GET", "/v1/installations/CSV-2").json()
        self.assertEqual((got["kind"], got["sec14a"], got["output"]), ("pv", False, 8))

    def test_csv_errors_name_the_line(self):
        dev = self.doc["devices"][0]
        seg = self.doc["smgws"][0]["segment"]
        p = self.write("installations.csv",
                       "id,device,output,kind,direction,rated_power_w,segment\n"
                       "CSV-3,%s,9,wallbox,consumption,11000,%s\n"
                       "\n"
                       "CSV-4,%s,10,wallbox,consumption,0,%s\n" % (dev["id"], seg, dev["id"], seg))
        r = ctl(self.server, "import", p)
        self.assertEqual(r.returncode, 1)
        self.assertIn("installations.csv:4: rated_power_w", r.stderr)
        self.assertIn("422", r.stderr)
        self.assertEqual(self.server.request("GET", "/v1/installations/CSV-3").status, 404)
        p = self.write("installations.csv", "id,colour\nx,red\n")
        r = ctl(self.server, "import", p)
        self.assertEqual(r.returncode, 2)
        self.assertIn("colour", r.stderr)
        p = self.write("things.csv", "id\nx\n")
        r = ctl(self.server, "import", p)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--kind", r.stderr)
        r = ctl(self.server, "import", p, "--kind", "parties")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/parties/0", r.stderr)

    def test_json_import_error(self):
        p = self.write("bad.json", json.dumps({"parties": [{"id": "1", "name": "x", "role": "lf"}]}))
        r = ctl(self.server, "import", p)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/parties/0/id", r.stderr)
        p = self.write("broken.json", "{")
        r = ctl(self.server, "import", p)
        self.assertEqual(r.returncode, 1)
        self.assertIn("400", r.stderr)

    def test_usage_errors(self):
        for args, needle in [((), "usage"), (("frobnicate",), "unknown command"),
                             (("get",), "needs a KIND"), (("get", "widgets"), "unknown kind"),
                             (("import",), "needs a FILE"),
                             (("import", "/nonexistent.json"), "No such file"),
                             (("set-light", "x"), "needs SEGMENT"),
                             (("--bogus", "me"), "unknown option")]:
            r = ctl(self.server, *args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(needle, r.stderr, args)

    def test_auth_errors(self):
        r = ctl(self.server, "me", token="clsm_not-a-real-token")
        self.assertEqual(r.returncode, 1)
        self.assertIn("401", r.stderr)
        r = ctl(self.server, "get", "parties", token=None)
        self.assertEqual(r.returncode, 1)
        self.assertIn("401", r.stderr)


class UnreachableTest(clsmtest.unittest.TestCase):
    def test_unreachable_exits_3(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        r = clsmtest.subprocess.run([clsmtest.CLSMCTL, "--url", "http://127.0.0.1:%d" % port,
                                     "me"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 3)
        self.assertIn("127.0.0.1:%d" % port, r.stderr)
        r = clsmtest.subprocess.run([clsmtest.CLSMCTL, "--url", "ftp://x", "me"],
                                    capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    clsmtest.main()
