"""The health engine's pure logic: actuator parsing, summaries and failure policies."""

from __future__ import annotations

from ansible_collections.incident.response.plugins.module_utils import health


def _check(name, status, region=None, error=None):
    return {"name": name, "status": status, "region": region, "error": error}


def test_actuator_nested_components_are_reported_by_their_leaves_with_errors():
    body = {
        "status": "DOWN",
        "components": {
            "db": {
                "status": "DOWN",
                "components": {
                    "primary": {"status": "DOWN", "details": {"error": "Connection refused"}},
                    "reporting": {"status": "UP"},
                },
            },
            "diskSpace": {"status": "UP", "details": {"free": 1}},
            "redis": {"status": "OUT_OF_SERVICE"},
            "custom": {"status": "UNKNOWN"},
        },
    }
    overall, components, failing, errors = health.read_actuator(body)
    assert overall == "DOWN"
    assert components == {
        "db.primary": "DOWN",
        "db.reporting": "UP",
        "diskSpace": "UP",
        "redis": "OUT_OF_SERVICE",
        "custom": "UNKNOWN",
    }
    assert failing == ["db.primary", "redis"]
    assert errors == ["db.primary DOWN: Connection refused", "redis OUT_OF_SERVICE"]


def test_actuator_v1_details_and_bare_status_are_read():
    assert health.read_actuator({"status": "UP"}) == ("UP", {}, [], [])
    read = health.read_actuator({"status": "UP", "details": {"db": {"status": "UP"}}})
    assert read[1] == {"db": "UP"}


def test_summary_counts_names_and_regions():
    checks = [
        _check("a", "UP", "eu"),
        _check("b", "DOWN", "eu"),
        _check("c", "UP", "us"),
        _check("d", "DOWN"),
    ]
    s = health.summarize(checks)
    assert (s["total"], s["up"], s["down"], s["all_up"]) == (4, 2, 2, False)
    assert s["down_names"] == ["b", "d"] and s["up_names"] == ["a", "c"]
    assert s["regions"] == {
        "eu": {"total": 2, "up": 1, "down": 1, "down_names": ["b"]},
        "us": {"total": 1, "up": 1, "down": 0, "down_names": []},
    }


def test_policies():
    checks = [_check("a", "UP"), _check("b", "UP"), _check("c", "DOWN", error="HTTP 503")]
    s = health.summarize(checks)
    assert health.verdict(checks, s, "never") is None
    assert health.verdict(checks, s, "any").startswith("1 of 3 health checks DOWN: c (HTTP 503)")
    assert health.verdict(checks, s, "quorum") is None  # majority of 3 is 2
    assert "only 2 of 3 health checks UP, the quorum is 3" in health.verdict(checks, s, "quorum", quorum=3)
    assert health.verdict(checks, s, "required", required=["a", "b"]) is None
    assert health.verdict(checks, s, "required", required=["c"]).startswith("required health checks DOWN: c")


def test_policy_input_errors():
    specs = [{"name": "a"}, {"name": "b"}, {"name": "a"}]
    assert "repeat: a" in health.validate_policy(specs, "any", None, [])
    specs = specs[:2]
    assert "needs the names" in health.validate_policy(specs, "required", None, [])
    assert "not given: x" in health.validate_policy(specs, "required", None, ["x"])
    assert "between 1 and" in health.validate_policy(specs, "quorum", 3, [])
    assert health.validate_policy(specs, "quorum", 2, []) is None


def test_urls_lose_their_credentials():
    assert health.redact_url("https://user:pw@host:8443/x@y") == "https://***@host:8443/x@y"
    assert health.redact_url("http://host/actuator/health") == "http://host/actuator/health"


def test_a_head_check_only_reads_the_status(monkeypatch):
    class Resp:
        status, body, elapsed = 200, "", 0.01

        def header(self, name, default=""):
            return "application/json"

    monkeypatch.setattr(health, "request", lambda *a, **kw: Resp())
    res = health.check_http({"name": "lb", "url": "http://lb/health", "method": "HEAD", "retries": 0})
    assert res["status"] == "UP" and res["error"] is None
    res = health.check_http({"name": "lb", "url": "http://lb/health", "retries": 0})
    assert res["status"] == "DOWN" and "not JSON" in res["error"]


def test_a_timed_out_check_says_so_and_retries_only_within_the_deadline(monkeypatch):
    from ansible_collections.incident.response.plugins.module_utils.common import Deadline
    from ansible_collections.incident.response.plugins.module_utils.web import HttpError

    def frozen(url, **kw):
        raise HttpError(f"GET {url}: no answer within {kw['timeout']:g} s (timed out)", timed_out=True)

    monkeypatch.setattr(health, "request", frozen)
    ep = {"name": "lb", "url": "http://lb/health", "retries": 2, "retry_delay": 0}
    res = health.check_http(ep, deadline=Deadline(30))
    assert res["status"] == "DOWN" and res["timed_out"] is True and res["attempts"] == 3
    assert res["error"].startswith("GET http://lb/health: not answering (timed out after ")
    assert res["error"].endswith(", 3 attempts)")

    spent = Deadline(1)
    spent.start -= 1
    res = health.check_http(ep, deadline=spent)
    assert res["attempts"] == 0 and res["timed_out"] is True
    assert res["error"] == "GET http://lb/health: not checked: the step's deadline was spent"


def test_a_refusal_is_down_but_not_timed_out(monkeypatch):
    from ansible_collections.incident.response.plugins.module_utils.web import HttpError

    def refused(url, **kw):
        raise HttpError(f"GET {url}: no answer ([Errno 111] Connection refused)")

    monkeypatch.setattr(health, "request", refused)
    res = health.check_http({"name": "lb", "url": "http://lb/health", "retries": 0})
    assert res["status"] == "DOWN" and res["timed_out"] is False and "Connection refused" in res["error"]
    assert health.summarize([res])["timed_out_names"] == []


def test_without_a_deadline_every_check_keeps_the_time_its_attempts_give_it():
    checks = [
        {"timeout": 3, "retries": 10, "retry_delay": 3},  # a verification that waits for services: 63 s
        {"connect_timeout": 5, "retries": 1, "retry_delay": 0.5},
    ]
    assert health.attempts_bound(checks) == 64.0
