#!/usr/bin/python
# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: network_probe
short_description: Resolve names and test TCP reachability, from the controller or from inside a pod
description:
  - The runbook's Network Analysis (C(kubectl exec ... -- ping $DB_HOST), C(kubectl exec ... -- nslookup $DB_HOST))
    in one task. For each target it resolves the name and, when a port is given, opens a TCP connection, and
    reports the addresses, whether it is reachable, the error and the latency.
  - From the controller (O(source=controller)) the checks run concurrently on the machine that runs the module.
  - From inside a pod (O(source=pod) or V(both)) they run through the API's exec in one pod per cluster (chosen by
    name, or the first ready pod matching a label selector), concurrently inside the pod, with C(getent) or
    C(nslookup) and C(nc -z) or bash's C(/dev/tcp).
  - When a cluster does not allow exec (RBAC, policy, an API server without it), the task fails saying so,
    unless O(fallback_to_controller=true), which checks from the controller instead and marks those checks
    C(fallback).
  - ICMP ping needs privileges; the TCP connect time is the latency that is measured.
  - The whole task ends by O(deadline), choosing the pod and the exec included; a check that got no answer in
    time says C(timed_out=true), apart from a refused connection.
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
    details: The checks only read (resolve, connect, close); they run in check mode too.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  targets:
    description: What to check.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the check in the results. Default C(host:port).
        type: str
      host:
        description: Host name or address.
        type: str
        required: true
      port:
        description: TCP port to connect to. Without it, only the name is resolved (C(nslookup)).
        type: int
  source:
    description: Where the checks run from.
    type: str
    choices: [controller, pod, both]
    default: controller
  pod:
    description: The pod to run the checks in, in every cluster (needed with O(source=pod) or V(both)).
    type: dict
    suboptions:
      namespace:
        description: Namespace of the pod.
        type: str
        required: true
      name:
        description: Name of the pod.
        type: str
      label_selector:
        description: Without O(pod.name), the first running and ready pod matching this selector (C(items[0])).
        type: str
      container:
        description: Container to exec into. Default the pod's only (or first) container.
        type: str
  fallback_to_controller:
    description:
      - When a cluster does not allow exec into the pod, check from the controller instead (once, for every
        such cluster) and mark those checks C(fallback=true), with a warning. Without it, that is a failure.
    type: bool
    default: false
  timeout:
    description: Seconds for each check (resolution and connection), cut to what is left of O(deadline).
    type: float
    default: 3.0
  deadline:
    description:
      - Seconds for the whole task, the API requests and the exec into pods included. A check not answered by
        then is reported with C(timed_out=true).
    type: float
    default: 30.0
  concurrency:
    description: Checks from the controller in flight at once.
    type: int
    default: 32
  fail_on:
    description:
      - V(any) fails when a target with a port is unreachable or a name does not resolve, with the full result.
      - V(never) only reports; read RV(summary) to decide.
    type: str
    choices: [any, never]
    default: any
notes:
  - Talks to the clusters only through the official C(kubernetes) Python client (exec is its websocket stream).
seealso:
  - module: incident.response.cluster_snapshot
  - module: incident.response.service_health
"""

EXAMPLES = r"""
- name: Can the user service reach and resolve the database? (Network Analysis, from inside a pod)
  incident.response.network_probe:
    kubeconfig: "{{ kubeconfig }}"
    clusters:
      - name: primary
        context: primary
      - name: secondary
        context: secondary
    source: pod
    pod:
      namespace: microservices
      label_selector: app=user-service
    fallback_to_controller: true
    targets:
      - name: db
        host: "{{ db_host }}"
        port: 3306
      - name: db-dns
        host: "{{ db_host }}"
  register: network

- name: From the controller only, reporting without failing
  incident.response.network_probe:
    targets:
      - {name: db-primary, host: db-primary.internal, port: 3306}
      - {name: db-replica, host: db-replica.internal, port: 3306}
      - {name: primary-lb, host: lb.primary.example.com, port: 443}
    timeout: 2
    fail_on: never
  register: reach

- name: Stop when the primary database is unreachable
  ansible.builtin.fail:
    msg: "{{ reach.msg }}"
  when: "'db-primary@controller' in reach.summary.unreachable"
"""

RETURN = r"""
msg:
  description: One line for the incident timeline.
  returned: always
  type: str
  sample: "3 checks from the controller: 1 reachable (db 0.4 ms), 1 unreachable (closed: Connection refused),
    1 unresolved (nope.invalid)"
