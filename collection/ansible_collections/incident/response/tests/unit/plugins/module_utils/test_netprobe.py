"""network_probe's pieces: the in-pod script (run here with sh), its output, exec refusals."""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from ansible_collections.incident.response.plugins.module_utils import netprobe


@pytest.fixture
def ports():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed = probe.getsockname()[1]
    probe.close()
    yield listener.getsockname()[1], closed
    listener.close()


@pytest.mark.skipif(not (shutil.which("sh") and shutil.which("getent")), reason="needs sh and getent")
def test_the_pod_script_does_what_the_controller_does(ports):
    open_port, closed = ports
    targets = [
        {"name": "open", "host": "localhost", "port": open_port},
        {"name": "closed", "host": "127.0.0.1", "port": closed},
        {"name": "unknown", "host": "no-such-host.invalid", "port": 80},
        {"name": "dns", "host": "localhost"},
    ]
    out = subprocess.run(
        netprobe.pod_command(targets, 2), capture_output=True, text=True, timeout=30, check=False
    ).stdout
    in_pod = {c["name"]: c for c in netprobe.parse_pod_output(out, targets, "primary", "ns/pod")}
    here = {t["name"]: netprobe.check(t, 2) for t in targets}
    for name in ("open", "closed", "unknown", "dns"):
        assert (in_pod[name]["resolved"], in_pod[name]["reachable"]) == (
            here[name]["resolved"],
            here[name]["reachable"],
        )
    assert in_pod["open"]["source"] == "pod" and in_pod["open"]["pod"] == "ns/pod"
    assert in_pod["open"]["tool"] in ("nc", "bash") and in_pod["open"]["latency_ms"] is not None
    assert "127.0.0.1" in in_pod["dns"]["addresses"] and in_pod["dns"]["reachable"] is None


def test_parse_reports_missing_tools_and_missing_lines():
    targets = [{"host": "db", "port": 3306}, {"host": "cache", "port": 6379}]
    out = "R|0|10.0.0.7 |100|2000100\nC|0|127|2000100|2000200|none\n"
    db, cache = netprobe.parse_pod_output(out, targets, "primary", "ns/pod")
    assert db["resolved"] and db["resolve_ms"] == 2.0 and db["reachable"] is None
    assert "neither nc nor bash" in db["error"]
    assert cache["error"] == "no result from the pod for this target"


def test_exec_refusals_are_explained():
    body = (
        '{"kind":"Status","message":"pods \\"web-1\\" is forbidden: User \\"ops\\" '
        'cannot create resource \\"pods/exec\\""}'
    )
    exc = Exception(f"Handshake status 403 Forbidden -+-+- {{'content-type': 'application/json'}} -+-+- b'{body}'")
    text = netprobe.describe_exec_error(exc)
    assert text.startswith("forbidden: the credentials may not create pods/exec (HTTP 403: pods ")
    assert 'cannot create resource "pods/exec"' in text
    missing = Exception('Handshake status 404 Not Found -+-+- {} -+-+- {"message":"the server could not find it"}')
    assert (
        netprobe.describe_exec_error(missing)
        == "the API server refused the exec request (HTTP 404: the server could not find it)"
    )


def test_controller_check_times_out_resolution(monkeypatch):
    import threading

    # A resolver that never answers (until the test is over): the check's own timeout must end the wait.
    released = threading.Event()
    monkeypatch.setattr(netprobe.socket, "getaddrinfo", lambda *a, **k: released.wait(60))
    try:
        res = netprobe.check({"host": "slow.example", "port": 53}, 0.2)
    finally:
        released.set()
    assert not res["resolved"] and res["reachable"] is False and "no answer within 0.2s" in res["error"]
    assert res["timed_out"] is True


def test_no_check_starts_once_the_deadline_is_spent():
    from ansible_collections.incident.response.plugins.module_utils.common import Deadline

    deadline = Deadline(1)
    deadline.start -= 1
    res = netprobe.check({"host": "db.example", "port": 3306}, 3, deadline)
    assert res["timed_out"] and res["reachable"] is False and "the step's deadline was spent" in res["error"]
