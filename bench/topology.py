"""Benchmark: the lab's database topologies - how long `lab up` takes with each, and what P0 costs when the
primary dies and its replicas must follow the promoted one.

Each run starts a lab of its own (in a temporary directory) and brings it down. Reports the median and the
range; never asserts on time.

    .venv/bin/python bench/topology.py [--runs 3] [--port-base 28000] [--topologies pair replicas clusters]

* ``lab up``: the whole start, and its database step alone (servers started from the template, accounts,
  schema, replicas in sync), as `lab up` reports them.
* P0 after ``db-primary-down``: ``p0_critical.yml`` confirmed (notifications left out), from the start of the
  playbook to its end, and the promotion task alone (with the pair: the gate and the promotion; with more
  replicas: also the candidate's siblings re-pointed and verified).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

from incidentlab.lab import Lab  # noqa: E402
from support import run_playbook  # noqa: E402


def one(topology: str, port_base: int) -> dict:
    notes: list[str] = []
    lab = Lab.open(Path(tempfile.mkdtemp(prefix="bench-topology-")), port_base)
    lab.up(progress=notes.append, topology=topology)
    try:
        up = float(re.search(r"lab up in ([\d.]+)s", notes[-1]).group(1))
        dbs = next(float(re.search(r"\(([\d.]+)s\)$", n).group(1)) for n in notes if "databases up" in n)
        lab.break_fault("db-primary-down")
        start = time.monotonic()
        run = run_playbook(
            "p0_critical",
            lab,
            {"incident_dir": tempfile.mkdtemp(prefix="bench-p0-"), "confirm_destructive": True},
            skip_tags="notify",
        )
        p0 = time.monotonic() - start
        if not run.ok:
            raise SystemExit(f"P0 failed on the {topology} topology: {run.stdout[-2000:]}")
        promote = run.result("Promote the replica")["res"]
        return {"up": up, "databases": dbs, "p0": p0, "msg": promote["msg"]}
    finally:
        lab.down()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--port-base", type=int, default=28000)
    ap.add_argument("--topologies", nargs="+", default=["pair", "replicas", "clusters"])
    args = ap.parse_args()
    results: dict[str, list[dict]] = {t: [] for t in args.topologies}
    for _ in range(args.runs):
        for topology in args.topologies:  # interleaved, so that the machine's load falls on each alike
            results[topology].append(one(topology, args.port_base))

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.1f} s ({min(values):.1f}-{max(values):.1f})"

    print("| topology | lab up | of which databases | P0 after db-primary-down | promotion |")
    print("|---|---|---|---|---|")
    for topology, runs in results.items():
        print(f"| {topology} | {cell([r['up'] for r in runs])} | {cell([r['databases'] for r in runs])} | ", end="")
        print(f"{cell([r['p0'] for r in runs])} | {runs[-1]['msg']} |")


if __name__ == "__main__":
    main()
