"""Alerts in the incident record: which incident an alert belongs to ("the same problem"), and its trace.

An alert is one firing of one Alertmanager alert: its ``fingerprint`` (the hash of its labels) and its
``startsAt`` (a new firing after a resolution starts again). Routing an alert of a platform (inventory):

1. the same firing is already in an incident that is not closed: a re-send, a restart of Alertmanager,
   or its resolution. It goes there; a re-send adds no timeline line, a change of status does;
2. a resolved alert the record has never seen firing: ignored (logged by the watcher);
3. an incident of the platform is open (being responded to, or waiting for a person), or a response still
   works on it (collecting its evidence after the mitigation): the alert joins it;
4. an incident was mitigated less than ``settle_seconds`` ago and some of its alerts still fire: the alert
   joins it (the late alerts of a failover: error rates while services restart);
5. otherwise a new incident opens, started by this alert.

Every decision is taken under one lock per platform, so a burst of alerts opens one incident. Check-mode
incidents (``watch --check``) take only check-mode alerts, and real ones only real ones.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadInput
from .record import Incident, now

STATUSES = ("firing", "resolved")
DEFAULT_SETTLE_SECONDS = 600


@dataclass(frozen=True)
class Alert:
    status: str
    alertname: str
    labels: dict
    annotations: dict
    starts_at: str
    fingerprint: str
    ends_at: str = ""
    group_key: str = ""
    received_at: float = field(default_factory=now)

    @property
    def key(self) -> str:
        """One firing of one alert."""
        return f"{self.fingerprint}@{self.starts_at}"

    @property
    def name(self) -> str:
        shown = ", ".join(
            f'{k}="{v}"'
            for k, v in sorted(self.labels.items())
            if k not in ("alertname", "severity", "instance", "job")
        )
        return f"{self.alertname}{{{shown}}}"

    @property
    def summary(self) -> str:
        return str(self.annotations.get("summary") or self.annotations.get("description") or "")

    def describe(self) -> str:
        return f"{self.name} {self.status}" + (f": {self.summary}" if self.summary else "")

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "alertname": self.alertname,
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": self.starts_at,
            "endsAt": self.ends_at,
            "fingerprint": self.fingerprint,
            "groupKey": self.group_key,
            "received_at": self.received_at,
        }

    @classmethod
    def from_event(cls, event: object) -> Alert:
        """From the rulebook's event (``{"alert": {...}, "delivery": {...}}``) or a bare alert; BadInput otherwise."""
        if not isinstance(event, dict):
            raise BadInput("an alert must be a JSON object")
        alert = event.get("alert", event)
        delivery = event.get("delivery") or {}
        if not isinstance(alert, dict):
            raise BadInput("the event's alert is not an object")
        status = alert.get("status")
        labels = alert.get("labels")
        if status not in STATUSES:
            raise BadInput(f"alert status {status!r} is not firing or resolved")
        if not isinstance(labels, dict) or not isinstance(labels.get("alertname"), str) or not labels["alertname"]:
            raise BadInput("the alert has no labels.alertname")
        for key in ("startsAt", "fingerprint"):
            if not isinstance(alert.get(key), str) or not alert[key]:
                raise BadInput(f"the alert has no {key}")
        received = delivery.get("received_at") if isinstance(delivery, dict) else None
        return cls(
            status=status,
            alertname=labels["alertname"],
            labels={str(k): str(v) for k, v in labels.items()},
            annotations={str(k): str(v) for k, v in (alert.get("annotations") or {}).items()},
            starts_at=alert["startsAt"],
            fingerprint=alert["fingerprint"],
            ends_at=str(alert.get("endsAt") or ""),
            group_key=str(alert.get("groupKey") or ""),
            received_at=float(received) if isinstance(received, int | float) else now(),
        )


def load(source: str) -> list[Alert]:
    """Alerts from a file (or ``-`` for stdin): one event, a list of events, or JSON lines; BadInput otherwise."""
    import sys

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise BadInput(f"cannot read alerts from {source}: {exc.strerror}") from None
    try:
        doc = json.loads(text)
        events = doc if isinstance(doc, list) else [doc]
    except ValueError:
        try:
            events = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError:
            raise BadInput(f"{source} is not JSON (one alert event, a list of them, or JSON lines)") from None
    if not events:
        raise BadInput(f"{source} holds no alert")
    return [Alert.from_event(e) for e in events]


