"""investigate.yml writes the runbook's evidence into the incident record: logs per service and
region, kube-system logs, the last hour of metrics, and the network checks of every database."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from incidentlab.monitoring import http_json
from kubeutil import REGIONS, SERVICES
from support import run_playbook, wait_for

pytestmark = pytest.mark.lab


def request_rate_series(lab) -> int:
    """What investigate.yml's request_rate query finds now: two scrapes of the services make a rate."""
    query = urllib.parse.quote("rate(http_server_requests_seconds_count[5m])")
    return len(http_json(lab.cfg.url("prometheus", f"/api/v1/query?query={query}"))["data"]["result"])


def test_investigation_writes_logs_per_service_metrics_and_network_checks(lab, tmp_path):
    # A lab up for seconds has no rate yet (Prometheus's first scrapes): the evidence would rightly hold none.
    wait_for(lambda: request_rate_series(lab) > 0, 60, "a request rate in Prometheus")
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


WINDOW_QUERIES = {
    "window_request_rate",
    "window_error_ratio",
    "window_latency_p95_seconds",
    "window_replicas_available",
    "window_databases_up",
    "window_replication_io_running",
    "window_replication_seconds_behind",
    "window_alerts_firing",
}


def _window(evidence) -> tuple[float, float, float, dict]:
    from datetime import datetime

    results = json.loads((evidence / "metrics.json").read_text())["query_results"]
    q = results["window_databases_up"]
    start, end = (datetime.fromisoformat(q[k].replace("Z", "+00:00")).timestamp() for k in ("start", "end"))
    return start, end, q["step"], results


@pytest.mark.parametrize(
    ("opened_ago", "alert_ago", "before", "step"),
    [
        (300, 400, 400 + 120, 1.0),  # the alert fired before the incident was opened: the window starts there
        (300, None, 300 + 120, 1.0),  # no alert: from the opening
        (3 * 3600, None, 3 * 3600 + 120, 4.0),  # over an hour: at most 3600 points, so a coarser step
    ],
)
def test_metrics_cover_the_incident_window_at_a_step_of_seconds(lab, tmp_path, opened_ago, alert_ago, before, step):
    import time
    from datetime import UTC, datetime

    now = time.time()
    record = {"id": "INC-20260101-000000-0000", "opened_at": now - opened_ago, "status": "open", "severity": None,
              "reasons": [], "inventory": "inventories/lab", "operator": "test"}  # fmt: skip
    (tmp_path / "incident.json").write_text(json.dumps(record))  # as the contract says incident.json is
    if alert_ago:
        # as Prometheus writes it: nanoseconds and a Z
        at = datetime.fromtimestamp(now - alert_ago, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "081Z"
        (tmp_path / "triage").mkdir()
        (tmp_path / "triage" / "alerts.json").write_text(json.dumps({"alerts": [{"active_at": at}]}))
    run = run_playbook("investigate", lab, {"incident_dir": str(tmp_path)}, tags="metrics")
    assert run.ok, run.stdout[-3000:]
    (evidence,) = list((tmp_path / "investigation").iterdir())
    start, end, got_step, results = _window(evidence)
    assert now - 1 <= end <= time.time() + 1  # to the time of the investigation, after the procedure
    assert start == pytest.approx(now - before, abs=1.01)  # the alert counts to the second
    assert got_step == step
    assert set(results) >= WINDOW_QUERIES
    assert all(results[q]["error"] is None and results[q]["result_type"] == "matrix" for q in WINDOW_QUERIES)
    assert results["window_databases_up"]["series_count"] == 2
    assert results["request_rate"]["step"] == 60  # the runbook's last hour is kept too


def test_without_an_incident_record_the_window_is_the_last_hour(lab, tmp_path):
    run = run_playbook("investigate", lab, {"investigate_dir": str(tmp_path / "evidence")}, tags="metrics")
    assert run.ok, run.stdout[-3000:]
    start, end, step, _ = _window(tmp_path / "evidence")
    assert end - start == pytest.approx(3600, abs=0.01) and step == 1.0
