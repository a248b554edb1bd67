"""incident_notify against the lab's HTTP and SMTP sinks: what the sinks received is the proof."""

from __future__ import annotations

import json
import uuid

import pytest

from incidentlab import sinks
from ops_support import free_port
from support import run_module

pytestmark = pytest.mark.lab

# The runbook's Emergency Contacts and escalation, as an inventory holds them.
CONTACTS = {
    "devops_lead": {"name": "DevOps Lead", "email": "devops-lead@company.com"},
    "oncall": {"name": "On-Call Engineer", "email": "oncall@company.com"},
    "database_admin": {"name": "Database Admin", "email": "db-admin@company.com"},
    "management": {"name": "Management", "email": ["cto@company.com", "vp-engineering@company.com"]},
    "security": {"name": "Security Team", "email": "security@company.com"},
    "devops_team": {"name": "DevOps Team", "email": ["devops-lead@company.com", "oncall@company.com"]},
    "development_team": {"name": "Development Team", "email": ["dev-team@company.com"]},
}
ESCALATION = {
    "P0": {"contacts": ["devops_lead", "management"], "channels": ["slack", "hook", "mail", "pagerduty", "status"]},
    "P1": {"contacts": ["devops_team"], "channels": ["slack", "mail", "pagerduty"]},
    "P2": {"contacts": ["oncall"], "channels": ["slack", "mail"]},
    "P3": {"contacts": ["development_team"], "channels": ["mail"]},
}


@pytest.fixture
def secrets_():
    tag = uuid.uuid4().hex[:8]
    return {
        "slack_path": f"/slack/T0LAB/B0LAB/{tag}slacksecret",
        "hook_token": f"hook-token-{tag}",
        "routing_key": f"pd-routing-{tag}",
        "api_key": f"sp-api-key-{tag}",
        "smtp_password": f"smtp-pw-{tag}",
    }


def _channels(lab, s, **override):
    chans = {
        "slack": {"name": "slack", "type": "slack", "url": lab.cfg.url("sink-http", s["slack_path"])},
        "hook": {
            "name": "hook",
            "type": "webhook",
            "url": lab.cfg.url("sink-http", "/hooks/incidents"),
            "headers": {"X-Token": s["hook_token"]},
        },
        "mail": {
            "name": "mail",
            "type": "email",
            "smtp_host": "127.0.0.1",
            "smtp_port": lab.cfg.ports["sink-smtp"],
            "smtp_security": "none",
            "smtp_user": "notifier",
            "smtp_password": s["smtp_password"],
            "mail_from": "incidents@company.com",
            "to": ["incident-log@company.com"],
        },
        "pagerduty": {
            "name": "pagerduty",
            "type": "pagerduty",
            "url": lab.cfg.url("sink-http", "/v2/enqueue"),
            "routing_key": s["routing_key"],
        },
        "status": {
            "name": "status",
            "type": "statuspage",
            "url": lab.cfg.url("sink-http"),
            "page_id": "labpage",
            "api_key": s["api_key"],
        },
    }
    for name, changes in override.items():
        chans[name] = {**chans[name], **changes}
    return list(chans.values())


def _mark(lab):
    http = max((r["seq"] for r in sinks.read_requests(lab.cfg)), default=0)
    mail = max((m["seq"] for m in sinks.read_mails(lab.cfg)), default=0)
    return http, mail


def _no_secret_in(result, s):
    text = json.dumps(result)
    for name, value in s.items():
        assert value not in text, f"{name} leaked into the result"
    assert "slacksecret" not in text


