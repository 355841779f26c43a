"""clsm-gwa-sim over real mutual TLS and real UDP (docs/protocols/gwa.md,
docs/protocols/wakeup.md): channel requests from EMTs, entitlement checks,
signed wake-ups caught on a UDP socket of the test's own, order fetches by
gateways, status polling, retries and failures, every fault flag, the
registry loader and SIGTERM.

Python's ssl module speaks brainpool only in TLS 1.2 and only when the curve
is named (set_ecdh_curve), so the clients here do that for the default
brainpoolP256r1 PKI; one class runs on a prime256v1 PKI with TLS 1.3."""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import clsmtest  # noqa: E402

GWA_SIM = os.path.join(clsmtest.BUILD_DIR, "clsm-gwa-sim")
CLSM_PKI = os.path.join(clsmtest.BUILD_DIR, "clsm-pki")
PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----\n.*?-----END \1-----\n", re.S)
SANITIZER = ("AddressSanitizer", "runtime error:", "LeakSanitizer")
FAILED_REASON = "the gateway did not answer the wake-up"

NGW = 50  # gateways of GWA-01: EABC0000000001 .. EABC0000000050
FOREIGN = "EABC0000000099"  # a gateway of GWA-02
ENDPOINT = "127.0.0.1:4443"


def gw_id(n):
    return "EABC%010d" % n


def until(seconds=600):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + seconds))


def registry_doc():
    """A registry import document in the shape of data/musterstadt: two
    GWAs, one Steuerbox per gateway, a second device behind gateway 2, and
    sections the simulator must skip."""
    doc = {
        "parties": [{"id": "9907100000019", "name": "Netz", "role": "vnb"}],
        "segments": [{"id": "S", "name": "S \"quoted\" [x] {y}", "level": "substation",
                      "vnb": "9907100000019"}],
        "gwas": [{"id": "GWA-01", "name": "A", "endpoint": "https://127.0.0.1:1",
                  "max_concurrent": 8},
                 {"id": "GWA-02", "name": "B", "endpoint": "https://127.0.0.1:2",
                  "max_concurrent": 8}],
        "smgws": [{"id": gw_id(n), "gwa": "GWA-01", "segment": "S"} for n in range(1, NGW + 1)],
        "devices": [{"id": "SB-%05d" % n, "smgw": gw_id(n), "kind": "steuerbox",
                     "driver": "lpc-mqtt"} for n in range(1, NGW + 1)],
        "installations": [{"id": "HP-1", "device": "SB-00001", "output": 0,
                           "kind": "heat_pump", "rated_power_w": 9000, "sec14a": True}],
        "assignments": [{"party": "9907100000019", "installation": "HP-1",
                         "rights": ["read", "control"]}],
    }
    doc["smgws"].append({"id": FOREIGN, "gwa": "GWA-02", "segment": "S"})
    doc["devices"].append({"id": "SB-00099", "smgw": FOREIGN, "kind": "steuerbox"})
    doc["devices"].append({"id": "EMS-00002", "smgw": gw_id(2), "kind": "energy_manager"})
    return doc


