"""triage_probe against the lab: the four triage probes in one task, at the same time, within one deadline."""

from __future__ import annotations

import json

import pytest

from incidentlab.config import DB_USERS
from incidentlab.monitoring import http_json
from kubeutil import REGIONS, blackhole, kubeconfig
from ops_support import TinyServer, actuator
from support import run_module, wait_for

pytestmark = pytest.mark.lab


def servers(lab, port=None):
    return [
        {"name": name, "login_host": "127.0.0.1", "login_port": port or lab.cfg.ports[name]}
        for name in ("db-primary", "db-replica")
    ]


def test_every_probe_in_one_task_returns_what_its_module_returns(lab, tmp_path):
    # Prometheus' first scrape comes seconds after the lab starts: the query below has a series once it came.
    query = lab.cfg.url("prometheus", "/api/v1/query?query=mysql_up")
    wait_for(lambda: len(http_json(query)["data"]["result"]) == 2, 60, "both databases scraped")
    record = tmp_path / "incident"  # does not exist yet: make_dirs creates the record's directories
    res = run_module(
        "triage_probe",
        {
            "deadline": 20,
            "health": {
                "endpoints": [
                    {"name": f"load-balancer@{r}", "url": lab.cfg.url(f"lb-{r}", "/actuator/health")} for r in REGIONS
                ],
                "fail_on": "never",
            },
            "databases": {"servers": servers(lab), "login_user": DB_USERS["admin"], "fail_on_unreachable": False},
            "login_password": lab.secrets()["admin"],
            "alerts": {
                "url": lab.cfg.url("prometheus"),
                "alertmanager_url": lab.cfg.url("alertmanager"),
                "alerts": True,
                "queries": [{"name": "databases_up", "query": "mysql_up"}],
                "dest": str(record / "triage" / "alerts.json"),
            },
            "cluster": {
                "kubeconfig": kubeconfig(lab),
                "clusters": [{"name": r, "context": r} for r in REGIONS],
                "include": ["nodes", "pods", "deployments"],
                "fail_on_error": False,
                "dest": str(record / "snapshots" / "initial-state.json"),
            },
            "make_dirs": True,
        },
    )
    assert not res["failed"], res["msg"]
    assert res["failed_probes"] == [] and res["timed_out"] == []
    assert res["health"]["summary"]["total"] == 2 and res["health"]["summary"]["timed_out_names"] == []
    assert res["databases"]["primaries"] == ["db-primary"] and res["databases"]["replicas"] == ["db-replica"]
    assert res["alerts"]["prometheus"]["reachable"] and res["alerts"]["query_results"]["databases_up"]["series_count"]
    assert set(res["cluster"]["clusters"]) == set(REGIONS)
    assert all(c["error"] is None and c["pods"] for c in res["cluster"]["clusters"].values())
    assert res["msg"].startswith("health: 2 of 2 checks UP | databases: db-primary: primary")
    assert json.loads((record / "triage" / "alerts.json").read_text())["prometheus"]["reachable"]
    assert set(json.loads((record / "snapshots" / "initial-state.json").read_text())["clusters"]) == set(REGIONS)
    assert lab.secrets()["admin"] not in json.dumps(res)


def test_the_probes_run_at_the_same_time(lab):
    """The health check and the alert reading reach one slow server: it sees them in flight together."""

    def handler(method, path, body):
        if path.startswith("/api/v1/alerts"):
            return 200, "application/json", json.dumps({"status": "success", "data": {"alerts": []}})
        return actuator("UP")

    with TinyServer(handler, delay=0.5) as srv:
        res = run_module(
            "triage_probe",
            {
                "health": {"endpoints": [{"name": "svc", "url": f"{srv.url}/actuator/health"}]},
                "alerts": {"url": srv.url, "alerts": True},
            },
        )
    assert not res["failed"], res["msg"]
    assert sorted(srv.paths) == ["/actuator/health", "/api/v1/alerts"]
    assert srv.peak == 2


def test_frozen_parts_time_out_within_the_one_deadline_and_the_rest_is_read(lab):
    """A frozen endpoint, database, Prometheus and API server, each with 30 s timeouts: the task's
    deadline ends them all; each is named as timed out, and what answers is read."""
    with blackhole() as frozen:
        port = int(frozen.rsplit(":", 1)[1])
        res = run_module(
            "triage_probe",
            {
                "deadline": 3,
                "health": {
                    "endpoints": [
                        {"name": "frozen", "url": frozen + "/actuator/health"},
                        {"name": "lb", "url": lab.cfg.url("lb-secondary", "/actuator/health")},
                    ],
                    "timeout": 30,
                    "fail_on": "never",
                },
                "databases": {
                    "servers": [
                        {"name": "frozen", "login_host": "127.0.0.1", "login_port": port},
                        servers(lab)[1],
                    ],
                    "login_user": DB_USERS["admin"],
                    "connect_timeout": 30,
                    "fail_on_unreachable": False,
                },
                "login_password": lab.secrets()["admin"],
                "alerts": {"url": frozen, "alerts": True, "timeout": 30, "fail_on_unreachable": False},
                "cluster": {
                    "kubeconfig": kubeconfig(lab),
                    "clusters": [{"name": "secondary", "context": "secondary"}, {"name": "frozen", "host": frozen}],
                    "request_timeout": 30,
                    "fail_on_error": False,
                },
            },
        )
    assert not res["failed"], res["msg"]
    assert res["timed_out"] == ["health frozen", "databases frozen", "alerts prometheus", "cluster frozen"]
    assert res["health"]["summary"]["up_names"] == ["lb"]
    assert res["databases"]["servers"]["frozen"]["timed_out"] and res["databases"]["replicas"] == ["db-replica"]
    assert res["alerts"]["degraded"] and res["alerts"]["prometheus"]["timed_out"]
    assert res["cluster"]["clusters"]["secondary"]["error"] is None
    assert res["cluster"]["clusters"]["frozen"]["timed_out"]


