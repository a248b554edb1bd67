"""triage.yml against the lab under the faults that freeze things: it finishes, and says what timed out.

The speed of triage is measured in bench/triage.py; these tests only assert what it reports.
"""

from __future__ import annotations

import json

import pytest

from support import run_playbook

pytestmark = pytest.mark.lab


def triage(lab, tmp_path) -> dict:
    run = run_playbook("triage", lab, {"incident_dir": str(tmp_path)})
    assert run.ok, run.stdout[-3000:]
    return run.data["triage"]


def test_a_healthy_lab_has_nothing_timed_out_and_the_whole_record(lab, tmp_path):
    data = triage(lab, tmp_path)
    assert data["findings"]["timed_out"] == []
    for path in ("triage/alerts.json", "triage/findings.json", "snapshots/initial-state.json"):
        assert (tmp_path / path).exists(), path


def test_a_frozen_primary_database_is_named_as_timed_out_and_is_p0(lab, healed, tmp_path):
    lab.break_fault("db-primary-partitioned")
    data = triage(lab, tmp_path)
    findings = data["findings"]
    primary = findings["databases"]["db-primary"]
    # What the gate and the severity policy read: unreachable; and apart from that, it may be alive.
    assert primary["reachable"] is False and primary["timed_out"] is True
    assert "database db-primary" in findings["timed_out"]
    assert any(p.startswith("database db-primary not answering (timed out after") for p in findings["problems"])
    assert findings["databases"]["db-replica"]["reachable"] and not findings["databases"]["db-replica"]["timed_out"]
    assert data["classification"]["severity"] == "P0"
    assert any(r.startswith("primary database down") for r in data["classification"]["reasons"])
    record = json.loads((tmp_path / "triage" / "findings.json").read_text())
    assert record["raw"]["databases"]["timed_out_servers"] == ["db-primary"]


def test_a_frozen_region_says_its_cluster_and_load_balancer_timed_out(lab, healed, tmp_path):
    lab.break_fault("region-down")
    data = triage(lab, tmp_path)
    findings = data["findings"]
    cluster = findings["clusters"]["primary"]
    assert cluster["timed_out"] is True and cluster["reachable"] is False and not cluster["healthy"]
    assert cluster["summary"].startswith("primary: not answering (timed out after")
    assert findings["clusters"]["secondary"]["timed_out"] is False and findings["clusters"]["secondary"]["reachable"]
    assert findings["load_balancers"]["primary"]["timed_out"] is True
    assert {"cluster primary", "load balancer primary"} <= set(findings["timed_out"])
    assert not any(name.endswith("@secondary") for name in findings["timed_out"])
    assert data["classification"]["severity"] == "P0"
    assert (tmp_path / "snapshots" / "initial-state.json").exists()  # the partial snapshot is kept
