#!/usr/bin/python
# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_snapshot
short_description: Snapshot the state of one or more Kubernetes clusters for triage and the incident record
description:
  - The runbook's "document initial state" (1.3, C(kubectl get pods --all-namespaces -o wide)), its quick
    cluster check (1.2, C(kubectl get nodes), C(kubectl get pods --all-namespaces)) and the P1 resource checks
    (3.1 C(kubectl top pods), C(kubectl top nodes); 3.2 C(kubectl get hpa); 4.1 C(kubectl get endpoints)) in
    one task, for every region at once.
  - Reads nodes (conditions, capacity), pods (phase, readiness, restarts, node, IP), deployments (desired,
    updated, ready, available, conditions), horizontal pod autoscalers (current, desired, min, max, metrics),
    endpoints, recent Warning events and, when the cluster serves the metrics API, the C(kubectl top) figures.
    Every request of every cluster runs concurrently.
  - Returns the data, a compact health summary per cluster (RV(health)) that triage can use directly, for
    example RV(crashlooping_pods) for the severity policy's C(pods_crashlooping) check, and a one-line RV(msg).
  - With O(dest) and O(text_dest) also writes the snapshot for the incident record, as JSON and as the text
    tables C(kubectl get -o wide) prints. Files are replaced atomically.
  - A cluster without the metrics API is no failure; RV(clusters) says so in its C(metrics.note).
    A cluster that cannot be read (unreachable, timed out, credentials refused) fails the task with the
    partial result, unless O(fail_on_error=false). A namespace in O(namespaces) that does not exist always fails.
  - The whole task ends by O(deadline). Every request waits at most O(request_timeout), cut to what is left of
    it, so a frozen API server (it accepts connections and never answers) costs the deadline once, however
    many requests its snapshot needs. Such a cluster says C(timed_out=true).
version_added: 0.1.0
author:
  - Incident Response Engineering (@incident-response)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.files
  - incident.response.kube_auth
  - incident.response.kube_clusters
attributes:
  check_mode:
    support: full
    details: The cluster is read as usual (only reads); O(dest) and O(text_dest) are not written, RV(file) and
      RV(text_file) say what would be.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  namespaces:
    description:
      - Namespaces to read pods, deployments, HPAs, endpoints, events and pod metrics from. Empty for all
        namespaces (C(--all-namespaces)). Nodes are always read.
    type: list
    elements: str
    default: []
  include:
    description:
      - What to read. Leave out what a cluster does not let you read or what you do not need.
      - V(configmaps) (name and data of the ConfigMaps in O(namespaces)) is read only when asked, for example to
        see which database the services are configured to use. Secrets are never read.
    type: list
    elements: str
    choices: [nodes, pods, deployments, hpas, endpoints, events, metrics, configmaps]
    default: [nodes, pods, deployments, hpas, endpoints, events, metrics]
  events_since:
    description: Warning events last seen at most this many seconds ago count as recent.
    type: int
    default: 3600
  max_events:
    description: At most this many recent Warning events per cluster, newest first (the count covers all).
    type: int
    default: 50
  dest:
    description: Also write the snapshot as JSON to this file. Its directory must exist.
    type: path
  text_dest:
    description:
      - Also write the snapshot as text to this file, per cluster its health summary and the tables
        C(kubectl get nodes,pods,deployments -o wide), C(kubectl get hpa,endpoints), the recent Warning events
        and C(kubectl top). Its directory must exist.
    type: path
  concurrency:
    description: Requests in flight at once, over all clusters.
    type: int
    default: 16
  deadline:
    description:
      - Seconds for the whole task, every request of every cluster included (pages of long lists too). A
        cluster whose reads are not done by then is reported with what was read, its C(error) and
        C(timed_out=true).
    type: float
    default: 60.0
  fail_on_error:
    description:
      - Fail when a cluster cannot be read (unreachable, timed out, forbidden), with the partial result.
      - With V(false) the task succeeds with RV(degraded=true), a warning, and the error in the cluster's
        C(error), so triage can go on while a region is down.
    type: bool
    default: true
notes:
  - Talks to the clusters only through the official C(kubernetes) Python client, so it works the same against
    any conformant API server.
seealso:
  - module: incident.response.pod_logs
  - module: incident.response.network_probe
"""

EXAMPLES = r"""
- name: Document the initial state of both regions (runbook 1.3 and 3.1)
  incident.response.cluster_snapshot:
    kubeconfig: "{{ kubeconfig }}"
    clusters:
      - name: primary
        context: primary
      - name: secondary
        context: secondary
    dest: "{{ incident_dir }}/cluster-state.json"
    text_dest: "{{ incident_dir }}/incident-state.txt"
  register: snapshot

- name: Feed the severity policy (pods_crashlooping) from the snapshot
  ansible.builtin.set_fact:
    classification: >-
      {{ {'crashlooping_pods': snapshot.crashlooping_pods}
         | incident.response.classify_severity(severity_policy) }}

- name: The services' namespace only, without events, while the primary region may be down
  incident.response.cluster_snapshot:
    context: secondary
    namespaces: [microservices]
    include: [pods, deployments, hpas, endpoints, metrics]
    request_timeout: 5
    fail_on_error: false
  register: secondary_state

- name: Show what is wrong
  ansible.builtin.debug:
    msg: "{{ secondary_state.health.secondary.problems }}"
"""

RETURN = r"""
msg:
  description: One line per cluster, for the incident timeline.
  returned: always
  type: str
  sample: "primary: 3/3 nodes ready, 15/16 pods ready, 6/7 deployments available, 1 crash-looping
    (microservices/payment-service-5d9c-x2k4q), 4 warning events | secondary: ..."
taken_at:
  description: When the snapshot was taken (UTC).
  returned: always
  type: str
  sample: "2026-01-31T12:00:00Z"
