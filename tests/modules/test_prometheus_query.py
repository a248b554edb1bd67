"""prometheus_query against the lab's real Prometheus and Alertmanager."""

from __future__ import annotations

import base64
import json

import pytest

from incidentlab import sinks
from incidentlab.monitoring import http_json
from kubeutil import blackhole
from ops_support import HOST, free_port
from support import run_module, wait_for

pytestmark = pytest.mark.lab


def _mysql_up(lab):
    res = http_json(lab.cfg.url("prometheus", "/api/v1/query?query=mysql_up"))["data"]["result"]
    return {s["metric"]["db"]: s["value"][1] for s in res}


def test_queries_and_alerts_come_back_as_data_and_go_to_the_incident_record(lab, tmp_path):
    wait_for(lambda: len(_mysql_up(lab)) == 2, 60, "both databases scraped")
    dest = tmp_path / "metrics.json"
    args = {
        "url": lab.cfg.url("prometheus"),
        "queries": [
            {"name": "databases_up", "query": "mysql_up"},
            # the runbook's query_range: the last hour, step 60 (the lab only has minutes of data)
            {"name": "scrapes_1h", "query": 'up{job="mysql"}', "range": "1h", "step": "60"},
            {"name": "targets", "query": "count(up)"},
        ],
        "alerts": True,
        "alert_state": "all",
        "alertmanager_url": lab.cfg.url("alertmanager"),
        "dest": str(dest),
    }

    planned = run_module("prometheus_query", args, check=True)
    assert not planned["failed"] and planned["changed"]
    assert planned["file"]["written"] is False and planned["file"]["bytes"] > 100
    assert not dest.exists()

    res = run_module("prometheus_query", args)
    assert not res["failed"] and res["changed"] and res["degraded"] is False
    up = res["query_results"]["databases_up"]
    assert up["type"] == "instant" and up["result_type"] == "vector"
    assert {s["metric"]["db"]: s["value"] for s in up["series"]} == {"db-primary": 1.0, "db-replica": 1.0}
    rng = res["query_results"]["scrapes_1h"]
    assert rng["type"] == "range" and rng["result_type"] == "matrix" and rng["step"] == 60
    assert rng["series"][0]["values"][-1][1] == 1.0
    assert res["query_results"]["targets"]["series"][0]["value"] >= 2
    assert isinstance(res["alerts"], list) and isinstance(res["alertmanager_alerts"], list)
    assert res["prometheus"] == {"url": lab.cfg.url("prometheus"), "reachable": True, "timed_out": False, "error": None}

    record = json.loads(dest.read_text())
    assert record["query_results"] == res["query_results"]
    assert record["generated_at"].endswith("Z")
    assert not list(tmp_path.glob(".metrics.json.*")), "no temporary file left behind"


def test_database_down_fires_in_prometheus_and_alertmanager(lab, healed):
    lab.break_fault("db-primary-down")

    def firing_everywhere():
        prom = http_json(lab.cfg.url("prometheus", "/api/v1/alerts"))["data"]["alerts"]
        am = http_json(lab.cfg.url("alertmanager", "/api/v2/alerts"))
        return any(a["labels"]["alertname"] == "DatabaseDown" and a["state"] == "firing" for a in prom) and any(
            a["labels"]["alertname"] == "DatabaseDown" for a in am
        )

    wait_for(firing_everywhere, 40, "DatabaseDown firing in Prometheus and Alertmanager")
    res = run_module(
        "prometheus_query",
        {
            "url": lab.cfg.url("prometheus"),
            "queries": [{"name": "databases_up", "query": "mysql_up"}],
            "alerts": True,
            "alertmanager_url": lab.cfg.url("alertmanager"),
        },
    )
    assert not res["failed"]
    assert "DatabaseDown" in res["alert_names"]
    alert = next(a for a in res["alerts"] if a["name"] == "DatabaseDown")
    assert alert["state"] == "firing" and alert["severity"] == "critical" and alert["labels"]["db"] == "db-primary"
    assert alert["annotations"]["summary"] == "database db-primary is down"
    am = next(a for a in res["alertmanager_alerts"] if a["name"] == "DatabaseDown")
    assert am["state"] == "active" and am["labels"]["db"] == "db-primary" and am["receivers"] == ["lab-webhook"]
    values = {s["metric"]["db"]: s["value"] for s in res["query_results"]["databases_up"]["series"]}
    assert values["db-primary"] == 0.0


