"""The secured CLS channel end to end (DESIGN.md §1 steps 2-7): clsmd asks
the GWA simulator for a channel, the GWA wakes the gateway in the fleet
simulator, the gateway fetches its order and dials clsmd with its own
certificate, the device (an MQTT client on libmosquitto) is commanded,
acknowledges, and its state is read back and recorded. Then every way a
channel or a wake-up can go wrong, each refused or handled with its reason
visible through the API, the log or the simulators' counters."""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import clsmtest  # noqa: E402

LIMIT = {"type": "limit", "direction": "consumption", "value_w": 4200, "active": True,
         "duration_s": 3600}


def device(system, i):
    return system.doc["devices"][i]["id"]


def limit_for(system, i, value_w=4200):
    """A limit the device has: PV limits production, the others consumption."""
    kind = system.doc["installations"][i]["kind"]
    return dict(LIMIT, value_w=value_w,
                direction="production" if kind == "pv" else "consumption")


def consumer(system, start):
    """The index of the first consuming device at or after 'start'."""
    i = start
    while system.doc["installations"][i]["kind"] == "pv":
        i += 1
    return i


def smgw(system, i):
    return system.doc["smgws"][i]["id"]


def metric(sys, name):
    """The value of one sample on clsmd's /metrics."""
    r = sys.clsmd.request("GET", "/metrics")
    if r.status != 200:
        raise AssertionError("/metrics: %r" % r)
    for line in r.body.decode().splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError("%s missing from /metrics" % name)


class SystemTest(unittest.TestCase):
    """One system per test class."""
    gwa_args = ()
    smgw_args = ()
    clsmd_args = ()
    gateways = 50

    @classmethod
    def setUpClass(cls):
        cls.sys = clsmtest.System(gateways=cls.gateways, gwa_args=cls.gwa_args,
                                  smgw_args=cls.smgw_args, clsmd_args=cls.clsmd_args)

    @classmethod
    def tearDownClass(cls):
        rcs = cls.sys.close()
        for name, log in cls.sys.logs.items():
            for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
                if bad in log:
                    raise AssertionError("sanitizer report in %s:\n%s" % (name, log[-6000:]))
        for name, rc in rcs.items():
            if rc != 0:
                raise AssertionError("%s exited with %r:\n%s" % (name, rc,
                                                                 cls.sys.logs[name][-4000:]))

    def submit(self, dev, control=LIMIT, **kw):
        r = self.sys.command(dev, control, **kw)
        self.assertEqual(r.status, 202, r)
        self.assertTrue(r.header("Location").startswith("/v1/commands/cmd-"))
        return r.json()["id"]


