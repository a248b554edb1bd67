"""Prometheus and Alertmanager for the lab (the Debian packages' binaries).

Prometheus scrapes itself, the database exporter, the services' pods (file_sd targets
that the lab cluster writes to ``prometheus/targets/pods-*.json``) and the cluster's
state metrics (``prometheus/targets/kube-*.json``). Alert rules are the ones the
runbook's triage needs. Alertmanager routes every alert to the HTTP sink at
``/alertmanager``, at once (group_wait 0s), and also to ``incidentctl watch`` when the lab
has an alert webhook (``lab up --alert-webhook URL``, ``lab alert-webhook URL``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from .config import HOST, LabConfig
from .errors import LabError
from .procs import ProcessTable

SCRAPE_INTERVAL = "2s"
SCRAPE_TIMEOUT = "1500ms"  # the exporter answers within ~2 x its per-server timeout even with a server frozen

RULES_FILE = Path(__file__).with_name("data") / "alert_rules.yml"


def write_configs(cfg: LabConfig, webhook: dict | None = None) -> None:
    """``webhook``: {"url": ..., "token": ...} of an extra receiver of every alert (incidentctl watch)."""
    prom = cfg.path("prometheus")
    (prom / "targets").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(RULES_FILE, prom / "rules.yml")

    def file_sd(pattern: str) -> list[dict]:
        return [{"files": [str(prom / "targets" / pattern)], "refresh_interval": "5s"}]

    config = {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
            "scrape_timeout": SCRAPE_TIMEOUT,
        },
        "rule_files": [str(prom / "rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{HOST}:{cfg.ports['alertmanager']}"]}]}]},
        "scrape_configs": [
            {"job_name": "prometheus", "static_configs": [{"targets": [f"{HOST}:{cfg.ports['prometheus']}"]}]},
            {"job_name": "mysql", "static_configs": [{"targets": [f"{HOST}:{cfg.ports['exporter']}"]}]},
            {"job_name": "services", "metrics_path": "/actuator/prometheus", "file_sd_configs": file_sd("pods-*.json")},
            {"job_name": "kube", "file_sd_configs": file_sd("kube-*.json")},
        ],
    }
    (prom / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))

    write_alertmanager_config(cfg, webhook)


def write_alertmanager_config(cfg: LabConfig, webhook: dict | None = None) -> None:
    am = cfg.path("alertmanager")
    am.mkdir(parents=True, exist_ok=True)
    webhooks = [{"url": cfg.url("sink-http", "/alertmanager"), "send_resolved": True}]
    if webhook and webhook.get("url"):
        extra = {"url": webhook["url"], "send_resolved": True}
        if webhook.get("token"):
            token_file = am / "webhook-token"
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(webhook["token"])
            # Alertmanager sends it as `Authorization: Bearer <token>`; the config names only the file.
            extra["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": str(token_file)}}
        webhooks.append(extra)
    am_config = {
        "route": {
            "receiver": "lab-webhook",
            "group_by": ["alertname", "region", "service", "db"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "lab-webhook",
                "webhook_configs": webhooks,
            }
        ],
    }
    (am / "alertmanager.yml").write_text(yaml.safe_dump(am_config, sort_keys=False))


def start(cfg: LabConfig, procs: ProcessTable, webhook: dict | None = None) -> None:
    write_configs(cfg, webhook)
    start_prometheus(cfg, procs)
    start_alertmanager(cfg, procs)


def start_prometheus(cfg: LabConfig, procs: ProcessTable) -> None:
    prom = cfg.path("prometheus")
    procs.start(
        "prometheus",
        [
            "prometheus",
            f"--config.file={prom / 'prometheus.yml'}",
            f"--storage.tsdb.path={cfg.data_root / 'prometheus'}",
            "--storage.tsdb.retention.time=1d",
            f"--web.listen-address={HOST}:{cfg.ports['prometheus']}",
            "--web.enable-lifecycle",
            # Without this an alert that is already firing takes ~44 s to reach Alertmanager.
            "--rules.alert.resend-delay=1s",
        ],
        log_path=cfg.path("logs", "prometheus.log"),
    )


def start_alertmanager(cfg: LabConfig, procs: ProcessTable) -> None:
    am = cfg.path("alertmanager")
    procs.start(
        "alertmanager",
        [
            "prometheus-alertmanager",
            f"--config.file={am / 'alertmanager.yml'}",
            f"--storage.path={cfg.data_root / 'alertmanager'}",
            f"--web.listen-address={HOST}:{cfg.ports['alertmanager']}",
            "--cluster.listen-address=",  # no gossip on every interface
        ],
        log_path=cfg.path("logs", "alertmanager.log"),
    )


def http_json(url: str, timeout: float = 1.0):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError):
        return False


def wait_ready(cfg: LabConfig, procs: ProcessTable, timeout: float = 20) -> None:
    checks = {"prometheus": cfg.url("prometheus", "/-/ready"), "alertmanager": cfg.url("alertmanager", "/-/ready")}
    deadline = time.monotonic() + timeout
    pending = dict(checks)
    while pending:
        for name, url in list(pending.items()):
            rec = procs.get(name)
            if rec is None or not rec.running:
                raise LabError(f"{name} exited during start-up; see {cfg.path('logs', name + '.log')}")
            if http_ok(url, 0.5):
                del pending[name]
        if pending and time.monotonic() > deadline:
            raise LabError(f"{', '.join(pending)} not ready within {timeout:.0f}s; see {cfg.path('logs')}")
        if pending:
            time.sleep(0.1)


def prometheus_summary(cfg: LabConfig) -> tuple[bool, str]:
    try:
        targets = http_json(cfg.url("prometheus", "/api/v1/targets?state=active"))["data"]["activeTargets"]
        alerts = http_json(cfg.url("prometheus", "/api/v1/alerts"))["data"]["alerts"]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        return False, f"not answering ({exc})"
    up = sum(1 for t in targets if t["health"] == "up")
    firing = sorted({a["labels"]["alertname"] for a in alerts if a["state"] == "firing"})
    detail = f"{up}/{len(targets)} targets up, " + (f"firing: {', '.join(firing)}" if firing else "no alerts firing")
    return True, detail


def alertmanager_summary(cfg: LabConfig) -> tuple[bool, str]:
    try:
        alerts = http_json(cfg.url("alertmanager", "/api/v2/alerts"))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, f"not answering ({exc})"
    extra = alert_webhook(cfg)
    return True, f"{len(alerts)} active alert(s), routed to the HTTP sink" + (f" and {extra}" if extra else "")


def alert_webhook(cfg: LabConfig) -> str | None:
    """The extra webhook Alertmanager's config names (incidentctl watch), if any."""
    try:
        config = yaml.safe_load(cfg.path("alertmanager", "alertmanager.yml").read_text())
        hooks = config["receivers"][0]["webhook_configs"]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    return hooks[1]["url"] if len(hooks) > 1 else None


def reload_alertmanager(cfg: LabConfig) -> None:
    req = urllib.request.Request(cfg.url("alertmanager", "/-/reload"), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:
        raise LabError(
            f"alertmanager refused its new configuration: {exc.read().decode(errors='replace')[:200]}"
        ) from None
    except OSError as exc:
        raise LabError(f"alertmanager did not answer its reload ({exc})") from None
