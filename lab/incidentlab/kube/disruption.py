"""PodDisruptionBudgets: the disruption controller's status and the ``pods/eviction`` subresource.

As in kube-controller-manager (pkg/controller/disruption) and kube-apiserver
(pkg/registry/core/pod/storage/eviction.go): the controller computes ``expectedPods``,
``desiredHealthy``, ``currentHealthy`` and ``disruptionsAllowed`` of every budget; an eviction
of a pod covered by a budget that allows no disruption is refused with 429 TooManyRequests
("Cannot evict pod as it would violate the pod's disruption budget."), otherwise the budget
is decremented, the pod recorded in ``disruptedPods`` (not counted healthy until it is gone,
for two minutes at most) and the pod deleted with the eviction's delete options.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .controllers import DEPLOY, PODS, RS, STS, _controller_uid, _meta, pod_ready
from .errors import ApiError, forbidden, too_many_requests
from .resources import res
from .selectors import selector_from_match
from .store import Store, clone, now_iso, parse_time

if TYPE_CHECKING:
    from .controllers import ControllerManager

PDB = res("poddisruptionbudgets.policy")
DELETION_TIMEOUT = 120.0  # an evicted pod that is still there after this long counts again
MAX_DISRUPTED = 2000
REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."


def _selects(pdb: dict, pod: dict) -> bool:
    sel = (pdb.get("spec") or {}).get("selector")
    if sel is None:  # policy/v1: a null selector selects nothing, an empty one every pod
        return False
    return selector_from_match(sel)(_meta(pod).get("labels") or {})


def budgets_of(store: Store, pod: dict) -> list[dict]:
    return [p for p in store.items(PDB, _meta(pod)["namespace"]) if _selects(p, pod)]


def _scaled(value: object, total: int) -> int:
    """intstr.GetScaledValueFromIntOrPercent, rounding up."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(total * int(value[:-1]) / 100)
    return int(value)


def _expected_scale(store: Store, ns: str, pods: list[dict]) -> int:
    """The replicas the pods' controllers want (a deployment through its replica set)."""
    seen: dict[str, int] = {}
    for p in pods:
        uid = _controller_uid(p)
        owner = next((o for r in (RS, STS) for o in store.items(r, ns) if _meta(o)["uid"] == uid), None)
        if owner is None:
            raise ValueError(f'found no controllers for pod "{_meta(p)["name"]}"')
        if owner["kind"] == "ReplicaSet":
            dep_uid = _controller_uid(owner)
            dep = next((d for d in store.items(DEPLOY, ns) if _meta(d)["uid"] == dep_uid), None)
            if dep is not None:
                seen[_meta(dep)["uid"]] = dep["spec"].get("replicas", 1)
                continue
        seen[_meta(owner)["uid"]] = owner["spec"].get("replicas", 1)
    return sum(seen.values())


def _healthy(pod: dict, disrupted: dict, now: float) -> bool:
    if _meta(pod).get("deletionTimestamp") or not pod_ready(pod):
        return False
    t = parse_time(disrupted.get(_meta(pod)["name"]))
    return t is None or t + DELETION_TIMEOUT < now


def compute_status(store: Store, pdb: dict, now: float) -> dict:
    ns = _meta(pdb)["namespace"]
    spec, old = pdb.get("spec") or {}, pdb.get("status") or {}
    pods = [p for p in store.items(PODS, ns) if _selects(pdb, p)]
    alive = {_meta(p)["name"] for p in pods if not _meta(p).get("deletionTimestamp")}
    disrupted = {
        n: t
        for n, t in (old.get("disruptedPods") or {}).items()
        if n in alive and (parse_time(t) or 0) + DELETION_TIMEOUT >= now
    }
    error = ""
    try:
        if spec.get("maxUnavailable") is not None:
            expected = _expected_scale(store, ns, pods)
            desired = max(0, expected - _scaled(spec["maxUnavailable"], expected))
        elif isinstance(spec.get("minAvailable"), str):
            expected = _expected_scale(store, ns, pods)
            desired = _scaled(spec["minAvailable"], expected)
        else:
            expected, desired = len(pods), int(spec.get("minAvailable") or 0)
    except ValueError as exc:
        expected, desired, error = 0, 0, str(exc)
    healthy = sum(1 for p in pods if _healthy(p, disrupted, now))
    allowed = 0 if error else max(0, healthy - desired)
    status = {
        "observedGeneration": _meta(pdb).get("generation", 1),
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
    }
    if disrupted:
        status["disruptedPods"] = disrupted
    if error:
        reason, ok, message = "SyncFailed", False, error
    else:
        reason, ok, message = ("SufficientPods", True, "") if allowed > 0 else ("InsufficientPods", False, "")
    status["conditions"] = [_allowed_condition(old, ok, reason, message, status["observedGeneration"])]
    return status