health:
  description: The health summary of each cluster, by cluster name.
  returned: always
  type: dict
  sample:
    primary:
      nodes: 3
      nodes_ready: 3
      nodes_not_ready: []
      pods: 16
      pods_ready: 14
      pods_not_ready: [microservices/payment-service-5d9c-x2k4q, microservices/payment-service-5d9c-p7m2z]
      pods_pending: []
      crashlooping: [microservices/payment-service-5d9c-x2k4q, microservices/payment-service-5d9c-p7m2z]
      restarts: 8
      deployments: 7
      deployments_available: 6
      deployments_not_available: [microservices/payment-service]
      hpas: 5
      hpas_at_max: []
      endpoints_without_ready: [microservices/payment-service]
      warning_events: 12
      metrics_available: true
      problems: ["deployment microservices/payment-service: 0/2 available"]
      healthy: false
      line: "primary: 3/3 nodes ready, 14/16 pods ready, ..."
crashlooping_pods:
  description: Pods with a container waiting in CrashLoopBackOff, as C(cluster/namespace/pod), over all clusters.
  returned: always
  type: list
  elements: str
  sample: [primary/microservices/payment-service-5d9c-x2k4q]
timed_out_clusters:
  description: The names of the clusters that did not answer (some of) the reads in time.
  returned: always
  type: list
  elements: str
  sample: [primary]
healthy:
  description: True when every cluster was read and none has a problem in its summary.
  returned: always
  type: bool
  sample: false
degraded:
  description: True when O(fail_on_error=false) let the task succeed without some cluster's data.
  returned: always
  type: bool
  sample: false
clusters:
  description:
    - The snapshot of each cluster, by name. A kind left out of O(include) is null.
  returned: always
  type: dict
  contains:
    name:
      description: The cluster's name.
      type: str
    server:
      description: The API server's URL.
      type: str
    reachable:
      description: False when the API server did not answer.
      type: bool
    timed_out:
      description:
        - True when the API server did not answer (some of) the reads in time (O(request_timeout) or
          O(deadline)), a frozen or partitioned server, as opposed to one that refused the connection.
      type: bool
    timed_out_after:
      description: Seconds of the task spent when the cluster's last read gave up; null unless timed out.
      type: float
    error:
      description: Why (part of) the cluster could not be read, else null.
      type: str
    nodes:
      description:
        - C(name), C(status) (as C(kubectl get nodes)), C(ready), C(roles), C(conditions) (type to status),
          C(problems) (conditions that are not as they should be), C(capacity) and C(allocatable)
          (C(cpu), C(memory), C(pods)), C(internal_ip), C(kubelet_version), C(os_image), C(kernel_version),
          C(container_runtime), C(zone), C(created).
      type: list
      elements: dict
    pods:
      description:
        - C(namespace), C(name), C(phase), C(status) (the STATUS column), C(ready), C(containers_ready)
          (the READY column), C(restarts), C(last_restart), C(node), C(ip), C(owner), C(labels),
          C(waiting_reasons), C(crashlooping), C(created), C(deleting), and C(containers) with each one's
          C(ready), C(restart_count), C(state), C(reason), C(message) and C(last_terminated).
      type: list
      elements: dict
    deployments:
      description:
        - C(namespace), C(name), C(desired), C(current), C(updated), C(ready), C(available), C(unavailable),
          C(fully_available), C(rolled_out), C(progress_deadline_exceeded), C(conditions), C(images),
          C(selector).
      type: list
      elements: dict
    hpas:
      description:
        - C(namespace), C(name), C(reference), C(min_replicas), C(max_replicas), C(current_replicas),
          C(desired_replicas), C(at_max), C(metrics) (C(type), C(name), C(current), C(target)), C(targets)
          (the TARGETS column), C(conditions).
      type: list
      elements: dict
    endpoints:
      description:
        - C(namespace), C(name), C(ready_addresses), C(not_ready_addresses) (C(ip:port)), C(ready), C(not_ready).
      type: list
      elements: dict
    configmaps:
      description: C(namespace), C(name) and C(data) of each ConfigMap (with O(include=configmaps) only).
      type: list
      elements: dict
    events:
      description:
        - Recent Warning events, newest first, C(namespace), C(type), C(reason), C(object), C(message),
          C(count), C(first_seen), C(last_seen), C(source).
      type: list
      elements: dict
    warning_events_total:
      description: Occurrences of recent Warning events (counts summed), also those beyond O(max_events).
      type: int
    metrics:
      description:
        - C(available), C(note) (why there are no figures), C(nodes) (C(name), C(cpu_millicores),
          C(memory_bytes), C(cpu_percent), C(memory_percent)) and C(pods) (C(namespace), C(name),
          C(cpu_millicores), C(memory_bytes)).
      type: dict
    summary:
      description: The cluster's health summary, as in RV(health).
      type: dict
file:
  description: What was (or in check mode would be) written to O(dest), null without O(dest).
  returned: always
  type: dict
  sample: {path: /srv/incidents/INC-42/cluster-state.json, written: true, bytes: 48213}
text_file:
  description: What was (or in check mode would be) written to O(text_dest), null without O(text_dest).
  returned: always
  type: dict
  sample: {path: /srv/incidents/INC-42/incident-state.txt, written: true, bytes: 9120}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.response.plugins.module_utils import k8s, k8s_snapshot
from ansible_collections.incident.response.plugins.module_utils.common import run


def main():
    module = AnsibleModule(
        argument_spec=k8s_snapshot.argument_spec(), supports_check_mode=True, add_file_common_args=True
    )
    k8s.require_kubernetes(module)
    run(module, lambda m: k8s_snapshot.step(m, m.params))


if __name__ == "__main__":
    main()
