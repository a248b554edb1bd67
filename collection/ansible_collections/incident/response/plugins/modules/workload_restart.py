#!/usr/bin/python
# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: workload_restart
short_description: Restart deployments, statefulsets and daemonsets, or delete their pods, and wait until ready
description:
  - The runbook's C(kubectl rollout restart deployment ...) (4.1, Resolution 3) for several workloads in several
    clusters (regions) in one task, concurrently. The pod template gets the annotation
    C(kubectl.kubernetes.io/restartedAt), as C(kubectl rollout restart) sets it, and the task waits with
    C(kubectl rollout status) semantics - generation observed, all replicas updated, updated replicas available,
    no old replicas left.
  - A deployment whose new pods cannot become ready fails as soon as the cluster reports C(ProgressDeadlineExceeded)
    (its C(progressDeadlineSeconds)), not at O(wait_timeout); a timeout fails too. Either way the result says how far
    every workload got and names the pods that are not ready, why, and their last log lines.
  - O(mode=delete_pods) is the runbook's blunt C(kubectl delete pod -l app=...) (2.3). By default it deletes one pod
    at a time and waits until the pods of that workload are as ready as before (a replacement is ready) before the
    next, so the service keeps answering. Pods without a controller are refused (nothing would replace them).
  - Every target is checked before anything changes; a missing workload, a paused deployment or an C(OnDelete)
    update strategy fails the task with nothing restarted.
version_added: 0.1.0
author:
  - Incident Response Engineering (@incident-response)
extends_documentation_fragment:
  - incident.response.kube_auth
  - incident.response.kube_clusters
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Lists the workloads that would be restarted and the pods that would be replaced or deleted, and sends the
        very restart patches (or pod deletions) the real run would send as server-side dry runs (C(dryRun=All)) -
        the API server authorizes, admits and validates them and stores nothing. So check mode fails where the real
        run would, and RV(workloads[].restarted_at) is the annotation the server would store.
      - Which pods would replace them is simulated (controllers do not act on a dry run), and there is nothing to
        wait for. Where a cluster refuses a dry run (an admission webhook without dry-run support), the module's
        own plan stands in for that request and a warning says so.
  diff_mode:
    support: full
    details: Per workload, the C(restartedAt) annotation and the pods before and after (or the pods to delete).
  platform:
    platforms: posix
