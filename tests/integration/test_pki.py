"""clsm-pki end to end: init, smgw (--count and --ids), leaf, refusal to
overwrite, usage errors, the certificates checked with the openssl command
line, mutual TLS 1.2 with brainpool certificates (openssl s_server/s_client
and Python's ssl module), and scripts/mkpki.sh."""
import calendar
import os
import re
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import clsmtest  # noqa: E402

TOOL = os.path.join(clsmtest.BUILD_DIR, "clsm-pki")
MKPKI = os.path.join(clsmtest.SOURCE_DIR, "scripts", "mkpki.sh")
PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----\n.*?-----END \1-----\n", re.S)
CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"
DAY = 86400


def pki(*args, check=True):
    r = subprocess.run([TOOL] + list(args), capture_output=True, text=True, timeout=300)
    for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
        if bad in r.stderr:
            raise AssertionError("sanitizer report from clsm-pki %s:\n%s" % (" ".join(args),
                                                                          r.stderr))
    if check and r.returncode != 0:
        raise AssertionError("clsm-pki %s: exit %d\n%s" % (" ".join(args), r.returncode, r.stderr))
    return r


def openssl(*args, input=None):
    return subprocess.run(["openssl"] + list(args), capture_output=True, text=True, input=input,
                          timeout=60)


def blocks(path):
    """[(type, pem text)] of a PEM file, in order."""
    with open(path) as f:
        return [(m.group(1), m.group(0)) for m in PEM.finditer(f.read())]


def cert_text(path):
    r = openssl("x509", "-in", path, "-noout", "-text")
    assert r.returncode == 0, r.stderr
    return r.stdout


def all_certs_text(path):
    """The text of every certificate of a PEM file, in one openssl run."""
    p7 = subprocess.run(["openssl", "crl2pkcs7", "-nocrl", "-certfile", path],
                        capture_output=True, check=True, timeout=60).stdout
    r = subprocess.run(["openssl", "pkcs7", "-print_certs", "-text", "-noout"], input=p7,
                       capture_output=True, check=True, timeout=60)
    return r.stdout.decode()


def subjects_of(path):
    """The subject common names of the certificates of a PEM file, in order."""
    return re.findall(r"Subject: .*CN ?= ?(\S+)", all_certs_text(path))


def dates(path):
    """(notBefore, notAfter) of a certificate as Unix times."""
    out = openssl("x509", "-in", path, "-noout", "-startdate", "-enddate").stdout
    parse = lambda s: calendar.timegm(time.strptime(s.strip(), "%b %d %H:%M:%S %Y GMT"))
    nb = re.search(r"notBefore=(.*)", out).group(1)
    na = re.search(r"notAfter=(.*)", out).group(1)
    return parse(nb), parse(na)


class PkiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(TOOL, os.X_OK):
            raise AssertionError("%s is not built (the clsm-pki target of CMakeLists.txt)" % TOOL)
        cls.tmp = tempfile.TemporaryDirectory(prefix="clsm-pki-test-")
        cls.dir = os.path.join(cls.tmp.name, "pki")
        pki("init", cls.dir, "--gwa", "GWA-01", "--gwa", "GWA-02")
        cls.smgw_run = pki("smgw", cls.dir, "--count", "200", "--prefix", "ETST")
        cls.bundle = os.path.join(cls.dir, "smgw", "gateways.pem")
        cls.blocks = blocks(cls.bundle)
        # Single gateways as files, for openssl and TLS.
        for i in (0, 199):
            for kind, (_, text) in (("crt", cls.blocks[2 * i]), ("key", cls.blocks[2 * i + 1])):
                cls.write("gw%d.%s" % (i + 1, kind), text)
        pki("leaf", cls.dir, "--ca", "smgw", "--cn", "ETST0000009999", "--not-after", "-1")
        pki("leaf", cls.dir, "--ca", "emt", "--cn", "ETST0000000001", "--out",
            cls.path("wrong-ca"))
        pki("leaf", cls.dir, "--ca", "smgw", "--cn", "ETST0000000002", "--not-before", "+1",
            "--out", cls.path("future"))
        # Another PKI on the same curve: its gateways are strangers.
        cls.other = os.path.join(cls.tmp.name, "other")
        pki("init", cls.other)
        pki("smgw", cls.other, "--count", "1", "--prefix", "EOTH")
        other = blocks(os.path.join(cls.other, "smgw", "gateways.pem"))
        cls.write("other.crt", other[0][1])
        cls.write("other.key", other[1][1])
        cls.nist = os.path.join(cls.tmp.name, "nist")
        pki("init", cls.nist, "--curve", "prime256v1")
        pki("smgw", cls.nist, "--count", "3", "--prefix", "ENST")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @classmethod
    def path(cls, name):
        return os.path.join(cls.tmp.name, name)

    @classmethod
    def write(cls, name, text):
        with open(cls.path(name), "w") as f:
            f.write(text)
        return cls.path(name)

    def p(self, *parts):
        return os.path.join(self.dir, *parts)

    def verify(self, chain, cert, *opts):
        return openssl("verify", "-x509_strict", *opts, "-CAfile", chain, cert)

    # --- init -----------------------------------------------------------------

    def test_layout_and_modes(self):
        for name in ("root", "gwa-ca", "emt-ca", "smgw-ca", "emt/clsmd", "gwa/GWA-01",
                     "gwa/GWA-02"):
            self.assertEqual(stat.S_IMODE(os.stat(self.p(name + ".crt")).st_mode), 0o644, name)
            self.assertEqual(stat.S_IMODE(os.stat(self.p(name + ".key")).st_mode), 0o600, name)
            self.assertEqual([t for t, _ in blocks(self.p(name + ".key"))], ["PRIVATE KEY"])
        self.assertEqual(stat.S_IMODE(os.stat(self.bundle).st_mode), 0o600)
        with open(self.p("curve")) as f:
            self.assertEqual(f.read(), "brainpoolP256r1\n")
        # Chain files: the sub-CA, then the root. Leaf files: leaf, then issuer.
        root = blocks(self.p("root.crt"))[0][1]
        for ca in ("smgw", "emt", "gwa"):
            chain = blocks(self.p(ca + "-chain.pem"))
            self.assertEqual([c for _, c in chain],
                             [blocks(self.p(ca + "-ca.crt"))[0][1], root])
        leaf = blocks(self.p("emt", "clsmd.crt"))
        self.assertEqual(len(leaf), 2)
        self.assertEqual(leaf[1][1], blocks(self.p("emt-ca.crt"))[0][1])
        self.assertFalse([f for f in os.listdir(self.dir) if f.endswith(".tmp")])

    def test_certificate_shapes(self):
        root = cert_text(self.p("root.crt"))
        self.assertIn("Subject: C = DE, O = clsm test PKI, CN = clsm test root CA", root)
        self.assertRegex(root, r"Basic Constraints: critical\s+CA:TRUE, pathlen:1")
        self.assertRegex(root, r"Key Usage: critical\s+Certificate Sign, CRL Sign")
        for ca in ("SMGW", "EMT", "GWA"):
            t = cert_text(self.p(ca.lower() + "-ca.crt"))
            self.assertIn("CN = clsm test %s CA" % ca, t)
            self.assertIn("Issuer: C = DE, O = clsm test PKI, CN = clsm test root CA", t)
            self.assertRegex(t, r"Basic Constraints: critical\s+CA:TRUE, pathlen:0")
            self.assertRegex(t, r"Key Usage: critical\s+Certificate Sign, CRL Sign")
        for leaf, cn in (("emt/clsmd.crt", "clsmd"), ("gwa/GWA-01.crt", "GWA-01")):
            t = cert_text(self.p(leaf))
            self.assertIn("Subject: C = DE, O = clsm test PKI, CN = " + cn, t)
            self.assertRegex(t, r"Key Usage: critical\s+Digital Signature, Key Agreement")
            self.assertRegex(t, r"Extended Key Usage: \s*TLS Web Server Authentication, "
                                r"TLS Web Client Authentication")
            self.assertRegex(t, r"DNS:localhost, IP Address:127\.0\.0\.1, "
                                r"IP Address:0:0:0:0:0:0:0:1")
        gw = cert_text(self.path("gw1.crt"))
        self.assertIn("Subject: C = DE, O = clsm test PKI, CN = ETST0000000001", gw)
        self.assertIn("Issuer: C = DE, O = clsm test PKI, CN = clsm test SMGW CA", gw)
        self.assertRegex(gw, r"Basic Constraints: critical\s+CA:FALSE")
        self.assertRegex(gw, r"Key Usage: critical\s+Digital Signature, Key Agreement")
        self.assertRegex(gw, r"Extended Key Usage: \s*TLS Web Client Authentication\n")
        self.assertNotIn("Alternative Name", gw)
        for t in (root, gw):
            self.assertIn("Signature Algorithm: ecdsa-with-SHA256", t)
            self.assertIn("ASN1 OID: brainpoolP256r1", t)
        # Key identifiers: the gateway's authority key id is the sub-CA's key id.
        ca_skid = re.search(r"Subject Key Identifier: \s*([0-9A-F:]+)",
                            cert_text(self.p("smgw-ca.crt"))).group(1)
        self.assertEqual(re.search(r"Authority Key Identifier: \s*(?:keyid:)?([0-9A-F:]+)",
                                   gw).group(1), ca_skid)
        self.assertRegex(gw, r"Subject Key Identifier: \s*[0-9A-F:]{59}")

    def test_validity_defaults(self):
        now = time.time()
        for name, days in (("root.crt", 3650), ("emt-ca.crt", 2920), ("emt/clsmd.crt", 730),
                           ("gw1.crt", 730)):
            path = self.path(name) if name.startswith("gw") else self.p(name)
            nb, na = dates(path)
            self.assertLess(nb, now)
            self.assertGreater(nb, now - 2 * 3600)  # backdated an hour for clock skew
            self.assertAlmostEqual(na - nb, days * DAY + 3600, delta=120, msg=name)

    def test_chains_verify_with_openssl(self):
        for cert in (self.path("gw1.crt"), self.path("gw200.crt")):
            r = self.verify(self.p("smgw-chain.pem"), cert, "-purpose", "sslclient")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn(": OK", r.stdout)
        for chain, cert in (("emt-chain.pem", "emt/clsmd.crt"), ("gwa-chain.pem", "gwa/GWA-01.crt"),
                            ("gwa-chain.pem", "gwa/GWA-02.crt")):
            for purpose in ("sslserver", "sslclient"):
                r = self.verify(self.p(chain), self.p(cert), "-purpose", purpose)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # Trusting only the root works when the sub-CA comes along as untrusted.
        r = self.verify(self.p("root.crt"), self.p("emt/clsmd.crt"), "-untrusted",
                        self.p("emt/clsmd.crt"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_cross_chains_are_refused(self):
        for chain, cert in (("emt-chain.pem", self.path("gw1.crt")),
                            ("gwa-chain.pem", self.path("gw1.crt")),
                            ("smgw-chain.pem", self.p("emt/clsmd.crt")),
                            ("smgw-chain.pem", self.path("wrong-ca.crt"))):
            r = self.verify(self.p(chain), cert)
            self.assertNotEqual(r.returncode, 0, (chain, cert))
            self.assertIn("unable to get local issuer certificate", r.stdout + r.stderr)
        r = self.verify(self.p("smgw-chain.pem"), self.path("gw1.crt"), "-purpose", "sslserver")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("unsuitable certificate purpose", r.stdout + r.stderr)

    def test_prime256v1(self):
        with open(os.path.join(self.nist, "curve")) as f:
            self.assertEqual(f.read(), "prime256v1\n")
        for name in ("root.crt", "smgw-ca.crt", "emt/clsmd.crt", "smgw/gateways.pem"):
            t = cert_text(os.path.join(self.nist, name))
            self.assertIn("ASN1 OID: prime256v1", t, name)
            self.assertIn("NIST CURVE: P-256", t, name)
        r = self.verify(os.path.join(self.nist, "smgw-chain.pem"),
                        os.path.join(self.nist, "smgw/gateways.pem"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # Two PKIs do not trust each other.
        r = self.verify(os.path.join(self.nist, "smgw-chain.pem"), self.path("gw1.crt"))
        self.assertNotEqual(r.returncode, 0)

    # --- smgw -----------------------------------------------------------------

    def test_bundle_order_keys_and_serials(self):
        self.assertEqual([t for t, _ in self.blocks], ["CERTIFICATE", "PRIVATE KEY"] * 200)
        text = all_certs_text(self.bundle)
        subjects = re.findall(r"Subject: C ?= ?DE, O ?= ?clsm test PKI, CN ?= ?(\S+)", text)
        self.assertEqual(subjects, ["ETST%010d" % i for i in range(1, 201)])
        serials = re.findall(r"Serial Number:\s*\n\s*([0-9a-f:]+)", text)
        self.assertEqual(len(serials), 200)
        self.assertEqual(len(set(serials)), 200)
        for s in serials:  # random 128-bit, positive: 16 octets, 17 with a leading zero
            n = len(s.split(":"))
            self.assertTrue(9 <= n <= 17, s)
        pubs = set(re.findall(r"pub:\s*\n((?:\s+[0-9a-f:]+\n)+)", text))
        self.assertEqual(len(pubs), 200)  # a fresh key per gateway
        for i in (0, 99, 199):
            cpub = openssl("x509", "-pubkey", "-noout", input=self.blocks[2 * i][1]).stdout
            kpub = openssl("pkey", "-pubout", input=self.blocks[2 * i + 1][1]).stdout
            self.assertTrue(cpub.startswith("-----BEGIN PUBLIC KEY-----"), cpub)
            self.assertEqual(cpub, kpub, "gateway %d" % (i + 1))

    def test_rate_is_reported(self):
        m = re.search(r"issued 200 gateway certificates on brainpoolP256r1 in [0-9.]+ s with "
                      r"(\d+) jobs: (\d+) certificates per second", self.smgw_run.stderr)
        self.assertIsNotNone(m, self.smgw_run.stderr)
        self.assertEqual(int(m.group(1)), min(os.cpu_count(), 200))
        self.assertGreater(int(m.group(2)), 0)

    def test_many_jobs_keep_order(self):
        out = self.path("jobs.pem")
        pki("smgw", self.dir, "--count", "60", "--prefix", "EJOB", "--first", "9999999940",
            "--jobs", "7", "--out", out)
        self.assertEqual(subjects_of(out), ["EJOB%010d" % i for i in range(9999999940, 10**10)])

    def test_ids_file(self):
        ids = ["EXYZ0000000042", "EABC0000000001", "EQQQ9999999999", "EABC0000000002"]
        src = self.write("ids.txt", "\r\n".join(ids) + "\r\n")
        out = self.path("ids.pem")
        pki("smgw", self.dir, "--ids", src, "--out", out, "--jobs", "3")
        self.assertEqual(subjects_of(out), ids)
        r = self.verify(self.p("smgw-chain.pem"), out)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_ids_file_errors(self):
        cases = [
            ("EABC0000000001\nEAB00000000002\n", "bad1.txt:2: \"EAB00000000002\" is not a gateway id"),
            ("EABC0000000001\neabc0000000002\n", "bad2.txt:2:"),
            ("EABC0000000001\nEABC00000000021\n", "bad3.txt:2:"),
            ("EABC0000000001\n\nEABC0000000002\n", "bad4.txt:2:"),
            ("EABC0000000001\nEABC0000000001\n", "gateway EABC0000000001 is listed twice"),
            ("", "bad6.txt: no gateway ids"),
        ]
        for i, (text, msg) in enumerate(cases):
            path = self.write("bad%d.txt" % (i + 1), text)
            out = self.path("never.pem")
            r = pki("smgw", self.dir, "--ids", path, "--out", out, check=False)
            self.assertEqual(r.returncode, 2, (text, r.stderr))
            self.assertIn(msg, r.stderr)
            self.assertFalse(os.path.exists(out))
        r = pki("smgw", self.dir, "--ids", self.path("absent.txt"), "--out", out, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("absent.txt: No such file or directory", r.stderr)

    # --- leaf -----------------------------------------------------------------

    def test_leaf_expired_yesterday(self):
        crt = self.p("smgw", "ETST0000009999.crt")
        self.assertEqual(stat.S_IMODE(os.stat(self.p("smgw", "ETST0000009999.key")).st_mode),
                         0o600)
        nb, na = dates(crt)
        self.assertAlmostEqual(na, time.time() - DAY, delta=120)
        self.assertAlmostEqual(na - nb, 730 * DAY, delta=1)
        r = self.verify(self.p("smgw-chain.pem"), crt)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("certificate has expired", r.stdout + r.stderr)

    def test_leaf_not_yet_valid(self):
        nb, _ = dates(self.path("future.crt"))
        self.assertAlmostEqual(nb, time.time() + DAY, delta=120)
        r = self.verify(self.p("smgw-chain.pem"), self.path("future.crt"))
        self.assertIn("certificate is not yet valid", r.stdout + r.stderr)

    def test_leaf_explicit_times_and_shape(self):
        pki("leaf", self.dir, "--ca", "gwa", "--cn", "GWA-99", "--not-before",
            "2026-01-01T00:00:00Z", "--not-after", "2027-06-30T12:00:00+02:00")
        crt = self.p("gwa", "GWA-99.crt")
        self.assertEqual(dates(crt), (calendar.timegm((2026, 1, 1, 0, 0, 0)),
                                      calendar.timegm((2027, 6, 30, 10, 0, 0))))
        t = cert_text(crt)
        self.assertIn("CN = clsm test GWA CA", t)
        self.assertIn("TLS Web Server Authentication", t)
        pki("leaf", self.dir, "--ca", "smgw", "--cn", "ETST0000000777", "--days", "3", "--out",
            self.path("short"))
        nb, na = dates(self.path("short.crt"))
        self.assertEqual(na - nb, 3 * DAY + 3600)
        self.assertIn("Extended Key Usage: \n                TLS Web Client Authentication\n",
                      cert_text(self.path("short.crt")))

    # --- refusals and usage ---------------------------------------------------

    def test_refuses_to_overwrite(self):
        d = self.path("again")
        pki("init", d, "--curve", "prime256v1")
        with open(os.path.join(d, "root.crt")) as f:
            root = f.read()
        r = pki("init", d, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("already holds a PKI", r.stderr)
        self.assertIn("--force", r.stderr)
        with open(os.path.join(d, "root.crt")) as f:
            self.assertEqual(f.read(), root)
        with open(os.path.join(d, "curve")) as f:
            self.assertEqual(f.read(), "prime256v1\n")
        pki("smgw", d, "--count", "2", "--prefix", "EABC")
        r = pki("smgw", d, "--count", "2", "--prefix", "EABC", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("gateways.pem exists; use --force", r.stderr)
        pki("leaf", d, "--ca", "emt", "--cn", "x")
        r = pki("leaf", d, "--ca", "emt", "--cn", "x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("x.crt exists", r.stderr)
        pki("init", d, "--force")
        with open(os.path.join(d, "root.crt")) as f:
            self.assertNotEqual(f.read(), root)
        with open(os.path.join(d, "curve")) as f:
            self.assertEqual(f.read(), "brainpoolP256r1\n")

    def test_not_a_pki(self):
        for args in (["smgw", self.path("nothing"), "--count", "1", "--prefix", "EABC"],
                     ["leaf", self.path("nothing"), "--ca", "emt", "--cn", "x"]):
            r = pki(*args, check=False)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("holds no PKI made by 'clsm-pki init'", r.stderr)

    def test_usage_errors(self):
        d = self.path("never")
        cases = [
            ([], "no command given"),
            (["frobnicate"], "unknown command \"frobnicate\""),
            (["init"], "init needs a DIR"),
            (["init", d, "--curve", "secp384r1"], "unknown curve \"secp384r1\""),
            (["init", d, "--curve"], "--curve needs a value"),
            (["init", d, "--emt", "../evil"], "--emt \"../evil\""),
            (["init", d, "--gwa", "a", "--gwa", "a"], "--gwa \"a\" given twice"),
            (["init", d, "--days", "0"], "--days wants a whole number from 1"),
            (["init", d, "--bogus", "1"], "unknown option \"--bogus\""),
            (["smgw", d], "smgw needs --ids FILE, or --count N and --prefix EABC"),
            (["smgw", d, "--count", "5"], "smgw needs --ids FILE"),
            (["smgw", d, "--count", "0", "--prefix", "EABC"], "--count wants a whole number"),
            (["smgw", d, "--count", "x", "--prefix", "EABC"], "--count wants a whole number"),
            (["smgw", d, "--count", "5", "--prefix", "EAB"], "--prefix \"EAB\""),
            (["smgw", d, "--count", "5", "--prefix", "eabc"], "--prefix \"eabc\""),
            (["smgw", d, "--count", "5", "--prefix", "EABC", "--ids", "f"], "not both"),
            (["smgw", d, "--count", "5", "--prefix", "EABC", "--jobs", "0"], "--jobs wants"),
            (["smgw", d, "--count", "2", "--prefix", "EABC", "--first", "9999999999"],
             "runs past 10 digits"),
            (["leaf", d, "--ca", "smgw"], "leaf needs DIR, --ca smgw|emt|gwa and --cn NAME"),
            (["leaf", d, "--ca", "root", "--cn", "x"], "unknown CA \"root\""),
            (["leaf", d, "--ca", "smgw", "--cn", "a/b"], "cannot be a file name"),
            (["leaf", d, "--ca", "smgw", "--cn", "x" * 65, "--out", "o"], "want 1-64 printable"),
            (["leaf", d, "--ca", "smgw", "--cn", "x", "--not-after", "yesterday"],
             "--not-after wants an RFC 3339 time"),
            (["leaf", d, "--ca", "smgw", "--cn", "x", "--not-before", "2026-02-30T00:00:00Z"],
             "--not-before wants an RFC 3339 time"),
            (["leaf", d, "--ca", "smgw", "--cn", "x", "--not-before", "+1", "--not-after", "0"],
             "--not-after must be later than --not-before"),
            (["leaf", d, "--ca", "smgw", "--cn", "x", "--not-before", "0", "--not-after", "1",
              "--days", "3"], "at most two of"),
        ]
        for args, msg in cases:
            r = pki(*args, check=False)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(msg, r.stderr, args)
            self.assertIn("(see clsm-pki --help)", r.stderr)
        self.assertFalse(os.path.exists(d))

    def test_help(self):
        for args in (["--help"], ["-h"], ["smgw", "--help"]):
            r = pki(*args)
            self.assertTrue(r.stdout.startswith("usage: clsm-pki COMMAND"), r.stdout)
            for cmd in ("init DIR", "smgw DIR", "leaf DIR"):
                self.assertIn(cmd, r.stdout)

    # --- TLS ------------------------------------------------------------------

    def s_server_client(self, client_cert, client_key):
        """One mutual TLS 1.2 handshake: openssl s_server with clsmd's EMT
        certificate, trusting the SMGW chain; openssl s_client as a gateway.
        Both sides allow only ECDHE-ECDSA-AES128-GCM-SHA256 on brainpoolP256r1."""
        common = ["-tls1_2", "-cipher", CIPHER, "-groups", "brainpoolP256r1",
                  "-verify_return_error"]
        srv = subprocess.Popen(
            ["openssl", "s_server", "-www", "-accept", "127.0.0.1:0", "-naccept", "1",
             "-cert", self.p("emt", "clsmd.crt"), "-key", self.p("emt", "clsmd.key"),
             "-CAfile", self.p("smgw-chain.pem"), "-Verify", "3"] + common,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            port = None
            while port is None:
                line = srv.stdout.readline()
                if not line:
                    raise AssertionError("s_server did not start")
                m = re.match(r"ACCEPT 127\.0\.0\.1:(\d+)", line)
                port = m and int(m.group(1))
            cli = subprocess.run(
                ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-brief", "-ign_eof",
                 "-cert", client_cert, "-key", client_key, "-CAfile", self.p("emt-chain.pem"),
                 "-verify", "3", "-verify_hostname", "localhost"] + common,
                input="GET / HTTP/1.0\r\n\r\n", capture_output=True, text=True, timeout=30)
            srv_out = srv.communicate(timeout=30)[0]
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait()
        return cli, srv_out

    def test_mutual_tls_brainpool_openssl_cli(self):
        cli, srv = self.s_server_client(self.path("gw1.crt"), self.path("gw1.key"))
        out = cli.stdout + cli.stderr
        self.assertEqual(cli.returncode, 0, out + srv)
        self.assertIn("Protocol version: TLSv1.2", out)
        self.assertIn("Ciphersuite: " + CIPHER, out)
        self.assertIn("Server Temp Key: ECDH, brainpoolP256r1, 256 bits", out)
        self.assertIn("Peer certificate: C = DE, O = clsm test PKI, CN = clsmd", out)
        self.assertIn("Verification: OK", out)
        # The server's page: it verified the gateway's certificate.
        self.assertIn("Verify return code: 0 (ok)", cli.stdout)
        self.assertIn("Subject: C=DE, O=clsm test PKI, CN=ETST0000000001", cli.stdout)
        self.assertIn("Shared groups: brainpoolP256r1", cli.stdout)
        self.assertIn("depth=0 C = DE, O = clsm test PKI, CN = ETST0000000001", srv)

    def test_tls_refuses_foreign_and_expired_gateways(self):
        for name, cert, key, why in (
                ("another PKI", self.path("other.crt"), self.path("other.key"),
                 "unable to get local issuer certificate"),
                ("expired", self.p("smgw", "ETST0000009999.crt"),
                 self.p("smgw", "ETST0000009999.key"), "certificate has expired")):
            cli, srv = self.s_server_client(cert, key)
            self.assertNotEqual(cli.returncode, 0, name)
            self.assertNotIn("Verify return code: 0 (ok)", cli.stdout, name)
            self.assertIn(why, srv, name)

    def test_mutual_tls_brainpool_python_ssl(self):
        """Python's ssl module does brainpool in TLS 1.2 on this OpenSSL:
        set_ecdh_curve() sets the one group that either side offers."""
        def ctx(server):
            c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
            c.minimum_version = c.maximum_version = ssl.TLSVersion.TLSv1_2
            c.set_ciphers(CIPHER)
            try:
                c.set_ecdh_curve("brainpoolP256r1")
            except (ValueError, ssl.SSLError) as e:
                self.skipTest("no brainpool in Python's ssl: %s (the openssl CLI test covers it)"
                              % e)
            c.verify_mode = ssl.CERT_REQUIRED
            return c

        srv, cli = ctx(True), ctx(False)
        srv.load_cert_chain(self.p("emt", "clsmd.crt"), self.p("emt", "clsmd.key"))
        srv.load_verify_locations(self.p("smgw-chain.pem"))
        cli.load_cert_chain(self.path("gw200.crt"), self.path("gw200.key"))
        cli.load_verify_locations(self.p("emt-chain.pem"))
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        seen = {}

        def serve():
            conn, _ = ls.accept()
            try:
                with srv.wrap_socket(conn, server_side=True) as s:
                    seen["peer"] = s.getpeercert()
                    seen["version"] = s.version()
                    seen["cipher"] = s.cipher()[0]
                    s.sendall(b"ok")
            except Exception as e:  # reported by the assertions below
                seen["error"] = e

        t = threading.Thread(target=serve)
        t.start()
        try:
            with cli.wrap_socket(socket.create_connection(ls.getsockname(), timeout=10),
                                 server_hostname="localhost") as s:
                self.assertEqual(s.version(), "TLSv1.2")
                self.assertEqual(s.cipher()[0], CIPHER)
                self.assertEqual(dict(x[0] for x in s.getpeercert()["subject"])["commonName"],
                                 "clsmd")
                self.assertEqual(s.recv(2), b"ok")
        finally:
            t.join(10)
            ls.close()
        self.assertNotIn("error", seen, seen.get("error"))
        self.assertEqual(seen["version"], "TLSv1.2")
        self.assertEqual(dict(x[0] for x in seen["peer"]["subject"])["commonName"],
                         "ETST0000000200")

    # --- scripts/mkpki.sh -----------------------------------------------------

    def mkpki(self, *args):
        env = dict(os.environ, CLSM_PKI=TOOL)
        return subprocess.run(["sh", MKPKI] + list(args), capture_output=True, text=True, env=env,
                              timeout=300)

    def test_mkpki_is_idempotent(self):
        d = self.path("mk")
        r = self.mkpki(d, "--count", "5", "--prefix", "EMKP", "--gwa", "GWA-01")
        self.assertEqual(r.returncode, 0, r.stderr)
        bundle = os.path.join(d, "smgw", "gateways.pem")
        st = os.stat(bundle)
        with open(os.path.join(d, "root.crt")) as f:
            root = f.read()
        self.assertTrue(os.path.exists(os.path.join(d, "gwa", "GWA-01.crt")))

        r = self.mkpki(d, "--count", "5", "--prefix", "EMKP", "--gwa", "GWA-01")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("is up to date", r.stderr)
        self.assertEqual(os.stat(bundle).st_mtime_ns, st.st_mtime_ns)

        # Other gateways: a new bundle from the same CA.
        ids = self.write("mk-ids.txt", "EMKP0000000007\nEMKP0000000003\n")
        r = self.mkpki(d, "--gateways", ids)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(subjects_of(bundle), ["EMKP0000000007", "EMKP0000000003"])
        with open(os.path.join(d, "root.crt")) as f:
            self.assertEqual(f.read(), root)
        r = self.mkpki(d, "--gateways", ids, "--curve", "brainpoolP256r1")
        self.assertIn("is up to date", r.stderr)

        r = self.mkpki(d, "--curve", "prime256v1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("holds a PKI on brainpoolP256r1, not prime256v1", r.stderr)
        for args in ([], [d, "--count", "3"], [d, "--count", "3", "--prefix", "EMKP",
                                                 "--gateways", ids]):
            self.assertEqual(self.mkpki(*args).returncode, 2, args)

    def test_mkpki_remakes_an_incomplete_pki(self):
        d = self.path("mk-partial")
        os.makedirs(d)
        with open(os.path.join(d, "root.crt"), "w") as f:
            f.write("left over from an interrupted run\n")
        r = self.mkpki(d, "--curve", "prime256v1", "--count", "2", "--prefix", "EPRT")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.verify(os.path.join(d, "smgw-chain.pem"), os.path.join(d, "smgw/gateways.pem"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    clsmtest.main()
