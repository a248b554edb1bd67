# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The platform's database clusters from the inventory."""

from __future__ import annotations

DOCUMENTATION = r"""
name: db_clusters
short_description: The database clusters of an inventory, with their servers, ConfigMap keys and services
version_added: 0.1.0
description:
  - Reads the inventory's C(databases) map and its optional C(database_clusters), and returns every cluster with
    its servers, the ConfigMap (and keys) where its services read its primary's address, and those services.
  - Without C(database_clusters) every server forms one cluster named V(default), used by every service through
    O(default_config) - an inventory written before clusters existed means what it always meant.
  - With it, each server names its cluster in C(databases.<name>.cluster) (a server without one belongs to the only
    cluster, when there is one). A cluster's C(config) overrides C(name), C(namespace) or C(keys) of
    O(default_config) (C(config_keys) is short for C(config.keys)); its C(services) default to every service of
    O(services) that no other cluster names; its C(versions) list the major versions a server must run to be
    promoted.
  - A server naming a cluster that is not described, or a cluster without a server, fails with a clear message.
positional: database_clusters, default_config, services
options:
  _input:
    description: The inventory's C(databases) map.
    type: dict
    required: true
  database_clusters:
    description:
      - The inventory's C(database_clusters) map (cluster name -> C(config), C(config_keys), C(services),
        C(versions)).
    type: dict
  default_config:
    description: The ConfigMap and keys every service reads by default, as C({name, namespace, keys}).
    type: dict
  services:
    description: Every service of the platform.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Database clusters
  ansible.builtin.set_fact:
    clusters: >-
      {{ databases | incident.response.db_clusters(database_clusters | default({}), platform_db_config,
         platform_services) }}
"""

RETURN = r"""
_value:
  description: Cluster name -> C({name, servers, config, services, versions}).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.incident.response.plugins.module_utils import topology as topo


def db_clusters(databases, database_clusters=None, default_config=None, services=None):
    try:
        return topo.clusters(databases, database_clusters, default_config, services)
    except topo.TopologyError as exc:
        raise AnsibleFilterError(f"db_clusters: {exc}") from None


class FilterModule:
    def filters(self):
        return {"db_clusters": db_clusters}
