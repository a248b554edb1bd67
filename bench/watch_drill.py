"""Nobody typing: from `lab break db-primary-down` until the application writes again, alerts driving the response.

Each run starts a fresh lab whose Alertmanager posts to `incidentctl watch -i lab` (the lab's policy fails a dead
primary over automatically), lets the watcher settle, kills the primary and measures, from the fault:

  alert firing          the alert's startsAt (Prometheus fired it: scrape + rule evaluation + `for: 2s`)
  webhook received      the event source took Alertmanager's delivery (the alert's received_at)
  incident opened       the watcher opened the incident of the alert (incident.json opened_at)
  triage started        the response's first playbook run began (the spare responder was told)
  first task            the first task result of the response (triage's first task)
  promotion             mysql_promote changed the replica into the primary (its task result)
  first accepted write  a writer posting through the global entry point every 50 ms got its first 201
  verified              the procedure's verification passed (the timeline's `mitigated`)

and the part the rulebook and the controller add: from the webhook to the response's first task.

With ``--compare DIR`` each run is made twice, once with another checkout of the project (its controller,
playbooks and collection: ``git worktree add DIR <commit>``), alternating which goes first, so a before/after
comparison sees the same load of the machine.

  .venv/bin/python bench/watch_drill.py [--runs 5] [--compare DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from drill import Probe, http  # noqa: E402

from incidentctl.record import Incident  # noqa: E402
from incidentlab.lab import Lab  # noqa: E402
from support import claim_port_base, wait_for  # noqa: E402
from watch_support import Watch  # noqa: E402

ORDER = ["alert firing", "webhook received", "incident opened", "triage started", "first task", "promotion",
         "first accepted write", "verified"]  # fmt: skip


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def one(base: int, project: str | None = None) -> dict:
    """One drill on a fresh lab; ``project``: the checkout whose watcher responds (this one when None)."""
    saved = {k: os.environ.get(k) for k in ("INCIDENTCTL_PROJECT_DIR", "PYTHONPATH")}
    if project:  # the watcher, its rulebook and its responses inherit the environment
        os.environ.update(INCIDENTCTL_PROJECT_DIR=project, PYTHONPATH=str(Path(project) / "controller"))
    try:
        with tempfile.TemporaryDirectory(prefix="watch-drill-") as tmp:
            lab = Lab.open(Path(tmp) / "lab", base)
            lab.up()
            try:
                with Watch(lab, Path(tmp) / "incidents") as watch:
                    return drill(lab, watch)
            finally:
                lab.down()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def drill(lab: Lab, watch: Watch) -> dict:
    glob = lab.cfg.url("lb-global")
    writer = Probe(lambda: http(f"{glob}/order-service/api/records", "POST", b'{"source":"drill"}')[0] == 201)
    writer.start()
    time.sleep(5.0)  # the watcher's spare responder starts up, the writer settles (a benchmark, not a test)
    lab.break_fault("db-primary-down")
    start, wall = time.monotonic(), time.time()
    writer.since = start
    opened = wait_for(lambda: watch.journal("opened"), 120, "an incident")
    inc_id = opened[0]["incident"]
    wait_for(lambda: watch.finished(inc_id), 600, "the response")
    wait_for(lambda: writer.first is not None, 30, "a write")
    writer.stop.set()
    inc = Incident.open(watch.root, inc_id)
    d, tl = inc.data, inc.timeline()
    first_alert = min(d["alerts"].values(), key=lambda a: a["received_at"])

    def at(pred) -> float | None:
        hit = next((e for e in tl if pred(e)), None)
        return None if hit is None else hit["ts"] - wall

    phases = {
        "alert firing": epoch(first_alert["startsAt"]) - wall,
        "webhook received": d["started_by"]["at"] - wall,
        "incident opened": d["opened_at"] - wall,
        "triage started": at(lambda e: e.get("kind") == "triage started"),
        "first task": at(lambda e: e.get("source") == "ansible"),
        "promotion": at(lambda e: e.get("module") == "incident.response.mysql_promote" and e.get("changed")),
        "first accepted write": writer.first - start,
        "verified": at(lambda e: e.get("kind") == "mitigated"),
        "rc": watch.finished(inc_id)["rc"],
        "incidents": len(watch.incidents()),
    }
    phases["webhook to first task"] = phases["first task"] - phases["webhook received"]
    return phases


def table(title: str, runs: list[dict]) -> None:
    print(f"\n{title}\n")
    print("| phase (s from the fault) | median | range |\n|---|---|---|")
    for name in [*ORDER, "webhook to first task"]:
        values = [r[name] for r in runs if r.get(name) is not None]
        if values:
            print(f"| {name} | {statistics.median(values):.2f} | {min(values):.2f}-{max(values):.2f} |")
    print(f"\nexit codes {[r['rc'] for r in runs]}, incidents per run {[r['incidents'] for r in runs]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--compare", default=None, help="also respond with this checkout of the project (before/after)")
    args = ap.parse_args()
    base = claim_port_base()
    runs: dict[str, list[dict]] = {"this checkout": [], f"{args.compare}": []} if args.compare else {"": []}
    loads = []
    for i in range(args.runs):
        order = [(None, "this checkout"), (args.compare, f"{args.compare}")] if args.compare else [(None, "")]
        for project, name in order if i % 2 == 0 else reversed(order):
            phases = one(base, project)
            runs[name].append(phases)
            loads.append(os.getloadavg()[0])
            print(f"# run {i + 1} {name}: " + json.dumps({k: round(v, 2) for k, v in phases.items() if v is not None}),
                  file=sys.stderr, flush=True)  # fmt: skip
    for name, done in runs.items():
        table(f"db-primary-down, nobody typing{' - ' + name if name else ''} ({args.runs} runs, load "
              f"{min(loads):.1f}-{max(loads):.1f})", done)  # fmt: skip


if __name__ == "__main__":
    main()
