"""service_health against the lab: demo services on the lab database, the databases themselves, the sinks."""

from __future__ import annotations

import json
import signal

import pytest

from incidentlab.config import DB_USERS
from kubeutil import blackhole
from ops_support import HOST, DemoServices, TinyServer, actuator, free_port, get
from support import run_module, wait_for

pytestmark = pytest.mark.lab


@pytest.fixture
def services(lab):
    demo = DemoServices(lab)
    yield demo
    demo.stop_all()


def _db(lab, name, role="admin", **extra):
    return {
        "name": name,
        "login_port": lab.cfg.ports[name],
        "login_user": DB_USERS[role],
        "login_password": lab.secrets()[role],
        **extra,
    }


def _by_name(result):
    return {c["name"]: c for c in result["checks"]}


def test_lab_services_up_and_a_killed_service_down_with_its_error(lab, services):
    user_url, _ = services.start("user-service", region="primary")
    order_url, order = services.start("order-service", region="secondary")
    order.send_signal(signal.SIGKILL)
    order.wait(5)

    res = run_module(
        "service_health",
        {
            "endpoints": [
                {"name": "user-service", "url": user_url + "/actuator/health", "region": "primary"},
                {"name": "order-service", "url": order_url + "/actuator/health", "region": "secondary"},
            ],
            "databases": [
                _db(lab, "db-primary", region="primary"),
                _db(lab, "db-replica", region="secondary"),
                {"name": "smtp-relay", "check": "tcp", "login_port": lab.cfg.ports["sink-smtp"]},
            ],
            "retries": 0,
            "fail_on": "never",
        },
    )
    assert not res["failed"] and res["changed"] is False
    checks = _by_name(res)
    user = checks["user-service"]
    assert (user["status"], user["http_status"], user["health"]) == ("UP", 200, "UP")
    assert user["components"] == {"db": "UP", "diskSpace": "UP", "ping": "UP"}
    assert user["latency_ms"] > 0 and user["error"] is None

    order = checks["order-service"]
    assert order["status"] == "DOWN" and order["http_status"] is None
    assert "Connection refused" in order["error"]

    assert checks["db-primary"]["status"] == "UP" and checks["db-primary"]["kind"] == "sql"
    assert checks["db-replica"]["status"] == "UP"
    assert checks["smtp-relay"]["status"] == "UP" and checks["smtp-relay"]["kind"] == "tcp"

    summary = res["summary"]
    assert (summary["total"], summary["up"], summary["down"]) == (5, 4, 1)
    assert summary["down_names"] == ["order-service"] and summary["all_up"] is False
    assert summary["regions"] == {
        "primary": {"total": 2, "up": 2, "down": 0, "down_names": []},
        "secondary": {"total": 2, "up": 1, "down": 1, "down_names": ["order-service"]},
    }
    assert lab.secrets()["admin"] not in json.dumps(res)


def test_database_fault_fails_by_default_naming_the_failing_component(lab, services, healed):
    url, _ = services.start("payment-service")
    lab.break_fault("db-primary-down")
    wait_for(lambda: get(url + "/actuator/health")[0] == 503, 30, "payment-service health DOWN")

    res = run_module(
        "service_health",
        {
            "endpoints": [{"name": "payment-service", "url": url + "/actuator/health"}],
            "databases": [_db(lab, "db-primary"), _db(lab, "db-replica")],
            "retries": 0,
            "timeout": 2,
        },
    )
    assert res["failed"]
    assert "2 of 3 health checks DOWN" in res["msg"]
    assert "payment-service" in res["msg"] and "db-primary" in res["msg"] and "fail_on=never" in res["msg"]
    payment = _by_name(res)["payment-service"]
    assert payment["http_status"] == 503 and payment["health"] == "DOWN"
    assert payment["failing_components"] == ["db"] and payment["components"]["ping"] == "UP"
    assert "db DOWN: OperationalError" in payment["error"]
    primary = _by_name(res)["db-primary"]
    assert primary["status"] == "DOWN" and "cannot connect" in primary["error"]
    assert primary["timed_out"] is False  # refused: down, not hung
    assert res["summary"]["down_names"] == ["payment-service", "db-primary"]


def test_frozen_targets_time_out_once_within_the_deadline_apart_from_refused_ones(lab):
    """A server that accepts connections and never answers (HTTP, or MySQL that never greets) is DOWN
    with timed_out; a refused one is DOWN without. The task's deadline cuts every attempt: the retries
    that 30 s attempts would allow are never made."""
    with blackhole() as frozen:
        port = int(frozen.rsplit(":", 1)[1])
        res = run_module(
            "service_health",
            {
                "endpoints": [
                    {"name": "frozen-http", "url": frozen + "/actuator/health"},
                    {"name": "refused-http", "url": f"http://{HOST}:{free_port()}/actuator/health"},
                ],
                "databases": [
                    {**_db(lab, "db-replica"), "name": "frozen-db", "login_port": port},
                    _db(lab, "db-replica"),
                ],
                "timeout": 30,
                "retries": 3,
                "deadline": 3,
                "fail_on": "never",
            },
        )
    assert not res["failed"], res["msg"]
    checks = _by_name(res)
    for name in ("frozen-http", "frozen-db"):
        assert checks[name]["status"] == "DOWN" and checks[name]["timed_out"] is True, checks[name]
        assert checks[name]["attempts"] == 1
        assert "not answering (timed out after" in checks[name]["error"]
    refused = checks["refused-http"]
    assert refused["status"] == "DOWN" and refused["timed_out"] is False and "Connection refused" in refused["error"]
    assert checks["db-replica"]["status"] == "UP" and checks["db-replica"]["timed_out"] is False
    assert res["summary"]["timed_out_names"] == ["frozen-http", "frozen-db"] and res["summary"]["timed_out"] == 2
    assert res["summary"]["down_names"] == ["frozen-http", "refused-http", "frozen-db"]
    assert res["msg"].endswith("timed out: frozen-http, frozen-db")


