"""The notification sinks record what they receive and answer like the services they stand in for."""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
import uuid
from email.message import EmailMessage

from incidentlab import sinks
from incidentlab.config import HOST


def _post(url: str, body: dict, headers: dict | None = None, method: str = "POST") -> tuple[int, dict | str]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            raw, status = resp.read().decode(), resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read().decode(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def test_smtp_sink_records_a_mail_without_the_password(lab):
    subject = f"P0 incident {uuid.uuid4().hex[:6]}"
    msg = EmailMessage()
    msg["From"] = "incidents@company.com"
    msg["To"] = "devops-lead@company.com"
    msg["Subject"] = subject
    msg.set_content("db-primary is down")
    with smtplib.SMTP(HOST, lab.cfg.ports["sink-smtp"], timeout=5) as smtp:
        smtp.login("notifier", "s3cret-pw")
        smtp.send_message(msg)
    mail = next(m for m in sinks.read_mails(lab.cfg) if m["subject"] == subject)
    assert mail["rcpt_tos"] == ["devops-lead@company.com"]
    assert "db-primary is down" in mail["body"]
    assert mail["auth_user"] == "notifier"
    assert "s3cret-pw" not in sinks.mail_path(lab.cfg).read_text()


def test_http_sink_records_a_webhook(lab):
    text = f"hello {uuid.uuid4().hex[:6]}"
    status, body = _post(lab.cfg.url("sink-http", "/slack/T000/B000/XXX"), {"text": text})
    assert (status, body) == (200, "ok")
    rec = next(r for r in sinks.read_requests(lab.cfg, "/slack/") if r["json"] == {"text": text})
    assert rec["method"] == "POST" and rec["status"] == 200


def test_pagerduty_events_are_validated_and_deduplicated(lab):
    url = lab.cfg.url("sink-http", "/v2/enqueue")
    status, body = _post(url, {"event_action": "trigger"})
    assert status == 400 and "routing_key" in " ".join(body["errors"])
    event = {"routing_key": "rk", "event_action": "trigger", "dedup_key": "inc-1", "payload": {"summary": "down"}}
    status, body = _post(url, event)
    assert status == 202 and body["dedup_key"] == "inc-1"


def test_statuspage_requires_an_api_key_and_returns_the_incident(lab):
    url = lab.cfg.url("sink-http", "/v1/pages/page1/incidents")
    assert _post(url, {"incident": {"name": "x"}})[0] == 401
    status, body = _post(
        url, {"incident": {"name": "DB down", "status": "investigating"}}, {"Authorization": "OAuth k"}
    )
    assert status == 201 and body["name"] == "DB down" and body["id"]
    status, body = _post(
        f"{url}/{body['id']}", {"incident": {"status": "resolved"}}, {"Authorization": "OAuth k"}, "PATCH"
    )
    assert status == 200 and body["status"] == "resolved"


def test_sink_can_answer_an_error_on_request(lab):
    assert _post(lab.cfg.url("sink-http", "/_sink/status/503/hook"), {})[0] == 503
