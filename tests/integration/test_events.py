"""Live events over Server-Sent Events: GET /v1/events.

The real clsmd (channels off) with small limits: a heartbeat every second,
four streams at most, 4 KiB of queued output per stream. Events come from
what the API records: a command on a device without channels fails
(command.failed, admin only), and webhook subscriptions are audited for
their party (webhook.created / webhook.deleted). The streams are read with a
raw socket so that the framing (chunked encoding, SSE fields) and a reader
that stops reading can be tested as they are on the wire.
"""
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import clsmtest  # noqa: E402

VNB = "9900000000001"
LF = "9900000000002"
CONTROL = {"type": "limit", "direction": "consumption", "value_w": 4200, "active": True,
           "duration_s": 3600}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def base_doc():
    return {
        "parties": [{"id": VNB, "name": "Netz", "role": "vnb"},
                    {"id": LF, "name": "Lieferant", "role": "lf"}],
        "segments": [{"id": "S", "name": "s", "level": "substation", "vnb": VNB}],
        "gwas": [{"id": "G", "name": "g", "endpoint": "https://127.0.0.1:9441"}],
        "smgws": [{"id": "EABC0000000001", "gwa": "G", "segment": "S"}],
        "devices": [{"id": "D1", "smgw": "EABC0000000001", "kind": "steuerbox"}],
    }


