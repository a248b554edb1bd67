"""incidentctl watch on a lab, for the tests and the benchmark: start it, read its journal, stop it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from incidentctl import supervise
from incidentctl.record import Incident
from support import wait_for

WATCH_PORT_OFFSET = 450  # free in a lab's range (services 0..444, pods 500..999)


class Watch:
    """`incidentctl watch` as an operator starts it, with the lab's Alertmanager posting to it."""

    def __init__(self, lab, incidents: Path, inventory: str = "lab", token: str = "", route_lab: bool = True, args=()):
        self.lab, self.root, self.inventory, self.token, self.args = lab, incidents, inventory, token, list(args)
        self.port = lab.cfg.port_base + WATCH_PORT_OFFSET
        self.url = f"http://127.0.0.1:{self.port}/alerts"
        self.route_lab = route_lab
        self.proc: subprocess.Popen | None = None
        self.output = incidents.parent / f"watch-{incidents.name}.out"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "INCIDENTLAB_DIR": str(self.lab.cfg.lab_dir),
            "INCIDENTCTL_INCIDENTS_DIR": str(self.root),
            "INCIDENTCTL_WATCH_TOKEN": self.token,
        }

    def __enter__(self) -> Watch:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.route_lab:
            self.lab.set_alert_webhook(self.url, self.token or None)
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "incidentctl",
                    "watch",
                    "-i",
                    self.inventory,
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: self.journal("watching") or self.proc.poll() is not None, 120, "the watcher to serve")
        assert self.proc.poll() is None, self.text()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        if self.route_lab:
            self.lab.set_alert_webhook(None)

    def stop(self) -> list[int]:
        """SIGTERM, as systemd or Ctrl-C would; returns the processes it had (all gone by then)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        tree = supervise.descendants(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        return tree

    def text(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def journal(self, outcome: str | None = None) -> list[dict]:
        path = self.root / ".watch" / "journal.jsonl"
        try:
            lines = path.read_text().splitlines()
        except OSError:
            return []
        entries = []
        for line in lines:
            try:
                entries.append(json.loads(line))
            except ValueError:  # the watcher is writing that line right now
                continue
        return [e for e in entries if outcome is None or e.get("outcome") == outcome]

    def incidents(self) -> list[Incident]:
        return Incident.all(self.root)

    def finished(self, incident: str) -> dict | None:
        return next((e for e in self.journal("finished") if e["incident"] == incident), None)

    def post(self, body: bytes, token: str | None = None) -> tuple[int, str]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


def alert_path(lab, watch: Watch, alertname: str) -> str:
    """Where an alert is on its way to the journal: Prometheus, Alertmanager, the rulebook, the watcher (for a
    failure message: which hop held it)."""
    from incidentlab import monitoring

    lines = []
    for what, url in (
        ("prometheus", lab.cfg.url("prometheus", f"/api/v1/query?query=ALERTS{{alertname=%22{alertname}%22}}")),
        ("alertmanager", lab.cfg.url("alertmanager", f"/api/v2/alerts?filter=alertname%3D%22{alertname}%22")),
    ):
        try:
            lines.append(f"{what}: {json.dumps(monitoring.http_json(url, timeout=5))[:1500]}")
        except (OSError, ValueError) as exc:
            lines.append(f"{what}: {exc}")
    log = watch.root / ".watch" / "rulebook.log"
    accepted = [ln for ln in (log.read_text(errors="replace") if log.exists() else "").splitlines() if "accepted" in ln]
    lines.append("rulebook accepted: " + " | ".join(accepted[-6:]))
    lines.append("journal tail: " + json.dumps(watch.journal()[-6:])[:2000])
    lines.append("watch output tail: " + watch.text()[-2000:])
    return "\n".join(lines)


def alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def global_write(lab) -> int:
    """A real write through the global entry point, as the application's users make it."""
    req = urllib.request.Request(
        lab.cfg.url("lb-global", "/order-service/api/records"),
        data=b'{"source": "watch-test"}',
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def alertmanager_delivery(*alerts: dict) -> bytes:
    return json.dumps(
        {"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "test", "alerts": list(alerts)}
    ).encode()


def make_alert(name: str, status: str = "firing", fingerprint: str = "f0", **labels) -> dict:
    return {
        "status": status,
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": f"{name} from the test"},
        "startsAt": "2026-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    }
