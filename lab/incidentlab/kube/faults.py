"""Faults of the lab cluster, for ``incidentctl lab break`` / ``heal``.

Client side (called by the lab's fault registry, in the controller's process):

- ``break_service_down(cfg, service)``: the service's *current* pods are poisoned: their
  containers crash at start and go into CrashLoopBackOff (endpoints empty, health DOWN).
  Pods created afterwards (``kubectl rollout restart``, ``delete pod``) are healthy, so the
  runbook's rolling restart resolves it.
- ``break_service_slow(cfg, service, delay_ms=2500)``: the service's containers are restarted
  with a response delay (every pod of the service, new ones included, until healed).
- ``break_bad_config(cfg, service)``: ``db.host`` in ConfigMap ``microservice-config`` gets a
  wrong value and the service's containers restart and pick it up (health DOWN, showing the
  wrong host). Other services break too if they restart before the heal, as on a real cluster.
- ``break_region_down(cfg)``: the region's API server (with its pods) and its load balancer
  are frozen with SIGSTOP: connections are accepted by the kernel but never answered, as in
  a network partition. ``heal_region_down`` sends SIGCONT.

Each ``heal_*`` undoes its fault. Faults that act on pods are applied inside the emulator
through its admin endpoint ``POST /_lab/faults/<fault>``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from ..config import LabConfig, read_json, write_json
from ..errors import LabError, LabInputError
from ..procs import ProcessTable
from .manifests import CONFIGMAP, NAMESPACE, SERVICES
from .resources import res

if TYPE_CHECKING:
    from .server import Emulator

BAD_DB_HOST = "127.0.0.2"  # a loopback address where nothing listens: refused at once, and visible in health


# -- emulator side ------------------------------------------------------------------------


def apply(emu: Emulator, fault: str, body: dict) -> dict:
    action = body.get("action")
    service = body.get("service", "")
    if fault != "state" and service not in SERVICES:
        raise ValueError(f"unknown service {service!r}: use one of {', '.join(SERVICES)}")
    if action not in ("break", "heal"):
        raise ValueError("action must be break or heal")
    k = emu.kubelet
    state = emu.faults
    with k.lock:
        uids = k.pod_uids(NAMESPACE, service)
        if fault == "service-down":
            if action == "break":
                k.poisoned |= uids
                n = k.restart_containers(uids, crash=True)
                state.setdefault("service-down", {})[service] = sorted(uids)
            else:
                poisoned = set(state.get("service-down", {}).pop(service, [])) & set(k.pods)
                k.poisoned -= poisoned
                n = k.restart_containers(poisoned)
        elif fault == "service-slow":
            if action == "break":
                k.slow[(NAMESPACE, service)] = int(body.get("delay_ms", 2500))
                state.setdefault("service-slow", {})[service] = k.slow[(NAMESPACE, service)]
            else:
                k.slow.pop((NAMESPACE, service), None)
                state.get("service-slow", {}).pop(service, None)
            n = k.restart_containers(uids)
        elif fault == "bad-config":
            n = _bad_config(emu, service, action, uids)
        else:
            raise ValueError(f"unknown fault {fault!r}")
    return {"fault": fault, "action": action, "service": service, "pods": n}


def _bad_config(emu: Emulator, service: str, action: str, uids: set[str]) -> int:
    state = emu.faults.setdefault("bad-config", {})
    cm = res("configmaps")
    if action == "break":
        cur = emu.store.get(cm, NAMESPACE, CONFIGMAP)
        good = (cur.get("data") or {}).get("db.host", "")
        if good != BAD_DB_HOST:
            state["original"] = good
        state.setdefault("services", [])
        if service not in state["services"]:
            state["services"].append(service)
        emu.store.mutate(
            cm, NAMESPACE, CONFIGMAP, lambda o: o.setdefault("data", {}).__setitem__("db.host", BAD_DB_HOST)
        )
    else:
        original = state.get("original")
        cur = emu.store.get(cm, NAMESPACE, CONFIGMAP)
        if original and (cur.get("data") or {}).get("db.host") == BAD_DB_HOST:
            emu.store.mutate(cm, NAMESPACE, CONFIGMAP, lambda o: o["data"].__setitem__("db.host", original))
        with contextlib.suppress(ValueError):
            state.get("services", []).remove(service)
        if not state.get("services"):
            emu.faults.pop("bad-config", None)
    return emu.kubelet.restart_containers(uids)


# -- client side (the lab's fault registry) -----------------------------------------------


def _admin(cfg: LabConfig, region: str, fault: str, **body) -> dict:
    url = cfg.url(f"kube-{region}", f"/_lab/faults/{fault}")
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("message", exc.reason)
        raise LabInputError(f"{fault}: {detail}") from None
    except OSError as exc:
        raise LabError(
            f"the {region} Kubernetes API ({url}) does not answer ({exc}); is the lab up and the region not down?"
        ) from None


def _check(service: str) -> None:
    if service not in SERVICES:
        raise LabInputError(f"unknown service {service!r}: use one of {', '.join(SERVICES)}")


def break_service_down(cfg: LabConfig, service: str, region: str = "primary") -> dict:
    _check(service)
    return _admin(cfg, region, "service-down", action="break", service=service)


def heal_service_down(cfg: LabConfig, service: str, region: str = "primary") -> dict:
    _check(service)
    return _admin(cfg, region, "service-down", action="heal", service=service)


def break_service_slow(cfg: LabConfig, service: str, region: str = "primary", delay_ms: int = 2500) -> dict:
    _check(service)
    return _admin(cfg, region, "service-slow", action="break", service=service, delay_ms=delay_ms)


def heal_service_slow(cfg: LabConfig, service: str, region: str = "primary") -> dict:
    _check(service)
    return _admin(cfg, region, "service-slow", action="heal", service=service)


def break_bad_config(cfg: LabConfig, service: str, region: str = "primary") -> dict:
    _check(service)
    return _admin(cfg, region, "bad-config", action="break", service=service)


def heal_bad_config(cfg: LabConfig, service: str, region: str = "primary") -> dict:
    _check(service)
    return _admin(cfg, region, "bad-config", action="heal", service=service)


def _region_groups(cfg: LabConfig, region: str, table: ProcessTable) -> list[int]:
    groups = []
    for name in (f"kube-{region}", f"lb-{region}"):
        rec = table.get(name)
        if rec is None or not rec.running:
            raise LabError(f"{name} is not running: start the lab with `incidentctl lab up`")
        groups.append(rec.pgid)
    return groups


def _down_file(cfg: LabConfig):
    return cfg.path("kube", "region-down.json")


def break_region_down(cfg: LabConfig, region: str = "primary", table: ProcessTable | None = None) -> dict:
    from .cluster import process_table

    table = table or process_table(cfg)
    groups = _region_groups(cfg, region, table)
    for pgid in groups:
        os.killpg(pgid, signal.SIGSTOP)
    state = read_json(_down_file(cfg)) or {}
    state[region] = groups
    write_json(_down_file(cfg), state)
    return {"fault": "region-down", "action": "break", "region": region}


def heal_region_down(cfg: LabConfig, region: str = "primary", table: ProcessTable | None = None) -> dict:
    from .cluster import process_table

    table = table or process_table(cfg)
    state = read_json(_down_file(cfg)) or {}
    groups = set(state.pop(region, []))
    for name in (f"kube-{region}", f"lb-{region}"):
        rec = table.get(name)
        if rec is not None:
            groups.add(rec.pgid)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGCONT)
    write_json(_down_file(cfg), state)
    return {"fault": "region-down", "action": "heal", "region": region}


def regions_down(cfg: LabConfig) -> list[str]:
    return sorted(read_json(_down_file(cfg)) or {})


def thaw_regions(cfg: LabConfig, table: ProcessTable) -> None:
    for region in regions_down(cfg):
        heal_region_down(cfg, region, table)


def forget_regions_down(cfg: LabConfig) -> None:
    _down_file(cfg).unlink(missing_ok=True)


# -- the lab's fault registry ------------------------------------------------------------


def _describe(result: dict, what: str) -> str:
    return f"{result.get('service')} (primary region, {result.get('pods', 0)} pod(s)): {what}"


def _region_msg(result: dict) -> str:
    if result["action"] == "break":
        return f"region {result['region']} frozen: its API, pods and load balancer accept connections, never answer"
    return f"region {result['region']} thawed: its API, pods and load balancer answer again"


def register_cluster_faults(register, fault_type) -> None:
    """Add the cluster's faults to the lab's registry (incidentlab.faults)."""
    per_service = {"arg": "SERVICE", "choices": SERVICES}
    register(
        fault_type(
            "service-down",
            "crash-loop the current pods of a service in the primary region (a rolling restart makes healthy ones)",
            lambda lab, svc: _describe(break_service_down(lab.cfg, svc), "pods crash at start (CrashLoopBackOff)"),
            lambda lab, svc: _describe(heal_service_down(lab.cfg, svc), "poisoned pods restarted healthy"),
            **per_service,
        )
    )
    register(
        fault_type(
            "service-slow",
            "make a service's /api responses take 2.5 s in the primary region (health and metrics stay fast)",
            lambda lab, svc: _describe(break_service_slow(lab.cfg, svc), "containers restarted with a 2.5 s delay"),
            lambda lab, svc: _describe(heal_service_slow(lab.cfg, svc), "containers restarted without the delay"),
            **per_service,
        )
    )
    register(
        fault_type(
            "bad-config",
            f"set db.host in ConfigMap {CONFIGMAP} to {BAD_DB_HOST} (primary region) and restart the service",
            lambda lab, svc: _describe(break_bad_config(lab.cfg, svc), f"db.host={BAD_DB_HOST}, containers restarted"),
            lambda lab, svc: _describe(heal_bad_config(lab.cfg, svc), "db.host restored, containers restarted"),
            **per_service,
        )
    )
    register(
        fault_type(
            "region-down",
            "freeze a region (default primary): its Kubernetes API, pods and load balancer stop answering (SIGSTOP)",
            lambda lab, region: _region_msg(break_region_down(lab.cfg, _lab_region(lab, region), table=lab.procs)),
            lambda lab, region: _region_msg(heal_region_down(lab.cfg, region or "primary", table=lab.procs)),
            arg="REGION",
            default_arg="primary",
        )
    )


def _lab_region(lab, region: str | None) -> str:
    from .server import lab_regions

    regions = lab_regions(lab.cfg)
    if (region or "primary") not in regions:
        raise LabInputError(f"this lab has no region {region!r}; its regions: {', '.join(regions)}")
    return region or "primary"
