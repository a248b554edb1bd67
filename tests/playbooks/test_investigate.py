"""investigate.yml writes the runbook's evidence into the incident record: logs per service and
region, kube-system logs, the last hour of metrics, and the network checks of every database."""

from __future__ import annotations

import json

import pytest

from kubeutil import REGIONS, SERVICES
from support import run_playbook

pytestmark = pytest.mark.lab


def test_investigation_writes_logs_per_service_metrics_and_network_checks(lab, tmp_path):
    run = run_playbook("investigate", lab, {"incident_dir": str(tmp_path)})
    assert run.ok, run.stdout[-3000:]
    assert run.changed() == [], "investigating changes nothing on the platform"

    (evidence,) = list((tmp_path / "investigation").iterdir())
    assert run.data["investigation"]["dir"] == str(evidence)
    assert run.data["investigation"]["regions_not_answering"] == []

    # 1. Log analysis: one file per service and region, every line prefixed with its pod
    for region in REGIONS:
        for service in SERVICES:
            log = evidence / "logs" / region / "microservices" / f"{service}.log"
            lines = log.read_text().splitlines()
            assert lines, f"{log} is empty"
            assert all(line.startswith(f"[pod/{service}-") for line in lines[:20]), lines[:3]
        system = list((evidence / "logs" / region / "kube-system").glob("*.log"))
        assert {p.name.split("-")[0] for p in system} >= {"coredns", "kube"}, system
    assert (evidence / "cluster-state.json").exists() and (evidence / "cluster-state.txt").exists()

    # 2. Metrics analysis: range queries over the last hour at 60 s steps
    metrics = json.loads((evidence / "metrics.json").read_text())
    request_rate = metrics["query_results"]["request_rate"]
    assert request_rate["type"] == "range" and request_rate["step"] == 60
    assert request_rate["series_count"] > 0, "the traffic generator's requests are in Prometheus"
    assert {"error_ratio", "latency_p95_seconds", "databases_up"} <= set(metrics["query_results"])

    # 3. Network analysis: every database from the service side (the lab has no exec: from the controller)
    network = json.loads((evidence / "network.json").read_text())
    assert network["summary"]["all_ok"], network["summary"]
    assert {c["name"] for c in network["checks"]} == {"db-primary", "db-replica"}
    assert all(c["fallback"] and c["reachable"] for c in network["checks"])
    assert set(network["exec"]) == set(REGIONS) and not any(e["available"] for e in network["exec"].values())


def test_investigation_needs_somewhere_to_write(lab):
    run = run_playbook("investigate", lab)
    assert not run.ok
    assert "incident_dir" in run.result("Check that the platform")["res"]["msg"]
