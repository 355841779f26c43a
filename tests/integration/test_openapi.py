"""docs/openapi.yaml against the routes clsmd really serves.

`clsmd --list-routes` prints every route as "METHOD /pattern". The spec's
`paths:` section must name exactly those (path, method) pairs: a served route
missing from the spec fails, and so does a spec operation that is not served.
HEAD is implied by every GET route; the spec need not (but may) list it.

The spec is read with a small line-based parser (standard library only, no
YAML package): path keys sit at indentation 2 under `paths:`, method keys at
indentation 4, operation members at indentation 6. CLSM_OPENAPI_SPEC names
another spec file to check (used to show that the test catches omissions).
"""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import clsmtest  # noqa: E402

SPEC = os.environ.get("CLSM_OPENAPI_SPEC",
                      os.path.join(clsmtest.SOURCE_DIR, "docs", "openapi.yaml"))
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# Members a path item may have besides its operations.
PATH_ITEM_MEMBERS = ("summary", "description", "parameters", "servers", "$ref")
KEY = re.compile(r"^( *)(\"[^\"]*\"|'[^']*'|[^\s\"'#][^:#]*?)\s*:(?:\s+(.*?))?\s*$")
BLOCK = re.compile(r"^[|>][0-9+-]*\s*(#.*)?$")


def unquote(s):
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        return s[1:-1]
    return s


