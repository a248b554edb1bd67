"""The Job controller: pods run to completion, as kube-controller-manager's (pkg/controller/job).

What clients see of a NonIndexed job: up to ``parallelism`` active pods until ``completions``
pods have succeeded (conditions ``SuccessCriteriaMet`` then ``Complete``, ``completionTime``);
failed pods are replaced after the controller's back-off (10 s, doubling, at most 6 min) until
``backoffLimit`` is passed (``FailureTarget`` then ``Failed``, reason ``BackoffLimitExceeded``);
``activeDeadlineSeconds`` (``DeadlineExceeded``), ``suspend`` and ``ttlSecondsAfterFinished``.
With ``restartPolicy: OnFailure`` the container restarts in place and its restarts count as
failures. Not emulated: Indexed completion mode, pod failure and success policies.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from .controllers import PODS, _controller_uid, _meta, _owner_ref, pod_ready
from .resources import res
from .store import clone, now_iso, parse_time

if TYPE_CHECKING:
    from .controllers import ControllerManager

JOB = res("jobs.batch")
BACKOFF_BASE, BACKOFF_MAX = 10.0, 360.0


def _cond(ctype: str, reason: str, message: str) -> dict:
    ts = now_iso()
    return {
        "type": ctype,
        "status": "True",
        "lastProbeTime": ts,
        "lastTransitionTime": ts,
        "reason": reason,
        "message": message,
    }


def _has(status: dict, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in status.get("conditions") or [])


def _restarts(p: dict) -> int:
    return sum(c.get("restartCount", 0) for c in (p.get("status") or {}).get("containerStatuses") or [])


class JobTracker:
    """What the controller remembers of each job: the pods it saw end (pods may be deleted later)."""

    def __init__(self) -> None:
        self.succeeded: dict[str, set[str]] = {}
        self.failed: dict[str, set[str]] = {}
        self.last_failure: dict[str, float] = {}


def sync_job(cm: ControllerManager, job: dict, tracker: JobTracker) -> None:
    if _meta(job).get("deletionTimestamp"):
        return
    ns, name, uid = _meta(job)["namespace"], _meta(job)["name"], _meta(job)["uid"]
    spec = job["spec"]
    status = clone(job.get("status") or {})
    now = time.time()
    pods = [p for p in cm.store.items(PODS, ns) if _controller_uid(p) == uid]
    ok, ko = tracker.succeeded.setdefault(uid, set()), tracker.failed.setdefault(uid, set())
    for p in pods:
        phase = (p.get("status") or {}).get("phase")
        if phase == "Succeeded":
            ok.add(_meta(p)["uid"])
        elif phase == "Failed" and _meta(p)["uid"] not in ko:
            ko.add(_meta(p)["uid"])
            tracker.last_failure[uid] = now
    active = [
        p
        for p in pods
        if not _meta(p).get("deletionTimestamp") and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]
    restarts = sum(_restarts(p) for p in pods) if spec["template"]["spec"].get("restartPolicy") == "OnFailure" else 0
    succeeded, failed = len(ok), len(ko) + restarts
    completions = spec.get("completions")
    parallelism = spec.get("parallelism", 1)
    finished = _has(status, "Complete") or _has(status, "Failed")

    if not finished:
        if spec.get("suspend"):
            for p in active:
                cm._delete(PODS, p)
            if not _has(status, "Suspended"):
                status.setdefault("conditions", []).append(_cond("Suspended", "JobSuspended", "Job suspended"))
            status.pop("startTime", None)
            active = []
        else:
            status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "Suspended"]
            status.setdefault("startTime", now_iso())
            started = parse_time(status["startTime"]) or now
            deadline = spec.get("activeDeadlineSeconds")
            fail = None
            if deadline is not None and now >= started + deadline:
                fail = ("DeadlineExceeded", "Job was active longer than specified deadline")
            elif failed > spec.get("backoffLimit", 6):
                fail = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
            done = succeeded >= completions if completions is not None else succeeded > 0 and not active
            if fail:
                for p in active:
                    cm._delete(PODS, p)
                conds = status.setdefault("conditions", [])
                conds += [_cond("FailureTarget", *fail), _cond("Failed", *fail)]
                cm.events.record(job, "Warning", fail[0], fail[1], "job-controller")
                active = []
            elif done:
                for p in active:
                    cm._delete(PODS, p)
                msg = "Reached expected number of succeeded pods"
                conds = status.setdefault("conditions", [])
                conds += [
                    _cond("SuccessCriteriaMet", "CompletionsReached", msg),
                    _cond("Complete", "CompletionsReached", msg),
                ]
                status["completionTime"] = now_iso()
                cm.events.record(job, "Normal", "Completed", "Job completed", "job-controller")
                active = []
            else:
                want = parallelism if completions is None else min(parallelism, completions - succeeded)
                if len(active) < want:
                    wait = _backoff_left(tracker, uid, len(ko) + restarts, now)
                    if wait > 0:
                        threading.Timer(wait, cm.wake.set).start()
                    else:
                        for _ in range(want - len(active)):
                            _create_pod(cm, job)
                elif len(active) > want:
                    for p in active[want:]:
                        cm._delete(PODS, p)
                if deadline is not None:
                    threading.Timer(max(0.05, started + deadline - now), cm.wake.set).start()
    elif (ttl := spec.get("ttlSecondsAfterFinished")) is not None:
        ended = parse_time(status.get("completionTime")) or parse_time(_last_transition(status)) or now
        if now >= ended + ttl:
            cm._delete(JOB, job)
            return
        threading.Timer(max(0.05, ended + ttl - now), cm.wake.set).start()

    pods = [p for p in cm.store.items(PODS, ns) if _controller_uid(p) == uid]
    live = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    new = dict(status)
    new.update(
        {
            "active": sum(1 for p in live if not _meta(p).get("deletionTimestamp")),
            "succeeded": succeeded,
            "failed": failed,
            "ready": sum(1 for p in live if pod_ready(p) and not _meta(p).get("deletionTimestamp")),
            "terminating": sum(1 for p in pods if _meta(p).get("deletionTimestamp")),
            "uncountedTerminatedPods": {},
        }
    )
    for k in ("active", "succeeded", "failed"):
        if not new[k]:
            del new[k]  # omitted when zero, as the API server writes them
    if new != (job.get("status") or {}):
        cm.store.mutate(JOB, ns, name, lambda x: x.__setitem__("status", new), sub="status")


def _last_transition(status: dict) -> str | None:
    return max((c.get("lastTransitionTime") or "" for c in status.get("conditions") or []), default=None)


def _backoff_left(tracker: JobTracker, uid: str, failures: int, now: float) -> float:
    if not failures or uid not in tracker.last_failure:
        return 0.0
    delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (failures - 1))
    return tracker.last_failure[uid] + delay - now


def _create_pod(cm: ControllerManager, job: dict) -> None:
    tmpl = clone(job["spec"]["template"])
    meta = tmpl.get("metadata") or {}
    pod = {
        "metadata": {
            "generateName": f"{_meta(job)['name']}-",
            "namespace": _meta(job)["namespace"],
            "labels": meta.get("labels") or {},
            "annotations": {**(meta.get("annotations") or {}), "batch.kubernetes.io/job-tracking": ""},
            "ownerReferences": [_owner_ref(job)],
        },
        "spec": tmpl.get("spec") or {},
    }
    created = cm.store.create(PODS, pod, _meta(job)["namespace"])
    cm.events.record(job, "Normal", "SuccessfulCreate", f"Created pod: {_meta(created)['name']}", "job-controller")