def test_unreachable_prometheus_fails_clearly_or_degrades_when_asked(lab, tmp_path):
    args = {
        "url": f"http://{HOST}:{free_port()}",
        "queries": [{"name": "databases_up", "query": "mysql_up"}],
        "alerts": True,
        "timeout": 2,
    }
    res = run_module("prometheus_query", args)
    assert res["failed"]
    assert "Connection refused" in res["msg"] and "fail_on_unreachable=false" in res["msg"]
    assert res["prometheus"]["reachable"] is False
    assert res["prometheus"]["timed_out"] is False and res["timed_out"] == []  # refused, not timed out

    dest = tmp_path / "metrics.json"
    res = run_module("prometheus_query", {**args, "fail_on_unreachable": False, "dest": str(dest)})
    assert not res["failed"] and res["degraded"] is True
    assert "Connection refused" in res["query_results"]["databases_up"]["error"]
    assert res["alerts"] == [] and any("going on without metrics" in w for w in res["warnings"])
    assert json.loads(dest.read_text())["degraded"] is True


def test_a_frozen_alertmanager_times_out_within_the_deadline_and_prometheus_still_answers(lab):
    """Every request ends by the task's deadline (a 30 s request timeout is cut to it); the frozen
    server is reported as timed out, apart from one that refused, and the other's answers are kept."""
    with blackhole() as frozen:
        res = run_module(
            "prometheus_query",
            {
                "url": lab.cfg.url("prometheus"),
                "queries": [{"name": "databases_up", "query": "mysql_up"}],
                "alerts": True,
                "alertmanager_url": frozen,
                "timeout": 30,
                "deadline": 3,
                "fail_on_unreachable": False,
            },
        )
    assert not res["failed"] and res["degraded"] is True
    assert res["alertmanager"]["reachable"] is False and res["alertmanager"]["timed_out"] is True
    assert "(timed out)" in res["alertmanager"]["error"]
    assert res["prometheus"] == {"url": lab.cfg.url("prometheus"), "reachable": True, "timed_out": False, "error": None}
    assert res["timed_out"] == ["alertmanager"]
    assert res["query_results"]["databases_up"]["series_count"] == 2
    assert "alertmanager not answering in time" in res["msg"]


def test_credentials_are_sent_never_returned_and_refusal_is_explained(lab):
    token = "prom-token-0d9f2b"
    res = run_module(
        "prometheus_query",
        {"url": lab.cfg.url("sink-http", "/prom-bearer"), "alerts": True, "bearer_token": token},
    )
    # the sink answers "ok": not a Prometheus, and the message says so
    assert res["failed"] and "is not JSON" in res["msg"] and "really a Prometheus URL" in res["msg"]
    seen = sinks.read_requests(lab.cfg, "/prom-bearer/api/v1/alerts")[-1]
    assert seen["headers"]["Authorization"] == f"Bearer {token}"
    assert token not in json.dumps(res)

    password = "prom-pw-77ac"
    res = run_module(
        "prometheus_query",
        {
            "url": lab.cfg.url("sink-http", "/_sink/status/401/prom"),
            "queries": [{"name": "q", "query": "up"}],
            "url_username": "triage",
            "url_password": password,
        },
    )
    assert res["failed"] and "refused the credentials (HTTP 401)" in res["msg"]
    assert "url_username and url_password" in res["msg"]
    seen = sinks.read_requests(lab.cfg, "/_sink/status/401/prom")[-1]
    assert seen["headers"]["Authorization"] == "Basic " + base64.b64encode(f"triage:{password}".encode()).decode()
    assert password not in json.dumps(res)


def test_a_query_prometheus_rejects_fails_with_its_reason(lab):
    res = run_module(
        "prometheus_query",
        {
            "url": lab.cfg.url("prometheus"),
            "queries": [{"name": "good", "query": "mysql_up"}, {"name": "broken", "query": "rate(mysql_up[5m]"}],
        },
    )
    assert res["failed"]
    assert res["msg"].startswith("query broken rejected by Prometheus (HTTP 400, bad_data): ")
    assert res["query_results"]["good"]["series_count"] == 2  # the partial result is kept
