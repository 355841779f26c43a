"""Authentication, party tokens, what each role sees and may do, and the
traffic light of a segment.

Tests marked "REGRESSION:" cover bugs that were found by them and fixed.
"""
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
    return "98%011d" % next(_seq)


def smgw_id():
    return "EAUT%010d" % next(_seq)


def q(s):
    return urllib.parse.quote(s, safe="")


class AuthBase(clsmtest.ServerTest):

    def req(self, method, path, body=None, token="admin", **kw):
        return self.server.request(method, path, body=body, token=token, **kw)

    def create(self, plural, body):
        r = self.req("POST", "/v1/" + plural, body)
        self.assertEqual(r.status, 201, r)
        return r.json()["id"]

    def admin_get(self, plural, id_):
        r = self.req("GET", "/v1/%s/%s" % (plural, q(id_)))
        self.assertEqual(r.status, 200, r)
        return r.json()

    def party(self, role):
        return self.create("parties", {"id": party_id(), "name": "P " + role, "role": role})

    def token(self, party, label=None):
        body = {"label": label} if label is not None else None
        r = self.req("POST", "/v1/parties/%s/tokens" % party, body)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def ids(self, plural, token, query=""):
        r = self.req("GET", "/v1/%s?limit=1000%s" % (plural, query), token=token)
        self.assertEqual(r.status, 200, r)
        return sorted(it["id"] for it in r.json()["items"])


class AuthenticationTest(AuthBase):

    def assert_401(self, headers, path="/v1/me"):
        r = self.server.request("GET", path, token=None, headers=headers)
        p = self.assertProblem(r, 401, field="Authorization")
        self.assertEqual(p["type"], "urn:clsm:problem:unauthenticated")
        self.assertEqual(r.header("WWW-Authenticate"), 'Bearer realm="clsm"')
        return p

    def test_missing_authorization(self):
        for path in ("/v1/me", "/v1/parties", "/v1/segments/x", "/v1/parties/1234567890123/tokens"):
            with self.subTest(path=path):
                self.assert_401({}, path)
        r = self.req("POST", "/v1/gwas", {"id": uid("g"), "name": "g",
                                          "endpoint": "https://g.example"}, token=None)
        self.assertProblem(r, 401)
        self.assertProblem(self.req("POST", "/v1/import", {}, token=None), 401)
        self.assertProblem(self.req("PUT", "/v1/segments/x/traffic-light", {"light": "red"},
                                    token=None), 401)

    def test_malformed_authorization(self):
        for value in ("Basic dXNlcjpwYXNz", "Bearer ", "Bearer", "Token " + clsmtest.ADMIN_TOKEN,
                      clsmtest.ADMIN_TOKEN, "Bearer " + "a" * 257,
                      "Bearer " + clsmtest.ADMIN_TOKEN + "x", "Bearerx " + clsmtest.ADMIN_TOKEN):
            with self.subTest(value=value[:40]):
                self.assert_401({"Authorization": value})

    def test_unknown_and_near_miss_tokens(self):
        for tok in ("nope", "clsm_" + "A" * 40, clsmtest.ADMIN_TOKEN[:-1],
                    clsmtest.ADMIN_TOKEN.upper()):
            with self.subTest(token=tok):
                p = self.assert_401({"Authorization": "Bearer " + tok})
                self.assertIn("not valid", p["detail"])

    def test_scheme_is_case_insensitive(self):
        r = self.server.request("GET", "/v1/me", token=None,
                                headers={"Authorization": "bearer " + clsmtest.ADMIN_TOKEN})
        self.assertEqual(r.status, 200, r)

    def test_operational_endpoints_need_no_token(self):
        r = self.req("GET", "/healthz", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "ok")
        self.assertIsInstance(r.json()["uptime_s"], int)
        r = self.req("GET", "/readyz", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "ready")
        self.assertGreaterEqual(r.json()["schema_version"], 1)
        r = self.req("GET", "/metrics", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"clsm_build_info", r.body)
        # a bad token does not hurt there either
        self.assertEqual(self.req("GET", "/healthz", token="garbage").status, 200)

    def test_me_for_admin(self):
        r = self.req("GET", "/v1/me")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"party": None, "role": "admin", "admin": True})