class Pki:
    """A test PKI made by clsm-pki, with one cert/key file pair per client."""

    def __init__(self, curve):
        self.tmp = tempfile.TemporaryDirectory(prefix="gwa-sim-pki-")
        self.dir = self.tmp.name
        self.curve = curve
        ids = os.path.join(self.dir, "ids")
        with open(ids, "w") as f:
            f.write("".join(gw_id(n) + "\n" for n in range(1, NGW + 1)) + FOREIGN + "\n")
        self._run("init", self.dir, "--curve", curve, "--gwa", "GWA-01", "--emt", "clsmd",
                  "--emt", "other", "--emt", "intruder")
        self._run("smgw", self.dir, "--ids", ids)
        with open(os.path.join(self.dir, "smgw-ca.crt")) as f:
            ca = f.read()
        with open(os.path.join(self.dir, "smgw", "gateways.pem")) as f:
            blocks = [(m.group(1), m.group(0)) for m in PEM.finditer(f.read())]
        os.makedirs(os.path.join(self.dir, "gw"))
        # The bundle is in the order of the ids file: certificate, then key.
        cns = [gw_id(n) for n in range(1, NGW + 1)] + [FOREIGN]
        self.assertion_cn(blocks[0][1], cns[0])
        self.assertion_cn(blocks[-2][1], cns[-1])
        for cn, (kc, cert), (kk, key) in zip(cns, blocks[0::2], blocks[1::2]):
            assert kc == "CERTIFICATE" and kk == "PRIVATE KEY", (kc, kk)
            with open(os.path.join(self.dir, "gw", cn + ".crt"), "w") as f:
                f.write(cert + ca)  # the leaf and its sub-CA, as TLS clients should send
            with open(os.path.join(self.dir, "gw", cn + ".key"), "w") as f:
                f.write(key)
            with open(os.path.join(self.dir, "gw", cn + ".leaf"), "w") as f:
                f.write(cert)  # the leaf alone, as the gateway fleet simulator sends
        self._ctx = {}

    @staticmethod
    def assertion_cn(cert, cn):
        out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=cert,
                             capture_output=True, text=True, check=True).stdout
        assert re.search(r"CN ?= ?%s$" % cn, out.strip()), (cn, out)

    @staticmethod
    def _run(*args):
        r = subprocess.run([CLSM_PKI] + list(args), capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("clsm-pki %s: %s" % (" ".join(args), r.stderr))

    def files(self, who):
        """Certificate and key of 'who': an EMT name, a gateway id, "gwa", or
        "leaf:" and a gateway id for a certificate file without the sub-CA."""
        if who.startswith("leaf:"):
            base = os.path.join(self.dir, "gw", who[5:])
            return base + ".leaf", base + ".key"
        if who == "gwa":
            base = os.path.join(self.dir, "gwa", "GWA-01")
        elif re.match(r"E[A-Z]{3}\d{10}$", who):
            base = os.path.join(self.dir, "gw", who)
        else:
            base = os.path.join(self.dir, "emt", who)
        return base + ".crt", base + ".key"

    def context(self, who):
        if who not in self._ctx:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(os.path.join(self.dir, "root.crt"))
            ctx.load_cert_chain(*self.files(who))
            ctx.check_hostname = False
            if self.curve.startswith("brainpool"):
                ctx.maximum_version = ssl.TLSVersion.TLSv1_2
                ctx.set_ecdh_curve(self.curve)
            self._ctx[who] = ctx
        return self._ctx[who]

    def cleanup(self):
        self.tmp.cleanup()


RUNNING = []  # every simulator started, so that none outlives the tests


class Sim:
    """One clsm-gwa-sim process with its log and a UDP socket of the test's
    own as the wake-up target."""

    def __init__(self, pki, args=(), registry=None, workdir=None):
        self.pki = pki
        self.workdir = workdir or pki.dir
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.registry = registry or os.path.join(pki.dir, "registry.json")
        if registry is None and not os.path.exists(self.registry):
            with open(self.registry, "w") as f:
                json.dump(registry_doc(), f, indent=1)
        fd, self.logpath = tempfile.mkstemp(prefix="gwa-sim-", suffix=".log", dir=self.workdir)
        os.close(fd)
        self.cmd = [GWA_SIM, "--id", "GWA-01", "--pki", pki.dir, "--listen", "127.0.0.1:0",
                    "--registry", self.registry,
                    "--wakeup", "127.0.0.1:%d" % self.udp.getsockname()[1],
                    "--log-level", "debug"] + list(args)
        self.proc = None
        self.port = None

    def start(self, timeout=30):
        self._log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=self._log)
        RUNNING.append(self)
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(r'msg="gwa listening" addr=127\.0\.0\.1:(\d+)', self.log())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("clsm-gwa-sim exited with %d:\n%s"
                                   % (self.proc.returncode, self.log()))
            time.sleep(0.02)
        self.proc.kill()
        raise RuntimeError("clsm-gwa-sim did not start:\n" + self.log())

    def run_to_exit(self, timeout=30):
        """Run (for start-up failures) and return (exit status, log)."""
        with open(self.logpath, "ab") as log:
            rc = subprocess.run(self.cmd, stdout=log, stderr=log, timeout=timeout).returncode
        self.udp.close()
        log = self.log()
        for bad in SANITIZER:
            if bad in log:
                raise AssertionError("sanitizer report in the clsm-gwa-sim log:\n" + log[-8000:])
        return rc, log

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("clsm-gwa-sim did not stop within %ds" % timeout)
            finally:
                self._log.close()
            self.proc = None
        self.udp.close()
        log = self.log()
        for bad in SANITIZER:
            if bad in log:
                raise AssertionError("sanitizer report in the clsm-gwa-sim log:\n" + log[-8000:])
        return rc

    # --- HTTPS -------------------------------------------------------------------

    def conn(self, who="clsmd", timeout=10):
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                           context=self.pki.context(who))

    def request(self, method, path, body=None, who="clsmd", raw=None,
                content_type="application/json", conn=None):
        data = json.dumps(body).encode() if body is not None else raw
        headers = {"Content-Type": content_type} if data is not None and content_type else {}
        c = conn or self.conn(who)
        try:
            c.request(method, path, body=data, headers=headers)
            r = c.getresponse()
            return clsmtest.Response(r.status, r.getheaders(), r.read())
        finally:
            if conn is None:
                c.close()

    def channel_requests(self, requests, emt="clsmd", who=None, conn=None):
        return self.request("POST", "/v1/channel-requests", {"emt": emt, "requests": requests},
                            who=who or emt, conn=conn)

    def status(self, ids, emt="clsmd", who=None):
        return self.request("POST", "/v1/channel-requests/status", {"emt": emt, "ids": ids},
                            who=who or emt)

    def orders(self, gateway):
        return self.request("GET", "/v1/orders", who=gateway)

    def stats(self):
        r = self.request("GET", "/v1/stats")
        assert r.status == 200, r
        return r.json()

    # --- UDP ---------------------------------------------------------------------

    def drain(self):
        self.udp.setblocking(False)
        try:
            while True:
                self.udp.recv(512)
        except BlockingIOError:
            pass
        finally:
            self.udp.setblocking(True)

    def datagrams(self, count, timeout=5.0, smgw=None):
        """Up to 'count' decoded wake-ups (for 'smgw' only, when given)."""
        out = []
        deadline = time.time() + timeout
        while len(out) < count and time.time() < deadline:
            self.udp.settimeout(max(0.01, deadline - time.time()))
            try:
                data = self.udp.recv(512)
            except socket.timeout:
                break
            w = decode_wakeup(data)
            if smgw is None or w["smgw"] == smgw:
                out.append(w)
        return out


