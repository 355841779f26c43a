"""What a hostile or unlucky client cannot do to clsmd: make it hold large
bodies without the right to send them, grow its memory by pipelining
without reading, lose answers by half-closing, or get garbage when the
store fails underneath."""
import json
import os
import resource
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import clsmtest  # noqa: E402

# Memory is measured as resident size: AddressSanitizer's quarantine of
# freed blocks would count churn as growth, so it is kept small here.
LEAN_ASAN = {"ASAN_OPTIONS": "quarantine_size_mb=1:detect_leaks=1"}

MUSTERSTADT = os.path.join(clsmtest.SOURCE_DIR, "data", "musterstadt", "musterstadt.json")
AUTH = "Authorization: Bearer %s\r\n" % clsmtest.ADMIN_TOKEN


def read_all(sock, timeout=10):
    sock.settimeout(timeout)
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        out += chunk
    return out


class EarlyRefusalTest(clsmtest.ServerTest):
    server_env = LEAN_ASAN

    def test_unauthenticated_import_is_refused_before_the_body(self):
        """A 32 MiB import without a token is answered 401 at once: the
        server neither waits for the body nor asks for it."""
        s = socket.create_connection(("127.0.0.1", self.server.port))
        t0 = time.time()
        s.sendall(b"POST /v1/import HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 33554432\r\n\r\n{\"parties\": [")
        answer = read_all(s, 5)
        s.close()
        self.assertLess(time.time() - t0, 3)
        self.assertTrue(answer.startswith(b"HTTP/1.1 401 "), answer[:200])
        self.assertIn(b"Connection: close", answer)
        self.assertNotIn(b"100 Continue", answer)

    def test_many_refused_bodies_do_not_grow_memory(self):
        """Twenty clients push 4 MiB each of a refused import: the server
        reads none of it into memory (before the fix it held all 80 MiB)."""
        before = self.server.rss_kib()
        socks = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", self.server.port))
            s.sendall(b"POST /v1/import HTTP/1.1\r\nHost: t\r\nContent-Length: 33554432\r\n\r\n")
            s.setblocking(False)
            socks.append([s, 0])
        chunk = b"x" * 65536
        deadline = time.time() + 3
        while time.time() < deadline and any(n < 4 << 20 for _, n in socks):
            for entry in socks:
                if entry[1] >= 4 << 20:
                    continue
                try:
                    entry[1] += entry[0].send(chunk)
                except (BlockingIOError, OSError):
                    pass
            time.sleep(0.001)
        grown = self.server.rss_kib() - before
        for s, _ in socks:
            s.close()
        self.assertLess(grown, 32 * 1024, "clsmd grew by %d KiB" % grown)

    def test_small_refused_body_keeps_the_connection(self):
        c = self.server.conn()
        c.request("POST", "/v1/nowhere", body=b'{"a": 1}',
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 404)
        self.assertIsNone(r.getheader("Connection"))
        c.request("GET", "/healthz")
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        r.read()
        c.close()


class BackpressureTest(clsmtest.ServerTest):
    server_env = LEAN_ASAN

    def test_pipelining_without_reading_is_bounded(self):
        """A client that sends requests and never reads the answers stops
        being read once 1 MiB of answers waits; memory stays bounded."""
        s = socket.create_connection(("127.0.0.1", self.server.port))
        s.setblocking(False)
        req = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
        before = self.server.rss_kib()
        sent, deadline = 0, time.time() + 4
        while time.time() < deadline and sent < 40 * 1024 * 1024:
            try:
                sent += s.send(req * 512)
            except BlockingIOError:
                time.sleep(0.01)
        grown = self.server.rss_kib() - before
        s.close()
        self.assertLess(sent, 40 * 1024 * 1024, "the server kept reading everything")
        self.assertLess(grown, 96 * 1024, "clsmd grew by %d KiB" % grown)
        # and it still serves others
        self.assertEqual(self.server.request("GET", "/healthz").status, 200)

    def test_pipelined_answers_all_arrive_when_read(self):
        s = socket.create_connection(("127.0.0.1", self.server.port))
        n = 400
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n" * (n - 1) +
                  b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = read_all(s, 10)
        s.close()
        self.assertEqual(data.count(b"HTTP/1.1 200 OK"), n)


class HalfCloseTest(clsmtest.ServerTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(MUSTERSTADT) as f:
            r = cls.server.request("POST", "/v1/import", raw=f.read())
        assert r.status == 200, r

    def test_large_answer_after_half_close(self):
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", self.server.port))
            s.sendall(("GET /v1/assignments?limit=1000 HTTP/1.1\r\nHost: t\r\n%s\r\n" % AUTH)
                      .encode())
            s.shutdown(socket.SHUT_WR)
            data = read_all(s, 10)
            s.close()
            head, _, body = data.partition(b"\r\n\r\n")
            length = int([l.split(b":")[1] for l in head.split(b"\r\n")
                          if l.lower().startswith(b"content-length")][0])
            self.assertGreater(length, 100000)
            self.assertEqual(len(body), length)
            self.assertEqual(len(json.loads(body)["items"]), 1000)


def small_files():
    """In the child: writes beyond 512 KiB fail with EFBIG instead of a signal."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (512 << 10, 512 << 10))


class StoreFailureTest(unittest.TestCase):
    def test_import_on_a_full_disk_answers_503_and_keeps_nothing(self):
        srv = clsmtest.Clsmd(preexec=small_files).start()
        try:
            with open(MUSTERSTADT) as f:
                r = srv.request("POST", "/v1/import", raw=f.read())
            self.assertEqual(r.status, 503, r)
            p = r.json()
            self.assertEqual(p["type"], "urn:clsm:problem:store-unavailable")
            self.assertIn("nothing was imported", p["detail"])
            r = srv.request("GET", "/v1/parties")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["items"], [])
            # small writes still work, and are durable
            r = srv.request("POST", "/v1/parties",
                            body={"id": "9900000000001", "name": "v", "role": "vnb"})
            self.assertEqual(r.status, 201, r)
            self.assertEqual(srv.stop(), 0)
            self.assertIn('msg="sqlite error"', srv.log())
            srv.preexec = None
            srv.start()
            self.assertEqual(srv.request("GET", "/v1/parties/9900000000001").status, 200)
        finally:
            srv.cleanup()


class SegmentMoveTest(clsmtest.ServerTest):
    def test_deep_trees_and_cycles(self):
        vnb = "9900000000077"
        chain = lambda p, n: [{"id": "%s%d" % (p, i), "name": "s", "level": "other", "vnb": vnb,
                               **({"parent": "%s%d" % (p, i - 1)} if i else {})} for i in range(n)]
        doc = {"parties": [{"id": vnb, "name": "v", "role": "vnb"}],
               "segments": chain("DA", 50) + chain("DB", 50)}
        self.assertEqual(self.server.request("POST", "/v1/import", body=doc).status, 200)
        r = self.server.request("PATCH", "/v1/segments/DB0", body={"parent": "DA49"})
        self.assertEqual(r.status, 200, r)  # a 100-deep tree is allowed
        r = self.server.request("PATCH", "/v1/segments/DB49", body={"name": "renamed"})
        self.assertEqual(r.status, 200, r)
        r = self.server.request("PATCH", "/v1/segments/DA0", body={"parent": "DB49"})
        self.assertProblem(r, 422, pointer="/parent")
        self.assertIsNone(self.server.request("GET", "/v1/segments/DA0").json()["parent"])


if __name__ == "__main__":
    clsmtest.main()