class Stream:
    """One GET /v1/events on a raw socket: the head, then SSE messages out of
    the chunked body."""

    def __init__(self, port, token, path="/v1/events", headers=None, rcvbuf=None, timeout=10,
                 version="1.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        hdrs = {"Host": "127.0.0.1", "Accept": "text/event-stream"}
        if token:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        req = "GET %s HTTP/%s\r\n%s\r\n" % (path, version, "".join("%s: %s\r\n" % kv
                                                                for kv in hdrs.items()))
        self.sock.sendall(req.encode())
        self.buf = b""
        self.body = b""  # de-chunked bytes not yet parsed into messages
        self.ended = False  # the terminating chunk arrived
        self.eof = False
        self.comments = []
        self.retry = None
        head = self._until(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            if line:
                k, v = line.split(":", 1)
                self.headers[k.strip().lower()] = v.strip()
        self.chunked = self.headers.get("transfer-encoding") == "chunked"

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            raise EOFError("connection closed")
        self.buf += data

    def _until(self, sep):
        while sep not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(sep, 1)
        return head

    def _chunk(self):
        size = int(self._until(b"\r\n").split(b";")[0], 16)
        while len(self.buf) < size + 2:
            self._fill()
        data, self.buf = self.buf[:size], self.buf[size + 2:]
        if size == 0:
            self.ended = True
            raise EOFError("stream ended")
        self.body += data

    def message(self):
        """The next event as (id, event, data as JSON); comments and retry
        fields are collected on the way."""
        while True:
            while b"\n\n" not in self.body:
                if self.ended:
                    raise EOFError("stream ended")
                if self.chunked:
                    self._chunk()
                else:
                    if not self.buf:
                        self._fill()
                    self.body += self.buf
                    self.buf = b""
            block, self.body = self.body.split(b"\n\n", 1)
            fields = {}
            for line in block.decode().split("\n"):
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    continue
                name, _, value = line.partition(":")
                fields[name] = value[1:] if value.startswith(" ") else value
            if "retry" in fields:
                self.retry = int(fields["retry"])
            if "data" in fields:
                return int(fields["id"]), fields.get("event"), json.loads(fields["data"])

    def messages(self, n):
        return [self.message() for _ in range(n)]

    def drain(self):
        """Every event until the stream ends."""
        out = []
        try:
            while True:
                out.append(self.message())
        except (EOFError, ConnectionError):
            return out

    def close(self):
        self.sock.close()


class EventsTest(clsmtest.ServerTest):
    server_args = ("--set", "events.heartbeat_s=1", "--set", "events.max_streams=4",
                   "--set", "events.max_stream_output=4096",
                   "--set", "webhook.retry_max_s=3600")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.server
        assert s.request("POST", "/v1/import", body=base_doc()).status == 200
        cls.tokens = {}
        for p in (VNB, LF):
            r = s.request("POST", "/v1/parties/%s/tokens" % p, body={"label": "t"})
            assert r.status == 201, r
            cls.tokens[p] = r.json()["token"]

    def setUp(self):
        self.streams = []

    def tearDown(self):
        for st in self.streams:
            st.close()
        # The server notices closed streams at once; wait so that the next
        # test starts below the stream limit.
        deadline = time.time() + 5
        while time.time() < deadline and self.metric("clsm_event_streams") > 0:
            time.sleep(0.05)

    def open(self, token="admin", **kw):
        st = Stream(self.server.port, self.server.admin_token if token == "admin" else token, **kw)
        self.streams.append(st)
        return st

    def metric(self, name):
        body = self.server.request("GET", "/metrics", token=None).body.decode()
        m = re.search(r"^%s (\d+)$" % re.escape(name), body, re.M)
        return int(m.group(1)) if m else None

    def last_seq(self):
        return self.server.request("GET", "/v1/audit?limit=1").json()["last_seq"]

    def command(self):
        r = self.server.request("POST", "/v1/devices/D1/commands", body={"control": CONTROL})
        self.assertEqual(r.status, 202, r)
        return r.json()["id"]

    def hook(self, party, url="http://127.0.0.1:9/hook"):
        """Create and delete a subscription: two events for 'party'."""
        r = self.server.request("POST", "/v1/webhooks", body={"url": url},
                                token=self.tokens[party])
        self.assertEqual(r.status, 201, r)
        hid = r.json()["id"]
        r = self.server.request("DELETE", "/v1/webhooks/" + hid, token=self.tokens[party])
        self.assertEqual(r.status, 204, r)
        return hid

    def wait_seq(self, seq, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.last_seq() >= seq:
                return
            time.sleep(0.02)
        self.fail("event %d never became durable" % seq)

    # --- the format -----------------------------------------------------------

    def test_live_event_format(self):
        st = self.open()
        self.assertEqual(st.status, 200)
        self.assertEqual(st.headers["content-type"], "text/event-stream")
        self.assertEqual(st.headers["cache-control"], "no-store")
        self.assertTrue(st.chunked)
        cid = self.command()
        seq, kind, data = st.message()
        self.assertEqual(st.retry, 3000)
        self.assertEqual(kind, "command.failed")
        self.assertEqual(seq, data["seq"])
        self.assertEqual(sorted(data), ["actor", "kind", "payload", "seq", "subject", "time"])
        self.assertRegex(data["time"], TIME)
        self.assertEqual(data["kind"], "command.failed")
        self.assertEqual(data["subject"], "device:D1")
        self.assertEqual(data["actor"], "admin")
        self.assertEqual(data["payload"]["command"], cid)
        self.assertIn("channels are off", data["payload"]["error"])

    def test_heartbeat(self):
        st = self.open(timeout=5)
        t0 = time.time()
        while "keepalive" not in st.comments and time.time() - t0 < 5:
            st._chunk()
            comments = [line for line in st.body.split(b"\n") if line.startswith(b":")]
            st.comments += [c[1:].strip().decode() for c in comments]
            st.body = b""
        self.assertIn("keepalive", st.comments)
        self.assertLess(time.time() - t0, 3)  # every second here

    def test_http_1_0_reader(self):
        """Without chunked encoding the stream is the rest of the connection."""
        start = self.last_seq()
        st = self.open(path="/v1/events?after=%d" % start, version="1.0")
        self.assertEqual(st.status, 200)
        self.assertNotIn("transfer-encoding", st.headers)
        self.assertEqual(st.headers["connection"], "close")
        self.command()
        self.assertEqual(st.message()[0], start + 1)

    def test_head_answers_without_a_stream(self):
        c = self.server.conn()
        c.request("HEAD", "/v1/events", headers={"Authorization": "Bearer "
                                                 + self.server.admin_token})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Type"), "text/event-stream")
        self.assertEqual(r.read(), b"")
        c.close()

    # --- who sees what ----------------------------------------------------------

    def test_visibility_per_party(self):
        start = self.last_seq()
        admin = self.open(path="/v1/events?after=%d" % start)
        vnb = self.open(token=self.tokens[VNB], path="/v1/events?after=%d" % start)
        lf = self.open(token=self.tokens[LF], path="/v1/events?after=%d" % start)
        self.command()
        h_vnb = self.hook(VNB)
        h_lf = self.hook(LF)
        got_admin = admin.messages(5)
        self.assertEqual([k for _, k, _ in got_admin],
                         ["command.failed", "webhook.created", "webhook.deleted",
                          "webhook.created", "webhook.deleted"])
        self.assertEqual([s for s, _, _ in got_admin], list(range(start + 1, start + 6)))
        got_vnb = vnb.messages(2)
        self.assertEqual([(k, d["payload"]["id"]) for _, k, d in got_vnb],
                         [("webhook.created", h_vnb), ("webhook.deleted", h_vnb)])
        self.assertEqual(got_vnb[0][2]["actor"], VNB)
        got_lf = lf.messages(2)
        self.assertEqual([(k, d["payload"]["id"]) for _, k, d in got_lf],
                         [("webhook.created", h_lf), ("webhook.deleted", h_lf)])
        # Nothing else follows for the parties: the next event each sees is
        # its own new one, not the admin's command in between.
        self.command()
        h2 = self.hook(LF)
        seq, kind, data = lf.message()
        self.assertEqual((kind, data["payload"]["id"]), ("webhook.created", h2))
        self.assertEqual(seq, start + 7)

    def test_kind_filter(self):
        start = self.last_seq()
        st = self.open(path="/v1/events?after=%d&kind=webhook.deleted,command." % start)
        self.hook(VNB)
        self.command()
        got = st.messages(2)
        self.assertEqual([k for _, k, _ in got], ["webhook.deleted", "command.failed"])
        self.assertEqual([s for s, _, _ in got], [start + 2, start + 3])

    # --- resuming -----------------------------------------------------------------

    def test_resume_with_last_event_id(self):
        for _ in range(4):
            self.command()
        last = self.last_seq()
        self.wait_seq(last)
        # Last-Event-ID wins over the ?after= of the URL it reconnects to.
        st = self.open(path="/v1/events?after=1", headers={"Last-Event-ID": str(last - 2)})
        self.assertEqual([s for s, _, _ in st.messages(2)], [last - 1, last])
        self.command()
        self.assertEqual(st.message()[0], last + 1)
        st2 = self.open(path="/v1/events?after=%d" % (last - 1))
        self.assertEqual(st2.message()[0], last)
        st3 = self.open(path="/v1/events?after=%d" % (last + 1))  # caught up: live only
        self.command()
        self.assertEqual(st3.message()[0], last + 2)

    def test_replay_hands_over_to_live_without_gap_or_repeat(self):
        """Events keep coming while a stream replays the log: every sequence
        number arrives once, in order, across the change to live events."""
        for _ in range(20):
            self.command()
        start = self.last_seq() - 20
        stop = threading.Event()

        def writer():
            while not stop.is_set():
                self.command()

        t = threading.Thread(target=writer)
        t.start()
        try:
            st = self.open(path="/v1/events?after=%d" % start)
            got = [s for s, _, _ in st.messages(80)]
        finally:
            stop.set()
            t.join()
        self.assertEqual(got, list(range(start + 1, start + 81)))

    def test_clsmctl_events(self):
        for _ in range(3):
            self.command()
        last = self.last_seq()
        self.wait_seq(last)
        r = clsmtest.ctl(self.server, "--json", "events", "--after", str(last - 3), "--count", "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual([e["seq"] for e in got], [last - 2, last - 1, last])
        r = clsmtest.ctl(self.server, "events", "--after", str(last - 1), "--count", "1",
                         "--kind", "command.")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^\s*%d  \S+Z  command.failed\s+device:D1\s+admin\s+\{" % last)
        r = clsmtest.ctl(self.server, "events", "--kind", "bad*")
        self.assertEqual(r.returncode, 1)
        self.assertIn("400", r.stderr)
        r = clsmtest.ctl(self.server, "events", token="wrong-token-0123456789")
        self.assertEqual(r.returncode, 1)
        self.assertIn("401", r.stderr)
        self.assertEqual(clsmtest.ctl(self.server, "events", "--after", "x").returncode, 2)

    # --- limits and errors ------------------------------------------------------------

    def test_bad_requests(self):
        s = self.server
        cases = [
            ("/v1/events?after=abc", {}, "after"),
            ("/v1/events?after=-1", {}, "after"),
            ("/v1/events?after=99999999999999999999", {}, "after"),
            ("/v1/events", {"Last-Event-ID": "x1"}, "Last-Event-ID"),
            ("/v1/events", {"Last-Event-ID": "-5"}, "Last-Event-ID"),
            ("/v1/events?kind=bad*", {}, "kind"),
            ("/v1/events?kind=a,,b", {}, "kind"),
            ("/v1/events?kind=" + ",".join("k%d" % i for i in range(17)), {}, "kind"),
            ("/v1/events?limit=3", {}, "limit"),
        ]
        for path, headers, field in cases:
            r = s.request("GET", path, headers=headers)
            self.assertProblem(r, 400, field=field)
        self.assertProblem(s.request("GET", "/v1/events", token=None), 401)
        self.assertProblem(s.request("GET", "/v1/events", token="not-a-token-0123456789"), 401)
        self.assertProblem(s.request("POST", "/v1/events", body={}), 405)

    def test_stream_limit(self):
        for _ in range(4):
            self.assertEqual(self.open().status, 200)
        r = self.server.request("GET", "/v1/events")
        self.assertProblem(r, 503)
        self.assertEqual(r.header("Retry-After"), "5")
        self.streams.pop().close()
        deadline = time.time() + 5
        while self.metric("clsm_event_streams") > 3 and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.open().status, 200)

    def test_reader_going_away_or_talking(self):
        before = self.server.log().count("event stream closed by the client")
        st = self.open()
        self.assertEqual(self.metric("clsm_event_streams"), 1)
        st.close()
        wait = time.time() + 5
        while self.metric("clsm_event_streams") != 0 and time.time() < wait:
            time.sleep(0.05)
        self.assertEqual(self.metric("clsm_event_streams"), 0)
        self.assertEqual(self.server.log().count("event stream closed by the client"), before + 1)
        # What a reader sends is dropped; a reader that sends without end is
        # disconnected.
        st = self.open()
        st.sock.sendall(b"GET /v1/me HTTP/1.1\r\n\r\n")
        self.command()
        self.assertEqual(st.message()[1], "command.failed")
        try:
            st.sock.sendall(b"x" * (1 << 21))
        except ConnectionError:
            pass  # closed while sending
        st.drain()
        self.assertFalse(st.ended)  # closed, not ended with a last chunk
        self.assertEqual(self.server.log().count("event stream closed by the client"), before + 2)

    def test_slow_reader_is_cut_off_and_resumes(self):
        """A reader that stops reading is closed once 4 KiB wait for it; it
        reads what was sent, sees the end, and resumes from its last id."""
        cut_before = self.metric("clsm_event_streams_cut_total")
        start = self.last_seq()
        slow = self.open(rcvbuf=2048, timeout=20)
        # Large events (the URL is in the payload) fill the socket buffers.
        url = "http://127.0.0.1:9/" + "x" * 1900
        deadline = time.time() + 30
        while (self.metric("clsm_event_streams_cut_total") == cut_before
               and time.time() < deadline):
            for _ in range(10):
                self.hook(VNB, url=url)
        self.assertGreater(self.metric("clsm_event_streams_cut_total"), cut_before)
        self.assertIn("event stream closed: the client reads too slowly", self.server.log())
        got = slow.drain()
        self.assertTrue(slow.ended or slow.eof)
        seqs = [s for s, _, _ in got]
        self.assertEqual(seqs, list(range(start + 1, start + 1 + len(seqs))))
        last = self.last_seq()
        self.assertLess(seqs[-1] if seqs else start, last)
        resumed = self.open(headers={"Last-Event-ID": str(seqs[-1] if seqs else start)})
        rest = [s for s, _, _ in resumed.messages(last - (seqs[-1] if seqs else start))]
        self.assertEqual(rest, list(range((seqs[-1] if seqs else start) + 1, last + 1)))


class ShutdownTest(unittest.TestCase):
    def test_shutdown_ends_streams(self):
        server = clsmtest.Clsmd(args=("--set", "shutdown.grace_ms=10000")).start()
        try:
            st = Stream(server.port, server.admin_token, path="/v1/events?after=0")
            self.assertEqual(st.status, 200)
            t0 = time.time()
            server.proc.send_signal(signal.SIGTERM)
            self.assertEqual(st.drain(), [])
            self.assertTrue(st.ended, "the stream ends with its last chunk")
            self.assertEqual(server.proc.wait(10), 0)
            self.assertLess(time.time() - t0, 5, "streams do not hold the shutdown")
            log = server.log()
            self.assertIn("event stream closed: shutting down", log)
            for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
                self.assertNotIn(bad, log)
            st.close()
        finally:
            server.cleanup()


if __name__ == "__main__":
    clsmtest.main()