options:
  namespace:
    description: Namespace of the workloads or pods.
    type: str
    required: true
  kind:
    description: Kind of the workloads named by O(name) or selected by O(label_selector).
    type: str
    choices: [Deployment, StatefulSet, DaemonSet]
    default: Deployment
  name:
    description: Names of the workloads. Each must exist in every cluster.
    type: list
    elements: str
    default: []
    aliases: [names]
  label_selector:
    description: Also the workloads whose labels match this selector. It must match at least one in every cluster.
    type: str
  mode:
    description:
      - V(rollout) restarts the workloads as C(kubectl rollout restart) does and waits for the rollout.
      - V(delete_pods) deletes the pods of the workloads (or the pods O(pod_selector) selects) and waits for their
        replacements.
    type: str
    choices: [rollout, delete_pods]
    default: rollout
  pod_selector:
    description:
      - With O(mode=delete_pods), delete the pods this label selector matches (as C(kubectl delete pod -l)) instead
        of the pods of O(name)/O(label_selector). It must match at least one pod in every cluster.
    type: str
  one_at_a_time:
    description:
      - With O(mode=delete_pods), delete one pod of each workload at a time and wait until as many pods are ready
        as before the deletion (its replacement is ready and in its Services' Endpoints, then O(settle_seconds))
        before deleting the next. V(false) deletes them all at once (an outage for the workload until replacements
        are ready).
    type: bool
    default: true
  settle_seconds:
    description:
      - With O(mode=delete_pods) and O(one_at_a_time=true), seconds to wait after a replacement is ready and listed
        in the Endpoints of its Services before deleting the next pod, so that load balancers send it traffic first
        (what C(minReadySeconds) does for a rollout).
    type: float
    default: 2.0
  restarted_since:
    description:
      - Idempotence for re-runs. A workload whose pod template was restarted (its C(restartedAt) annotation) at or
        after this time is left alone; with O(mode=delete_pods), pods created at or after it are not deleted.
      - An RFC 3339 time, for example the start of the incident (V(2026-03-01T10:00:00Z)).
    type: str
  wait:
    description: Wait for the rollouts (or the replacement pods).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for all workloads together.
    type: float
    default: 300
  log_lines:
    description: Log lines to return of each pod that is not ready when the wait fails.
    type: int
    default: 20
  concurrency:
    description: Workloads and clusters handled at once.
    type: int
    default: 16
notes:
  - A rollout restart is a change every time it runs; use O(restarted_since) to make a re-run of a playbook skip
    what it already restarted.
seealso:
  - module: incident.response.workload_scale
  - module: incident.response.config_patch
"""

EXAMPLES = r"""
# Runbook 4.1: kubectl rollout restart deployment payment-service -n microservices
- name: Restart payment-service in both regions and wait until it is rolled out
  incident.response.workload_restart:
    kubeconfig: "{{ kubeconfig }}"
    clusters:
      - {name: primary, context: primary}
      - {name: secondary, context: secondary}
    namespace: microservices
    name: payment-service
  tags: [destructive]

# Resolution 3: restart user-service and order-service to pick up new config
- name: Restart the services that read the new configuration
  incident.response.workload_restart:
    context: primary
    namespace: microservices
    name: [user-service, order-service]
    restarted_since: "{{ incident_started_at }}"

# Runbook 2.3: kubectl delete pod -l app=user-service -n microservices
- name: Replace user-service's pods one at a time (no outage)
  incident.response.workload_restart:
    context: primary
    namespace: microservices
    mode: delete_pods
    pod_selector: app=user-service

- name: Which pods would a restart of every shop service replace?
  incident.response.workload_restart:
    context: primary
    namespace: microservices
    label_selector: app.kubernetes.io/part-of=shop
  check_mode: true
"""

RETURN = r"""
msg:
  description: One line saying what was (or would be) done.
  returned: always
  type: str
  sample: "restarted 2 workload(s) in 2 cluster(s), all rolled out: primary/microservices/deployment/payment-service
    (2 pods replaced); secondary/microservices/deployment/payment-service (2 pods replaced)"
workloads:
  description: With O(mode=rollout), one entry per workload and cluster.
  returned: always
  type: list
  elements: dict
  contains:
    cluster:
      description: Cluster name.
      type: str
      sample: primary
    namespace:
      description: Namespace.
      type: str
      sample: microservices
    kind:
      description: Kind.
      type: str
      sample: Deployment
    name:
      description: Name.
      type: str
      sample: payment-service
    status:
      description: V(planned) (check mode), V(restarted), V(skipped) (O(restarted_since)) or V(failed).
      type: str
      sample: restarted
    restarted_at:
      description: The C(restartedAt) annotation set (in check mode, the one the server's dry run would set; when
        skipped, the one found).
      type: str
      sample: "2026-03-01T10:04:12Z"
    pods_before:
      description: Pods of the workload before the restart.
      type: list
      elements: str
      sample: [payment-service-7c9d-abcde, payment-service-7c9d-fghij]
    pods_after:
      description: Pods of the workload after the wait.
      type: list
      elements: str
      sample: [payment-service-5f2a-klmno, payment-service-5f2a-pqrst]
    rollout:
      description:
        - The wait - C(status) V(rolled_out), V(failed), V(timed_out) or V(error), kubectl's C(message), C(desired),
          C(updated), C(ready), C(available), C(elapsed) seconds, and for anything but success C(unready_pods)
          (C(name), C(phase), C(reason), C(message), C(restarts), C(last_exit_code), C(log_tail)).
      type: dict
      sample: {status: failed, message: deployment "broken" exceeded its progress deadline, desired: 2, updated: 1,
        ready: 2, available: 2, elapsed: 12.1, unready_pods: [{name: broken-6d4f-xyz12, phase: Running,
        reason: CrashLoopBackOff, restarts: 2, log_tail: ["ERROR fatal: cannot initialise application context"]}]}
deletions:
  description: With O(mode=delete_pods), one entry per workload (or pod selector) and cluster.
  returned: always
  type: list
  elements: dict
  contains:
    cluster:
      description: Cluster name.
      type: str
      sample: primary
    namespace:
      description: Namespace.
      type: str
      sample: microservices
    workload:
      description: C(kind/name) of the workload, or null for O(pod_selector).
      type: str
      sample: deployment/user-service
    selector:
      description: Label selector of the pods.
      type: str
      sample: app=user-service
    status:
      description: V(planned), V(replaced), V(skipped), V(failed) or V(timed_out).
      type: str
      sample: replaced
    message:
      description: How far it got.
      type: str
      sample: 2 pod(s) deleted, 2 of 2 pods ready
    pods_before:
      description: Pods before.
      type: list
      elements: str
    deleted:
      description: Pods deleted, in order.
      type: list
      elements: str
    pods_after:
      description: Pods at the end.
      type: list
      elements: str
    unready_pods:
      description: When it failed, the pods that are not ready, why, and their last log lines.
      type: list
      elements: dict
elapsed:
  description: Seconds the task took.
  returned: always
  type: float
  sample: 9.8
"""

import time
from datetime import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.response.plugins.module_utils import k8s_rollout as rollout
from ansible_collections.incident.response.plugins.module_utils import k8s_workloads as wl
from ansible_collections.incident.response.plugins.module_utils.common import (
    Deadline,
    ModuleFailure,
    bounded_map,
    check_numbers,
    run,
)
from ansible_collections.incident.response.plugins.module_utils.k8s import (
    api_path,
    auth_argument_spec,
    clusters_argument_spec,
    clusters_from_params,
    warn_dry_runs_refused,
)

POLL = 0.5


def argument_spec():
    spec = auth_argument_spec()
    spec.update(clusters_argument_spec())
    spec.update(
        namespace=dict(type="str", required=True),
        kind=dict(type="str", choices=list(rollout.KINDS), default="Deployment"),
        name=dict(type="list", elements="str", default=[], aliases=["names"]),
        label_selector=dict(type="str"),
        mode=dict(type="str", choices=["rollout", "delete_pods"], default="rollout"),
        pod_selector=dict(type="str"),
        one_at_a_time=dict(type="bool", default=True),
        settle_seconds=dict(type="float", default=2.0),
        restarted_since=dict(type="str"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="float", default=300),
        log_lines=dict(type="int", default=20),
        concurrency=dict(type="int", default=16),
    )
    return spec


def parse_time(text, what="restarted_since"):
    """An RFC 3339 time as a timestamp (seconds)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise ModuleFailure(f"{what}: {text!r} is not an RFC 3339 time such as 2026-03-01T10:00:00Z") from None
    if value.tzinfo is None:
        raise ModuleFailure(f"{what}: {text!r} has no time zone; add Z or an offset")
    return value.timestamp()


def _ts(text):
    try:
        return parse_time(text) if text else None
    except ModuleFailure:
        return None


def list_pods(cluster, namespace, selector):
    what = f"list the pods of {namespace} matching {selector}"
    items = cluster.get(what, api_path("v1", "pods", namespace), labelSelector=selector).get("items", [])
    return sorted(items, key=lambda p: p["metadata"]["name"])


def live(pods):
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def names(pods):
    return [p["metadata"]["name"] for p in pods]


# -- rollout mode -----------------------------------------------------------------------------


def plan_rollouts(cluster, p, since):
    objs = wl.find_workloads(cluster, p["namespace"], p["kind"], p["name"], p["label_selector"])
    plans = []
    for obj in objs:
        meta = obj["metadata"]
        where = rollout.ref(cluster.name, meta["namespace"], obj["kind"], meta["name"])
        blocker = rollout.restart_blocker(obj)
        if blocker:
            raise ModuleFailure(f"{where}: {blocker}; nothing was restarted")
        selector = rollout.selector_string((obj.get("spec") or {}).get("selector"))
        entry = dict(
            cluster=cluster.name,
            namespace=meta["namespace"],
            kind=obj["kind"],
            name=meta["name"],
            status="planned",
            restarted_at=rollout.restarted_at(obj),
            pods_before=names(live(list_pods(cluster, meta["namespace"], selector))) if selector else [],
        )
        last = _ts(entry["restarted_at"])
        if since is not None and last is not None and last >= since:
            entry["status"] = "skipped"
        plans.append(dict(cluster=cluster, obj=obj, selector=selector, entry=entry))
    return plans


def do_rollouts(module, clusters, since, start):
    p = module.params
    per_cluster = bounded_map(lambda c: _guarded(lambda: plan_rollouts(c, p, since)), clusters, p["concurrency"])
    errors = [r for r in per_cluster if isinstance(r, ModuleFailure)]
    if errors:
        raise ModuleFailure("nothing was restarted: " + " | ".join(e.msg for e in errors), workloads=[], deletions=[])
    plans = [pl for r in per_cluster for pl in r]
    todo = [pl for pl in plans if pl["entry"]["status"] == "planned"]
    entries = [pl["entry"] for pl in plans]

    for pl in plans:
        pl["restarted_before"] = pl["entry"]["restarted_at"]

    def diff():
        before, after = [], []
        for pl in plans:
            e = pl["entry"]
            where = rollout.ref(e["cluster"], e["namespace"], e["kind"], e["name"])
            before.append(f"{where}: restartedAt={pl['restarted_before'] or '-'} pods={','.join(e['pods_before'])}")
            if e["status"] == "planned":
                now = f"restartedAt={e['restarted_at'] or '(now)'} pods=({len(e['pods_before'])} new)"
            else:
                now = f"restartedAt={e['restarted_at'] or '-'} pods={','.join(e.get('pods_after', e['pods_before']))}"
            after.append(f"{where}: {now}")
        return dict(before="\n".join(before) + "\n", after="\n".join(after) + "\n")

    def result(**extra):
        out = dict(
            changed=any(e["status"] == "restarted" for e in entries),
            workloads=entries,
            deletions=[],
            elapsed=round(time.monotonic() - start, 2),
        )
        out.update(extra)
        out["diff"] = diff()
        return out

    skipped = [pl["entry"] for pl in plans if pl["entry"]["status"] == "skipped"]
    skip_note = f"; {len(skipped)} already restarted since {p['restarted_since']}" if skipped else ""
    timestamp = rollout.now_rfc3339()
    dry_run = module.check_mode

    def restart(pl):
        # In check mode the same patch as a server-side dry run: its answer holds the restartedAt it would set.
        e = pl["entry"]
        try:
            patched = rollout.restart(pl["cluster"], pl["obj"], timestamp, dry_run=dry_run)
            e["restarted_at"] = rollout.restarted_at(patched)
            e["status"] = "planned" if dry_run else "restarted"
            pl["generation"] = (patched.get("metadata") or {}).get("generation", 0)
        except ModuleFailure as exc:
            e.update(status="failed", error=exc.msg)

    bounded_map(restart, todo, p["concurrency"])
    failed = [pl["entry"] for pl in todo if pl["entry"]["status"] == "failed"]
    if dry_run:
        warn_dry_runs_refused(module, clusters)
    if failed:
        would = " (the server refused the dry run; nothing was restarted)" if dry_run else ""
        raise ModuleFailure(
            f"{len(failed)} of {len(todo)} restart(s) failed{would}: " + " | ".join(e["error"] for e in failed),
            **result(),
        )
    if dry_run:
        out = result(changed=bool(todo))
        out["msg"] = (
            f"would restart {len(todo)} workload(s): " + "; ".join(_describe(pl["entry"]) for pl in todo) + skip_note
            if todo
            else f"nothing to restart{skip_note}"
        )
        return out
    if p["wait"]:
        items = [
            dict(
                cluster=pl["cluster"],
                namespace=pl["entry"]["namespace"],
                kind=pl["entry"]["kind"],
                name=pl["entry"]["name"],
                min_generation=pl.get("generation", 0),
            )
            for pl in plans
        ]
        waited = rollout.wait_rollouts(items, p["wait_timeout"], POLL, p["log_lines"], p["concurrency"])

        def after(pair):
            pl, w = pair
            pl["entry"]["rollout"] = {k: v for k, v in w.items() if k not in ("cluster", "namespace", "kind", "name")}
            if pl["selector"]:
                try:
                    pods = live(list_pods(pl["cluster"], pl["entry"]["namespace"], pl["selector"]))
                    pl["entry"]["pods_after"] = names(pods)
                except ModuleFailure:
                    pass

        bounded_map(after, list(zip(plans, waited, strict=True)), p["concurrency"])
        problem = rollout.rollout_failure(waited)
        if problem:
            done = f"restarted {len(todo)} workload(s)" if todo else "restarted nothing"
            raise ModuleFailure(f"{done} but {problem}", **result())
    out = result()
    n_clusters = len({e["cluster"] for e in entries})
    state = ", all rolled out" if p["wait"] else " (not waited for)"
    out["msg"] = (
        f"restarted {len(todo)} workload(s) in {n_clusters} cluster(s){state}: "
        + "; ".join(_describe(pl["entry"]) for pl in todo)
        + skip_note
        if todo
        else f"nothing to restart{skip_note}"
    )
    return out


def _describe(entry):
    text = rollout.ref(entry["cluster"], entry["namespace"], entry["kind"], entry["name"])
    before = entry.get("pods_before") or []
    if "pods_after" in entry:
        replaced = len(set(before) - set(entry["pods_after"]))
        return f"{text} ({replaced} pod(s) replaced)"
    return f"{text} ({len(before)} pod(s))"


# -- delete_pods mode ---------------------------------------------------------------------------


def plan_deletions(cluster, p, since):
    groups = []
    if p["pod_selector"]:
        groups.append(dict(workload=None, selector=p["pod_selector"]))
    else:
        for obj in wl.find_workloads(cluster, p["namespace"], p["kind"], p["name"], p["label_selector"]):
            selector = rollout.selector_string((obj.get("spec") or {}).get("selector"))
            groups.append(dict(workload=f"{obj['kind'].lower()}/{obj['metadata']['name']}", selector=selector))
    plans = []
    for g in groups:
        pods = live(list_pods(cluster, p["namespace"], g["selector"]))
        what = g["workload"] or f"pods matching {g['selector']!r}"
        if not pods and p["pod_selector"]:
            raise ModuleFailure(wl.no_match(cluster, p["namespace"], f"no pod matches {g['selector']!r}"))
        orphans = [
            pod["metadata"]["name"]
            for pod in pods
            if not any(r.get("controller") for r in pod["metadata"].get("ownerReferences") or [])
        ]
        if orphans:
            raise ModuleFailure(
                f"{cluster.name}/{p['namespace']}: {what}: pod(s) {', '.join(orphans)} have no controller; deleting "
                "them would not bring them back; nothing was deleted"
            )
        victims = [pod for pod in pods if since is None or (_ts(pod["metadata"].get("creationTimestamp")) or 0) < since]
        # Unready pods first: replacing them costs no availability.
        victims.sort(key=lambda pod: (rollout.pod_ready(pod), pod["metadata"]["name"]))
        entry = dict(
            cluster=cluster.name,
            namespace=p["namespace"],
            workload=g["workload"],
            selector=g["selector"],
            status="planned" if victims else "skipped",
            message=f"{len(victims)} pod(s) to delete" if victims else "no pod to delete",
            pods_before=names(pods),
            deleted=[],
        )
        plans.append(dict(cluster=cluster, pods=pods, victims=victims, entry=entry))
    return plans


def _delete_pod(cluster, namespace, pod, dry_run=False):
    """Delete one pod (this very pod: a statefulset's replacement has the same name); False if it was gone."""
    meta = pod["metadata"]
    answer = cluster.delete(
        f"delete pod {namespace}/{meta['name']}",
        api_path("v1", "pods", namespace, meta["name"]),
        body={"preconditions": {"uid": meta["uid"]}},
        missing_ok=True,
        dry_run=dry_run,
    )
    return answer is not None


def replace_pods(plan, p, deadline):
    """Delete the pods of one group (one at a time, or all) and wait for as many ready pods as before."""
    cluster, e = plan["cluster"], plan["entry"]
    ns, selector = e["namespace"], e["selector"]
    old_uids = {pod["metadata"]["uid"] for pod in plan["pods"]}
    want_total = len(plan["pods"])
    deleted_uids = set()

    def state():
        pods = live(list_pods(cluster, ns, selector))
        pods = [pod for pod in pods if pod["metadata"]["uid"] not in deleted_uids]
        ready = [pod for pod in pods if rollout.pod_ready(pod)]
        stuck = [
            pod
            for pod in pods
            if pod["metadata"]["uid"] not in old_uids and rollout.pod_summary(pod)["reason"] in rollout.STUCK_REASONS
        ]
        return pods, ready, stuck

    def wait_until(min_ready, min_total):
        while True:
            pods, ready, stuck = state()
            if stuck:
                return "failed", pods, ready
            if len(ready) >= min_ready and len(pods) >= min_total:
                return "ok", pods, ready
            if deadline.expired:
                return "timed_out", pods, ready
            time.sleep(min(POLL, max(0.05, deadline.remaining())))

    ready_before = len([pod for pod in plan["pods"] if rollout.pod_ready(pod)])
    outcome = "ok"
    try:
        batches = [[v] for v in plan["victims"]] if p["one_at_a_time"] else [plan["victims"]]
        for batch in batches:
            for pod in batch:
                _delete_pod(cluster, ns, pod)
                deleted_uids.add(pod["metadata"]["uid"])
                e["deleted"].append(pod["metadata"]["name"])
            if not p["wait"]:
                continue
            # As many ready pods as before this deletion (the replacement is ready), all pods back...
            outcome, pods, ready = wait_until(min(ready_before, want_total), want_total)
            if outcome != "ok":
                break
            # ...the replacements in their Services' Endpoints, and time for load balancers to follow.
            new = [pod for pod in ready if pod["metadata"]["uid"] not in old_uids]
            while rollout.unserved_pods(cluster, ns, new):
                if deadline.expired:
                    outcome = "timed_out"
                    break
                time.sleep(min(POLL, max(0.05, deadline.remaining())))
            if outcome != "ok":
                break
            if batch is not batches[-1]:
                time.sleep(min(p["settle_seconds"], deadline.remaining()))
        pods, ready, _stuck = state()
        e["pods_after"] = names(pods)
        e["message"] = f"{len(e['deleted'])} pod(s) deleted, {len(ready)} of {len(pods)} pods ready"
        if outcome == "ok" and p["wait"] and len(ready) < want_total:
            outcome, pods, ready = wait_until(want_total, want_total)
            e["pods_after"] = names(pods)
            e["message"] = f"{len(e['deleted'])} pod(s) deleted, {len(ready)} of {len(pods)} pods ready"
        e["status"] = {"ok": "replaced", "failed": "failed", "timed_out": "timed_out"}[outcome]
        if outcome == "failed":
            e["message"] += ": a replacement pod cannot start; stopped deleting"
        elif outcome == "timed_out":
            e["message"] += f": not back to {want_total} ready pod(s) after {deadline.seconds:g}s; stopped deleting"
        if outcome != "ok":
            e["unready_pods"] = rollout.unready_pods(cluster, ns, selector, p["log_lines"])
    except ModuleFailure as exc:
        e.update(status="failed", message=f"{len(e['deleted'])} pod(s) deleted, then: {exc.msg}")
    return e


def do_deletions(module, clusters, since, start):
    p = module.params
    per_cluster = bounded_map(lambda c: _guarded(lambda: plan_deletions(c, p, since)), clusters, p["concurrency"])
    errors = [r for r in per_cluster if isinstance(r, ModuleFailure)]
    if errors:
        raise ModuleFailure("nothing was deleted: " + " | ".join(e.msg for e in errors), workloads=[], deletions=[])
    plans = [pl for r in per_cluster for pl in r]
    entries = [pl["entry"] for pl in plans]
    todo = [pl for pl in plans if pl["victims"]]

    def where(e):
        return f"{e['cluster']}/{e['namespace']}/{e['workload'] or e['selector']}"

    def diff():
        before = [f"{where(e)}: pods={','.join(e['pods_before'])}" for e in entries]
        after = []
        for pl in plans:
            e = pl["entry"]
            if "pods_after" in e:
                after.append(f"{where(e)}: pods={','.join(e['pods_after'])}")
            else:
                kept = [n for n in e["pods_before"] if n not in names(pl["victims"])]
                new = f"({len(pl['victims'])} new)"
                after.append(f"{where(e)}: pods={','.join([*kept, new])}")
        return dict(before="\n".join(before) + "\n", after="\n".join(after) + "\n")

    def result(**extra):
        out = dict(
            changed=any(e["deleted"] for e in entries),
            workloads=[],
            deletions=entries,
            elapsed=round(time.monotonic() - start, 2),
        )
        out.update(extra)
        out["diff"] = diff()
        return out

    if module.check_mode:
        # Every deletion as a server-side dry run (with the pod's uid as precondition): refused where the
        # real run would be. Which pods replace them is the controllers' business, and they do not dry-run.
        def dry_delete(pl):
            try:
                for pod in pl["victims"]:
                    _delete_pod(pl["cluster"], p["namespace"], pod, dry_run=True)
            except ModuleFailure as exc:
                pl["entry"].update(status="failed", message=exc.msg)

        bounded_map(dry_delete, todo, p["concurrency"])
        warn_dry_runs_refused(module, clusters)
        refused = [pl["entry"] for pl in todo if pl["entry"]["status"] == "failed"]
        if refused:
            raise ModuleFailure(
                f"{len(refused)} of {len(todo)} pod deletion(s) would fail (the server refused the dry run; nothing "
                "was deleted): " + " | ".join(f"{where(e)}: {e['message']}" for e in refused),
                **result(changed=False),
            )
        out = result(changed=bool(todo))
        out["msg"] = (
            "would delete "
            + "; ".join(f"{where(pl['entry'])}: {', '.join(names(pl['victims']))}" for pl in todo)
            + (" (one at a time)" if p["one_at_a_time"] else " (all at once)")
            if todo
            else "no pod to delete"
        )
        return out
    deadline = Deadline(p["wait_timeout"])
    bounded_map(lambda pl: replace_pods(pl, p, deadline), todo, p["concurrency"])
    bad = [e for e in entries if e["status"] in ("failed", "timed_out")]
    if bad:
        parts = []
        for e in bad:
            text = f"{where(e)}: {e['message']}"
            if e.get("unready_pods"):
                text += f" [{rollout.describe_pods(e['unready_pods'])}]"
            parts.append(text)
        raise ModuleFailure(
            f"{len(bad)} of {len(todo)} pod replacement(s) did not complete: " + " | ".join(parts), **result()
        )
    out = result()
    out["msg"] = (
        "replaced "
        + "; ".join(f"{where(e)}: {e['message']}" for e in entries if e["status"] == "replaced")
        + (" (one at a time)" if p["one_at_a_time"] else " (all at once)")
        if todo
        else "no pod to delete"
    )
    return out


def _guarded(fn):
    try:
        return fn()
    except ModuleFailure as exc:
        return exc


def workload_restart(module):
    p = module.params
    start = time.monotonic()
    check_numbers(p, non_negative=("wait_timeout", "log_lines"), positive=("concurrency",))
    if p["pod_selector"] and p["mode"] != "delete_pods":
        raise ModuleFailure("pod_selector selects pods to delete: it needs mode=delete_pods")
    if p["pod_selector"] and (p["name"] or p["label_selector"]):
        raise ModuleFailure("give either pod_selector or workloads (name/label_selector), not both")
    if not (p["name"] or p["label_selector"] or p["pod_selector"]):
        raise ModuleFailure(
            "give the workloads to restart: name and/or label_selector (or pod_selector with delete_pods)"
        )
    since = parse_time(p["restarted_since"]) if p["restarted_since"] else None
    clusters = clusters_from_params(module)
    if p["mode"] == "delete_pods":
        return do_deletions(module, clusters, since, start)
    return do_rollouts(module, clusters, since, start)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run(module, workload_restart)


if __name__ == "__main__":
    main()