def spec_lines(path):
    """(line number, indentation, key, value) of every mapping key outside
    block scalars and comments; value is None for a key that opens a block."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = []
    block_indent = None
    for n, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if block_indent is not None:
            if not stripped or indent > block_indent:
                continue  # inside a literal or folded block scalar
            block_indent = None
        if not stripped or stripped.startswith("#"):
            continue
        item = stripped.startswith("- ")
        body = stripped[2:] if item else stripped
        m = KEY.match(" " * (indent + (2 if item else 0)) + body)
        if m is None:
            out.append((n, indent, None, stripped))
            continue
        key_indent = len(m.group(1))
        value = m.group(3)
        if value is not None and BLOCK.match(value):
            block_indent = key_indent
            value = None
        if value is not None and value.startswith("#"):
            value = None
        out.append((n, key_indent, unquote(m.group(2)), value))
    return out


class Spec:
    """The parts of the spec the tests look at."""

    def __init__(self, path):
        self.path = path
        self.lines = spec_lines(path)
        self.top = {}         # top-level key -> value (None for a mapping)
        self.ops = {}         # (METHOD, path) -> {member: value} at indentation 6
        self.op_line = {}     # (METHOD, path) -> line number
        self.problems = []    # layout errors found while parsing
        self._paths = set()
        self._parse()

    def _parse(self):
        section = None
        cur_path = None
        cur_op = None
        for n, indent, key, value in self.lines:
            if indent == 0 and key is not None:
                if key in self.top:
                    self.problems.append("line %d: top-level key %r repeated" % (n, key))
                self.top[key] = value
                section = key
                cur_path = cur_op = None
                continue
            if section != "paths":
                continue
            if key is None:
                if indent <= 4:
                    self.problems.append("line %d: cannot read %r" % (n, value))
                continue
            if indent == 2:
                if not key.startswith("/"):
                    self.problems.append("line %d: path key %r does not start with '/'"
                                         % (n, key))
                if key in self._paths:
                    self.problems.append("line %d: path %r listed twice" % (n, key))
                self._paths.add(key)
                cur_path, cur_op = key, None
            elif indent == 4:
                if cur_path is None:
                    self.problems.append("line %d: %r outside a path" % (n, key))
                    continue
                if key in METHODS:
                    op = (key.upper(), cur_path)
                    if op in self.ops:
                        self.problems.append("line %d: %s %s listed twice" % ((n,) + op))
                    self.ops[op] = {}
                    self.op_line[op] = n
                    cur_op = op
                elif key in PATH_ITEM_MEMBERS or key.startswith("x-"):
                    cur_op = None
                else:
                    self.problems.append("line %d: %r under %s is neither a method nor a "
                                         "path item member" % (n, key, cur_path))
                    cur_op = None
            elif indent == 6 and cur_op is not None:
                self.ops[cur_op].setdefault(key, value)
            elif indent < 2 or indent % 2:
                self.problems.append("line %d: odd indentation %d" % (n, indent))


def served_routes():
    if not os.access(clsmtest.CLSMD, os.X_OK):
        raise AssertionError("no clsmd at %s; build it or set CLSM_BUILD_DIR" % clsmtest.CLSMD)
    out = subprocess.run([clsmtest.CLSMD, "--list-routes"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    routes = set()
    for line in out.splitlines():
        if not line.strip():
            continue
        m = re.match(r"^([A-Z]+) (/\S*)$", line.strip())
        if m is None:
            raise AssertionError("unexpected line from clsmd --list-routes: %r" % line)
        routes.add((m.group(1), m.group(2)))
    # HEAD is implied by GET; tolerate --list-routes printing it one day.
    routes -= {("HEAD", p) for (m, p) in routes if m == "HEAD" and ("GET", p) in routes}
    return routes


def fmt(ops):
    return "\n".join("    %-7s %s" % op for op in sorted(ops, key=lambda o: (o[1], o[0])))


class OpenApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.spec = Spec(SPEC)

    def test_layout_readable(self):
        if self.spec.problems:
            self.fail("%s cannot be read by the line parser:\n  %s"
                      % (SPEC, "\n  ".join(self.spec.problems)))

    def test_routes_match_spec(self):
        served = served_routes()
        self.assertTrue(served, "clsmd --list-routes printed no routes")
        documented = set(self.spec.ops)
        implied = {("HEAD", p) for (m, p) in served if m == "GET"}
        missing = served - documented
        extra = documented - served - implied
        msg = []
        if missing:
            msg.append("served by clsmd but missing from %s:\n%s" % (SPEC, fmt(missing)))
        if extra:
            msg.append("in %s but not served by clsmd:\n%s" % (SPEC, fmt(extra)))
        if msg:
            self.fail("\n".join(msg) + "\n(%d routes served, %d operations documented)"
                      % (len(served), len(documented)))

    def test_operation_ids_present_and_unique(self):
        self.assertTrue(self.spec.ops, "no operations found under paths:")
        without = [op for op, members in self.spec.ops.items() if not members.get("operationId")]
        if without:
            self.fail("operations without operationId:\n" + fmt(without))
        seen = {}
        dups = []
        for op, members in sorted(self.spec.ops.items()):
            oid = unquote(members["operationId"])
            if not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", oid):
                dups.append("%s %s: operationId %r is not an identifier" % (op + (oid,)))
            if oid in seen:
                dups.append("operationId %r used by %s %s and %s %s"
                            % ((oid,) + seen[oid] + op))
            seen[oid] = op
        if dups:
            self.fail("\n".join(dups))

    def test_every_operation_has_responses(self):
        without = [op for op, members in self.spec.ops.items() if "responses" not in members]
        if without:
            self.fail("operations without responses:\n" + fmt(without))

    def test_document_structure(self):
        top = self.spec.top
        for key in ("openapi", "info", "servers", "security", "paths", "components"):
            self.assertIn(key, top, "top-level key %r missing in %s" % (key, SPEC))
        version = unquote(top["openapi"] or "")
        self.assertRegex(version, r"^3\.1\.\d+$", "openapi must be 3.1.x")
        keys = {}
        section = None
        for n, indent, key, value in self.spec.lines:
            if indent == 0:
                section = key
            elif indent == 2 and key is not None:
                keys.setdefault(section, set()).add(key)
        for section, wanted in (("info", {"title", "version", "description"}),
                                ("components", {"securitySchemes", "schemas"})):
            self.assertTrue(wanted <= keys.get(section, set()),
                            "%s lacks %s" % (section, sorted(wanted - keys.get(section, set()))))
        with open(SPEC, encoding="utf-8") as f:
            text = f.read()
        self.assertNotIn("\t", text, "tabs are not allowed in YAML indentation")
        # The operational endpoints are the ones without authentication.
        for path in ("/healthz", "/readyz", "/metrics"):
            op = self.spec.ops.get(("GET", path))
            self.assertIsNotNone(op, "GET %s missing" % path)
            self.assertEqual((op.get("security") or "").replace(" ", ""), "[]",
                             "GET %s must have security: []" % path)


if __name__ == "__main__":
    clsmtest.main()
