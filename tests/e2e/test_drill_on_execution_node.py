"""The P0 database drill run on an execution node (another network namespace, reached over SSH)
gives the outcome and the record a local run gives."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from execution_node import ExecutionNode
from incidentctl.record import Incident
from incidentlab.lab import Lab
from support import PROJECT_ROOT, incidentctl, lab_port_base


@pytest.fixture
def fresh_lab(tmp_path):
    """Labs on the claimed range's second half, one after the other, each fresh; all down at the end."""
    labs: list[Lab] = []

    def make(name: str) -> Lab:
        for lab in labs:
            lab.down()
        lab = Lab.open(tmp_path / name, lab_port_base() + 1000)
        labs.append(lab)
        lab.up()
        return lab

    yield make
    for lab in labs:
        lab.down()


@pytest.fixture
def node(tmp_path):
    with ExecutionNode(tmp_path / "node") as n:
        yield n


def drill(lab: Lab, env: dict, inventory: str) -> tuple[dict, Incident]:
    lab.break_fault("db-primary-down")
    res = incidentctl("respond", "--inventory", inventory, "--yes", "--json", env=env, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    doc = json.loads(res.stdout)
    return doc, Incident.open(Path(env["INCIDENTCTL_INCIDENTS_DIR"]), doc["incident"])


def steps(inc: Incident) -> list[tuple]:
    """The timeline as steps: the controller's kinds, and each task's run, name, host, result."""
    out = []
    for e in inc.timeline():
        if e["source"] == "controller":
            out.append(("controller", e["kind"]))
        else:
            out.append((e["run"], e["task"], e["host"], e["outcome"], e["changed"]))
    return out


def record_files(inc: Incident) -> Counter:
    """The record's files, runs' artifacts aside: time stamps and kube-system pods' random names neutral."""
    out: Counter = Counter()
    for p in inc.path.rglob("*"):
        rel = p.relative_to(inc.path).as_posix()
        if not p.is_file() or rel.startswith("runs/") or p.name.startswith("."):
            continue
        rel = re.sub(r"^(investigation|changes)/[^/]*", lambda m: re.sub(r"\d", "0", m.group(0)), rel)
        out[re.sub(r"/kube-system/[^/]+$", "/kube-system/<pod>.log", rel)] += 1
    return out


def test_the_p0_drill_on_an_execution_node_gives_the_local_outcome_and_record(fresh_lab, node, tmp_path):
    base_env = {**os.environ, "INCIDENTCTL_PROJECT_DIR": str(PROJECT_ROOT)}

    lab = fresh_lab("lab-local")
    local_env = {
        **base_env,
        "INCIDENTLAB_DIR": str(lab.cfg.lab_dir),
        "INCIDENTCTL_INCIDENTS_DIR": str(tmp_path / "inc-local"),
    }
    local_doc, local = drill(lab, local_env, "lab")

    # The same platform again, fresh; its inventory says the primary region's node runs the procedures.
    lab = fresh_lab("lab-node")
    node.relay(sorted(set(lab.cfg.ports.values())))
    inventory = tmp_path / "inventories" / "lab"
    shutil.copytree(PROJECT_ROOT / "inventories" / "lab", inventory, symlinks=False)
    (inventory / "group_vars" / "all" / "executors.yml").write_text(
        f"---\nincident_executors:\n  primary: {node.url}\n"
    )
    node_env = {
        **base_env,
        **node.env(),
        "INCIDENTLAB_DIR": str(lab.cfg.lab_dir),
        "INCIDENTCTL_INCIDENTS_DIR": str(tmp_path / "inc-node"),
    }
    node_doc, remote = drill(lab, node_env, str(inventory))

    # Every playbook ran on the node, and nothing of it is left there.
    starts = [e for e in remote.timeline() if e.get("kind") == "run started"]
    assert starts and all(e.get("executor") == node.url for e in starts), starts
    assert not [e for e in local.timeline() if e.get("executor")]
    assert node.session_processes() == []
    assert not list(Path("/tmp").glob(f"incidentctl-{remote.id}-*"))

    # The same outcome. The other reasons of the policy depend on which alerts have fired by then (a
    # matter of seconds, and of the machine's load), and a reason's detail on the path to a dead
    # database (through the relay, its port accepts and closes: "lost connection", not "refused").
    for key in ("severity", "status", "verified", "healthy", "unhealthy", "gaps", "outcome"):
        assert node_doc[key] == local_doc[key], key
    for doc in (local_doc, node_doc):
        assert doc["reasons"][0].startswith("primary database down:"), doc["reasons"]
    assert [a.split(":")[0] for a in node_doc["actions"]] == [a.split(":")[0] for a in local_doc["actions"]]

    # The same record: the same steps, the same files, the evidence and the postmortem in it.
    assert steps(remote) == steps(local)
    assert record_files(remote) == record_files(local)
    assert Path(node_doc["evidence"]).parent == remote.path / "investigation"
    postmortem = (remote.path / "postmortem.md").read_text()
    assert "- **Severity**: P0 (policy)" in postmortem and "Promote the replica" in postmortem
    # The node's copy of the record was merged with its paths made local: none of them is left outside runs/.
    node_paths = [
        str(p.relative_to(remote.path))
        for p in remote.path.rglob("*")
        if p.is_file() and "runs" not in p.relative_to(remote.path).parts[:1]
        if f"/incidentctl-{remote.id}-" in p.read_text(errors="replace")
    ]
    assert node_paths == []
    for run in (remote.path / "runs").iterdir():
        assert (run / "artifacts" / "artifacts" / "rc").read_text().strip() == "0", run.name
        assert list((run / "artifacts" / "artifacts" / "job_events").iterdir()), run.name
