#!/usr/bin/python
# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pod_logs
short_description: Collect the logs of many pods, in one or more clusters, at once
description:
  - The runbook's log collection (Investigation Procedures, Log Analysis; 2.3 and 4.1 C(kubectl logs -l app=...))
    for every service and C(kube-system) in one task, every region at once. Pods are chosen by selectors
    (namespace, label selector, field selector, names); each container's log is read concurrently.
  - For a container that restarted, also reads the log of the instance that died (C(kubectl logs --previous)),
    which usually says why.
  - Writes one file per container under O(dest) (C(<cluster>/<namespace>/<pod>.log), or one per service with
    O(group_by=service)) and returns a summary, line counts and error-looking lines per container and per
    service, and with O(inline_lines) the last lines of each log.
  - A container without a log yet (still starting) or without a previous instance is a note, not a failure.
    A cluster or a log that cannot be read (unreachable, timed out, forbidden) fails the task with the partial
    result (the other files are written). A namespace that does not exist fails.
version_added: 0.1.0
author:
  - Incident Response Engineering (@incident-response)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - incident.response.kube_auth
  - incident.response.kube_clusters
attributes:
  check_mode:
    support: full
    details: The logs are read (only reads) and summarized; nothing is written under O(dest), RV(files) lists
      what would be.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  selectors:
    description: Which pods. A pod matched by several selectors is collected once.
    type: list
    elements: dict
    required: true
    suboptions:
      namespace:
        description: Namespace of the pods. Omit for all namespaces.
        type: str
      label_selector:
        description: Label selector, as for C(kubectl logs -l), for example V(app=payment-service).
        type: str
      field_selector:
        description: Field selector, for example V(status.phase=Running).
        type: str
      names:
        description: Only these pods (needs O(selectors[].namespace)).
        type: list
        elements: str
      container:
        description: Only this container of each pod. Default every container.
        type: str
  tail_lines:
    description: Only the last lines of each log (C(--tail)). Default the whole log.
    type: int
  since_seconds:
    description: Only lines newer than this many seconds (C(--since)).
    type: int
  limit_bytes:
    description: At most this many bytes of each log (C(--limit-bytes)).
    type: int
  timestamps:
    description: Prefix every line with its timestamp (C(--timestamps)).
    type: bool
    default: false
  previous:
    description: Also collect the previous instance's log of every container that restarted (C(--previous)).
    type: bool
    default: true
  dest:
    description:
      - Directory to write the logs to, created when missing. Files are
        C(<dest>/<cluster>/<namespace>/<pod>.log) (C(<pod>.<container>.log) for pods with several
        containers) and C(<pod>.previous.log) for previous instances.
      - Without it nothing is written; the summary (and O(inline_lines)) is still returned.
    type: path
  group_by:
    description:
      - V(pod) writes a file per container; V(service) one file per service (pods with the same
        O(service_label) value) as C(<dest>/<cluster>/<namespace>/<service>.log), every line prefixed with
        C([pod/<pod>/<container>]) like C(kubectl logs --prefix). Pods without the label keep their own file.
    type: str
    choices: [pod, service]
    default: pod
  service_label:
    description: The pod label that names the service a pod belongs to.
    type: str
    default: app
  error_pattern:
    description:
      - Regular expression (Python syntax) of error-looking lines, counted per log; the first matches are
        returned as samples. The default matches error, exception, fatal, panic, traceback, critical and
        severe as words, in any case.
    type: str
  error_samples:
    description: How many error-looking lines to return per log.
    type: int
    default: 5
  inline_lines:
    description: Also return the last this many lines of each log in the result (0 for none).
    type: int
    default: 0
  concurrency:
    description: Log reads in flight at once, over all clusters.
    type: int
    default: 16
notes:
  - Talks to the clusters only through the official C(kubernetes) Python client.
  - Init containers are not collected.
seealso:
  - module: incident.response.cluster_snapshot
"""

EXAMPLES = r"""
- name: Collect the logs of every service and of kube-system in both regions (Log Analysis)
  incident.response.pod_logs:
    kubeconfig: "{{ kubeconfig }}"
    clusters:
      - name: primary
        context: primary
      - name: secondary
        context: secondary
    selectors:
      - namespace: microservices
        label_selector: app in (user-service, order-service, payment-service, inventory-service, notification-service)
      - namespace: kube-system
    tail_lines: 1000
    dest: "{{ incident_dir }}/logs"
  register: logs

- name: One file per service, as the runbook's loop writes them (logs-<service>.log)
  incident.response.pod_logs:
    context: primary
    selectors:
      - namespace: microservices
    group_by: service
    since_seconds: 3600
    dest: "{{ incident_dir }}/logs"

