#!/usr/bin/env python3
"""Generate the demo registry of the fictional town "Musterstadt".

Writes one registry import document (POST /v1/import): 5 market parties, a
segment tree of 1 substation, 4 transformers and 12 feeders, 2 gateway
administrators, 500 smart-meter gateways, one CLS device per gateway, 580
installations (heat pumps, wallboxes, PV, batteries, storage heaters, air
conditioners) and the assignments of supplier, aggregator and metering point
operator to them.

The output is deterministic (fixed seed, no dependence on hash() or set
order), so the committed musterstadt.json can be checked with --check.

Usage:
    python3 data/musterstadt/generate.py [--out FILE]   write the document
    python3 data/musterstadt/generate.py --check        compare with the committed file
"""

import argparse
import json
import os
import random
import re
import sys

SEED = 20261128
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "musterstadt.json")

# --- §14a EnWG ----------------------------------------------------------------

SEC14A_MIN_W = 4200  # guaranteed minimum per controllable consumer
SEC14A_EMS_FACTOR = 0.8  # each further consumer behind one energy manager
SEC14A_LARGE_W = 11000  # heat pumps / air conditioners above this ...
SEC14A_LARGE_FACTOR = 0.4  # ... keep 40 % of their rated power

# --- parties ------------------------------------------------------------------


def bdew_code(body12):
    """A 13-digit market partner id: 12 digits plus a GLN-style check digit."""
    assert len(body12) == 12 and body12.isdigit()
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


VNB = bdew_code("990710000001")
UENB = bdew_code("990710000002")
LF = bdew_code("990710000003")
AGG = bdew_code("990710000004")
MSB = bdew_code("990710000005")

PARTIES = [
    (VNB, "Netze Musterstadt GmbH", "vnb"),
    (UENB, "Übertragungsnetz Mitte GmbH", "uenb"),
    (LF, "Stadtwerke Musterstadt Energie GmbH", "lf"),
    (AGG, "FlexPool Musterstadt GmbH", "aggregator"),
    (MSB, "Messstellenbetrieb Musterstadt GmbH", "msb"),
]

# --- segments -----------------------------------------------------------------

SUBSTATION = ("UW-MUS", "UW Musterstadt")

# transformer suffix, name, [(feeder name, number of gateways), ...]
TRANSFORMERS = [
    ("T1", "ONS Altstadt", [
        ("Abgang Marktplatz", 48),
        ("Abgang Kirchgasse", 37),
        ("Abgang Rathausstraße", 29),
    ]),
    ("T2", "ONS Nordviertel", [
        ("Abgang Lindenallee", 55),
        ("Abgang Birkenweg", 42),
        ("Abgang Am Sportplatz", 33),
    ]),
    ("T3", "ONS Mühlbach", [
        ("Abgang Mühlenweg", 44),
        ("Abgang Wiesengrund", 26),
        ("Abgang Schulstraße", 39),
    ]),
    ("T4", "ONS Sonnenhang", [
        ("Abgang Sonnenhang", 60),
        ("Abgang Ahornring", 51),
        ("Abgang Am Weinberg", 36),
    ]),
]

# Where a kind of household is more likely than elsewhere (transformer suffix
# -> weight; missing = 1): night storage heaters in the old town, heat pump +
# wallbox households in the new development on the Sonnenhang.
AFFINITY = {
    "storage_heater": {"T1": 5.0, "T2": 2.0, "T3": 1.0, "T4": 0.1},
    "hp_wb": {"T4": 3.0, "T3": 1.5},
    "pv_bat": {"T4": 2.0, "T2": 1.5},
}

# --- gateways -----------------------------------------------------------------

GWAS = [
    ("GWA-01", "SecureGate Gateway-Administration", "https://127.0.0.1:9441", 32),
    ("GWA-02", "Smart Admin Süd GWA", "https://127.0.0.1:9442", 16),
]
N_SMGW = 500
N_SMGW_GWA1 = 300  # 60 %; the rest is administered by GWA-02

