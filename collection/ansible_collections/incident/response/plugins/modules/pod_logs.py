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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.response.plugins.module_utils import k8s, k8s_logs
from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure, run


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
    clients = {a["name"]: k8s.get_clients(a) for a in k8s.cluster_auths(p)}
    collector = k8s_logs.Collector(
        clients,
        dest=p["dest"],
        write=not module.check_mode,
        group_by=p["group_by"],
        service_label=p["service_label"],
        error_pattern=p["error_pattern"],
        error_samples=p["error_samples"],
        inline_lines=p["inline_lines"],
        previous=p["previous"],
        concurrency=p["concurrency"],
        tail_lines=p["tail_lines"],
        since_seconds=p["since_seconds"],
        timestamps=p["timestamps"],
        limit_bytes=p["limit_bytes"],
        timeout=p["request_timeout"],
    )
    found = collector.find(p["selectors"])
    if found.missing:
        where = "; ".join(f"{c}: {', '.join(ns)}" for c, ns in found.missing.items())
        raise ModuleFailure(f"namespace(s) not found ({where}): check the selectors", selectors=found.matched)
    entries, files = collector.collect_all(found.entries)
    summary = k8s_logs.summarize(entries, len(clients))
    summary["files"] = len(files)
    result = dict(changed=bool(files), logs=entries, summary=summary, selectors=found.matched, files=files)
    where = f"; {len(files)} files under {p['dest']}" if p["dest"] else ""
    if p["dest"] and module.check_mode:
        where = f"; would write {len(files)} files under {p['dest']}"
    msg = (
        f"logs of {summary['containers']} containers in {summary['pods']} pods from {summary['clusters']} "
        f"cluster(s): {summary['lines']} lines, {summary['error_lines']} error-looking, "
        f"{summary['previous_logs']} previous logs{where}"
    )
    for sel in found.matched:
        if not any(sel["matched"].values()) and not found.errors:
            described = ", ".join(f"{k}={v}" for k, v in sel.items() if v and k != "matched") or "all pods"
            module.warn(f"no pod matched the selector {described} in any cluster")
    errors = found.errors + [e["error"] for e in entries if e["error"]]
    if errors:
        raise ModuleFailure(
            "; ".join(dict.fromkeys(errors))
            + ". The logs that could be read are in the result"
            + (" and written" if p["dest"] and not module.check_mode else ""),
            **result,
        )
    return dict(result, msg=msg)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run(module, pod_logs)


if __name__ == "__main__":
    main()
