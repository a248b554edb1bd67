"""The Alertmanager event source: valid deliveries become one event per alert; every malformed one gets a
clear 4xx and a log line, and the source keeps serving (aiohttp's test client against the real app)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import urllib.request

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ansible_collections.incident.response.extensions.eda.plugins.event_source import alertmanager as source

TOKEN = "t0ken-for-tests"


def delivery(*alerts: dict, **overrides) -> dict:
    doc = {
        "version": "4",
        "groupKey": '{}:{alertname="DatabaseDown"}',
        "status": "firing",
        "receiver": "lab-webhook",
        "groupLabels": {"alertname": "DatabaseDown"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "truncatedAlerts": 0,
        "alerts": list(alerts) or [alert()],
    }
    doc.update(overrides)
    return doc


def alert(name: str = "DatabaseDown", status: str = "firing", **labels) -> dict:
    return {
        "status": status,
        "labels": {"alertname": name, "db": "db-primary", **labels},
        "annotations": {"summary": f"{name} summary"},
        "startsAt": "2026-01-01T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph",
        "fingerprint": f"fp-{name}-{labels.get('n', 0)}",
    }


async def _exchange(args: dict, requests: list[tuple[dict, bytes]]) -> tuple[list, list]:
    queue: asyncio.Queue = asyncio.Queue()
    app = source.make_app(queue, args)
    async with TestClient(TestServer(app)) as client:
        answers = []
        for headers, body in requests:
            resp = await client.post(args.get("path", "/alerts"), data=body, headers=headers)
            answers.append((resp.status, await resp.json(content_type=None)))
        health = await client.get("/")
        answers.append((health.status, await health.text()))
    events = []
    while not queue.empty():
        events.append(queue.get_nowait())
    return answers, events


def exchange(requests: list[tuple[dict, bytes]], **args) -> tuple[list, list]:
    return asyncio.run(_exchange(args, requests))


def body(doc) -> bytes:
    return json.dumps(doc).encode()


def test_a_delivery_becomes_one_event_per_alert_with_what_the_rules_need():
    doc = delivery(alert("DatabaseDown"), alert("ServiceDown", n="1"), alert("ServiceDown", "resolved", n="2"))
    answers, events = exchange([({}, body(doc))])
    assert answers[0] == (202, {"accepted": 3})
    assert [e["alert"]["alertname"] for e in events] == ["DatabaseDown", "ServiceDown", "ServiceDown"]
    first = events[0]["alert"]
    assert first["status"] == "firing" and first["labels"]["db"] == "db-primary"
    assert first["annotations"] == {"summary": "DatabaseDown summary"}
    assert first["startsAt"] == "2026-01-01T00:00:00Z" and first["fingerprint"] == "fp-DatabaseDown-0"
    assert first["groupKey"] == doc["groupKey"] and first["receiver"] == "lab-webhook"
    assert events[2]["alert"]["status"] == "resolved"
    assert [e["delivery"]["index"] for e in events] == [0, 1, 2]
    assert all(e["delivery"]["count"] == 3 and e["delivery"]["received_at"] > 0 for e in events)


def _malformed() -> list[tuple[str, dict, bytes, int, str]]:
    good = delivery()
    no_status = alert()
    del no_status["status"]
    no_labels = alert()
    del no_labels["labels"]
    no_name = alert()
    del no_name["labels"]["alertname"]
    no_fingerprint = alert()
    del no_fingerprint["fingerprint"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    return [
        ("not JSON", auth, b"{this is not json", 400, "not JSON"),
        ("a JSON list", auth, body([good]), 400, "not a JSON object"),
        ("wrong version", auth, body(delivery(version="3")), 400, "version '3' is not supported"),
        ("no version", auth, body({k: v for k, v in good.items() if k != "version"}), 400, "version None"),
        ("no groupKey", auth, body(delivery(groupKey="")), 400, "groupKey is missing"),
        ("no alerts", auth, body(delivery(alerts=[])), 400, "alerts is missing or empty"),
        ("alert without status", auth, body(delivery(no_status)), 400, "alerts[0].status is None"),
        ("alert with a bad status", auth, body(delivery(alert(status="pending"))), 400, "'pending'"),
        ("alert without labels", auth, body(delivery(no_labels)), 400, "alerts[0].labels is not an object"),
        ("alert without alertname", auth, body(delivery(alert(), no_name)), 400, "alerts[1].labels has no alertname"),
        ("label that is not a string", auth, body(delivery(alert(n=3))), 400, "alerts[0].labels.n is not a string"),
        ("alert without fingerprint", auth, body(delivery(no_fingerprint)), 400, "fingerprint is missing"),
        ("no token", {}, body(good), 401, "bearer token"),
        ("wrong token", {"Authorization": "Bearer nope"}, body(good), 401, "bearer token"),
        ("basic instead of bearer", {"Authorization": f"Basic {TOKEN}"}, body(good), 401, "bearer token"),
        ("a huge body", auth, b'{"pad": "' + b"x" * 70_000 + b'"}', 413, "max_body_bytes"),
        ("too many alerts", auth, body(delivery(*[alert(n=str(i)) for i in range(6)])), 413, "max_alerts 5"),
    ]


@pytest.mark.parametrize(("case", "headers", "payload", "status", "says"), _malformed(), ids=lambda v: v)
def test_a_malformed_delivery_gets_a_clear_4xx_and_a_log_line_and_the_source_keeps_serving(
    case, headers, payload, status, says, caplog
):
    caplog.set_level(logging.WARNING, logger=source.LOG.name)
    good = ({"Authorization": f"Bearer {TOKEN}"}, body(delivery()))
    answers, events = exchange([(headers, payload), good], token=TOKEN, max_body_bytes=65536, max_alerts=5)
    code, doc = answers[0]
    assert code == status, (case, doc)
    assert says in doc["error"], (case, doc)
    # one line that names the reason, and never the token
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and says in lines[0] and TOKEN not in lines[0], lines
    # the refused delivery queued nothing; the next good one is served as usual
    assert answers[1] == (202, {"accepted": 1})
    assert [e["alert"]["alertname"] for e in events] == ["DatabaseDown"]
    assert answers[2] == (200, "up")


def test_a_post_to_another_path_is_not_found_and_nothing_is_queued():
    queue: asyncio.Queue = asyncio.Queue()

    async def go():
        async with TestClient(TestServer(source.make_app(queue, {"path": "/alerts"}))) as client:
            resp = await client.post("/other", data=body(delivery()))
            return resp.status

    assert asyncio.run(go()) == 404
    assert queue.empty()


def test_without_a_token_option_no_authorization_is_needed():
    answers, events = exchange([({}, body(delivery()))])
    assert answers[0][0] == 202 and len(events) == 1


def test_main_serves_until_cancelled():
    """The entry point ansible-rulebook calls: a real socket, one delivery, then the task is cancelled."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def go():
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(source.main(queue, {"host": "127.0.0.1", "port": port}))
        loop = asyncio.get_running_loop()

        def post():
            req = urllib.request.Request(f"http://127.0.0.1:{port}/alerts", data=body(delivery()), method="POST")
            for _attempt in range(100):
                try:
                    with urllib.request.urlopen(req, timeout=2) as resp:
                        return resp.status
                except OSError:  # not listening yet: poll, with the loop's bound as the deadline
                    time.sleep(0.05)
            return None

        status = await loop.run_in_executor(None, post)
        event = await asyncio.wait_for(queue.get(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return status, event

    status, event = asyncio.run(go())
    assert status == 202 and event["alert"]["alertname"] == "DatabaseDown"