# Fictional manufacturer codes of the gateway ids, with their market share.
MANUFACTURERS = [("MUS", 0.45), ("XMP", 0.35), ("DMO", 0.20)]

# --- households ---------------------------------------------------------------

# (household type, count).  A household is one gateway with one device.
HOUSEHOLDS = [
    ("hp_wb", 50),  # heat pump + wallbox behind an energy manager
    ("pv_bat", 30),  # PV + battery on one Steuerbox
    ("heat_pump", 182),
    ("wallbox", 124),
    ("pv", 74),
    ("battery", 16),
    ("storage_heater", 16),
    ("air_conditioning", 8),
]

KIND_PREFIX = {
    "heat_pump": "HP",
    "wallbox": "WB",
    "pv": "PV",
    "battery": "BAT",
    "storage_heater": "SH",
    "air_conditioning": "AC",
}
DIRECTION = {
    "heat_pump": "consumption",
    "wallbox": "consumption",
    "pv": "production",
    "battery": "bidirectional",
    "storage_heater": "consumption",
    "air_conditioning": "consumption",
}

# Metering point: DE + 6-digit grid operator number + 5-digit postcode + 20.
MP_PREFIX = "DE" + "099071" + "12345"

SHARE_SEC14A = 0.90  # of the consumers above 4.2 kW
SHARE_LF = 0.85  # consumer installations the supplier may read and control
SHARE_AGG = 0.80  # PV and batteries marketed by the aggregator


# --- generation ---------------------------------------------------------------


def round_to(x, step):
    return int(round(x / step)) * step


def rated_power(rng, kind):
    r = rng.random()
    if kind == "heat_pump":
        if r < 0.08:
            return round_to(rng.uniform(3000, 5900), 100)
        if r < 0.90:
            return round_to(rng.triangular(6000, 11000, 8000), 100)
        return round_to(rng.uniform(11500, 16000), 100)
    if kind == "wallbox":
        if r < 0.08:
            return 3700
        if r < 0.22:
            return 22000
        return 11000
    if kind == "pv":
        return round_to(rng.triangular(3000, 15000, 8000), 100)
    if kind == "battery":
        return rng.choice([3000, 5000, 5000, 6400, 7500, 8000, 10000])
    if kind == "storage_heater":
        return round_to(rng.uniform(6000, 18000), 500)
    if kind == "air_conditioning":
        return round_to(rng.uniform(2500, 12000), 100)
    raise ValueError(kind)


def sec14a_floor(insts):
    """The §14a minimum of the controllable consumers of one device."""
    ctl = [i for i in insts if i["sec14a"]]
    if not ctl:
        return None
    floor = SEC14A_MIN_W + (len(ctl) - 1) * SEC14A_EMS_FACTOR * SEC14A_MIN_W
    for i in ctl:
        if i["kind"] in ("heat_pump", "air_conditioning") and i["rated_power_w"] > SEC14A_LARGE_W:
            floor = max(floor, SEC14A_LARGE_FACTOR * i["rated_power_w"])
    return int(round(floor))


