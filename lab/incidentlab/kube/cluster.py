"""The lab's cluster as the lab runs it: per region an emulator and an nginx load balancer,
the global entry point, the traffic generator, and the kubeconfig (one context per region:
``primary``, ``secondary`` and, with ``lab up --regions 3``, ``tertiary``; namespace
``microservices``) at ``<lab>/kubeconfig``. The lab's regions are recorded in lab.json
(``server.lab_regions``).

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
from collections.abc import Callable
from pathlib import Path

import yaml

from .. import topology as topologies
from .. import traffic as generator
from ..config import DB_NAME, DB_USERS, HOST, LabConfig, port_free, read_json
from ..errors import LabError
from ..procs import ProcessTable
from . import faults, lb
from .controllers import PORT_ANNOTATION
from .manifests import DbParams
from .server import ALL_REGIONS, lab_regions

NAMESPACE = "microservices"
# The lab's HPAs sync every 5 s (kube-controller-manager's default is 15 s) so that they act quickly.
HPA_PERIOD = 5.0
PROGRESS_DEADLINE = 30


def process_table(cfg: LabConfig) -> ProcessTable:
    return ProcessTable(cfg.path("run"), cfg.lab_id)


def kubeconfig_path(cfg: LabConfig) -> Path:
    return cfg.path("kubeconfig")


def write_kubeconfig(cfg: LabConfig, regions: tuple[str, ...] | None = None) -> Path:
    regions = regions or lab_regions(cfg)
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


def db_params(cfg: LabConfig, secrets: dict[str, str]) -> DbParams:
    """Every region's services (two or three regions) write to the primary database until a failover changes
    db.host; in the ``clusters`` topology payment-service writes to the payments cluster's primary."""
    topo = topologies.get((read_json(cfg.state_file) or {}).get("topology"))
    clusters = {
        c.name: {
            "host": HOST,
            "port": cfg.ports[c.primary.name],
            "keys": dict(c.config_keys),
            "services": list(c.services),
        }
        for c in topo.clusters
        if c.services is not None
    }
    return DbParams(HOST, cfg.ports["db-primary"], DB_NAME, DB_USERS["app"], secrets.get("app", ""), clusters)


# -- starting -----------------------------------------------------------------------------


def _require_free(cfg: LabConfig, names: list[str]) -> None:
    for name in names:
        if not port_free(cfg.ports[name]):
            raise LabError(
                f"port {cfg.ports[name]} ({name}) is already in use by another program: stop it, "
                f"or give the lab another --port-base (now {cfg.port_base})"
            )


def start_lb(cfg: LabConfig, table: ProcessTable, region: str) -> None:
    _require_free(cfg, [f"lb-{region}"])
    lb.write_regional(cfg, region)
    table.start(f"lb-{region}", lb.nginx_argv(cfg, region), log_path=cfg.path("logs", f"lb-{region}.log"))


def start_emulator(
    cfg: LabConfig,
    table: ProcessTable,
    region: str,
    db: DbParams,
    hpa_period: float = HPA_PERIOD,
    progress_deadline: int = PROGRESS_DEADLINE,
) -> None:
    _require_free(cfg, [f"kube-{region}"])
    env = dict(os.environ)
    env.update(
        {
            "INCIDENTLAB_DB_HOST": db.host,
            "INCIDENTLAB_DB_PORT": str(db.port),
            "INCIDENTLAB_DB_NAME": db.name,
            "INCIDENTLAB_DB_USER": db.user,
            "INCIDENTLAB_DB_PASSWORD": db.password,  # environment only: argv is visible to every user
            "INCIDENTLAB_DB_CLUSTERS": json.dumps(db.clusters),
            "PYTHONUNBUFFERED": "1",
        }
    )
    argv = [sys.executable, "-m", "incidentlab.kube", "serve", "--region", region, "--lab-dir", str(cfg.lab_dir)]
    argv += ["--port-base", str(cfg.port_base), "--progress-deadline", str(progress_deadline)]
    argv += ["--hpa-period", str(hpa_period)]
    table.start(f"kube-{region}", argv, log_path=cfg.path("logs", f"kube-{region}.log"), env=env)


