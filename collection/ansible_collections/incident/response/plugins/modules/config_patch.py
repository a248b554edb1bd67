#!/usr/bin/python
# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: config_patch
short_description: Patch ConfigMap keys in one or several clusters and namespaces, restart their consumers, roll back
description:
  - The runbook's C(kubectl patch configmap microservice-config -p '{"data":{"db.host":...}}') (2.2, 4.2,
    Resolution 3) for several clusters (regions) and namespaces in one task, concurrently.
  - Idempotent - keys that already hold their value are not written; a run that changes nothing says so.
    Check and diff mode show the data before and after.
  - RV(previous) holds the values the patch replaced, per cluster and namespace, with V(null) for a key that did not
    exist before (a rollback removes it). O(state=restore) with that list (or the O(backup_file) the patch wrote)
    puts them back.
  - O(expected) is a precondition - the task fails, changing nothing, unless every ConfigMap holds those values.
    Everything is read and checked before anything is written; writes carry the C(resourceVersion) that was read,
    so a concurrent change is detected (and the task re-reads and re-checks).
  - O(restart_consumers=true) restarts the workloads whose pod templates use the ConfigMap - through C(envFrom), an
    C(env) C(configMapKeyRef) on a changed key, or a (projected) volume; found from the pod templates, never by name -
    and waits for their rollouts with C(kubectl rollout status) semantics (see M(incident.response.workload_restart)).
  - O(secrets) and O(list_secrets) check and list Secrets by name only; their values are never read into results or
    logs.
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
      - Reads and checks everything, then sends the very patches (and consumer restarts) the real run would send
        as server-side dry runs (C(dryRun=All)) - the API server authorizes, admits and validates them and stores
        nothing. So check mode fails where the real run would (a forbidden verb, an invalid key, a conflict), and the
        diff and RV(configmaps[].data) are the server's answer.
      - Done on the client only, because the API has no dry run for them - waiting for the consumers' rollouts
        (none happen), and O(backup_file) (not written).
      - Where a cluster refuses a dry run (an admission webhook without dry-run support), the module's own plan
        stands in for that request and a warning says so.
  diff_mode:
    support: full
    details: The ConfigMap's data before and after, per cluster and namespace.
  platform:
    platforms: posix
