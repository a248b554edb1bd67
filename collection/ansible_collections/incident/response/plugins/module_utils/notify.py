# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Incident notifications: routing by severity, and one sender per channel type.

Routing data is plain inventory data:

* ``contacts``: ``{key: {name: "DevOps Lead", email: [addresses]}}`` (or just an address list);
* ``escalation``: ``{P0: {contacts: [keys], channels: [channel names]}, ...}``.

Secrets (webhook URLs, header values, routing keys, API keys, SMTP passwords) never go into
a channel's result: channels are reported by name, and every error text is scrubbed of the
secrets before it is returned.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import time
from datetime import UTC, datetime
from email.message import EmailMessage

from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure
from ansible_collections.incident.response.plugins.module_utils.web import HttpError, request

SEVERITIES = ("P0", "P1", "P2", "P3")
ACTIONS = ("trigger", "acknowledge", "resolve")
TYPES = ("slack", "webhook", "email", "pagerduty", "statuspage")
SECRET_KEYS = ("url", "routing_key", "api_key", "smtp_password")

PD_SEVERITY = {"P0": "critical", "P1": "error", "P2": "warning", "P3": "info"}
STATUSPAGE_IMPACT = {"P0": "critical", "P1": "major", "P2": "minor", "P3": "none"}
STATUSPAGE_STATUS = {"trigger": "investigating", "acknowledge": "identified", "resolve": "resolved"}
DEFAULT_URLS = {"pagerduty": "https://events.pagerduty.com/v2/enqueue", "statuspage": "https://api.statuspage.io"}
PREFIX = {"trigger": "", "acknowledge": "[ACKNOWLEDGED] ", "resolve": "[RESOLVED] "}
SLACK_ICON = {"trigger": ":rotating_light:", "acknowledge": ":eyes:", "resolve": ":white_check_mark:"}


