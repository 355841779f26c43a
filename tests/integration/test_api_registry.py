"""Registry resources of the operator API: CRUD for every kind, validation,
conflicts, lists with filters and pagination, and the atomic bulk import.

Every rejected write is followed by a read-back that shows the store did not
change. Tests marked "REGRESSION:" cover bugs found while these tests were
written (fixed in the tree since); the comment on each tells the old answer.
"""
import base64
import itertools
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import clsmtest  # noqa: E402

_seq = itertools.count(1)


def uid(prefix="t"):
    return "%s%d" % (prefix, next(_seq))


def party_id():
    return "99%011d" % next(_seq)


def smgw_id():
    return "ETST%010d" % next(_seq)


def q(s):
    return urllib.parse.quote(s, safe="")


class RegistryTest(clsmtest.ServerTest):
    """Helpers shared by the classes below."""

    # --- plain requests -------------------------------------------------------

    def req(self, method, path, body=None, **kw):
        return self.server.request(method, path, body=body, **kw)

    def create(self, plural, body):
        r = self.req("POST", "/v1/" + plural, body)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def get(self, plural, id_, status=200):
        r = self.req("GET", "/v1/%s/%s" % (plural, q(id_)))
        self.assertEqual(r.status, status, r)
        return r.json() if status == 200 else None

    def absent(self, plural, id_):
        r = self.req("GET", "/v1/%s/%s" % (plural, q(id_)))
        self.assertProblem(r, 404)

    def list_ids(self, plural, query="", token="admin"):
        sep = "&" if query else ""
        r = self.req("GET", "/v1/%s?%s%slimit=1000" % (plural, query, sep), token=token)
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertIsNone(body["next_cursor"])
        return [it["id"] for it in body["items"]]

    def rejected(self, method, path, body, status, pointer=None, field=None, *, raw=None,
                 content_type="application/json"):
        r = self.server.request(method, path, body=body, raw=raw, content_type=content_type)
        return self.assertProblem(r, status, pointer=pointer, field=field)

    # --- a small world ---------------------------------------------------------

    def make_party(self, role="vnb", **kw):
        b = {"id": party_id(), "name": "Party " + role, "role": role}
        b.update(kw)
        return self.create("parties", b)["id"]

    def make_segment(self, vnb=None, parent=None, level="substation", **kw):
        b = {"id": uid("seg"), "name": "Segment", "level": level,
             "vnb": vnb or self.make_party("vnb")}
        if parent:
            b["parent"] = parent
        b.update(kw)
        return self.create("segments", b)["id"]

    def make_gwa(self, **kw):
        b = {"id": uid("gwa"), "name": "GWA", "endpoint": "https://gwa.example/api"}
        b.update(kw)
        return self.create("gwas", b)["id"]

    def make_smgw(self, segment=None, gwa=None, **kw):
        b = {"id": smgw_id(), "gwa": gwa or self.make_gwa(),
             "segment": segment or self.make_segment()}
        b.update(kw)
        return self.create("smgws", b)["id"]

    def make_device(self, smgw=None, **kw):
        b = {"id": uid("dev"), "smgw": smgw or self.make_smgw(), "kind": "steuerbox"}
        b.update(kw)
        return self.create("devices", b)["id"]

    def inst_body(self, device=None, segment=None, **kw):
        b = {"id": uid("inst"), "device": device or self.make_device(), "kind": "heat_pump",
             "direction": "consumption", "rated_power_w": 9000,
             "segment": segment or self.make_segment()}
        b.update(kw)
        return b

    def make_installation(self, device=None, segment=None, **kw):
        return self.create("installations", self.inst_body(device, segment, **kw))["id"]