options:
  state:
    description:
      - V(present) sets the keys of O(data).
      - V(restore) puts back the values of O(previous), or of the O(backup_file) an earlier patch wrote.
    type: str
    choices: [present, restore]
    default: present
  name:
    description: Name of the ConfigMap.
    type: str
    required: true
  namespace:
    description: Namespaces of the ConfigMap (the same name in each). Required with O(state=present).
    type: list
    elements: str
    default: []
  data:
    description:
      - Keys to set. Values are strings (integers are written out); V(null) removes the key.
    type: dict
    default: {}
  expected:
    description:
      - With O(state=present), a precondition - the values the keys must have now (V(null) - the key must be
        absent). Any mismatch in any cluster or namespace fails the task and nothing is changed.
    type: dict
  previous:
    description:
      - With O(state=restore), the values to put back, usually the RV(previous) of the patching task.
    type: list
    elements: dict
    suboptions:
      cluster:
        description: Name of the cluster (a O(clusters[].name), or the name of the single cluster).
        type: str
        required: true
      namespace:
        description: Namespace.
        type: str
        required: true
      name:
        description: Name of the ConfigMap.
        type: str
        required: true
      data:
        description: Keys and the values to put back; V(null) removes the key.
        type: dict
        required: true
  backup_file:
    description:
      - With O(state=present), where to save RV(previous) (JSON) when the task changes something; written atomically.
      - With O(state=restore) and no O(previous), where to read it from.
    type: path
  restart_consumers:
    description:
      - Restart the workloads that use the ConfigMap (in the same namespace) after a change, and wait for them.
        Nothing is restarted where nothing changed.
    type: bool
    default: false
  restart_order:
    description:
      - How the consumers of several clusters restart, with O(restart_consumers=true).
      - V(together), all at once.
      - V(cluster_by_cluster), one cluster after the other in the order of O(clusters), each cluster's rollouts
        waited for before the next one's consumers restart. List the region that serves traffic first - its users are
        served again sooner, as its new pods do not share the CPU with the other regions' - and a configuration its
        pods cannot start with stops at the first cluster (the others keep their running pods; RV(configmaps) says
        which consumers restarted). Needs O(wait=true).
    type: str
    choices: [together, cluster_by_cluster]
    default: together
  consumer_kinds:
    description: Kinds of workloads searched for consumers.
    type: list
    elements: str
    choices: [Deployment, StatefulSet, DaemonSet]
    default: [Deployment, StatefulSet, DaemonSet]
  secrets:
    description:
      - Names of Secrets that must exist in every target namespace (for example the credentials the new configuration
        needs). A missing one fails the task before anything changes. Values are never read into results.
    type: list
    elements: str
    default: []
  list_secrets:
    description: Return the names (and types) of the Secrets in every target namespace. Never their values.
    type: bool
    default: false
  wait:
    description: With O(restart_consumers=true), wait for the rollouts.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for all rollouts together (every cluster's, with O(restart_order=cluster_by_cluster)).
    type: float
    default: 300
  log_lines:
    description: Log lines to return of each pod that is not ready when a rollout fails.
    type: int
    default: 20
  concurrency:
    description: Clusters, namespaces and workloads handled at once.
    type: int
    default: 16
seealso:
  - module: incident.response.workload_restart
"""

EXAMPLES = r"""
# Runbook 2.2: the primary database is down and the replica was promoted
- name: Point both regions' services at the promoted database and restart them
  incident.response.config_patch:
    kubeconfig: "{{ kubeconfig }}"
    clusters:
      - {name: primary, context: primary}
      - {name: secondary, context: secondary}
    namespace: microservices
    name: microservice-config
    data:
      db.host: "{{ mysql_secondary_host }}"
      db.port: 3306
    expected:
      db.host: "{{ mysql_primary_host }}"
    secrets: [db-credentials]
    backup_file: "{{ incident_dir }}/microservice-config.previous.json"
    restart_consumers: true
  register: db_config
  tags: [destructive]

- name: Show what the change would be
  incident.response.config_patch:
    context: primary
    namespace: microservices
    name: microservice-config
    data:
      new.config: value
  check_mode: true
  diff: true

# Runbook 4.2: kubectl get configmaps / secrets (names only)
- name: Check the configuration and list the secrets by name
  incident.response.config_patch:
    context: primary
    namespace: microservices
    name: microservice-config
    list_secrets: true
  check_mode: true

- name: Roll back (a key that did not exist before is removed)
  incident.response.config_patch:
    kubeconfig: "{{ kubeconfig }}"
    clusters:
      - {name: primary, context: primary}
      - {name: secondary, context: secondary}
    state: restore
    name: microservice-config
    previous: "{{ db_config.previous }}"
    restart_consumers: true
"""

RETURN = r"""
msg:
  description: One line saying what was (or would be) done.
  returned: always
  type: str
  sample: "patched microservice-config in 2 of 2 namespace(s) (primary/microservices: db.host, db.port;
    secondary/microservices: db.host, db.port); restarted 10 consumer(s), all rolled out"
configmaps:
  description: One entry per cluster and namespace.
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
    name:
      description: ConfigMap name.
      type: str
      sample: microservice-config
    changed:
      description: Whether this ConfigMap was (or would be) changed.
      type: bool
    changed_keys:
      description: Keys set or removed.
      type: list
      elements: str
      sample: [db.host, db.port]
    data:
      description: The ConfigMap's data after the task (in check mode, as it would be).
      type: dict
      sample: {db.host: 10.0.2.20, db.port: "3306", db.name: shop}
    resource_version:
      description: resourceVersion after the task.
      type: str
    consumers:
      description:
        - With O(restart_consumers=true), the workloads using the ConfigMap - C(kind), C(name), C(references) (how),
          C(affected) (sees a changed key), C(restarted) (with C(restarted_at), when its restart was sent, UTC, in
          milliseconds), and the C(rollout) of the restart.
      type: list
      elements: dict
previous:
  description:
    - The replaced values per ConfigMap (V(null) - the key did not exist), in the shape O(previous) takes.
  returned: always
  type: list
  elements: dict
  sample: [{cluster: primary, namespace: microservices, name: microservice-config,
    data: {db.host: 10.0.1.20, db.port: "3306", new.config: null}}]