def start_global_lb(cfg: LabConfig, table: ProcessTable, region: str = "primary", keep_upstream: bool = False) -> None:
    _require_free(cfg, ["lb-global"])
    lb.write_global(cfg, region, keep_upstream)
    table.start("lb-global", lb.nginx_argv(cfg, "global"), log_path=cfg.path("logs", "lb-global.log"))


def start_traffic(cfg: LabConfig, table: ProcessTable) -> None:
    table.start(
        "traffic",
        [sys.executable, "-m", "incidentlab.traffic", "--lab-dir", str(cfg.lab_dir)],
        log_path=cfg.path("logs", "traffic.log"),
    )


def start(cfg: LabConfig, table: ProcessTable, db: DbParams, regions: tuple[str, ...] | None = None) -> None:
    """Start every region and the global LB; returns once every API answers (pods may still be starting)."""
    regions = regions or lab_regions(cfg)
    cfg.ensure_dir()
    faults.forget_regions_down(cfg)
    write_kubeconfig(cfg, regions)
    for region in regions:
        start_lb(cfg, table, region)
        start_emulator(cfg, table, region, db)
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
            raise LabError(f"{name} exited at start: {_tail(cfg.path('logs', f'{name}.log'))}")
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
        return False, "its API does not answer"
    deps = st.get("deployments") or {}
    waiting = sorted(n for n, d in deps.items() if d["available"] < d["replicas"])
    if not deps or waiting:
        return False, f"waiting for {', '.join(waiting) or 'deployments'} to be available"
    code, _ = _get_json(cfg.url(f"lb-{region}", "/actuator/health"), 2.0)
    if code != 200:
        return False, "its load balancer's health is not UP yet"
    return True, "ready"


def pods_up(cfg: LabConfig, region: str) -> tuple[bool, str]:
    """Every pod of the services answers its own health UP: its database check passes now.

    Readiness lags behind (a probe a second, three failures to turn unready), so after the
    database came back a region can look ready and still turn unready for a moment.
    """
    code, pods = _get_json(cfg.url(f"kube-{region}", f"/api/v1/namespaces/{NAMESPACE}/pods"), 5.0)
    if code != 200:
        return False, "its API does not answer"
    down = []
    for pod in pods.get("items") or []:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        port = (meta.get("annotations") or {}).get(PORT_ANNOTATION, "")
        if not port.isdigit() or _get_json(f"http://{HOST}:{port}/actuator/health", 2.0)[0] != 200:
            down.append(meta["name"])
    return not down, f"{', '.join(sorted(down))} not UP" if down else "every pod UP"


def wait_ready(
    cfg: LabConfig, regions: tuple[str, ...] | None = None, timeout: float = 60.0, pods_first: bool = False
) -> None:
    """Wait until each region is ready; with ``pods_first``, until its pods answer UP themselves first."""
    regions = regions or lab_regions(cfg)
    deadline = time.monotonic() + timeout
    for region in regions:
        while True:
            ok, why = pods_up(cfg, region) if pods_first else (True, "")
            if ok:
                ok, why = region_ready(cfg, region)
            if ok:
                break
            if time.monotonic() > deadline:
                raise LabError(f"the {region} region is not ready after {timeout:.0f}s: {why}")
            time.sleep(0.2)


def stop(cfg: LabConfig, table: ProcessTable, regions: tuple[str, ...] | None = None) -> None:
    """Stop the cluster's processes (a frozen region is thawed first, so SIGTERM acts at once)."""
    regions = regions or lab_regions(cfg)
    faults.thaw_regions(cfg, table)
    for name in ("traffic", "lb-global", *[f"lb-{r}" for r in regions], *[f"kube-{r}" for r in regions]):
        table.stop(name, timeout=8.0)


