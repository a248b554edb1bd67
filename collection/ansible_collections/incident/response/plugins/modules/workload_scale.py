#!/usr/bin/python
# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: workload_scale
short_description: Scale deployments and statefulsets in one or several clusters, knowing about their HPAs
description:
  - The runbook's C(kubectl scale deployment ... --replicas=N) (2.3, 3.2) for several workloads in several clusters
    (regions) in one task, concurrently.
  - The count is given as O(replicas), as a O(delta) or as a O(factor) of the current count, and held within O(floor)
    and O(cap).
  - When a HorizontalPodAutoscaler targets the workload, a plain scale would be undone at its next sync. By default
    (O(hpa_policy=adjust_hpa)) the HPA's C(minReplicas) becomes the new count (and C(maxReplicas) is raised if
    needed), and the result says so. O(hpa_policy=fail) refuses, O(hpa_policy=scale_anyway) scales and leaves the HPA.
  - Then waits until the workloads are rolled out and ready, with C(kubectl rollout status) semantics (generation
    observed, all replicas updated and available, no old replicas left). A timeout fails and still returns how far
    every workload got, with the pods that are not ready and their last log lines.
  - Every target is checked before anything changes (all workloads exist, the O(current_replicas) precondition holds,
    no HPA ambiguity); one problem fails the task with nothing changed.
  - RV(previous) holds the replicas and HPA bounds that were replaced, in the shape O(previous) takes, so a later task
    with O(state=restore) puts them back.
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
      - Reads everything, then sends the very HPA and C(scale) patches the real run would send as server-side dry
        runs (C(dryRun=All)) - the API server authorizes, admits and validates them and stores nothing. So check
        mode fails where the real run would (a forbidden verb, an invalid count), and the planned counts and HPA
        bounds are the server's answers.
      - The wait for the rollout is skipped (nothing rolls out). Where a cluster refuses a dry run (an admission
        webhook without dry-run support), the module's own plan stands in for that request and a warning says so.
  diff_mode:
    support: full
    details: The replicas and HPA bounds before and after, per workload.
  platform:
    platforms: posix
options:
  state:
    description:
      - V(present) scales to the count O(replicas), O(delta) or O(factor) give.
      - V(restore) puts back the replicas and HPA bounds of O(previous) (the RV(previous) of an earlier run).
    type: str
    choices: [present, restore]
    default: present
  namespace:
    description: Namespace of the workloads. Required with O(state=present).
    type: str
  kind:
    description: Kind of the workloads named by O(name) or selected by O(label_selector).
    type: str
    choices: [Deployment, StatefulSet]
    default: Deployment
  name:
    description: Names of the workloads. Each must exist in every cluster.
    type: list
    elements: str
    default: []
    aliases: [names]
  label_selector:
    description:
      - Also scale the workloads whose labels match this selector (for example V(app.kubernetes.io/part-of=shop)).
        It must match at least one workload in every cluster.
    type: str
  replicas:
    description: Scale to this many replicas. V(0) stops the workload.
    type: int
  delta:
    description: Add this many replicas to the current count (negative to remove).
    type: int
  factor:
    description: Multiply the current count by this factor, rounded up (V(1.5) of 3 gives 5).
    type: float
  floor:
    description: The count is at least this (applied after O(delta) or O(factor), and to O(replicas)).
    type: int
  cap:
    description: The count is at most this.
    type: int
  current_replicas:
    description:
      - Precondition, as C(kubectl scale --current-replicas) - every workload must have exactly this many replicas now;
        otherwise the task fails and changes nothing.
    type: int
  hpa_policy:
    description:
      - What to do when an HPA targets a workload.
      - V(adjust_hpa) sets the HPA's C(minReplicas) to the new count, and C(maxReplicas) to it when it was lower,
        so that the HPA keeps (at least) that count.
      - V(fail) refuses to scale a workload an HPA manages.
      - V(scale_anyway) scales and leaves the HPA, which may undo the change at its next sync.
      - Several HPAs on one workload always fail.
    type: str
    choices: [adjust_hpa, fail, scale_anyway]
    default: adjust_hpa
  previous:
    description:
      - With O(state=restore), the values to put back, usually the RV(previous) of the scaling task.
    type: list
    elements: dict
    suboptions:
      cluster:
        description: Name of the cluster (a O(clusters[].name), or the name of the single cluster).
        type: str
        required: true
      namespace:
        description: Namespace of the workload.
        type: str
        required: true
      kind:
        description: Kind of the workload.
        type: str
        choices: [Deployment, StatefulSet]
        default: Deployment
      name:
        description: Name of the workload.
        type: str
        required: true
      replicas:
        description: Replicas to restore.
        type: int
        required: true
      hpa:
        description: Bounds of the workload's HPA to restore, or null.
        type: dict
        suboptions:
          name:
            description: Name of the HPA.
            type: str
            required: true
          min_replicas:
            description: C(minReplicas) to restore.
            type: int
            required: true
          max_replicas:
            description: C(maxReplicas) to restore.
            type: int
            required: true
  wait:
    description: Wait until every workload is rolled out and ready.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for all workloads together.
    type: float
    default: 180
  log_lines:
    description: Log lines to return of each pod that is not ready when the wait fails.
    type: int
    default: 20
  concurrency:
    description: Clusters and workloads handled at once.
    type: int
    default: 16