secrets:
  description: With O(secrets) or O(list_secrets), per cluster and namespace the Secrets by C(name), C(type), C(exists).
  returned: always
  type: list
  elements: dict
  sample: [{cluster: primary, namespace: microservices, name: db-credentials, type: Opaque, exists: true}]
backup_file:
  description: The file RV(previous) was written to, or null.
  returned: always
  type: str
elapsed:
  description: Seconds the task took.
  returned: always
  type: float
"""

import json
import time
from datetime import UTC, datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.response.plugins.module_utils import k8s_rollout as rollout
from ansible_collections.incident.response.plugins.module_utils import k8s_workloads as wl
from ansible_collections.incident.response.plugins.module_utils.common import (
    ModuleFailure,
    bounded_map,
    check_numbers,
    run,
)
from ansible_collections.incident.response.plugins.module_utils.files import read_bytes, write_atomic
from ansible_collections.incident.response.plugins.module_utils.k8s import (
    api_path,
    auth_argument_spec,
    clusters_argument_spec,
    clusters_from_params,
    warn_dry_runs_refused,
)

KINDS = ["Deployment", "StatefulSet", "DaemonSet"]
RETRIES = 3


def cm_path(namespace, name):
    return api_path("v1", "configmaps", namespace, name)


def argument_spec():
    previous = dict(
        cluster=dict(type="str", required=True),
        namespace=dict(type="str", required=True),
        name=dict(type="str", required=True),
        data=dict(type="dict", required=True),
    )
    spec = auth_argument_spec()
    spec.update(clusters_argument_spec())
    spec.update(
        state=dict(type="str", choices=["present", "restore"], default="present"),
        name=dict(type="str", required=True),
        namespace=dict(type="list", elements="str", default=[]),
        data=dict(type="dict", default={}),
        expected=dict(type="dict"),
        previous=dict(type="list", elements="dict", options=previous),
        backup_file=dict(type="path"),
        restart_consumers=dict(type="bool", default=False),
        consumer_kinds=dict(type="list", elements="str", choices=KINDS, default=list(KINDS)),
        secrets=dict(type="list", elements="str", default=[], no_log=False),
        list_secrets=dict(type="bool", default=False),
        restart_order=dict(type="str", choices=["together", "cluster_by_cluster"], default="together"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="float", default=300),
        log_lines=dict(type="int", default=20),
        concurrency=dict(type="int", default=16),
    )
    return spec


def where(t):
    return f"{t['cluster'].name}/{t['namespace']}"


# -- reading and planning -------------------------------------------------------------------


def read_configmap(t):
    what = f"read configmap {t['namespace']}/{t['name']}"
    cm = t["cluster"].get(what, cm_path(t["namespace"], t["name"]), missing_ok=True)
    if cm is None:
        raise ModuleFailure(wl.missing(t["cluster"], t["namespace"], f"configmap {t['name']!r}"))
    return cm


def secrets_of(t, wanted, listing):
    """Secrets by name and type only: the listing's data is dropped as soon as it is read."""
    if not wanted and not listing:
        return []
    items = t["cluster"].get(f"list the secrets of {t['namespace']}", api_path("v1", "secrets", t["namespace"]))
    present = {}
    for item in items.get("items", []):
        present[item["metadata"]["name"]] = item.get("type")
    del items
    out = []
    for name in wanted:
        out.append(
            dict(
                cluster=t["cluster"].name,
                namespace=t["namespace"],
                name=name,
                type=present.get(name),
                exists=name in present,
            )
        )
    if listing:
        out += [
            dict(cluster=t["cluster"].name, namespace=t["namespace"], name=name, type=kind, exists=True)
            for name, kind in sorted(present.items())
            if name not in wanted
        ]
    return out


def consumers_of(t, kinds, changed_keys):
    found = []
    for kind_name in kinds:
        kind = rollout.KINDS[kind_name]
        items = t["cluster"].get(f"list the {kind.plural} of {t['namespace']}", kind.path(t["namespace"]))
        for obj in items.get("items", []):
            obj.setdefault("kind", kind_name)
            refs = wl.configmap_references(obj, t["name"])
            if refs:
                found.append(
                    dict(
                        kind=kind_name,
                        name=obj["metadata"]["name"],
                        references=refs,
                        affected=wl.uses_keys(refs, changed_keys),
                        restarted=False,
                        obj=obj,
                    )
                )
    return found


