"""clsmd's command line and configuration sources, start-up failures and
graceful shutdown."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import clsmtest  # noqa: E402


def run(*args, env=None, cwd=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([clsmtest.CLSMD] + list(args), capture_output=True, text=True,
                          env=e, cwd=cwd, timeout=30)


class ConfigTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def ini(self, text):
        p = os.path.join(self.tmp.name, "clsm.ini")
        with open(p, "w") as f:
            f.write(text)
        return p

    def test_check_config_precedence(self):
        """Defaults < file < CLSM_* environment < --set."""
        p = self.ini("[api]\nlisten = 127.0.0.1:9000\nmax_body = 64k\n[store]\npath = a.db\n"
                     "[log]\nlevel = warn\n")
        r = run("--config", p, "--set", "store.path=c.db", "--check-config",
                env={"CLSM_STORE_PATH": "b.db", "CLSM_LOG_LEVEL": "debug"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("listen = 127.0.0.1:9000", r.stdout)
        self.assertIn("max_body = 65536", r.stdout)
        self.assertIn("path = c.db", r.stdout)
        self.assertIn("level = debug", r.stdout)

    def test_secret_not_printed(self):
        r = run("--set", "auth.admin_token=very-secret-admin-token", "--check-config")
        self.assertEqual(r.returncode, 0)
        self.assertNotIn("very-secret", r.stdout)
        self.assertIn("admin_token = (set)", r.stdout)

    def test_errors_exit_2_with_reason(self):
        cases = [
            (["--set", "api.listen=nowhere"], "api.listen"),
            (["--set", "api.max_connections=0"], "out of range"),
            (["--set", "nosuch.key=1"], "unknown option"),
            (["--set", "novalue"], "KEY=VALUE"),
            (["--set", "auth.admin_token=short"], "16 characters"),
            (["--config", "/nonexistent/clsm.ini"], "/nonexistent/clsm.ini"),
            (["--bogus"], "unknown or incomplete argument"),
            (["--config"], "unknown or incomplete argument"),
        ]
        for args, needle in cases:
            r = run("--check-config", *args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(needle, r.stderr, args)
        p = self.ini("[api]\nlisten = 127.0.0.1:1\nmystery = 3\n")
        r = run("--config", p, "--check-config")
        self.assertEqual(r.returncode, 2)
        self.assertIn("clsm.ini:3", r.stderr)
        r = run("--check-config", env={"CLSM_API_MAX_BODY": "lots"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("CLSM_API_MAX_BODY", r.stderr)

    def test_reference_and_routes(self):
        r = run("--help-config")
        self.assertEqual(r.returncode, 0)
        for key in ("api.listen", "store.path", "auth.admin_token", "log.level"):
            self.assertIn("`%s`" % key, r.stdout)
        r = run("--list-routes")
        self.assertIn("GET /v1/installations/{id}", r.stdout.splitlines())
        self.assertEqual(run("--version").returncode, 0)

    def test_readme_reference_is_current(self):
        """The README's configuration reference is what --help-config prints."""
        with open(os.path.join(clsmtest.SOURCE_DIR, "README.md")) as f:
            doc = f.read()
        ref = run("--help-config").stdout
        self.assertIn(ref, doc, "regenerate the table in README.md from 'clsmd --help-config'")


class StartupTest(unittest.TestCase):
    def test_unusable_store_exits_1(self):
        with tempfile.TemporaryDirectory() as d:
            blocker = os.path.join(d, "file")
            open(blocker, "w").close()
            r = run("--set", "api.listen=127.0.0.1:0", "--set", "store.path=%s/sub/clsm.db" % blocker)
            self.assertEqual(r.returncode, 1)
            self.assertIn('msg="cannot open the store"', r.stderr)
            foreign = os.path.join(d, "foreign.db")
            with open(foreign, "wb") as f:
                f.write(b"this is not a database at all" * 100)
            r = run("--set", "api.listen=127.0.0.1:0", "--set", "store.path=" + foreign)
            self.assertEqual(r.returncode, 1)
            self.assertIn("cannot open the store", r.stderr)

    def test_port_in_use_exits_1(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with tempfile.TemporaryDirectory() as d:
            r = run("--set", "api.listen=127.0.0.1:%d" % port, "--set", "store.path=%s/c.db" % d)
        s.close()
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot listen", r.stderr)

    def test_unknown_env_warns(self):
        srv = clsmtest.Clsmd(env={"CLSM_API_LISTN": "x", "CLSM_URL": "http://x"}).start()
        try:
            log = srv.log()
            self.assertIn('msg="ignoring unknown environment variable" name=CLSM_API_LISTN', log)
            self.assertNotIn("name=CLSM_URL", log)
        finally:
            srv.cleanup()

    def test_no_admin_token_warns_and_refuses_admin(self):
        srv = clsmtest.Clsmd(admin_token=None).start()
        try:
            self.assertIn("auth.admin_token is not set", srv.log())
            r = srv.request("GET", "/v1/parties", token="anything-at-all-here")
            self.assertEqual(r.status, 401)
        finally:
            srv.cleanup()


class ShutdownTest(unittest.TestCase):
    def test_sigterm_finishes_in_flight_request(self):
        """A request whose body is still arriving when SIGTERM comes is
        answered; then clsmd exits 0 and new connections are refused."""
        srv = clsmtest.Clsmd().start()
        try:
            body = b'{"id":"9900000000001","name":"late","role":"vnb"}'
            sock = socket.create_connection(("127.0.0.1", srv.port))
            head = ("POST /v1/parties HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                    "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                    % (srv.admin_token, len(body))).encode()
            sock.sendall(head + body[:10])
            time.sleep(0.2)
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            sock.sendall(body[10:])
            answer = b""
            sock.settimeout(5)
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
            sock.close()
            self.assertTrue(answer.startswith(b"HTTP/1.1 201"), answer)
            self.assertIn(b"Connection: close", answer)
            self.assertEqual(srv.stop(), 0)
            self.assertIn('msg="shutting down" signal=TERM', srv.log())
            # It was durable: a fresh start on the same store has it.
            srv.start()
            self.assertEqual(srv.request("GET", "/v1/parties/9900000000001").status, 200)
        finally:
            srv.cleanup()

    def test_idle_connections_do_not_delay_shutdown(self):
        srv = clsmtest.Clsmd(args=("--set", "shutdown.grace_ms=10000")).start()
        try:
            idle = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(5)]
            t0 = time.time()
            self.assertEqual(srv.stop(), 0)
            self.assertLess(time.time() - t0, 5)
            for s in idle:
                s.close()
        finally:
            srv.cleanup()

    def test_grace_period_bounds_shutdown(self):
        """A client that never finishes its request cannot hold clsmd up past
        shutdown.grace_ms."""
        srv = clsmtest.Clsmd(args=("--set", "shutdown.grace_ms=300")).start()
        try:
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(b"POST /v1/parties HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            time.sleep(0.2)
            t0 = time.time()
            self.assertEqual(srv.stop(), 0)
            self.assertLess(time.time() - t0, 3)
            self.assertIn("grace period over", srv.log())
            s.close()
        finally:
            srv.cleanup()


if __name__ == "__main__":
    clsmtest.main()