class CommandPathTest(SystemTest):
    def test_cold_channel_until_confirmed(self):
        dev = device(self.sys, 0)  # a heat pump
        channels = self.sys.clsmd.request("GET", "/v1/channels?device=" + dev).json()["items"]
        self.assertEqual(channels, [], "a channel was open before anyone asked for one")
        cid = self.submit(dev)
        c = self.sys.wait_command(cid)
        self.assertEqual(c["state"], "confirmed", c)
        for step in ("pending", "channel_requested", "channel_open", "sent", "acked", "confirmed"):
            self.assertIn(step, c["steps"], c)
        self.assertEqual(c["attempts"], 1)
        # The device really holds the limit, applied once.
        d = self.sys.sim_device(dev, cmd=cid)
        self.assertEqual(d["applied"], 1)
        self.assertEqual(d["state"]["limits"]["consumption"]["value_w"], 4200)
        # And the channel is open, from the right gateway, through the API.
        ch = self.sys.clsmd.request("GET", "/v1/channels?state=open&device=" + dev).json()
        self.assertEqual(len(ch["items"]), 1)
        self.assertEqual(ch["items"][0]["smgw"], smgw(self.sys, 0))
        # The GWA saw one accepted request and one delivered order.
        g = self.sys.gwa_stats()
        self.assertGreaterEqual(g["channel_requests"]["accepted"], 1, g)

    def test_warm_channel_reused(self):
        dev = device(self.sys, 1)  # a wallbox
        c1 = self.sys.wait_command(self.submit(dev))
        self.assertEqual(c1["state"], "confirmed")
        before = self.sys.gwa_stats()["channel_requests"]["accepted"]
        c2 = self.sys.wait_command(self.submit(dev, {"type": "switch", "level": "dim"}))
        self.assertEqual(c2["state"], "confirmed", c2)
        self.assertNotIn("channel_requested", c2["steps"], "an open channel was asked for again")
        self.assertEqual(self.sys.gwa_stats()["channel_requests"]["accepted"], before)
        self.assertEqual(self.sys.sim_device(dev)["state"]["level"], "dim")

    def test_metrics_count_commands_and_channels(self):
        confirmed = 'clsm_command_transitions_total{state="confirmed"}'
        before = metric(self.sys, confirmed)
        dev = device(self.sys, 4)
        c = self.sys.wait_command(self.submit(dev, {"type": "switch", "level": "dim"}))
        self.assertEqual(c["state"], "confirmed", c)
        self.assertEqual(metric(self.sys, confirmed), before + 1)
        self.assertEqual(metric(self.sys, 'clsm_commands{state="sent"}'), 0)
        opened = self.sys.clsmd.request("GET", "/v1/channels?state=open&limit=1000").json()
        self.assertEqual(metric(self.sys, 'clsm_channels{state="open"}'), len(opened["items"]))

    def test_commands_queue_per_device(self):
        i = consumer(self.sys, 3)
        dev = device(self.sys, i)
        ids = [self.submit(dev, limit_for(self.sys, i, 5000 + k)) for k in range(5)]
        states = [self.sys.wait_command(i)["state"] for i in ids]
        self.assertEqual(states, ["confirmed"] * 5)
        self.assertEqual(self.sys.sim_device(dev)["state"]["limits"]["consumption"]["value_w"],
                         5004)

    def test_many_devices_at_once(self):
        ids = [self.submit(device(self.sys, i), limit_for(self.sys, i)) for i in range(10, 40)]
        for cid in ids:
            self.assertEqual(self.sys.wait_command(cid, timeout=120)["state"], "confirmed")

    def test_bad_commands(self):
        r = self.sys.command(device(self.sys, 3), {"type": "limit", "value_w": -5})
        self.assertEqual(r.status, 422, r)
        self.assertTrue(r.json()["pointer"].startswith("/control"), r.json())
        r = self.sys.command(device(self.sys, 3), {"type": "frobnicate"})
        self.assertEqual(r.status, 422, r)
        r = self.sys.command(device(self.sys, 3), dict(LIMIT, cmd="mine"))
        self.assertEqual(r.status, 422, r)
        r = self.sys.command("NO-SUCH-DEVICE", LIMIT)
        self.assertEqual(r.status, 404, r)
        r = self.sys.command(device(self.sys, 3), LIMIT, deadline="2001-01-01T00:00:00Z")
        self.assertEqual(r.status, 422, r)
        r = self.sys.clsmd.request("GET", "/v1/commands/cmd-0000000000000000")
        self.assertEqual(r.status, 404, r)
        r = self.sys.clsmd.request("GET", "/v1/channels?state=sleeping")
        self.assertEqual(r.status, 400, r)


class GwaRefusesTest(SystemTest):
    gateways = 5

    @classmethod
    def setUpClass(cls):
        # The fleet is made before the GWA starts, so its ids are known.
        cls.gwa_args = ("--deny", "SB-ETST0000000002")
        super().setUpClass()

    def test_403_fails_with_the_gwas_reason(self):
        cid = self.submit("SB-ETST0000000002")
        c = self.sys.wait_command(cid)
        self.assertEqual(c["state"], "failed")
        self.assertIn("not entitled", c["error"])
        self.assertIn("GWA-01", c["error"])


class GwaThrottlesTest(SystemTest):
    gateways = 12
    gwa_args = ("--throttle", "1")
    clsmd_args = ("--set", "gwa.batch_max=1")

    def test_429_retried_after_retry_after(self):
        ids = [self.submit(device(self.sys, i), limit_for(self.sys, i)) for i in range(6)]
        for cid in ids:
            self.assertEqual(self.sys.wait_command(cid, timeout=90)["state"], "confirmed")
        self.assertGreater(self.sys.gwa_stats()["throttled"], 0)
        self.assertIn("429", self.sys.clsmd.log())