notes:
  - Scaling goes through the C(scale) subresource, as C(kubectl scale) does; HPA bounds through a merge patch of the
    C(autoscaling/v2) HorizontalPodAutoscaler.
  - Restoring sets the HPA bounds before the replicas, so that a lowered C(minReplicas) does not raise the count again.
seealso:
  - module: incident.response.workload_restart
  - module: incident.response.config_patch
"""

EXAMPLES = r"""
# Runbook 2.3: kubectl scale deployment user-service --replicas=3 -n microservices
- name: Scale user-service to 3 in both regions (the HPA keeps at least 3)
  incident.response.workload_scale:
    kubeconfig: "{{ kubeconfig }}"
    clusters:
      - {name: primary, context: primary}
      - {name: secondary, context: secondary}
    namespace: microservices
    name: user-service
    replicas: 3
  register: scaled
  tags: [destructive]

# Runbook 3.2: scale user-service and order-service to 5
- name: Scale up the hot services, at most 8 replicas each
  incident.response.workload_scale:
    context: primary
    namespace: microservices
    name: [user-service, order-service]
    factor: 2
    cap: 8
  register: scaled

- name: What would scaling every shop service by 2 do?
  incident.response.workload_scale:
    context: primary
    namespace: microservices
    label_selector: app.kubernetes.io/part-of=shop
    delta: 2
    hpa_policy: fail
  check_mode: true
  diff: true

- name: Scale only if nobody else scaled meanwhile
  incident.response.workload_scale:
    context: primary
    namespace: microservices
    name: payment-service
    replicas: 4
    current_replicas: 2

- name: After the incident, put back the replicas and HPA bounds
  incident.response.workload_scale:
    kubeconfig: "{{ kubeconfig }}"
    clusters:
      - {name: primary, context: primary}
      - {name: secondary, context: secondary}
    state: restore
    previous: "{{ scaled.previous }}"
"""

RETURN = r"""
msg:
  description: One line saying what was (or would be) done.
  returned: always
  type: str
  sample: "scaled 2 workload(s) in 2 cluster(s), all ready: primary/microservices/deployment/user-service 2->3
    (HPA user-service min 2->3 so that it keeps 3 replicas); secondary/microservices/deployment/user-service 2->3 (...)"