- name: The last 50 lines of the payment service inline (2.3 / 4.1), with the crashed instances' logs
  incident.response.pod_logs:
    context: primary
    selectors:
      - namespace: microservices
        label_selector: app=payment-service
    tail_lines: 50
    inline_lines: 50
  register: payment_logs

- name: Show where errors are
  ansible.builtin.debug:
    msg: "{{ logs.summary.by_service | dict2items | selectattr('value.error_lines', 'gt', 0) | list }}"
"""

RETURN = r"""
msg:
  description: One line for the incident timeline.
  returned: always
  type: str
  sample: "logs of 16 containers in 16 pods from 2 clusters: 24180 lines, 12 error-looking, 2 previous logs;
    18 files under /srv/incidents/INC-42/logs"
logs:
  description: One entry per container, ordered by cluster, namespace, pod and container.
  returned: always
  type: list
  elements: dict
  sample:
    - cluster: primary
      namespace: microservices
      pod: payment-service-5d9c-x2k4q
      container: payment-service
      service: payment-service
      restarts: 3
      file: /srv/incidents/INC-42/logs/primary/microservices/payment-service-5d9c-x2k4q.log
      lines: 1000
      bytes: 98214
      error_lines: 2
      error_samples: ["2026-01-31 12:00:01 ERROR DataSource: Communications link failure"]
      previous: {file: /srv/incidents/INC-42/logs/primary/microservices/payment-service-5d9c-x2k4q.previous.log,
                 lines: 12, bytes: 1410, error_lines: 1, error_samples: ["FATAL: cannot connect"], last_lines: []}
      last_lines: []
      note: null
      error: null
  contains:
    file:
      description: The file the log is (or would be) in, null without O(dest).
      type: str
    previous:
      description: The previous instance's log (same keys), null when the container did not restart or it is gone.
      type: dict
    note:
      description: Why there is no log (for example the container is still starting), else null.
      type: str
    error:
      description: Why the log could not be read, else null.
      type: str
summary:
  description: Totals, and per service (C(cluster/namespace/service)) pods, lines and error-looking lines.
  returned: always
  type: dict
  sample:
    clusters: 2
    pods: 16
    containers: 16
    lines: 24180
    bytes: 2310400
    error_lines: 12
    previous_logs: 2
    unavailable: 0
    failed: 0
    files: 18
    by_service:
      primary/microservices/payment-service: {pods: 2, lines: 2024, error_lines: 10}
selectors:
  description: Each selector with the number of pods it matched per cluster (a selector matching nothing warns).
  returned: always
  type: list
  elements: dict
  sample: [{namespace: microservices, label_selector: app=payment-service, matched: {primary: 2, secondary: 2}}]
files:
  description: The files written (or in check mode, that would be).
  returned: always
  type: list
  elements: str
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.response.plugins.module_utils import k8s, k8s_logs
from ansible_collections.incident.response.plugins.module_utils import k8s_views as views
from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure, bounded_map, run


def argument_spec():
    selector = dict(
        namespace=dict(type="str"),
        label_selector=dict(type="str"),
        field_selector=dict(type="str"),
        names=dict(type="list", elements="str"),
        container=dict(type="str"),
    )
    return dict(
        selectors=dict(type="list", elements="dict", options=selector, required=True),
        tail_lines=dict(type="int"),
        since_seconds=dict(type="int"),
        limit_bytes=dict(type="int"),
        timestamps=dict(type="bool", default=False),
        previous=dict(type="bool", default=True),
        dest=dict(type="path"),
        group_by=dict(type="str", choices=["pod", "service"], default="pod"),
        service_label=dict(type="str", default="app"),
        error_pattern=dict(type="str"),
        error_samples=dict(type="int", default=5),
        inline_lines=dict(type="int", default=0),
        concurrency=dict(type="int", default=16),
        **k8s.auth_argument_spec(),
        **k8s.clusters_argument_spec(),
    )


def _safe(name):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"


def _list_pods(job):
    """(cluster, selector index, pods, missing namespace or None, error) for one selector in one cluster."""
    cluster, clients, index, sel, timeout = job
    core = clients.core
    kwargs = {}
    if sel.get("label_selector"):
        kwargs["label_selector"] = sel["label_selector"]
    if sel.get("field_selector"):
        kwargs["field_selector"] = sel["field_selector"]
    ns = sel.get("namespace")
    where = f"in namespace {ns}" if ns else "in all namespaces"
    try:
        if ns:
            pods = views.list_all(
                clients, f"list pods {where}", core.list_namespaced_pod, ns, timeout=timeout, **kwargs
            )
        else:
            pods = views.list_all(
                clients, f"list pods {where}", core.list_pod_for_all_namespaces, timeout=timeout, **kwargs
            )
        if sel.get("names"):
            wanted = set(sel["names"])
            pods = [p for p in pods if p["metadata"]["name"] in wanted]
        missing = None
        if ns and not pods and views.missing_namespaces(clients, [ns], timeout):
            missing = ns
        return cluster, index, pods, missing, None
    except ModuleFailure as exc:
        return cluster, index, [], None, exc.msg