class PendingWindowTest(SystemTest):
    """At most gwa.max_pending channel requests are with a GWA and not yet
    opened; the rest wait in clsmd's queue until one opens or expires."""
    gateways = 8
    gwa_args = ("--drop-wakeups", "100")  # accepted, but no gateway ever dials
    clsmd_args = ("--set", "gwa.max_pending=3", "--set", "gwa.channel_wait_s=5")

    def gauge(self, state):
        return metric(self.sys, 'clsm_gwa_channel_requests{state="%s"}' % state)

    def test_window_holds_and_moves_on_expiry(self):
        ids = [self.submit(device(self.sys, i), limit_for(self.sys, i)) for i in range(6)]
        deadline = time.time() + 5
        while self.sys.gwa_stats()["channel_requests"]["accepted"] < 3 and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # time for more to go out, were the window not held
        self.assertEqual(self.sys.gwa_stats()["channel_requests"]["accepted"], 3)
        self.assertEqual(self.gauge("with_gwa"), 3)
        self.assertEqual(self.gauge("queued"), 3)
        # The first three expire (5 s plus a poll); the queued three take
        # their places, the expired ones queue again behind them.
        seen_max = 0
        deadline = time.time() + 20
        while self.sys.gwa_stats()["channel_requests"]["accepted"] < 6 and time.time() < deadline:
            seen_max = max(seen_max, self.gauge("with_gwa"))
            time.sleep(0.2)
        self.assertGreaterEqual(self.sys.gwa_stats()["channel_requests"]["accepted"], 6)
        self.assertLessEqual(seen_max, 3)
        for cid in ids:
            c = self.sys.clsmd.request("GET", "/v1/commands/" + cid).json()
            self.assertNotIn(c["state"], ("confirmed", "failed"), c)


class SmallWindowTest(SystemTest):
    """A window of one still serves every device, one channel after the
    other: an opened channel makes room at once."""
    gateways = 6
    clsmd_args = ("--set", "gwa.max_pending=1")

    def test_all_confirmed_through_a_window_of_one(self):
        t0 = time.time()
        ids = [self.submit(device(self.sys, i), limit_for(self.sys, i)) for i in range(6)]
        for cid in ids:
            self.assertEqual(self.sys.wait_command(cid, timeout=60)["state"], "confirmed")
        # Not paced by the status poll (2 s): six channels take far less.
        self.assertLess(time.time() - t0, 10)
        self.assertEqual(self.sys.gwa_stats()["channel_requests"]["accepted"], 6)
        self.assertEqual(metric(self.sys, 'clsm_gwa_channel_requests{state="with_gwa"}'), 0)


