"""The alert rules the runbook's triage needs are present and valid for Prometheus."""

from __future__ import annotations

import subprocess

import yaml

from incidentlab.monitoring import RULES_FILE

TRIAGE_ALERTS = {"ServiceDown", "HighErrorRate", "HighLatency", "DatabaseDown", "ReplicationBroken", "ReplicationLag"}


def test_rules_define_every_triage_alert_with_a_severity():
    rules = [r for g in yaml.safe_load(RULES_FILE.read_text())["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} == TRIAGE_ALERTS
    assert all(r["labels"]["severity"] in ("critical", "warning") for r in rules)


def test_promtool_accepts_the_rules():
    res = subprocess.run(["promtool", "check", "rules", str(RULES_FILE)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