checks:
  description: One entry per target and source, controller checks first.
  returned: always
  type: list
  elements: dict
  sample:
    - name: db
      host: db.internal
      port: 3306
      source: controller
      cluster: null
      pod: null
      fallback: true
      resolved: true
      addresses: [10.0.3.12]
      address: 10.0.3.12
      resolve_ms: 0.8
      reachable: true
      connect_ms: 0.4
      latency_ms: 1.2
      error: null
      tool: socket
  contains:
    source:
      description: V(controller) or V(pod).
      type: str
    cluster:
      description: The cluster of the pod (for a fallback, the controller stands in for the pods of RV(exec)).
      type: str
    pod:
      description: C(namespace/name) of the pod the check ran in.
      type: str
    fallback:
      description: True for controller checks that stand in for pod checks that could not run.
      type: bool
    reachable:
      description: Whether the TCP connection opened; null without a port (or when the pod has no tool to test it).
      type: bool
    timed_out:
      description:
        - True when the resolution or the connection got no answer in time (O(timeout) or O(deadline)), as
          opposed to a refused connection or an unknown name.
      type: bool
    latency_ms:
      description: Resolution plus connection time in milliseconds (resolution only without a port).
      type: float
    tool:
      description: What did the check (V(socket) on the controller; V(nc) or V(bash) in a pod).
      type: str
exec:
  description: Per cluster, whether the checks could run in its pod (O(source=pod) or V(both) only).
  returned: always
  type: dict
  sample:
    primary:
      pod: microservices/user-service-7c9f-abcde
      available: false
      reason: "exec into pod microservices/user-service-7c9f-abcde in primary is not available: the API server
        refused the exec request (HTTP 404: the server could not find the requested resource)"
      fallback: true
summary:
  description:
    - Counts, and names (C(name@where)) of what is not fine; C(timed_out) names the checks that got no answer
      in time.
  returned: always
  type: dict
  sample: {total: 3, reachable: 1, unreachable: [closed@controller], unresolved: [nope@controller],
           timed_out: [], all_ok: false}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.response.plugins.module_utils import k8s, netprobe
from ansible_collections.incident.response.plugins.module_utils.common import (
    Deadline,
    ModuleFailure,
    bounded_map,
    cap,
    check_deadline,
    run,
)


def argument_spec():
    target = dict(name=dict(type="str"), host=dict(type="str", required=True), port=dict(type="int"))
    pod = dict(
        namespace=dict(type="str", required=True),
        name=dict(type="str"),
        label_selector=dict(type="str"),
        container=dict(type="str"),
    )
    return dict(
        targets=dict(type="list", elements="dict", options=target, required=True),
        source=dict(type="str", choices=["controller", "pod", "both"], default="controller"),
        pod=dict(type="dict", options=pod),
        fallback_to_controller=dict(type="bool", default=False),
        timeout=dict(type="float", default=3.0),
        deadline=dict(type="float", default=30.0),
        concurrency=dict(type="int", default=32),
        fail_on=dict(type="str", choices=["any", "never"], default="any"),
        **k8s.auth_argument_spec(),
        **k8s.clusters_argument_spec(),
    )


def _where(check):
    return f"{check['cluster']}/{check['pod']}" if check["source"] == "pod" else "controller"


def _in_pod(job):
    """(cluster, exec info, checks) for one cluster: pick the pod, run the script in it."""
    name, clients, p, deadline = job
    info = dict(pod=None, available=False, reason=None, fallback=False)
    try:
        pod = netprobe.pick_pod(clients, p["pod"], k8s.Budget(p["request_timeout"], deadline))
    except ModuleFailure as exc:
        info["reason"] = exc.msg
        return name, info, [], True
    if pod is None:
        sel = p["pod"].get("label_selector") or "any label"
        info["reason"] = f"{name}: no pod matches {sel} in namespace {p['pod']['namespace']}"
        return name, info, [], True
    info["pod"] = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
    command = netprobe.pod_command(p["targets"], cap(deadline, p["timeout"]))
    try:
        out, err, code = netprobe.exec_in_pod(
            clients,
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            command,
            p["pod"].get("container"),
            timeout=p["timeout"] * 2 + 5,
            deadline=deadline,
        )
    except netprobe.ExecUnavailable as exc:
        info["reason"] = str(exc)
        return name, info, [], False
    info["available"] = True
    checks = netprobe.parse_pod_output(out, p["targets"], name, info["pod"])
    if code not in (0, None) and not out:
        info["reason"] = f"the probe script failed in the pod (exit code {code}): {(err or '').strip()[:300]}"
    return name, info, checks, False


