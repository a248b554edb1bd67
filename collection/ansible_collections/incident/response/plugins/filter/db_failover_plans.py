# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database side of a P0 for every database cluster of the platform."""

from __future__ import annotations

DOCUMENTATION = r"""
name: db_failover_plans
short_description: One database plan per database cluster
version_added: 0.1.0
description:
  - P(incident.response.db_failover_plan#filter) for each database cluster (as P(incident.response.db_clusters#filter)
    returns them) - each cluster's servers are judged apart, so a platform with several clusters fails over only the
    cluster whose primary is lost, and its two writable primaries are no split brain.
  - Each plan also says which cluster it is for (C(cluster)), where its services read the database's address
    (C(config), the ConfigMap and its keys), which services use it (C(services)), and whether the procedure has
    something to do for it (C(act) - a promotion, a re-pointing or a fence).
positional: databases, cluster, clusters
options:
  _input:
    description: The registered result of M(incident.response.mysql_replication_info) with O(servers) (every server).
    type: dict
    required: true
  databases:
    description: The inventory's C(databases) map.
    type: dict
    required: true
  cluster:
    description: A registered M(incident.response.cluster_snapshot) result read with C(configmaps).
    type: dict
  clusters:
    description: The database clusters, as P(incident.response.db_clusters#filter) returns them.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Plan every database cluster
  ansible.builtin.set_fact:
    db_plans: "{{ db_state | incident.response.db_failover_plans(databases, snapshot, platform_db_clusters) }}"

- name: The clusters that need something
  ansible.builtin.debug:
    msg: "{{ db_plans | selectattr('needed') | map(attribute='cluster') | list }}"
"""

RETURN = r"""
_value:
  description:
    - One plan per cluster, in the order of the cluster names, each with the keys of
      P(incident.response.db_failover_plan#filter) and C(cluster), C(config), C(services), C(act).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.incident.response.plugins.filter.db_failover_plan import db_failover_plan
from ansible_collections.incident.response.plugins.module_utils import topology as topo


def db_failover_plans(state, databases, cluster=None, clusters=None):
    if not isinstance(state, dict) or "servers" not in state:
        raise AnsibleFilterError("db_failover_plans: give the result of mysql_replication_info with servers")
    if not isinstance(clusters, dict) or not clusters:
        raise AnsibleFilterError("db_failover_plans: give the database clusters (the db_clusters filter's result)")
    plans = []
    for name in sorted(clusters):
        spec = clusters[name]
        members = spec.get("servers") or []
        part = dict(state, servers=topo.only(state["servers"], members))
        plan = db_failover_plan(
            part, topo.only(databases, members), cluster, spec.get("config") or None, spec.get("versions")
        )
        plan.update(
            cluster=name,
            config=spec.get("config") or {},
            services=list(spec.get("services") or []),
            act=bool(plan["needed"] or plan["repoint"] or plan["fence"]),
        )
        plans.append(plan)
    return plans


class FilterModule:
    def filters(self):
        return {"db_failover_plans": db_failover_plans}
