# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rollouts of deployments, statefulsets and daemonsets: restart them, and wait for them as
``kubectl rollout status`` does, failing fast on ``ProgressDeadlineExceeded``.

:func:`rollout_status` is the pure judgement of one workload object (the API's JSON),
following kubectl's status viewers (``kubectl/pkg/polymorphichelpers/rollout_status.go``),
plus one stricter rule: old pods still being removed (a scale-down) mean "not done yet".
:func:`wait_rollouts` polls several workloads in several clusters at once and returns,
for each, how far it got; a failed or timed-out rollout names the pods that are not ready,
why, and their last log lines.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from ansible_collections.incident.response.plugins.module_utils.common import Deadline, ModuleFailure, bounded_map
from ansible_collections.incident.response.plugins.module_utils.k8s import (
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    api_failures,
    api_path,
    explain,
    request_bytes,
)
from ansible_collections.incident.response.plugins.module_utils.k8s_logs import tail_pods

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
SMP = STRATEGIC_MERGE_PATCH
MERGE = MERGE_PATCH
# Container states that will not fix themselves while we wait: report them as soon as they are seen.
STUCK_REASONS = (
    "CrashLoopBackOff",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
)


class Kind:
    """One kind of workload, all in ``apps/v1``: its name and REST paths."""

    def __init__(self, name, plural, scalable):
        self.name = name
        self.plural = plural
        self.singular = name.lower()
        self.scalable = scalable

    def path(self, namespace, name=None, sub=None):
        return api_path("apps/v1", self.plural, namespace, name, sub)


KINDS = {
    "Deployment": Kind("Deployment", "deployments", True),
    "StatefulSet": Kind("StatefulSet", "statefulsets", True),
    "DaemonSet": Kind("DaemonSet", "daemonsets", False),
}


def now_rfc3339():
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ref(cluster, namespace, kind, name):
    """How a workload is named in messages: ``primary/microservices/deployment/user-service``."""
    return f"{cluster}/{namespace}/{kind.lower()}/{name}"


# -- judging one object ---------------------------------------------------------------------


def _int(value):
    return int(value or 0)


def rollout_status(obj):
    """Where the rollout of one workload stands, from its object alone.

    Returns a dict: ``done`` (bool), ``error`` (why it can never finish, or None), ``message``
    (kubectl's wording), and the counts ``desired``, ``updated``, ``ready``, ``available``.
    """
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    name = meta.get("name", "")
    generation = _int(meta.get("generation"))
    observed = _int(st.get("observedGeneration"))
    out = dict(done=False, error=None, message="", desired=0, updated=0, ready=0, available=0, generation=generation)

    if kind == "Deployment":
        desired = spec.get("replicas", 1)
        updated, replicas = _int(st.get("updatedReplicas")), _int(st.get("replicas"))
        available = _int(st.get("availableReplicas"))
        out.update(desired=desired, updated=updated, ready=_int(st.get("readyReplicas")), available=available)
        if generation > observed:
            out["message"] = "Waiting for deployment spec update to be observed..."
            return out
        progressing = next((c for c in st.get("conditions") or [] if c.get("type") == "Progressing"), None)
        if progressing and progressing.get("reason") == TIMED_OUT_REASON:
            out["error"] = out["message"] = f'deployment "{name}" exceeded its progress deadline'
            return out
        if updated < desired:
            out["message"] = (
                f'Waiting for deployment "{name}" rollout to finish: {updated} out of {desired} new replicas '
                "have been updated..."
            )
        elif replicas > updated:
            out["message"] = (
                f'Waiting for deployment "{name}" rollout to finish: {replicas - updated} old replicas are '
                "pending termination..."
            )
        elif available < updated:
            out["message"] = (
                f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} updated replicas '
                "are available..."
            )
        else:
            out.update(done=True, message=f'deployment "{name}" successfully rolled out')
        return out

    if kind == "StatefulSet":
        desired = spec.get("replicas", 1)
        ready, updated = _int(st.get("readyReplicas")), _int(st.get("updatedReplicas"))
        replicas = _int(st.get("replicas"))
        out.update(desired=desired, updated=updated, ready=ready, available=_int(st.get("availableReplicas", ready)))
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            out["error"] = out["message"] = "rollout status is only available for RollingUpdate strategy type"
            return out
        if observed == 0 or generation > observed:
            out["message"] = "Waiting for statefulset spec update to be observed..."
            return out
        if ready < desired:
            out["message"] = f"Waiting for {desired - ready} pods to be ready..."
            return out
        if replicas > desired:  # stricter than kubectl: a scale-down is done when the old pods are gone
            out["message"] = f"Waiting for {replicas - desired} pods to be terminated..."
            return out
        partition = (strategy.get("rollingUpdate") or {}).get("partition")
        if partition is not None:
            if updated < desired - partition:
                out["message"] = (
                    f"Waiting for partitioned roll out to finish: {updated} out of {desired - partition} new pods "
                    "have been updated..."
                )
            else:
                out.update(done=True, message=f"partitioned roll out complete: {updated} new pods have been updated...")
            return out
        if st.get("updateRevision") != st.get("currentRevision"):
            out["message"] = (
                f"waiting for statefulset rolling update to complete {updated} pods at revision "
                f"{st.get('updateRevision')}..."
            )
        else:
            out.update(
                done=True,
                message=f"statefulset rolling update complete {_int(st.get('currentReplicas'))} pods at revision "
                f"{st.get('currentRevision')}...",
            )
        return out

    if kind == "DaemonSet":
        desired = _int(st.get("desiredNumberScheduled"))
        updated, available = _int(st.get("updatedNumberScheduled")), _int(st.get("numberAvailable"))
        out.update(desired=desired, updated=updated, ready=_int(st.get("numberReady")), available=available)
        if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
            out["error"] = out["message"] = "rollout status is only available for RollingUpdate strategy type"
            return out
        if generation > observed:
            out["message"] = "Waiting for daemon set spec update to be observed..."
        elif updated < desired:
            out["message"] = (
                f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} new pods have been '
                "updated..."
            )
        elif available < desired:
            out["message"] = (
                f'Waiting for daemon set "{name}" rollout to finish: {available} of {desired} updated pods are '
                "available..."
            )
        else:
            out.update(done=True, message=f'daemon set "{name}" successfully rolled out')
        return out

    out["error"] = out["message"] = f"no rollout status for kind {kind!r}"
    return out


