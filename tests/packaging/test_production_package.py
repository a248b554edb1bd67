"""The production package: the controller's wheel, installed alone into a fresh virtual environment,
offline (a wheelhouse repacked from the dev venv, no index), carries no lab and works against a lab
started from the other distribution."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from support import PROJECT_ROOT

PIP_OFFLINE = {"PIP_CONFIG_FILE": os.devnull}  # no index, no find-links from this machine's pip config


@pytest.fixture(scope="module")
def production_venv(tmp_path_factory) -> SimpleNamespace:
    work = tmp_path_factory.mktemp("production")
    wheels = work / "wheels"
    env = {**os.environ, **PIP_OFFLINE}
    subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "lib" / "wheelhouse.py"), str(wheels)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--isolated",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(wheels),
            str(PROJECT_ROOT),
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    venv = work / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    (wheel,) = wheels.glob("incident_response-*.whl")
    res = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "--isolated",
            "install",
            "-q",
            "--no-index",
            "--find-links",
            str(wheels),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return SimpleNamespace(path=venv, wheel=wheel)


def _ctl(prod: SimpleNamespace, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    venv = prod.path
    clean["PATH"] = f"{venv / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin"  # nothing of the dev venv
    return subprocess.run(
        [str(venv / "bin" / "incidentctl"), *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=600,
    )


def test_the_controller_wheel_and_its_install_carry_no_lab(production_venv):
    names = zipfile.ZipFile(production_venv.wheel).namelist()
    assert any(n.startswith("incidentctl/") for n in names)
    assert not [n for n in names if n.startswith("incidentlab")]
    py = production_venv.path / "bin" / "python"
    assert subprocess.run([str(py), "-c", "import incidentlab"], capture_output=True).returncode == 1
    assert not list(production_venv.path.glob("lib/python3*/site-packages/incidentlab*"))
    assert not list(production_venv.path.glob("lib/python3*/site-packages/aiosmtpd*"))  # the lab's own dependency
    shown = subprocess.run([str(py), "-m", "pip", "--isolated", "list"], capture_output=True, text=True).stdout
    assert "incident-response " in shown and "incident-response-lab" not in shown


def test_the_production_install_answers_help_and_names_the_missing_lab(production_venv):
    res = _ctl(production_venv, "--help")
    assert res.returncode == 0 and "respond" in res.stdout and "executor" in res.stdout
    lab = _ctl(production_venv, "lab", "up")
    assert lab.returncode == 4 and "Traceback" not in lab.stderr
    assert "pip install incident-response-lab" in lab.stderr


def test_the_production_install_triages_and_plans_against_a_lab_from_the_other_package(production_venv, lab, tmp_path):
    env = {
        "INCIDENTCTL_PROJECT_DIR": str(PROJECT_ROOT),  # the operator's playbooks and inventories
        "INCIDENTLAB_DIR": str(lab.cfg.lab_dir),
        "INCIDENTCTL_INCIDENTS_DIR": str(tmp_path / "incidents"),
    }
    triage = _ctl(production_venv, "triage", "-i", "lab", "--json", env=env)
    assert triage.returncode == 0, triage.stderr[-3000:]
    findings = json.loads(triage.stdout)["findings"]
    assert set(findings["databases"]) == {"db-primary", "db-replica"}
    assert all(db["reachable"] for db in findings["databases"].values())

    plan = _ctl(
        production_venv,
        "respond",
        "-i",
        "lab",
        "--check",
        "--severity",
        "P2",
        "--service",
        "payment-service",
        "--json",
        env=env,
    )
    assert plan.returncode == 0, plan.stderr[-3000:]
    doc = json.loads(plan.stdout)
    assert doc["check_mode"] is True and doc["procedure"]["ok"] is True
    # The playbooks ran on the fresh environment's Ansible, not the dev venv's.
    command = json.loads(
        (Path(doc["record"]) / "runs" / "01-triage" / "artifacts" / "artifacts" / "command").read_text()
    )
    assert str(production_venv.path) in command["env"]["PATH"]
