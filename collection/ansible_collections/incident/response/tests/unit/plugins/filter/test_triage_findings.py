"""Findings built from module results recorded on the lab (healthy, and with the primary database killed)."""

from __future__ import annotations

import json
from pathlib import Path

from ansible_collections.incident.response.plugins.filter.classify_severity import classify_severity
from ansible_collections.incident.response.plugins.filter.triage_findings import triage_findings

FIXTURES = Path(__file__).parent / "fixtures"
DATABASES = {"db-primary": {"expected_role": "primary"}, "db-replica": {"expected_role": "replica"}}
POLICY = [
    {"severity": "P0", "check": "lb_down", "params": {"region": "primary"}},
    {"severity": "P0", "check": "database_down", "params": {"role": "primary"}},
    {"severity": "P2", "check": "services_down", "params": {"min": 1}},
    {"severity": "P2", "check": "replication_broken"},
]


def findings(name: str) -> dict:
    raw = json.loads((FIXTURES / f"triage-{name}.json").read_text())
    return triage_findings(
        raw["health"], {"result": raw["databases"], "inventory": DATABASES}, raw["alerts"], raw["cluster"]
    )


def test_healthy_lab_has_no_problem_and_no_incident():
    f = findings("healthy")
    assert f["problems"] == []
    assert set(f["load_balancers"]) == {"primary", "secondary"} and all(lb["up"] for lb in f["load_balancers"].values())
    assert len(f["services"]) == 10 and all(s["up"] for s in f["services"])
    assert f["databases"]["db-replica"]["replication"]["healthy"] is True
    assert set(f["clusters"]) == {"primary", "secondary"} and all(c["healthy"] for c in f["clusters"].values())
    assert classify_severity(f, POLICY)["severity"] is None


def test_killed_primary_is_p0_and_the_load_balancers_still_count_as_up():
    f = findings("db-primary-down")
    assert f["databases"]["db-primary"]["reachable"] is False
    assert f["databases"]["db-replica"]["replication"]["broken"] is True  # its IO thread cannot connect
    # Every service is DOWN behind them, but the load balancers answer: no region outage.
    assert all(lb["up"] and not lb["healthy"] for lb in f["load_balancers"].values())
    assert not any(s["up"] for s in f["services"])
    res = classify_severity(f, POLICY)
    assert res["severity"] == "P0"
    assert [m["check"] for m in res["matched"]] == ["database_down", "services_down", "replication_broken"]


def test_missing_results_give_empty_findings_rather_than_errors():
    f = triage_findings({"checks": []})
    assert f["services"] == [] and f["databases"] == {} and f["alerts"] == [] and f["crashlooping_pods"] == []
