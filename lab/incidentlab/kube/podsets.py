"""StatefulSet and DaemonSet controllers, the parts a rollout or a scale observes.

They follow kube-controller-manager (pkg/controller/statefulset, pkg/controller/daemon) in
what clients see: pod names and labels (``controller-revision-hash``, ordinals, one pod per
node), OrderedReady and Parallel pod management, RollingUpdate (with ``partition`` and
``maxUnavailable``) and OnDelete, and the status fields ``kubectl rollout status`` reads
(``currentRevision``/``updateRevision``, ``updatedNumberScheduled``...). Not emulated:
volume claim templates, ControllerRevision objects (revisions are kept in memory), surge
for daemon sets, taints (daemon pods stay on cordoned nodes, as their tolerations allow).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .controllers import PODS, _controller_uid, _intstr, _meta, _owner_ref, pod_active, pod_available, template_hash
from .controllers import pod_ready as ready
from .resources import res
from .selectors import selector_from_match
from .store import clone

if TYPE_CHECKING:
    from .controllers import ControllerManager

STS, DS, NODES = res("statefulsets.apps"), res("daemonsets.apps"), res("nodes")
REVISION_LABEL = "controller-revision-hash"


def _owned_pods(cm: ControllerManager, owner: dict) -> list[dict]:
    uid = _meta(owner)["uid"]
    return [p for p in cm.store.items(PODS, _meta(owner)["namespace"]) if _controller_uid(p) == uid]


def _terminating(p: dict) -> bool:
    return bool(_meta(p).get("deletionTimestamp"))


def _write_status(cm: ControllerManager, r, obj: dict, status: dict) -> None:
    if (obj.get("status") or {}) != status:
        cm.store.mutate(
            r, _meta(obj)["namespace"], _meta(obj)["name"], lambda x: x.__setitem__("status", status), sub="status"
        )


def _new_pod(owner: dict, template: dict, name: str | None, labels: dict, **spec) -> dict:
    tmpl = clone(template)
    meta = tmpl.get("metadata") or {}
    pod = {
        "metadata": {
            "namespace": _meta(owner)["namespace"],
            "labels": {**(meta.get("labels") or {}), **labels},
            "ownerReferences": [_owner_ref(owner)],
        },
        "spec": {**(tmpl.get("spec") or {}), **spec},
    }
    if name:
        pod["metadata"]["name"] = name
    else:
        pod["metadata"]["generateName"] = f"{_meta(owner)['name']}-"
    if meta.get("annotations"):
        pod["metadata"]["annotations"] = meta["annotations"]
    return pod


# -- statefulsets ---------------------------------------------------------------------


def _ordinal(sts: dict, pod: dict) -> int | None:
    prefix = _meta(sts)["name"] + "-"
    name = _meta(pod)["name"]
    if not name.startswith(prefix) or not name[len(prefix) :].isdigit():
        return None
    return int(name[len(prefix) :])


def sync_statefulset(cm: ControllerManager, sts: dict) -> None:
    if _terminating(sts):
        return
    ns, name, uid = _meta(sts)["namespace"], _meta(sts)["name"], _meta(sts)["uid"]
    spec = sts["spec"]
    replicas = spec.get("replicas", 1)
    revisions = cm.revisions.setdefault(uid, {})
    update_rev = f"{name}-{template_hash(spec['template'])}"
    revisions[update_rev] = clone(spec["template"])
    status = clone(sts.get("status") or {})
    current_rev = status.get("currentRevision")
    if current_rev not in revisions:
        current_rev = update_rev
    strategy = spec.get("updateStrategy") or {}
    rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
    partition = (strategy.get("rollingUpdate") or {}).get("partition", 0) if rolling else 0
    parallel = spec.get("podManagementPolicy") == "Parallel"

    pods = {}
    for p in _owned_pods(cm, sts):
        o = _ordinal(sts, p)
        if o is not None:
            pods[o] = p

    def rev_of(p: dict) -> str:
        return (_meta(p).get("labels") or {}).get(REVISION_LABEL, "")

    healthy = True  # every pod so far exists, is not terminating and is ready
    for o in range(replicas):
        p = pods.get(o)
        if p is None:
            if not parallel and not healthy:
                break
            rev = current_rev if rolling and o < partition else update_rev
            pod_name = f"{name}-{o}"
            labels = {
                REVISION_LABEL: rev,
                "statefulset.kubernetes.io/pod-name": pod_name,
                "apps.kubernetes.io/pod-index": str(o),
            }
            extra = {"hostname": pod_name}
            if spec.get("serviceName"):
                extra["subdomain"] = spec["serviceName"]
            created = cm.store.create(PODS, _new_pod(sts, revisions[rev], pod_name, labels, **extra), ns)
            cm.events.record(
                sts,
                "Normal",
                "SuccessfulCreate",
                f"create Pod {_meta(created)['name']} in StatefulSet {name} successful",
                "statefulset-controller",
            )
            healthy = False
            if not parallel:
                break
            continue
        if _terminating(p) or not ready(p):
            healthy = False
            if not parallel:
                break
    condemned = sorted((o for o in pods if o >= replicas), reverse=True)
    if condemned and (parallel or healthy):
        for o in condemned if parallel else condemned[:1]:
            if not _terminating(pods[o]):
                cm._delete(PODS, pods[o])
                cm.events.record(
                    sts,
                    "Normal",
                    "SuccessfulDelete",
                    f"delete Pod {_meta(pods[o])['name']} in StatefulSet {name} successful",
                    "statefulset-controller",
                )
    if rolling and healthy and not condemned:
        # The highest ordinal not at the update revision goes first, one at a time.
        for o in sorted((o for o in pods if partition <= o < replicas), reverse=True):
            if rev_of(pods[o]) != update_rev:
                cm._delete(PODS, pods[o])
                break

    now = time.time()
    min_ready = spec.get("minReadySeconds", 0)
    pods = [p for p in _owned_pods(cm, sts) if _ordinal(sts, p) is not None]
    live = [p for p in pods if not _terminating(p)]
    new = {
        "observedGeneration": _meta(sts).get("generation", 1),
        "replicas": len(pods),
        "readyReplicas": sum(1 for p in pods if ready(p)),
        "availableReplicas": sum(1 for p in pods if pod_available(p, min_ready, now)),
        "currentReplicas": sum(1 for p in live if rev_of(p) == current_rev),
        "updatedReplicas": sum(1 for p in live if rev_of(p) == update_rev),
        "currentRevision": current_rev,
        "updateRevision": update_rev,
        "collisionCount": status.get("collisionCount", 0),
    }
    if rolling and new["updatedReplicas"] == new["replicas"] and new["readyReplicas"] == new["replicas"]:
        new["currentRevision"] = update_rev
        new["currentReplicas"] = new["updatedReplicas"]
    keep = {new["currentRevision"], update_rev}
    for rev in [r for r in revisions if r not in keep and not any(rev_of(p) == r for p in pods)]:
        del revisions[rev]
    _write_status(cm, STS, sts, new)


# -- daemonsets -----------------------------------------------------------------------


def _eligible_nodes(cm: ControllerManager, template: dict) -> list[str]:
    want = (template.get("spec") or {}).get("nodeSelector") or {}
    out = []
    for n in cm.store.items(NODES):
        labels = _meta(n).get("labels") or {}
        conds = (n.get("status") or {}).get("conditions") or []
        ok = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
        # Daemon pods tolerate node.kubernetes.io/unschedulable: a cordoned (drained) node keeps its daemons.
        if ok and all(labels.get(k) == v for k, v in want.items()):
            out.append(_meta(n)["name"])
    return sorted(out)


def _daemon_tolerations(own: list | None) -> list:
    """The tolerations the daemonset controller adds to its pods (AddOrUpdateDaemonPodTolerations)."""
    out = list(own or [])
    added = [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
    for key, effect in added:
        if not any(t.get("key") == key and t.get("effect") == effect for t in out):
            out.append({"key": key, "operator": "Exists", "effect": effect})
    return out


def sync_daemonset(cm: ControllerManager, ds: dict) -> None:
    if _terminating(ds):
        return
    ns = _meta(ds)["namespace"]
    spec = ds["spec"]
    template = spec["template"]
    h = template_hash(template)
    generation = _meta(ds).get("generation", 1)
    nodes = _eligible_nodes(cm, template)
    strategy = spec.get("updateStrategy") or {}
    rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
    max_unavailable = max(1, _intstr((strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1), len(nodes), True))
    match = selector_from_match(spec.get("selector"))
    pods = [p for p in _owned_pods(cm, ds) if match(_meta(p).get("labels") or {})]
    by_node: dict[str, list[dict]] = {}
    for p in pods:
        if pod_active(p):
            by_node.setdefault(p["spec"].get("nodeName") or "", []).append(p)

    def delete(p: dict) -> None:
        cm._delete(PODS, p)
        cm.events.record(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {_meta(p)['name']}", "daemonset-controller")

    for node, on_node in by_node.items():
        if node not in nodes:
            for p in on_node:
                delete(p)
        else:
            for p in sorted(on_node, key=lambda p: _meta(p)["creationTimestamp"])[1:]:
                delete(p)
    for node in nodes:
        if node not in by_node and not any(p["spec"].get("nodeName") == node for p in pods):
            labels = {REVISION_LABEL: h, "pod-template-generation": str(generation)}
            pod = _new_pod(ds, template, None, labels, nodeName=node)
            pod["spec"]["tolerations"] = _daemon_tolerations(pod["spec"].get("tolerations"))
            created = cm.store.create(PODS, pod, ns)
            cm.events.record(
                ds, "Normal", "SuccessfulCreate", f"Created pod: {_meta(created)['name']}", "daemonset-controller"
            )
    if rolling:
        now = time.time()
        min_ready = spec.get("minReadySeconds", 0)
        current = {n: (by_node.get(n) or [None])[0] for n in nodes}
        unavailable = sum(1 for p in current.values() if p is None or not pod_available(p, min_ready, now))
        for node in nodes:
            p = current[node]
            if p is None or (_meta(p).get("labels") or {}).get(REVISION_LABEL) == h:
                continue
            if not pod_available(p, min_ready, now):
                delete(p)  # an old pod that is unavailable anyway
            elif unavailable < max_unavailable:
                delete(p)
                unavailable += 1

    now = time.time()
    min_ready = spec.get("minReadySeconds", 0)
    pods = [p for p in _owned_pods(cm, ds) if pod_active(p)]
    on = {}
    for p in pods:
        on.setdefault(p["spec"].get("nodeName") or "", p)
    scheduled = [on[n] for n in nodes if n in on]
    available = sum(1 for p in scheduled if pod_available(p, min_ready, now))
    new = {
        "observedGeneration": generation,
        "desiredNumberScheduled": len(nodes),
        "currentNumberScheduled": len(scheduled),
        "numberMisscheduled": sum(1 for n in on if n not in nodes),
        "numberReady": sum(1 for p in scheduled if ready(p)),
        "updatedNumberScheduled": sum(1 for p in scheduled if (_meta(p).get("labels") or {}).get(REVISION_LABEL) == h),
        "numberAvailable": available,
        "numberUnavailable": len(nodes) - available,
    }
    _write_status(cm, DS, ds, new)