def plan(t, p):
    cm = read_configmap(t)
    current = dict(cm.get("data") or {})
    problems = wl.check_expected(current, t.get("expected"))
    if problems:
        raise ModuleFailure(f"{where(t)}: configmap {t['name']} is not as expected: {'; '.join(problems)}")
    patch, previous = wl.plan_data(current, t["desired"])
    after = {k: v for k, v in {**current, **patch}.items() if v is not None}
    t.update(
        rv=cm["metadata"].get("resourceVersion"),
        current=current,
        patch=patch,
        previous=previous,
        after=after,
    )
    t["secrets"] = secrets_of(t, p["secrets"], p["list_secrets"])
    missing = [s["name"] for s in t["secrets"] if not s["exists"]]
    if missing:
        raise ModuleFailure(f"{where(t)}: required secret(s) missing: {', '.join(missing)}")
    t["consumers"] = []
    if p["restart_consumers"]:
        t["consumers"] = consumers_of(t, p["consumer_kinds"], list(patch))
        for c in t["consumers"]:
            blocker = rollout.restart_blocker(c["obj"]) if c["affected"] and patch else None
            if blocker:
                raise ModuleFailure(f"{where(t)}: consumer {blocker}; nothing was changed")
    return t


# -- writing -----------------------------------------------------------------------------------


def apply(t, dry_run=False):
    """Merge-patch the changed keys, guarded by the resourceVersion read; on a conflict re-read and re-plan.

    With ``dry_run`` (check mode) the same patch goes to the server as a dry run: ``written`` then means
    the server accepted it, and ``after`` is the data the server would store.
    """
    for attempt in range(RETRIES):
        if not t["patch"]:
            return t
        body = {"metadata": {"resourceVersion": t["rv"]}, "data": t["patch"]}
        try:
            got = t["cluster"].patch(
                f"patch configmap {t['namespace']}/{t['name']}",
                cm_path(t["namespace"], t["name"]),
                body,
                dry_run=dry_run,
                simulated={"metadata": {"resourceVersion": t["rv"]}, "data": t["after"]},
            )
            t.update(written=True, rv=got["metadata"].get("resourceVersion"), after=dict(got.get("data") or {}))
            return t
        except ModuleFailure as exc:
            if "conflict" not in exc.msg or attempt == RETRIES - 1:
                raise ModuleFailure(f"{where(t)}: {exc.msg}") from None
        cm = read_configmap(t)
        current = dict(cm.get("data") or {})
        problems = wl.check_expected(current, t.get("expected"))
        if problems:
            raise ModuleFailure(f"{where(t)}: configmap {t['name']} changed meanwhile: {'; '.join(problems)}")
        t["patch"], t["previous"] = wl.plan_data(current, t["desired"])
        t["rv"] = cm["metadata"].get("resourceVersion")
    return t


def entry(t):
    changed = bool(t.get("patch")) and t.get("written", False)
    out = dict(
        cluster=t["cluster"].name,
        namespace=t["namespace"],
        name=t["name"],
        changed=changed,
        changed_keys=sorted(t.get("patch") or {}),
        data=t.get("after", {}),
        resource_version=t.get("rv"),
    )
    if t.get("error"):
        out["error"] = t["error"]
    if t.get("consumers") is not None:
        out["consumers"] = [{k: v for k, v in c.items() if k != "obj"} for c in t["consumers"]]
    return out


def previous_of(t):
    return dict(cluster=t["cluster"].name, namespace=t["namespace"], name=t["name"], data=t["previous"])


def restart_wave(module, wave, timestamp, dry_run, clusters, msg, failure_result):
    """Restart one wave of consumers at once (in check mode, the restarts' dry runs); fail on any refusal.
    ``failure_result()`` is the module's result so far, for the failure."""

    def restart(pair):
        t, c = pair
        try:
            patched = rollout.restart(t["cluster"], c["obj"], timestamp, dry_run=dry_run)
            if not dry_run:
                sent = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
                c.update(restarted=True, restarted_at=sent, generation=patched["metadata"].get("generation", 0))
        except ModuleFailure as exc:
            c["error"] = exc.msg

    bounded_map(restart, wave, module.params["concurrency"])
    if dry_run:
        warn_dry_runs_refused(module, clusters)
    bad = [c for _t, c in wave if c.get("error")]
    if bad:
        outcome = "would fail (the server refused the dry run)" if dry_run else "failed"
        raise ModuleFailure(
            f"{msg}, but {len(bad)} restart(s) {outcome}: " + " | ".join(c["error"] for c in bad), **failure_result()
        )