def decode_wakeup(data):
    """The fixed fields of a version-1 wake-up (docs/protocols/wakeup.md)."""
    assert len(data) <= 256, len(data)
    n = data[19]
    ts, = struct.unpack(">Q", data[20 + n:28 + n])
    siglen, = struct.unpack(">H", data[44 + n:46 + n])
    return {"raw": data, "magic": data[0:4], "version": data[4],
            "smgw": data[5:19].decode("ascii"), "gwa": data[20:20 + n].decode("ascii"),
            "ts_ms": ts, "nonce": data[28 + n:44 + n], "siglen": siglen,
            "signed": data[:44 + n], "sig": data[46 + n:]}


def req(n, cls=None, valid=600, endpoint=ENDPOINT):
    return {"smgw": gw_id(n) if isinstance(n, int) else n, "cls": cls or "SB-%05d" % n,
            "endpoint": endpoint, "valid_until": until(valid)}


def wait_for(fn, timeout=10.0, step=0.05):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(step)


PKIS = {}


def pki_for(curve):
    """One PKI per curve for the whole module (making one takes a second)."""
    if curve not in PKIS:
        PKIS[curve] = Pki(curve)
    return PKIS[curve]


def tearDownModule():
    for sim in RUNNING:
        if sim.proc is not None and sim.proc.poll() is None:
            sim.proc.kill()
            sim.proc.wait()
    for p in PKIS.values():
        p.cleanup()


class SimTest(unittest.TestCase):
    """Each test class starts the simulator it needs (none when sim_args is
    None); the log goes to the PKI directory."""

    curve = "brainpoolP256r1"
    sim_args = ()

    @classmethod
    def setUpClass(cls):
        cls.pki = pki_for(cls.curve)
        cls.sim = Sim(cls.pki, cls.sim_args).start() if cls.sim_args is not None else None

    @classmethod
    def tearDownClass(cls):
        if cls.sim is not None:
            rc = cls.sim.stop()
            if rc != 0:
                raise AssertionError("clsm-gwa-sim exited with %r:\n%s"
                                     % (rc, cls.sim.log()[-4000:]))

    def assertProblem(self, r, status, pointer=None):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("Content-Type"), "application/problem+json", r)
        p = r.json()
        self.assertEqual(p["status"], status, p)
        self.assertTrue(p["type"].startswith("urn:clsm:problem:"), p)
        self.assertTrue(p.get("detail"), p)
        if pointer is not None:
            self.assertEqual(p.get("pointer"), pointer, p)
        return p

    def accepted_id(self, r, i=0):
        self.assertEqual(r.status, 200, r)
        res = r.json()["results"][i]
        self.assertEqual(res["status"], "accepted", res)
        self.assertRegex(res["id"], r"^cr-GWA-01-[1-9]\d*$")
        return res["id"]

    def state_of(self, rid, emt="clsmd"):
        r = self.sim.status([rid], emt=emt)
        self.assertEqual(r.status, 200, r)
        return r.json()["results"][0]