workloads:
  description: One entry per workload and cluster.
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
      description: Kind of the workload.
      type: str
      sample: Deployment
    name:
      description: Name of the workload.
      type: str
      sample: user-service
    replicas_before:
      description: Replicas before the task.
      type: int
      sample: 2
    replicas:
      description: Replicas after the task (in check mode, planned).
      type: int
      sample: 3
    limited:
      description: Which of O(floor) and O(cap) changed the computed count, or null.
      type: str
      sample: capped at 8
    hpa:
      description:
        - The HPA that targets the workload, or null. C(min_replicas)/C(max_replicas) before,
          C(new_min_replicas)/C(new_max_replicas) after, C(action) V(adjusted), V(unchanged), V(ignored) or
          V(inactive), and a C(note).
      type: dict
      sample: {name: user-service, min_replicas: 2, max_replicas: 5, new_min_replicas: 3, new_max_replicas: 5,
        action: adjusted, note: HPA user-service min 2->3 so that it keeps 3 replicas}
    changed:
      description: Whether this workload (or its HPA) was (or would be) changed.
      type: bool
    status:
      description:
        - V(planned) (check mode), V(scaled), V(unchanged), V(failed) (nothing changed on it) or V(partially_failed)
          (its HPA bounds changed, the scale failed; it is in RV(previous)). With an C(error) when it failed.
      type: str
      sample: scaled
    ready_replicas:
      description: Ready replicas at the end of the wait.
      type: int
      sample: 3
    rollout:
      description:
        - The wait, when O(wait=true) - C(status) V(rolled_out), V(failed), V(timed_out) or V(error), kubectl's
          C(message), C(desired), C(updated), C(ready), C(available), C(elapsed) seconds, and for anything but
          success C(unready_pods) (C(name), C(phase), C(reason), C(message), C(restarts), C(log_tail)).
      type: dict
      sample: {status: rolled_out, message: deployment "user-service" successfully rolled out, desired: 3,
        updated: 3, ready: 3, available: 3, elapsed: 4.2}
previous:
  description:
    - The values the task replaced (or would replace), one entry per changed workload, in the shape O(previous) takes.
  returned: always
  type: list
  elements: dict
  sample: [{cluster: primary, namespace: microservices, kind: Deployment, name: user-service, replicas: 2,
    hpa: {name: user-service, min_replicas: 2, max_replicas: 5}}]
elapsed:
  description: Seconds the task took.
  returned: always
  type: float
  sample: 6.3
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.response.plugins.module_utils import k8s_rollout as rollout
from ansible_collections.incident.response.plugins.module_utils import k8s_workloads as wl
from ansible_collections.incident.response.plugins.module_utils.common import (
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

KINDS = ["Deployment", "StatefulSet"]


def hpa_path(namespace, name=None):
    return api_path("autoscaling/v2", "horizontalpodautoscalers", namespace, name)


def argument_spec():
    hpa = dict(
        name=dict(type="str", required=True),
        min_replicas=dict(type="int", required=True),
        max_replicas=dict(type="int", required=True),
    )
    previous = dict(
        cluster=dict(type="str", required=True),
        namespace=dict(type="str", required=True),
        kind=dict(type="str", choices=KINDS, default="Deployment"),
        name=dict(type="str", required=True),
        replicas=dict(type="int", required=True),
        hpa=dict(type="dict", options=hpa),
    )
    spec = auth_argument_spec()
    spec.update(clusters_argument_spec())
    spec.update(
        state=dict(type="str", choices=["present", "restore"], default="present"),
        namespace=dict(type="str"),
        kind=dict(type="str", choices=KINDS, default="Deployment"),
        name=dict(type="list", elements="str", default=[], aliases=["names"]),
        label_selector=dict(type="str"),
        replicas=dict(type="int"),
        delta=dict(type="int"),
        factor=dict(type="float"),
        floor=dict(type="int"),
        cap=dict(type="int"),
        current_replicas=dict(type="int"),
        hpa_policy=dict(type="str", choices=list(wl.HPA_POLICIES), default="adjust_hpa"),
        previous=dict(type="list", elements="dict", options=previous),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="float", default=180),
        log_lines=dict(type="int", default=20),
        concurrency=dict(type="int", default=16),
    )
    return spec


# -- planning ---------------------------------------------------------------------------------


def _hpas(cluster, namespace, cache):
    key = (cluster.name, namespace)
    if key not in cache:
        cache[key] = cluster.get(f"list the HPAs of {namespace}", hpa_path(namespace)).get("items", [])
    return cache[key]


def _entry(cluster, obj, target, limited, hpa):
    meta = obj["metadata"]
    current = (obj.get("spec") or {}).get("replicas", 1)
    changed = target != current or bool(hpa and hpa["action"] == "adjusted")
    return dict(
        cluster=cluster.name,
        namespace=meta["namespace"],
        kind=obj["kind"],
        name=meta["name"],
        replicas_before=current,
        replicas=target,
        limited=limited,
        hpa=hpa,
        changed=changed,
        status="planned",
    )