def wait_wave(p, wave, budget, msg, failure_result):
    """Wait for one wave's rollouts (``kubectl rollout status``); fail, with the rollouts, when one does not end."""
    items = [
        dict(
            cluster=t["cluster"],
            namespace=t["namespace"],
            kind=c["kind"],
            name=c["name"],
            min_generation=c.get("generation", 0),
        )
        for t, c in wave
    ]
    waited = rollout.wait_rollouts(items, budget, poll=0.25, log_lines=p["log_lines"], concurrency=p["concurrency"])
    for (_t, c), w in zip(wave, waited, strict=True):
        c["rollout"] = {k: v for k, v in w.items() if k not in ("cluster", "namespace", "kind", "name")}
        c.pop("generation", None)
    problem = rollout.rollout_failure(waited)
    if problem:
        raise ModuleFailure(f"{msg}, but {problem}", **failure_result())


def config_patch(module):
    p = module.params
    start = time.monotonic()
    check_numbers(p, non_negative=("wait_timeout", "log_lines"), positive=("concurrency",))
    if p["restart_order"] == "cluster_by_cluster" and not p["wait"]:
        raise ModuleFailure("restart_order=cluster_by_cluster waits for each cluster's rollouts: it needs wait=true")
    clusters = clusters_from_params(module)
    by_name = {c.name: c for c in clusters}
    try:
        desired = wl.normalize_data(p["data"], "data")
        expected = wl.normalize_data(p["expected"], "expected") if p["expected"] is not None else None
    except ValueError as exc:
        raise ModuleFailure(str(exc)) from None

    if p["state"] == "restore":
        if p["data"] or p["expected"] is not None:
            raise ModuleFailure("state=restore puts back previous: data and expected belong to state=present")
        entries = p["previous"]
        if entries is None:
            if not p["backup_file"]:
                raise ModuleFailure("state=restore needs previous (the previous of the patching task) or backup_file")
            raw = read_bytes(p["backup_file"])
            if raw is None:
                raise ModuleFailure(f"backup_file {p['backup_file']} does not exist")
            try:
                entries = json.loads(raw)["previous"]
            except (ValueError, KeyError, TypeError):
                raise ModuleFailure(f"backup_file {p['backup_file']} is not a backup written by config_patch") from None
        targets = []
        for prev in entries:
            if prev["cluster"] not in by_name:
                raise ModuleFailure(
                    f"previous names cluster {prev['cluster']!r}, but this task's clusters are: {', '.join(by_name)}"
                )
            if prev["name"] != p["name"]:
                raise ModuleFailure(f"previous is for configmap {prev['name']!r}, not {p['name']!r}")
            try:
                data = wl.normalize_data(prev["data"], "previous data")
            except ValueError as exc:
                raise ModuleFailure(str(exc)) from None
            targets.append(
                dict(cluster=by_name[prev["cluster"]], namespace=prev["namespace"], name=p["name"], desired=data)
            )
    else:
        if not p["namespace"]:
            raise ModuleFailure("namespace is required with state=present")
        targets = [
            dict(cluster=c, namespace=ns, name=p["name"], desired=desired, expected=expected)
            for c in clusters
            for ns in p["namespace"]
        ]

    # 1. Read and check everything; any problem fails before a write.
    planned = bounded_map(lambda t: _guarded(lambda: plan(t, p)), targets, p["concurrency"])
    errors = [r for r in planned if isinstance(r, ModuleFailure)]
    if errors:
        raise ModuleFailure("nothing was changed: " + " | ".join(e.msg for e in errors), configmaps=[], previous=[])
    changing = [t for t in targets if t["patch"]]
    secrets = [s for t in targets for s in t["secrets"]]

    def result(**extra):
        # The diff's "after" is the server's answer to the write (in check mode, to its dry run).
        diff = [
            dict(
                before_header=f"{where(t)}/configmap/{t['name']}",
                after_header=f"{where(t)}/configmap/{t['name']}",
                before=wl.render_data(t["current"]),
                after=wl.render_data(t["after"]),
            )
            for t in changing
        ]
        out = dict(
            changed=any(t.get("written") for t in targets),
            configmaps=[entry(t) for t in targets],
            previous=[previous_of(t) for t in targets if t.get("written")],
            secrets=secrets,
            backup_file=None,
            diff=diff,
            elapsed=round(time.monotonic() - start, 2),
        )
        out.update(extra)
        return out

    def summary(ts):
        return "; ".join(f"{where(t)}: {', '.join(sorted(t['patch']))}" for t in ts)

    affected = [(t, c) for t in changing for c in t["consumers"] if c["affected"]]
    verb, done = ("restore", "restored") if p["state"] == "restore" else ("patch", "patched")
    dry_run = module.check_mode

    # 2. Write; in check mode the same requests as server-side dry runs (the server stores nothing), so
    # check mode fails where the real run would and shows the data the server would store.
    def write(t):
        try:
            apply(t, dry_run)
        except ModuleFailure as exc:
            t["error"] = exc.msg

    bounded_map(write, changing, p["concurrency"])
    if dry_run:
        warn_dry_runs_refused(module, clusters)
    written = [t for t in changing if t.get("written")]
    backup = None
    if p["backup_file"] and written and p["state"] == "present" and not dry_run:
        doc = dict(
            module="incident.response.config_patch", configmap=p["name"], previous=[previous_of(t) for t in written]
        )
        try:
            write_atomic(module, p["backup_file"], (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
            backup = p["backup_file"]
        except ModuleFailure as exc:
            raise ModuleFailure(
                f"patched ({summary(written)}) but the backup was not written: {exc.msg}", **result()
            ) from None
    failed = [t for t in changing if t.get("error")]
    if failed:
        outcome = "would fail (the server refused the dry run)" if dry_run else "failed"
        tail = f"; written: {summary(written)} (see previous to roll back)" if written and not dry_run else ""
        raise ModuleFailure(
            f"{len(failed)} of {len(changing)} patch(es) {outcome}: "
            + " | ".join(t["error"] for t in failed)
            + (tail or "; nothing was written"),
            **result(backup_file=backup),
        )

    # 3. Restart what consumes the changed keys (in check mode: the restarts' dry runs), and wait.
    msg = (
        f"{'would ' + verb if dry_run else done} {p['name']} in {len(written)} of {len(targets)} namespace(s) "
        f"({summary(written)})"
        if written
        else f"{p['name']} already as asked in {len(targets)} namespace(s)"
    )
    if p["restart_consumers"] and affected:
        timestamp = rollout.now_rfc3339()
        waves = [affected]
        if p["restart_order"] == "cluster_by_cluster":
            waves = [[(t, c) for t, c in affected if t["cluster"].name == c_.name] for c_ in clusters]
            waves = [wave for wave in waves if wave]
        waited_since, restarted = time.monotonic(), 0
        for i, wave in enumerate(waves):
            restart_wave(module, wave, timestamp, dry_run, clusters, msg, lambda: result(backup_file=backup))
            restarted += len(wave)
            if p["wait"] and not dry_run:
                budget = max(0.0, p["wait_timeout"] - (time.monotonic() - waited_since))
                left = sorted({t["cluster"].name for later in waves[i + 1 :] for t, _c in later})
                note = f" (not restarted, in {', '.join(left)}: the next clusters wait for this one)" if left else ""
                wait_wave(
                    p,
                    wave,
                    budget,
                    f"{msg}, restarted {restarted} consumer(s){note}",
                    lambda: result(backup_file=backup),
                )
        for _t, c in affected:
            c.pop("generation", None)
        if dry_run:
            msg += f" and restart {len(affected)} consumer(s)"
        else:
            msg += f"; restarted {len(affected)} consumer(s)" + (", all rolled out" if p["wait"] else "")
    elif p["restart_consumers"] and written:
        msg += " and restart 0 consumer(s)" if dry_run else "; no workload uses the changed keys"
    msg += secrets_note(p, secrets)
    out = result(backup_file=backup)
    out["msg"] = msg
    return out


def secrets_note(p, secrets):
    note = f"; required secret(s) present: {', '.join(p['secrets'])}" if p["secrets"] else ""
    if p["list_secrets"]:
        note += f"; {len(secrets)} secret(s) listed by name"
    return note


def _guarded(fn):
    try:
        return fn()
    except ModuleFailure as exc:
        return exc


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run(module, config_patch)


if __name__ == "__main__":
    main()