class Collector:
    def __init__(self, module, clients):
        p = module.params
        self.module = module
        self.p = p
        self.clients = clients
        self.pattern = k8s_logs.compile_pattern(p["error_pattern"])
        self.write = bool(p["dest"]) and not module.check_mode
        self.keep_data = p["group_by"] == "service"
        self.options = dict(
            tail_lines=p["tail_lines"],
            since_seconds=p["since_seconds"],
            timestamps=p["timestamps"],
            limit_bytes=p["limit_bytes"],
            timeout=p["request_timeout"],
        )

    def path(self, entry, previous=False, stem=None):
        if not self.p["dest"]:
            return None
        stem = stem or (entry["pod"] if entry["single"] else f"{entry['pod']}.{entry['container']}")
        name = f"{stem}.previous.log" if previous else f"{stem}.log"
        return os.path.join(self.p["dest"], _safe(entry["cluster"]), entry["namespace"], name)

    def _log(self, entry, previous):
        """Read one log; its summary (and, to group by service, its data)."""
        data = k8s_logs.read_log(
            self.clients[entry["cluster"]],
            entry["namespace"],
            entry["pod"],
            entry["container"],
            previous=previous,
            **self.options,
        )
        lines, errors, samples = k8s_logs.scan(data, self.pattern, self.p["error_samples"])
        out = dict(
            file=None,
            lines=lines,
            bytes=len(data),
            error_lines=errors,
            error_samples=samples,
            last_lines=k8s_logs.last_lines(data, self.p["inline_lines"]),
        )
        if self.keep_data and entry["service"]:
            out["_data"] = data
        else:
            out["file"] = self.path(entry, previous)
            if self.write:
                write_file(out["file"], data)
        return out

    def collect(self, entry):
        try:
            entry.update(self._log(entry, False))
        except k8s_logs.LogUnavailable as exc:
            entry["note"] = f"no log: {exc}"
        except ModuleFailure as exc:
            entry["error"] = exc.msg
            return entry
        if self.p["previous"] and entry["restarts"]:
            try:
                entry["previous"] = self._log(entry, True)
            except k8s_logs.LogUnavailable:
                pass  # the previous instance's log is gone (rotated away): nothing to say
            except ModuleFailure as exc:
                entry["error"] = exc.msg
        return entry