class ChannelFlowTest(SimTest):
    """Default timings; EMTs clsmd and other are entitled, SB-00003 is denied."""

    sim_args = ("--emt", "clsmd", "--emt", "other", "--deny", "SB-00003")

    def setUp(self):
        self.sim.drain()

    def test_accept_wake_fetch_deliver(self):
        t0 = time.time()
        rid = self.accepted_id(self.sim.channel_requests([req(1)]))
        w = self.sim.datagrams(1, smgw=gw_id(1))
        self.assertEqual(len(w), 1, "no wake-up arrived")
        w = w[0]
        self.assertEqual(w["magic"], b"CLWU")
        self.assertEqual(w["version"], 1)
        self.assertEqual(w["smgw"], gw_id(1))
        self.assertEqual(w["gwa"], "GWA-01")
        self.assertLess(abs(w["ts_ms"] / 1000.0 - t0), 5.0)
        self.assertNotEqual(w["nonce"], bytes(16))
        self.assertEqual(len(w["sig"]), w["siglen"])
        self.assertEqual(w["sig"][0], 0x30)  # DER SEQUENCE
        self.assertEqual(w["sig"][1], w["siglen"] - 2)
        self.verify_signature(w)
        self.assertEqual(self.state_of(rid)["status"], "woken")

        r = self.sim.orders(gw_id(1))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "application/json")
        orders = r.json()["orders"]
        self.assertEqual(len(orders), 1, orders)
        self.assertEqual(orders[0]["id"], rid)
        self.assertEqual(orders[0]["cls"], "SB-00001")
        self.assertEqual(orders[0]["endpoint"], ENDPOINT)
        self.assertRegex(orders[0]["valid_until"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        # handed out once only
        self.assertEqual(self.sim.orders(gw_id(1)).json(), {"orders": []})
        self.assertEqual(self.state_of(rid), {"id": rid, "status": "delivered"})
        self.assertGreaterEqual(self.sim.stats()["orders_delivered"], 1)

    def verify_signature(self, w):
        if shutil.which("openssl") is None:
            return
        d = tempfile.mkdtemp(dir=self.pki.dir)
        pub = subprocess.run(["openssl", "x509", "-in", self.pki.files("gwa")[0], "-pubkey",
                              "-noout"], capture_output=True, check=True).stdout
        for name, data in (("pub.pem", pub), ("data", w["signed"]), ("sig", w["sig"])):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", os.path.join(d, "pub.pem"),
                            "-signature", os.path.join(d, "sig"), os.path.join(d, "data")],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_gateway_sending_only_its_leaf(self):
        rid = self.accepted_id(self.sim.channel_requests([req(46)]))
        r = self.sim.request("GET", "/v1/orders", who="leaf:" + gw_id(46))
        self.assertEqual(r.status, 200, r)
        self.assertEqual([o["id"] for o in r.json()["orders"]], [rid])

    def test_one_wakeup_for_all_orders_of_a_gateway(self):
        r = self.sim.channel_requests([req(2), req(2, "EMS-00002")])
        ids = [self.accepted_id(r, 0), self.accepted_id(r, 1)]
        self.assertEqual(len(self.sim.datagrams(1, smgw=gw_id(2))), 1)
        self.assertEqual(self.sim.datagrams(1, timeout=0.5, smgw=gw_id(2)), [])
        orders = self.sim.orders(gw_id(2)).json()["orders"]
        self.assertEqual(sorted((o["id"], o["cls"]) for o in orders),
                         sorted(zip(ids, ["SB-00002", "EMS-00002"])))

    def test_refusals_per_request(self):
        r = self.sim.channel_requests([
            req(4),                                  # accepted
            req("EABC0000000098", "SB-00098"),       # no such gateway
            req(FOREIGN, "SB-00099"),                # another GWA's gateway
            req(5, "SB-77777"),                      # unknown CLS
            req(5, "SB-00006"),                      # CLS behind another gateway
            req(3),                                  # denied CLS
            req(6, valid=-60),                       # void already
        ])
        self.assertEqual(r.status, 200, r)
        res = r.json()["results"]
        self.assertEqual(len(res), 7)
        self.assertEqual(res[0]["status"], "accepted")
        want = [None, (404, "gateway EABC0000000098 is not administered here"),
                (404, "gateway %s is not administered here" % FOREIGN),
                (404, "CLS SB-77777 is not behind gateway EABC0000000005"),
                (404, "CLS SB-00006 is not behind gateway EABC0000000005"),
                (403, "EMT clsmd is not entitled to reach CLS SB-00003 through EABC0000000003"),
                (422, None)]
        for got, exp in zip(res[1:], want[1:]):
            self.assertEqual(got["status"], "rejected", got)
            self.assertEqual(got["code"], exp[0], got)
            if exp[1]:
                self.assertEqual(got["reason"], exp[1])
        self.assertIn("valid_until", res[6]["reason"])
        # refused requests leave no order and wake nobody
        self.assertEqual(self.sim.orders(gw_id(3)).json(), {"orders": []})
        self.assertEqual(self.sim.orders(gw_id(5)).json(), {"orders": []})
        self.assertEqual(self.sim.orders(gw_id(6)).json(), {"orders": []})
        # (other tests' wake-up retries for other gateways may arrive too)
        asked = {gw_id(3), gw_id(4), gw_id(5), gw_id(6), "EABC0000000098", FOREIGN}
        got = {w["smgw"] for w in self.sim.datagrams(10, timeout=1.0)} & asked
        self.assertEqual(got, {gw_id(4)})
        rejected = self.sim.stats()["channel_requests"]["rejected"]
        self.assertGreaterEqual(rejected.get("404", 0), 4)
        self.assertGreaterEqual(rejected.get("403", 0), 1)
        self.assertGreaterEqual(rejected.get("422", 0), 1)

    def test_emt_not_entitled(self):
        r = self.sim.channel_requests([req(7)], emt="intruder")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["results"], [{
            "status": "rejected", "code": 403,
            "reason": "EMT intruder is not entitled to reach CLS SB-00007 through EABC0000000007"}])
        self.assertEqual(self.sim.orders(gw_id(7)).json(), {"orders": []})

    def test_emt_must_match_the_certificate(self):
        before = self.sim.stats()
        p = self.assertProblem(self.sim.channel_requests([req(8)], emt="clsmd", who="other"), 403)
        self.assertIn("other", p["detail"])
        self.assertProblem(self.sim.channel_requests([req(8)], emt="other", who="clsmd"), 403)
        self.assertProblem(self.sim.status(["cr-GWA-01-1"], emt="clsmd", who="other"), 403)
        after = self.sim.stats()
        self.assertEqual(after["channel_requests"], before["channel_requests"])
        self.assertEqual(self.sim.orders(gw_id(8)).json(), {"orders": []})

    def test_certificate_roles(self):
        # a gateway certificate on the EMT routes
        p = self.assertProblem(self.sim.channel_requests([req(9)], emt=gw_id(9), who=gw_id(9)),
                               403)
        self.assertIn("not an EMT certificate", p["detail"])
        self.assertProblem(self.sim.status(["cr-GWA-01-1"], emt=gw_id(9), who=gw_id(9)), 403)
        # the GWA's own certificate is neither
        self.assertProblem(self.sim.channel_requests([req(9)], emt="GWA-01", who="gwa"), 403)
        self.assertProblem(self.sim.request("GET", "/v1/orders", who="gwa"), 403)
        # an EMT certificate on the gateway route
        p = self.assertProblem(self.sim.request("GET", "/v1/orders", who="clsmd"), 403)
        self.assertIn("not a gateway certificate", p["detail"])
        # a gateway administered by another GWA
        p = self.assertProblem(self.sim.orders(FOREIGN), 403)
        self.assertIn("not administered by GWA-01", p["detail"])
        # everyone verified may read health and statistics
        for who in ("clsmd", gw_id(9), "gwa"):
            r = self.sim.request("GET", "/healthz", who=who)
            self.assertEqual((r.status, r.json()), (200, {"status": "ok", "gwa": "GWA-01"}))

    def test_no_client_certificate_no_connection(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(os.path.join(self.pki.dir, "root.crt"))
        ctx.check_hostname = False
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ecdh_curve(self.curve)
        c = http.client.HTTPSConnection("127.0.0.1", self.sim.port, context=ctx, timeout=5)
        with self.assertRaises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
            c.request("GET", "/healthz")
            c.getresponse().read()
        c.close()

    def test_malformed_bodies(self):
        post = lambda raw, ct="application/json": self.sim.request(
            "POST", "/v1/channel-requests", raw=raw, content_type=ct)
        self.assertProblem(post(b"{not json"), 400)
        self.assertProblem(post(b""), 400)
        self.assertProblem(post(b'{"emt": "clsmd", "emt": "x", "requests": []}'), 400)
        self.assertProblem(post(b"[" * 40 + b"]" * 40), 400)
        self.assertProblem(post(json.dumps({"emt": "clsmd", "requests": [req(10)]}).encode(),
                                "text/plain"), 415)
        self.assertProblem(post(b"[]"), 422, "")
        cases = [
            ({"requests": [req(10)]}, "/emt"),
            ({"emt": 7, "requests": [req(10)]}, "/emt"),
            ({"emt": "clsmd"}, "/requests"),
            ({"emt": "clsmd", "requests": []}, "/requests"),
            ({"emt": "clsmd", "requests": {}}, "/requests"),
            ({"emt": "clsmd", "requests": [req(10)] * 1001}, "/requests"),
            ({"emt": "clsmd", "requests": [req(10)], "extra": 1}, "/extra"),
            ({"emt": "clsmd", "requests": [req(10), 5]}, "/requests/1"),
            ({"emt": "clsmd", "requests": [dict(req(10), smgw="EABC1")]}, "/requests/0/smgw"),
            ({"emt": "clsmd", "requests": [dict(req(10), smgw=None)]}, "/requests/0/smgw"),
            ({"emt": "clsmd", "requests": [dict(req(10), cls="bad id")]}, "/requests/0/cls"),
            ({"emt": "clsmd", "requests": [dict(req(10), endpoint="nohost")]},
             "/requests/0/endpoint"),
            ({"emt": "clsmd", "requests": [dict(req(10), endpoint="h:0")]},
             "/requests/0/endpoint"),
            ({"emt": "clsmd", "requests": [dict(req(10), valid_until="tomorrow")]},
             "/requests/0/valid_until"),
            ({"emt": "clsmd", "requests": [dict(req(10), colour="red")]},
             "/requests/0/colour"),
            ({"emt": "clsmd", "requests": [{k: v for k, v in req(10).items() if k != "cls"}]},
             "/requests/0/cls"),
        ]
        for body, pointer in cases:
            with self.subTest(pointer=pointer):
                self.assertProblem(post(json.dumps(body).encode()), 422, pointer)
        # a whole batch is refused for one bad request: nothing was stored
        self.assertEqual(self.sim.orders(gw_id(10)).json(), {"orders": []})
        # over 1 MiB: refused from the head, before the body is sent
        c = self.sim.conn()
        try:
            c.putrequest("POST", "/v1/channel-requests")
            c.putheader("Content-Type", "application/json")
            c.putheader("Content-Length", str((1 << 20) + 1))
            c.endheaders()
            r = c.getresponse()
            self.assertProblem(clsmtest.Response(r.status, r.getheaders(), r.read()), 413)
        finally:
            c.close()
        # the status route checks the same way
        spost = lambda body: self.sim.request("POST", "/v1/channel-requests/status", body)
        self.assertProblem(spost({"emt": "clsmd", "ids": []}), 422, "/ids")
        self.assertProblem(spost({"emt": "clsmd", "ids": ["cr-GWA-01-1", 2]}), 422, "/ids/1")
        self.assertProblem(spost({"emt": "clsmd"}), 422, "/ids")
        self.assertProblem(spost({"ids": ["x"]}), 422, "/emt")
        self.assertProblem(self.sim.request("POST", "/v1/channel-requests/status", raw=b"{"), 400)

    def test_status_polling(self):
        mine = self.accepted_id(self.sim.channel_requests([req(11)]))
        theirs = self.accepted_id(self.sim.channel_requests([req(12)], emt="other"))
        r = self.sim.status([theirs, "cr-GWA-01-999999", mine, "junk", "cr-GWA-02-1", mine])
        self.assertEqual(r.status, 200, r)
        res = r.json()["results"]
        self.assertEqual([x["id"] for x in res],
                         [theirs, "cr-GWA-01-999999", mine, "junk", "cr-GWA-02-1", mine])
        self.assertEqual([x["status"] for x in res],
                         ["unknown", "unknown", res[2]["status"], "unknown", "unknown",
                          res[2]["status"]])
        self.assertIn(res[2]["status"], ("pending", "woken"))
        self.assertEqual(wait_for(lambda: self.state_of(mine)["status"] == "woken"), True)
        self.assertEqual(self.state_of(theirs, emt="other")["status"], "woken")
        self.sim.orders(gw_id(11))
        self.assertEqual(self.state_of(mine)["status"], "delivered")
        self.assertEqual(self.state_of(theirs, emt="other")["status"], "woken")

    def test_expired_order_is_dropped(self):
        rid = self.accepted_id(self.sim.channel_requests([req(13, valid=1)]))
        self.assertIn(self.state_of(rid)["status"], ("pending", "woken"))
        self.assertTrue(wait_for(lambda: self.state_of(rid)["status"] == "unknown", timeout=5))
        self.assertEqual(self.sim.orders(gw_id(13)).json(), {"orders": []})
        self.assertGreaterEqual(self.sim.stats()["orders_expired"], 1)

    def test_routes(self):
        self.assertProblem(self.sim.request("GET", "/v1/nothing"), 404)
        r = self.sim.request("GET", "/v1/channel-requests")
        self.assertProblem(r, 405)
        self.assertEqual(r.header("Allow"), "POST")
        r = self.sim.request("POST", "/v1/orders", who=gw_id(14), raw=b"{}")
        self.assertProblem(r, 405)
        self.assertEqual(r.header("Allow"), "GET")
        s = self.sim.stats()
        for key in ("channel_requests", "answers", "throttled", "unavailable", "wakeups",
                    "orders", "orders_delivered", "orders_failed", "orders_expired"):
            self.assertIn(key, s)
        self.assertEqual((s["gateways"], s["devices"]), (NGW, NGW + 1))
        self.assertGreaterEqual(s["answers"]["404"], 1)

    def test_more_than_one_page(self):
        n = 1001  # one more than an answer of GET /v1/orders holds
        r = self.sim.channel_requests([req(45)] * 1000)
        r2 = self.sim.channel_requests([req(45)])
        ids = {x["id"] for x in r.json()["results"] + r2.json()["results"]}
        self.assertEqual(len(ids), n)
        self.assertEqual(len(self.sim.datagrams(1, smgw=gw_id(45))), 1)
        first = self.sim.orders(gw_id(45)).json()["orders"]
        self.assertEqual(len(first), 1000)
        # the gateway is woken again at once for the rest
        self.assertEqual(len(self.sim.datagrams(1, smgw=gw_id(45))), 1)
        rest = self.sim.orders(gw_id(45)).json()["orders"]
        self.assertEqual(len(rest), 1)
        self.assertEqual({o["id"] for o in first + rest}, ids)
        self.assertEqual(self.sim.orders(gw_id(45)).json(), {"orders": []})

    def test_keep_alive_batch(self):
        c = self.sim.conn()
        try:
            ids = []
            for n in range(15, 20):
                ids.append(self.accepted_id(self.sim.channel_requests([req(n)], conn=c)))
        finally:
            c.close()
        self.assertEqual(len(set(ids)), 5)
        seqs = [int(i.rsplit("-", 1)[1]) for i in ids]
        self.assertEqual(seqs, sorted(seqs))


class WakeupRetryTest(SimTest):
    sim_args = ("--wakeup-retries", "2", "--wakeup-interval-ms", "300")

    def test_retries_then_failed(self):
        t0 = time.time()
        rid = self.accepted_id(self.sim.channel_requests([req(20)]))
        ws = self.sim.datagrams(2, timeout=3, smgw=gw_id(20))
        self.assertEqual(len(ws), 2)
        self.assertNotEqual(ws[0]["nonce"], ws[1]["nonce"])
        self.assertGreaterEqual(ws[1]["ts_ms"] - ws[0]["ts_ms"], 250)
        self.assertTrue(wait_for(lambda: self.state_of(rid)["status"] == "failed", timeout=3))
        self.assertGreaterEqual(time.time() - t0, 0.55)
        self.assertEqual(self.state_of(rid), {"id": rid, "status": "failed",
                                              "reason": FAILED_REASON})
        self.assertEqual(self.sim.datagrams(1, timeout=0.6, smgw=gw_id(20)), [])
        # a failed order is not handed out any more
        self.assertEqual(self.sim.orders(gw_id(20)).json(), {"orders": []})
        s = self.sim.stats()
        self.assertGreaterEqual(s["wakeups"]["retried"], 1)
        self.assertGreaterEqual(s["orders_failed"], 1)

    def test_fetch_between_retries_stops_them(self):
        rid = self.accepted_id(self.sim.channel_requests([req(21)]))
        self.assertEqual(len(self.sim.datagrams(1, smgw=gw_id(21))), 1)
        self.assertEqual(len(self.sim.orders(gw_id(21)).json()["orders"]), 1)
        # no retry after the fetch, and no failure either
        self.assertEqual(self.sim.datagrams(1, timeout=0.9, smgw=gw_id(21)), [])
        self.assertEqual(self.state_of(rid)["status"], "delivered")


class LatencyTest(SimTest):
    sim_args = ("--latency-ms", "400")

    def test_every_answer_is_late(self):
        c = self.sim.conn()
        try:
            self.sim.request("GET", "/healthz", conn=c)  # handshake out of the way
            for path, body in (("/healthz", None),
                               ("/v1/channel-requests", {"emt": "clsmd", "requests": [req(22)]}),
                               ("/v1/channel-requests", {"emt": "clsmd", "requests": []})):
                t = time.time()
                r = self.sim.request("POST" if body is not None else "GET", path, body, conn=c)
                took = time.time() - t
                self.assertIn(r.status, (200, 422), r)
                self.assertGreaterEqual(took, 0.39, path)
                self.assertLess(took, 3.0, path)
        finally:
            c.close()

    def test_sigterm_answers_held_requests(self):
        sim = Sim(self.pki, ("--latency-ms", "800")).start()
        try:
            c = sim.conn()
            c.request("GET", "/healthz")
            time.sleep(0.2)
            sim.proc.send_signal(signal.SIGTERM)
            time.sleep(0.1)
            # draining: no new connections, but the held answer still comes
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", sim.port), timeout=2).close()
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.getheader("Connection"), "close")
            self.assertEqual(json.loads(r.read())["status"], "ok")
            c.close()
            self.assertEqual(sim.proc.wait(10), 0)
        finally:
            sim.stop()


