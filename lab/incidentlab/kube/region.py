"""Bringing the lab's cluster up and down: per region an emulator and an nginx LB, plus the
global entry point and the kubeconfig (contexts ``primary`` and ``secondary``).

Every process goes through the lab's ProcessTable (own session, lab marker), so
``lab down`` and ``ProcessTable.sweep`` find them and, through the emulator's process
group, its pods.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from ..config import HOST, LabConfig, port_free
from ..errors import LabError
from ..procs import ProcessTable
from . import faults, lb
from .manifests import DbParams
from .server import REGIONS

NAMESPACE = "microservices"


def process_table(cfg: LabConfig) -> ProcessTable:
    return ProcessTable(cfg.path("run"), cfg.lab_id)


def kubeconfig_path(cfg: LabConfig) -> Path:
    return cfg.path("kubeconfig")


def write_kubeconfig(cfg: LabConfig, regions: tuple[str, ...] = REGIONS) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": r, "cluster": {"server": cfg.url(f"kube-{r}")}} for r in regions],
        "users": [{"name": "lab-admin", "user": {}}],
        "contexts": [
            {"name": r, "context": {"cluster": r, "user": "lab-admin", "namespace": NAMESPACE}} for r in regions
        ],
        "current-context": regions[0],
    }
    path = kubeconfig_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".kubeconfig.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False)
    tmp.replace(path)
    return path


def _require_free(cfg: LabConfig, names: list[str]) -> None:
    for name in names:
        if not port_free(cfg.ports[name]):
            raise LabError(
                f"port {cfg.ports[name]} for {name} is taken: stop what uses it (is another lab running?) "
                "or choose another port base"
            )


def start_region(
    cfg: LabConfig,
    table: ProcessTable,
    region: str,
    db: DbParams,
    hpa_period: float | None = None,
    progress_deadline: int = 30,
) -> None:
    _require_free(cfg, [f"kube-{region}", f"lb-{region}"])
    lb.write_regional(cfg, region)
    table.start(f"lb-{region}", lb.nginx_argv(cfg, region), log_path=cfg.path("logs", f"lb-{region}.log"))
    env = dict(os.environ)
    env.update(
        {
            "INCIDENTLAB_DB_HOST": db.host,
            "INCIDENTLAB_DB_PORT": str(db.port),
            "INCIDENTLAB_DB_NAME": db.name,
            "INCIDENTLAB_DB_USER": db.user,
            "INCIDENTLAB_DB_PASSWORD": db.password,
            "PYTHONUNBUFFERED": "1",
        }
    )
    argv = [
        sys.executable,
        "-m",
        "incidentlab.kube",
        "serve",
        "--region",
        region,
        "--lab-dir",
        str(cfg.lab_dir),
        "--port-base",
        str(cfg.port_base),
        "--progress-deadline",
        str(progress_deadline),
    ]
    if hpa_period:
        argv += ["--hpa-period", str(hpa_period)]
    table.start(f"kube-{region}", argv, log_path=cfg.path("logs", f"kube-{region}.log"), env=env)


def start_global_lb(cfg: LabConfig, table: ProcessTable, region: str = "primary") -> None:
    _require_free(cfg, ["lb-global"])
    lb.write_global(cfg, region)
    table.start("lb-global", lb.nginx_argv(cfg, "global"), log_path=cfg.path("logs", "lb-global.log"))


def start(
    cfg: LabConfig,
    table: ProcessTable,
    db: DbParams,
    regions: tuple[str, ...] = REGIONS,
    hpa_period: float | None = None,
    progress_deadline: int = 30,
) -> None:
    """Start both regions and the global LB; returns once every API answers (pods may still be starting)."""
    cfg.ensure_dir()
    write_kubeconfig(cfg, regions)
    for region in regions:
        start_region(cfg, table, region, db, hpa_period, progress_deadline)
    start_global_lb(cfg, table, regions[0])
    deadline = time.monotonic() + 15
    for region in regions:
        wait_api(cfg, table, region, deadline)


def _get_json(url: str, timeout: float = 2.0) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}
    except (OSError, ValueError):
        return 0, {}


def wait_api(cfg: LabConfig, table: ProcessTable, region: str, deadline: float) -> None:
    name = f"kube-{region}"
    while time.monotonic() < deadline:
        code, _ = _get_json(cfg.url(name, "/_lab/status"), 1.0)
        if code == 200:
            return
        rec = table.get(name)
        if rec is None or not rec.running:
            tail = _tail(cfg.path("logs", f"{name}.log"))
            raise LabError(f"{name} exited at start: {tail}")
        time.sleep(0.1)
    raise LabError(f"{name} did not answer on {cfg.url(name)} in time; see {cfg.path('logs', name + '.log')}")


def _tail(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except FileNotFoundError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"


def region_ready(cfg: LabConfig, region: str) -> tuple[bool, str]:
    """Every deployment of the services namespace fully available, and the region's LB says UP."""
    code, st = _get_json(cfg.url(f"kube-{region}", "/_lab/status"), 2.0)
    if code != 200:
        return False, "API not answering"
    deps = st.get("deployments") or {}
    waiting = [n for n, d in deps.items() if d["available"] < d["replicas"]]
    if not deps or waiting:
        return False, f"waiting for {', '.join(waiting) or 'deployments'}"
    code, _ = _get_json(cfg.url(f"lb-{region}", "/actuator/health"), 2.0)
    if code != 200:
        return False, "load balancer health is not UP yet"
    return True, "ready"


