"""Notification sinks: they stand in for Slack, PagerDuty, webhooks, a status page and SMTP.

``python -m incidentlab.sinks --lab-dir DIR`` runs both in one process:

* HTTP on the ``sink-http`` port records every request (method, path, query, headers,
  body) as one JSON line in ``sinks/http.jsonl`` and answers like the service it
  stands in for:
    - ``POST /v2/enqueue``                          PagerDuty Events API v2 (202, dedup_key)
    - ``POST /v1/pages/<page>/incidents``            Statuspage: create an incident (201)
    - ``PATCH /v1/pages/<page>/incidents/<id>``      Statuspage: update it (200)
    - ``/_sink/status/<code>/...``                   answers with <code>, to test error paths
    - anything else (Slack webhooks, generic JSON webhooks, Alertmanager): 200 ``ok``
* SMTP (aiosmtpd) on the ``sink-smtp`` port records every mail in ``sinks/mail.jsonl``;
  AUTH is accepted with any password and only the user name is recorded.

Readers use :func:`read_requests` and :func:`read_mails`.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .config import HOST, LabConfig

PD_ACTIONS = {"trigger", "acknowledge", "resolve"}


class Recorder:
    """Append-only JSON lines, flushed per record so readers never wait."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
        self.lock = threading.Lock()
        with open(path, encoding="utf-8") as existing:
            self.seq = sum(1 for _ in existing)

    def add(self, rec: dict) -> int:
        with self.lock:
            self.seq += 1
            rec = {"seq": self.seq, "ts": time.time(), **rec}
            self.fh.write(json.dumps(rec) + "\n")
            self.fh.flush()
            return self.seq


def http_path(cfg: LabConfig) -> Path:
    return cfg.path("sinks", "http.jsonl")


def mail_path(cfg: LabConfig) -> Path:
    return cfg.path("sinks", "mail.jsonl")


def _read(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line being written right now
    return out


def read_requests(cfg: LabConfig, path_prefix: str = "", since_seq: int = 0) -> list[dict]:
    return [r for r in _read(http_path(cfg)) if r["path"].startswith(path_prefix) and r["seq"] > since_seq]


def read_mails(cfg: LabConfig, since_seq: int = 0) -> list[dict]:
    return [m for m in _read(mail_path(cfg)) if m["seq"] > since_seq]


def make_http_handler(recorder: Recorder):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _reply(self, code: int, body: object) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            ctype = "text/plain" if isinstance(body, str) else "application/json"
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/_sink/health":  # liveness probe of the lab itself: not recorded
                self._reply(200, "ok")
                return
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            rec = {
                "method": self.command,
                "path": url.path,
                "query": {k: v[0] if len(v) == 1 else v for k, v in parse_qs(url.query).items()},
                "headers": dict(self.headers.items()),
                "body": raw,
                "json": parsed,
            }
            code, body = respond(self.command, url.path, rec["headers"], parsed)
            rec["status"] = code
            recorder.add(rec)
            self._reply(code, body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler


def respond(method: str, path: str, headers: dict, body) -> tuple[int, object]:
    """What the stood-in service would answer."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["_sink", "status"] and len(parts) >= 3 and parts[2].isdigit():
        return int(parts[2]), {"error": f"sink asked to answer {parts[2]}"}
    if path == "/v2/enqueue" and method == "POST":
        errors = []
        if not isinstance(body, dict):
            errors.append("body must be a JSON object")
        else:
            if not body.get("routing_key"):
                errors.append("'routing_key' is missing or blank")
            if body.get("event_action") not in PD_ACTIONS:
                errors.append("'event_action' must be trigger, acknowledge or resolve")
            if body.get("event_action") == "trigger" and not (body.get("payload") or {}).get("summary"):
                errors.append("'payload.summary' is missing or blank")
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        return 202, {
            "status": "success",
            "message": "Event processed",
            "dedup_key": body.get("dedup_key") or uuid.uuid4().hex,
        }
    if len(parts) >= 4 and parts[0] == "v1" and parts[1] == "pages" and parts[3] == "incidents":
        if not headers.get("Authorization", "").startswith("OAuth "):
            return 401, {"error": "missing 'Authorization: OAuth <api key>' header"}
        incident = (body or {}).get("incident", {}) if isinstance(body, dict) else {}
        if method == "POST" and len(parts) == 4:
            return 201, {"id": uuid.uuid4().hex[:12], "page_id": parts[2], **incident}
        if method in ("PATCH", "PUT") and len(parts) == 5:
            return 200, {"id": parts[4], "page_id": parts[2], **incident}
        return 404, {"error": "not found"}
    return 200, "ok"


class MailHandler:
    def __init__(self, recorder: Recorder):
        self.recorder = recorder

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain", "html"))
        self.recorder.add(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "subject": str(msg.get("Subject", "")),
                "headers": {k: str(v) for k, v in msg.items()},
                "body": body.get_content() if body is not None else "",
                "auth_user": getattr(session, "auth_data", None) and session.auth_data.login.decode(),
            }
        )
        return "250 Message accepted for delivery"


def _accept_any(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult

    # Keep only the login: the password never reaches the record.
    return AuthResult(success=True, auth_data=type("Login", (), {"login": auth_data.login})())


def main() -> None:
    from aiosmtpd.controller import Controller

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lab-dir", type=Path, required=True)
    args = parser.parse_args()
    cfg = LabConfig.resolve(args.lab_dir)
    smtp = Controller(
        MailHandler(Recorder(mail_path(cfg))),
        hostname=HOST,
        port=cfg.ports["sink-smtp"],
        auth_require_tls=False,
        auth_required=False,
        authenticator=_accept_any,
        ready_timeout=10,
    )
    smtp.start()
    server = ThreadingHTTPServer((HOST, cfg.ports["sink-http"]), make_http_handler(Recorder(http_path(cfg))))
    server.daemon_threads = True
    try:
        server.serve_forever()
    finally:
        smtp.stop()


if __name__ == "__main__":
    main()