def test_p0_reaches_every_channel_with_the_runbook_routing_then_resolves(lab, secrets_):
    http0, mail0 = _mark(lab)
    incident = f"INC-{uuid.uuid4().hex[:6]}"
    res = run_module(
        "incident_notify",
        {
            "severity": "P0",
            "incident_id": incident,
            "title": "db-primary is down",
            "body": "The primary database does not answer; promoting the replica.",
            "details": {"region": "primary", "component": "db-primary"},
            "channels": _channels(lab, secrets_),
            "contacts": CONTACTS,
            "escalation": ESCALATION,
            "also_notify": ["database_admin"],
        },
    )
    assert not res["failed"], res.get("msg")
    assert res["changed"] and sorted(res["channels_sent"]) == ["hook", "mail", "pagerduty", "slack", "status"]
    assert res["routing"]["contact_names"] == ["DevOps Lead", "Management", "Database Admin"]
    _no_secret_in(res, secrets_)

    reqs = sinks.read_requests(lab.cfg, since_seq=http0)
    slack = next(r for r in reqs if r["path"] == secrets_["slack_path"])
    assert slack["json"]["text"].startswith(f":rotating_light: *[P0] {incident} db-primary is down*")
    assert "Escalation: DevOps Lead, Management, Database Admin" in slack["json"]["text"]

    hook = next(r for r in reqs if r["path"] == "/hooks/incidents")
    assert hook["headers"]["X-Token"] == secrets_["hook_token"]
    assert hook["json"]["severity"] == "P0" and hook["json"]["incident_id"] == incident
    assert hook["json"]["details"] == {"region": "primary", "component": "db-primary"}

    pd = next(r for r in reqs if r["path"] == "/v2/enqueue")
    assert pd["status"] == 202 and pd["json"]["routing_key"] == secrets_["routing_key"]
    assert pd["json"]["event_action"] == "trigger" and pd["json"]["dedup_key"] == incident
    assert pd["json"]["payload"]["severity"] == "critical"
    assert res["channels"]["pagerduty"]["dedup_key"] == incident == res["dedup_key"]

    sp = next(r for r in reqs if r["path"] == "/v1/pages/labpage/incidents")
    assert sp["method"] == "POST" and sp["headers"]["Authorization"] == f"OAuth {secrets_['api_key']}"
    assert sp["json"]["incident"]["status"] == "investigating"
    assert sp["json"]["incident"]["impact_override"] == "critical"
    sp_id = res["statuspage_incident_id"]
    assert sp_id and res["channels"]["status"]["incident_id"] == sp_id

    mail = next(m for m in sinks.read_mails(lab.cfg, since_seq=mail0) if incident in m["subject"])
    assert mail["subject"] == f"[P0] {incident} db-primary is down"
    assert sorted(mail["rcpt_tos"]) == sorted(
        [
            "devops-lead@company.com",
            "cto@company.com",
            "vp-engineering@company.com",
            "db-admin@company.com",
            "incident-log@company.com",
        ]
    )
    assert mail["auth_user"] == "notifier" and mail["mail_from"] == "incidents@company.com"
    assert "promoting the replica" in mail["body"] and "region: primary" in mail["body"]

    # resolve: the same PagerDuty incident (dedup key) and the same status page incident
    http1, _ = _mark(lab)
    res = run_module(
        "incident_notify",
        {
            "severity": "P0",
            "action": "resolve",
            "incident_id": incident,
            "statuspage_incident_id": sp_id,
            "title": "db-primary is down",
            "body": "The replica was promoted; service restored.",
            "channels": _channels(lab, secrets_),
            "escalation": {"P0": {"channels": ["pagerduty", "status", "slack"]}},
        },
    )
    assert not res["failed"], res.get("msg")
    assert sorted(res["channels_sent"]) == ["pagerduty", "slack", "status"]
    assert sorted(res["channels_skipped"]) == ["hook", "mail"]
    reqs = sinks.read_requests(lab.cfg, since_seq=http1)
    pd = next(r for r in reqs if r["path"] == "/v2/enqueue")
    assert pd["json"] == {"routing_key": secrets_["routing_key"], "event_action": "resolve", "dedup_key": incident}
    sp = next(r for r in reqs if r["path"].startswith("/v1/pages/"))
    assert (sp["method"], sp["path"]) == ("PATCH", f"/v1/pages/labpage/incidents/{sp_id}")
    assert sp["json"]["incident"]["status"] == "resolved"
    assert res["statuspage_incident_id"] == sp_id
    slack = next(r for r in reqs if r["path"] == secrets_["slack_path"])
    assert slack["json"]["text"].startswith(":white_check_mark: *[RESOLVED] [P0]")
    _no_secret_in(res, secrets_)


def test_p2_goes_to_the_on_call_only_and_check_mode_sends_nothing(lab, secrets_):
    args = {
        "severity": "P2",
        "title": "payment-service latency is high",
        "channels": _channels(lab, secrets_),
        "contacts": CONTACTS,
        "escalation": ESCALATION,
    }
    http0, mail0 = _mark(lab)
    planned = run_module("incident_notify", args, check=True)
    assert not planned["failed"] and planned["changed"]
    assert _mark(lab) == (http0, mail0), "check mode sent something"
    assert sorted(planned["channels_sent"]) == ["mail", "slack"]
    assert planned["channels"]["mail"]["status"] == "would_send"
    assert planned["channels"]["mail"]["payload"]["to"] == ["oncall@company.com", "incident-log@company.com"]
    assert planned["channels"]["slack"]["payload"]["text"].startswith(":rotating_light: *[P2]")
    assert planned["channels"]["pagerduty"]["status"] == "skipped"
    _no_secret_in(planned, secrets_)

    res = run_module("incident_notify", args)
    assert not res["failed"] and sorted(res["channels_sent"]) == ["mail", "slack"]
    assert sorted(res["channels_skipped"]) == ["hook", "pagerduty", "status"]
    assert not sinks.read_requests(lab.cfg, "/v2/enqueue", since_seq=http0)
    mails = [m for m in sinks.read_mails(lab.cfg, since_seq=mail0) if "latency is high" in m["subject"]]
    assert len(mails) == 1 and mails[0]["rcpt_tos"] == ["oncall@company.com", "incident-log@company.com"]
    assert "payload" not in res["channels"]["mail"]