# -- routing --------------------------------------------------------------------------------
def _emails(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def contact_entry(key, value):
    """(display name, [emails]) of one contact, given as a dict, a list or a single address."""
    if isinstance(value, dict):
        return str(value.get("name") or key), _emails(value.get("email"))
    return key, _emails(value)


def resolve_routing(severity, contacts, escalation, also_notify, channel_names):
    """Who and which channels a severity reaches; ModuleFailure for routing data that does not fit together."""
    contacts = contacts or {}
    if escalation:
        rule = escalation.get(severity)
        if rule is None:
            raise ModuleFailure(
                f"escalation has no entry for {severity}: add one "
                f"(known: {', '.join(sorted(escalation))}), or leave escalation out to use every channel"
            )
        if not isinstance(rule, dict):
            raise ModuleFailure(f"escalation.{severity} must be a dict with 'contacts' and 'channels' lists")
        keys = list(rule.get("contacts") or [])
        channels = list(rule.get("channels") or [])
        unknown = [c for c in channels if c not in channel_names]
        if unknown:
            raise ModuleFailure(
                f"escalation.{severity} names channels that are not defined: {', '.join(unknown)} "
                f"(defined: {', '.join(channel_names) or 'none'})"
            )
    else:
        keys, channels = [], list(channel_names)
    keys += [k for k in also_notify or [] if k not in keys]
    missing = [k for k in keys if k not in contacts]
    if missing:
        raise ModuleFailure(
            f"contacts has no entry for {', '.join(missing)} (escalation or also_notify names it); "
            f"known contacts: {', '.join(sorted(contacts)) or 'none'}"
        )
    names, recipients = [], []
    for key in keys:
        name, emails = contact_entry(key, contacts[key])
        names.append(name)
        recipients += [e for e in emails if e not in recipients]
    return dict(severity=severity, contacts=keys, contact_names=names, recipients=recipients, channels=channels)


# -- what is said -------------------------------------------------------------------------------
def headline(ctx):
    ident = f"{ctx['incident_id']} " if ctx.get("incident_id") else ""
    return f"{PREFIX[ctx['action']]}[{ctx['severity']}] {ident}{ctx['title']}"


def text_body(ctx):
    lines = [headline(ctx), ""]
    if ctx.get("message"):
        lines += [ctx["message"], ""]
    if ctx["routing"]["contact_names"]:
        lines.append("Escalation: " + ", ".join(ctx["routing"]["contact_names"]))
    for key, value in sorted((ctx.get("details") or {}).items()):
        lines.append(f"{key}: {value}")
    lines.append(f"Sent at {ctx['sent_at']} by incident.response.")
    return "\n".join(lines)


def slack_payload(ctx):
    text = f"{SLACK_ICON[ctx['action']]} *{headline(ctx)}*"
    if ctx.get("message"):
        text += f"\n{ctx['message']}"
    if ctx["routing"]["contact_names"]:
        text += "\nEscalation: " + ", ".join(ctx["routing"]["contact_names"])
    fields = [{"title": str(k), "value": str(v), "short": True} for k, v in sorted((ctx.get("details") or {}).items())]
    color = "good" if ctx["action"] == "resolve" else ("danger" if ctx["severity"] in ("P0", "P1") else "warning")
    payload = {"text": text}
    if fields:
        payload["attachments"] = [{"color": color, "fields": fields}]
    return payload


def webhook_payload(ctx):
    return {
        "event": ctx["action"],
        "incident_id": ctx.get("incident_id"),
        "severity": ctx["severity"],
        "title": ctx["title"],
        "message": ctx.get("message"),
        "details": ctx.get("details") or {},
        "escalation": {k: ctx["routing"][k] for k in ("contacts", "contact_names", "recipients")},
        "sent_at": ctx["sent_at"],
    }


def pagerduty_event(ctx, routing_key):
    event = {"routing_key": routing_key, "event_action": ctx["action"], "dedup_key": ctx["dedup_key"]}
    if ctx["action"] == "trigger":
        event["payload"] = {
            "summary": headline(ctx)[:1024],
            "source": ctx["source"],
            "severity": PD_SEVERITY[ctx["severity"]],
            "timestamp": ctx["sent_at"],
            "custom_details": {"message": ctx.get("message"), **(ctx.get("details") or {})},
        }
    return event


def statuspage_request(ctx, ch):
    """(method, path, body) of a Statuspage incident create or update."""
    status = ctx.get("statuspage_status") or STATUSPAGE_STATUS[ctx["action"]]
    incident = {"status": status, "body": ctx.get("message") or ctx["title"]}
    page = ch["page_id"]
    if ctx.get("statuspage_incident_id"):
        return "PATCH", f"/v1/pages/{page}/incidents/{ctx['statuspage_incident_id']}", {"incident": incident}
    incident.update(name=ctx["title"], impact_override=STATUSPAGE_IMPACT[ctx["severity"]])
    return "POST", f"/v1/pages/{page}/incidents", {"incident": incident}


def email_message(ctx, ch, recipients):
    msg = EmailMessage()
    msg["From"] = ch.get("mail_from") or "incident-response@localhost"
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = headline(ctx)
    msg["X-Incident-Severity"] = ctx["severity"]
    if ctx.get("incident_id"):
        msg["X-Incident-Id"] = ctx["incident_id"]
    msg.set_content(text_body(ctx))
    return msg


# -- checks before sending -------------------------------------------------------------------------
def channel_problem(ch, ctx):
    """Why this channel cannot send this message (None when it can)."""
    kind = ch["type"]
    need = {
        "slack": ["url"],
        "webhook": ["url"],
        "pagerduty": ["routing_key"],
        "statuspage": ["api_key", "page_id"],
        "email": ["smtp_host"],
    }[kind]
    missing = [k for k in need if not ch.get(k)]
    if missing:
        return f"a {kind} channel needs {' and '.join(missing)}"
    if kind == "pagerduty" and ctx["action"] != "trigger" and not ctx.get("dedup_key"):
        return f"PagerDuty {ctx['action']} needs dedup_key (or incident_id) of the triggered incident"
    if kind == "statuspage" and ctx["action"] != "trigger" and not ctx.get("statuspage_incident_id"):
        return (
            f"a status page {ctx['action']} updates an incident: give statuspage_incident_id "
            "(the statuspage_incident_id returned by the trigger)"
        )
    return None


# -- sending ------------------------------------------------------------------------------------
def scrub(text, secrets):
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "********")
    return text