class DeviceFaultsTest(SystemTest):
    gateways = 8
    smgw_args = ("--fault", "drop:SB-ETST0000000001",
                 "--fault", "malformed:SB-ETST0000000002",
                 "--fault", "claim:SB-ETST0000000003:SB-ETST0000000004",
                 "--fault", "nack:SB-ETST0000000005",
                 "--fault", "slow:SB-ETST0000000006:1500",
                 "--fault", "wrongid:SB-ETST0000000007")
    clsmd_args = ("--set", "command.ack_timeout_s=3")

    def refusals(self):
        return self.sys.clsmd.request("GET", "/v1/channels").json()["refused"]

    def test_drop_mid_command_applies_once(self):
        dev = "SB-ETST0000000001"
        cid = self.submit(dev)
        c = self.sys.wait_command(cid, timeout=90)
        self.assertEqual(c["state"], "confirmed", c)
        self.assertGreaterEqual(c["attempts"], 2, "the command was not sent again")
        d = self.sys.sim_device(dev, cmd=cid)
        self.assertEqual(d["applied"], 1, d)
        self.assertGreaterEqual(d["duplicates"], 1, d)

    def test_malformed_mqtt_closes_the_channel(self):
        before = self.refusals()["protocol_error"]
        cid = self.submit("SB-ETST0000000002",
                          deadline=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                 time.gmtime(time.time() + 8)))
        c = self.sys.wait_command(cid, timeout=30)
        self.assertEqual(c["state"], "failed")
        self.assertGreater(self.refusals()["protocol_error"], before)
        self.assertIn("malformed MQTT", self.sys.clsmd.log())

    def test_device_not_behind_its_gateway(self):
        before = self.refusals()["device_not_behind_gateway"]
        cid = self.submit("SB-ETST0000000003",
                          deadline=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                 time.gmtime(time.time() + 8)))
        self.assertEqual(self.sys.wait_command(cid, timeout=30)["state"], "failed")
        self.assertGreater(self.refusals()["device_not_behind_gateway"], before)
        self.assertIn('reason="device not behind this gateway"', self.sys.clsmd.log())

    def test_unknown_device_id(self):
        before = self.refusals()["unknown_device"]
        cid = self.submit("SB-ETST0000000007",
                          deadline=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                 time.gmtime(time.time() + 8)))
        self.assertEqual(self.sys.wait_command(cid, timeout=30)["state"], "failed")
        self.assertGreater(self.refusals()["unknown_device"], before)

    def test_nack_fails_with_the_devices_reason(self):
        c = self.sys.wait_command(self.submit("SB-ETST0000000005"))
        self.assertEqual(c["state"], "failed")
        self.assertIn("error 3", c["error"])

    def test_slow_ack_is_waited_for(self):
        c = self.sys.wait_command(self.submit("SB-ETST0000000006",
                                              limit_for(self.sys, 5)), timeout=60)
        self.assertEqual(c["state"], "confirmed", c)


class CertificateTest(SystemTest):
    """Gateways that are not what they claim, dialled by hand with the
    openssl client (TLS 1.2 on brainpool, as the profile says)."""
    gateways = 3

    def dial(self, cert, key):
        # -cert_chain: send the issuing sub-CA along, as an attacker would.
        p = subprocess.run(["openssl", "s_client", "-connect",
                            "127.0.0.1:%d" % self.sys.channel_port, "-cert", cert, "-key", key,
                            "-cert_chain", cert,
                            "-CAfile", os.path.join(self.sys.pki, "root.crt"), "-tls1_2",
                            "-groups", "brainpoolP256r1"], input=b"", capture_output=True,
                           timeout=30)
        return p

    def refused(self):
        return self.sys.clsmd.request("GET", "/v1/channels").json()["refused"]

    def split(self, bundle, out):
        with open(bundle) as f:
            text = f.read()
        cert = text[text.index("-----BEGIN CERTIFICATE"):text.index("-----END CERTIFICATE") + 26]
        key = text[text.index("-----BEGIN PRIVATE KEY"):text.index("-----END PRIVATE KEY") + 25]
        with open(out + ".crt", "w") as f:
            f.write(cert + "\n")
        with open(out + ".key", "w") as f:
            f.write(key + "\n")
        return out + ".crt", out + ".key"

    def test_certificate_from_another_ca(self):
        other = os.path.join(self.sys.dir, "other")
        ids = os.path.join(self.sys.dir, "one.ids")
        with open(ids, "w") as f:
            f.write(smgw(self.sys, 0) + "\n")
        subprocess.run([clsmtest.CLSM_PKI, "init", other], check=True, capture_output=True)
        subprocess.run([clsmtest.CLSM_PKI, "smgw", other, "--ids", ids], check=True,
                       capture_output=True)
        cert, key = self.split(os.path.join(other, "smgw", "gateways.pem"),
                               os.path.join(self.sys.dir, "rogue"))
        before = self.refused()["tls_handshake"]
        self.dial(cert, key)
        time.sleep(0.3)
        self.assertEqual(self.refused()["tls_handshake"], before + 1)
        self.assertIn("certificate verify failed", self.sys.clsmd.log())

    def test_expired_certificate(self):
        out = os.path.join(self.sys.dir, "expired")
        subprocess.run([clsmtest.CLSM_PKI, "leaf", self.sys.pki, "--ca", "smgw", "--cn",
                        smgw(self.sys, 1), "--not-before", "-10", "--not-after", "-1", "--out",
                        out], check=True, capture_output=True)
        before = self.refused()["tls_handshake"]
        self.dial(out + ".crt", out + ".key")
        time.sleep(0.3)
        self.assertEqual(self.refused()["tls_handshake"], before + 1)
        self.assertIn("certificate has expired", self.sys.clsmd.log())

    def test_leaf_of_another_sub_ca(self):
        """The root is trusted, so TLS accepts an EMT-issued certificate; the
        gateway check must not (only the SMGW sub-CA issues gateways)."""
        out = os.path.join(self.sys.dir, "impostor")
        subprocess.run([clsmtest.CLSM_PKI, "leaf", self.sys.pki, "--ca", "emt", "--cn",
                        smgw(self.sys, 2), "--out", out], check=True, capture_output=True)
        before = self.refused()["bad_certificate_name"]
        self.dial(out + ".crt", out + ".key")
        time.sleep(0.3)
        self.assertEqual(self.refused()["bad_certificate_name"], before + 1)
        self.assertIn("not issued by the SMGW sub-CA", self.sys.clsmd.log())

    def test_gateway_not_in_registry(self):
        out = os.path.join(self.sys.dir, "stranger")
        subprocess.run([clsmtest.CLSM_PKI, "leaf", self.sys.pki, "--ca", "smgw", "--cn",
                        "EZZZ0000000001", "--out", out], check=True, capture_output=True)
        before = self.refused()["unknown_gateway"]
        self.dial(out + ".crt", out + ".key")
        time.sleep(0.3)
        self.assertEqual(self.refused()["unknown_gateway"], before + 1)
        self.assertEqual(metric(self.sys, 'clsm_channel_refusals_total{reason="unknown_gateway"}'),
                         before + 1)
        self.assertIn('smgw=EZZZ0000000001 device="" reason="gateway not in the registry"',
                      self.sys.clsmd.log())