def test_failing_channels_are_reported_by_name_with_their_reason_and_fail_the_task(lab, secrets_):
    broken = _channels(
        lab,
        secrets_,
        slack={"url": lab.cfg.url("sink-http", "/_sink/status/404/" + secrets_["slack_path"])},
        status={"url": lab.cfg.url("sink-http", "/_sink/status/401")},
        mail={"smtp_port": free_port()},
        pagerduty={"url": lab.cfg.url("sink-http", "/_sink/status/429/v2/enqueue")},
    )
    args = {
        "severity": "P0",
        "title": "region down",
        "channels": broken,
        "contacts": CONTACTS,
        "escalation": ESCALATION,
    }
    res = run_module("incident_notify", args)
    assert res["failed"]
    assert res["msg"].startswith("4 of 5 routed channels failed: slack (slack): the Slack webhook answered HTTP 404")
    assert "is the webhook URL right?" in res["msg"]
    assert "status (statuspage): the status page answered HTTP 401" in res["msg"] and "check api_key" in res["msg"]
    assert "cannot reach SMTP server 127.0.0.1:" in res["channels"]["mail"]["error"]
    assert "rate limited" in res["channels"]["pagerduty"]["error"]
    assert res["channels_sent"] == ["hook"] and res["msg"].endswith("Sent: hook")
    _no_secret_in(res, secrets_)

    res = run_module("incident_notify", {**args, "fail_on_error": False})
    assert not res["failed"] and len(res["channels_failed"]) == 4
    assert any("4 of 5 routed channels failed" in w for w in res["warnings"])


def test_routing_data_that_does_not_fit_is_refused_before_sending(lab, secrets_):
    http0, _ = _mark(lab)
    res = run_module(
        "incident_notify",
        {
            "severity": "P1",
            "title": "x",
            "channels": _channels(lab, secrets_),
            "contacts": CONTACTS,
            "escalation": {**ESCALATION, "P1": {"contacts": ["devops_team"], "channels": ["slack", "teams"]}},
        },
    )
    assert res["failed"]
    assert res["msg"] == (
        "escalation.P1 names channels that are not defined: teams (defined: slack, hook, mail, pagerduty, status)"
    )
    assert _mark(lab)[0] == http0


def test_a_message_with_a_once_key_is_sent_once_per_channel_and_a_failed_channel_is_tried_again(
    lab, secrets_, tmp_path
):
    """A procedure run again after an interruption must not page everyone twice: with once_key and sent_log
    a channel that took the message is skipped; one that failed is tried again on the next run."""
    log = tmp_path / "notifications.json"
    args = {
        "severity": "P0",
        "title": "primary database down",
        "incident_id": "INC-once",
        "channels": _channels(lab, secrets_, mail={"smtp_port": free_port()}),
        "contacts": CONTACTS,
        "escalation": ESCALATION,
        "once_key": "p0-started",
        "sent_log": str(log),
        "fail_on_error": False,
    }
    first = run_module("incident_notify", args)
    assert sorted(first["channels_sent"]) == ["hook", "pagerduty", "slack", "status"]
    assert first["channels_failed"] == ["mail"]
    http_mark, mail_mark = _mark(lab)

    second = run_module("incident_notify", {**args, "channels": _channels(lab, secrets_)})
    assert second["channels_sent"] == ["mail"], second["msg"]
    assert sorted(second["channels_skipped"]) == ["hook", "pagerduty", "slack", "status"]
    assert "already sent to" in second["msg"]
    assert [r for r in sinks.read_requests(lab.cfg) if r["seq"] > http_mark] == []  # nothing sent again
    assert len([m for m in sinks.read_mails(lab.cfg) if m["seq"] > mail_mark]) == 1  # the mail, this time

    third = run_module("incident_notify", {**args, "channels": _channels(lab, secrets_)})
    assert third["changed"] is False and third["channels_sent"] == []
    saved = json.loads(log.read_text())
    assert sorted(saved["p0-started"]["channels"]) == ["hook", "mail", "pagerduty", "slack", "status"]
    assert saved["p0-started"]["statuspage_incident_id"] == first["statuspage_incident_id"]
    _no_secret_in(saved, secrets_)
