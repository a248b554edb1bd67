"""Execution nodes on the test-double project: a real sshd in a network namespace of its own, the real
ansible-runner worker on it, the real controller. What the node says when it cannot work, a node that
dies mid-run, a controller that dies mid-run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from execution_node import ExecutionNode, link_exists, netns_exists
from incidentctl.record import Incident
from support import PROJECT_ROOT, incidentctl, wait_for

PROJECT = Path(__file__).parent / "project"
INVENTORY = PROJECT / "inventories" / "fake"


@pytest.fixture
def node(tmp_path):
    with ExecutionNode(tmp_path / "node") as n:
        yield n
    assert not netns_exists(n.ns) and not link_exists(n.host_if)  # nothing of the node is left


@pytest.fixture
def ctl(tmp_path, node):
    incidents = tmp_path / "incidents"
    env = {
        **os.environ,
        **node.env(),
        "INCIDENTCTL_PROJECT_DIR": str(PROJECT),
        "INCIDENTCTL_INCIDENTS_DIR": str(incidents),
        "INCIDENTCTL_FORWARD_ENV": "FAKE_HOLD_FILE",
    }

    def run(*args: str, extra_env: dict | None = None, **kw):
        return incidentctl(*args, env={**env, **(extra_env or {})}, **kw)

    run.incidents = incidents
    run.env = env
    return run


def _error_line(res, code: int) -> str:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, res.stderr
    return errors[0]


def test_a_procedure_runs_on_the_node_with_the_local_record(ctl, node):
    res = ctl("respond", "-i", str(INVENTORY), "--yes", "--json", "--executor", node.url)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    inc = Incident.open(ctl.incidents, doc["incident"])
    assert doc["status"] == "mitigated" and doc["verified"] is True
    runs = inc.data["runs"]
    assert [r["name"] for r in runs] == ["01-respond", "02-investigate", "03-postmortem"]
    assert all(r["executor"] == node.url and r["status"] == "successful" for r in runs)
    # What the playbooks wrote into incident_dir on the node is in the local record, paths made local.
    assert (inc.path / "postmortem.md").exists()
    evidence = Path(doc["evidence"])
    assert evidence.is_relative_to(inc.path) and any(p.is_file() for p in evidence.rglob("*"))
    changed = next(e for e in inc.timeline() if e.get("task") == "Change the platform")
    assert changed["changed"] and changed["host"] == "controller"
    assert node.session_processes() == []
    assert not list(Path("/tmp").glob(f"incidentctl-{inc.id}-*"))  # the node's job directories are gone


def test_executor_check_says_what_the_node_has_and_lacks(ctl, node):
    real = {"INCIDENTCTL_PROJECT_DIR": str(PROJECT_ROOT)}  # the requirements of the real collection
    ready = ctl("executor", "check", node.url, "--json", extra_env=real)
    assert ready.returncode == 0, ready.stderr
    doc = json.loads(ready.stdout)
    assert doc["ready"] is True and doc["facts"]["packages"]["ansible-runner"]
    assert set(doc["facts"]["packages"]) >= {"ansible-runner", "ansible-core", "pymysql", "kubernetes"}

    # Debian's own Python on the node has none of it: every missing piece is named.
    bare = ctl("executor", "check", f"ssh://root@{node.addr}/usr/bin", "--json", extra_env=real)
    assert bare.returncode == 4, bare.stderr
    missing = json.loads(bare.stdout)["missing"]
    assert any(m.startswith("ansible-runner is not installed") for m in missing), missing
    assert any("no ansible-runner in /usr/bin" in m for m in missing), missing


def test_a_node_that_does_not_trust_the_controller_s_key_is_named_before_anything_runs(ctl, node, tmp_path):
    stranger = tmp_path / "stranger_config"
    stranger.write_text(node.ssh_config.read_text().replace("client_key", "host_key"))  # another key
    res = ctl(
        "respond",
        "-i",
        str(INVENTORY),
        "--yes",
        "--executor",
        node.url,
        extra_env={"INCIDENTCTL_SSH_CONFIG": str(stranger)},
    )
    line = _error_line(res, 4)
    assert "cannot be reached" in line and "does not trust this controller's SSH key" in line
    assert not ctl.incidents.exists() or not list(ctl.incidents.iterdir())


def test_a_node_whose_sshd_is_stopped_fails_fast_before_anything_runs(ctl, node):
    node.stop_sshd()
    res = ctl("respond", "-i", str(INVENTORY), "--yes", "--executor", node.url)
    line = _error_line(res, 4)
    assert f"execution node {node.url} cannot be reached" in line and "Connection refused" in line
    assert len(res.stderr.strip().splitlines()) == 1  # nothing ran before the error
    assert not ctl.incidents.exists() or not list(ctl.incidents.iterdir())  # no incident opened

    bad = ctl("run", "investigate", "-i", str(INVENTORY), "--executor", "ftp://node")
    assert "is not local nor ssh://" in _error_line(bad, 2)


def _hold(tmp_path) -> dict:
    hold = tmp_path / "hold"
    hold.write_text("")
    return {"FAKE_HOLD_FILE": str(hold)}


def _start(ctl, node, tmp_path) -> tuple[subprocess.Popen, Incident]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "incidentctl", "respond", "-i", str(INVENTORY), "--yes", "--executor", node.url],
        env={**ctl.env, **_hold(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    inc = wait_for(lambda: Incident.all(ctl.incidents) and Incident.all(ctl.incidents)[0], 60, "incident opened")
    wait_for(lambda: any(e.get("task") == "Change the platform" for e in inc.timeline()), 120, "the change")
    return proc, inc


def test_a_node_that_dies_mid_run_leaves_the_incident_interrupted(ctl, node, tmp_path):
    proc, inc = _start(ctl, node, tmp_path)
    node.kill_everything()
    for job in Path("/tmp").glob(f"incidentctl-{inc.id}-*"):  # the dead node's disk (shared here) goes with it
        shutil.rmtree(job)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 4, stderr
    line = [ln for ln in stderr.splitlines() if ln.startswith("error:")][-1]
    assert f"execution node {node.url} was lost during respond.yml" in line
    assert "Traceback" not in stderr
    inc.refresh()
    assert inc.data["run"]["state"] == "interrupted" and inc.data["status"] == "open"
    assert "Change the platform" in inc.data["run"]["last_step"]
    kinds = [e.get("kind") for e in inc.timeline()]
    assert "run lost" in kinds and "interrupted" in kinds
    assert inc.data["runs"][-1] == {
        "name": "01-respond",
        "status": "lost",
        "check_mode": False,
        "executor": node.url,
    }


def test_a_killed_controller_takes_the_node_s_run_with_it(ctl, node, tmp_path):
    """SIGKILL of incidentctl: its ssh dies with it, and the node's leash stops the worker, ansible-playbook
    and the module it runs, and removes the job's directory."""
    proc, inc = _start(ctl, node, tmp_path)
    assert node.session_processes()  # sshd's session, the leash, the worker, the playbook
    proc.kill()
    proc.wait()
    wait_for(lambda: not node.session_processes(), 30, "every process of the run on the node to be gone")
    wait_for(lambda: not list(Path("/tmp").glob(f"incidentctl-{inc.id}-*")), 30, "the job directory to go")
    # Nor on the controller's: the job's staging and stream (secrets in their env/) were gone before ssh started.
    assert not list(Path(tempfile.gettempdir()).glob(f"incidentctl-transmit-{inc.id}-*"))
    shown = json.loads(ctl("show", inc.id, "--json").stdout)
    assert shown["incident"]["run"]["state"] == "interrupted"
