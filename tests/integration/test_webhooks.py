"""Webhook subscriptions and their deliveries: /v1/webhooks.

The real clsmd (channels off) posts events to a small HTTP server of the
test's own (standard library), which records what it gets and answers as the
test tells it: 2xx, errors, oversized answers, or not at all (stopped).
Back-off is capped at one second and a subscription counts as failing after
two, so that retries and state changes show within a few seconds.
"""
import hashlib
import hmac
import http.server
import json
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import clsmtest  # noqa: E402

VNB = "9900000000001"
LF = "9900000000002"
SECRET = "s3cret-for-the-hook-0123"
CONTROL = {"type": "limit", "direction": "consumption", "value_w": 4200, "active": True,
           "duration_s": 3600}
ARGS = ("--set", "webhook.retry_max_s=1", "--set", "webhook.failing_after_s=2",
        "--set", "webhook.batch_max=5", "--set", "webhook.batch_bytes=1500",
        "--set", "webhook.max_per_party=3",
        "--set", "webhook.timeout_s=2")


def base_doc():
    return {
        "parties": [{"id": VNB, "name": "Netz", "role": "vnb"},
                    {"id": LF, "name": "Lieferant", "role": "lf"}],
        "segments": [{"id": "S", "name": "s", "level": "substation", "vnb": VNB}],
        "gwas": [{"id": "G", "name": "g", "endpoint": "https://127.0.0.1:9441"}],
        "smgws": [{"id": "EABC0000000001", "gwa": "G", "segment": "S"}],
        "devices": [{"id": "D1", "smgw": "EABC0000000001", "kind": "steuerbox"}],
    }


