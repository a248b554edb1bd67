"""What the benchmarks share: one module run as one Ansible task, the way a playbook runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ansible_task(module: str, args: dict) -> float:
    """Run ``incident.response.<module>`` on localhost with ``ansible -m``; the seconds it took.

    A failed task ends the benchmark with Ansible's output: a figure for a failed run means nothing.
    """
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collection"),
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
    }
    cmd = [
        str(Path(sys.executable).with_name("ansible")),
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        "-m",
        f"incident.response.{module}",
        "-a",
        json.dumps(args),
    ]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{module} failed:\n{out.stdout[-3000:]}\n{out.stderr[-2000:]}")
    return elapsed