def restart_blocker(obj):
    """Why a rollout restart of this object would not replace its pods (None when it would)."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    name = (obj.get("metadata") or {}).get("name")
    if kind == "Deployment" and spec.get("paused"):
        return f'deployment "{name}" is paused: a restart would not roll out (run `kubectl rollout resume` first)'
    if kind in ("StatefulSet", "DaemonSet"):
        strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
        if strategy != "RollingUpdate":
            return (
                f'{kind.lower()} "{name}" uses updateStrategy {strategy}: a rollout restart would not replace its '
                "pods; delete them instead (mode delete_pods)"
            )
    return None


def restart_body(timestamp):
    """The patch of ``kubectl rollout restart``."""
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: timestamp}}}}}


def restarted_at(obj):
    """The restartedAt annotation of the pod template, or None."""
    tmpl = (obj.get("spec") or {}).get("template") or {}
    return ((tmpl.get("metadata") or {}).get("annotations") or {}).get(RESTARTED_AT)


def restart(cluster, obj, timestamp=None, dry_run=False):
    """``kubectl rollout restart`` of one workload object; returns the patched object (with ``dry_run``,
    the server's answer to the same patch as a dry run: the object it would store)."""
    kind = KINDS[obj["kind"]]
    meta = obj["metadata"]
    timestamp = timestamp or now_rfc3339()
    if restarted_at(obj) == timestamp:  # restarted within the same second: make the template change anyway
        timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = restart_body(timestamp)
    return cluster.patch(
        f"restart {kind.singular} {meta['namespace']}/{meta['name']}",
        kind.path(meta["namespace"], meta["name"]),
        body,
        SMP,
        dry_run=dry_run,
        simulated=body,
    )


# -- pods ------------------------------------------------------------------------------------


def selector_string(selector):
    """A LabelSelector object as a label selector query (``app=x,tier in (a,b),!canary``)."""
    parts = [f"{k}={v}" for k, v in sorted(((selector or {}).get("matchLabels") or {}).items())]
    for expr in (selector or {}).get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), ",".join(expr.get("values") or [])
        parts.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(op, f"!{key}")
        )
    return ",".join(parts)