def channel_secrets(ch):
    values = [ch.get(k) for k in SECRET_KEYS if ch.get(k)]
    values += [str(v) for v in (ch.get("headers") or {}).values()]
    return values


def _http(ch, ctx, method, url, body, headers=None):
    """One request; (status, parsed body) or raises _Failed with a reason that names no URL."""
    all_headers = dict(ch.get("headers") or {})
    all_headers.update(headers or {})
    try:
        resp = request(
            url,
            method=method,
            body=body,
            headers=all_headers,
            timeout=ctx["timeout"],
            validate_certs=ctx["validate_certs"],
        )
    except HttpError as exc:
        reason = str(exc).split(": ", 1)[-1] if url in str(exc) else str(exc)
        raise _Failed(f"{reason}", None) from None
    try:
        parsed = json.loads(resp.body) if resp.body else None
    except ValueError:
        parsed = resp.body.strip()[:200]
    return resp.status, parsed


class _Failed(Exception):
    def __init__(self, reason, http_status):
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status


def _expect(status, parsed, ok, what, hints=None):
    if status in ok:
        return
    hint = (hints or {}).get(status)
    detail = parsed
    if isinstance(parsed, dict):
        detail = parsed.get("errors") or parsed.get("error") or parsed.get("message") or parsed
        if isinstance(detail, list):
            detail = "; ".join(map(str, detail))
    reason = f"{what} answered HTTP {status}" + (f": {detail}" if detail else "") + (f" ({hint})" if hint else "")
    raise _Failed(reason, status)


def send_slack(ch, ctx, res):
    payload = slack_payload(ctx)
    res["payload"] = payload
    if ctx["check_mode"]:
        return
    status, parsed = _http(ch, ctx, "POST", ch["url"], payload)
    res["http_status"] = status
    _expect(status, parsed, (200,), "the Slack webhook", {404: "is the webhook URL right?", 403: "webhook revoked?"})


def send_webhook(ch, ctx, res):
    payload = webhook_payload(ctx)
    res["payload"] = payload
    if ctx["check_mode"]:
        return
    status, parsed = _http(ch, ctx, ch.get("method") or "POST", ch["url"], payload)
    res["http_status"] = status
    _expect(status, parsed, range(200, 300), "the webhook", {401: "check its headers", 403: "check its headers"})


def send_pagerduty(ch, ctx, res):
    event = pagerduty_event(ctx, ch["routing_key"])
    res["dedup_key"] = ctx["dedup_key"]
    res["payload"] = {k: v for k, v in event.items() if k != "routing_key"}
    if ctx["check_mode"]:
        return
    status, parsed = _http(ch, ctx, "POST", ch.get("url") or DEFAULT_URLS["pagerduty"], event)
    res["http_status"] = status
    hints = {400: "check routing_key and the event", 429: "rate limited: retry later"}
    _expect(status, parsed, (200, 202), "PagerDuty", hints)
    if isinstance(parsed, dict) and parsed.get("dedup_key"):
        res["dedup_key"] = parsed["dedup_key"]