# -- status and repair ----------------------------------------------------------------------

Check = Callable[[], tuple[bool, str]]


def components(cfg: LabConfig) -> list[tuple[str, str, str, str, Check]]:
    """(name, kind, address, process, check) of each cluster component, for the lab's status."""
    out: list[tuple[str, str, str, str, Check]] = []
    for region in lab_regions(cfg):
        kube, lbname = f"kube-{region}", f"lb-{region}"
        out.append((kube, "kubernetes", cfg.url(kube), kube, lambda r=region: _check_api(cfg, r)))
        out.append((lbname, "load balancer", cfg.url(lbname), lbname, lambda n=lbname: _check_lb(cfg, n)))
    out.append(("lb-global", "load balancer", cfg.url("lb-global"), "lb-global", lambda: _check_lb(cfg, "lb-global")))
    sends = "via lb-global and lb-secondary"
    out.append(("traffic", "traffic", sends, "traffic", lambda: (True, generator.describe(cfg))))
    return out


def _check_api(cfg: LabConfig, region: str) -> tuple[bool, str]:
    if region in faults.regions_down(cfg):
        return False, "frozen by the region-down fault"
    code, st = _get_json(cfg.url(f"kube-{region}", "/_lab/status"), 2.0)
    if code != 200:
        return False, "API not answering"
    deps = st.get("deployments") or {}
    avail = sum(1 for d in deps.values() if d["available"] >= d["replicas"])
    return True, f"{st.get('podsReady', 0)}/{st.get('pods', 0)} pods ready, {avail}/{len(deps)} services available"


def _check_lb(cfg: LabConfig, name: str) -> tuple[bool, str]:
    region = name.split("-", 1)[1]
    if region in faults.regions_down(cfg):
        return False, "frozen by the region-down fault"
    code, body = _get_json(cfg.url(name, "/actuator/health"), 5.0)
    if code == 0:
        return False, "not answering"
    if name == "lb-global":
        return code == 200, f"{body.get('status', code)} via {global_region(cfg)}"
    down = sorted(n for n, c in (body.get("components") or {}).items() if c.get("status") != "UP")
    return code == 200, body.get("status", str(code)) + (f" ({', '.join(down)} not ready)" if down else "")


def global_region(cfg: LabConfig) -> str:
    """The region lb-global sends traffic to, as its upstream.conf says."""
    try:
        text = (lb.lb_dir(cfg, "global") / "upstream.conf").read_text()
    except FileNotFoundError:
        return "?"
    return next((r for r in ALL_REGIONS if f":{cfg.ports[f'lb-{r}']};" in text), "?")


def restarters(cfg: LabConfig, table: ProcessTable, secrets: dict[str, str]) -> dict[str, Callable[[], None]]:
    """How the lab brings back a cluster component that died (an emulator restarts with a fresh cluster)."""
    out: dict[str, Callable[[], None]] = {}
    for region in lab_regions(cfg):

        def kube(region: str = region) -> None:
            table.stop(f"kube-{region}")
            start_emulator(cfg, table, region, db_params(cfg, secrets))
            wait_api(cfg, table, region, time.monotonic() + 15)

        def lb_(region: str = region) -> None:
            table.stop(f"lb-{region}")
            start_lb(cfg, table, region)

        out[f"kube-{region}"], out[f"lb-{region}"] = kube, lb_

    def global_lb() -> None:
        table.stop("lb-global")
        start_global_lb(cfg, table, keep_upstream=True)  # a failover done before it died stays

    def traffic() -> None:
        table.stop("traffic")
        start_traffic(cfg, table)

    out["lb-global"], out["traffic"] = global_lb, traffic
    return out


def status_rows(cfg: LabConfig) -> list[dict]:
    return [
        {"name": n, "address": a, "health": "ok" if c()[0] else "down", "detail": c()[1]}
        for n, _, a, _, c in components(cfg)
    ]