def pod_ready(pod):
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def pod_summary(pod):
    """What is wrong with a pod, in a few fields (no log lines)."""
    st = pod.get("status") or {}
    statuses = st.get("containerStatuses") or []
    bad = next((c for c in statuses if not c.get("ready")), statuses[0] if statuses else None)
    out = dict(
        name=pod["metadata"]["name"],
        phase=st.get("phase"),
        ready=pod_ready(pod),
        node=(pod.get("spec") or {}).get("nodeName"),
        container=None,
        restarts=sum(_int(c.get("restartCount")) for c in statuses),
        reason=None,
        message=None,
        last_exit_code=None,
    )
    if bad:
        state = bad.get("state") or {}
        last = (bad.get("lastState") or {}).get("terminated") or {}
        current = state.get("waiting") or state.get("terminated") or {}
        out.update(container=bad.get("name"), reason=current.get("reason"), message=current.get("message"))
        if last:
            out["last_exit_code"] = last.get("exitCode")
        if not out["reason"] and state.get("running") and not bad.get("ready"):
            out["reason"] = "NotReady"
    else:
        cond = next((c for c in st.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        if cond and cond.get("status") == "False":
            out.update(reason=cond.get("reason"), message=cond.get("message"))
    return out


def unready_pods(cluster, namespace, selector, log_lines, limit=5):
    """The pods of a selector that are not ready (newest first), with why and their last log lines
    (through ``k8s_logs.tail_pods``)."""
    pods = cluster.get(
        f"list the pods of {namespace} matching {selector}",
        api_path("v1", "pods", namespace),
        labelSelector=selector,
    ).get("items", [])
    pods = [p for p in pods if not p["metadata"].get("deletionTimestamp") and not pod_ready(p)]
    pods.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True)
    summaries = [pod_summary(p) for p in pods[:limit]]
    items = [(namespace, s["name"], s["container"]) for s in summaries if s["container"]]
    tails = (
        tail_pods(cluster.clients, items, log_lines, previous=True, timeout=cluster.timeout) if log_lines > 0 else {}
    )
    for s in summaries:
        tail = tails.get(f"{namespace}/{s['name']}/{s['container']}") or {}
        # A crash loop's current instance has not written anything yet: the instance that died says why.
        crashed = s["restarts"] and (s["reason"] in (*STUCK_REASONS, "Error", "Completed") or not tail.get("lines"))
        s["log_tail"] = (tail.get("previous_lines") if crashed else None) or tail.get("lines") or []
    return summaries


def unserved_pods(cluster, namespace, pods):
    """Names of the pods that a Service selects but whose Endpoints do not list them as ready (yet).

    A pod is Ready before the Service's consumers (kube-proxy, load balancers) send it traffic;
    waiting for this before taking another pod away keeps a service answering.
    """
    services = cluster.get(f"list the services of {namespace}", api_path("v1", "services", namespace))
    services = [s for s in services.get("items", []) if (s.get("spec") or {}).get("selector")]
    if not services or not pods:
        return []
    endpoints = cluster.get(f"list the endpoints of {namespace}", api_path("v1", "endpoints", namespace))
    served = {}
    for ep in endpoints.get("items", []):
        served[ep["metadata"]["name"]] = {
            (a.get("targetRef") or {}).get("uid")
            for subset in ep.get("subsets") or []
            for a in subset.get("addresses") or []
        }
    out = []
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        for svc in services:
            selects = all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
            if selects and pod["metadata"]["uid"] not in served.get(svc["metadata"]["name"], set()):
                out.append(pod["metadata"]["name"])
                break
    return out


def describe_pods(pods):
    """One line about the failing pods, for a failure message."""
    if not pods:
        return "no unready pods found"
    parts = []
    for p in pods[:3]:
        why = p.get("reason") or p.get("phase") or "not ready"
        part = f"{p['name']} ({why}, {p['restarts']} restarts)"
        if p.get("log_tail"):
            part += f": {p['log_tail'][-1].strip()[:160]}"
        parts.append(part)
    more = f" and {len(pods) - 3} more" if len(pods) > 3 else ""
    return "; ".join(parts) + more


# -- waiting ---------------------------------------------------------------------------------


def _read(cluster, kind, namespace, name):
    """(object, error message, HTTP status) of one read, without raising."""
    try:
        data = request_bytes(cluster.clients, "GET", kind.path(namespace, name), timeout=cluster.timeout)
        return json.loads(data), None, None
    except api_failures() as exc:
        what = f"read {kind.singular} {namespace}/{name}"
        status = getattr(exc, "status", 0) or 0  # an ApiException's HTTP status
        return None, explain(exc, cluster.clients, what), status
    except ModuleFailure as exc:  # the clients could not be made
        return None, exc.msg, 0


def wait_rollout(cluster, kind_name, namespace, name, deadline, poll=0.5, log_lines=20, min_generation=0):
    """Poll one workload until its rollout is done, fails, or ``deadline`` (a common.Deadline) expires.

    Returns a dict: ``status`` V(rolled_out), V(failed), V(timed_out) or V(error), kubectl's
    ``message``, the counts, ``elapsed``, and for anything but success the ``unready_pods``.
    """
    kind = KINDS[kind_name]
    start = time.monotonic()
    out = dict(cluster=cluster.name, namespace=namespace, kind=kind_name, name=name, status="timed_out")
    obj, last_error = None, None
    while True:
        got, error, code = _read(cluster, kind, namespace, name)
        if got is not None:
            obj, last_error = got, None
            st = rollout_status(obj)
            if min_generation and st["generation"] < min_generation:
                st["message"] = "Waiting for the new generation to be stored..."
            out.update({k: st[k] for k in ("message", "desired", "updated", "ready", "available")})
            if st["error"]:
                out["status"] = "failed"
                break
            if st["done"] and st["generation"] >= min_generation:
                out["status"] = "rolled_out"
                break
        else:
            last_error = error
            if code in (401, 403, 404):
                out.update(status="error", message=error)
                break
        if deadline.expired:
            break
        time.sleep(min(poll, max(0.05, deadline.remaining())))
    out["elapsed"] = round(time.monotonic() - start, 2)
    if out["status"] == "timed_out":
        what = out.get("message") or "no answer"
        out["message"] = f"not rolled out after {deadline.seconds:g}s: {what}" + (
            f" (last error: {last_error})" if last_error else ""
        )
    if out["status"] != "rolled_out" and obj is not None:
        selector = selector_string((obj.get("spec") or {}).get("selector"))
        try:
            out["unready_pods"] = unready_pods(cluster, namespace, selector, log_lines) if selector else []
        except ModuleFailure as exc:
            out["unready_pods"] = []
            out["message"] += f" (pods not listed: {exc.msg})"
    return out


def wait_rollouts(items, timeout, poll=0.5, log_lines=20, concurrency=16):
    """Wait for several rollouts at once; ``items`` are dicts with ``cluster`` (a k8s.Cluster),
    ``namespace``, ``kind``, ``name`` and optionally ``min_generation``. Results in input order."""
    deadline = Deadline(timeout)

    def one(item):
        return wait_rollout(
            item["cluster"],
            item["kind"],
            item["namespace"],
            item["name"],
            deadline,
            poll,
            log_lines,
            item.get("min_generation", 0),
        )

    return bounded_map(one, items, concurrency)


def rollout_failure(results):
    """A one-line message for the rollouts that did not finish, or None when all rolled out."""
    bad = [r for r in results if r["status"] != "rolled_out"]
    if not bad:
        return None
    parts = []
    for r in bad:
        text = f"{ref(r['cluster'], r['namespace'], r['kind'], r['name'])}: {r['message']}"
        if r.get("unready_pods") is not None:
            text += f" [{describe_pods(r['unready_pods'])}]"
        parts.append(text)
    return f"{len(bad)} of {len(results)} rollout(s) did not complete: " + " | ".join(parts)
