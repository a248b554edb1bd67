"""What running a playbook on an execution node costs, next to running it here.

Starts a node (tests/execution_node.py: sshd in a network namespace of its own, reached over a veth
pair; root needed), then runs `incidentctl respond` on the controller tests' test-double project
(triage, P0, investigate, postmortem: four playbooks, no lab) locally and on the node, in turns, and
reports per playbook run the median (min-max) of the run's time as the record has it (from "run
started" to "run finished": transmit, SSH, the node's worker, events back, the record merged).

    .venv/bin/python bench/execution_node.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from execution_node import ExecutionNode  # noqa: E402

PROJECT = ROOT / "tests" / "controller" / "project"


def respond(env: dict, executor: str) -> dict[str, float]:
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "incidentctl",
            "respond",
            "-i",
            str(PROJECT / "inventories" / "fake"),
            "--yes",
            "--json",
            "--executor",
            executor,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    record = Path(json.loads(res.stdout)["record"])
    started, took = {}, {}
    for line in (record / "timeline.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e.get("kind") == "run started":
            started[e["run"]] = e["ts"]
        elif e.get("kind") == "run finished":
            took[e["run"].split("-", 1)[1]] = e["ts"] - started[e["run"]]
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-node-") as tmp, ExecutionNode(Path(tmp) / "node") as node:
        env = {
            **os.environ,
            **node.env(),
            "INCIDENTCTL_PROJECT_DIR": str(PROJECT),
            "INCIDENTCTL_INCIDENTS_DIR": str(Path(tmp) / "incidents"),
        }
        times: dict[str, dict[str, list[float]]] = {"local": {}, "node": {}}
        for _ in range(args.repeat):
            for where, executor in (("local", "local"), ("node", node.url)):
                for run, seconds in respond(env, executor).items():
                    times[where].setdefault(run, []).append(seconds)
        print(f"{'playbook':<14} {'local':>20} {'node':>20} {'overhead':>10}")
        for run in times["local"]:
            loc, rem = times["local"][run], times["node"][run]
            over = statistics.median(rem) - statistics.median(loc)
            print(
                f"{run:<14} {statistics.median(loc):7.2f} s ({min(loc):.2f}-{max(loc):.2f})"
                f" {statistics.median(rem):7.2f} s ({min(rem):.2f}-{max(rem):.2f}) {over:+8.2f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