class Fail503Test(SimTest):
    sim_args = ("--fail-503", "30", "--seed", "7")

    def statuses(self, sim, n):
        out = []
        c = sim.conn()
        try:
            for i in range(n):
                r = sim.channel_requests([req(23 + i % 5)], conn=c)
                out.append(r.status)
                if r.status == 503:
                    self.assertEqual(r.header("Retry-After"), "1")
                    self.assertProblem(r, 503)
                else:
                    self.accepted_id(r)
        finally:
            c.close()
        return out

    def test_share_of_503(self):
        got = self.statuses(self.sim, 60)
        n503 = got.count(503)
        self.assertEqual(n503 + got.count(200), 60, got)
        self.assertTrue(6 <= n503 <= 32, n503)
        self.assertEqual(self.sim.stats()["unavailable"], n503)
        # the same seed gives the same answers
        again = Sim(self.pki, self.sim_args).start()
        try:
            self.assertEqual(self.statuses(again, 60), got)
        finally:
            self.assertEqual(again.stop(), 0)


class ThrottleTest(SimTest):
    sim_args = ("--throttle", "5")

    def test_429_beyond_the_rate(self):
        c = self.sim.conn()
        got = []
        try:
            t = time.time()
            for i in range(20):
                r = self.sim.channel_requests([req(28)], conn=c)
                got.append(r.status)
                if r.status == 429:
                    self.assertEqual(r.header("Retry-After"), "1")
                    self.assertProblem(r, 429)
            took = time.time() - t
        finally:
            c.close()
        self.assertEqual(got.count(200) + got.count(429), 20, got)
        # at most 5 per started second
        self.assertLessEqual(got.count(200), 5 * (int(took) + 2), got)
        self.assertGreaterEqual(got.count(429), 1, got)
        self.assertEqual(self.sim.stats()["throttled"], got.count(429))
        time.sleep(1.1)
        self.accepted_id(self.sim.channel_requests([req(28)]))
        # other routes are not throttled
        for _ in range(10):
            self.assertEqual(self.sim.status(["cr-GWA-01-1"]).status, 200)