class TokenTest(AuthBase):

    def test_token_life_cycle(self):
        p = self.party("vnb")
        r = self.req("POST", "/v1/parties/%s/tokens" % p, {"label": "leitstelle"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.header("Content-Type"), "application/json")
        t = r.json()
        self.assertTrue(t["token"].startswith("clsm_"), t)
        self.assertGreaterEqual(len(t["token"]), 30)
        self.assertEqual(t["party"], p)
        self.assertEqual(t["label"], "leitstelle")
        self.assertRegex(t["created_at"], r"^\d{4}-\d\d-\d\dT")
        self.assertTrue(t["id"])

        # the token works and names its party and role
        r = self.req("GET", "/v1/me", token=t["token"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"party": p, "role": "vnb", "admin": False})

        # the list shows it without the secret
        r = self.req("GET", "/v1/parties/%s/tokens" % p)
        self.assertEqual(r.status, 200, r)
        items = r.json()["items"]
        self.assertEqual([it["id"] for it in items], [t["id"]])
        self.assertEqual(items[0]["label"], "leitstelle")
        self.assertEqual(items[0]["party"], p)
        self.assertNotIn("token", items[0])
        self.assertNotIn(t["token"].encode(), r.body)

        # a second token without body or label
        r = self.req("POST", "/v1/parties/%s/tokens" % p, None)
        self.assertEqual(r.status, 201, r)
        t2 = r.json()
        self.assertIsNone(t2["label"])
        self.assertNotEqual(t2["token"], t["token"])
        self.assertNotEqual(t2["id"], t["id"])
        r = self.req("GET", "/v1/parties/%s/tokens" % p)
        self.assertEqual(sorted(it["id"] for it in r.json()["items"]), sorted([t["id"], t2["id"]]))

        # revoke the first: it stops working, the second goes on
        r = self.req("DELETE", "/v1/parties/%s/tokens/%s" % (p, t["id"]))
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        self.assertProblem(self.req("GET", "/v1/me", token=t["token"]), 401)
        self.assertEqual(self.req("GET", "/v1/me", token=t2["token"]).status, 200)
        self.assertProblem(self.req("DELETE", "/v1/parties/%s/tokens/%s" % (p, t["id"])), 404)
        r = self.req("GET", "/v1/parties/%s/tokens" % p)
        self.assertEqual([it["id"] for it in r.json()["items"]], [t2["id"]])

    def test_token_of_one_party_cannot_be_revoked_through_another(self):
        a, b = self.party("lf"), self.party("lf")
        t = self.token(a)
        self.assertProblem(self.req("DELETE", "/v1/parties/%s/tokens/%s" % (b, t["id"])), 404)
        self.assertEqual(self.req("GET", "/v1/me", token=t["token"]).status, 200)

    def test_tokens_of_missing_parties(self):
        for pid in ("9999999999999", "abc", "12345678901234"):
            with self.subTest(party=pid):
                self.assertProblem(self.req("POST", "/v1/parties/%s/tokens" % pid,
                                            {"label": "x"}), 404)
                self.assertProblem(self.req("GET", "/v1/parties/%s/tokens" % pid), 404)
                self.assertProblem(self.req("DELETE", "/v1/parties/%s/tokens/abc" % pid), 404)

    def test_token_body_validation(self):
        p = self.party("lf")
        for body, pointer in (({"label": "l" * 101}, "/label"), ({"label": 5}, "/label"),
                              ({"label": ""}, "/label"), ({"label": ["x"]}, "/label")):
            with self.subTest(body=str(body)[:30]):
                self.assertProblem(self.req("POST", "/v1/parties/%s/tokens" % p, body), 422,
                                   pointer=pointer)
        self.assertProblem(self.req("POST", "/v1/parties/%s/tokens" % p, raw=b"[]"), 422)
        self.assertProblem(self.req("POST", "/v1/parties/%s/tokens" % p, raw=b"{"), 400)
        self.assertProblem(self.req("POST", "/v1/parties/%s/tokens" % p, raw=b'{"label":"x"}',
                                    content_type="text/plain"), 415, field="Content-Type")
        r = self.req("GET", "/v1/parties/%s/tokens" % p)
        self.assertEqual(r.json()["items"], [], "a rejected request created a token")
        self.assertEqual(self.token(p, "l" * 100)["label"], "l" * 100)
        # null means no label, as for optional registry fields
        r = self.req("POST", "/v1/parties/%s/tokens" % p, {"label": None})
        self.assertEqual(r.status, 201, r)
        self.assertIsNone(r.json()["label"])

    def test_label_is_checked_like_other_text(self):
        # REGRESSION: the label limit counted bytes although the answer said
        # "at most 100 characters" (100 x "ü" was refused), and control
        # characters were accepted ("a\nb" was stored), unlike in every
        # registry string.
        p = self.party("lf")
        r = self.req("POST", "/v1/parties/%s/tokens" % p, {"label": "\u00fc" * 100})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["label"], "\u00fc" * 100)
        r = self.req("POST", "/v1/parties/%s/tokens" % p, {"label": "\u00fc" * 101})
        self.assertProblem(r, 422, pointer="/label")
        for bad in ("a\nb", "a\u0001b"):
            with self.subTest(label=bad):
                r = self.req("POST", "/v1/parties/%s/tokens" % p, {"label": bad})
                self.assertProblem(r, 422, pointer="/label")
        r = self.req("GET", "/v1/parties/%s/tokens" % p)
        labels = [it["label"] for it in r.json()["items"]]
        self.assertEqual(labels, ["\u00fc" * 100])

    def test_unknown_field_in_token_body(self):
        # REGRESSION: an unknown field is answered 422 with pointer "/" (the JSON
        # pointer of a member named ""), not "/<field>" as everywhere else
        # in the API (registry bodies, traffic light).
        p = self.party("lf")
        r = self.req("POST", "/v1/parties/%s/tokens" % p, {"label": "x", "scope": "all"})
        self.assertEqual(r.status, 422, r)
        self.assertEqual(self.req("GET", "/v1/parties/%s/tokens" % p).json()["items"], [])
        self.assertProblem(r, 422, pointer="/scope")

    def test_only_admins_manage_tokens(self):
        a = self.party("vnb")
        other = self.party("vnb")
        ta = self.token(a)["token"]
        # own party: visible, so 403; another party: invisible, so 404
        self.assertProblem(self.req("POST", "/v1/parties/%s/tokens" % a, None, token=ta), 403)
        self.assertProblem(self.req("GET", "/v1/parties/%s/tokens" % a, token=ta), 403)
        self.assertProblem(self.req("POST", "/v1/parties/%s/tokens" % other, None, token=ta), 404)
        self.assertEqual(self.req("GET", "/v1/parties/%s/tokens" % a).json()["items"].__len__(), 1)

    def test_deleting_a_party_revokes_its_tokens(self):
        p = self.party("msb")
        t = self.token(p)["token"]
        self.assertEqual(self.req("GET", "/v1/me", token=t).status, 200)
        self.assertEqual(self.req("DELETE", "/v1/parties/" + p).status, 204)
        self.assertProblem(self.req("GET", "/v1/me", token=t), 401)
        # a new party with the same id does not inherit the token
        self.create("parties", {"id": p, "name": "again", "role": "msb"})
        self.assertProblem(self.req("GET", "/v1/me", token=t), 401)

    def test_admin_party_has_admin_rights(self):
        p = self.party("admin")
        t = self.token(p)["token"]
        r = self.req("GET", "/v1/me", token=t)
        self.assertEqual(r.json(), {"party": p, "role": "admin", "admin": True})
        gwa = uid("g")
        r = self.req("POST", "/v1/gwas", {"id": gwa, "name": "g", "endpoint": "https://g.example"},
                     token=t)
        self.assertEqual(r.status, 201, r)
        self.assertIn(gwa, self.ids("gwas", t))
        other = self.party("lf")
        self.assertIn(other, self.ids("parties", t))
        r = self.req("POST", "/v1/parties/%s/tokens" % other, None, token=t)
        self.assertEqual(r.status, 201, r)
        vnb = self.party("vnb")
        seg = self.create("segments", {"id": uid("s"), "name": "s", "level": "feeder",
                                       "vnb": vnb})
        r = self.req("PUT", "/v1/segments/%s/traffic-light" % seg, {"light": "red"}, token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["light_set_by"], p)
        r = self.req("POST", "/v1/import", {"gwas": []}, token=t)
        self.assertEqual(r.status, 200, r)


