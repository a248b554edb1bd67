"""The demo service, run directly against the lab's databases."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from incidentlab.config import DB_USERS, HOST
from support import wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _get(url: str, method: str = "GET") -> tuple[int, dict | str]:
    req = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            status, body = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


@pytest.fixture
def service(lab):
    procs = []

    def start(db_node: str = "db-primary", name: str = "order-service", **extra: str):
        port = _free_port()
        env = {
            **os.environ,
            "SERVICE_NAME": name,
            "PORT": str(port),
            "POD_NAME": f"{name}-test",
            "DB_HOST": HOST,
            "DB_PORT": str(lab.cfg.ports[db_node]),
            "DB_USER": DB_USERS["app"],
            "DB_PASSWORD": lab.secrets()["app"],
            **extra,
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "incidentlab.demo_service"], env=env, stdout=subprocess.PIPE, text=True
        )
        procs.append(proc)
        base = f"http://{HOST}:{port}"
        wait_for(lambda: _get(base + "/actuator/health")[0] in (200, 503), 30, "service answering")
        return base, proc

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(5)


def test_health_is_up_with_its_database(service, lab):
    base, _ = service()
    status, body = _get(base + "/actuator/health")
    assert status == 200
    assert body["status"] == "UP"
    assert body["components"]["db"]["details"]["port"] == lab.cfg.ports["db-primary"]
    assert body["components"]["ping"]["status"] == "UP"


def test_business_endpoint_writes_and_reads_the_shop_database(service):
    base, _ = service()
    status, body = _get(base + "/api/records", "POST")
    assert status == 201 and body["table"] == "orders"
    status, body = _get(base + "/api/records?limit=5")
    assert status == 200
    assert body["rows"][0]["id"] >= 1


def _records_count_line(base: str) -> str | None:
    _, text = _get(base + "/actuator/prometheus")
    return next(
        (
            ln
            for ln in text.splitlines()
            if ln.startswith("http_server_requests_seconds_count{") and 'uri="/api/records"' in ln
        ),
        None,
    )


def test_metrics_count_requests_by_uri_and_status(service):
    base, _ = service()
    for _ in range(3):
        _get(base + "/api/records")
    # The service counts a request once it has answered it, as a real one may: wait for the third.
    line = wait_for(
        lambda: (ln := _records_count_line(base)) and float(ln.rsplit(" ", 1)[1]) >= 3 and ln, 10, "3 requests counted"
    )
    assert 'status="200"' in line and line.endswith(" 3")
    assert 'le="+Inf"' in _get(base + "/actuator/prometheus")[1]


def test_health_down_when_database_dies_and_up_when_it_returns(service, lab, healed):
    base, _ = service()
    assert _get(base + "/actuator/health")[0] == 200
    lab.break_fault("db-primary-down")
    _, body = wait_for(lambda: (r := _get(base + "/actuator/health"))[0] == 503 and r, 30, "health DOWN")
    assert body["status"] == "DOWN"
    assert body["components"]["db"]["status"] == "DOWN"
    assert body["components"]["db"]["details"]["error"]
    assert _get(base + "/api/records", "POST")[0] == 503
    lab.heal("db-primary-down")
    wait_for(lambda: _get(base + "/actuator/health")[0] == 200, 30, "health UP again")


def test_read_only_database_makes_health_down_with_the_reason(service):
    base, _ = service(db_node="db-replica")
    status, body = _get(base + "/actuator/health")
    assert status == 503
    assert "read-only" in body["components"]["db"]["details"]["error"]


def test_a_refused_write_leaves_its_kept_alive_connection_usable(service):
    """nginx keeps upstream connections alive: a POST answered with an error must not leave its body
    unread, or the next request on the connection starts with it and fails (was: 501 "{}POST")."""
    import http.client

    base, _ = service(DB_PORT=str(_free_port()))  # nothing listens there: every write is refused with 503
    conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=5)
    try:
        for _ in range(2):
            conn.request("POST", "/api/records", body=b'{"note": "kept alive"}')
            resp = conn.getresponse()
            body = json.loads(resp.read())
            assert resp.status == 503 and "OperationalError" in body["error"], (resp.status, body)
        conn.request("GET", "/actuator/health")
        assert conn.getresponse().status == 503
    finally:
        conn.close()


def _read_until(proc, done, timeout: float) -> str:
    """The process's stdout as it comes (read from the pipe itself, so that nothing waits in a buffer that
    select cannot see), until ``done(lines)``; an assertion error at the deadline."""
    data = b""
    deadline = time.monotonic() + timeout
    while not done(data.decode().splitlines()):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out after {timeout}s; got {data!r}"
        if select.select([proc.stdout], [], [], left)[0]:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"the service closed its output; got {data!r}"
            data += chunk
    return data.decode()


def test_logs_are_json_lines_on_stdout(service):
    base, proc = service()
    _get(base + "/api/records")
    # The request's line is written after the answer: read until it comes, then stop the service.
    seen = _read_until(proc, lambda lines: any('"msg": "request"' in ln for ln in lines), 10)
    proc.terminate()
    records = [json.loads(line) for line in (seen + proc.stdout.read()).splitlines()]
    assert records[0]["msg"] == "started" and records[0]["service"] == "order-service"
    assert any(rec["msg"] == "request" and rec["path"] == "/api/records" for rec in records)


def test_fail_on_start_exits_with_an_error(lab):
    env = {**os.environ, "SERVICE_NAME": "user-service", "LAB_FAIL_ON_START": "1"}
    res = subprocess.run([sys.executable, "-m", "incidentlab.demo_service"], env=env, capture_output=True, text=True)
    assert res.returncode == 1
    assert "fatal" in res.stdout


def test_unknown_service_name_is_refused():
    env = {**os.environ, "SERVICE_NAME": "billing"}
    res = subprocess.run([sys.executable, "-m", "incidentlab.demo_service"], env=env, capture_output=True, text=True)
    assert res.returncode != 0
    assert "SERVICE_NAME must be one of" in res.stderr