def build():
    rng = random.Random(SEED)

    parties = [{"id": p, "name": n, "role": r} for p, n, r in PARTIES]

    # Segment tree and the gateway slots per feeder.
    segments = [{"id": SUBSTATION[0], "name": SUBSTATION[1], "level": "substation", "vnb": VNB}]
    feeders = []  # (feeder id, transformer suffix, number of gateways)
    for tsuf, tname, flist in TRANSFORMERS:
        tid = SUBSTATION[0] + "." + tsuf
        segments.append({"id": tid, "name": tname, "level": "transformer",
                         "parent": SUBSTATION[0], "vnb": VNB})
        for n, (fname, count) in enumerate(flist, 1):
            fid = "%s.F%d" % (tid, n)
            segments.append({"id": fid, "name": fname, "level": "feeder",
                             "parent": tid, "vnb": VNB})
            feeders.append((fid, tsuf, count))
    assert sum(c for _, _, c in feeders) == N_SMGW

    gwas = [{"id": i, "name": n, "endpoint": e, "max_concurrent": m} for i, n, e, m in GWAS]

    # Gateways: ids from a manufacturer code and a unique serial, sorted per
    # feeder; the GWA split is exact.
    used = set()
    smgws = []
    gwa_of = [GWAS[0][0]] * N_SMGW_GWA1 + [GWAS[1][0]] * (N_SMGW - N_SMGW_GWA1)
    rng.shuffle(gwa_of)
    codes = [c for c, _ in MANUFACTURERS]
    shares = [s for _, s in MANUFACTURERS]
    for fid, _, count in feeders:
        ids = []
        while len(ids) < count:
            gid = "E%s00%08d" % (rng.choices(codes, shares)[0], rng.randrange(10**8))
            if gid not in used:
                used.add(gid)
                ids.append(gid)
        for gid in sorted(ids):
            smgws.append({"id": gid, "gwa": gwa_of[len(smgws)], "segment": fid})
    tsuf_of = {fid: tsuf for fid, tsuf, _ in feeders}

    # Households onto gateways: constrained types first, each picking a free
    # gateway weighted by the affinity of its transformer.
    htype = [None] * N_SMGW
    order = sorted(HOUSEHOLDS, key=lambda h: (h[0] not in AFFINITY, HOUSEHOLDS.index(h)))
    for t, count in order:
        aff = AFFINITY.get(t, {})
        for _ in range(count):
            free = [i for i in range(N_SMGW) if htype[i] is None]
            weights = [aff.get(tsuf_of[smgws[i]["segment"]], 1.0) for i in free]
            htype[rng.choices(free, weights)[0]] = t
    assert all(htype)

    # Devices, installations, assignments in gateway order.
    devices, installations, assignments = [], [], []
    seq = {}
    mp_used = set()

    def next_id(prefix, width):
        seq[prefix] = seq.get(prefix, 0) + 1
        return "%s-%0*d" % (prefix, width, seq[prefix])

    def metering_point():
        while True:
            mp = MP_PREFIX + "%020d" % rng.randrange(10**9, 10**10)
            if mp not in mp_used:
                mp_used.add(mp)
                return mp

    for smgw, t in zip(smgws, htype):
        kinds = {"hp_wb": ["heat_pump", "wallbox"], "pv_bat": ["pv", "battery"]}.get(t, [t])
        is_em = t == "hp_wb"
        if is_em:
            dev = {"id": next_id("EMS", 5), "smgw": smgw["id"], "kind": "energy_manager",
                   "driver": "lpc-mqtt", "firmware": rng.choice(["1.8.2", "1.8.2", "1.9.0"])}
            em_id = next_id("EM", 4)
        else:
            dev = {"id": next_id("SB", 5), "smgw": smgw["id"], "kind": "steuerbox",
                   "driver": "lpc-mqtt",
                   "firmware": rng.choices(["2.4.1", "2.3.7", "2.5.0"], [0.7, 0.2, 0.1])[0]}
        insts = []
        for output, kind in enumerate(kinds):
            p = rated_power(rng, kind)
            direction = DIRECTION[kind]
            eligible = direction != "production" and p > SEC14A_MIN_W
            inst = {"id": next_id(KIND_PREFIX[kind], 5), "device": dev["id"], "output": output,
                    "kind": kind, "direction": direction, "rated_power_w": p,
                    "sec14a": eligible and rng.random() < SHARE_SEC14A}
            if is_em:
                inst["energy_manager"] = em_id
            inst["segment"] = smgw["segment"]
            inst["metering_point"] = metering_point()
            insts.append(inst)
        floor = sec14a_floor(insts)
        if floor is not None:
            dev["failsafe_limit_w"] = floor
        elif all(i["direction"] == "production" for i in insts):
            dev["failsafe_limit_w"] = 0
        else:
            dev["failsafe_limit_w"] = SEC14A_MIN_W
        dev["failsafe_duration_s"] = 7200
        devices.append(dev)
        installations.extend(insts)
        for inst in insts:
            if inst["direction"] == "consumption" and rng.random() < SHARE_LF:
                assignments.append({"party": LF, "installation": inst["id"],
                                    "rights": ["read", "control"]})
            if inst["kind"] in ("pv", "battery") and rng.random() < SHARE_AGG:
                assignments.append({"party": AGG, "installation": inst["id"],
                                    "rights": ["read", "control"]})
            assignments.append({"party": MSB, "installation": inst["id"], "rights": ["read"]})

    doc = {"parties": parties, "segments": segments, "gwas": gwas, "smgws": smgws,
           "devices": devices, "installations": installations, "assignments": assignments}
    verify(doc)
    return doc