def write_file(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.part"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _entries(pods_by_cluster, selectors, service_label):
    entries, seen = [], set()
    for cluster, found in pods_by_cluster.items():
        for index, pods in found:
            only = selectors[index].get("container")
            for pod in pods:
                meta, spec = pod["metadata"], pod.get("spec") or {}
                statuses = {c.get("name"): c for c in (pod.get("status") or {}).get("containerStatuses") or []}
                names = [c["name"] for c in spec.get("containers") or []]
                for container in names:
                    key = (cluster, meta["namespace"], meta["name"], container)
                    if (only and container != only) or key in seen:
                        continue
                    seen.add(key)
                    entries.append(
                        dict(
                            cluster=cluster,
                            namespace=meta["namespace"],
                            pod=meta["name"],
                            container=container,
                            single=len(names) == 1,
                            service=(meta.get("labels") or {}).get(service_label),
                            restarts=(statuses.get(container) or {}).get("restartCount", 0),
                            file=None,
                            lines=0,
                            bytes=0,
                            error_lines=0,
                            error_samples=[],
                            last_lines=[],
                            previous=None,
                            note=None,
                            error=None,
                        )
                    )
    entries.sort(key=lambda e: (e["cluster"], e["namespace"], e["pod"], e["container"]))
    return entries


def _write_services(collector, entries):
    """Group by service: one file per (cluster, namespace, service), lines prefixed like ``kubectl logs --prefix``."""
    groups = {}
    for e in entries:
        for previous, part in ((False, e), (True, e["previous"])):
            if part is not None and "_data" in part:
                groups.setdefault((e["cluster"], e["namespace"], e["service"], previous), []).append((e, part))
    written = []
    for (cluster, ns, service, previous), parts in sorted(groups.items()):
        stem = _safe(service)
        path = collector.path(dict(cluster=cluster, namespace=ns), previous, stem=stem)
        chunks = []
        for e, part in parts:
            prefix = f"[pod/{e['pod']}/{e['container']}] ".encode()
            data = part.pop("_data")
            if data:
                lines = data.split(b"\n")
                if lines[-1] == b"":
                    lines.pop()
                chunks.append(b"".join(prefix + line + b"\n" for line in lines))
            part["file"] = path
        if collector.write:
            write_file(path, b"".join(chunks))
        written.append(path)
    return written


def _summary(entries, clusters):
    by_service = {}
    for e in entries:
        key = f"{e['cluster']}/{e['namespace']}/{e['service'] or e['pod']}"
        s = by_service.setdefault(key, dict(pods=set(), lines=0, error_lines=0))
        s["pods"].add(e["pod"])
        for part in (e, e["previous"] or {}):
            s["lines"] += part.get("lines", 0)
            s["error_lines"] += part.get("error_lines", 0)
    for s in by_service.values():
        s["pods"] = len(s["pods"])
    parts = entries + [e["previous"] for e in entries if e["previous"]]
    return dict(
        clusters=len(clusters),
        pods=len({(e["cluster"], e["namespace"], e["pod"]) for e in entries}),
        containers=len(entries),
        lines=sum(x["lines"] for x in parts),
        bytes=sum(x["bytes"] for x in parts),
        error_lines=sum(x["error_lines"] for x in parts),
        previous_logs=sum(1 for e in entries if e["previous"]),
        unavailable=sum(1 for e in entries if e["note"]),
        failed=sum(1 for e in entries if e["error"]),
        by_service=by_service,
    )


def pod_logs(module):
    p = module.params
    k8s.require_kubernetes(module)
    for sel in p["selectors"]:
        if sel.get("names") and not sel.get("namespace"):
            raise ModuleFailure("a selector with names needs its namespace")
    for opt in ("tail_lines", "since_seconds", "limit_bytes"):
        if p[opt] is not None and p[opt] < (0 if opt == "tail_lines" else 1):
            raise ModuleFailure(f"{opt} must be {'>= 0' if opt == 'tail_lines' else '> 0'}")
    if p["concurrency"] < 1 or p["inline_lines"] < 0 or p["error_samples"] < 0:
        raise ModuleFailure("concurrency must be >= 1, inline_lines and error_samples >= 0")
    if p["dest"] and os.path.exists(p["dest"]) and not os.path.isdir(p["dest"]):
        raise ModuleFailure(f"dest {p['dest']} exists and is not a directory")
    auths = k8s.cluster_auths(p)
    clients = {a["name"]: k8s.get_clients(a) for a in auths}
    collector = Collector(module, clients)

    jobs = [
        (name, c, i, sel, p["request_timeout"]) for name, c in clients.items() for i, sel in enumerate(p["selectors"])
    ]
    listed = bounded_map(_list_pods, jobs, p["concurrency"])
    errors, missing = [], {}
    pods_by_cluster = {name: [] for name in clients}
    matched = [dict(sel, matched={}) for sel in p["selectors"]]
    for cluster, index, pods, missing_ns, error in listed:
        if error:
            errors.append(error)
        if missing_ns:
            missing.setdefault(cluster, []).append(missing_ns)
        pods_by_cluster[cluster].append((index, pods))
        matched[index]["matched"][cluster] = len(pods)
    if missing:
        where = "; ".join(f"{c}: {', '.join(ns)}" for c, ns in missing.items())
        raise ModuleFailure(f"namespace(s) not found ({where}): check the selectors", selectors=matched)

    entries = _entries(pods_by_cluster, p["selectors"], p["service_label"])
    entries = bounded_map(collector.collect, entries, p["concurrency"])
    files = [f for e in entries for f in (e["file"], (e["previous"] or {}).get("file")) if f]
    if p["group_by"] == "service":
        files += _write_services(collector, entries)
    for e in entries:
        e.pop("single", None)
    summary = _summary(entries, clients)
    summary["files"] = len(files)
    result = dict(
        changed=bool(files),
        logs=entries,
        summary=summary,
        selectors=matched,
        files=sorted(files),
    )
    where = f"; {len(files)} files under {p['dest']}" if p["dest"] else ""
    if p["dest"] and module.check_mode:
        where = f"; would write {len(files)} files under {p['dest']}"
    msg = (
        f"logs of {summary['containers']} containers in {summary['pods']} pods from {summary['clusters']} "
        f"cluster(s): {summary['lines']} lines, {summary['error_lines']} error-looking, "
        f"{summary['previous_logs']} previous logs{where}"
    )
    for sel in matched:
        if not any(sel["matched"].values()) and not errors:
            module.warn(f"no pod matched the selector {sel}")
    errors += [e["error"] for e in entries if e["error"]]
    if errors:
        raise ModuleFailure(
            "; ".join(dict.fromkeys(errors))
            + ". The logs that could be read are in the result"
            + (" and written" if collector.write else ""),
            **result,
        )
    return dict(result, msg=msg)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run(module, pod_logs)


if __name__ == "__main__":
    main()