class CrudTest(RegistryTest):
    """Create, read, list, replace, patch and delete for each of the seven kinds."""

    def crud(self, plural, body, defaults, put_full, patch_set, patch_null):
        """body: a minimal create body; defaults: what the server fills in;
        put_full: extra optional fields for a PUT; patch_set/patch_null: a
        merge patch setting fields and the one that removes them again."""
        id_ = body.get("id")
        r = self.req("POST", "/v1/" + plural, body)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.header("Content-Type"), "application/json")
        created = r.json()
        id_ = id_ or created["id"]
        self.assertEqual(r.header("Location"), "/v1/%s/%s" % (plural, id_))
        for k, v in body.items():
            self.assertEqual(created[k], v, k)
        for k, v in defaults.items():
            self.assertEqual(created[k], v, k)
        self.assertRegex(created["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.assertEqual(created["created_at"], created["updated_at"])

        # read and list
        self.assertEqual(self.get(plural, id_), created)
        self.assertIn(id_, self.list_ids(plural))

        # PUT with the optional fields set, then PUT without them: defaults again
        full = dict(body, **put_full)
        r = self.req("PUT", "/v1/%s/%s" % (plural, q(id_)), full)
        self.assertEqual(r.status, 200, r)
        for k, v in full.items():
            self.assertEqual(r.json()[k], v, k)
        self.assertEqual(r.json()["created_at"], created["created_at"])
        self.assertGreaterEqual(r.json()["updated_at"], created["updated_at"])
        self.assertEqual(self.get(plural, id_), r.json())
        r = self.req("PUT", "/v1/%s/%s" % (plural, q(id_)), body)
        self.assertEqual(r.status, 200, r)
        for k, v in defaults.items():
            self.assertEqual(r.json()[k], v, "PUT must reset omitted field %s" % k)
        self.assertEqual(r.json()["created_at"], created["created_at"])

        # PATCH sets fields (merge-patch media type), null removes them again
        r = self.req("PATCH", "/v1/%s/%s" % (plural, q(id_)), patch_set,
                     content_type="application/merge-patch+json")
        self.assertEqual(r.status, 200, r)
        for k, v in patch_set.items():
            self.assertEqual(r.json()[k], v, k)
        for k, v in body.items():
            if k not in patch_set:
                self.assertEqual(r.json()[k], v, "PATCH must keep %s" % k)
        self.assertEqual(self.get(plural, id_), r.json())
        if patch_null:
            r = self.req("PATCH", "/v1/%s/%s" % (plural, q(id_)),
                         {k: None for k in patch_null})
            self.assertEqual(r.status, 200, r)
            for k in patch_null:
                self.assertEqual(r.json()[k], defaults.get(k), k)
            self.assertEqual(self.get(plural, id_), r.json())

        # DELETE, then it is gone
        r = self.req("DELETE", "/v1/%s/%s" % (plural, q(id_)))
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        self.absent(plural, id_)
        self.assertNotIn(id_, self.list_ids(plural))
        self.assertProblem(self.req("DELETE", "/v1/%s/%s" % (plural, q(id_))), 404)
        self.assertProblem(self.req("PUT", "/v1/%s/%s" % (plural, q(id_)), body), 404)
        self.assertProblem(self.req("PATCH", "/v1/%s/%s" % (plural, q(id_)), patch_set), 404)
        return created

    def test_parties(self):
        body = {"id": party_id(), "name": "Stadtwerke Musterstadt Netz", "role": "vnb"}
        self.crud("parties", body, {}, {"name": "Renamed"}, {"name": "Patched"}, None)

    def test_segments(self):
        vnb = self.make_party("vnb")
        parent = self.make_segment(vnb=vnb)
        body = {"id": uid("seg"), "name": "Trafo 1", "level": "transformer", "vnb": vnb}
        defaults = {"parent": None, "traffic_light": "green", "light_since": None,
                    "light_set_by": None, "light_reason": None}
        self.crud("segments", body, defaults, {"parent": parent}, {"parent": parent},
                  ["parent"])

    def test_gwas(self):
        body = {"id": uid("gwa"), "name": "GWA Nord", "endpoint": "https://gwa.example:8443/v1"}
        self.crud("gwas", body, {"max_concurrent": 16}, {"max_concurrent": 64},
                  {"max_concurrent": 4, "name": "GWA Sued"}, ["max_concurrent"])

    def test_smgws(self):
        body = {"id": smgw_id(), "gwa": self.make_gwa(), "segment": self.make_segment()}
        fp = "0123456789abcdef" * 4
        self.crud("smgws", body, {"cert_fingerprint": None}, {"cert_fingerprint": fp},
                  {"cert_fingerprint": fp, "segment": self.make_segment()}, ["cert_fingerprint"])

    def test_devices(self):
        body = {"id": uid("dev"), "smgw": self.make_smgw(), "kind": "steuerbox"}
        defaults = {"driver": "lpc-mqtt", "firmware": None, "failsafe_limit_w": 4200,
                    "failsafe_duration_s": 7200}
        self.crud("devices", body, defaults,
                  {"driver": "sunspec", "firmware": "1.2.3", "failsafe_limit_w": 0,
                   "failsafe_duration_s": 86400},
                  {"firmware": "2.0", "failsafe_limit_w": 1000, "kind": "inverter"},
                  ["firmware", "failsafe_limit_w", "driver"])

    def test_installations(self):
        body = self.inst_body()
        defaults = {"output": 0, "sec14a": False, "energy_manager": None,
                    "metering_point": None}
        self.crud("installations", body, defaults,
                  {"output": 15, "sec14a": True, "energy_manager": "em-1",
                   "metering_point": "DE0001234567890123456789012345678"},
                  {"output": 3, "sec14a": True, "metering_point": "12345678901"},
                  ["output", "sec14a", "metering_point"])

    def test_assignments_id_defaults_to_party_colon_installation(self):
        lf = self.make_party("lf")
        inst = self.make_installation()
        body = {"party": lf, "installation": inst, "rights": ["read"]}
        created = self.crud("assignments", body, {}, {"rights": ["read", "control"]},
                            {"rights": ["control"]}, None)
        self.assertEqual(created["id"], "%s:%s" % (lf, inst))

    def test_assignment_with_explicit_id_and_rights_in_canonical_order(self):
        lf = self.make_party("aggregator")
        inst = self.make_installation()
        id_ = uid("asg")
        r = self.req("POST", "/v1/assignments",
                     {"id": id_, "party": lf, "installation": inst, "rights": ["control", "read"]})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.header("Location"), "/v1/assignments/" + id_)
        self.assertEqual(r.json()["rights"], ["read", "control"])
        self.assertEqual(self.get("assignments", id_)["rights"], ["read", "control"])

    def test_put_may_repeat_server_fields_from_a_get(self):
        gwa = self.make_gwa()
        cur = self.get("gwas", gwa)
        cur["name"] = "after GET"
        r = self.req("PUT", "/v1/gwas/" + gwa, cur)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["name"], "after GET")
        self.assertEqual(r.json()["created_at"], cur["created_at"])

    def test_put_keeps_traffic_light(self):
        seg = self.make_segment()
        r = self.req("PUT", "/v1/segments/%s/traffic-light" % seg, {"light": "red"})
        self.assertEqual(r.status, 200, r)
        cur = self.get("segments", seg)
        r = self.req("PUT", "/v1/segments/" + seg,
                     {"id": seg, "name": "renamed", "level": "feeder", "vnb": cur["vnb"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["traffic_light"], "red")
        self.assertEqual(r.json()["light_since"], cur["light_since"])
        self.assertEqual(r.json()["light_set_by"], "admin")

    def test_patch_without_id_uses_url_and_id_null_is_harmless(self):
        gwa = self.make_gwa()
        r = self.req("PATCH", "/v1/gwas/" + gwa, {"id": None, "name": "x"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["id"], gwa)
        self.assertEqual(r.json()["name"], "x")

    def test_id_with_every_allowed_character(self):
        id_ = "A0.b_c:d-" + "x" * 87
        self.assertEqual(len(id_), 96)
        self.make_gwa(id=id_)
        self.assertEqual(self.get("gwas", id_)["id"], id_)
        r = self.req("GET", "/v1/gwas/" + id_.replace(":", "%3A"))
        self.assertEqual(r.status, 200, r)

    def test_unknown_ids_are_404_for_every_kind(self):
        for plural, bad in (("parties", "9999999999999"), ("parties", "abc"),
                            ("segments", "nope"), ("gwas", "nope"), ("smgws", "EZZZ9999999999"),
                            ("smgws", "nope"), ("devices", "nope"), ("installations", "nope"),
                            ("assignments", "nope"), ("segments", "bad%20id")):
            with self.subTest(plural=plural, id=bad):
                p = self.assertProblem(self.req("GET", "/v1/%s/%s" % (plural, bad)), 404)
                self.assertEqual(p["type"], "urn:clsm:problem:not-found")
                self.assertProblem(self.req("DELETE", "/v1/%s/%s" % (plural, bad)), 404)


class ValidationTest(RegistryTest):
    """422 answers with the pointer of the offending field; nothing stored."""

    def create_rejected(self, plural, body, pointer, status=422):
        self.rejected("POST", "/v1/" + plural, body, status, pointer=pointer)
        if isinstance(body, dict) and isinstance(body.get("id"), str) and body["id"]:
            r = self.req("GET", "/v1/%s/%s" % (plural, q(body["id"])))
            self.assertEqual(r.status, 404, "rejected %s was stored: %r" % (plural, r))

    def update_rejected(self, method, plural, id_, body, pointer, status=422):
        before = self.get(plural, id_)
        self.rejected(method, "/v1/%s/%s" % (plural, q(id_)), body, status, pointer=pointer)
        self.assertEqual(self.get(plural, id_), before, "rejected %s changed the store" % method)

    def test_unknown_field(self):
        self.create_rejected("parties", {"id": party_id(), "name": "x", "role": "lf",
                                         "colour": "red"}, "/colour")
        gwa = self.make_gwa()
        self.update_rejected("PATCH", "gwas", gwa, {"colour": "red"}, "/colour")
        cur = self.get("gwas", gwa)
        cur["colour"] = "red"
        self.update_rejected("PUT", "gwas", gwa, cur, "/colour")

    def test_missing_required_fields(self):
        vnb = self.make_party()
        self.create_rejected("parties", {"id": party_id(), "role": "lf"}, "/name")
        self.create_rejected("parties", {"name": "no id", "role": "lf"}, "/id")
        self.create_rejected("parties", {"id": party_id(), "name": "x"}, "/role")
        self.create_rejected("segments", {"id": uid("s"), "name": "s", "level": "feeder"}, "/vnb")
        self.create_rejected("gwas", {"id": uid("g"), "name": "g"}, "/endpoint")
        self.create_rejected("smgws", {"id": smgw_id(), "segment": self.make_segment(vnb=vnb)},
                             "/gwa")
        self.create_rejected("devices", {"id": uid("d"), "smgw": self.make_smgw()}, "/kind")
        body = self.inst_body()
        del body["rated_power_w"]
        self.create_rejected("installations", body, "/rated_power_w")
        self.create_rejected("assignments", {"party": self.make_party("lf"),
                                             "installation": self.make_installation()},
                             "/rights")
        # null counts as absent
        self.create_rejected("parties", {"id": party_id(), "name": None, "role": "lf"}, "/name")
        p = self.make_party("lf")
        self.update_rejected("PATCH", "parties", p, {"name": None}, "/name")
        self.update_rejected("PUT", "parties", p, {"id": p, "role": "lf"}, "/name")

    def test_wrong_types(self):
        cases = [
            ("rated_power_w", "5000"), ("rated_power_w", 5000.5), ("rated_power_w", True),
            ("output", True), ("output", "1"), ("sec14a", "true"), ("sec14a", 1),
            ("kind", 3), ("segment", 5), ("device", ["x"]), ("metering_point", 12345678901),
            ("energy_manager", {"a": 1}),
        ]
        device = self.make_device()
        segment = self.make_segment()
        for field, value in cases:
            with self.subTest(field=field, value=value):
                body = self.inst_body(device=device, segment=segment)
                body[field] = value
                self.create_rejected("installations", body, "/" + field)
        self.create_rejected("parties", {"id": 1234567890123, "name": "x", "role": "lf"}, "/id")
        self.create_rejected("parties", {"id": party_id(), "name": ["x"], "role": "lf"},
                             "/name")
        self.create_rejected("assignments", {"party": self.make_party("lf"),
                                             "installation": self.make_installation(),
                                             "rights": "read"}, "/rights")

    def test_integer_bounds(self):
        device = self.make_device()
        segment = self.make_segment()
        for field, bad, good in (("rated_power_w", 0, 1), ("rated_power_w", 100000001, 100000000),
                                 ("rated_power_w", -5, None), ("output", 16, 15),
                                 ("output", -1, None)):
            with self.subTest(field=field, value=bad):
                body = self.inst_body(device=device, segment=segment, **{field: bad})
                self.create_rejected("installations", body, "/" + field)
                if good is not None:
                    body = self.inst_body(device=self.make_device(), segment=segment,
                                          **{field: good})
                    self.assertEqual(self.create("installations", body)[field], good)
        self.create_rejected("gwas", {"id": uid("g"), "name": "g",
                                      "endpoint": "https://g.example", "max_concurrent": 0},
                             "/max_concurrent")
        self.create_rejected("gwas", {"id": uid("g"), "name": "g",
                                      "endpoint": "https://g.example", "max_concurrent": 10001},
                             "/max_concurrent")
        self.make_gwa(max_concurrent=1)
        self.make_gwa(max_concurrent=10000)
        smgw = self.make_smgw()
        self.create_rejected("devices", {"id": uid("d"), "smgw": smgw, "kind": "steuerbox",
                                         "failsafe_limit_w": -1}, "/failsafe_limit_w")
        self.create_rejected("devices", {"id": uid("d"), "smgw": smgw, "kind": "steuerbox",
                                         "failsafe_duration_s": 86401}, "/failsafe_duration_s")
        inst = self.make_installation()
        self.update_rejected("PATCH", "installations", inst, {"rated_power_w": 0},
                             "/rated_power_w")
        self.update_rejected("PATCH", "installations", inst, {"output": 16}, "/output")

    def test_id_formats(self):
        for bad in ("123456789012", "12345678901234", "123456789012a", " 234567890123",
                    "１２３４５６７８９０１２３"):
            with self.subTest(party=bad):
                self.create_rejected("parties", {"id": bad, "name": "x", "role": "lf"}, "/id")
        gwa = self.make_gwa()
        seg = self.make_segment()
        for bad in ("EABC001234567", "EABC00123456789", "eABC0012345678", "EAbC0012345678",
                    "XABC0012345678", "EABC001234567X", "E1BC0012345678"):
            with self.subTest(smgw=bad):
                self.create_rejected("smgws", {"id": bad, "gwa": gwa, "segment": seg}, "/id")
        for bad in ("a b", "x" * 97, "-abc", ".abc", "", "a/b", "a\tb", "ä", "a#b"):
            with self.subTest(generic=bad):
                self.create_rejected("gwas", {"id": bad, "name": "g",
                                              "endpoint": "https://g.example"}, "/id")
        self.make_gwa(id="x" * 96)

    def test_strings(self):
        for bad in ("a\nb", "a\u0001b", "a\u007fb", "tab\there"):
            with self.subTest(name=bad):
                self.create_rejected("parties", {"id": party_id(), "name": bad, "role": "lf"},
                                     "/name")
        self.create_rejected("parties", {"id": party_id(), "name": "", "role": "lf"}, "/name")
        self.create_rejected("parties", {"id": party_id(), "name": "n" * 201, "role": "lf"},
                             "/name")
        self.assertEqual(self.get("parties", self.make_party(name="n" * 200))["name"], "n" * 200)
        # lengths are characters, not bytes
        self.assertEqual(self.get("parties", self.make_party(name="\u00fc" * 200))["name"],
                         "\u00fc" * 200)
        self.create_rejected("parties", {"id": party_id(), "name": "\u00fc" * 201, "role": "lf"},
                             "/name")
        for bad in ("http://gwa.example", "https://", "https:///path", "https://a b",
                    "ftp://x.example", "https://x\u00e4.example"):
            with self.subTest(endpoint=bad):
                self.create_rejected("gwas", {"id": uid("g"), "name": "g", "endpoint": bad},
                                     "/endpoint")
        gwa, seg = self.make_gwa(), self.make_segment()
        for bad in ("ABCDEF" * 10 + "ABCD", "abc", "g" * 64):
            with self.subTest(fingerprint=bad):
                self.create_rejected("smgws", {"id": smgw_id(), "gwa": gwa, "segment": seg,
                                               "cert_fingerprint": bad}, "/cert_fingerprint")
        dev = self.make_device()
        for field, bad in (("metering_point", "DE123"), ("metering_point", "DE" + "a" * 31),
                           ("metering_point", "1234567890"), ("metering_point", "AT" + "0" * 31),
                           ("energy_manager", "em 1"), ("energy_manager", "x" * 97)):
            with self.subTest(field=field, value=bad):
                self.create_rejected("installations",
                                     self.inst_body(device=dev, segment=seg, **{field: bad}),
                                     "/" + field)
        self.create_rejected("devices", {"id": uid("d"), "smgw": self.make_smgw(),
                                         "kind": "steuerbox", "firmware": ""}, "/firmware")

    def test_enum_values(self):
        vnb = self.make_party()
        self.create_rejected("parties", {"id": party_id(), "name": "x", "role": "boss"}, "/role")
        self.create_rejected("parties", {"id": party_id(), "name": "x", "role": "VNB"}, "/role")
        self.create_rejected("segments", {"id": uid("s"), "name": "s", "level": "house",
                                          "vnb": vnb}, "/level")
        smgw = self.make_smgw()
        self.create_rejected("devices", {"id": uid("d"), "smgw": smgw, "kind": "toaster"},
                             "/kind")
        self.create_rejected("devices", {"id": uid("d"), "smgw": smgw, "kind": "steuerbox",
                                         "driver": "modbus"}, "/driver")
        dev, seg = self.make_device(), self.make_segment()
        self.create_rejected("installations", self.inst_body(dev, seg, direction="sideways"),
                             "/direction")
        self.create_rejected("installations", self.inst_body(dev, seg, kind="toaster"), "/kind")
        lf, inst = self.make_party("lf"), self.make_installation()
        for bad in (["write"], [], ["read", "read"], ["read", 1], [None]):
            with self.subTest(rights=bad):
                self.create_rejected("assignments", {"party": lf, "installation": inst,
                                                     "rights": bad}, "/rights")
        self.absent("assignments", "%s:%s" % (lf, inst))

    def test_references_to_missing_entities(self):
        vnb = self.make_party()
        self.create_rejected("segments", {"id": uid("s"), "name": "s", "level": "feeder",
                                          "vnb": "9999999999998"}, "/vnb")
        self.create_rejected("segments", {"id": uid("s"), "name": "s", "level": "feeder",
                                          "vnb": vnb, "parent": "no-such-segment"}, "/parent")
        self.create_rejected("smgws", {"id": smgw_id(), "gwa": "nogwa",
                                       "segment": self.make_segment()}, "/gwa")
        self.create_rejected("smgws", {"id": smgw_id(), "gwa": self.make_gwa(),
                                       "segment": "noseg"}, "/segment")
        self.create_rejected("devices", {"id": uid("d"), "smgw": "EZZZ0000000000",
                                         "kind": "steuerbox"}, "/smgw")
        self.create_rejected("devices", {"id": uid("d"), "smgw": "not a smgw id",
                                         "kind": "steuerbox"}, "/smgw")
        dev = self.make_device()
        self.create_rejected("installations", self.inst_body(dev, "unknown-segment"), "/segment")
        self.create_rejected("installations", self.inst_body(dev, "bad segment id"), "/segment")
        self.create_rejected("installations", self.inst_body("nodev", self.make_segment()),
                             "/device")
        inst = self.make_installation()
        self.create_rejected("assignments", {"party": "9999999999997", "installation": inst,
                                             "rights": ["read"]}, "/party")
        self.create_rejected("assignments", {"party": self.make_party("lf"),
                                             "installation": "noinst", "rights": ["read"]},
                             "/installation")
        self.update_rejected("PATCH", "installations", inst, {"segment": "gone"}, "/segment")

    def test_reference_to_party_with_wrong_role(self):
        lf = self.make_party("lf")
        vnb = self.make_party("vnb")
        self.create_rejected("segments", {"id": uid("s"), "name": "s", "level": "feeder",
                                          "vnb": lf}, "/vnb")
        inst = self.make_installation()
        for role in ("vnb", "uenb", "admin"):
            with self.subTest(role=role):
                self.create_rejected("assignments",
                                     {"party": self.make_party(role), "installation": inst,
                                      "rights": ["read"]}, "/party")
        for role in ("lf", "aggregator", "msb"):
            with self.subTest(role=role):
                self.create("assignments", {"party": self.make_party(role),
                                            "installation": inst, "rights": ["read"]})
        seg = self.make_segment(vnb=vnb)
        self.update_rejected("PATCH", "segments", seg, {"vnb": lf}, "/vnb")

    def test_sec14a_rules(self):
        dev, seg = self.make_device(), self.make_segment()
        self.create_rejected("installations",
                             self.inst_body(dev, seg, kind="pv", direction="production",
                                            sec14a=True), "/sec14a")
        self.create_rejected("installations",
                             self.inst_body(dev, seg, kind="battery", direction="production",
                                            sec14a=True), "/sec14a")
        self.create_rejected("installations",
                             self.inst_body(dev, seg, rated_power_w=4200, sec14a=True),
                             "/sec14a")
        self.create("installations", self.inst_body(dev, seg, rated_power_w=4201, sec14a=True))
        self.create("installations", self.inst_body(self.make_device(), seg, kind="wallbox",
                                                    direction="bidirectional", sec14a=True,
                                                    rated_power_w=11000))
        inst = self.make_installation(rated_power_w=11000, sec14a=True)
        self.update_rejected("PATCH", "installations", inst, {"rated_power_w": 3000},
                             "/sec14a")
        inst2 = self.make_installation(kind="battery", direction="bidirectional")
        self.update_rejected("PATCH", "installations", inst2,
                             {"direction": "production", "sec14a": True}, "/sec14a")

    def test_direction_must_fit_kind(self):
        dev, seg = self.make_device(), self.make_segment()
        for kind, bad in (("pv", "consumption"), ("pv", "bidirectional"), ("chp", "consumption"),
                          ("heat_pump", "production"), ("storage_heater", "bidirectional"),
                          ("air_conditioning", "production"), ("wallbox", "production")):
            with self.subTest(kind=kind, direction=bad):
                self.create_rejected("installations",
                                     self.inst_body(dev, seg, kind=kind, direction=bad,
                                                    sec14a=False), "/direction")
        for out, (kind, good) in enumerate((("pv", "production"), ("wallbox", "bidirectional"),
                                            ("battery", "bidirectional"), ("other", "production"),
                                            ("chp", "production"))):
            self.create("installations", self.inst_body(dev, seg, kind=kind, direction=good,
                                                        output=out))
        pv = self.make_installation(kind="pv", direction="production")
        self.update_rejected("PATCH", "installations", pv, {"direction": "consumption"},
                             "/direction")

    def test_segment_parent_cycles(self):
        vnb = self.make_party()
        a = self.make_segment(vnb=vnb)
        b = self.make_segment(vnb=vnb, parent=a, level="transformer")
        c = self.make_segment(vnb=vnb, parent=b, level="feeder")
        self.update_rejected("PATCH", "segments", a, {"parent": b}, "/parent")
        self.update_rejected("PATCH", "segments", a, {"parent": c}, "/parent")
        self.update_rejected("PATCH", "segments", a, {"parent": a}, "/parent")
        cur = self.get("segments", b)
        cur["parent"] = b
        self.update_rejected("PUT", "segments", b, cur, "/parent")
        s = uid("self")
        self.create_rejected("segments", {"id": s, "name": "s", "level": "feeder", "vnb": vnb,
                                          "parent": s}, "/parent")
        # moving a subtree elsewhere is fine
        d = self.make_segment(vnb=vnb)
        r = self.req("PATCH", "/v1/segments/" + b, {"parent": d})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.get("segments", c)["parent"], b)

    def test_read_only_fields(self):
        vnb = self.make_party()
        s = uid("ro")
        for field, value in (("traffic_light", "red"), ("traffic_light", "purple"),
                             ("light_since", "2024-01-01T00:00:00Z"), ("light_set_by", "me"),
                             ("light_reason", "because")):
            with self.subTest(field=field):
                self.create_rejected("segments", {"id": s, "name": "s", "level": "feeder",
                                                  "vnb": vnb, field: value}, "/" + field)
        # the same value as the default or the current one is accepted
        self.create("segments", {"id": s, "name": "s", "level": "feeder", "vnb": vnb,
                                 "traffic_light": "green", "light_since": None})
        self.update_rejected("PATCH", "segments", s, {"traffic_light": "red"}, "/traffic_light")
        cur = self.get("segments", s)
        cur["traffic_light"] = "yellow"
        self.update_rejected("PUT", "segments", s, cur, "/traffic_light")
        r = self.req("PATCH", "/v1/segments/" + s, {"traffic_light": "green", "name": "n2"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["name"], "n2")
        self.assertEqual(self.req("PUT", "/v1/segments/%s/traffic-light" % s,
                                  {"light": "yellow"}).status, 200)
        cur = self.get("segments", s)
        r = self.req("PUT", "/v1/segments/" + s, dict(cur, name="n3"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["traffic_light"], "yellow")
        self.update_rejected("PATCH", "segments", s, {"light_set_by": "someone-else"},
                             "/light_set_by")

    def test_id_in_body_must_match_url(self):
        gwa = self.make_gwa()
        other = self.make_gwa()
        cur = self.get("gwas", gwa)
        self.update_rejected("PUT", "gwas", gwa, dict(cur, id=other), "/id")
        self.update_rejected("PATCH", "gwas", gwa, {"id": other}, "/id")
        self.update_rejected("PATCH", "gwas", gwa, {"id": "not valid"}, "/id")
        self.assertEqual(self.get("gwas", other)["name"], "GWA")

    def test_body_must_be_an_object(self):
        for raw in (b"[1, 2]", b"[]", b'[{"id": "x"}]'):
            with self.subTest(body=raw):
                self.rejected("POST", "/v1/gwas", None, 422, pointer="", raw=raw)
        gwa = self.make_gwa()
        before = self.get("gwas", gwa)
        self.rejected("PUT", "/v1/gwas/" + gwa, None, 422, pointer="", raw=b"[]")
        self.rejected("PATCH", "/v1/gwas/" + gwa, None, 422, pointer="", raw=b"[]")
        self.assertEqual(self.get("gwas", gwa), before)

    def test_scalar_body_is_json_but_not_an_object(self):
        # REGRESSION: a body that is a JSON scalar ("text", 42, null, true) is
        # valid JSON (RFC 8259) but was answered 400 "the body is not
        # acceptable JSON: '[' or '{' expected" (jansson called without
        # JSON_DECODE_ANY), while an array got the intended 422 "the body
        # must be a JSON object". Both are the same error: not an object.
        for raw in (b'"text"', b"42", b"null", b"true"):
            with self.subTest(body=raw):
                r = self.req("POST", "/v1/gwas", raw=raw)
                self.assertLess(r.status, 500, r)
                self.assertProblem(r, 422, pointer="")

    def test_problem_shape(self):
        r = self.req("POST", "/v1/parties", {"id": "1", "name": "x", "role": "lf"})
        p = self.assertProblem(r, 422, pointer="/id")
        self.assertEqual(p["type"], "urn:clsm:problem:validation")
        self.assertEqual(p["title"], "Unprocessable Content")
        self.assertEqual(p["instance"], "/v1/parties")
        self.assertIn("13 digits", p["detail"])


class ConflictTest(RegistryTest):
    """409 answers; the data is unchanged afterwards."""

    def test_create_with_existing_id(self):
        gwa = self.make_gwa(name="original")
        before = self.get("gwas", gwa)
        p = self.rejected("POST", "/v1/gwas", {"id": gwa, "name": "dup",
                                               "endpoint": "https://other.example"},
                          409, pointer="/id")
        self.assertEqual(p["type"], "urn:clsm:problem:conflict")
        self.assertIn(gwa, p["detail"])
        self.assertEqual(self.get("gwas", gwa), before)
        pid = self.make_party("lf")
        self.rejected("POST", "/v1/parties", {"id": pid, "name": "dup", "role": "vnb"},
                      409, pointer="/id")
        self.assertEqual(self.get("parties", pid)["role"], "lf")

    def test_two_installations_on_one_output(self):
        dev, seg = self.make_device(), self.make_segment()
        first = self.make_installation(device=dev, segment=seg, output=2)
        body = self.inst_body(dev, seg, output=2)
        p = self.rejected("POST", "/v1/installations", body, 409, pointer="/device")
        self.assertIn("output", p["detail"])
        self.absent("installations", body["id"])
        self.assertEqual(self.list_ids("installations", "device=" + dev), [first])
        body["output"] = 3
        self.create("installations", body)

    def test_update_onto_an_occupied_output(self):
        # REGRESSION: a PUT/PATCH that collides with another installation's
        # device+output was answered 409 with pointer "/id" and the detail
        # 'a installation with id "X" already exists' (X being the entity
        # itself), because reply_conflict() found the updated entity by its
        # own id. The conflict is on device+output, like for POST.
        dev, seg = self.make_device(), self.make_segment()
        self.make_installation(device=dev, segment=seg, output=0)
        second = self.make_installation(device=dev, segment=seg, output=1)
        before = self.get("installations", second)
        p = self.rejected("PATCH", "/v1/installations/" + second, {"output": 0}, 409)
        self.assertEqual(self.get("installations", second), before)
        self.assertEqual(p.get("pointer"), "/device", p)
        self.assertNotIn("already exists", p["detail"])

    def test_duplicate_assignment_pair(self):
        lf, inst = self.make_party("lf"), self.make_installation()
        first = self.create("assignments", {"party": lf, "installation": inst,
                                            "rights": ["read"]})
        self.rejected("POST", "/v1/assignments", {"party": lf, "installation": inst,
                                                  "rights": ["control"]}, 409, pointer="/id")
        other = uid("asg")
        self.rejected("POST", "/v1/assignments", {"id": other, "party": lf,
                                                  "installation": inst, "rights": ["control"]},
                      409, pointer="/party")
        self.absent("assignments", other)
        self.assertEqual(self.get("assignments", first["id"]), first)

    def assert_delete_blocked(self, plural, id_, referrer):
        before = self.get(plural, id_)
        p = self.rejected("DELETE", "/v1/%s/%s" % (plural, q(id_)), None, 409)
        self.assertEqual(p["type"], "urn:clsm:problem:conflict")
        self.assertIn('"%s"' % referrer, p["detail"])
        self.assertEqual(self.get(plural, id_), before)

    def test_delete_of_referenced_entities(self):
        vnb = self.make_party("vnb")
        root = self.make_segment(vnb=vnb)
        self.assert_delete_blocked("parties", vnb, root)
        child = self.make_segment(vnb=vnb, parent=root, level="feeder")
        self.assert_delete_blocked("segments", root, child)
        gwa = self.make_gwa()
        smgw = self.make_smgw(segment=child, gwa=gwa)
        self.assert_delete_blocked("gwas", gwa, smgw)
        self.assert_delete_blocked("segments", child, smgw)
        dev = self.make_device(smgw=smgw)
        self.assert_delete_blocked("smgws", smgw, dev)
        inst = self.make_installation(device=dev, segment=self.make_segment())
        self.assert_delete_blocked("devices", dev, inst)
        lf = self.make_party("lf")
        asg = self.create("assignments", {"party": lf, "installation": inst,
                                          "rights": ["read"]})["id"]
        self.assert_delete_blocked("installations", inst, asg)
        self.assert_delete_blocked("parties", lf, asg)
        # bottom-up everything goes
        for plural, id_ in (("assignments", asg), ("installations", inst), ("devices", dev),
                            ("smgws", smgw), ("gwas", gwa), ("segments", child),
                            ("segments", root), ("parties", vnb), ("parties", lf)):
            r = self.req("DELETE", "/v1/%s/%s" % (plural, q(id_)))
            self.assertEqual(r.status, 204, (plural, r))
            self.absent(plural, id_)

    def test_party_role_change_must_keep_references_valid(self):
        # REGRESSION: a VNB party that segments name as their "vnb" could be
        # changed to role "lf" by PUT/PATCH (answered 200). The registry then
        # held a segment whose VNB is a supplier, which POST /v1/segments
        # refuses (422 /vnb). The role change must be refused (409 or 422).
        vnb = self.make_party("vnb")
        self.make_segment(vnb=vnb)
        before = self.get("parties", vnb)
        r = self.req("PATCH", "/v1/parties/" + vnb, {"role": "lf"})
        self.assertIn(r.status, (409, 422), r)
        self.assertProblem(r, r.status)
        self.assertEqual(self.get("parties", vnb), before)
        r = self.req("PUT", "/v1/parties/" + vnb, {"id": vnb, "name": "x", "role": "uenb"})
        self.assertIn(r.status, (409, 422), r)
        self.assertEqual(self.get("parties", vnb), before)
        # the same for a supplier that holds an assignment
        lf = self.make_party("lf")
        self.create("assignments", {"party": lf, "installation": self.make_installation(),
                                    "rights": ["read"]})
        before = self.get("parties", lf)
        r = self.req("PATCH", "/v1/parties/" + lf, {"role": "vnb"})
        self.assertIn(r.status, (409, 422), r)
        self.assertEqual(self.get("parties", lf), before)
        # a role change that keeps every reference valid is fine
        r = self.req("PATCH", "/v1/parties/" + lf, {"role": "aggregator"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["role"], "aggregator")

    def test_long_derived_assignment_id_stays_addressable(self):
        # REGRESSION: an assignment without an id gets "<party>:<installation>"
        # (13 + 1 + up to 96 characters). With an installation id longer than
        # 82 characters the derived id exceeds the 96-character id format; the
        # create was answered 201 with that Location, but GET/DELETE on it
        # answered 404 (reg_id_valid rejects the id), so the assignment could
        # neither be read nor deleted by id. Either the create must fail with
        # 422 or the stored assignment must be reachable.
        lf = self.make_party("lf")
        inst = self.make_installation(id="L" + "x" * 89)
        r = self.req("POST", "/v1/assignments", {"party": lf, "installation": inst,
                                                 "rights": ["read"]})
        self.assertIn(r.status, (201, 422), r)
        if r.status == 201:
            loc = r.header("Location")
            self.assertEqual(self.req("GET", loc).status, 200, "GET %s" % loc)
            self.assertEqual(self.req("DELETE", loc).status, 204, "DELETE %s" % loc)
        else:
            self.assertEqual(self.list_ids("assignments", "party=" + lf), [])


class ListTest(RegistryTest):
    """GET on collections: filters, errors and pagination."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        t = cls("run")  # an instance for the helpers
        w = {}
        w["vnb"] = t.make_party("vnb")
        w["vnb2"] = t.make_party("vnb")
        w["lf"] = t.make_party("lf")
        w["agg"] = t.make_party("aggregator")
        w["sub"] = t.make_segment(vnb=w["vnb"], level="substation")
        w["trafo"] = t.make_segment(vnb=w["vnb"], parent=w["sub"], level="transformer")
        w["f1"] = t.make_segment(vnb=w["vnb"], parent=w["trafo"], level="feeder")
        w["f2"] = t.make_segment(vnb=w["vnb"], parent=w["trafo"], level="feeder")
        w["trafo2"] = t.make_segment(vnb=w["vnb"], parent=w["sub"], level="transformer")
        w["f3"] = t.make_segment(vnb=w["vnb"], parent=w["trafo2"], level="feeder")
        w["other"] = t.make_segment(vnb=w["vnb2"], level="other")
        w["gwa"] = t.make_gwa()
        w["gwa2"] = t.make_gwa()
        w["gw_t"] = t.make_smgw(segment=w["trafo"], gwa=w["gwa"])
        w["gw_f1"] = t.make_smgw(segment=w["f1"], gwa=w["gwa"])
        w["gw_f3"] = t.make_smgw(segment=w["f3"], gwa=w["gwa2"])
        w["dev1"] = t.make_device(smgw=w["gw_f1"], kind="steuerbox")
        w["dev2"] = t.make_device(smgw=w["gw_f1"], kind="energy_manager", driver="sunspec")
        w["dev3"] = t.make_device(smgw=w["gw_f3"], kind="inverter")
        mk = t.make_installation
        w["i_t"] = mk(device=w["dev1"], output=0, segment=w["trafo"], kind="wallbox",
                      direction="consumption", sec14a=True, rated_power_w=11000)
        w["i_f1"] = mk(device=w["dev1"], output=1, segment=w["f1"], kind="heat_pump",
                       energy_manager=uid("em"))
        w["i_f2"] = mk(device=w["dev2"], output=0, segment=w["f2"], kind="pv",
                       direction="production", energy_manager=uid("em"))
        w["i_f3"] = mk(device=w["dev3"], output=0, segment=w["f3"], kind="battery",
                       direction="bidirectional", sec14a=True, rated_power_w=5000)
        w["i_o"] = mk(device=w["dev3"], output=1, segment=w["other"], kind="heat_pump")
        w["em"] = t.get("installations", w["i_f1"])["energy_manager"]
        w["a1"] = t.create("assignments", {"party": w["lf"], "installation": w["i_t"],
                                           "rights": ["read"]})["id"]
        w["a2"] = t.create("assignments", {"party": w["lf"], "installation": w["i_f1"],
                                           "rights": ["read", "control"]})["id"]
        w["a3"] = t.create("assignments", {"party": w["agg"], "installation": w["i_f1"],
                                           "rights": ["control"]})["id"]
        cls.w = w

    def setUp(self):
        self.w = type(self).w

    def ids(self, plural, query):
        return sorted(self.list_ids(plural, query))

    def test_list_shape(self):
        r = self.req("GET", "/v1/segments")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertEqual(r.header("Cache-Control"), "no-store")
        body = r.json()
        self.assertEqual(set(body), {"items", "next_cursor"})
        ids = [it["id"] for it in body["items"]]
        self.assertEqual(ids, sorted(ids))
        self.assertIn(self.w["f1"], ids)

    def test_party_role_filter(self):
        w = self.w
        for role in ("vnb", "lf", "aggregator", "msb"):
            r = self.req("GET", "/v1/parties?role=%s&limit=1000" % role)
            self.assertEqual(r.status, 200, r)
            items = r.json()["items"]
            self.assertTrue(all(it["role"] == role for it in items), items)
        self.assertIn(w["vnb"], self.list_ids("parties", "role=vnb"))
        self.assertNotIn(w["lf"], self.list_ids("parties", "role=vnb"))
        self.assertIn(w["agg"], self.list_ids("parties", "role=aggregator"))

    def test_segment_filters(self):
        w = self.w
        self.assertEqual(self.ids("segments", "parent=" + w["trafo"]),
                         sorted([w["f1"], w["f2"]]))
        self.assertEqual(self.ids("segments", "vnb=" + w["vnb2"]), [w["other"]])
        self.assertEqual(self.ids("segments", "vnb=%s&level=feeder" % w["vnb"]),
                         sorted([w["f1"], w["f2"], w["f3"]]))
        self.assertEqual(self.ids("segments", "vnb=%s&level=transformer" % w["vnb"]),
                         sorted([w["trafo"], w["trafo2"]]))
        # an empty value means "not set"
        top = self.ids("segments", "vnb=%s&parent=" % w["vnb"])
        self.assertEqual(top, [w["sub"]])
        # traffic light filter follows PUT .../traffic-light
        r = self.req("PUT", "/v1/segments/%s/traffic-light" % w["f2"], {"light": "yellow"})
        self.assertEqual(r.status, 200, r)
        try:
            self.assertEqual(self.ids("segments", "vnb=%s&traffic_light=yellow" % w["vnb"]),
                             [w["f2"]])
            self.assertNotIn(w["f2"],
                             self.ids("segments", "vnb=%s&traffic_light=green" % w["vnb"]))
        finally:
            self.req("PUT", "/v1/segments/%s/traffic-light" % w["f2"], {"light": "green"})

    def test_smgw_filters(self):
        w = self.w
        self.assertEqual(self.ids("smgws", "gwa=" + w["gwa2"]), [w["gw_f3"]])
        self.assertEqual(self.ids("smgws", "segment=" + w["trafo"]),
                         sorted([w["gw_t"], w["gw_f1"]]))
        self.assertEqual(self.ids("smgws", "segment=" + w["sub"]),
                         sorted([w["gw_t"], w["gw_f1"], w["gw_f3"]]))
        self.assertEqual(self.ids("smgws", "segment=%s&gwa=%s" % (w["sub"], w["gwa"])),
                         sorted([w["gw_t"], w["gw_f1"]]))

    def test_device_filters(self):
        w = self.w
        self.assertEqual(self.ids("devices", "smgw=" + w["gw_f1"]),
                         sorted([w["dev1"], w["dev2"]]))
        self.assertEqual(self.ids("devices", "smgw=%s&kind=energy_manager" % w["gw_f1"]),
                         [w["dev2"]])
        self.assertEqual(self.ids("devices", "smgw=%s&driver=sunspec" % w["gw_f1"]),
                         [w["dev2"]])
        self.assertEqual(self.ids("devices", "smgw=%s&driver=lpc-mqtt" % w["gw_f1"]),
                         [w["dev1"]])
        self.assertIn(w["dev3"], self.list_ids("devices", "kind=inverter"))

    def test_installation_filters(self):
        w = self.w
        self.assertEqual(self.ids("installations", "device=" + w["dev1"]),
                         sorted([w["i_t"], w["i_f1"]]))
        self.assertEqual(self.ids("installations", "device=%s&kind=wallbox" % w["dev1"]),
                         [w["i_t"]])
        self.assertEqual(self.ids("installations", "segment=%s&direction=production" % w["sub"]),
                         [w["i_f2"]])
        self.assertEqual(self.ids("installations", "energy_manager=" + w["em"]), [w["i_f1"]])
        self.assertEqual(self.ids("installations", "segment=%s&kind=battery" % w["sub"]),
                         [w["i_f3"]])

    def test_installations_of_a_segment_include_child_segments(self):
        w = self.w
        self.assertEqual(self.ids("installations", "segment=" + w["trafo"]),
                         sorted([w["i_t"], w["i_f1"], w["i_f2"]]))
        self.assertEqual(self.ids("installations", "segment=" + w["sub"]),
                         sorted([w["i_t"], w["i_f1"], w["i_f2"], w["i_f3"]]))
        self.assertEqual(self.ids("installations", "segment=" + w["f1"]), [w["i_f1"]])
        self.assertEqual(self.ids("installations", "segment=" + w["other"]), [w["i_o"]])
        self.assertEqual(self.ids("installations", "segment=no-such-segment"), [])

    def test_boolean_filter(self):
        w = self.w
        under = "segment=%s&" % w["sub"]
        yes = sorted([w["i_t"], w["i_f3"]])
        no = sorted([w["i_f1"], w["i_f2"]])
        for v in ("true", "TRUE", "1"):
            self.assertEqual(self.ids("installations", under + "sec14a=" + v), yes)
        for v in ("false", "False", "0"):
            self.assertEqual(self.ids("installations", under + "sec14a=" + v), no)
        for v in ("yes", "2", "truthy"):
            with self.subTest(value=v):
                self.rejected("GET", "/v1/installations?sec14a=" + v, None, 400,
                              field="sec14a")

    def test_assignment_filters(self):
        w = self.w
        self.assertEqual(self.ids("assignments", "party=" + w["lf"]), sorted([w["a1"], w["a2"]]))
        self.assertEqual(self.ids("assignments", "installation=" + w["i_f1"]),
                         sorted([w["a2"], w["a3"]]))
        self.assertEqual(self.ids("assignments", "party=%s&installation=%s" % (w["agg"],
                                                                               w["i_f1"])),
                         [w["a3"]])

    def test_invalid_filter_values(self):
        for path, field in (("/v1/installations?kind=toaster", "kind"),
                            ("/v1/installations?direction=up", "direction"),
                            ("/v1/segments?level=house", "level"),
                            ("/v1/segments?traffic_light=blue", "traffic_light"),
                            ("/v1/parties?role=boss", "role"),
                            ("/v1/devices?driver=modbus", "driver"),
                            ("/v1/installations?segment=a%20b", "segment"),
                            ("/v1/assignments?party=123", "party"),
                            ("/v1/smgws?gwa=-x", "gwa"),
                            ("/v1/installations?energy_manager=a%20b", "energy_manager")):
            with self.subTest(path=path):
                p = self.rejected("GET", path, None, 400, field=field)
                self.assertEqual(p["type"], "urn:clsm:problem:invalid-parameter")

    def test_unknown_and_duplicate_parameters(self):
        for path, field in (("/v1/parties?colour=red", "colour"),
                            ("/v1/parties?name=x", "name"),
                            ("/v1/installations?rated_power_w=5", "rated_power_w"),
                            ("/v1/installations?output=1", "output"),
                            ("/v1/gwas?id=x", "id"),
                            ("/v1/segments?created_at=x", "created_at"),
                            ("/v1/parties/%s?role=vnb" % self.w["vnb"], "role"),
                            ("/v1/gwas/%s?x=1" % self.w["gwa"], "x")):
            with self.subTest(path=path):
                p = self.rejected("GET", path, None, 400, field=field)
                self.assertEqual(p["type"], "urn:clsm:problem:unknown-parameter")
        self.rejected("GET", "/v1/installations?kind=pv&kind=wallbox", None, 400, field="kind")
        self.rejected("GET", "/v1/gwas?limit=1&limit=2", None, 400, field="limit")
        # unknown parameters are refused on writes too, and nothing is written
        gwa = self.make_gwa()
        self.rejected("PATCH", "/v1/gwas/%s?force=1" % gwa, {"name": "changed"}, 400,
                      field="force")
        self.assertEqual(self.get("gwas", gwa)["name"], "GWA")
        self.rejected("DELETE", "/v1/gwas/%s?force=1" % gwa, None, 400, field="force")
        self.get("gwas", gwa)

    def test_limit(self):
        for bad in ("0", "1001", "abc", "-1", "", "1.5", "99999999999999999999", "%201"):
            with self.subTest(limit=bad):
                self.rejected("GET", "/v1/gwas?limit=" + bad, None, 400, field="limit")
        r = self.req("GET", "/v1/segments?limit=1")
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.json()["items"]), 1)
        self.assertIsNotNone(r.json()["next_cursor"])
        r = self.req("GET", "/v1/segments?limit=1000")
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.json()["next_cursor"])

    def paginate(self, path, limit):
        seen, cursor, pages = [], None, 0
        while True:
            url = "%s%slimit=%d" % (path, "&" if "?" in path else "?", limit)
            if cursor:
                url += "&cursor=" + q(cursor)
            r = self.req("GET", url)
            self.assertEqual(r.status, 200, r)
            body = r.json()
            self.assertLessEqual(len(body["items"]), limit)
            seen += [it["id"] for it in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                return seen, pages
            self.assertEqual(len(body["items"]), limit)
            self.assertLess(pages, 100)

    def test_cursor_pagination(self):
        vnb = self.make_party()
        made = sorted(self.make_segment(vnb=vnb, id=uid("pg") + c) for c in "edcbaZY")
        seen, pages = self.paginate("/v1/segments?vnb=" + vnb, 3)
        self.assertEqual(seen, made)
        self.assertEqual(pages, 3)
        seen, pages = self.paginate("/v1/segments?vnb=" + vnb, 7)
        self.assertEqual(seen, made)
        self.assertEqual(pages, 1)
        # over a whole collection: every item once, in id order
        everything = self.list_ids("segments")
        seen, _ = self.paginate("/v1/segments", 2)
        self.assertEqual(seen, everything)
        self.assertEqual(len(set(seen)), len(seen))
        seen, _ = self.paginate("/v1/parties", 1)
        self.assertEqual(seen, self.list_ids("parties"))

    def test_pagination_is_stable_under_inserts(self):
        vnb = self.make_party()
        a = self.make_segment(vnb=vnb, id=uid("st") + "a")
        b = self.make_segment(vnb=vnb, id=a[:-1] + "b")
        r = self.req("GET", "/v1/segments?vnb=%s&limit=1" % vnb)
        first = r.json()
        self.assertEqual([it["id"] for it in first["items"]], [a])
        c = self.make_segment(vnb=vnb, id=a[:-1] + "c")
        r = self.req("GET", "/v1/segments?vnb=%s&limit=5&cursor=%s" % (vnb, first["next_cursor"]))
        self.assertEqual([it["id"] for it in r.json()["items"]], [b, c])

    def test_forged_cursor(self):
        def b64(s):
            return base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")
        for bad in ("!!!", "", "a", b64("a b"), b64("x" * 97), b64("a\x01"), "%25%25",
                    b64("x" * 200), "AAAA"):
            with self.subTest(cursor=bad):
                self.rejected("GET", "/v1/gwas?cursor=" + bad, None, 400, field="cursor")
        # a party cursor must hold a party id
        self.rejected("GET", "/v1/parties?cursor=" + b64("abc"), None, 400, field="cursor")


class ImportTest(RegistryTest):
    """POST /v1/import: all or nothing."""

    def doc(self, n_inst=2):
        vnb, lf = party_id(), party_id()
        root, child = uid("imroot"), uid("imchild")
        gwa, smgw, dev = uid("imgwa"), smgw_id(), uid("imdev")
        insts = [uid("iminst") for _ in range(n_inst)]
        d = {
            "parties": [{"id": vnb, "name": "Import VNB", "role": "vnb"},
                        {"id": lf, "name": "Import LF", "role": "lf"}],
            # child first: the import must wait for the parent
            "segments": [{"id": child, "name": "child", "level": "feeder", "vnb": vnb,
                          "parent": root},
                         {"id": root, "name": "root", "level": "substation", "vnb": vnb}],
            "gwas": [{"id": gwa, "name": "g", "endpoint": "https://gwa.example"}],
            "smgws": [{"id": smgw, "gwa": gwa, "segment": child}],
            "devices": [{"id": dev, "smgw": smgw, "kind": "steuerbox"}],
            "installations": [{"id": insts[i], "device": dev, "output": i, "kind": "heat_pump",
                               "direction": "consumption", "rated_power_w": 5000 + i,
                               "segment": child} for i in range(n_inst)],
            "assignments": [{"party": lf, "installation": insts[0], "rights": ["read"]}],
        }
        return d

    def import_(self, doc, status=200):
        r = self.req("POST", "/v1/import", doc)
        self.assertEqual(r.status, status, r)
        return r

    def all_absent(self, doc):
        for plural, items in doc.items():
            if not isinstance(items, list):
                continue
            for it in items:
                if isinstance(it, dict) and isinstance(it.get("id"), str):
                    self.assertEqual(self.req("GET", "/v1/%s/%s" % (plural, q(it["id"]))).status,
                                     404, "%s %s was stored" % (plural, it["id"]))

    def snapshot(self, doc):
        out = {}
        for plural, items in doc.items():
            for it in items:
                id_ = it.get("id") or "%s:%s" % (it["party"], it["installation"])
                out[(plural, id_)] = self.get(plural, id_)
        return out

    def test_import_creates_then_updates(self):
        doc = self.doc()
        r = self.import_(doc)
        self.assertEqual(r.header("Content-Type"), "application/json")
        counts = {k: {"created": len(v), "updated": 0, "unchanged": 0} for k, v in doc.items()}
        self.assertEqual(r.json(), {"imported": counts})
        first = self.snapshot(doc)
        self.assertEqual(first[("segments", doc["segments"][0]["id"])]["parent"],
                         doc["segments"][1]["id"])
        self.assertEqual(first[("gwas", doc["gwas"][0]["id"])]["max_concurrent"], 16)
        # the same again: everything "unchanged", nothing is written
        r = self.import_(doc)
        counts = {k: {"created": 0, "updated": 0, "unchanged": len(v)} for k, v in doc.items()}
        self.assertEqual(r.json(), {"imported": counts})
        second = self.snapshot(doc)
        self.assertEqual(set(first), set(second))
        for key in first:
            a = dict(first[key])
            b = dict(second[key])
            self.assertEqual(a.pop("created_at"), b.pop("created_at"), key)
            self.assertEqual(a, b, key)  # updated_at included: nothing was written

    def test_import_mixes_created_and_updated_and_applies_changes(self):
        doc = self.doc()
        self.import_(doc)
        doc["gwas"][0]["name"] = "renamed by import"
        doc["gwas"].append({"id": uid("imgwa"), "name": "new", "endpoint": "https://n.example"})
        r = self.import_({"gwas": doc["gwas"], "parties": []})
        self.assertEqual(r.json(), {"imported": {
            "gwas": {"created": 1, "updated": 1, "unchanged": 0},
            "parties": {"created": 0, "updated": 0, "unchanged": 0}}})
        self.assertEqual(self.get("gwas", doc["gwas"][0]["id"])["name"], "renamed by import")

    def test_deep_tree_in_reverse_order(self):
        vnb = party_id()
        ids = [uid("deep") for _ in range(6)]
        segs = [{"id": ids[0], "name": "r", "level": "substation", "vnb": vnb}]
        segs += [{"id": ids[i], "name": "n", "level": "feeder", "vnb": vnb, "parent": ids[i - 1]}
                 for i in range(1, len(ids))]
        segs.reverse()
        r = self.import_({"parties": [{"id": vnb, "name": "v", "role": "vnb"}],
                          "segments": segs})
        self.assertEqual(r.json()["imported"]["segments"],
                         {"created": 6, "updated": 0, "unchanged": 0})
        for i in range(1, len(ids)):
            self.assertEqual(self.get("segments", ids[i])["parent"], ids[i - 1])

    def test_error_in_last_item_stores_nothing(self):
        existing = self.make_gwa(name="before import")
        doc = self.doc(n_inst=4)
        doc["gwas"].append({"id": existing, "name": "changed by failed import",
                            "endpoint": "https://gwa.example"})
        doc["installations"][3]["rated_power_w"] = 0
        p = self.assertProblem(self.import_(doc, 422), 422,
                               pointer="/installations/3/rated_power_w")
        self.assertEqual(p["type"], "urn:clsm:problem:validation")
        self.assertIn("nothing was imported", p["detail"])
        doc["gwas"].pop()
        self.all_absent(doc)
        self.assertEqual(self.get("gwas", existing)["name"], "before import")
        # fixed, the same document goes in
        doc["installations"][3]["rated_power_w"] = 1
        self.import_(doc)

    def test_errors_point_into_the_document(self):
        doc = self.doc()
        doc["devices"][0]["kind"] = "toaster"
        self.assertProblem(self.import_(doc, 422), 422, pointer="/devices/0/kind")
        self.all_absent(doc)
        doc = self.doc()
        doc["parties"][1]["colour"] = "x"
        self.assertProblem(self.import_(doc, 422), 422, pointer="/parties/1/colour")
        self.all_absent(doc)
        doc = self.doc()
        doc["parties"].append("not an object")
        self.assertProblem(self.import_(doc, 422), 422, pointer="/parties/2")
        self.all_absent(doc)
        doc = self.doc()
        doc["assignments"][0]["party"] = doc["parties"][0]["id"]  # a VNB
        self.assertProblem(self.import_(doc, 422), 422, pointer="/assignments/0/party")
        self.all_absent(doc)
        doc = self.doc()
        doc["smgws"][0]["segment"] = "missing-segment"
        self.assertProblem(self.import_(doc, 422), 422, pointer="/smgws/0/segment")
        self.all_absent(doc)

    def test_unknown_key_and_non_arrays(self):
        doc = self.doc()
        doc["widgets"] = []
        self.assertProblem(self.import_(doc, 422), 422, pointer="/widgets")
        del doc["widgets"]
        self.all_absent(doc)
        for bad in ({}, "x", None, 3):
            with self.subTest(value=bad):
                doc = self.doc()
                doc["parties"] = bad
                self.assertProblem(self.import_(doc, 422), 422, pointer="/parties")
                del doc["parties"]
                self.all_absent(doc)
        self.assertProblem(self.req("POST", "/v1/import", raw=b"[]"), 422, pointer="")

    def test_parent_cycle_in_document(self):
        vnb = party_id()
        a, b = uid("cyc"), uid("cyc")
        doc = {"parties": [{"id": vnb, "name": "v", "role": "vnb"}],
               "segments": [{"id": a, "name": "a", "level": "feeder", "vnb": vnb, "parent": b},
                            {"id": b, "name": "b", "level": "feeder", "vnb": vnb, "parent": a}]}
        p = self.assertProblem(self.import_(doc, 422), 422)
        self.assertRegex(p["pointer"], r"^/segments/[01]/parent$")
        self.all_absent(doc)
        doc["segments"] = [{"id": a, "name": "a", "level": "feeder", "vnb": vnb, "parent": a}]
        p = self.assertProblem(self.import_(doc, 422), 422, pointer="/segments/0/parent")
        self.all_absent(doc)

    def test_cycle_against_stored_segments(self):
        vnb = self.make_party()
        a = self.make_segment(vnb=vnb)
        b = self.make_segment(vnb=vnb, parent=a)
        before = self.get("segments", a)
        doc = {"segments": [{"id": a, "name": "a", "level": "substation", "vnb": vnb,
                             "parent": b}]}
        self.assertProblem(self.import_(doc, 422), 422, pointer="/segments/0/parent")
        self.assertEqual(self.get("segments", a), before)

    def test_unique_conflict_in_document(self):
        doc = self.doc(n_inst=3)
        doc["installations"][2]["output"] = 0
        p = self.assertProblem(self.import_(doc, 409), 409)
        self.assertEqual(p["type"], "urn:clsm:problem:conflict")
        self.assertEqual(p["pointer"], "/installations/2")
        self.all_absent(doc)
        doc = self.doc()
        doc["assignments"].append({"id": uid("asg"), "party": doc["assignments"][0]["party"],
                                   "installation": doc["installations"][0]["id"],
                                   "rights": ["control"]})
        self.assertProblem(self.import_(doc, 409), 409, pointer="/assignments/1")
        self.all_absent(doc)

    def test_role_change_in_import_must_keep_references_valid(self):
        # See ConflictTest.test_party_role_change_must_keep_references_valid:
        # the import must not turn a segment's VNB into a supplier either.
        vnb = self.make_party()
        seg = self.make_segment(vnb=vnb)
        before = self.get("parties", vnb)
        gwa = uid("imgwa")
        doc = {"parties": [{"id": vnb, "name": "now a supplier", "role": "lf"}],
               "gwas": [{"id": gwa, "name": "g", "endpoint": "https://g.example"}]}
        r = self.req("POST", "/v1/import", doc)
        self.assertIn(r.status, (409, 422), r)
        p = self.assertProblem(r, r.status)
        self.assertTrue(p["pointer"].startswith("/parties/0"), p)
        self.assertEqual(self.get("parties", vnb), before)
        self.assertEqual(self.get("segments", seg)["vnb"], vnb)
        self.absent("gwas", gwa)

    def test_read_only_field_in_import(self):
        seg = self.make_segment()
        cur = self.get("segments", seg)
        doc = {"segments": [{"id": seg, "name": "x", "level": cur["level"], "vnb": cur["vnb"],
                             "traffic_light": "red"}]}
        self.assertProblem(self.import_(doc, 422), 422, pointer="/segments/0/traffic_light")
        self.assertEqual(self.get("segments", seg), cur)
        doc["segments"][0]["traffic_light"] = "green"
        self.import_(doc)
        self.assertEqual(self.get("segments", seg)["name"], "x")

    def test_empty_document(self):
        r = self.import_({})
        self.assertEqual(r.json(), {"imported": {}})
        self.assertProblem(self.req("POST", "/v1/import", raw=b""), 400)
        self.assertProblem(self.req("POST", "/v1/import?dry_run=1", {}), 400, field="dry_run")


if __name__ == "__main__":
    clsmtest.main()