def plan_present(cluster, p):
    """The plan for one cluster: an entry per workload (raises ModuleFailure on the first problem)."""
    objs = wl.find_workloads(cluster, p["namespace"], p["kind"], p["name"], p["label_selector"])
    cache, plans = {}, []
    for obj in objs:
        where = rollout.ref(cluster.name, p["namespace"], obj["kind"], obj["metadata"]["name"])
        current = (obj.get("spec") or {}).get("replicas", 1)
        if p["current_replicas"] is not None and current != p["current_replicas"]:
            raise ModuleFailure(
                f"{where} has {current} replicas, not the expected {p['current_replicas']} (current_replicas): "
                "someone else scaled it; nothing was changed"
            )
        try:
            target, limited = wl.plan_replicas(current, p["replicas"], p["delta"], p["factor"], p["floor"], p["cap"])
            hpas = wl.hpas_targeting(_hpas(cluster, p["namespace"], cache), obj["kind"], obj["metadata"]["name"])
            hpa = wl.plan_hpa(p["hpa_policy"], hpas, target, current)
        except ValueError as exc:
            raise ModuleFailure(f"{where}: {exc}") from None
        plans.append((cluster, _entry(cluster, obj, target, limited, hpa)))
    return plans


def plan_restore(clusters, entries):
    """The plan of a restore: every entry's workload (and HPA) must still be there."""
    by_name = {c.name: c for c in clusters}

    def one(prev):
        cluster = by_name.get(prev["cluster"])
        if cluster is None:
            raise ModuleFailure(
                f"previous names cluster {prev['cluster']!r}, but this task's clusters are: {', '.join(by_name)}"
            )
        where = rollout.ref(cluster.name, prev["namespace"], prev["kind"], prev["name"])
        obj = wl.find_workloads(cluster, prev["namespace"], prev["kind"], [prev["name"]])[0]
        hpa = None
        want = prev.get("hpa")
        hpas = wl.hpas_targeting(
            cluster.get(f"list the HPAs of {prev['namespace']}", hpa_path(prev["namespace"])).get("items", []),
            prev["kind"],
            prev["name"],
        )
        if want:
            match = [h for h in hpas if h["metadata"]["name"] == want["name"]]
            if not match:
                raise ModuleFailure(f"{where}: HPA {want['name']} to restore no longer targets the workload")
            lo, hi = int(match[0]["spec"].get("minReplicas", 1)), int(match[0]["spec"]["maxReplicas"])
            new_lo, new_hi = want["min_replicas"], want["max_replicas"]
            if new_lo > new_hi:
                raise ModuleFailure(f"{where}: HPA {want['name']}: min_replicas {new_lo} above max_replicas {new_hi}")
            action = "adjusted" if (lo, hi) != (new_lo, new_hi) else "unchanged"
            note = f"HPA {want['name']} back to {new_lo}..{new_hi}" if action == "adjusted" else ""
            hpa = dict(
                name=want["name"],
                min_replicas=lo,
                max_replicas=hi,
                new_min_replicas=new_lo,
                new_max_replicas=new_hi,
                action=action,
                note=note or f"HPA {want['name']} already {lo}..{hi}",
            )
        elif hpas:
            h = hpas[0]
            lo, hi = int(h["spec"].get("minReplicas", 1)), int(h["spec"]["maxReplicas"])
            hpa = dict(
                name=h["metadata"]["name"],
                min_replicas=lo,
                max_replicas=hi,
                new_min_replicas=lo,
                new_max_replicas=hi,
                action="ignored",
                note=f"HPA {h['metadata']['name']} ({lo}..{hi}) was not recorded and is left as it is",
            )
        return cluster, _entry(cluster, obj, prev["replicas"], None, hpa)

    return [one(prev) for prev in entries]


def previous_of(entry):
    prev = dict(
        cluster=entry["cluster"],
        namespace=entry["namespace"],
        kind=entry["kind"],
        name=entry["name"],
        replicas=entry["replicas_before"],
        hpa=None,
    )
    if entry["hpa"]:
        h = entry["hpa"]
        prev["hpa"] = dict(name=h["name"], min_replicas=h["min_replicas"], max_replicas=h["max_replicas"])
    return prev