@dataclass
class Routed:
    """Where an alert went: ``attached`` (to ``incident``), ``opened`` (a new ``incident``) or ``ignored``."""

    outcome: str
    alert: Alert
    incident: Incident | None = None
    why: str = ""
    changed: bool = True  # False for a re-send of a known state


@contextlib.contextmanager
def platform_alert_lock(root: Path, inventory: str) -> Iterator[None]:
    key = hashlib.sha256(inventory.encode()).hexdigest()[:16]
    path = root / ".platform-locks" / f"{key}.alerts.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def firing(incident: Incident) -> list[dict]:
    return [a for a in (incident.data.get("alerts") or {}).values() if a.get("status") == "firing"]


def home(
    incidents: list[Incident], alert: Alert, settle_seconds: float, at: float | None = None
) -> tuple[Incident | None, str]:
    """The incident an alert belongs to, and why; (None, reason) when it opens a new one or is ignored."""
    at = now() if at is None else at
    newest_first = sorted(incidents, key=lambda i: i.data["opened_at"], reverse=True)
    for inc in newest_first:
        if alert.key in (inc.data.get("alerts") or {}):
            return inc, "the same alert"
    if alert.status == "resolved":
        return None, "a resolved alert of no incident"
    for inc in newest_first:
        if inc.data["status"] == "open":
            return inc, "the incident open on this platform"
        if (inc.data.get("run") or {}).get("state") == "running":
            return inc, "the incident a response is still working on"
    for inc in newest_first:
        mitigated = inc.data.get("mitigated_at")
        if inc.data["status"] == "mitigated" and mitigated and at - mitigated < settle_seconds and firing(inc):
            return inc, f"mitigated {at - mitigated:.0f}s ago with alerts still firing"
    return None, "no incident open on this platform"


def route(
    root: Path,
    inventory: str,
    alert: Alert,
    *,
    check: bool = False,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    operator: str | None = None,
    open_new: bool = True,
) -> Routed:
    """Attach the alert to its incident, or open one for it (when ``open_new``), under the platform's alert lock."""
    with platform_alert_lock(root, inventory):
        incidents = [
            i
            for i in Incident.all(root)
            if i.data.get("inventory") == inventory
            and bool(i.data.get("check_mode")) == check
            and i.data["status"] != "closed"
        ]
        inc, why = home(incidents, alert, settle_seconds)
        if inc is not None:
            return Routed("attached", alert, inc, why, attach(inc, alert))
        if alert.status == "resolved" or not open_new:
            return Routed("ignored", alert, None, why, False)
        inc = Incident.create(root, inventory=inventory, check=check, operator=operator)
        inc.update(started_by={"alert": alert.key, "name": alert.name, "at": alert.received_at, "by": "alert"})
        attach(inc, alert)
        return Routed("opened", alert, inc, why)


def attach(incident: Incident, alert: Alert) -> bool:
    """Keep the alert in incident.json (``alerts``) and, for a new alert or a new status, a timeline line.

    True when it changed what the record says (a re-send of the same state changes nothing but counters)."""
    result = {}

    def change(data: dict) -> None:
        alerts = data.setdefault("alerts", {})
        known = alerts.get(alert.key)
        # A firing that was resolved cannot fire again (a new firing has a new startsAt): a late re-send.
        status = "resolved" if known and known.get("status") == "resolved" else alert.status
        entry = {
            **(known or {"first_seen": alert.received_at, "deliveries": 0}),
            **alert.as_dict(),
            "status": status,
            "name": alert.name,
            "last_seen": alert.received_at,
        }
        entry["deliveries"] = int(entry.get("deliveries") or 0) + 1
        if status == "resolved":
            entry["resolved_seen"] = (known or {}).get("resolved_seen") or alert.received_at
        alerts[alert.key] = entry
        result["new"] = known is None or known.get("status") != status

    incident.mutate(change)
    if result["new"]:
        incident.log(
            f"alert {alert.status}",
            alert.describe(),
            alert={"name": alert.name, "key": alert.key, **alert.as_dict()},
        )
    return result["new"]