class DropWakeupsTest(SimTest):
    sim_args = ("--drop-wakeups", "50", "--seed", "3", "--wakeup-retries", "1",
                "--wakeup-interval-ms", "5000")

    def test_share_dropped(self):
        r = self.sim.channel_requests([req(n) for n in range(10, 50)])
        self.assertEqual([x["status"] for x in r.json()["results"]], ["accepted"] * 40)
        s = wait_for(lambda: (lambda st: st if st["wakeups"]["sent"] + st["wakeups"]["dropped"]
                              == 40 else None)(self.sim.stats()))
        self.assertTrue(s, self.sim.stats())
        dropped = s["wakeups"]["dropped"]
        self.assertTrue(8 <= dropped <= 32, dropped)
        got = self.sim.datagrams(s["wakeups"]["sent"], timeout=5.0)
        self.assertEqual(len(got), s["wakeups"]["sent"])
        self.assertEqual(self.sim.datagrams(1, timeout=0.3), [])
        self.assertEqual(len({w["smgw"] for w in got}), len(got))
        # dropped or not, every order counts as woken
        self.assertEqual(s["orders"]["woken"], 40)

    def test_all_dropped_then_failed(self):
        sim = Sim(self.pki, ("--drop-wakeups", "100", "--wakeup-retries", "2",
                             "--wakeup-interval-ms", "200")).start()
        try:
            rid = self.accepted_id(sim.channel_requests([req(1)]))
            self.assertTrue(wait_for(lambda: sim.status([rid]).json()["results"][0]["status"]
                                     == "failed", timeout=5))
            self.assertEqual(sim.datagrams(1, timeout=0.5), [])
            s = sim.stats()
            self.assertEqual((s["wakeups"]["sent"], s["wakeups"]["dropped"],
                              s["wakeups"]["retried"]), (0, 2, 1))
        finally:
            self.assertEqual(sim.stop(), 0)