def wait_for(cond, timeout=15, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Receiver:
    """An HTTP server that records POSTs. 'script' holds the next answers as
    (status, body); after it runs out, 'default' answers."""

    def __init__(self, port=0):
        self.lock = threading.Lock()
        self.got = []  # (status answered, headers, body)
        self.script = []
        self.default = (200, b"thanks")
        self.port = port
        self.start()

    def start(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    status, answer = receiver.script.pop(0) if receiver.script \
                        else receiver.default
                    receiver.got.append((status, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # clsmd cut a connection short (an answer too large)

        self.httpd = Server(("127.0.0.1", self.port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def accepted(self, hook=None):
        """Events of the deliveries answered with 2xx, in order."""
        with self.lock:
            got = list(self.got)
        out = []
        for status, headers, body in got:
            if 200 <= status < 300 and (hook is None or headers.get("X-Clsm-Webhook") == hook):
                out += json.loads(body)
        return out

    def requests(self, hook):
        with self.lock:
            return [g for g in self.got if g[1].get("X-Clsm-Webhook") == hook]


class WebhookTest(clsmtest.ServerTest):
    server_args = ARGS

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
        self.rx = Receiver()
        self.hooks = []

    def tearDown(self):
        for hid, token in self.hooks:
            self.server.request("DELETE", "/v1/webhooks/" + hid, token=token)
        self.rx.stop()

    def subscribe(self, token="admin", **body):
        t = self.server.admin_token if token == "admin" else token
        r = self.server.request("POST", "/v1/webhooks", body=body, token=t)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.header("Location"), "/v1/webhooks/" + r.json()["id"])
        self.hooks.append((r.json()["id"], t))
        return r.json()

    def get_hook(self, hid):
        for h in self.server.request("GET", "/v1/webhooks").json()["items"]:
            if h["id"] == hid:
                return h
        return None

    def command(self):
        r = self.server.request("POST", "/v1/devices/D1/commands", body={"control": CONTROL})
        self.assertEqual(r.status, 202, r)

    def audit(self, after=0):
        items = []
        while True:
            page = self.server.request("GET", "/v1/audit?limit=1000&after=%d" % after).json()
            items += page["items"]
            if page["next_after"] is None:
                return items
            after = page["next_after"]

    # --- subscriptions -----------------------------------------------------------

    def test_subscription_checks(self):
        s = self.server
        bad = [
            ({}, "/url"),
            ({"url": "ftp://example.org/x"}, "/url"),
            ({"url": "http://user:pw@example.org/"}, "/url"),
            ({"url": "http://example.org/x#frag"}, "/url"),
            ({"url": "http://example.org/" + "x" * 2100}, "/url"),
            ({"url": self.rx.url(), "kinds": "request."}, "/kinds"),
            ({"url": self.rx.url(), "kinds": ["ok.", "not ok"]}, "/kinds/1"),
            ({"url": self.rx.url(), "secret": "short"}, "/secret"),
            ({"url": self.rx.url(), "secret": 12345678901234567}, "/secret"),
            ({"url": self.rx.url(), "events": ["x"]}, "/events"),
        ]
        for body, pointer in bad:
            self.assertProblem(s.request("POST", "/v1/webhooks", body=body), 422, pointer=pointer)
        self.assertProblem(s.request("POST", "/v1/webhooks", raw="{\"url\":"), 400)
        self.assertProblem(s.request("POST", "/v1/webhooks", raw="[]"), 422)
        self.assertProblem(s.request("POST", "/v1/webhooks", body={"url": self.rx.url()},
                                     content_type="text/plain"), 415)
        self.assertProblem(s.request("POST", "/v1/webhooks", body={"url": self.rx.url()},
                                     token=None), 401)
        self.assertProblem(s.request("GET", "/v1/webhooks?x=1"), 400, field="x")
        self.assertEqual(s.request("GET", "/v1/webhooks").json()["items"], [])

        # Each party sees its own; the admin all. The secret never comes back.
        lf = self.subscribe(self.tokens[LF], url=self.rx.url("/lf"), secret=SECRET,
                            kinds=["webhook."])
        vnb = self.subscribe(self.tokens[VNB], url=self.rx.url("/vnb"))
        self.assertEqual(lf["party"], LF)
        self.assertTrue(lf["has_secret"])
        self.assertEqual(lf["kinds"], ["webhook."])
        self.assertEqual(lf["state"], "active")
        self.assertFalse(vnb["has_secret"])
        mine = s.request("GET", "/v1/webhooks", token=self.tokens[LF])
        self.assertEqual([h["id"] for h in mine.json()["items"]], [lf["id"]])
        self.assertNotIn(SECRET.encode(), mine.body)
        every = s.request("GET", "/v1/webhooks")
        self.assertEqual(sorted(h["id"] for h in every.json()["items"]),
                         sorted([lf["id"], vnb["id"]]))
        self.assertNotIn(SECRET.encode(), every.body)

        # Only the owner (or the admin) deletes; others are told it is not there.
        self.assertProblem(s.request("DELETE", "/v1/webhooks/" + lf["id"],
                                     token=self.tokens[VNB]), 404)
        self.assertProblem(s.request("DELETE", "/v1/webhooks/wh-0000000000000000"), 404)
        self.assertEqual(s.request("DELETE", "/v1/webhooks/" + lf["id"],
                                   token=self.tokens[LF]).status, 204)
        self.assertProblem(s.request("DELETE", "/v1/webhooks/" + lf["id"],
                                     token=self.tokens[LF]), 404)
        self.assertEqual(s.request("DELETE", "/v1/webhooks/" + vnb["id"]).status, 204)

        # At most three per party.
        for i in range(3):
            self.subscribe(self.tokens[LF], url=self.rx.url("/n%d" % i))
        r = s.request("POST", "/v1/webhooks", body={"url": self.rx.url()}, token=self.tokens[LF])
        self.assertProblem(r, 409)
        self.assertEqual(len(s.request("GET", "/v1/webhooks",
                                       token=self.tokens[LF]).json()["items"]), 3)
        # Subscriptions are audited for their party.
        kinds = [(e["kind"], e["audience"]) for e in self.audit()
                 if e["kind"].startswith("webhook.")]
        self.assertIn(("webhook.created", LF), kinds)
        self.assertIn(("webhook.deleted", LF), kinds)

    def test_subscriptions_go_with_their_party(self):
        s = self.server
        party = "9900000000077"
        self.assertEqual(s.request("POST", "/v1/parties", body={
            "id": party, "name": "Aggregator", "role": "aggregator"}).status, 201)
        token = s.request("POST", "/v1/parties/%s/tokens" % party, body={}).json()["token"]
        hook = self.subscribe(token, url=self.rx.url())
        wait_for(lambda: self.rx.accepted(hook["id"]), what="its own creation event")
        self.hooks.pop()
        self.assertEqual(s.request("DELETE", "/v1/parties/" + party).status, 204)
        self.assertIsNone(self.get_hook(hook["id"]))
        self.assertIn('msg="webhook removed with its party"', s.log())
        self.command()  # the engine goes on without it
        self.assertProblem(s.request("DELETE", "/v1/webhooks/" + hook["id"]), 404)

    # --- deliveries ----------------------------------------------------------------

    def test_signed_ordered_and_only_what_the_party_sees(self):
        hook = self.subscribe(self.tokens[LF], url=self.rx.url(), secret=SECRET,
                              kinds=["webhook."])
        for _ in range(4):
            self.command()  # admin-only: never sent to the party
            extra = self.subscribe(self.tokens[LF], url="http://127.0.0.1:9/x")
            self.server.request("DELETE", "/v1/webhooks/" + extra["id"], token=self.tokens[LF])
            self.hooks.pop()
        want = [e for e in self.audit() if LF in e["audience"].split()
                and e["kind"].startswith("webhook.") and e["seq"] >= 1]
        want = want[[e["subject"] for e in want].index("webhook:" + hook["id"]):]
        self.assertEqual(len(want), 9)  # its own creation and 4 x (created, deleted)
        got = wait_for(lambda: len(self.rx.accepted(hook["id"])) >= 9 and
                       self.rx.accepted(hook["id"]), what="deliveries")
        self.assertEqual([e["seq"] for e in got], [e["seq"] for e in want])
        self.assertEqual([e["kind"] for e in got], [e["kind"] for e in want])
        self.assertEqual(sorted(got[0]), ["actor", "kind", "payload", "seq", "subject", "time"])
        self.assertEqual(got[0]["payload"]["id"], hook["id"])
        for status, headers, body in self.rx.requests(hook["id"]):
            batch = json.loads(body)
            self.assertLessEqual(len(batch), 5)
            self.assertEqual(headers["Content-Type"], "application/json")
            self.assertEqual(headers["X-Clsm-Seq"], "%d-%d" % (batch[0]["seq"], batch[-1]["seq"]))
            sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            self.assertEqual(headers["X-Clsm-Signature"], sig)
        self.assertGreater(len(self.rx.requests(hook["id"])), 1)  # batches of at most 5
        h = wait_for(lambda: self.get_hook(hook["id"])["cursor"] >= want[-1]["seq"] and
                     self.get_hook(hook["id"]), what="the cursor")
        self.assertEqual(h["failures"], 0)
        self.assertIsNotNone(h["last_success_at"])

    def test_batches_are_bounded_in_count_and_bytes(self):
        hook = self.subscribe(url=self.rx.url(), kinds=["command.", "webhook.created"])
        for _ in range(7):
            self.command()  # small events: five to a batch
        for i in range(3):  # events of about 1.3 kB: one to a batch
            extra = self.subscribe(url="http://127.0.0.1:9/%d/%s" % (i, "y" * 1200))
            self.server.request("DELETE", "/v1/webhooks/" + extra["id"])
            self.hooks.pop()
        got = wait_for(lambda: len(self.rx.accepted(hook["id"])) >= 11 and
                       self.rx.accepted(hook["id"]), what="the deliveries")
        # Its own creation comes first.
        self.assertEqual([e["kind"] for e in got],
                         ["webhook.created"] + ["command.failed"] * 7 + ["webhook.created"] * 3)
        sizes = [(len(json.loads(b)), len(b)) for _, _, b in self.rx.requests(hook["id"])]
        self.assertEqual(max(n for n, _ in sizes), 5)
        for n, size in sizes:
            self.assertTrue(size <= 1500 or n == 1, sizes)
        self.assertTrue(any(size > 1200 and n == 1 for n, size in sizes), sizes)
        body = self.server.request("GET", "/metrics", token=None).body.decode()
        self.assertRegex(body, r"clsm_webhook_deliveries_total [1-9]")
        self.assertRegex(body, r"clsm_webhook_events_total [1-9]")

    def test_admin_gets_everything_unsigned(self):
        hook = self.subscribe(url=self.rx.url(), kinds=["command."])
        self.command()
        got = wait_for(lambda: self.rx.accepted(hook["id"]), what="a delivery")
        self.assertEqual(got[0]["kind"], "command.failed")
        self.assertEqual(got[0]["subject"], "device:D1")
        self.assertNotIn("X-Clsm-Signature", self.rx.requests(hook["id"])[0][1])

    def test_retried_after_failures(self):
        self.rx.script = [(500, b"boom")] * 3
        hook = self.subscribe(url=self.rx.url(), kinds=["command."])
        self.command()
        h = wait_for(lambda: (self.get_hook(hook["id"]) or {}).get("failures", 0) >= 1 and
                     self.get_hook(hook["id"]), what="a failure")
        self.assertEqual(h["last_error"], "HTTP 500: boom")
        self.assertIsNotNone(h["last_attempt_at"])
        self.command()
        got = wait_for(lambda: len(self.rx.accepted(hook["id"])) >= 2 and
                       self.rx.accepted(hook["id"]), what="the retried delivery")
        seqs = [e["seq"] for e in got]
        self.assertEqual(seqs, sorted(set(seqs)))
        reqs = self.rx.requests(hook["id"])
        self.assertEqual([r[0] for r in reqs[:4]], [500, 500, 500, 200])
        # The failed batch was sent again as it was.
        self.assertEqual(reqs[0][1]["X-Clsm-Seq"].split("-")[0],
                         reqs[3][1]["X-Clsm-Seq"].split("-")[0])
        h = wait_for(lambda: self.get_hook(hook["id"])["failures"] == 0 and
                     self.get_hook(hook["id"]), what="recovery")
        self.assertEqual(h["state"], "active")
        self.assertIsNone(h["last_error"])
        self.assertIn('msg="webhook delivery failed; retrying"', self.server.log())

    def test_failing_then_recovered(self):
        self.rx.default = (503, b"down")
        hook = self.subscribe(url=self.rx.url(), kinds=["command."])
        self.command()
        h = wait_for(lambda: self.get_hook(hook["id"])["state"] == "failing" and
                     self.get_hook(hook["id"]), what="failing")
        self.assertGreaterEqual(h["failures"], 2)
        self.assertIsNotNone(h["failing_since"])
        self.assertEqual(self.rx.accepted(hook["id"]), [])
        self.rx.default = (204, b"")
        wait_for(lambda: self.get_hook(hook["id"])["state"] == "active", what="recovery")
        got = wait_for(lambda: self.rx.accepted(hook["id"]), what="the delivery")
        self.assertEqual(got[0]["kind"], "command.failed")
        kinds = [e["kind"] for e in self.audit() if e["subject"] == "webhook:" + hook["id"]]
        self.assertEqual(kinds[:3], ["webhook.created", "webhook.failing", "webhook.recovered"])
        self.assertIn('msg="webhook failing"', self.server.log())

    def test_oversized_answer_counts_as_failure(self):
        self.rx.script = [(200, b"x" * 100000)]
        hook = self.subscribe(url=self.rx.url(), kinds=["command."])
        self.command()
        h = wait_for(lambda: (self.get_hook(hook["id"]) or {}).get("last_error") and
                     self.get_hook(hook["id"]), what="a failure")
        self.assertEqual(h["last_error"], "the answer exceeded 65536 bytes")
        wait_for(lambda: self.get_hook(hook["id"])["failures"] == 0, what="the retry")
        self.assertEqual([r[0] for r in self.rx.requests(hook["id"])], [200, 200])

    def test_transport_errors(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there
        hook = self.subscribe(url="http://127.0.0.1:%d/x" % port, kinds=["command."])
        self.command()
        h = wait_for(lambda: (self.get_hook(hook["id"]) or {}).get("last_error") and
                     self.get_hook(hook["id"]), what="a failure")
        self.assertIn("onnect", h["last_error"])
        failed = [e["seq"] for e in self.audit(hook["cursor"]) if e["kind"] == "command.failed"]
        self.assertLess(h["cursor"], failed[0])  # not delivered, not passed over


class RestartTest(unittest.TestCase):
    """Delivery resumes after SIGKILL and a restart where it stood."""

    def test_resume_after_restart(self):
        rx = Receiver()
        server = clsmtest.Clsmd(args=ARGS).start()
        try:
            self.assertEqual(server.request("POST", "/v1/import", body=base_doc()).status, 200)
            r = server.request("POST", "/v1/webhooks",
                               body={"url": rx.url(), "kinds": ["command."]})
            self.assertEqual(r.status, 201)
            hid = r.json()["id"]

            def command():
                r = server.request("POST", "/v1/devices/D1/commands", body={"control": CONTROL})
                self.assertEqual(r.status, 202)

            for _ in range(3):
                command()
            wait_for(lambda: len(rx.accepted()) == 3, what="the first deliveries")
            rx.stop()  # the receiver goes away: deliveries fail and are retried
            for _ in range(3):
                command()
            time.sleep(0.5)
            self.assertEqual(server.kill(), -9)
            server.start()
            rx.start()  # same port
            got = wait_for(lambda: len(rx.accepted()) >= 6 and rx.accepted(),
                           what="the deliveries after the restart")
            time.sleep(0.5)
            seqs = [e["seq"] for e in rx.accepted()]
            # Exactly once here: the cursor of the first three was durable.
            self.assertEqual(len(seqs), 6)
            self.assertEqual(seqs, sorted(set(seqs)))
            self.assertEqual([e["kind"] for e in got], ["command.failed"] * 6)
            hooks = server.request("GET", "/v1/webhooks").json()["items"]
            self.assertEqual(hooks[0]["id"], hid)
            wait_for(lambda: server.request("GET", "/v1/webhooks").json()["items"][0]["cursor"]
                     >= seqs[-1], what="the cursor")
            rc = server.stop()
            self.assertEqual(rc, 0)
            log = server.log()
            for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
                self.assertNotIn(bad, log)
        finally:
            rx.stop()
            server.cleanup()


if __name__ == "__main__":
    clsmtest.main()