def wait_ready(cfg: LabConfig, regions: tuple[str, ...] = REGIONS, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    why = ""
    for region in regions:
        while True:
            ok, why = region_ready(cfg, region)
            if ok:
                break
            if time.monotonic() > deadline:
                raise LabError(f"the {region} region is not ready after {timeout:.0f}s: {why}")
            time.sleep(0.25)


def stop(cfg: LabConfig, table: ProcessTable, regions: tuple[str, ...] = REGIONS) -> None:
    """Stop the cluster's processes (a frozen region is thawed first so SIGTERM works at once)."""
    for region in faults.regions_down(cfg):
        faults.heal_region_down(cfg, region, table)
    for name in ("traffic", "lb-global", *[f"lb-{r}" for r in regions], *[f"kube-{r}" for r in regions]):
        table.stop(name, timeout=8.0)


def status(cfg: LabConfig, regions: tuple[str, ...] = REGIONS) -> list[dict]:
    """One row per component: name, address, health."""
    rows = []
    down = set(faults.regions_down(cfg))
    for region in regions:
        if region in down:
            rows.append(
                {"name": f"kube-{region}", "address": cfg.url(f"kube-{region}"), "health": "frozen (region-down)"}
            )
            rows.append({"name": f"lb-{region}", "address": cfg.url(f"lb-{region}"), "health": "frozen (region-down)"})
            continue
        code, st = _get_json(cfg.url(f"kube-{region}", "/_lab/status"), 2.0)
        health = f"up: {st.get('podsReady', 0)}/{st.get('pods', 0)} pods ready" if code == 200 else "down"
        rows.append({"name": f"kube-{region}", "address": cfg.url(f"kube-{region}"), "health": health})
        code, body = _get_json(cfg.url(f"lb-{region}", "/actuator/health"), 2.0)
        rows.append(
            {
                "name": f"lb-{region}",
                "address": cfg.url(f"lb-{region}"),
                "health": body.get("status", "DOWN") if code else "down",
            }
        )
    code, body = _get_json(cfg.url("lb-global", "/actuator/health"), 5.0)
    rows.append(
        {"name": "lb-global", "address": cfg.url("lb-global"), "health": body.get("status", "DOWN") if code else "down"}
    )
    return rows


def default_db(cfg: LabConfig) -> DbParams:
    """The lab's primary database with the application account (phase 1: may not be running)."""
    from ..config import DB_NAME, DB_USERS, read_json

    secrets = read_json(cfg.secrets_file) or {}
    return DbParams(HOST, cfg.ports["db-primary"], DB_NAME, DB_USERS["app"], secrets.get("app", ""))