class CapacityTest(SimTest):
    sim_args = ("--max-orders", "3")

    def test_full_table_answers_503(self):
        r = self.sim.channel_requests([req(1), req(2), req(3), req(4)])
        self.assertProblem(r, 503)
        self.assertEqual(r.header("Retry-After"), "1")
        # refused requests do not count against the room
        r = self.sim.channel_requests([req(1), req(2), req(3), req(FOREIGN, "SB-00099")])
        self.assertEqual([x["status"] for x in r.json()["results"]],
                         ["accepted"] * 3 + ["rejected"])
        self.assertProblem(self.sim.channel_requests([req(5)]), 503)
        self.assertEqual(self.sim.stats()["orders"]["live"], 3)


class P256Test(SimTest):
    """A NIST P-256 PKI: TLS 1.3 and P-256 wake-up signatures."""

    curve = "prime256v1"
    sim_args = ()

    def test_flow_over_tls13(self):
        c = self.sim.conn()
        c.request("GET", "/healthz")
        c.getresponse().read()
        self.assertEqual(c.sock.version(), "TLSv1.3")
        c.close()
        rid = self.accepted_id(self.sim.channel_requests([req(30)]))
        w = self.sim.datagrams(1, smgw=gw_id(30))
        self.assertEqual(len(w), 1)
        ChannelFlowTest.verify_signature(self, w[0])
        self.assertEqual(self.sim.orders(gw_id(30)).json()["orders"][0]["id"], rid)
        self.assertEqual(self.state_of(rid)["status"], "delivered")


