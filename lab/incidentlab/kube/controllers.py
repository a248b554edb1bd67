"""The control plane's controllers, level-triggered over the whole (small) store.

One thread runs a reconcile pass whenever the store changes (and at least every second):
scheduler, namespace and garbage collector, deployment, replica set, statefulset, daemonset,
job, disruption budgets, endpoints; the HPA runs on its own period, node leases are renewed
every 10 s. The deployment logic follows kube-controller-manager's
(pkg/controller/deployment): pod-template-hash, rolling updates bounded by maxSurge and
maxUnavailable, revisions, pausing (``spec.paused``: no new replica set, scaling only), and
the Available/Progressing conditions with progressDeadlineSeconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import threading
import time
import traceback
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .errors import ApiError
from .events import Recorder
from .resources import res
from .selectors import selector_from_match
from .store import NAME_ALPHABET, Store, clone, now_iso, parse_time

if TYPE_CHECKING:
    from .pods import Kubelet

PORT_ANNOTATION = "incidentlab.io/port"

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
PROTECTED_NAMESPACES = {"default", "kube-system", "kube-public"}

PODS, RS, DEPLOY = res("pods"), res("replicasets.apps"), res("deployments.apps")
LEASES = res("leases.coordination.k8s.io")
LEASE_RENEW = 10.0  # the kubelet renews its node's lease every 10 s (leaseDurationSeconds 40)
QUIET_KEYS = {"events", LEASES.key}  # writes that give the controllers nothing to do
SVC, EP, NS, NODES = res("services"), res("endpoints"), res("namespaces"), res("nodes")
HPA = res("horizontalpodautoscalers.autoscaling")
STS, DS = res("statefulsets.apps"), res("daemonsets.apps")
SCALABLE = {"Deployment": DEPLOY, "StatefulSet": STS}


def _meta(o: dict) -> dict:
    return o["metadata"]


def _controller_uid(o: dict) -> str | None:
    for ref in _meta(o).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


def _owner_ref(owner: dict) -> dict:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": _meta(owner)["name"],
        "uid": _meta(owner)["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def template_hash(template: dict, collisions: int = 0) -> str:
    digest = hashlib.sha256((json.dumps(template, sort_keys=True) + str(collisions)).encode()).digest()
    return "".join(NAME_ALPHABET[b % len(NAME_ALPHABET)] for b in digest[:10])


def _without_hash(template: dict) -> dict:
    t = clone(template)
    labels = (t.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    return t


def pod_ready(pod: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def pod_available(pod: dict, min_ready: int, now: float) -> bool:
    if not pod_ready(pod):
        return False
    if not min_ready:
        return True
    cond = next(c for c in pod["status"]["conditions"] if c.get("type") == "Ready")
    t = parse_time(cond.get("lastTransitionTime"))
    return t is not None and t + min_ready <= now


def pod_active(pod: dict) -> bool:
    return not _meta(pod).get("deletionTimestamp") and (pod.get("status") or {}).get("phase") not in (
        "Succeeded",
        "Failed",
    )


def _intstr(value: object, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        x = total * int(value[:-1]) / 100
        return math.ceil(x) if round_up else math.floor(x)
    return int(value or 0)


def rolling_params(d: dict) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against spec.replicas, as the deployment controller does."""
    spec = d["spec"]
    replicas = spec.get("replicas", 1)
    ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    surge = _intstr(ru.get("maxSurge", "25%"), replicas, True)
    unavailable = _intstr(ru.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def _condition(ctype: str, status: str, reason: str, message: str) -> dict:
    ts = now_iso()
    return {
        "type": ctype,
        "status": status,
        "lastUpdateTime": ts,
        "lastTransitionTime": ts,
        "reason": reason,
        "message": message,
    }


def set_condition(status: dict, cond: dict) -> None:
    """SetDeploymentCondition: no change for the same status and reason; keep lastTransitionTime
    when only the reason changes."""
    conds = status.setdefault("conditions", [])
    cur = next((c for c in conds if c["type"] == cond["type"]), None)
    if cur and cur["status"] == cond["status"] and cur["reason"] == cond["reason"]:
        return
    if cur and cur["status"] == cond["status"]:
        cond["lastTransitionTime"] = cur["lastTransitionTime"]
    status["conditions"] = [c for c in conds if c["type"] != cond["type"]] + [cond]


def get_condition(status: dict, ctype: str) -> dict | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == ctype), None)


