#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""benchtab - the one table `make bench` ends with.

Each benchmark script prints its own detailed lines and also calls row()
for every figure it measured; row() appends one JSON line to the file
named by $OTAGW_BENCH_TABLE (tests/bench/run.sh sets it; without it row()
does nothing). At the end run.sh calls `benchtab.py print FILE`, which
prints every row in order: the figure, the reference measured in the same
run, their ratio, the target from the issue that added the benchmark and
whether it was met. `benchtab.py failed FILE NAME WHY` records a benchmark
script that did not finish, so the table says so instead of leaving it out.

A target is (what, op, value): what is "ratio" (compared with the ratio
column) or "figure" (compared with otagw's figure, in its unit); op is
">=" or "<". Whether it was met is computed here from the measured
numbers, never passed in."""

import json
import math
import os
import sys

OPS = {">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
       ">": lambda a, b: a > b}


def num(v):
    """A figure as text: 3 significant digits at least, no exponent."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    a = abs(v)
    if a >= 100:
        return "{:,.0f}".format(v)
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v


def row(name, ours, unit, ref=None, ref_what="", ratio=None, target=None, note=""):
    """Records one figure. ours/ref: numbers in unit (ref None when there is
    no reference to measure); ratio: None to use ours/ref, or the caller's
    own (e.g. ref/ours for "N times fewer"); target: None or (what, op, value)."""
    path = os.environ.get("OTAGW_BENCH_TABLE")
    if not path:
        return
    if ratio is None and ref not in (None, 0) and ours is not None:
        ratio = ours / ref
    if target is not None:
        what, op, value = target
        if what not in ("ratio", "figure") or op not in OPS:
            raise ValueError("bad target %r" % (target,))
    rec = {"name": name, "ours": ours, "unit": unit, "ref": ref, "ref_what": ref_what,
           "ratio": ratio, "target": target, "note": note}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")


def verdict(rec):
    """'yes', 'NO', or '' when there is no target (or no figure to judge)."""
    t = rec.get("target")
    if not t:
        return ""
    what, op, value = t
    got = rec["ratio"] if what == "ratio" else rec["ours"]
    if got is None:
        return "NO"
    return "yes" if OPS[op](got, value) else "NO"


def target_text(rec):
    t = rec.get("target")
    if not t:
        return "-"
    what, op, value = t
    if what == "ratio":
        return "%s %sx" % (op, num(value))
    return "%s %s %s" % (op, num(value), rec["unit"])


def load(path):
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    rows.append(json.loads(line))
    except FileNotFoundError:
        pass
    return rows


def render(rows):
    """The table as a list of lines."""
    cols = ("benchmark", "otagw", "reference", "ratio", "target", "met", "reference is")
    body = []
    for r in rows:
        if r.get("failed"):
            body.append((r["name"], "FAILED", "-", "-", "-", "NO", r.get("why", "")))
            continue
        ours = "%s %s" % (num(r["ours"]), r["unit"]) if r["ours"] is not None else "-"
        ref = "%s %s" % (num(r["ref"]), r["unit"]) if r["ref"] is not None else "-"
        ratio = num(r["ratio"]) if r["ratio"] is not None else "-"
        what = r.get("ref_what") or ""
        if r.get("note"):
            what = (what + "; " if what else "") + r["note"]
        body.append((r["name"], ours, ref, ratio, target_text(r), verdict(r) or "-", what))
    width = [max(len(c), *(len(b[i]) for b in body)) if body else len(c)
             for i, c in enumerate(cols)]
    width[-1] = len(cols[-1])
    right = {1, 2, 3}

    def line(cells):
        out = []
        for i, c in enumerate(cells):
            out.append(c.rjust(width[i]) if i in right else c.ljust(width[i]))
        return "  ".join(out).rstrip()
    lines = [line(cols), line(["-" * w for w in width])]
    lines += [line(b) for b in body]
    met = sum(1 for r in rows if verdict(r) == "yes" and not r.get("failed"))
    judged = sum(1 for r in rows if verdict(r) or r.get("failed"))
    lines.append("%d figures, %d with a target: %d met, %d missed"
                 % (len(rows), judged, met, judged - met))
    return lines


def main(argv):
    if len(argv) >= 3 and argv[1] == "print":
        rows = load(argv[2])
        print("\n== make bench: every figure, its reference from this run, ratio and target ==")
        for ln in render(rows):
            print(ln)
        return 0
    if len(argv) >= 4 and argv[1] == "failed":
        with open(argv[2], "a", encoding="utf-8") as f:
            f.write(json.dumps({"name": argv[3], "failed": True,
                                "why": " ".join(argv[4:])}) + "\n")
        return 0
    if len(argv) >= 3 and argv[1] == "row":
        # benchtab.py row FILE NAME OURS UNIT REF REF_WHAT [TARGET_WHAT OP VALUE]
        a = argv[3:]
        os.environ["OTAGW_BENCH_TABLE"] = argv[2]
        tgt = (a[5], a[6], float(a[7])) if len(a) >= 8 else None
        def opt(v):
            return float(v) if v not in ("", "-") else None
        row(a[0], opt(a[1]), a[2], opt(a[3]), a[4], target=tgt)
        return 0
    print("usage: benchtab.py print FILE | failed FILE NAME WHY... | "
          "row FILE NAME OURS UNIT REF REF_WHAT [ratio|figure OP VALUE]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
