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
