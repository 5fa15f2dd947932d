#!/usr/bin/env python3
"""Medians and ratios of gatehouse's side-by-side benchmarks.

Reads `go test -bench` output (any -count) from the files named on the
command line or stdin. Benchmarks are named .../target=<t>[/...]; for every
benchmark and metric it prints the median of each target and the ratios
gatehouse/bare and gatehouse/direct, and checks the issue's targets:

  small requests (req/s):   gatehouse >= 0.8 x bare
  1 GiB transfers (MB/s):   gatehouse >= 0.9 x bare
  heap growth (heap-MiB):   < 32 MiB

For the CPU metrics (whole process: client + upstream + proxy) it also
prints (gatehouse - direct) / (bare - direct): the gateway's own CPU cost
relative to the bare proxy's.

Usage: scripts/bench/ratios.py raw.txt
"""

import re
import statistics
import sys
from collections import defaultdict

LINE = re.compile(r"^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$")
METRICS = ["req/s", "p50-µs", "p99-µs", "MB/s", "heap-MiB", "cpu-µs/op", "cpu-ms/op", "B/op", "allocs/op"]


def results(lines):
    """Yields (name, group, target, [(value, unit), ...]) for every benchmark
    line naming a target; group is the name without its target= part."""
    for line in lines:
        m = LINE.match(line.strip())
        if not m:
            continue
        name, rest = m.group(1), m.group(3).split()
        parts = name.split("/")
        target = next((p.split("=", 1)[1] for p in parts if p.startswith("target=")), None)
        if target is None:
            continue
        group = "/".join(p for p in parts if not p.startswith("target="))
        yield name, group, target, list(zip(rest[0::2], rest[1::2]))


def parse(lines):
    runs = defaultdict(lambda: defaultdict(list))  # (group, target) -> metric -> values
    order = []
    for _, group, target, values in results(lines):
        if group not in order:
            order.append(group)
        for value, unit in values:
            runs[(group, target)][unit].append(float(value))
    return order, runs


def paired(lines):
    """Per-round ratios gatehouse/bare: the i-th result of each benchmark is
    taken to belong to round i (true of interleaved.txt, where every round
    runs each benchmark once, seconds apart from its siblings)."""
    seen = defaultdict(int)
    rounds = defaultdict(dict)  # (group, unit, round) -> target -> value
    for name, group, target, values in results(lines):
        i = seen[name]
        seen[name] += 1
        for value, unit in values:
            rounds[(group, unit, i)][target] = float(value)
    out = defaultdict(list)  # (group, unit) -> [ratio per round]
    for (group, unit, _), v in rounds.items():
        if v.get("bare") and "gatehouse" in v:
            out[(group, unit)].append(v["gatehouse"] / v["bare"])
    return out


def fmt(v):
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def main():
    lines = []
    if len(sys.argv) > 1:
        for path in sys.argv[1:]:
            with open(path, encoding="utf-8") as f:
                lines += f.readlines()
    else:
        lines = sys.stdin.readlines()
    order, runs = parse(lines)
    print("| benchmark | metric | n | direct | bare | gatehouse | gatehouse/bare | gatehouse/direct | target |")
    print("|---|---|---|---|---|---|---|---|---|")
    for group in order:
        for unit in METRICS:
            med = {}
            n = 0
            for t in ("direct", "bare", "gatehouse"):
                vals = runs[(group, t)].get(unit)
                if vals:
                    med[t] = statistics.median(vals)
                    n = max(n, len(vals))
            if "gatehouse" not in med:
                continue
            gb = med["gatehouse"] / med["bare"] if med.get("bare") else float("nan")
            gd = med["gatehouse"] / med["direct"] if med.get("direct") else float("nan")
            verdict = ""
            if unit == "req/s":
                verdict = ("met" if gb >= 0.8 else "MISSED") + " (>= 0.8x bare)"
            elif unit == "MB/s":
                verdict = ("met" if gb >= 0.9 else "MISSED") + " (>= 0.9x bare)"
            elif unit == "heap-MiB":
                verdict = ("met" if med["gatehouse"] < 32 else "MISSED") + " (< 32 MiB)"
            elif unit.startswith("cpu-") and len(med) == 3 and med["bare"] > med["direct"]:
                # CPU is the whole process's: client + upstream (= direct)
                # plus the proxy. This is the proxies' own cost, compared.
                proxy = (med["gatehouse"] - med["direct"]) / (med["bare"] - med["direct"])
                verdict = f"proxy CPU (g-d)/(b-d) = {proxy:.2f}"
            cells = [fmt(med[t]) if t in med else "-" for t in ("direct", "bare", "gatehouse")]
            print(f"| {group} | {unit} | {n} | " + " | ".join(cells) + f" | {gb:.2f} | {gd:.2f} | {verdict} |")
    pr = paired(lines)
    print()
    print("Paired per-round ratios gatehouse/bare (meaningful for interleaved runs):")
    print()
    print("| benchmark | metric | rounds | median | min | max |")
    print("|---|---|---|---|---|---|")
    for group in order:
        for unit in ("req/s", "MB/s", "cpu-µs/op", "cpu-ms/op"):
            r = pr.get((group, unit))
            if r:
                print(f"| {group} | {unit} | {len(r)} | {statistics.median(r):.2f} | {min(r):.2f} | {max(r):.2f} |")


if __name__ == "__main__":
    main()
