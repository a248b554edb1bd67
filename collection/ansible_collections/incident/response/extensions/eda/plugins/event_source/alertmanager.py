"""Alertmanager's webhook as an ansible-rulebook event source: one event per alert, validated."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from typing import Any

from aiohttp import web

DOCUMENTATION = r"""
---
short_description: Receive Alertmanager's webhook notifications, one event per alert
description:
  - An ansible-rulebook event source that serves the webhook Alertmanager's C(webhook_configs) post to.
  - Every delivery is validated as Alertmanager's webhook payload version 4 before anything is queued. A
    delivery that is not (not JSON, another version, an alert without status, labels or alertname, a body over
    O(max_body_bytes), a missing or wrong bearer token) is answered with a 4xx status and one log line naming
    the reason, and the source keeps serving.
  - A valid delivery becomes one event per alert, in the delivery's order, answered with 202.
  - Each event carries C(alert) (C(status), C(alertname), C(labels), C(annotations), C(startsAt), C(endsAt),
    C(fingerprint), C(generatorURL), and the delivery's C(groupKey), C(receiver) and C(externalURL)) and
    C(delivery) (C(received_at) as seconds since the epoch, the alert's C(index) and the delivery's C(count)).
  - C(GET /) answers C(up), for health checks.
options:
  host:
    description:
      - The address to listen on. C(0.0.0.0) listens on every interface.
    type: str
    default: 127.0.0.1
  port:
    description:
      - The TCP port to listen on.
    type: int
    default: 5050
  path:
    description:
      - The URL path Alertmanager posts to; a post to another path is answered with 404.
    type: str
    default: /alerts
  token:
    description:
      - When set, every delivery must carry C(Authorization: Bearer <token>), as Alertmanager sends it with
        C(http_config.authorization.credentials); otherwise it is answered with 401. The token is never logged.
    type: str
  max_body_bytes:
    description:
      - The largest body accepted; a larger one is answered with 413.
    type: int
    default: 1048576
  max_alerts:
    description:
      - The most alerts one delivery may carry (Alertmanager's C(max_alerts) truncates before that).
    type: int
    default: 1000
"""

EXAMPLES = r"""
- name: Respond to Alertmanager
  hosts: all
  sources:
    - incident.response.alertmanager:
        host: 127.0.0.1
        port: 5050
        token: "{{ alertmanager_webhook_token }}"
  rules:
    - name: A database went down
      condition: event.alert.alertname == "DatabaseDown" and event.alert.status == "firing"
      action:
        debug:
          msg: "{{ event.alert.labels.db }} is down"
"""

LOG = logging.getLogger("incident.response.alertmanager")
WEBHOOK_VERSION = "4"
STATUSES = ("firing", "resolved")


class BadDelivery(Exception):
    """A delivery that is not Alertmanager's webhook payload: the reason, answered with ``status``."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.status = status


def _strings(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise BadDelivery(f"{what} is not an object")
    for key, item in value.items():
        if not isinstance(item, str):
            raise BadDelivery(f"{what}.{key} is not a string")
    return value


def parse_delivery(payload: Any, max_alerts: int = 1000) -> list[dict]:
    """The alerts of one webhook delivery (version 4), each with what the rules need; BadDelivery otherwise.

    All or nothing: a delivery with one broken alert is refused whole, so that a rule never sees half a group.
    """
    if not isinstance(payload, dict):
        raise BadDelivery("the body is not a JSON object")
    version = payload.get("version")
    if version != WEBHOOK_VERSION:
        raise BadDelivery(f"webhook version {version!r} is not supported (Alertmanager sends version '4')")
    group_key = payload.get("groupKey")
    if not isinstance(group_key, str) or not group_key:
        raise BadDelivery("groupKey is missing")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise BadDelivery("alerts is missing or empty")
    if len(alerts) > max_alerts:
        raise BadDelivery(f"{len(alerts)} alerts in one delivery, more than max_alerts {max_alerts}", 413)
    out = []
    for i, alert in enumerate(alerts):
        where = f"alerts[{i}]"
        if not isinstance(alert, dict):
            raise BadDelivery(f"{where} is not an object")
        status = alert.get("status")
        if status not in STATUSES:
            raise BadDelivery(f"{where}.status is {status!r}, not firing or resolved")
        labels = _strings(alert.get("labels"), f"{where}.labels")
        if not labels.get("alertname"):
            raise BadDelivery(f"{where}.labels has no alertname")
        annotations = _strings(alert.get("annotations") or {}, f"{where}.annotations")
        for key in ("startsAt", "fingerprint"):
            if not isinstance(alert.get(key), str) or not alert[key]:
                raise BadDelivery(f"{where}.{key} is missing")
        out.append(
            {
                "status": status,
                "alertname": labels["alertname"],
                "labels": labels,
                "annotations": annotations,
                "startsAt": alert["startsAt"],
                "endsAt": alert.get("endsAt") if isinstance(alert.get("endsAt"), str) else "",
                "fingerprint": alert["fingerprint"],
                "generatorURL": alert.get("generatorURL") if isinstance(alert.get("generatorURL"), str) else "",
                "groupKey": group_key,
                "receiver": payload.get("receiver") if isinstance(payload.get("receiver"), str) else "",
                "externalURL": payload.get("externalURL") if isinstance(payload.get("externalURL"), str) else "",
            }
        )
    return out


def authorized(header: str | None, token: str | None) -> bool:
    if not token:
        return True
    scheme, _sep, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def make_app(queue: asyncio.Queue, args: dict[str, Any]) -> web.Application:
    path = str(args.get("path") or "/alerts")
    token = args.get("token") or None
    max_body = int(args.get("max_body_bytes") or 1048576)
    max_alerts = int(args.get("max_alerts") or 1000)

    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="up")

    async def receive(request: web.Request) -> web.Response:
        received = time.time()
        peer = request.remote or "?"
        try:
            if not authorized(request.headers.get("Authorization"), token):
                raise BadDelivery("missing or wrong bearer token", 401)
            if request.content_length is not None and request.content_length > max_body:
                raise BadDelivery(f"body of {request.content_length} bytes is over max_body_bytes {max_body}", 413)
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise BadDelivery(f"body is over max_body_bytes {max_body}", 413) from None
            try:
                payload = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise BadDelivery("the body is not JSON") from None
            alerts = parse_delivery(payload, max_alerts)
        except BadDelivery as exc:
            LOG.warning("refused a delivery from %s with %d: %s", peer, exc.status, exc)
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            return web.json_response({"error": str(exc)}, status=exc.status, headers=headers)
        for i, alert in enumerate(alerts):
            await queue.put(
                {"alert": alert, "delivery": {"received_at": received, "index": i, "count": len(alerts), "peer": peer}}
            )
        LOG.info("accepted %d alert(s) of group %s from %s", len(alerts), alerts[0]["groupKey"], peer)
        return web.json_response({"accepted": len(alerts)}, status=202)

    # aiohttp answers a larger body with 413 itself; the limit is ours, with one byte to spare for the check.
    app = web.Application(client_max_size=max_body)
    app.router.add_get("/", health)
    app.router.add_post(path, receive)
    return app


async def main(queue: asyncio.Queue, args: dict[str, Any]) -> None:
    """Serve the webhook until the rulebook stops the source."""
    app = make_app(queue, args)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, str(args.get("host") or "127.0.0.1"), int(args.get("port") or 5050))
    await site.start()
    LOG.info("alertmanager source listening on %s:%s%s", args.get("host"), args.get("port"), args.get("path"))
    try:
        await asyncio.Future()
    finally:
        await runner.cleanup()


if __name__ == "__main__":

    class _PrintQueue(asyncio.Queue):
        async def put(self, item):
            print(json.dumps(item))

    asyncio.run(main(_PrintQueue(), {}))