# -- acting -----------------------------------------------------------------------------------


def apply(cluster, entry, dry_run=False):
    """HPA bounds first, then the scale subresource; the entry records what was done.

    With ``dry_run`` (check mode) both requests go to the server as dry runs, and the planned HPA
    bounds and replicas become the ones the server's answers hold; the status stays V(planned).
    """
    kind = rollout.KINDS[entry["kind"]]
    ns, name = entry["namespace"], entry["name"]
    hpa = entry["hpa"]
    try:
        if hpa and hpa["action"] == "adjusted":
            bounds = {"minReplicas": hpa["new_min_replicas"], "maxReplicas": hpa["new_max_replicas"]}
            got = cluster.patch(
                f"patch HPA {ns}/{hpa['name']}",
                hpa_path(ns, hpa["name"]),
                {"spec": bounds},
                dry_run=dry_run,
                simulated={"spec": bounds},
            )
            spec = got.get("spec") or {}
            hpa["new_min_replicas"] = int(spec.get("minReplicas", hpa["new_min_replicas"]))
            hpa["new_max_replicas"] = int(spec.get("maxReplicas", hpa["new_max_replicas"]))
            entry["status"] = "hpa_adjusted"
        if entry["replicas"] != entry["replicas_before"]:
            got = cluster.patch(
                f"scale {kind.singular} {ns}/{name}",
                kind.path(ns, name, "scale"),
                {"spec": {"replicas": entry["replicas"]}},
                dry_run=dry_run,
                simulated={"spec": {"replicas": entry["replicas"]}},
            )
            entry["replicas"] = int((got.get("spec") or {}).get("replicas", entry["replicas"]))
        if dry_run:
            entry["status"] = "planned"
        else:
            entry["status"] = "scaled" if entry["changed"] else "unchanged"
    except ModuleFailure as exc:
        # "partially_failed": the HPA bounds changed but the scale did not; both are in previous.
        entry["status"] = "partially_failed" if entry["status"] == "hpa_adjusted" and not dry_run else "failed"
        entry["error"] = exc.msg
    return entry


def describe(entry):
    text = rollout.ref(entry["cluster"], entry["namespace"], entry["kind"], entry["name"])
    text += f" {entry['replicas_before']}->{entry['replicas']}"
    notes = [n for n in (entry.get("limited"), (entry.get("hpa") or {}).get("note")) if n]
    return text + (f" ({'; '.join(notes)})" if notes else "")


