# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn what triage's modules returned into the findings the severity policy reads."""

from __future__ import annotations

DOCUMENTATION = r"""
name: triage_findings
short_description: Build triage findings from the results of the triage modules
version_added: 0.1.0
description:
  - Combines the registered results of M(incident.response.service_health),
    M(incident.response.mysql_replication_info), M(incident.response.prometheus_query) and
    M(incident.response.cluster_snapshot) into one dict of findings, the input of
    P(incident.response.classify_severity#filter).
  - Health checks are told apart by name, as the triage playbook names them
    (V(load-balancer) with a region, V(global-entry), V(<service>@<region>), databases by name).
  - A load balancer counts as up when it answers HTTP at all (even 503 because one service is
    down); whether it is healthy is reported apart.
  - A probe that got no answer in time (a hung database, a frozen region) says C(timed_out=true), apart
    from a refused connection. A database that timed out is unreachable (C(reachable=false)) but may be
    alive (hung, or behind a partition). C(timed_out) lists every such probe.
positional: databases, alerts, cluster
options:
  _input:
    description: The registered result of M(incident.response.service_health).
    type: dict
    required: true
  databases:
    description:
      - The registered result of M(incident.response.mysql_replication_info) with O(servers), and the
        inventory's C(databases) map (for each server's C(expected_role)), as C({result, inventory}).
      - With C(config) (C({name, namespace, keys}) with C(keys) = C({host, port}), the services' ConfigMap and its
        database keys)
        and a O(cluster) snapshot read with C(configmaps), the findings also say which database the services of
        each region use (C(database_config)) and what the topology is (C(topology)) - two writable primaries
        (split brain), or regions that use a server other than the one writable primary (a failover left
        half-done).
      - With C(clusters) (P(incident.response.db_clusters#filter)'s result), each database cluster is judged apart
        (C(database_clusters)) - its own writable primary, split brain and stale regions, read from its own
        ConfigMap keys - so the primaries of two clusters are no split brain. C(topology) then aggregates the
        clusters (C(current) is V(null), C(by_cluster) names each one's), and C(database_config) says per region
        which server each cluster's services use.
    type: dict
  alerts:
    description: The registered result of M(incident.response.prometheus_query) with alerts.
    type: dict
  cluster:
    description: The registered result of M(incident.response.cluster_snapshot).
    type: dict
"""

EXAMPLES = r"""
- name: Findings
  ansible.builtin.set_fact:
    findings: >-
      {{ health | incident.response.triage_findings({'result': db, 'inventory': databases}, alerts, cluster) }}
"""

RETURN = r"""
_value:
  description: >-
    The findings: C(load_balancers), C(global_entry), C(services), C(databases), C(alerts),
    C(crashlooping_pods), C(clusters), C(config_issues), C(monitoring_down) (Prometheus or Alertmanager that did
    not answer, by name), C(database_config), C(topology) (C(writable),
    C(split_brain), C(used_by_services), C(stale_regions), C(current)), C(database_clusters) (per database
    cluster - C(servers), C(services), C(config), C(topology), C(database_config), C(primary_down)), C(problems)
    (one line each, for people),
    C(timed_out) (the probes that got no answer in time, such as C(database db-primary)). Each database says its
    C(cluster).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.incident.response.plugins.module_utils import triage


def triage_findings(health, databases=None, alerts=None, cluster=None):
    try:
        return triage.findings(health, databases, alerts, cluster)
    except ValueError as exc:
        raise AnsibleFilterError(f"triage_findings: {exc}") from None


class FilterModule:
    def filters(self):
        return {"triage_findings": triage_findings}
