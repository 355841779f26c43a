#!/usr/bin/env python3
"""Make a synthetic fleet for tests and benchmarks: a registry import
document with N gateways, one Steuerbox each and one installation behind it,
and the gateway ids one per line (for clsm-pki smgw --ids).

  scripts/fleet.py --gateways N [--prefix XMP] [--gwa ID=URL]... [--kinds K,...] --out DOC --ids FILE

Gateways are spread over feeders of 1,000; the installations alternate
between heat pumps, wallboxes and PV. Deterministic: the same arguments give
the same files.
"""
import argparse
import json
import sys

VNB = "9900000000019"
KINDS = [("heat_pump", "consumption", 9000, True), ("wallbox", "consumption", 11000, True),
         ("pv", "production", 8000, False)]


def build(n, prefix, gwas, kinds=KINDS, sensors=0):
    doc = {"parties": [{"id": VNB, "name": "Netz Flotte GmbH", "role": "vnb"}],
           "segments": [{"id": "FLEET", "name": "Flotte", "level": "substation", "vnb": VNB}],
           "gwas": [{"id": g, "name": g, "endpoint": url, "max_concurrent": 64} for g, url in gwas],
           "smgws": [], "devices": [], "installations": []}
    feeders = (n + 999) // 1000
    for f in range(feeders):
        doc["segments"].append({"id": "FLEET.F%d" % (f + 1), "name": "Strang %d" % (f + 1),
                                "level": "feeder", "parent": "FLEET", "vnb": VNB})
    ids = []
    for i in range(n):
        gw = "E%s%010d" % (prefix, i + 1)
        ids.append(gw)
        seg = "FLEET.F%d" % (i // 1000 + 1)
        dev = "SB-%s" % gw
        kind, direction, rated, s14a = kinds[i % len(kinds)]
        doc["smgws"].append({"id": gw, "gwa": gwas[i % len(gwas)][0], "segment": seg})
        doc["devices"].append({"id": dev, "smgw": gw, "kind": "steuerbox"})
        doc["installations"].append({"id": "INS-%s" % gw, "device": dev, "kind": kind,
                                     "direction": direction, "rated_power_w": rated,
                                     "sec14a": s14a, "segment": seg,
                                     "metering_point": "DE1%030d" % (i + 1)})
        if i < sensors:  # a sensor (door, smoke, fill level, climate) in the household
            doc["devices"].append({"id": "SN-%s" % gw, "smgw": gw, "kind": "sensor"})
    return doc, ids


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateways", type=int, required=True)
    ap.add_argument("--prefix", default="XMP")
    ap.add_argument("--gwa", action="append", default=[],
                    help="ID=URL of a GWA (repeatable; gateways are spread over them)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--kinds", default=",".join(k[0] for k in KINDS),
                    help="installation kinds to alternate, comma-separated (default: all)")
    ap.add_argument("--sensors", type=int, default=0,
                    help="the first N gateways also have a sensor device (SN-<gateway>)")
    a = ap.parse_args()
    if len(a.prefix) != 3 or not a.prefix.isalpha() or not a.prefix.isupper():
        sys.exit("fleet.py: --prefix must be three upper-case letters")
    gwas = [tuple(g.split("=", 1)) for g in a.gwa] or [("GWA-01", "https://127.0.0.1:9441")]
    kinds = []
    for name in a.kinds.split(","):
        match = [k for k in KINDS if k[0] == name]
        if not match:
            sys.exit("fleet.py: --kinds: unknown kind %r" % name)
        kinds += match
    doc, ids = build(a.gateways, a.prefix, gwas, kinds, a.sensors)
    with open(a.out, "w") as f:
        json.dump(doc, f)
    with open(a.ids, "w") as f:
        f.write("\n".join(ids) + "\n")


if __name__ == "__main__":
    main()