def test_a_single_frozen_database_is_named_by_its_address(lab):
    with blackhole() as frozen:
        port = int(frozen.rsplit(":", 1)[1])
        res = run_module(
            "triage_probe",
            {
                "deadline": 2,
                "databases": {"login_port": port, "login_user": DB_USERS["admin"], "fail_on_unreachable": False},
            },
        )
    assert not res["failed"], res["msg"]
    assert res["databases"]["timed_out"] is True and res["timed_out"] == [f"databases 127.0.0.1:{port}"]


def test_bad_input_is_refused_in_one_line_and_secrets_only_at_the_top(lab):
    res = run_module("triage_probe", {"deadline": 5})
    assert res["failed"] and res["msg"] == "nothing to probe: give at least one of health, databases, alerts, cluster"

    secret = "not-logged-here"
    res = run_module(
        "triage_probe",
        {"databases": {"servers": [{"name": "a", "login_host": "h", "login_password": secret}], "login_user": "u"}},
    )
    assert res["failed"] and res["msg"] == (
        "databases: servers[].login_password is a secret: give it as the task's login_password (no_log), "
        "not in databases"
    )
    assert secret not in json.dumps(res)

    res = run_module("triage_probe", {"health": {"endpoints": [], "deadline": 5}})
    assert res["failed"] and "health: deadline is the task's" in res["msg"]

    res = run_module("triage_probe", {"health": {"endpoints": [], "no_such_option": 1}})
    assert res["failed"] and res["msg"].startswith("health: unsupported option no_such_option. Supported")

    res = run_module("triage_probe", {"alerts": {"alerts": True}})
    assert res["failed"] and res["msg"].startswith("alerts: ") and "url" in res["msg"]

    res = run_module("triage_probe", {"deadline": -1, "alerts": {"url": lab.cfg.url("prometheus"), "alerts": True}})
    assert res["failed"] and "deadline must be a positive number" in res["msg"]
    assert "Traceback" not in json.dumps(res)


def test_classify_gives_the_findings_and_severity_the_filters_give_and_keeps_them_in_the_record(lab, tmp_path):
    """One service endpoint down (a closed port) and the databases read: the task's findings and severity are the
    filters' over its own results, the record file holds them beside the raw results, and check mode writes none."""
    from ansible_collections.incident.response.plugins.filter.classify_severity import classify_severity
    from ansible_collections.incident.response.plugins.filter.triage_findings import triage_findings

    policy = [
        {"severity": "P0", "check": "database_down", "reason": "primary database down"},
        {"severity": "P2", "check": "services_down", "params": {"min": 1}, "reason": "a service down"},
    ]
    inventory = {"db-primary": {"expected_role": "primary"}, "db-replica": {"expected_role": "replica"}}
    dest = tmp_path / "incident" / "triage" / "findings.json"
    args = {
        "deadline": 5,
        "health": {
            "endpoints": [{"name": "user-service@primary", "url": "http://127.0.0.1:1/actuator/health"}],
            "retries": 0,
            "fail_on": "never",
        },
        "databases": {"servers": servers(lab), "login_user": DB_USERS["admin"], "fail_on_unreachable": False},
        "login_password": lab.secrets()["admin"],
        "alerts": {"url": lab.cfg.url("prometheus"), "alerts": True, "dest": str(dest.parent / "alerts.json")},
        "classify": {"policy": policy, "inventory": inventory, "dest": str(dest)},
        "make_dirs": True,
    }
    res = run_module("triage_probe", dict(args, alerts=dict(args["alerts"], dest=None)), check=True)
    assert not res["failed"], res["msg"]
    assert res["classification"]["severity"] == "P2" and not dest.exists()

    res = run_module("triage_probe", args)
    assert not res["failed"], res["msg"]
    expected = triage_findings(res["health"], {"result": res["databases"], "inventory": inventory}, res["alerts"])
    assert res["findings"]["services"] == expected["services"] and res["findings"]["problems"] == expected["problems"]
    assert [s["up"] for s in res["findings"]["services"]] == [False]
    assert res["classification"] == classify_severity(expected, policy)
    assert res["classification"]["reasons"][0].startswith("a service down: ")
    assert res["msg"].endswith(" | severity: P2")
    doc = json.loads(dest.read_text())
    assert doc["classification"] == res["classification"] and doc["findings"]["databases"] == expected["databases"]
    assert doc["raw"]["databases"]["primaries"] == ["db-primary"] and doc["raw"]["alerts_file"] == "alerts.json"
    assert lab.secrets()["admin"] not in dest.read_text()

    res = run_module("triage_probe", dict(args, classify={"policy": [{"severity": "P9", "check": "lb_down"}]}))
    assert res["failed"] and res["msg"].startswith("classify: rule 0 has severity 'P9'")
    assert "Traceback" not in json.dumps(res)


def test_the_kubernetes_client_is_imported_by_the_cluster_probe_not_before_the_probes_start():
    """Importing the client costs 0.15-0.25 s: the module starts its HTTP and SQL probes first, and only a run
    that asks for the cluster imports it (within the task's deadline)."""
    import subprocess
    import sys

    from support import PROJECT_ROOT

    code = (
        "import sys\n"
        "from ansible_collections.incident.response.plugins.modules import triage_probe\n"
        "from ansible_collections.incident.response.plugins.module_utils import k8s\n"
        "before = 'kubernetes' in sys.modules\n"
        "assert k8s.kubernetes_failure() is None\n"
        "print(before, 'kubernetes' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT / "collection", capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "True"]