class StartupTest(SimTest):
    sim_args = None

    def test_musterstadt(self):
        path = os.path.join(clsmtest.SOURCE_DIR, "data", "musterstadt", "musterstadt.json")
        with open(path) as f:
            doc = json.load(f)
        want_gw = {s["id"] for s in doc["smgws"] if s["gwa"] == "GWA-01"}
        want_dev = [d for d in doc["devices"] if d["smgw"] in want_gw]
        sim = Sim(self.pki, registry=path).start()
        try:
            s = sim.stats()
            self.assertEqual((s["gateways"], s["devices"]), (len(want_gw), len(want_dev)))
            d = want_dev[0]
            self.assertEqual(self.accepted_id(sim.channel_requests([req(d["smgw"], d["id"])])),
                             "cr-GWA-01-1")
        finally:
            self.assertEqual(sim.stop(), 0)

    def write(self, name, text):
        path = os.path.join(self.pki.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_sections_in_any_order(self):
        doc = registry_doc()
        text = json.dumps({"devices": doc["devices"], "other": [[{"a": "]}"}]],
                           "smgws": doc["smgws"]})
        sim = Sim(self.pki, registry=self.write("reordered.json", text)).start()
        try:
            s = sim.stats()
            self.assertEqual((s["gateways"], s["devices"]), (NGW, NGW + 1))
        finally:
            self.assertEqual(sim.stop(), 0)

    def test_bad_registries(self):
        smgw = '{"id": "EABC0000000001", "gwa": "GWA-01"}'
        cases = {
            "syntax": ('{"smgws": [\n%s,\n{"id": }]}' % smgw, r"syntax\.json:3: smgws\[1\]"),
            "not an object": ("[]", r"not a JSON object"),
            "bad id": ('{"smgws": [{"id": "E1", "gwa": "GWA-01"}]}', r"not a gateway id"),
            "duplicate": ('{"smgws": [%s, %s]}' % (smgw, smgw), r"appears twice"),
            "unbalanced": ('{"smgws": [], "x": [}', r"unbalanced"),
            "trailing": ('{"smgws": []} x', r"bytes after the document"),
            "devices": ('{"smgws": [%s], "devices": {}}' % smgw, r"must be an array"),
        }
        for name, (text, pattern) in cases.items():
            with self.subTest(name=name):
                path = self.write(name.replace(" ", "_") + ".json", text)
                rc, log = Sim(self.pki, registry=path).run_to_exit()
                self.assertEqual(rc, 1, log)
                self.assertIn('msg="cannot load the registry"', log)
                self.assertRegex(log, pattern)
        rc, log = Sim(self.pki, registry="/nonexistent/file.json").run_to_exit()
        self.assertEqual(rc, 1)
        self.assertIn("No such file", log)

    def test_usage(self):
        r = subprocess.run([GWA_SIM, "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        for opt in ("--id", "--pki", "--listen", "--registry", "--emt", "--deny", "--wakeup",
                    "--wakeup-retries", "--wakeup-interval-ms", "--latency-ms", "--drop-wakeups",
                    "--fail-503", "--throttle", "--seed", "--max-orders", "--log-level"):
            self.assertRegex(r.stdout, r"\n  %s\b" % re.escape(opt))
        base = [GWA_SIM, "--id", "GWA-01", "--pki", self.pki.dir, "--registry", "x",
                "--wakeup", "127.0.0.1:9"]
        for bad in ([GWA_SIM], base + ["--fail-503", "101"], base + ["--nope"],
                    base + ["--seed"], base[:-2], base + ["--emt", "bad id"],
                    base + ["--log-level", "loud"], [GWA_SIM, "--id", "bad id"] + base[3:]):
            with self.subTest(args=bad[1:]):
                r = subprocess.run(bad, capture_output=True, text=True)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertTrue(r.stderr.startswith("clsm-gwa-sim: "), r.stderr)

    def test_sigterm_exits_0(self):
        sim = Sim(self.pki).start()
        idle = sim.conn()
        try:
            idle.request("GET", "/healthz")
            idle.getresponse().read()  # an idle keep-alive connection stays open
            t = time.time()
            rc = sim.stop()
            self.assertEqual(rc, 0)
            self.assertLess(time.time() - t, 5)
        finally:
            idle.close()
            sim.stop()
        self.assertIn('msg="shutting down"', sim.log())
        self.assertIn('msg=stopped gwa=GWA-01 status=0', sim.log())
        # no longer listening
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", sim.port), timeout=2).close()

    def test_missing_pki_files(self):
        rc, log = Sim(self.pki, ("--id", "GWA-09")).run_to_exit()
        self.assertEqual(rc, 1)
        self.assertIn('msg="cannot load the PKI"', log)


if __name__ == "__main__":
    clsmtest.main()