def send_statuspage(ch, ctx, res):
    method, path, body = statuspage_request(ctx, ch)
    res["payload"] = body
    res["incident_id"] = ctx.get("statuspage_incident_id")
    if ctx["check_mode"]:
        return
    base = (ch.get("url") or DEFAULT_URLS["statuspage"]).rstrip("/")
    status, parsed = _http(ch, ctx, method, base + path, body, {"Authorization": f"OAuth {ch['api_key']}"})
    res["http_status"] = status
    hints = {401: "check api_key", 403: "the API key may not write to this page", 404: "check page_id"}
    _expect(status, parsed, (200, 201), "the status page", hints)
    if isinstance(parsed, dict) and parsed.get("id"):
        res["incident_id"] = parsed["id"]


def send_email(ch, ctx, res):
    recipients = list(dict.fromkeys([*ctx["routing"]["recipients"], *(ch.get("to") or [])]))
    res["recipients"] = recipients
    if not recipients:
        raise _Failed("no recipients: the routed contacts have no email and the channel has no 'to'", None)
    msg = email_message(ctx, ch, recipients)
    res["payload"] = {"from": msg["From"], "to": recipients, "subject": msg["Subject"], "body": msg.get_content()}
    if ctx["check_mode"]:
        return
    host, port, security = ch["smtp_host"], ch.get("smtp_port") or 25, ch.get("smtp_security") or "starttls"
    where = f"SMTP server {host}:{port}"
    try:
        if security == "ssl":
            smtp = smtplib.SMTP_SSL(host, port, timeout=ctx["timeout"], context=_tls(ctx))
        else:
            smtp = smtplib.SMTP(host, port, timeout=ctx["timeout"])
        with smtp:
            if security == "starttls":
                smtp.starttls(context=_tls(ctx))
            if ch.get("smtp_user"):
                smtp.login(ch["smtp_user"], ch.get("smtp_password") or "")
            refused = smtp.send_message(msg)
    except smtplib.SMTPNotSupportedError:
        raise _Failed(
            f"{where} does not offer STARTTLS: use smtp_security=ssl, or none for a plain relay", None
        ) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise _Failed(
            f"{where} refused the login of {ch['smtp_user']} ({exc.smtp_code}): check smtp_user and smtp_password", None
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise _Failed(f"{where} refused every recipient: {', '.join(exc.recipients)}", None) from None
    except smtplib.SMTPException as exc:
        raise _Failed(f"{where}: {type(exc).__name__}: {exc}", None) from None
    except (OSError, ssl.SSLError) as exc:
        raise _Failed(f"cannot reach {where} ({exc.strerror or exc})", None) from None
    if refused:
        res["refused"] = sorted(refused)
        raise _Failed(f"{where} refused some recipients: {', '.join(sorted(refused))}", None)


def _tls(ctx):
    context = ssl.create_default_context()
    if not ctx["validate_certs"]:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


SENDERS = {
    "slack": send_slack,
    "webhook": send_webhook,
    "pagerduty": send_pagerduty,
    "statuspage": send_statuspage,
    "email": send_email,
}


def deliver(ch, ctx):
    """Send (or in check mode, plan) one channel's message; the channel result never carries a secret."""
    res = dict(name=ch["name"], type=ch["type"], status="skipped", error=None, http_status=None)
    if ch["name"] not in ctx["routing"]["channels"]:
        res["error"] = f"not routed for {ctx['severity']} by escalation"
        return res
    problem = channel_problem(ch, ctx)
    start = time.monotonic()
    try:
        if problem:
            raise _Failed(problem, None)
        SENDERS[ch["type"]](ch, ctx, res)
        res["status"] = "would_send" if ctx["check_mode"] else "sent"
    except _Failed as exc:
        res.update(status="failed", error=exc.reason)
    except Exception as exc:  # one broken channel must not hide what the others did
        res.update(status="failed", error=f"unexpected error: {type(exc).__name__}: {exc}")
    res["elapsed_ms"] = round((time.monotonic() - start) * 1000, 1)
    if not ctx["check_mode"]:
        res.pop("payload", None)
    secrets = channel_secrets(ch)
    return json.loads(scrub(json.dumps(res), [json.dumps(s)[1:-1] for s in secrets]))


def now_iso():
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