class WakeupTest(SystemTest):
    """Forged, stale and replayed wake-ups reach the fleet and are ignored."""
    gateways = 2

    def datagram(self, ts_ms=None, nonce=None):
        gw = smgw(self.sys, 0).encode()
        gwa = b"GWA-01"
        ts_ms = int(time.time() * 1000) if ts_ms is None else ts_ms
        nonce = nonce or os.urandom(16)
        body = b"CLWU" + bytes([1]) + gw + bytes([len(gwa)]) + gwa + struct.pack(">Q", ts_ms) + nonce
        with tempfile.NamedTemporaryFile() as f:
            f.write(body)
            f.flush()
            sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign",
                                  os.path.join(self.sys.pki, "gwa", "GWA-01.key"), f.name],
                                 check=True, capture_output=True).stdout
        return body + struct.pack(">H", len(sig)) + sig

    def send(self, data):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(data, ("127.0.0.1", self.sys.udp_port))
        s.close()
        time.sleep(0.3)

    def rejected(self):
        return self.sys.sim_stats()["wakeups_rejected"]

    def test_valid_then_replayed(self):
        d = self.datagram()
        before = self.sys.sim_stats()
        self.send(d)
        after = self.sys.sim_stats()
        self.assertEqual(after["wakeups_accepted"], before["wakeups_accepted"] + 1)
        self.send(d)
        self.assertEqual(self.rejected()["replay"], before["wakeups_rejected"]["replay"] + 1)

    def test_stale_and_future(self):
        before = self.rejected()["stale"]
        self.send(self.datagram(ts_ms=int(time.time() * 1000) - 120000))
        self.send(self.datagram(ts_ms=int(time.time() * 1000) + 120000))
        self.assertEqual(self.rejected()["stale"], before + 2)

    def test_bad_signature(self):
        d = bytearray(self.datagram())
        d[-3] ^= 0x01
        before = self.rejected()["bad_signature"]
        self.send(bytes(d))
        self.assertEqual(self.rejected()["bad_signature"], before + 1)

    def test_malformed(self):
        before = self.rejected()["malformed"]
        self.send(b"CLWU\x01garbage")
        self.assertEqual(self.rejected()["malformed"], before + 1)


if __name__ == "__main__":
    clsmtest.main()