def workload_scale(module):
    p = module.params
    start = time.monotonic()
    restore = p["state"] == "restore"
    if restore and any(p[k] is not None for k in ("replicas", "delta", "factor", "current_replicas")):
        raise ModuleFailure(
            "state=restore puts back previous: replicas, delta, factor and current_replicas belong to state=present"
        )
    if not restore:
        if not p["namespace"]:
            raise ModuleFailure("namespace is required with state=present")
        if not p["name"] and not p["label_selector"]:
            raise ModuleFailure("give the workloads to scale: name and/or label_selector")
        if sum(x is not None for x in (p["replicas"], p["delta"], p["factor"])) != 1:
            raise ModuleFailure("give exactly one of replicas, delta or factor")
    check_numbers(p, non_negative=("wait_timeout", "log_lines"), positive=("concurrency",))
    clusters = clusters_from_params(module)

    def result(plans, **extra):
        entries = [e for _c, e in plans]
        out = dict(
            changed=any(e["changed"] and e["status"] not in ("planned", "failed") for e in entries),
            workloads=entries,
            previous=[previous_of(e) for e in entries if e["changed"] and e["status"] not in ("planned", "failed")],
            elapsed=round(time.monotonic() - start, 2),
        )
        out.update(extra)
        return out

    # 1. Read and plan everything; any problem fails before a change.
    if restore:
        plans = plan_restore(clusters, p["previous"] or [])
    else:
        per_cluster = bounded_map(
            lambda c: _guarded(lambda: plan_present(c, p)), clusters, min(p["concurrency"], len(clusters))
        )
        errors = [r for r in per_cluster if isinstance(r, ModuleFailure)]
        if errors:
            raise ModuleFailure("nothing was changed: " + " | ".join(e.msg for e in errors), workloads=[], previous=[])
        plans = [pl for r in per_cluster for pl in r]

    def diff():
        return dict(
            before="".join(_diff_line(e, before=True) for _c, e in plans),
            after="".join(_diff_line(e, before=False) for _c, e in plans),
        )

    todo = [(c, e) for c, e in plans if e["changed"]]
    verb = "restore" if restore else "scale"
    if module.check_mode:
        # The same writes as server-side dry runs: refused where the real run would be; the plan is the answers.
        bounded_map(lambda ce: apply(*ce, dry_run=True), todo, p["concurrency"])
        warn_dry_runs_refused(module, clusters)
        failed = [e for _c, e in todo if e["status"] == "failed"]
        if failed:
            raise ModuleFailure(
                f"{len(failed)} of {len(todo)} workload(s) could not be changed (the server refused the dry run): "
                + " | ".join(e["error"] for e in failed)
                + "; nothing was changed",
                **result(plans, diff=diff()),
            )
        out = result(plans, diff=diff())
        out["changed"] = bool(todo)
        out["previous"] = [previous_of(e) for _c, e in todo]
        out["msg"] = (
            f"would {verb} {len(todo)} workload(s): " + "; ".join(describe(e) for _c, e in todo)
            if todo
            else f"nothing to change: {len(plans)} workload(s) already as asked"
        )
        return out

    # 2. Change.
    bounded_map(lambda ce: apply(*ce), todo, p["concurrency"])
    for _c, e in plans:
        if not e["changed"]:
            e["status"] = "unchanged"
    failed = [e for _c, e in todo if e["status"] in ("failed", "partially_failed")]
    if failed:
        raise ModuleFailure(
            f"{len(failed)} of {len(todo)} workload(s) could not be changed: "
            + " | ".join(e["error"] for e in failed)
            + "; the others were (see previous to roll back)",
            **result(plans, diff=diff()),
        )

    # 3. Wait.
    if p["wait"]:
        items = [dict(cluster=c, namespace=e["namespace"], kind=e["kind"], name=e["name"]) for c, e in plans]
        waited = rollout.wait_rollouts(items, p["wait_timeout"], log_lines=p["log_lines"], concurrency=p["concurrency"])
        for (_c, e), w in zip(plans, waited, strict=True):
            e["ready_replicas"] = w.get("ready", 0)
            e["rollout"] = {k: v for k, v in w.items() if k not in ("cluster", "namespace", "kind", "name")}
        problem = rollout.rollout_failure(waited)
        if problem:
            done = "; ".join(describe(e) for _c, e in todo) or "nothing changed"
            raise ModuleFailure(f"{verb}d ({done}) but {problem}", **result(plans, diff=diff()))
    out = result(plans, diff=diff())
    n_clusters = len({e["cluster"] for _c, e in plans})
    ready = ", all ready" if p["wait"] else ""
    if todo:
        out["msg"] = f"{verb}d {len(todo)} workload(s) in {n_clusters} cluster(s){ready}: " + "; ".join(
            describe(e) for _c, e in todo
        )
    else:
        out["msg"] = f"nothing to change: {len(plans)} workload(s) in {n_clusters} cluster(s) already as asked{ready}"
    return out


def _guarded(fn):
    try:
        return fn()
    except ModuleFailure as exc:
        return exc


def _diff_line(entry, before):
    where = rollout.ref(entry["cluster"], entry["namespace"], entry["kind"], entry["name"])
    h = entry.get("hpa")
    if before:
        line = f"{where}: replicas={entry['replicas_before']}"
        if h:
            line += f" hpa({h['name']})={h['min_replicas']}..{h['max_replicas']}"
    else:
        line = f"{where}: replicas={entry['replicas']}"
        if h:
            line += f" hpa({h['name']})={h['new_min_replicas']}..{h['new_max_replicas']}"
    return line + "\n"


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=[("replicas", "delta", "factor")],
        required_if=[("state", "restore", ("previous",))],
    )
    run(module, workload_scale)


if __name__ == "__main__":
    main()