class ControllerManager:
    def __init__(self, store: Store, recorder: Recorder, kubelet: Kubelet, hpa_period: float = 15.0):
        self.store = store
        self.events = recorder
        self.kubelet = kubelet
        self.hpa_period = hpa_period
        self.wake = threading.Event()
        self.stopping = False
        self.recommendations: dict[str, list[tuple[float, int]]] = {}
        self.on_endpoints: list = []
        self.revisions: dict[str, dict[str, dict]] = {}  # statefulset uid -> revision name -> pod template
        self.passes = 0  # reconcile passes done: a pass after a change proves the controllers saw it
        self.autoscaler_passes = 0  # HPA syncs done, likewise
        from .jobs import JobTracker

        self.jobs = JobTracker()
        store.listeners.append(lambda ev: ev.key not in QUIET_KEYS and self.wake.set())

    def start(self) -> None:
        threading.Thread(target=self._loop, name="controllers", daemon=True).start()

    def _loop(self) -> None:
        last_hpa = last_gc = last_lease = 0.0
        while not self.stopping:
            self.wake.wait(1.0)
            self.wake.clear()
            time.sleep(0.02)  # let a burst of writes land before reconciling
            try:
                self.reconcile()
                self.passes += 1
                now = time.monotonic()
                if now - last_lease >= LEASE_RENEW:
                    last_lease = now
                    self.renew_leases()
                if now - last_hpa >= self.hpa_period:
                    last_hpa = now
                    self.autoscale()
                    self.autoscaler_passes += 1
                if now - last_gc >= 60:
                    last_gc = now
                    self.events.expire()
            except Exception:
                traceback.print_exc()

    def reconcile(self) -> None:
        from . import disruption, jobs, podsets  # they build on this module's helpers

        self.schedule()
        self.namespaces()
        self.garbage_collect()
        for d in self.store.items(DEPLOY):
            self._guard(self.sync_deployment, d)
        for rs in self.store.items(RS):
            self._guard(self.sync_replicaset, rs)
        for sts in self.store.items(STS):
            self._guard(lambda o: podsets.sync_statefulset(self, o), sts)
        for ds in self.store.items(DS):
            self._guard(lambda o: podsets.sync_daemonset(self, o), ds)
        for job in self.store.items(jobs.JOB):
            self._guard(lambda o: jobs.sync_job(self, o, self.jobs), job)
        disruption.sync_budgets(self)
        self.endpoints()

    @staticmethod
    def _guard(fn, obj: dict) -> None:
        try:
            fn(obj)
        except ApiError as exc:  # raced with a client (deleted, conflict): the next pass retries
            if exc.code not in (404, 409):
                raise

    # -- node leases -------------------------------------------------------------------
    def renew_leases(self) -> None:
        """What each node's kubelet does: renew its Lease in kube-node-lease (created when missing)."""
        renew = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for node in self.store.items(NODES):
            name = _meta(node)["name"]
            if self.store.find(NS, "", "kube-node-lease") is None:
                return
            if self.store.find(LEASES, "kube-node-lease", name) is None:
                lease = {
                    "metadata": {
                        "name": name,
                        "namespace": "kube-node-lease",
                        "ownerReferences": [
                            {"apiVersion": "v1", "kind": "Node", "name": name, "uid": _meta(node)["uid"]}
                        ],
                    },
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": renew},
                }
                with contextlib.suppress(ApiError):
                    self.store.create(LEASES, lease, "kube-node-lease")
            else:
                self.store.mutate(LEASES, "kube-node-lease", name, lambda x: x["spec"].__setitem__("renewTime", renew))

    # -- scheduler -------------------------------------------------------------------
    def schedule(self) -> None:
        pending = [
            p for p in self.store.items(PODS) if not p["spec"].get("nodeName") and not _meta(p).get("deletionTimestamp")
        ]
        if not pending:
            return
        all_nodes = self.store.items(NODES)
        cordoned = [n for n in all_nodes if (n.get("spec") or {}).get("unschedulable")]
        not_ready = [
            n
            for n in all_nodes
            if n not in cordoned
            and not any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (n.get("status") or {}).get("conditions") or []
            )
        ]
        nodes = [n for n in all_nodes if n not in cordoned and n not in not_ready]
        load = {_meta(n)["name"]: 0 for n in nodes}
        for p in self.store.items(PODS):
            if p["spec"].get("nodeName") in load:
                load[p["spec"]["nodeName"]] += 1
        for pod in pending:
            want = pod["spec"].get("nodeSelector") or {}
            fits = [n for n in nodes if all((_meta(n).get("labels") or {}).get(k) == v for k, v in want.items())]
            if not fits:
                reasons = {
                    "node(s) were unschedulable": len(cordoned),
                    "node(s) had untolerated taint {node.kubernetes.io/not-ready: }": len(not_ready),
                    "node(s) didn't match Pod's node affinity/selector": len(nodes),
                }
                self._unschedulable(pod, len(all_nodes), reasons)
                continue
            node = min(fits, key=lambda n: (load[_meta(n)["name"]], _meta(n)["name"]))
            name = _meta(node)["name"]
            load[name] += 1
            self._bind(pod, name)

    def _bind(self, pod: dict, node: str) -> None:
        with self.store.lock:
            cur = self.store.find(PODS, _meta(pod)["namespace"], _meta(pod)["name"])
            if cur is None or cur["spec"].get("nodeName"):
                return
            new = clone(cur)
            new["spec"]["nodeName"] = node
            conds = [c for c in new["status"].get("conditions") or [] if c["type"] != "PodScheduled"]
            conds.append(
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now_iso()}
            )
            new["status"]["conditions"] = conds
            self.store.commit_raw(PODS, new, cur)
        self.events.record(
            new,
            "Normal",
            "Scheduled",
            f"Successfully assigned {_meta(pod)['namespace']}/{_meta(pod)['name']} to {node}",
            "default-scheduler",
        )

    def _unschedulable(self, pod: dict, total: int, reasons: dict[str, int]) -> None:
        """PodScheduled False with the scheduler's message, e.g. "0/3 nodes are available: 3 node(s) were
        unschedulable. preemption: ..."."""
        parts = sorted(f"{n} {why}" for why, n in reasons.items() if n)
        message = (
            f"0/{total} nodes are available: {', '.join(parts)}. preemption: 0/{total} nodes are available: "
            f"{total} Preemption is not helpful for scheduling."
        )

        def mark(p: dict) -> None:
            conds = [c for c in p["status"].get("conditions") or [] if c["type"] != "PodScheduled"]
            conds.append(
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "lastProbeTime": None,
                    "lastTransitionTime": now_iso(),
                    "message": message,
                }
            )
            p["status"]["conditions"] = conds

        cur = get_condition(pod.get("status") or {}, "PodScheduled")
        if not cur or cur.get("reason") != "Unschedulable" or cur.get("message") != message:
            self.store.mutate(PODS, _meta(pod)["namespace"], _meta(pod)["name"], mark, sub="status")

    # -- namespaces and garbage collection -----------------------------------------
    def namespaces(self) -> None:
        for ns in self.store.items(NS):
            if not _meta(ns).get("deletionTimestamp"):
                continue
            name = _meta(ns)["name"]
            remaining = 0
            for r in (res(k) for k in self.store.data):
                if not r.namespaced:
                    continue
                for o in self.store.items(r, name):
                    remaining += 1
                    if not _meta(o).get("deletionTimestamp"):
                        self._delete(r, o)
            if remaining == 0:
                self.store.remove(NS, "", name)

    def _delete(self, r, o: dict, policy: str = "Background") -> None:
        try:
            self.store.delete(r, _meta(o).get("namespace", ""), _meta(o)["name"], {"propagationPolicy": policy})
        except ApiError as exc:
            if exc.code != 404:
                raise

    def garbage_collect(self) -> None:
        by_uid: dict[str, tuple] = {}
        dependents: dict[str, list[tuple]] = {}
        for key in self.store.data:
            r = res(key)
            for o in self.store.items(r):
                by_uid[_meta(o)["uid"]] = (r, o)
                for ref in _meta(o).get("ownerReferences") or []:
                    dependents.setdefault(ref.get("uid"), []).append((r, o))
        for owner_uid, deps in dependents.items():
            owner = by_uid.get(owner_uid)
            if owner is None:
                for r, o in deps:
                    refs = _meta(o).get("ownerReferences") or []
                    if not _meta(o).get("deletionTimestamp") and all(ref.get("uid") not in by_uid for ref in refs):
                        self._delete(r, o)
                continue
            r_owner, o_owner = owner
            finalizers = _meta(o_owner).get("finalizers") or []
            if not _meta(o_owner).get("deletionTimestamp"):
                continue
            if "orphan" in finalizers:
                for r, o in deps:
                    self.store.mutate(
                        r,
                        _meta(o).get("namespace", ""),
                        _meta(o)["name"],
                        lambda x, u=owner_uid: x["metadata"].__setitem__(
                            "ownerReferences",
                            [ref for ref in x["metadata"].get("ownerReferences") or [] if ref.get("uid") != u],
                        ),
                    )
                self._drop_finalizer(r_owner, o_owner, "orphan")
            elif "foregroundDeletion" in finalizers:
                for r, o in deps:
                    if not _meta(o).get("deletionTimestamp"):
                        self._delete(r, o, "Foreground")
        # Owners waiting in foreground deletion with no dependents left are done.
        for uid, (r, o) in by_uid.items():
            fin = _meta(o).get("finalizers") or []
            if _meta(o).get("deletionTimestamp") and "foregroundDeletion" in fin and not dependents.get(uid):
                self._drop_finalizer(r, o, "foregroundDeletion")
            elif _meta(o).get("deletionTimestamp") and "orphan" in fin and not dependents.get(uid):
                self._drop_finalizer(r, o, "orphan")

    def _drop_finalizer(self, r, o: dict, name: str) -> None:
        self.store.mutate(
            r,
            _meta(o).get("namespace", ""),
            _meta(o)["name"],
            lambda x: x["metadata"].__setitem__(
                "finalizers", [f for f in x["metadata"].get("finalizers") or [] if f != name]
            ),
        )

    # -- deployments -----------------------------------------------------------------
    def _owned(self, r, owner: dict) -> list[dict]:
        uid = _meta(owner)["uid"]
        return [o for o in self.store.items(r, _meta(owner)["namespace"]) if _controller_uid(o) == uid]

    def sync_deployment(self, d: dict) -> None:
        if _meta(d).get("deletionTimestamp"):
            return
        ns, name = _meta(d)["namespace"], _meta(d)["name"]
        rss = sorted(self._owned(RS, d), key=lambda r: (_meta(r)["creationTimestamp"], _meta(r)["name"]))
        template = d["spec"]["template"]
        new_rs = next(
            (
                r
                for r in rss
                if _without_hash(r["spec"]["template"]) == template and not _meta(r).get("deletionTimestamp")
            ),
            None,
        )
        old = [r for r in rss if r is not new_rs]
        max_rev = max((int((_meta(r).get("annotations") or {}).get(REVISION, "0")) for r in old), default=0)
        status = clone(d.get("status") or {})
        self._paused_condition(d, status)
        if d["spec"].get("paused"):
            # A paused deployment starts no rollout: no new replica set, only scaling (checkPausedConditions, sync).
            self._scale_paused(d, new_rs, old)
            self._sync_status(d, status, paused=True)
            self._cleanup(d)
            return
        if new_rs is None:
            new_rs = self._create_rs(d, rss, max_rev + 1)
            if new_rs is None:
                return
            set_condition(
                status,
                _condition(
                    "Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{_meta(new_rs)["name"]}"'
                ),
            )
        else:
            rev = int((_meta(new_rs).get("annotations") or {}).get(REVISION, "0"))
            if rev <= max_rev:  # a rollback to an old template takes the next revision
                new_rs = (
                    self.store.mutate(
                        RS,
                        ns,
                        _meta(new_rs)["name"],
                        lambda r: r["metadata"].setdefault("annotations", {}).__setitem__(REVISION, str(max_rev + 1)),
                    )
                    or new_rs
                )
            if get_condition(status, "Progressing") is None:
                set_condition(
                    status,
                    _condition(
                        "Progressing", "True", "FoundNewReplicaSet", f'Found new replica set "{_meta(new_rs)["name"]}"'
                    ),
                )
        revision = (_meta(new_rs).get("annotations") or {}).get(REVISION)
        if (_meta(d).get("annotations") or {}).get(REVISION) != revision:
            d = (
                self.store.mutate(
                    DEPLOY,
                    ns,
                    name,
                    lambda x: x["metadata"].setdefault("annotations", {}).__setitem__(REVISION, revision),
                )
                or d
            )
        if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            self._recreate(d, new_rs, old)
        else:
            self._rolling(d, new_rs, old)
        self._sync_status(d, status)
        self._cleanup(d)

    @staticmethod
    def _paused_condition(d: dict, status: dict) -> None:
        """Progressing Unknown with reason DeploymentPaused / DeploymentResumed, as checkPausedConditions does."""
        if d["spec"].get("progressDeadlineSeconds") is None:
            return
        cond = get_condition(status, "Progressing")
        if cond is not None and cond.get("reason") == "ProgressDeadlineExceeded":
            return
        paused_before = cond is not None and cond.get("reason") == "DeploymentPaused"
        if d["spec"].get("paused") and not paused_before:
            set_condition(status, _condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused"))
        elif not d["spec"].get("paused") and paused_before:
            set_condition(status, _condition("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed"))

    def _scale_paused(self, d: dict, new_rs: dict | None, old: list[dict]) -> None:
        """A paused deployment still follows spec.replicas, on the replica sets it has."""
        replicas = d["spec"].get("replicas", 1)
        all_rs = [r for r in [*old, new_rs] if r is not None and not _meta(r).get("deletionTimestamp")]
        if not all_rs:
            return
        active = [r for r in all_rs if r["spec"].get("replicas", 0) > 0]
        if new_rs is not None and not any(r["spec"].get("replicas", 0) for r in old):
            self._scale_rs(d, new_rs, replicas)
            return
        if len(active) <= 1:
            rev = lambda r: int((_meta(r).get("annotations") or {}).get(REVISION, "0"))  # noqa: E731
            self._scale_rs(d, active[0] if active else max(all_rs, key=rev), replicas)
            return
        # Several replica sets carry pods (a rollout paused halfway): the newest takes the difference.
        diff = replicas - sum(r["spec"].get("replicas", 0) for r in active)
        for r in sorted(active, key=lambda r: _meta(r)["creationTimestamp"], reverse=True):
            if diff == 0:
                break
            cur = r["spec"].get("replicas", 0)
            to = max(0, cur + diff)
            diff -= to - cur
            self._scale_rs(d, r, to)

    def _create_rs(self, d: dict, existing: list[dict], revision: int) -> dict | None:
        template = clone(d["spec"]["template"])
        collisions = (d.get("status") or {}).get("collisionCount", 0)
        h = template_hash(template, collisions)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = clone(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        surge, _ = rolling_params(d)
        replicas = d["spec"].get("replicas", 1)
        current = sum(r["spec"].get("replicas", 0) for r in existing)
        if (d["spec"].get("strategy") or {}).get("type") == "Recreate" or not existing:
            start = replicas if not existing else 0
        else:
            start = max(0, min(replicas, replicas + surge - current))
        rs = {
            "metadata": {
                "name": f"{_meta(d)['name']}-{h}",
                "namespace": _meta(d)["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {
                    REVISION: str(revision),
                    "deployment.kubernetes.io/desired-replicas": str(replicas),
                    "deployment.kubernetes.io/max-replicas": str(replicas + surge),
                },
                "ownerReferences": [_owner_ref(d)],
            },
            "spec": {
                "replicas": start,
                "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                "selector": selector,
                "template": template,
            },
        }
        try:
            created = self.store.create(RS, rs, _meta(d)["namespace"])
        except ApiError as exc:
            if exc.code == 409:  # hash collision with a foreign replica set: count it and try again
                self.store.mutate(
                    DEPLOY,
                    _meta(d)["namespace"],
                    _meta(d)["name"],
                    lambda x: x.setdefault("status", {}).__setitem__("collisionCount", collisions + 1),
                    sub="status",
                )
                return None
            raise
        self._scaled_event(d, created, start, None)
        return created

    def _scaled_event(self, d: dict, rs: dict, to: int, frm: int | None) -> None:
        if frm is None:
            msg = f"Scaled up replica set {_meta(rs)['name']} from 0 to {to}"
            if to == 0:
                return
        else:
            msg = f"Scaled {'up' if to > frm else 'down'} replica set {_meta(rs)['name']} from {frm} to {to}"
        self.events.record(d, "Normal", "ScalingReplicaSet", msg, "deployment-controller")

    def _scale_rs(self, d: dict, rs: dict, to: int) -> dict:
        frm = rs["spec"].get("replicas", 0)
        if frm == to:
            return rs
        surge, _ = rolling_params(d)
        replicas = d["spec"].get("replicas", 1)

        def apply(r: dict) -> None:
            r["spec"]["replicas"] = to
            ann = r["metadata"].setdefault("annotations", {})
            ann["deployment.kubernetes.io/desired-replicas"] = str(replicas)
            ann["deployment.kubernetes.io/max-replicas"] = str(replicas + surge)

        out = self.store.mutate(RS, _meta(rs)["namespace"], _meta(rs)["name"], apply) or rs
        self._scaled_event(d, rs, to, frm)
        return out

    def _rolling(self, d: dict, new_rs: dict, old: list[dict]) -> None:
        replicas = d["spec"].get("replicas", 1)
        surge, unavailable = rolling_params(d)
        all_rs = [*old, new_rs]
        # Scale up the new replica set if we can.
        new_spec = new_rs["spec"].get("replicas", 0)
        if new_spec > replicas:
            self._scale_rs(d, new_rs, replicas)
            return
        if new_spec < replicas:
            current = sum(r["spec"].get("replicas", 0) for r in all_rs)
            room = replicas + surge - current
            if room > 0:
                self._scale_rs(d, new_rs, new_spec + min(room, replicas - new_spec))
                return
        # Scale down old replica sets if we can.
        old_active = [r for r in old if r["spec"].get("replicas", 0) > 0]
        if not old_active:
            return
        all_pods = sum(r["spec"].get("replicas", 0) for r in all_rs)
        min_available = replicas - unavailable
        new_unavailable = new_rs["spec"].get("replicas", 0) - (new_rs.get("status") or {}).get("availableReplicas", 0)
        max_down = all_pods - min_available - new_unavailable
        if max_down <= 0:
            return
        # First the old replicas that are not available anyway.
        cleaned = 0
        for r in old_active:
            if cleaned >= max_down:
                break
            spec_r, avail = r["spec"].get("replicas", 0), (r.get("status") or {}).get("availableReplicas", 0)
            if spec_r == avail:
                continue
            n = min(max_down - cleaned, spec_r - avail)
            self._scale_rs(d, r, spec_r - n)
            r["spec"] = dict(r["spec"], replicas=spec_r - n)  # local view for the next step
            cleaned += n
        # Then available ones, keeping minAvailable.
        available = sum((r.get("status") or {}).get("availableReplicas", 0) for r in all_rs)
        budget = available - min_available
        done = 0
        for r in old_active:
            if done >= budget:
                break
            spec_r = r["spec"].get("replicas", 0)
            if spec_r == 0:
                continue
            n = min(spec_r, budget - done)
            self._scale_rs(d, r, spec_r - n)
            done += n

    def _recreate(self, d: dict, new_rs: dict, old: list[dict]) -> None:
        active_old = [r for r in old if r["spec"].get("replicas", 0) > 0]
        for r in active_old:
            self._scale_rs(d, r, 0)
        old_uids = {_meta(r)["uid"] for r in old}
        if any(_controller_uid(p) in old_uids for p in self.store.items(PODS, _meta(d)["namespace"])):
            return  # wait until every old pod is gone
        self._scale_rs(d, new_rs, d["spec"].get("replicas", 1))

    def _sync_status(self, d: dict, status: dict, paused: bool = False) -> None:
        ns, name = _meta(d)["namespace"], _meta(d)["name"]
        d = self.store.find(DEPLOY, ns, name) or d
        rss = self._owned(RS, d)
        template = d["spec"]["template"]
        new_rs = next((r for r in rss if _without_hash(r["spec"]["template"]) == template), None)
        replicas = d["spec"].get("replicas", 1)
        _, unavailable = rolling_params(d)
        if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            unavailable = 0
        st = lambda r, k: (r.get("status") or {}).get(k, 0)  # noqa: E731
        available = sum(st(r, "availableReplicas") for r in rss)
        total_spec = sum(r["spec"].get("replicas", 0) for r in rss)
        old_status = d.get("status") or {}
        new = {
            "observedGeneration": _meta(d).get("generation", 1),
            "replicas": sum(st(r, "replicas") for r in rss),
            "updatedReplicas": st(new_rs, "replicas") if new_rs else 0,
            "readyReplicas": sum(st(r, "readyReplicas") for r in rss),
            "availableReplicas": available,
            "unavailableReplicas": max(0, total_spec - available),
            "conditions": clone(status.get("conditions") or []),
        }
        if "collisionCount" in old_status:
            new["collisionCount"] = old_status["collisionCount"]
        if available >= replicas - unavailable:
            set_condition(
                new, _condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
            )
        else:
            set_condition(
                new,
                _condition(
                    "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."
                ),
            )
        rs_name = _meta(new_rs)["name"] if new_rs else name
        cur = get_condition(old_status, "Progressing")
        complete_before = (
            new["replicas"] == new["updatedReplicas"]
            and cur is not None
            and cur.get("reason") == "NewReplicaSetAvailable"
        )
        deadline = d["spec"].get("progressDeadlineSeconds")
        if deadline is None:
            new["conditions"] = [c for c in new["conditions"] if c["type"] != "Progressing"]
        elif paused:
            pass  # a paused deployment's progress is not estimated (syncDeploymentStatus)
        elif not complete_before:
            complete = (
                new["updatedReplicas"] == replicas
                and new["replicas"] == replicas
                and available == replicas
                and new["observedGeneration"] >= _meta(d).get("generation", 1)
            )
            old_old = old_status.get("replicas", 0) - old_status.get("updatedReplicas", 0)
            progressing = (
                new["updatedReplicas"] > old_status.get("updatedReplicas", 0)
                or new["replicas"] - new["updatedReplicas"] < old_old
                or new["readyReplicas"] > old_status.get("readyReplicas", 0)
                or available > old_status.get("availableReplicas", 0)
            )
            if complete:
                set_condition(
                    new,
                    _condition(
                        "Progressing",
                        "True",
                        "NewReplicaSetAvailable",
                        f'ReplicaSet "{rs_name}" has successfully progressed.',
                    ),
                )
            elif progressing:
                c = _condition("Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
                prev = get_condition(new, "Progressing")
                if prev and prev["status"] == "True":
                    c["lastTransitionTime"] = prev["lastTransitionTime"]
                new["conditions"] = [x for x in new["conditions"] if x["type"] != "Progressing"] + [c]
            else:
                prev = get_condition(new, "Progressing")
                if prev and prev["reason"] != "NewReplicaSetAvailable":
                    since = parse_time(prev.get("lastUpdateTime"))
                    if prev["reason"] == "ProgressDeadlineExceeded" or (since and since + deadline < time.time()):
                        set_condition(
                            new,
                            _condition(
                                "Progressing",
                                "False",
                                "ProgressDeadlineExceeded",
                                f'ReplicaSet "{rs_name}" has timed out progressing.',
                            ),
                        )
        # Keep the order kube-controller-manager shows: Available first, then Progressing.
        new["conditions"].sort(key=lambda c: {"Available": 0, "Progressing": 1}.get(c["type"], 2))
        if new != old_status:
            self.store.mutate(DEPLOY, ns, name, lambda x: x.__setitem__("status", new), sub="status")

    def _cleanup(self, d: dict) -> None:
        """Delete old, empty replica sets beyond revisionHistoryLimit."""
        limit = d["spec"].get("revisionHistoryLimit", 10)
        template = d["spec"]["template"]
        old = [
            r
            for r in self._owned(RS, d)
            if _without_hash(r["spec"]["template"]) != template
            and r["spec"].get("replicas", 0) == 0
            and (r.get("status") or {}).get("replicas", 0) == 0
            and not _meta(r).get("deletionTimestamp")
        ]
        old.sort(key=lambda r: int((_meta(r).get("annotations") or {}).get(REVISION, "0")))
        for r in old[: max(0, len(old) - limit)]:
            self._delete(RS, r)

    # -- replica sets ----------------------------------------------------------------
    def sync_replicaset(self, rs: dict) -> None:
        if _meta(rs).get("deletionTimestamp"):
            return
        ns = _meta(rs)["namespace"]
        pods = self._owned(PODS, rs)
        active = [p for p in pods if pod_active(p)]
        want = rs["spec"].get("replicas", 1)
        diff = want - len(active)
        if diff > 0:
            for _ in range(diff):
                self._create_pod(rs)
        elif diff < 0:
            for p in sorted(active, key=self._deletion_rank)[:-diff]:
                self._delete(PODS, p)
                self.events.record(
                    rs, "Normal", "SuccessfulDelete", f"Deleted pod: {_meta(p)['name']}", "replicaset-controller"
                )
        pods = self._owned(PODS, rs)
        active = [p for p in pods if pod_active(p)]
        now = time.time()
        min_ready = rs["spec"].get("minReadySeconds", 0)
        labels = (rs["spec"]["template"].get("metadata") or {}).get("labels") or {}
        status = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(
                1 for p in active if all((_meta(p).get("labels") or {}).get(k) == v for k, v in labels.items())
            ),
            "readyReplicas": sum(1 for p in active if pod_ready(p)),
            "availableReplicas": sum(1 for p in active if pod_available(p, min_ready, now)),
            "observedGeneration": _meta(rs).get("generation", 1),
        }
        if (rs.get("status") or {}) != status:
            self.store.mutate(RS, ns, _meta(rs)["name"], lambda x: x.__setitem__("status", status), sub="status")
        if min_ready and status["readyReplicas"] > status["availableReplicas"]:
            threading.Timer(min_ready, self.wake.set).start()

    @staticmethod
    def _deletion_rank(p: dict) -> tuple:
        """ActivePods ordering: the first ones are deleted first."""
        st = p.get("status") or {}
        phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(st.get("phase"), 0)
        restarts = sum(c.get("restartCount", 0) for c in st.get("containerStatuses") or [])
        created = parse_time(_meta(p).get("creationTimestamp")) or 0
        cost = int((_meta(p).get("annotations") or {}).get("controller.kubernetes.io/pod-deletion-cost", "0"))
        return (1 if p["spec"].get("nodeName") else 0, phase_rank, 1 if pod_ready(p) else 0, cost, -restarts, -created)

    def _create_pod(self, rs: dict) -> None:
        tmpl = clone(rs["spec"]["template"])
        meta = tmpl.get("metadata") or {}
        pod = {
            "metadata": {
                "generateName": f"{_meta(rs)['name']}-",
                "namespace": _meta(rs)["namespace"],
                "labels": meta.get("labels") or {},
                "ownerReferences": [_owner_ref(rs)],
            },
            "spec": tmpl.get("spec") or {},
        }
        if meta.get("annotations"):
            pod["metadata"]["annotations"] = meta["annotations"]
        created = self.store.create(PODS, pod, _meta(rs)["namespace"])
        self.events.record(
            rs, "Normal", "SuccessfulCreate", f"Created pod: {_meta(created)['name']}", "replicaset-controller"
        )

    # -- endpoints -------------------------------------------------------------------
    def endpoints(self) -> None:
        changed = False
        services = self.store.items(SVC)
        wanted = set()
        for svc in services:
            sel = (svc.get("spec") or {}).get("selector")
            ns, name = _meta(svc)["namespace"], _meta(svc)["name"]
            if not sel:
                continue
            wanted.add((ns, name))
            subsets = []
            for p in self.store.items(PODS, ns):
                labels = _meta(p).get("labels") or {}
                if any(labels.get(k) != v for k, v in sel.items()) or _meta(p).get("deletionTimestamp"):
                    continue
                port = (_meta(p).get("annotations") or {}).get(PORT_ANNOTATION, "")
                if not port.isdigit() or not (p.get("status") or {}).get("podIP"):
                    continue
                port = int(port)
                addr = {
                    "ip": p["status"]["podIP"],
                    "nodeName": p["spec"].get("nodeName"),
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": _meta(p)["name"], "uid": _meta(p)["uid"]},
                }
                sports = [
                    {"name": sp["name"], "port": port, "protocol": sp.get("protocol", "TCP")}
                    if sp.get("name")
                    else {"port": port, "protocol": sp.get("protocol", "TCP")}
                    for sp in svc["spec"].get("ports") or []
                ]
                key = "addresses" if pod_ready(p) else "notReadyAddresses"
                subsets.append({key: [addr], "ports": sports})
            subsets.sort(key=lambda s: s["ports"][0]["port"] if s["ports"] else 0)
            body = {"metadata": {"name": name, "namespace": ns, "labels": dict(_meta(svc).get("labels") or {})}}
            if subsets:
                body["subsets"] = subsets
            cur = self.store.find(EP, ns, name)
            if cur is None:
                try:
                    self.store.create(EP, body, ns)
                    changed = True
                except ApiError as exc:
                    if exc.code not in (403, 404, 409):
                        raise
            elif cur.get("subsets") != body.get("subsets") or _meta(cur).get("labels") != body["metadata"]["labels"]:

                def apply(e: dict, body=body) -> None:
                    e["metadata"]["labels"] = body["metadata"]["labels"]
                    if "subsets" in body:
                        e["subsets"] = body["subsets"]
                    else:
                        e.pop("subsets", None)

                self.store.mutate(EP, ns, name, apply)
                changed = True
        for ep in self.store.items(EP):
            key = (_meta(ep)["namespace"], _meta(ep)["name"])
            if (
                key not in wanted
                and self.store.find(SVC, *key) is None
                and not (_meta(ep).get("labels") or {}).get("incidentlab.io/manual")
            ):
                self.store.remove(EP, *key)
                changed = True
        if changed:
            for fn in self.on_endpoints:
                fn()

    # -- horizontal pod autoscaler ----------------------------------------------------
    def autoscale(self) -> None:
        from .metrics import replica_calc

        for hpa in self.store.items(HPA):
            try:
                self._autoscale_one(hpa, replica_calc)
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise

    def _autoscale_one(self, hpa: dict, calc) -> None:
        ns = _meta(hpa)["namespace"]
        spec = hpa["spec"]
        ref = spec.get("scaleTargetRef") or {}
        mn, mx = spec.get("minReplicas", 1), spec["maxReplicas"]
        status = clone(hpa.get("status") or {})
        conds: dict[str, dict] = {c["type"]: c for c in status.get("conditions") or []}

        def cond(ctype: str, ok: bool, reason: str, message: str) -> None:
            s = "True" if ok else "False"
            prev = conds.get(ctype)
            conds[ctype] = {
                "type": ctype,
                "status": s,
                "lastTransitionTime": prev["lastTransitionTime"] if prev and prev["status"] == s else now_iso(),
                "reason": reason,
                "message": message,
            }

        target_res = SCALABLE.get(ref.get("kind", ""))
        target = self.store.find(target_res, ns, ref.get("name", "")) if target_res else None
        if target is None:
            plural = target_res.plural if target_res else (ref.get("kind") or "").lower() + "s"
            cond(
                "AbleToScale",
                False,
                "FailedGetScale",
                f"the HPA controller was unable to get the target's current scale: {plural}/scale.apps "
                f'"{ref.get("name")}" not found',
            )
            self._write_hpa(hpa, status, conds)
            return
        current = target["spec"].get("replicas", 1)
        now = time.time()
        metrics_status, desired, reason = [], current, ""
        cond("AbleToScale", True, "ReadyForNewScale", "recommended size matches current size")
        disabled = current == 0 and mn > 0  # a target scaled to zero by hand is left alone
        if disabled:
            cond(
                "ScalingActive",
                False,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            )
        elif current > mx:
            desired, reason = mx, "Current number of replicas above Spec.MaxReplicas"
        elif current < mn:
            desired, reason = mn, "Current number of replicas below Spec.MinReplicas"
        else:
            proposals = []
            for m in spec.get("metrics") or []:
                if m.get("type") != "Resource":
                    continue
                rname = m["resource"]["name"]
                tgt = m["resource"].get("target") or {}
                pods = [
                    p
                    for p in self.store.items(PODS, ns)
                    if selector_from_match(target["spec"]["selector"])(_meta(p).get("labels") or {}) and pod_active(p)
                ]
                got = calc(self.kubelet, pods, rname, tgt.get("averageUtilization", 100), current)
                if got is None:
                    cond(
                        "ScalingActive",
                        False,
                        "FailedGetResourceMetric",
                        f"the HPA was unable to compute the replica count: failed to get {rname} utilization: "
                        "unable to get metrics for resource " + rname,
                    )
                    continue
                proposal, pct, avg_value = got
                cur_metric = {"averageValue": avg_value}
                if "averageUtilization" in tgt:
                    cur_metric["averageUtilization"] = pct
                    proposals.append(proposal)
                metrics_status.append({"type": "Resource", "resource": {"name": rname, "current": cur_metric}})
            if proposals:
                cond(
                    "ScalingActive",
                    True,
                    "ValidMetricFound",
                    "the HPA was able to successfully calculate a replica count from cpu resource utilization "
                    "(percentage of request)",
                )
                recommendation = max(proposals)
                desired = self._stabilize(hpa, current, recommendation, now)
                if desired > current:
                    up = (spec.get("behavior") or {}).get("scaleUp") or {}
                    limit = max(
                        [
                            current + p["value"] if p["type"] == "Pods" else math.ceil(current * (1 + p["value"] / 100))
                            for p in up.get("policies") or []
                        ]
                        or [desired]
                    )
                    desired = min(desired, limit)
                reason = (
                    "cpu resource utilization (percentage of request) above target"
                    if desired > current
                    else "All metrics below target"
                )
                if desired < recommendation or (desired > recommendation and desired == current):
                    cond(
                        "AbleToScale",
                        True,
                        "ScaleDownStabilized",
                        "recent recommendations were higher than current one, applying the highest recent "
                        "recommendation",
                    )
        # A recommendation is always kept within the bounds: an idle target (0% CPU recommends 0) keeps minReplicas.
        clamped = desired if disabled else max(mn, min(mx, desired))
        if not disabled and desired < mn:
            cond(
                "ScalingLimited",
                True,
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )
        elif desired > mx:
            cond(
                "ScalingLimited",
                True,
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            )
        else:
            cond("ScalingLimited", False, "DesiredWithinRange", "the desired count is within the acceptable range")
        desired = clamped
        if desired != current:
            self.store.mutate(target_res, ns, ref["name"], lambda x: x["spec"].__setitem__("replicas", desired))
            status["lastScaleTime"] = now_iso()
            cond(
                "AbleToScale",
                True,
                "SucceededRescale",
                f"the HPA controller was able to update the target scale to {desired}",
            )
            self.events.record(
                hpa,
                "Normal",
                "SuccessfulRescale",
                f"New size: {desired}; reason: {reason}",
                "horizontal-pod-autoscaler",
            )
        status["currentReplicas"] = current
        status["desiredReplicas"] = desired
        if metrics_status:
            status["currentMetrics"] = metrics_status
        self._write_hpa(hpa, status, conds)

    def _stabilize(self, hpa: dict, current: int, recommendation: int, now: float) -> int:
        """Scale-down stabilization: the highest recommendation within the window wins."""
        key = _meta(hpa)["uid"]
        behavior = hpa["spec"].get("behavior") or {}
        down_window = (behavior.get("scaleDown") or {}).get("stabilizationWindowSeconds", 300)
        up_window = (behavior.get("scaleUp") or {}).get("stabilizationWindowSeconds", 0)
        recs = [(t, r) for t, r in self.recommendations.get(key, []) if now - t <= max(down_window, up_window)]
        recs.append((now, recommendation))
        self.recommendations[key] = recs
        down = max(r for t, r in recs if now - t <= down_window)
        up = min(r for t, r in recs if now - t <= up_window) if up_window else recommendation
        if recommendation < current:
            return min(current, down)
        if recommendation > current:
            return max(current, up)
        return current

    def _write_hpa(self, hpa: dict, status: dict, conds: dict) -> None:
        order = ["AbleToScale", "ScalingActive", "ScalingLimited"]
        status["conditions"] = [conds[t] for t in order if t in conds]
        if status != (hpa.get("status") or {}):
            self.store.mutate(
                HPA,
                _meta(hpa)["namespace"],
                _meta(hpa)["name"],
                lambda x: x.__setitem__("status", status),
                sub="status",
            )
