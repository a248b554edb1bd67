"""Metrics: the metrics.k8s.io API (``kubectl top``), kube-state-metrics style gauges on
``/metrics``, and the Prometheus file_sd targets of the region's pods.

Usage is real: CPU and memory of the pod processes, sampled from /proc by the kubelet.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import HOST, write_json
from . import quantity
from .controllers import DEPLOY, HPA, PODS, pod_ready
from .resources import res
from .store import Store, now_iso, parse_time

if TYPE_CHECKING:
    from .pods import Kubelet

WINDOW = "10s"
METRICS_WINDOW = 10.0
SERVICES_NAMESPACE = "microservices"


def _request(pod: dict, container: str, resource: str) -> float | None:
    for c in pod["spec"].get("containers") or []:
        if c.get("name") == container:
            return quantity.parse(((c.get("resources") or {}).get("requests") or {}).get(resource))
    return None


TOLERANCE = 0.1
CPU_INITIALIZATION = 300.0  # --horizontal-pod-autoscaler-cpu-initialization-period


def replica_calc(
    kubelet: Kubelet, pods: list[dict], resource: str, target: int, current: int
) -> tuple[int, int, str] | None:
    """The HPA's replica count for a utilization target, as kube-controller-manager's
    GetResourceReplicas computes it: unready pods (still initialising) are left out, pods
    without metrics yet count as using 100% of their request on a scale-down (a manual
    scale-up holds only if that brings the average over the target), and a change within the
    10% tolerance or one that would reverse direction keeps the current count.
    Returns (replicas, utilization %, average value) or None when no metrics are available."""
    now = time.time()
    usage: dict[str, float] = {}
    requests: dict[str, float] = {}
    missing, unready = [], []
    for p in pods:
        name = p["metadata"]["name"]
        req = 0.0
        for c in p["spec"].get("containers") or []:
            r = quantity.parse(((c.get("resources") or {}).get("requests") or {}).get(resource))
            if r is None:
                return None  # utilization needs requests on every container
            req += r
        requests[name] = req
        got = kubelet.usage(p["metadata"]["uid"])
        if got is None:
            missing.append(name)
            continue
        ready = next((c for c in (p.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
        started = parse_time((p.get("status") or {}).get("startTime")) or now
        if ready is None or ready.get("status") != "True":
            unready.append(name)
            continue
        became_ready = parse_time(ready.get("lastTransitionTime")) or now
        if resource == "cpu" and started + CPU_INITIALIZATION > now and became_ready + METRICS_WINDOW > now:
            unready.append(name)  # not one full metrics window since it turned ready
            continue
        usage[name] = sum(cpu if resource == "cpu" else float(mem) for cpu, mem in got.values())
    if not usage:
        return None

    def ratio_of(values: dict[str, float]) -> tuple[float, int]:
        used, req = sum(values.values()), sum(requests[n] for n in values)
        util = math.ceil(used / req * 100) if req else 0
        return (util / target if target else 0.0), util

    ratio, util = ratio_of(usage)
    avg = sum(usage.values()) / len(usage)
    value = f"{round(avg * 1000)}m" if resource == "cpu" else quantity.mem_ki(avg)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= TOLERANCE:
            return current, util, value
        return math.ceil(ratio * len(usage)), util, value
    filled = dict(usage)
    for n in missing:
        filled[n] = requests[n] * max(100, target) / 100 if ratio < 1.0 else 0.0
    if scale_up_with_unready:
        for n in unready:
            filled[n] = 0.0
    new_ratio, _ = ratio_of(filled)
    if abs(1.0 - new_ratio) <= TOLERANCE or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current, util, value
    proposal = math.ceil(new_ratio * len(filled))
    if (new_ratio < 1.0 and proposal > current) or (new_ratio > 1.0 and proposal < current):
        return current, util, value
    return proposal, util, value


def pod_metrics(store: Store, kubelet: Kubelet, ns: str | None) -> list[dict]:
    out = []
    for p in store.items(PODS, ns):
        usage = kubelet.usage(p["metadata"]["uid"])
        if usage is None:
            continue
        m = p["metadata"]
        out.append(
            {
                "metadata": {
                    "name": m["name"],
                    "namespace": m["namespace"],
                    "creationTimestamp": now_iso(),
                    "labels": m.get("labels") or {},
                },
                "timestamp": now_iso(),
                "window": WINDOW,
                "containers": [
                    {"name": n, "usage": {"cpu": quantity.cpu_nano(cpu), "memory": quantity.mem_ki(mem)}}
                    for n, (cpu, mem) in usage.items()
                ],
            }
        )
    return out


def node_metrics(store: Store, kubelet: Kubelet) -> list[dict]:
    totals: dict[str, list[float]] = {n["metadata"]["name"]: [0.0, 0.0] for n in store.items(res("nodes"))}
    for p in store.items(PODS):
        node = p["spec"].get("nodeName")
        usage = kubelet.usage(p["metadata"]["uid"]) if node in totals else None
        for cpu, mem in (usage or {}).values():
            totals[node][0] += cpu
            totals[node][1] += mem
    return [
        {
            "metadata": {
                "name": name,
                "creationTimestamp": now_iso(),
                "labels": (store.find(res("nodes"), "", name) or {"metadata": {}})["metadata"].get("labels") or {},
            },
            "timestamp": now_iso(),
            "window": WINDOW,
            "usage": {"cpu": quantity.cpu_nano(cpu), "memory": quantity.mem_ki(mem)},
        }
        for name, (cpu, mem) in totals.items()
    ]


def _esc(v: object) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _line(name: str, labels: dict, value: float) -> str:
    lab = ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items())
    return f"{name}{{{lab}}} {value:g}"


def state_metrics(store: Store) -> str:
    """kube-state-metrics style gauges (the subset the lab's rules and dashboards use)."""
    out: list[str] = []

    def family(name: str, help_: str, kind: str, samples: list[tuple[dict, float]]) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(_line(name, lab, v) for lab, v in samples)

    deps = store.items(DEPLOY)
    dl = lambda d: {"namespace": d["metadata"]["namespace"], "deployment": d["metadata"]["name"]}  # noqa: E731
    st = lambda o, k: (o.get("status") or {}).get(k, 0)  # noqa: E731
    family(
        "kube_deployment_spec_replicas",
        "Number of desired pods for a deployment.",
        "gauge",
        [(dl(d), d["spec"].get("replicas", 1)) for d in deps],
    )
    for key, name in (
        ("replicas", "kube_deployment_status_replicas"),
        ("availableReplicas", "kube_deployment_status_replicas_available"),
        ("unavailableReplicas", "kube_deployment_status_replicas_unavailable"),
        ("updatedReplicas", "kube_deployment_status_replicas_updated"),
        ("readyReplicas", "kube_deployment_status_replicas_ready"),
        ("observedGeneration", "kube_deployment_status_observed_generation"),
    ):
        family(name, f"The deployment's status.{key}.", "gauge", [(dl(d), st(d, key)) for d in deps])
    family(
        "kube_deployment_metadata_generation",
        "Sequence number representing a specific generation of the desired state.",
        "gauge",
        [(dl(d), d["metadata"].get("generation", 1)) for d in deps],
    )
    conds = []
    for d in deps:
        for c in (d.get("status") or {}).get("conditions") or []:
            for s in ("true", "false", "unknown"):
                conds.append(({**dl(d), "condition": c["type"], "status": s}, 1 if c["status"].lower() == s else 0))
    family("kube_deployment_status_condition", "The current status conditions of a deployment.", "gauge", conds)
    pods = store.items(PODS)

    def pl(p: dict) -> dict:
        return {"namespace": p["metadata"]["namespace"], "pod": p["metadata"]["name"], "uid": p["metadata"]["uid"]}

    restarts, ready, phase, waiting, info = [], [], [], [], []
    for p in pods:
        s = p.get("status") or {}
        for cs in s.get("containerStatuses") or []:
            restarts.append(({**pl(p), "container": cs["name"]}, cs.get("restartCount", 0)))
            reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
            if reason:
                waiting.append(({**pl(p), "container": cs["name"], "reason": reason}, 1))
        r = pod_ready(p)
        for cond_s in ("true", "false", "unknown"):
            ready.append(({**pl(p), "condition": cond_s}, 1 if (cond_s == "true") == r and cond_s != "unknown" else 0))
        for ph in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
            phase.append(({**pl(p), "phase": ph}, 1 if s.get("phase") == ph else 0))
        owner = next((o for o in p["metadata"].get("ownerReferences") or [] if o.get("controller")), {})
        info.append(
            (
                {
                    **pl(p),
                    "node": p["spec"].get("nodeName") or "",
                    "host_ip": HOST,
                    "pod_ip": s.get("podIP", ""),
                    "created_by_kind": owner.get("kind", ""),
                    "created_by_name": owner.get("name", ""),
                },
                1,
            )
        )
    family(
        "kube_pod_container_status_restarts_total",
        "The number of container restarts per container.",
        "counter",
        restarts,
    )
    family(
        "kube_pod_container_status_waiting_reason",
        "Describes the reason the container is currently in waiting state.",
        "gauge",
        waiting,
    )
    family("kube_pod_status_ready", "Describes whether the pod is ready to serve requests.", "gauge", ready)
    family("kube_pod_status_phase", "The pods current phase.", "gauge", phase)
    family("kube_pod_info", "Information about pod.", "gauge", info)
    hpas = store.items(HPA)
    hl = lambda h: {"namespace": h["metadata"]["namespace"], "horizontalpodautoscaler": h["metadata"]["name"]}  # noqa: E731
    family(
        "kube_horizontalpodautoscaler_spec_min_replicas",
        "Lower limit for the number of pods that can be set by the autoscaler, default 1.",
        "gauge",
        [(hl(h), h["spec"].get("minReplicas", 1)) for h in hpas],
    )
    family(
        "kube_horizontalpodautoscaler_spec_max_replicas",
        "Upper limit for the number of pods that can be set by the autoscaler; cannot be smaller than MinReplicas.",
        "gauge",
        [(hl(h), h["spec"].get("maxReplicas", 1)) for h in hpas],
    )
    family(
        "kube_horizontalpodautoscaler_status_current_replicas",
        "Current number of replicas of pods managed by this autoscaler.",
        "gauge",
        [(hl(h), st(h, "currentReplicas")) for h in hpas],
    )
    family(
        "kube_horizontalpodautoscaler_status_desired_replicas",
        "Desired number of replicas of pods managed by this autoscaler.",
        "gauge",
        [(hl(h), st(h, "desiredReplicas")) for h in hpas],
    )
    nodes = store.items(res("nodes"))
    family(
        "kube_node_status_condition",
        "The condition of a cluster node.",
        "gauge",
        [
            ({"node": n["metadata"]["name"], "condition": c["type"], "status": c["status"].lower()}, 1)
            for n in nodes
            for c in (n.get("status") or {}).get("conditions") or []
        ],
    )
    eps = store.items(res("endpoints"))
    el = lambda e: {"namespace": e["metadata"]["namespace"], "endpoint": e["metadata"]["name"]}  # noqa: E731
    family(
        "kube_endpoint_address",
        "Information about Endpoint available and non available addresses.",
        "gauge",
        [
            ({**el(e), "ip": a.get("ip"), "ready": (key == "addresses" and "true") or "false"}, 1)
            for e in eps
            for ss in e.get("subsets") or []
            for key in ("addresses", "notReadyAddresses")
            for a in ss.get(key) or []
        ],
    )
    return "\n".join(out) + "\n"


class TargetsWriter:
    """``<lab>/prometheus/targets/pods-<region>.json``: every running pod of the services namespace."""

    def __init__(self, path: Path, region: str):
        self.path = path
        self.region = region
        self.last: list | None = None

    def update(self, store: Store, kubelet: Kubelet) -> None:
        running = kubelet.running_ports()
        groups = []
        for p in store.items(PODS, SERVICES_NAMESPACE):
            port = running.get(p["metadata"]["uid"])
            if port is None:
                continue
            groups.append(
                {
                    "targets": [f"{HOST}:{port}"],
                    "labels": {
                        "region": self.region,
                        "namespace": SERVICES_NAMESPACE,
                        "service": (p["metadata"].get("labels") or {}).get("app", ""),
                        "pod": p["metadata"]["name"],
                    },
                }
            )
        if groups != self.last:
            write_json(self.path, groups)
            self.last = groups
