#!/usr/bin/env python3
"""Benchmark: how long `incidentctl triage` takes on the lab, healthy and right after each fault.

Brings a lab of its own up (and down at the end). For each fault: inject it, run
`incidentctl triage --json` at once (the first seconds of the fault: a frozen database or region
is at its worst then, before anything notices), time the whole command, heal, wait until the lab
is healthy again; five times by default. A triage that fails ends the benchmark (a figure for a
failed run means nothing). Prints a markdown table with the median and range of each fault, what
triage said (the policy's severity, the probes that timed out), and the load average of this
shared machine before and after. A report, not a test: it asserts nothing about time.

With ``--compare DIR`` it also times another checkout of the project (its controller, playbooks and
collection: ``git worktree add DIR <commit>``), alternating the two on every run, so a before/after
comparison sees the same load of the machine.

    .venv/bin/python bench/triage.py [--runs 5] [--port-base 28000] [--only region-down ...] [--compare DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from incidentlab.kube.cluster import wait_ready
from incidentlab.lab import Lab

# (label, fault, argument): the lab's faults, the cluster ones on one service.
FAULTS = [
    ("healthy", None, None),
    ("db-primary-down", "db-primary-down", None),
    ("db-primary-partitioned (first seconds)", "db-primary-partitioned", None),
    ("region-down", "region-down", None),
    ("replica-lag", "replica-lag", None),
    ("replication-broken", "replication-broken", None),
    ("service-down payment-service", "service-down", "payment-service"),
    ("service-slow payment-service", "service-slow", "payment-service"),
    ("bad-config payment-service", "bad-config", "payment-service"),
]


def incidentctl() -> str:
    return str(Path(sys.executable).with_name("incidentctl"))


def triage(lab: Lab, project: str | None = None) -> tuple[float, dict]:
    """One `incidentctl triage --json` against the lab, with this checkout's controller, playbooks and collection
    or ``project``'s: (seconds, its JSON)."""
    env = {**os.environ, "INCIDENTLAB_DIR": str(lab.cfg.lab_dir)}
    if project:
        env.update(INCIDENTCTL_PROJECT_DIR=project, PYTHONPATH=str(Path(project) / "controller"))
    start = time.perf_counter()
    out = subprocess.run([incidentctl(), "triage", "--json"], capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        tail = f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        raise SystemExit(f"incidentctl triage failed (exit {out.returncode}):\n{tail}")
    return elapsed, json.loads(out.stdout)


def wait_healthy(lab: Lab, timeout: float = 180.0) -> None:
    """Every component healthy and both regions ready: the next fault starts from the state `lab up` makes."""
    deadline = time.monotonic() + timeout
    while True:
        bad = [s.name for s in lab.status() if not s.healthy]
        if not bad:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"the lab is not healthy again after {timeout:.0f} s: {', '.join(bad)}")
        time.sleep(0.5)
    wait_ready(lab.cfg, timeout=max(1.0, deadline - time.monotonic()))


def said(data: dict) -> tuple[str, list[str]]:
    """The policy's severity and the probes that timed out (services counted per region)."""
    findings = data.get("findings") or {}
    severity = (data.get("classification") or {}).get("severity") or "none"
    late = list(findings.get("timed_out") or [])
    services = Counter(p.rsplit("@", 1)[1] for p in late if p.startswith("service "))
    late = [p for p in late if not p.startswith("service ")]
    late += [f"{n} service{'s' if n > 1 else ''}@{region}" for region, n in sorted(services.items())]
    return severity, late


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per fault; the median and range are reported")
    parser.add_argument("--port-base", type=int, default=28000, help="the lab's port base (a free range of 1000)")
    parser.add_argument("--only", nargs="*", default=None, help="faults to run (names as in the table)")
    parser.add_argument("--lab-dir", default=None, help="use this lab, which is up, instead of one of its own")
    parser.add_argument("--compare", default=None, help="also time this checkout of the project (before/after)")
    args = parser.parse_args()
    ways = [None, str(Path(args.compare).resolve())] if args.compare else [None]
    todo = [f for f in FAULTS if not args.only or f[1] in args.only or f[0] in args.only]

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-triage-") as tmp:
        own = args.lab_dir is None
        lab = Lab.open(Path(tmp) / "lab", args.port_base) if own else Lab.open(Path(args.lab_dir))
        if own:
            lab.up()
        try:
            wait_healthy(lab)
            for way in ways:
                triage(lab, way)  # warm-up: first imports, Prometheus' first evaluations
            load_before = load()
            for label, fault, arg in todo:
                samples = {way: [] for way in ways}
                answers = []
                for run in range(args.runs):
                    for way in ways if run % 2 == 0 else ways[::-1]:  # alternate who goes first
                        if fault:
                            lab.break_fault(fault, arg)
                        seconds, data = triage(lab, way)
                        samples[way].append(seconds)
                        if way is None:
                            answers.append(said(data))
                        if fault:
                            lab.heal()
                            wait_healthy(lab)
                        print(f"{label} [{way or 'this checkout'}]: {seconds:.2f} s, {said(data)}", file=sys.stderr)
                rows.append((label, samples, answers))
            load_after = load()
        finally:
            if own:
                lab.down()

    print(f"`incidentctl triage` right after each lab fault, median (range) of {args.runs} runs; 2 CPUs,")
    print(f"load average {load_before} before and {load_after} after (1, 5, 15 min).\n")
    before = f" {Path(args.compare).name} |" if args.compare else ""
    print(f"| fault |{before} triage | severity | timed out |")
    print("|-------|" + ("--------|" if args.compare else "") + "--------|----------|-----------|")
    for label, samples, answers in rows:
        severity = Counter(a[0] for a in answers).most_common(1)[0][0]
        late = Counter(p for a in answers for p in a[1])
        timed_out = ", ".join(f"{p}" + (f" ({n}/{len(answers)})" if n < len(answers) else "") for p, n in late.items())
        figures = " | ".join(figure(samples[way]) for way in ways[::-1])
        print(f"| {label} | {figures} | {severity} | {timed_out or '-'} |")


def figure(samples: list[float]) -> str:
    return f"{statistics.median(samples):.1f} s ({min(samples):.1f}-{max(samples):.1f})"


if __name__ == "__main__":
    main()
