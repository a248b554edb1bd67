"""Notification routing and payloads, and the guarantee that a channel result carries no secret."""

from __future__ import annotations

import json
import socket

import pytest

from ansible_collections.incident.response.plugins.module_utils import notify
from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure

CONTACTS = {
    "devops_lead": {"name": "DevOps Lead", "email": "devops-lead@company.com"},
    "management": {"name": "Management", "email": ["cto@company.com", "vp-engineering@company.com"]},
    "oncall": ["oncall@company.com"],
    "database_admin": "db-admin@company.com",
}
ESCALATION = {
    "P0": {"contacts": ["devops_lead", "management"], "channels": ["slack", "pd"]},
    "P2": {"contacts": ["oncall"], "channels": ["slack"]},
}


def _ctx(**kw):
    ctx = dict(
        severity="P0",
        title="db-primary is down",
        message="promoting the replica",
        details={"region": "primary"},
        incident_id="INC-7",
        action="trigger",
        dedup_key="INC-7",
        statuspage_incident_id=None,
        statuspage_status=None,
        source="lab",
        routing=notify.resolve_routing("P0", CONTACTS, ESCALATION, [], ["slack", "pd", "sp"]),
        timeout=2.0,
        validate_certs=True,
        check_mode=False,
        sent_at="2026-01-31T12:00:00Z",
    )
    ctx.update(kw)
    return ctx


def test_routing_follows_the_escalation_map_and_adds_also_notify():
    r = notify.resolve_routing("P0", CONTACTS, ESCALATION, ["database_admin", "devops_lead"], ["slack", "pd"])
    assert r["contacts"] == ["devops_lead", "management", "database_admin"]
    assert r["contact_names"] == ["DevOps Lead", "Management", "database_admin"]
    assert r["recipients"] == [
        "devops-lead@company.com",
        "cto@company.com",
        "vp-engineering@company.com",
        "db-admin@company.com",
    ]
    assert r["channels"] == ["slack", "pd"]
    p2 = notify.resolve_routing("P2", CONTACTS, ESCALATION, [], ["slack", "pd"])
    assert (p2["recipients"], p2["channels"]) == (["oncall@company.com"], ["slack"])


def test_without_escalation_every_channel_is_used():
    r = notify.resolve_routing("P3", {}, {}, [], ["a", "b"])
    assert r["channels"] == ["a", "b"] and r["recipients"] == []


@pytest.mark.parametrize(
    ("severity", "also", "channels", "message"),
    [
        ("P1", [], ["slack", "pd"], "escalation has no entry for P1"),
        ("P0", [], ["slack"], "names channels that are not defined: pd"),
        ("P0", ["cfo"], ["slack", "pd"], "contacts has no entry for cfo"),
    ],
)
def test_routing_errors_say_what_to_fix(severity, also, channels, message):
    with pytest.raises(ModuleFailure, match=message):
        notify.resolve_routing(severity, CONTACTS, ESCALATION, also, channels)


def test_pagerduty_events():
    trigger = notify.pagerduty_event(_ctx(), "rk")
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["summary"] == "[P0] INC-7 db-primary is down"
    assert trigger["payload"]["custom_details"] == {"message": "promoting the replica", "region": "primary"}
    assert notify.pagerduty_event(_ctx(action="acknowledge"), "rk") == {
        "routing_key": "rk",
        "event_action": "acknowledge",
        "dedup_key": "INC-7",
    }


def test_statuspage_create_then_update():
    ch = {"page_id": "pg"}
    method, path, body = notify.statuspage_request(_ctx(severity="P1"), ch)
    assert (method, path) == ("POST", "/v1/pages/pg/incidents")
    assert body["incident"] == {
        "name": "db-primary is down",
        "status": "investigating",
        "body": "promoting the replica",
        "impact_override": "major",
    }
    method, path, body = notify.statuspage_request(_ctx(action="resolve", statuspage_incident_id="abc"), ch)
    assert (method, path, body["incident"]["status"]) == ("PATCH", "/v1/pages/pg/incidents/abc", "resolved")


def test_updates_need_what_the_trigger_returned():
    pd = {"name": "pd", "type": "pagerduty", "routing_key": "rk"}
    assert "needs dedup_key" in notify.channel_problem(pd, _ctx(action="resolve", dedup_key=None))
    sp = {"name": "sp", "type": "statuspage", "api_key": "k", "page_id": "pg"}
    assert "give statuspage_incident_id" in notify.channel_problem(sp, _ctx(action="resolve"))
    assert notify.channel_problem({"name": "s", "type": "slack"}, _ctx()) == "a slack channel needs url"


def test_check_mode_plans_without_secrets_and_skips_unrouted_channels():
    ctx = _ctx(check_mode=True)
    pd = notify.deliver({"name": "pd", "type": "pagerduty", "routing_key": "rk-secret-value"}, ctx)
    assert pd["status"] == "would_send" and "routing_key" not in pd["payload"]
    assert "rk-secret-value" not in json.dumps(pd)
    sp = notify.deliver({"name": "sp", "type": "statuspage", "api_key": "k", "page_id": "pg"}, ctx)
    assert sp["status"] == "skipped" and sp["error"] == "not routed for P0 by escalation"


def test_a_failed_webhook_never_returns_its_url_or_headers():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    secret_url = f"http://127.0.0.1:{port}/services/T000/B000/very-secret-path"
    ch = {"name": "slack", "type": "slack", "url": secret_url, "headers": {"X-Token": "tok-secret-9"}}
    res = notify.deliver(ch, _ctx())
    assert res["status"] == "failed" and "Connection refused" in res["error"]
    text = json.dumps(res)
    assert "very-secret-path" not in text and "tok-secret-9" not in text


def test_scrub_replaces_every_secret_longest_first():
    assert notify.scrub("a https://h/x/secret-b and secret", ["secret", "https://h/x/secret-b"]) == (
        "a ******** and ********"
    )
