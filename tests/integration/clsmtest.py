"""Shared helpers for clsm integration tests.

Tests start the real binaries from the build tree named by CLSM_BUILD_DIR
(ctest sets it) on free ports, with a fresh store in a temporary directory,
and talk to them over real HTTP. Python standard library only.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

SOURCE_DIR = os.environ.get(
    "CLSM_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.path.abspath(os.environ.get("CLSM_BUILD_DIR", os.path.join(SOURCE_DIR, "build")))
CLSMD = os.path.join(BUILD_DIR, "clsmd")
CLSMCTL = os.path.join(BUILD_DIR, "clsmctl")
ADMIN_TOKEN = "test-admin-token-0123456789"


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:300])


class Clsmd:
    """One clsmd process with its own store and log file."""

    def __init__(self, workdir=None, args=(), env=None, admin_token=ADMIN_TOKEN, preexec=None):
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="clsmd-test-")
            workdir = self._tmp.name
        self.workdir = workdir
        self.db = os.path.join(workdir, "clsm.db")
        self.logpath = os.path.join(workdir, "clsmd.log")
        self.args = list(args)
        self.env = env
        self.admin_token = admin_token
        self.proc = None
        self.port = None
        self.preexec = preexec

    def start(self, timeout=15):
        cmd = [CLSMD, "--set", "api.listen=127.0.0.1:0",
               "--set", "store.path=" + self.db,
               "--set", "log.level=debug"]
        if self.admin_token:
            cmd += ["--set", "auth.admin_token=" + self.admin_token]
        cmd += self.args
        env = dict(os.environ)
        env.update(self.env or {})
        self._log = open(self.logpath, "ab")
        start_offset = self._log.tell()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=self._log, env=env,
                                     cwd=self.workdir, preexec_fn=self.preexec)
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.logpath, "rb") as f:
                f.seek(start_offset)
                m = re.search(rb'msg="api listening" addr=127\.0\.0\.1:(\d+)', f.read())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("clsmd exited with %d:\n%s" % (self.proc.returncode, self.log()))
            time.sleep(0.02)
        raise RuntimeError("clsmd did not start:\n" + self.log())

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signal the process and return its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise RuntimeError("clsmd did not stop within %ds" % timeout)
        finally:
            self._log.close()
        self.proc = None
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def rss_kib(self):
        """Resident memory of the process in KiB."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def cleanup(self):
        if self.proc is not None:
            self.stop()
        if self._tmp:
            self._tmp.cleanup()

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, token="admin", headers=None, raw=None,
                content_type="application/json"):
        """One request on a new connection. 'body' is sent as JSON, 'raw' as
        bytes; token "admin" means the configured admin token, None none."""
        hdrs = {}
        if token == "admin":
            token = self.admin_token
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
        elif raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
        if data is not None and content_type:
            hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        c = self.conn()
        try:
            c.request(method, path, body=data, headers=hdrs)
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()

    def raw_exchange(self, data, timeout=5):
        """Send raw bytes on a new socket and return everything read until the
        server closes or the timeout passes."""
        import socket
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall(data)
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                out += chunk
            return out
        finally:
            s.close()


def ctl(server, *args, token="admin", check=False, input=None):
    """Run clsmctl against 'server'; returns CompletedProcess (text)."""
    if token == "admin":
        token = server.admin_token
    cmd = [CLSMCTL, "--url", "http://127.0.0.1:%d" % server.port]
    if token:
        cmd += ["--token", token]
    cmd += list(args)
    return subprocess.run(cmd, capture_output=True, text=True, check=check, input=input,
                          timeout=60)


class ServerTest(unittest.TestCase):
    """A test case with one clsmd per test class (started in setUpClass)."""

    server_args = ()
    server_env = None

    @classmethod
    def setUpClass(cls):
        cls.server = Clsmd(args=cls.server_args, env=cls.server_env).start()

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

    def assertProblem(self, r, status, pointer=None, field=None):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("Content-Type"), "application/problem+json", r)
        p = r.json()
        self.assertEqual(p["status"], status)
        self.assertTrue(p["type"].startswith("urn:clsm:problem:"), p)
        self.assertTrue(p.get("detail"), p)
        if pointer is not None:
            self.assertEqual(p.get("pointer"), pointer, p)
        if field is not None:
            self.assertEqual(p.get("field"), field, p)
        return p


def main():
    unittest.main(verbosity=2)


# --- the whole system: PKI, clsmd with channels, a GWA and a gateway fleet ---

CLSM_PKI = os.path.join(BUILD_DIR, "clsm-pki")
GWA_SIM = os.path.join(BUILD_DIR, "clsm-gwa-sim")
SMGW_SIM = os.path.join(BUILD_DIR, "clsm-smgw-sim")
FLEET = os.path.join(SOURCE_DIR, "scripts", "fleet.py")


def iso(t):
    """RFC 3339 in UTC with milliseconds for a Unix time in seconds."""
    ms = int(round(t * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def parse_time(s):
    """Unix seconds of an RFC 3339 time as clsmd writes it (UTC, 'Z')."""
    import calendar
    base, _, frac = s.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + \
        (int(frac) / 10 ** len(frac) if frac else 0)


def free_port(kind=None):
    import socket
    s = socket.socket(socket.AF_INET, kind or socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Proc:
    """A simulator process with its log; 'ready' is a regex on the log."""

    def __init__(self, name, cmd, workdir, ready, timeout=60):
        self.name = name
        self.logpath = os.path.join(workdir, name + ".log")
        self._log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=self._log, cwd=workdir)
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.logpath, "rb") as f:
                m = re.search(ready.encode(), f.read())
            if m:
                self.match = m
                return
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %d:\n%s" % (name, self.proc.returncode,
                                                                 self.log()[-4000:]))
            time.sleep(0.05)
        raise RuntimeError("%s did not start:\n%s" % (name, self.log()[-4000:]))

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._log.close()
        return rc