# --- checks (mirror src/registry/registry.c) ----------------------------------

FIELDS = {
    "parties": {"id", "name", "role"},
    "segments": {"id", "name", "level", "parent", "vnb"},
    "gwas": {"id", "name", "endpoint", "max_concurrent"},
    "smgws": {"id", "gwa", "segment"},
    "devices": {"id", "smgw", "kind", "driver", "firmware", "failsafe_limit_w",
                "failsafe_duration_s"},
    "installations": {"id", "device", "output", "kind", "direction", "rated_power_w", "sec14a",
                      "energy_manager", "segment", "metering_point"},
    "assignments": {"party", "installation", "rights"},
}
GENERIC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,95}\Z")
PARTY_ID = re.compile(r"[0-9]{13}\Z")
SMGW_ID = re.compile(r"E[A-Z]{3}[0-9]{10}\Z")
MP_ID = re.compile(r"DE[A-Z0-9]{31}\Z")


def verify(doc):
    assert list(doc) == list(FIELDS)
    for plural, items in doc.items():
        for it in items:
            extra = set(it) - FIELDS[plural]
            assert not extra, (plural, it, extra)
    by = {p: {it["id"]: it for it in doc[p] if "id" in it} for p in FIELDS}
    for p in FIELDS:
        if p != "assignments":
            assert len(by[p]) == len(doc[p]), "duplicate id in " + p

    parties = by["parties"]
    for it in doc["parties"]:
        assert PARTY_ID.match(it["id"]) and it["role"] in (
            "vnb", "uenb", "lf", "aggregator", "msb", "admin")
    assert sorted(it["role"] for it in doc["parties"]) == sorted(
        ["vnb", "uenb", "lf", "aggregator", "msb"])

    segs = by["segments"]
    levels = [s["level"] for s in doc["segments"]]
    assert (levels.count("substation"), levels.count("transformer"),
            levels.count("feeder")) == (1, 4, 12)
    for s in doc["segments"]:
        assert GENERIC_ID.match(s["id"]) and parties[s["vnb"]]["role"] == "vnb"
        want = {"substation": None, "transformer": "substation", "feeder": "transformer"}
        parent = s.get("parent")
        assert (segs[parent]["level"] if parent else None) == want[s["level"]], s

    for g in doc["gwas"]:
        assert GENERIC_ID.match(g["id"]) and g["endpoint"].startswith("https://")
        assert 1 <= g["max_concurrent"] <= 10000

    assert len(doc["smgws"]) == N_SMGW
    per_feeder = {}
    for m in doc["smgws"]:
        assert SMGW_ID.match(m["id"]) and m["gwa"] in by["gwas"]
        assert segs[m["segment"]]["level"] == "feeder"
        per_feeder[m["segment"]] = per_feeder.get(m["segment"], 0) + 1
    assert len(per_feeder) == 12 and all(25 <= n <= 60 for n in per_feeder.values())
    assert sum(m["gwa"] == GWAS[0][0] for m in doc["smgws"]) == N_SMGW_GWA1

    assert len(doc["devices"]) == N_SMGW
    assert len({d["smgw"] for d in doc["devices"]}) == N_SMGW  # one device per gateway
    for d in doc["devices"]:
        assert GENERIC_ID.match(d["id"]) and d["smgw"] in by["smgws"]
        assert d["kind"] in ("steuerbox", "energy_manager") and d["driver"] == "lpc-mqtt"
        assert 1 <= len(d["firmware"]) <= 64
        assert 0 <= d["failsafe_limit_w"] <= 10**8 and 0 <= d["failsafe_duration_s"] <= 86400

    pairs, mps, per_dev, per_em = set(), set(), {}, {}
    for i in doc["installations"]:
        assert GENERIC_ID.match(i["id"])
        dev = by["devices"][i["device"]]
        assert 0 <= i["output"] <= 15 and (i["device"], i["output"]) not in pairs
        pairs.add((i["device"], i["output"]))
        assert DIRECTION[i["kind"]] == i["direction"]
        assert isinstance(i["rated_power_w"], int) and i["rated_power_w"] >= 1
        assert isinstance(i["sec14a"], bool)
        if i["sec14a"]:
            assert i["direction"] != "production" and i["rated_power_w"] > SEC14A_MIN_W, i
        assert i["segment"] == by["smgws"][dev["smgw"]]["segment"]
        assert MP_ID.match(i["metering_point"]) and i["metering_point"] not in mps
        mps.add(i["metering_point"])
        per_dev.setdefault(i["device"], []).append(i)
        if "energy_manager" in i:
            assert GENERIC_ID.match(i["energy_manager"])
            per_em.setdefault(i["energy_manager"], []).append(i)
    assert set(per_dev) == set(by["devices"])  # no device without installation
    for did, insts in per_dev.items():
        dev = by["devices"][did]
        assert [i["output"] for i in insts] == list(range(len(insts)))
        if dev["kind"] == "energy_manager":
            assert len(insts) == 2 and len({i.get("energy_manager") for i in insts}) == 1
            assert all(i["direction"] == "consumption" for i in insts)
        else:
            assert all("energy_manager" not in i for i in insts)
        if any(i["sec14a"] for i in insts):
            assert dev["failsafe_limit_w"] >= SEC14A_MIN_W
    assert all(len({i["device"] for i in v}) == 1 for v in per_em.values())
    n_two = sum(len(v) == 2 for v in per_dev.values())
    assert 60 <= n_two <= 80 and all(len(v) <= 2 for v in per_dev.values())

    seen = set()
    for a in doc["assignments"]:
        role = parties[a["party"]]["role"]
        assert role in ("lf", "aggregator", "msb") and a["installation"] in by["installations"]
        assert a["rights"] in (["read"], ["read", "control"])
        assert (a["party"], a["installation"]) not in seen
        seen.add((a["party"], a["installation"]))
        assert len("%s:%s" % (a["party"], a["installation"])) <= 96
    msb = {a["installation"] for a in doc["assignments"] if a["party"] == MSB}
    assert msb == set(by["installations"])


def render(doc):
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output file (default: %(default)s)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if the file given by --out differs from a fresh generation")
    args = ap.parse_args()
    text = render(build())
    if args.check:
        try:
            with open(args.out, "rb") as f:
                current = f.read()
        except OSError as e:
            print("%s: cannot read: %s" % (args.out, e.strerror), file=sys.stderr)
            return 1
        if current != text.encode("utf-8"):
            extra = "" if args.out == DEFAULT_OUT else " --out " + args.out
            print("%s is out of date; regenerate it with: python3 %s%s"
                  % (args.out, os.path.relpath(__file__), extra), file=sys.stderr)
            return 1
        return 0
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
