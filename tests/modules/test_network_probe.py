"""network_probe against the lab: the database host from the services' ConfigMap, a closed port, an
unknown name, and a cluster that does not allow exec into its pods."""

from __future__ import annotations

import json
import socket

import pytest

from kubeutil import NS, REGIONS, closed_port, kubeconfig, kubectl
from support import run_module

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def db_target(lab):
    """$DB_HOST and its port as the services see them (ConfigMap microservice-config)."""
    cm = json.loads(kubectl(lab, "primary", "get", "configmap", "microservice-config", "-n", NS, "-o", "json").stdout)
    return {"name": "db", "host": cm["data"]["db.host"], "port": int(cm["data"]["db.port"])}


def targets(db):
    return [
        db,
        {"name": "closed", "host": "127.0.0.1", "port": closed_port()},
        {"name": "unknown", "host": "no-such-host.invalid", "port": 3306},
        {"name": "db-dns", "host": "localhost"},
    ]


def by_name(res):
    return {c["name"]: c for c in res["checks"]}


@pytest.fixture
def unanswered_port():
    """A port whose TCP connects get no answer: its listen queue (backlog 0) is full, so Linux drops the
    next SYNs, as a firewall or a partition does."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        yield port
    finally:
        filler.close()
        server.close()


def test_a_connect_without_answer_times_out_within_the_deadline(unanswered_port):
    closed = closed_port()
    res = run_module(
        "network_probe",
        {
            "targets": [
                {"name": "silent", "host": "127.0.0.1", "port": unanswered_port},
                {"name": "closed", "host": "127.0.0.1", "port": closed},
            ],
            "timeout": 30,
            "deadline": 2,
            "fail_on": "never",
        },
    )
    assert not res["failed"], res["msg"]
    silent, refused = by_name(res)["silent"], by_name(res)["closed"]
    assert silent["reachable"] is False and silent["timed_out"] is True and "no answer within" in silent["error"]
    assert refused["reachable"] is False and refused["timed_out"] is False
    assert res["summary"]["timed_out"] == ["silent@controller"]


def test_reachable_closed_and_unresolvable_from_the_controller(db_target):
    res = run_module("network_probe", {"targets": targets(db_target), "fail_on": "never", "timeout": 2})
    assert not res["failed"], res["msg"]
    checks = by_name(res)
    db = checks["db"]
    assert db["resolved"] and db["reachable"] and db["error"] is None and db["source"] == "controller"
    assert db["addresses"] == ["127.0.0.1"] and db["latency_ms"] > 0 and db["connect_ms"] >= 0
    closed = checks["closed"]
    assert closed["resolved"] and closed["reachable"] is False and "Connection refused" in closed["error"]
    unknown = checks["unknown"]
    assert not unknown["resolved"] and unknown["reachable"] is False
    assert unknown["error"].startswith("cannot resolve no-such-host.invalid")
    dns = checks["db-dns"]
    assert dns["resolved"] and dns["reachable"] is None and "127.0.0.1" in dns["addresses"]
    assert res["summary"] == {
        "total": 4,
        "reachable": 1,
        "resolved": 3,
        "unreachable": ["closed@controller", "unknown@controller"],
        "unresolved": ["unknown@controller"],
        "timed_out": [],  # refused and unknown: answers, not timeouts
        "all_ok": False,
    }
    assert not closed["timed_out"] and not unknown["timed_out"]

    res = run_module("network_probe", {"targets": targets(db_target)})  # fail_on=any
    assert res["failed"] and "closed@controller: cannot connect to 127.0.0.1" in res["msg"]
    assert "unknown@controller: cannot resolve no-such-host.invalid" in res["msg"]
    assert by_name(res)["db"]["reachable"]  # the full result comes with the failure


def test_exec_unavailable_fails_clearly_without_fallback(lab, db_target):
    res = run_module(
        "network_probe",
        {
            "kubeconfig": kubeconfig(lab),
            "context": "primary",
            "source": "pod",
            "pod": {"namespace": NS, "label_selector": "app=user-service"},
            "targets": [db_target],
        },
    )
    assert res["failed"]
    info = res["exec"]["primary"]
    assert info["available"] is False and info["pod"].startswith(f"{NS}/user-service-")
    assert f"exec into pod {info['pod']} in primary is not available" in res["msg"]
    assert "HTTP 404" in res["msg"]
    assert "set fallback_to_controller=true to check from the controller instead" in res["msg"]
    assert res["checks"] == []


def test_exec_unavailable_falls_back_to_the_controller(lab, db_target):
    res = run_module(
        "network_probe",
        {
            "kubeconfig": kubeconfig(lab),
            "clusters": [{"name": r, "context": r} for r in REGIONS],
            "source": "pod",
            "pod": {"namespace": NS, "label_selector": "app=user-service"},
            "fallback_to_controller": True,
            "targets": [db_target, {"name": "db-dns", "host": db_target["host"]}],
        },
    )
    assert not res["failed"], res["msg"]
    assert all(not info["available"] and info["fallback"] for info in res["exec"].values())
    assert set(res["exec"]) == set(REGIONS)
    checks = by_name(res)
    assert checks["db"]["reachable"] and checks["db"]["fallback"] and checks["db"]["source"] == "controller"
    assert checks["db-dns"]["resolved"] and len(res["checks"]) == 2  # the controller checks once for both regions
    assert any("exec into pods is not available in primary, secondary" in w for w in res["warnings"])
    assert res["msg"].startswith("2 checks from the controller (fallback): 2 fine (db ")


def test_a_pod_that_does_not_exist_fails(lab, db_target):
    res = run_module(
        "network_probe",
        {
            "kubeconfig": kubeconfig(lab),
            "context": "secondary",
            "source": "both",
            "pod": {"namespace": NS, "label_selector": "app=no-such-service"},
            "fallback_to_controller": True,
            "targets": [db_target],
        },
    )
    assert res["failed"] and "secondary: no pod matches app=no-such-service in namespace microservices" in res["msg"]
    assert by_name(res)["db"]["reachable"]  # the controller's check is in the result