def _summary(checks):
    unreachable = [f"{c['name']}@{_where(c)}" for c in checks if c["port"] and c["reachable"] is False]
    unresolved = [f"{c['name']}@{_where(c)}" for c in checks if not c["resolved"]]
    timed_out = [f"{c['name']}@{_where(c)}" for c in checks if c["timed_out"]]
    return dict(
        total=len(checks),
        reachable=sum(1 for c in checks if c["reachable"]),
        resolved=sum(1 for c in checks if c["resolved"]),
        unreachable=unreachable,
        unresolved=unresolved,
        timed_out=timed_out,
        all_ok=not unreachable and not unresolved,
    )


def _msg(checks, sources):
    ok = [c for c in checks if c["reachable"] or (not c["port"] and c["resolved"])]
    bad = [c for c in checks if c not in ok]
    parts = [f"{len(checks)} checks from {', '.join(sources) or 'nowhere'}: {len(ok)} fine"]
    if ok:
        parts[0] += " (" + ", ".join(f"{c['name']} {c['latency_ms']} ms" for c in ok[:4]) + ")"
    if bad:
        parts.append(
            f"{len(bad)} failing (" + "; ".join(f"{c['name']}@{_where(c)}: {c['error']}" for c in bad[:4]) + ")"
        )
    return ", ".join(parts)


def network_probe(module):
    p = module.params
    for t in p["targets"]:
        if t.get("port") is not None and not 0 < t["port"] < 65536:
            raise ModuleFailure(f"port {t['port']} of {t['host']} is not a TCP port (1-65535)")
    if p["timeout"] <= 0 or p["concurrency"] < 1:
        raise ModuleFailure("timeout must be > 0 and concurrency >= 1")
    check_deadline(p["deadline"])
    deadline = Deadline(p["deadline"])
    in_pod = p["source"] in ("pod", "both")
    if in_pod and not p["pod"]:
        raise ModuleFailure(f"source={p['source']} needs pod (its namespace, and its name or a label_selector)")

    checks, exec_info, sources = [], {}, []
    clients = {}
    if in_pod:
        k8s.require_kubernetes(module)
        clients = {a["name"]: k8s.get_clients(a) for a in k8s.cluster_auths(p)}
    if p["source"] in ("controller", "both"):
        checks += bounded_map(lambda t: netprobe.check(t, p["timeout"], deadline), p["targets"], p["concurrency"])
        sources.append("the controller")

    failures, fallback_for = [], []
    if in_pod:
        jobs = [(n, c, p, deadline) for n, c in clients.items()]
        for name, info, pod_checks, hard in bounded_map(_in_pod, jobs, 8):
            exec_info[name] = info
            checks += pod_checks
            if info["available"]:
                sources.append(f"pod {name}/{info['pod']}")
            elif hard or not p["fallback_to_controller"]:
                failures.append(info["reason"])
            else:
                info["fallback"] = True
                fallback_for.append(name)
    if fallback_for:
        module.warn(
            f"exec into pods is not available in {', '.join(fallback_for)}: checking from the controller instead "
            "(fallback_to_controller=true)"
        )
        if p["source"] == "pod":
            extra = bounded_map(lambda t: netprobe.check(t, p["timeout"], deadline), p["targets"], p["concurrency"])
            for c in extra:
                c["fallback"] = True
            checks = extra + checks
            sources.insert(0, "the controller (fallback)")
        else:  # source=both: the controller's checks are there already and stand in
            for c in checks:
                if c["source"] == "controller":
                    c["fallback"] = True

    summary = _summary(checks)
    result = dict(changed=False, checks=checks, exec=exec_info, summary=summary)
    if failures:
        unavailable = [f for f in failures if "is not available" in f or "did not answer within" in f]
        hint = (
            ". The checks from inside the pod cannot run; set fallback_to_controller=true to check from the "
            "controller instead"
            if unavailable
            else ""
        )
        raise ModuleFailure("; ".join(failures) + hint, **result)
    msg = _msg(checks, sources)
    if p["fail_on"] == "any" and not summary["all_ok"]:
        raise ModuleFailure(msg, **result)
    return dict(result, msg=msg)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run(module, network_probe)


if __name__ == "__main__":
    main()