class VisibilityTest(AuthBase):
    """Two VNBs with their grids, two suppliers with one installation each."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        t = cls("run")
        w = {}
        for name, role in (("vnbA", "vnb"), ("vnbB", "vnb"), ("lf1", "lf"), ("lf2", "lf"),
                           ("agg", "aggregator"), ("uenb", "uenb")):
            w[name] = t.party(role)
            w["tok_" + name] = t.token(w[name])["token"]
        seg = lambda vnb, **kw: t.create("segments", dict(  # noqa: E731
            {"id": uid("seg"), "name": "s", "level": "feeder", "vnb": vnb}, **kw))
        w["sA1"] = seg(w["vnbA"], level="transformer")
        w["sA2"] = seg(w["vnbA"], parent=w["sA1"])
        w["sB"] = seg(w["vnbB"])
        gwa = t.create("gwas", {"id": uid("gwa"), "name": "g", "endpoint": "https://g.example"})
        w["gwa"] = gwa
        w["gwA"] = t.create("smgws", {"id": smgw_id(), "gwa": gwa, "segment": w["sA2"]})
        w["gwB"] = t.create("smgws", {"id": smgw_id(), "gwa": gwa, "segment": w["sB"]})
        w["devA"] = t.create("devices", {"id": uid("dev"), "smgw": w["gwA"], "kind": "steuerbox"})
        w["devB"] = t.create("devices", {"id": uid("dev"), "smgw": w["gwB"], "kind": "steuerbox"})
        inst = lambda dev, segment, out=0: t.create("installations", {  # noqa: E731
            "id": uid("inst"), "device": dev, "output": out, "kind": "heat_pump",
            "direction": "consumption", "rated_power_w": 9000, "segment": segment})
        w["iA1"] = inst(w["devA"], w["sA1"])
        w["iA2"] = inst(w["devA"], w["sA2"], 1)
        w["iB"] = inst(w["devB"], w["sB"])
        asg = lambda party, i: t.create("assignments", {  # noqa: E731
            "party": party, "installation": i, "rights": ["read", "control"]})
        w["a1A1"] = asg(w["lf1"], w["iA1"])
        w["a2B"] = asg(w["lf2"], w["iB"])
        w["aggA2"] = asg(w["agg"], w["iA2"])
        cls.w = w

    def setUp(self):
        self.w = type(self).w

    def test_me(self):
        w = self.w
        for name, role in (("vnbA", "vnb"), ("lf1", "lf"), ("agg", "aggregator")):
            r = self.req("GET", "/v1/me", token=w["tok_" + name])
            self.assertEqual(r.json(), {"party": w[name], "role": role, "admin": False})

    def test_every_party_sees_only_itself(self):
        w = self.w
        for name in ("vnbA", "vnbB", "lf1", "agg", "uenb"):
            tok = w["tok_" + name]
            self.assertEqual(self.ids("parties", tok), [w[name]])
            self.assertEqual(self.ids("parties", tok, "&role=vnb"),
                             [w[name]] if name.startswith("vnb") else [])
            self.assertEqual(self.req("GET", "/v1/parties/" + w[name], token=tok).status, 200)
            other = w["lf2"]
            self.assertProblem(self.req("GET", "/v1/parties/" + other, token=tok), 404)

    def test_vnb_sees_its_grid(self):
        w = self.w
        tok = w["tok_vnbA"]
        self.assertEqual(self.ids("segments", tok), sorted([w["sA1"], w["sA2"]]))
        self.assertEqual(self.req("GET", "/v1/segments/" + w["sA2"], token=tok).status, 200)
        self.assertProblem(self.req("GET", "/v1/segments/" + w["sB"], token=tok), 404)
        self.assertEqual(self.ids("installations", tok), sorted([w["iA1"], w["iA2"]]))
        self.assertEqual(self.ids("installations", tok, "&segment=" + w["sA1"]),
                         sorted([w["iA1"], w["iA2"]]))
        self.assertEqual(self.ids("installations", tok, "&segment=" + w["sB"]), [])
        self.assertEqual(self.req("GET", "/v1/installations/" + w["iA1"], token=tok).status, 200)
        self.assertProblem(self.req("GET", "/v1/installations/" + w["iB"], token=tok), 404)
        self.assertEqual(self.ids("assignments", tok), sorted([w["a1A1"], w["aggA2"]]))
        self.assertEqual(self.req("GET", "/v1/assignments/" + q(w["a1A1"]), token=tok).status,
                         200)
        self.assertProblem(self.req("GET", "/v1/assignments/" + q(w["a2B"]), token=tok), 404)
        # the other VNB sees the mirror image
        tokB = w["tok_vnbB"]
        self.assertEqual(self.ids("segments", tokB), [w["sB"]])
        self.assertEqual(self.ids("installations", tokB), [w["iB"]])
        self.assertEqual(self.ids("assignments", tokB), [w["a2B"]])

    def test_vnb_cannot_write(self):
        w = self.w
        tok = w["tok_vnbA"]
        creates = (
            ("parties", {"id": party_id(), "name": "x", "role": "lf"}),
            ("segments", {"id": uid("s"), "name": "s", "level": "feeder", "vnb": w["vnbA"],
                          "parent": w["sA1"]}),
            ("gwas", {"id": uid("g"), "name": "g", "endpoint": "https://g.example"}),
            ("smgws", {"id": smgw_id(), "gwa": w["gwa"], "segment": w["sA1"]}),
            ("devices", {"id": uid("d"), "smgw": w["gwA"], "kind": "steuerbox"}),
            ("installations", {"id": uid("i"), "device": w["devA"], "output": 7,
                               "kind": "heat_pump", "direction": "consumption",
                               "rated_power_w": 9000, "segment": w["sA2"]}),
            ("assignments", {"id": uid("a"), "party": w["lf1"], "installation": w["iA2"],
                             "rights": ["read"]}),
        )
        for plural, body in creates:
            with self.subTest(plural=plural):
                p = self.assertProblem(self.req("POST", "/v1/" + plural, body, token=tok), 403)
                self.assertEqual(p["type"], "urn:clsm:problem:forbidden")
                self.assertProblem(self.req("GET", "/v1/%s/%s" % (plural, body["id"])), 404)
        self.assertProblem(self.req("POST", "/v1/import", {"gwas": []}, token=tok), 403)

        before = self.admin_get("installations", w["iA1"])
        full = {k: v for k, v in before.items() if k not in ("created_at", "updated_at")}
        self.assertProblem(self.req("PUT", "/v1/installations/" + w["iA1"],
                                    dict(full, rated_power_w=1), token=tok), 403)
        self.assertProblem(self.req("PATCH", "/v1/installations/" + w["iA1"],
                                    {"rated_power_w": 1}, token=tok), 403)
        self.assertProblem(self.req("DELETE", "/v1/installations/" + w["iA1"], token=tok), 403)
        self.assertEqual(self.admin_get("installations", w["iA1"]), before)
        # invisible: 404, so that existence does not leak
        beforeB = self.admin_get("installations", w["iB"])
        self.assertProblem(self.req("PUT", "/v1/installations/" + w["iB"],
                                    dict(full, id=w["iB"]), token=tok), 404)
        self.assertProblem(self.req("PATCH", "/v1/installations/" + w["iB"],
                                    {"rated_power_w": 1}, token=tok), 404)
        self.assertProblem(self.req("DELETE", "/v1/installations/" + w["iB"], token=tok), 404)
        self.assertEqual(self.admin_get("installations", w["iB"]), beforeB)
        # own segment and own party: 403
        seg = self.admin_get("segments", w["sA1"])
        self.assertProblem(self.req("PATCH", "/v1/segments/" + w["sA1"], {"name": "x"},
                                    token=tok), 403)
        self.assertProblem(self.req("DELETE", "/v1/parties/" + w["vnbA"], token=tok), 403)
        self.assertEqual(self.admin_get("segments", w["sA1"]), seg)
        # a missing id: 404 as well
        self.assertProblem(self.req("DELETE", "/v1/segments/nothing-here", token=tok), 404)

    def test_vnb_traffic_light(self):
        w = self.w
        tok = w["tok_vnbA"]
        r = self.req("PUT", "/v1/segments/%s/traffic-light" % w["sA2"],
                     {"light": "red", "reason": "Trafo ueberlastet"}, token=tok)
        self.assertEqual(r.status, 200, r)
        seg = r.json()
        self.assertEqual(seg["traffic_light"], "red")
        self.assertEqual(seg["light_set_by"], w["vnbA"])
        self.assertEqual(seg["light_reason"], "Trafo ueberlastet")
        self.assertRegex(seg["light_since"], r"^\d{4}-\d\d-\d\dT")
        self.assertEqual(self.admin_get("segments", w["sA2"]), seg)
        self.assertEqual(self.ids("segments", tok, "&traffic_light=red"), [w["sA2"]])
        # without a reason the old one is gone
        r = self.req("PUT", "/v1/segments/%s/traffic-light" % w["sA2"], {"light": "yellow"},
                     token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["traffic_light"], "yellow")
        self.assertIsNone(r.json()["light_reason"])
        self.assertGreaterEqual(r.json()["light_since"], seg["light_since"])
        # the other VNB's segment: 404, unchanged
        before = self.admin_get("segments", w["sB"])
        self.assertProblem(self.req("PUT", "/v1/segments/%s/traffic-light" % w["sB"],
                                    {"light": "red"}, token=tok), 404)
        self.assertEqual(self.admin_get("segments", w["sB"]), before)

    def test_market_party_sees_its_assignments(self):
        w = self.w
        for name, inst, asg in (("lf1", w["iA1"], w["a1A1"]), ("lf2", w["iB"], w["a2B"]),
                                ("agg", w["iA2"], w["aggA2"])):
            tok = w["tok_" + name]
            with self.subTest(party=name):
                self.assertEqual(self.ids("installations", tok), [inst])
                self.assertEqual(self.ids("assignments", tok), [asg])
                self.assertEqual(self.req("GET", "/v1/installations/" + inst,
                                          token=tok).status, 200)
                self.assertEqual(self.req("GET", "/v1/assignments/" + q(asg),
                                          token=tok).status, 200)
        tok = w["tok_lf1"]
        self.assertProblem(self.req("GET", "/v1/installations/" + w["iB"], token=tok), 404)
        self.assertProblem(self.req("GET", "/v1/installations/" + w["iA2"], token=tok), 404)
        self.assertProblem(self.req("GET", "/v1/assignments/" + q(w["a2B"]), token=tok), 404)
        self.assertProblem(self.req("GET", "/v1/assignments/" + q(w["aggA2"]), token=tok), 404)

    def test_market_party_sees_no_grid_or_hardware(self):
        w = self.w
        for name in ("lf1", "agg", "uenb"):
            tok = w["tok_" + name]
            with self.subTest(party=name):
                for plural, id_ in (("segments", w["sA1"]), ("gwas", w["gwa"]),
                                    ("smgws", w["gwA"]), ("devices", w["devA"])):
                    self.assertEqual(self.ids(plural, tok), [], plural)
                    self.assertProblem(self.req("GET", "/v1/%s/%s" % (plural, id_), token=tok),
                                       404)
                # Only VNBs set lights: refused by role, before any lookup, so the
                # answer is the same for an existing and a missing segment.
                before = self.admin_get("segments", w["sA1"])
                for seg in (w["sA1"], "no-such-segment"):
                    self.assertProblem(self.req("PUT", "/v1/segments/%s/traffic-light" % seg,
                                                {"light": "red"}, token=tok), 403)
                self.assertEqual(self.admin_get("segments", w["sA1"]), before)
                self.assertProblem(self.req("POST", "/v1/gwas", {"id": uid("g"), "name": "g",
                                                                 "endpoint": "https://g.example"},
                                            token=tok), 403)
        # a uenb holds no assignments and sees no installations
        self.assertEqual(self.ids("installations", w["tok_uenb"]), [])
        self.assertEqual(self.ids("assignments", w["tok_uenb"]), [])

    def test_market_party_cannot_write_its_installation(self):
        w = self.w
        tok = w["tok_lf1"]
        before = self.admin_get("installations", w["iA1"])
        self.assertProblem(self.req("PATCH", "/v1/installations/" + w["iA1"],
                                    {"rated_power_w": 1}, token=tok), 403)
        self.assertProblem(self.req("DELETE", "/v1/assignments/" + q(w["a1A1"]), token=tok), 403)
        self.assertEqual(self.admin_get("installations", w["iA1"]), before)
        self.assertEqual(self.admin_get("assignments", w["a1A1"])["party"], w["lf1"])


class TrafficLightTest(AuthBase):

    def segment(self):
        vnb = self.party("vnb")
        return self.create("segments", {"id": uid("seg"), "name": "s", "level": "feeder",
                                        "vnb": vnb})

    def rejected(self, seg, body, status, pointer=None, raw=None, **kw):
        before = self.admin_get("segments", seg)
        r = self.req("PUT", "/v1/segments/%s/traffic-light" % seg, body, raw=raw, **kw)
        p = self.assertProblem(r, status, pointer=pointer)
        self.assertEqual(self.admin_get("segments", seg), before)
        return p

    def test_admin_sets_each_light(self):
        seg = self.segment()
        for light in ("yellow", "red", "green"):
            r = self.req("PUT", "/v1/segments/%s/traffic-light" % seg,
                         {"light": light, "reason": "test " + light})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["traffic_light"], light)
            self.assertEqual(r.json()["light_set_by"], "admin")
            self.assertEqual(r.json()["light_reason"], "test " + light)
            self.assertEqual(self.admin_get("segments", seg)["traffic_light"], light)

    def test_light_validation(self):
        seg = self.segment()
        for body in ({}, {"reason": "x"}, {"light": "blue"}, {"light": "RED"}, {"light": 1},
                     {"light": None}, {"light": ""}, {"light": ["red"]}):
            with self.subTest(body=body):
                p = self.rejected(seg, body, 422, pointer="/light")
                self.assertEqual(p["type"], "urn:clsm:problem:validation")
        for body in ({"light": "red", "reason": "r" * 501}, {"light": "red", "reason": 5}):
            with self.subTest(body=str(body)[:40]):
                self.rejected(seg, body, 422, pointer="/reason")
        self.rejected(seg, {"light": "red", "until": "tomorrow"}, 422, pointer="/until")
        self.rejected(seg, None, 422, pointer="", raw=b"[]")
        self.rejected(seg, None, 400, raw=b"{light}")
        self.rejected(seg, None, 415, raw=b'{"light":"red"}', content_type="text/plain")
        self.rejected(seg, None, 400, raw=b"")
        r = self.req("PUT", "/v1/segments/%s/traffic-light" % seg,
                     {"light": "red", "reason": "r" * 500})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["light_reason"], "r" * 500)
        # null means no reason, as for optional registry fields
        r = self.req("PUT", "/v1/segments/%s/traffic-light" % seg, {"light": "yellow", "reason": None})
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.json()["light_reason"])

    def test_reason_is_checked_like_other_registry_text(self):
        # REGRESSION: the reason is stored in the segment's light_reason, a registry
        # string field of at most 500 characters, but PUT .../traffic-light
        # checks it by itself: it counts bytes, not characters (500 x "ü" is
        # refused with "at most 500 characters"), and it accepts control
        # characters ("a\u0001b" is stored), which every registry string
        # refuses with 422.
        seg = self.segment()
        r = self.req("PUT", "/v1/segments/%s/traffic-light" % seg,
                     {"light": "red", "reason": "\u00fc" * 500})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.admin_get("segments", seg)["light_reason"], "\u00fc" * 500)
        self.rejected(seg, {"light": "red", "reason": "\u00fc" * 501}, 422, pointer="/reason")
        for bad in ("a\u0001b", "line\nbreak", "del\u007f"):
            with self.subTest(reason=bad):
                self.rejected(seg, {"light": "yellow", "reason": bad}, 422, pointer="/reason")

    def test_unknown_segment(self):
        for seg in ("no-such-segment", "bad%20id", "x" * 100):
            with self.subTest(segment=seg[:20]):
                self.assertProblem(self.req("PUT", "/v1/segments/%s/traffic-light" % seg,
                                            {"light": "red"}), 404)
        self.assertProblem(self.req("PUT", "/v1/segments/%s/traffic-light?force=1" %
                                    self.segment(), {"light": "red"}), 400, field="force")

    def test_wrong_method_on_traffic_light(self):
        seg = self.segment()
        r = self.req("GET", "/v1/segments/%s/traffic-light" % seg)
        self.assertProblem(r, 405)
        self.assertEqual(r.header("Allow"), "PUT")


if __name__ == "__main__":
    clsmtest.main()