class System:
    """clsmd with CLS channels, one GWA simulator and a gateway fleet, all on
    free local ports, with a fresh PKI and a synthetic fleet of 'gateways'."""

    def __init__(self, gateways=50, curve="brainpoolP256r1", gwa_args=(), smgw_args=(),
                 clsmd_args=(), prefix="TST", meter_period_s=None, sensors=0):
        self.tmp = tempfile.TemporaryDirectory(prefix="clsm-system-")
        self.dir = self.tmp.name
        self.pki = os.path.join(self.dir, "pki")
        self.procs = []
        self.clsmd = None
        self.gwa_port = free_port()
        self.udp_port = free_port(__import__("socket").SOCK_DGRAM)
        self.stats_port = free_port()
        self.meter_port = free_port()
        if meter_period_s:
            smgw_args = tuple(smgw_args) + ("--meter", "127.0.0.1:%d" % self.meter_port,
                                            "--meter-period-s", str(meter_period_s))
        self.registry = os.path.join(self.dir, "fleet.json")
        ids = os.path.join(self.dir, "fleet.ids")
        subprocess.run([sys.executable, FLEET, "--gateways", str(gateways), "--prefix", prefix,
                        "--sensors", str(sensors),
                        "--gwa", "GWA-01=https://127.0.0.1:%d" % self.gwa_port,
                        "--out", self.registry, "--ids", ids], check=True)
        subprocess.run([CLSM_PKI, "init", self.pki, "--curve", curve, "--gwa", "GWA-01"],
                       check=True, capture_output=True)
        subprocess.run([CLSM_PKI, "smgw", self.pki, "--ids", ids], check=True,
                       capture_output=True)
        with open(self.registry) as f:
            self.doc = json.load(f)
        try:
            self.smgw = Proc("smgw-sim", [SMGW_SIM, "--pki", self.pki, "--registry", self.registry,
                                          "--udp", "127.0.0.1:%d" % self.udp_port,
                                          "--stats", "127.0.0.1:%d" % self.stats_port,
                                          "--log-level", "debug"] + list(smgw_args),
                             self.dir, r'msg="smgw-sim ready"')
            self.procs.append(self.smgw)
            self.gwa = Proc("gwa-sim", [GWA_SIM, "--id", "GWA-01", "--pki", self.pki,
                                        "--listen", "127.0.0.1:%d" % self.gwa_port,
                                        "--registry", self.registry,
                                        "--wakeup", "127.0.0.1:%d" % self.udp_port,
                                        "--log-level", "debug"] + list(gwa_args),
                            self.dir, r'msg="gwa listening"')
            self.procs.append(self.gwa)
            self.channel_port = free_port()
            args = ["--set", "tls.cert=%s/emt/clsmd.crt" % self.pki,
                    "--set", "tls.key=%s/emt/clsmd.key" % self.pki,
                    "--set", "tls.smgw_ca=%s/smgw-chain.pem" % self.pki,
                    "--set", "tls.gwa_ca=%s/gwa-ca.crt" % self.pki,
                    "--set", "channel.listen=127.0.0.1:%d" % self.channel_port,
                    "--set", "meter.listen=127.0.0.1:%d" % self.meter_port]
            self.clsmd = Clsmd(workdir=self.dir, args=args + list(clsmd_args)).start()
            r = self.clsmd.request("POST", "/v1/import", body=self.doc)
            if r.status != 200:
                raise RuntimeError("import failed: %r" % r)
        except Exception:
            self.close()
            raise

    def command(self, device, control, **kw):
        body = {"control": control}
        body.update(kw)
        return self.clsmd.request("POST", "/v1/devices/%s/commands" % device, body=body)

    def wait_command(self, cid, states=("confirmed", "failed"), timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            c = self.clsmd.request("GET", "/v1/commands/" + cid).json()
            if c["state"] in states:
                return c
            time.sleep(0.1)
        raise AssertionError("command %s did not reach %s: %r" % (cid, states, c))

    def sim_stats(self):
        c = http.client.HTTPConnection("127.0.0.1", self.stats_port, timeout=10)
        c.request("GET", "/v1/stats")
        return json.loads(c.getresponse().read())

    def sim_device(self, dev, cmd=None):
        c = http.client.HTTPConnection("127.0.0.1", self.stats_port, timeout=10)
        try:
            c.request("GET", "/v1/devices/%s%s" % (dev, "?cmd=" + cmd if cmd else ""))
            return json.loads(c.getresponse().read())
        finally:
            c.close()

    def gwa_stats(self):
        """The GWA simulator's counters, fetched as the EMT (curl: Python's ssl
        module cannot offer brainpool groups as a client)."""
        out = subprocess.run(["curl", "-sf", "--tlsv1.2", "--tls-max", "1.2", "--curves",
                              "brainpoolP256r1:prime256v1",
                              "--cert", os.path.join(self.pki, "emt", "clsmd.crt"),
                              "--key", os.path.join(self.pki, "emt", "clsmd.key"),
                              "--cacert", os.path.join(self.pki, "root.crt"),
                              "https://127.0.0.1:%d/v1/stats" % self.gwa_port],
                             capture_output=True, timeout=30, check=True).stdout
        return json.loads(out)

    def close(self):
        rcs = {}
        if self.clsmd is not None:
            rcs["clsmd"] = self.clsmd.stop() if self.clsmd.proc else 0
        for p in self.procs:
            rcs[p.name] = p.stop()
        self.logs = {p.name: p.log() for p in self.procs}
        if self.clsmd is not None:
            self.logs["clsmd"] = self.clsmd.log()
        self.tmp.cleanup()
        return rcs