def _allowed_condition(old: dict, ok: bool, reason: str, message: str, generation: int) -> dict:
    prev = next((c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
    s = "True" if ok else "False"
    return {
        "type": "DisruptionAllowed",
        "status": s,
        "observedGeneration": generation,
        "lastTransitionTime": prev["lastTransitionTime"] if prev and prev.get("status") == s else now_iso(),
        "reason": reason,
        "message": message,
    }


def sync_budgets(cm: ControllerManager) -> None:
    """The disruption controller's pass over every budget."""
    now = time.time()
    for pdb in cm.store.items(PDB):
        if _meta(pdb).get("deletionTimestamp"):
            continue
        status = compute_status(cm.store, pdb, now)
        if status != (pdb.get("status") or {}):
            cm.store.mutate(
                PDB,
                _meta(pdb)["namespace"],
                _meta(pdb)["name"],
                lambda x, s=status: x.__setitem__("status", s),
                "status",
            )


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def evict(store: Store, ns: str, name: str, options: dict, dry: bool = False) -> None:
    """The eviction subresource: delete the pod unless its budget forbids it (429)."""
    with store.lock:
        pod = store.get(PODS, ns, name)
        options = dict(options or {})
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed", "Pending") or _meta(pod).get("deletionTimestamp"):
            store.delete(PODS, ns, name, options, dry=dry)
            return
        budgets = budgets_of(store, pod)
        if len(budgets) > 1:
            raise ApiError(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                {"causes": [{"message": "more than one PodDisruptionBudget"}]},
            )
        if budgets:
            pdb = budgets[0]
            st, spec = pdb.get("status") or {}, pdb.get("spec") or {}
            unhealthy_ok = not pod_ready(pod) and (
                spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow"
                or (st.get("currentHealthy", 0) >= st.get("desiredHealthy", 0) and st.get("desiredHealthy", 0) > 0)
            )
            if unhealthy_ok:
                # Only the pod as it was judged: a pod that turned ready meanwhile is not deleted.
                options.setdefault("preconditions", {})["resourceVersion"] = _meta(pod)["resourceVersion"]
            else:
                _take_disruption(store, pdb, name, dry)
        store.delete(PODS, ns, name, options, dry=dry)


def _take_disruption(store: Store, pdb: dict, pod_name: str, dry: bool) -> None:
    st = pdb.get("status") or {}
    pdb_name = _meta(pdb)["name"]
    if st.get("observedGeneration", 0) < _meta(pdb).get("generation", 1):
        err = too_many_requests(
            REFUSED,
            [
                {
                    "reason": "DisruptionBudget",
                    "message": f"The disruption budget {pdb_name} is still being processed by the server.",
                }
            ],
        )
        err.details["retryAfterSeconds"] = 10
        raise err
    allowed = st.get("disruptionsAllowed", 0)
    if allowed < 0:
        raise forbidden("poddisruptionbudget", pdb_name, "pdb disruptions allowed is negative", "policy")
    if len(st.get("disruptedPods") or {}) > MAX_DISRUPTED:
        raise forbidden(
            "poddisruptionbudget",
            pdb_name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
            "policy",
        )
    if allowed == 0:
        raise too_many_requests(
            REFUSED,
            [
                {
                    "reason": "DisruptionBudget",
                    "message": f"The disruption budget {pdb_name} needs {st.get('desiredHealthy', 0)} healthy pods "
                    f"and has {st.get('currentHealthy', 0)} currently",
                }
            ],
        )
    if dry:
        return
    new = clone(pdb)
    nst = new.setdefault("status", {})
    nst["disruptionsAllowed"] = allowed - 1
    nst.setdefault("disruptedPods", {})[pod_name] = _micro_now()
    if allowed - 1 == 0:
        nst["conditions"] = [_allowed_condition(st, False, "InsufficientPods", "", nst.get("observedGeneration", 1))]
    store.update(PDB, new, sub="status")