def test_an_endpoint_that_took_the_request_and_stayed_silent_is_not_asked_again(lab):
    """A retry is for what may pass (a refused or reset connection, a lost packet), not for a server that took
    the request and said nothing for its timeout: that one is DOWN after one attempt, with time left in the
    deadline, while a refused endpoint beside it gets its retries."""
    with blackhole() as frozen:
        res = run_module(
            "service_health",
            {
                "endpoints": [
                    {"name": "frozen-http", "url": frozen + "/actuator/health"},
                    {"name": "refused-http", "url": f"http://{HOST}:{free_port()}/actuator/health"},
                ],
                "timeout": 0.5,
                "retries": 2,
                "retry_delay": 0.05,
                "deadline": 30,
                "fail_on": "never",
            },
        )
    checks = _by_name(res)
    frozen_check = checks["frozen-http"]
    assert frozen_check["status"] == "DOWN" and frozen_check["timed_out"] is True, frozen_check
    assert frozen_check["attempts"] == 1
    assert "not answering (timed out after" in frozen_check["error"]
    refused = checks["refused-http"]
    assert refused["status"] == "DOWN" and refused["timed_out"] is False and refused["attempts"] == 3, refused


def test_the_labs_frozen_primary_times_out_and_is_named(lab, healed):
    lab.break_fault("db-primary-partitioned")
    res = run_module(
        "service_health",
        {"databases": [_db(lab, "db-primary"), _db(lab, "db-replica")], "deadline": 3, "fail_on": "never"},
    )
    assert not res["failed"], res["msg"]
    primary = _by_name(res)["db-primary"]
    assert primary["status"] == "DOWN" and primary["timed_out"] is True
    assert primary["error"].startswith(f"127.0.0.1:{lab.cfg.ports['db-primary']}: not answering (timed out after")
    assert _by_name(res)["db-replica"]["status"] == "UP"
    assert res["summary"]["timed_out_names"] == ["db-primary"]


def test_checks_run_concurrently(lab):
    # 40 endpoints that take 100 ms each: the server must see them in flight together.
    with TinyServer(lambda m, p, b: actuator("UP"), delay=0.1) as srv:
        endpoints = [{"name": f"svc-{i}", "url": f"{srv.url}/svc-{i}/actuator/health"} for i in range(40)]
        res = run_module("service_health", {"endpoints": endpoints})
    assert not res["failed"] and res["summary"]["up"] == 40
    assert len(srv.paths) == 40
    assert srv.peak >= 20, f"only {srv.peak} requests were in flight at once"


def test_bad_credentials_malformed_json_and_unreachable_hosts_are_clear_errors(lab):
    def broken(method, path, body):
        return 200, "application/json", '{"status": "UP", "components": '  # truncated JSON

    with TinyServer(broken) as srv:
        res = run_module(
            "service_health",
            {
                "endpoints": [
                    {"name": "truncated", "url": srv.url + "/actuator/health"},
                    # the HTTP sink answers text "ok": not an actuator endpoint
                    {"name": "not-actuator", "url": lab.cfg.url("sink-http", "/health"), "parse": "actuator"},
                    {"name": "nothing-there", "url": f"http://{HOST}:{free_port()}/actuator/health"},
                ],
                "databases": [{**_db(lab, "db-primary"), "login_password": "wrong-password"}],
                "retries": 0,
                "fail_on": "required",
                "required": ["truncated", "db-primary"],
            },
        )
    assert res["failed"]
    assert res["msg"].startswith("required health checks DOWN: truncated")
    checks = _by_name(res)
    assert "body that is not JSON" in checks["truncated"]["error"]
    assert checks["not-actuator"]["error"] == ("answered HTTP 200 with a body that is not JSON: 'ok'")
    assert "no answer" in checks["nothing-there"]["error"]
    assert "access denied: check login_user and login_password" in checks["db-primary"]["error"]
    assert "wrong-password" not in json.dumps(res)


def test_input_errors_are_refused_before_checking(lab):
    res = run_module(
        "service_health",
        {"endpoints": [{"name": "a", "url": lab.cfg.url("sink-http", "/a")}], "fail_on": "required", "required": ["b"]},
    )
    assert res["failed"] and "'required' names checks that are not given: b" in res["msg"]
    res = run_module("service_health", {"databases": [{"name": "db", "login_port": 1}]})
    assert res["failed"] and "needs login_user" in res["msg"]


def test_an_answer_slower_than_its_objective_is_slow_not_up(lab):
    """A service that answers its business path, but slower than the inventory's objective, is degraded:
    SLOW, named apart, and not retried into an UP one."""
    with TinyServer(lambda m, p, b: actuator("UP"), delay=0.3) as srv:
        res = run_module(
            "service_health",
            {
                "endpoints": [
                    {"name": "slow", "url": f"{srv.url}/api/records", "max_latency_ms": 100},
                    {"name": "fast enough", "url": f"{srv.url}/api/records", "max_latency_ms": 5000},
                ],
                "retries": 2,
                "fail_on": "never",
            },
        )
    checks = {c["name"]: c for c in res["checks"]}
    assert checks["slow"]["status"] == "SLOW" and checks["slow"]["attempts"] == 1
    assert "over its objective of 100 ms: slow" in checks["slow"]["error"]
    assert checks["fast enough"]["status"] == "UP"
    assert res["summary"]["slow_names"] == ["slow"] and res["summary"]["down_names"] == ["slow"]
