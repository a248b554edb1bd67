# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decide whether the database needs a failover, and to which server."""

from __future__ import annotations

DOCUMENTATION = r"""
name: db_failover_plan
short_description: Decide from replication state whether to promote a replica, and which one
version_added: 0.1.0
description:
  - Reads the result of M(incident.response.mysql_replication_info) with O(servers) and finds
    the primary that is down - an unreachable server that a reachable replica replicates from
    (the replica names its source's host and port). That replica is the one to promote.
  - Roles come from what the servers say, not from names, so a platform that already failed
    over once is read correctly.
  - Refuses to guess - when no replica points at the unreachable server, or several replicas
    do, the plan says so and is not C(needed).
positional: databases
options:
  _input:
    description: The registered result of M(incident.response.mysql_replication_info) with O(servers).
    type: dict
    required: true
  databases:
    description: The inventory's C(databases) map (C(host), C(port), C(region) per server name).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Plan the database failover
  ansible.builtin.set_fact:
    db_plan: "{{ db_state | incident.response.db_failover_plan(databases) }}"
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    needed:
      description: A primary is down and exactly one reachable replica replicates from it.
      type: bool
    promote:
      description: Name of the server to promote (key of C(databases)), or null.
      type: str
    old_primary:
      description: Name of the server that is down, or null.
      type: str
    host:
      description: Host of the server to promote (for the services' configuration).
      type: str
    port:
      description: Port of the server to promote.
      type: int
    reason:
      description: One sentence for people.
      type: str
"""

from ansible.errors import AnsibleFilterError


def _addr(host, port):
    return f"{host}:{int(port)}" if host and port is not None else None


def db_failover_plan(state, databases):
    if not isinstance(state, dict) or "servers" not in state:
        raise AnsibleFilterError("db_failover_plan: give the result of mysql_replication_info with servers")
    servers = state["servers"] or {}
    by_addr = {_addr(d.get("host"), d.get("port")): name for name, d in (databases or {}).items()}
    down = [name for name, s in servers.items() if not s.get("reachable")]
    plan = {"needed": False, "promote": None, "old_primary": None, "host": None, "port": None}
    if not down:
        return {**plan, "reason": "every database answers: no failover"}
    candidates = []
    for name, s in servers.items():
        rep = s.get("replication") or {}
        if not s.get("reachable") or s.get("role") != "replica":
            continue
        source = by_addr.get(_addr(rep.get("source_host"), rep.get("source_port")))
        if source in down:
            candidates.append((name, source))
    if not candidates:
        return {
            **plan,
            "old_primary": down[0] if len(down) == 1 else None,
            "reason": f"{', '.join(down)} unreachable, but no reachable replica replicates from it: no candidate",
        }
    if len(candidates) > 1:
        names = ", ".join(c[0] for c in candidates)
        return {**plan, "reason": f"several replicas could be promoted ({names}): choose one by hand"}
    name, old = candidates[0]
    db = databases.get(name) or {}
    return {
        "needed": True,
        "promote": name,
        "old_primary": old,
        "host": db.get("host"),
        "port": int(db["port"]) if db.get("port") is not None else None,
        "reason": f"primary {old} is unreachable; {name} replicates from it and is the one to promote",
    }


class FilterModule:
    def filters(self):
        return {"db_failover_plan": db_failover_plan}
