# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decide whether the database needs a failover, and to which server."""

from __future__ import annotations

DOCUMENTATION = r"""
name: db_failover_plan
short_description: Decide from replication state and the services' configuration what the database needs
version_added: 0.1.0
description:
  - Reads the result of M(incident.response.mysql_replication_info) with O(servers) and, when given, a
    M(incident.response.cluster_snapshot) read with C(configmaps) and the services' ConfigMap (O(config)), and
    plans the database side of a P0. Roles come from what the servers say, not from names, so a platform that
    already failed over once is read correctly.
  - B(Promotion) (C(needed)) - no server takes writes, and reachable replicas replicate from the unreachable
    primary. B(Candidate selection), as orchestrator does it, every step explained in C(reason), C(candidates) and
    C(excluded) - a replica is excluded when its SQL thread stopped on an error, it is delayed on purpose
    (C(MASTER_DELAY)), it has no GTID position, it runs a major version newer than one of its siblings (they could
    not replicate from it) or not in O(versions), it holds errant transactions (written on it and on no other
    server - they would become part of the new primary's history), or its promotion rule is V(never). Among the
    others the one that will have every transaction any other will have, once each applied what it received,
    wins; equal positions go by the promotion rule (C(databases.<name>.promotion_rule) - V(prefer) over
    V(neutral), the default, over V(avoid)), then by name. The plan refuses (not C(needed)) when no replica is
    left, when the candidates diverge (none has everything the others have), or when a reachable replica - an
    excluded one too - holds transactions the chosen one lacks (promoting it would lose them).
  - The other reachable replicas are the C(siblings) that are to follow the new primary
    (M(incident.response.mysql_promote) O(siblings), given as C(sibling_servers)).
  - B(Re-pointing) (C(repoint)) - one server takes writes and the services of some region are configured to use
    another one (a failover that was interrupted between the promotion and the ConfigMap patch, or a promotion
    made by hand), so point them at the writable primary. After a promotion the services are always re-pointed.
  - B(Split brain) (C(split_brain), C(fence)) - several servers take writes. The ones no service uses are to be
    fenced; when the services use none or several of them, the plan cannot tell which one is current, fences
    nothing and says so.
positional: databases, cluster, config, versions
options:
  _input:
    description: The registered result of M(incident.response.mysql_replication_info) with O(servers).
    type: dict
    required: true
  databases:
    description:
      - The inventory's C(databases) map (C(host), C(port), C(region) per server name), with each server's optional
        C(promotion_rule) (V(prefer), V(neutral), V(avoid), V(never)).
    type: dict
    required: true
  cluster:
    description: A registered M(incident.response.cluster_snapshot) result read with C(configmaps).
    type: dict
  config:
    description: The services' ConfigMap, as C({name, namespace, keys}) with C(keys) = C({host, port}).
    type: dict
  versions:
    description: Major versions (V(10.11), V(8.0)) a server must run to be promoted; any when not given.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Plan the database side of the response
  ansible.builtin.set_fact:
    db_plan: >-
      {{ db_state | incident.response.db_failover_plan(databases, clusters,
         {'name': 'microservice-config', 'namespace': 'shop', 'keys': {'host': 'db.host', 'port': 'db.port'}}) }}
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    needed:
      description: A replica is to be promoted (the primary is down and one of its replicas was chosen).
      type: bool
    promote:
      description: Name of the server to promote (key of C(databases)), or null.
      type: str
    old_primary:
      description: Name of the server that is down, or null.
      type: str
    host:
      description: Host of the primary the services are to use after the plan (the one to promote, or the writable one).
      type: str
    port:
      description: Its port.
      type: int
    target:
      description: Name of that primary, or null.
      type: str
    repoint:
      description: The services of some region are to be pointed at C(host):C(port) (always after a promotion).
      type: bool
    stale_regions:
      description: Regions whose services use another server than C(target) (their ConfigMap was read).
      type: list
      elements: str
    split_brain:
      description: Several servers take writes.
      type: bool
    fence:
      description: Names of the writable servers to fence (split brain, the ones no service uses).
      type: list
      elements: str
    writable:
      description: Names of the servers that take writes now.
      type: list
      elements: str
    candidates:
      description:
        - The replicas that could be promoted, best first - C(name), C(rule), C(position) (GTIDs it will have once
          it applied what it received), C(region), C(lacks) (other candidate -> how many of its transactions this
          one lacks).
      type: list
      elements: dict
    excluded:
      description: The lost primary's other replicas and unreachable servers, each with C(name) and C(reasons).
      type: list
      elements: dict
    siblings:
      description: The reachable replicas other than the chosen one, which are to follow it.
      type: list
      elements: str
    sibling_servers:
      description: The same as C({name, login_host, login_port}), for M(incident.response.mysql_promote) O(siblings).
      type: list
      elements: dict
    errant:
      description: Replicas holding errant transactions -> those GTIDs.
      type: dict
    reason:
      description: One sentence for people, with every candidate's and every exclusion's reason.
      type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.incident.response.plugins.module_utils import topology as topo
from ansible_collections.incident.response.plugins.module_utils.mysql_candidates import choose


def _where(databases, name):
    db = (databases or {}).get(name) or {}
    port = int(db["port"]) if db.get("port") not in (None, "") else None
    return db.get("host"), port


def _candidates(servers, databases, down):
    by_addr = topo.names_by_address(databases)
    found = []
    for name, s in servers.items():
        rep = s.get("replication") or {}
        if not s.get("reachable") or s.get("role") != "replica":
            continue
        source = by_addr.get(topo.address(rep.get("source_host"), rep.get("source_port")))
        if source in down:
            found.append((name, source))
    return found


def _logins(databases, names):
    return [dict(name=n, login_host=_where(databases, n)[0], login_port=_where(databases, n)[1]) for n in names]


def db_failover_plan(state, databases, cluster=None, config=None, versions=None):
    if not isinstance(state, dict) or "servers" not in state:
        raise AnsibleFilterError("db_failover_plan: give the result of mysql_replication_info with servers")
    servers = state["servers"] or {}
    targets = topo.config_targets(cluster, config, databases) if config else {}
    topology = topo.assess(servers, targets)
    writable = topology["writable"]
    plan = dict(
        needed=False,
        promote=None,
        old_primary=None,
        host=None,
        port=None,
        target=None,
        repoint=False,
        stale_regions=[],
        split_brain=topology["split_brain"],
        fence=[],
        writable=writable,
        candidates=[],
        excluded=[],
        siblings=[],
        sibling_servers=[],
        errant={},
    )

    if topology["split_brain"]:
        fence, why = topo.fence_choice(topology)
        plan["fence"] = fence
        if not fence:
            return dict(plan, reason=f"split brain: {' and '.join(writable)} take writes; {why}")
        keep = next(name for name in writable if name not in fence)
        host, port = _where(databases, keep)
        stale = sorted(r for r, t in targets.items() if t.get("read") and t.get("server") != keep)
        return dict(
            plan,
            target=keep,
            host=host,
            port=port,
            stale_regions=stale,
            repoint=bool(stale),
            reason=f"split brain: {' and '.join(writable)} take writes; {why}: fence {', '.join(fence)}",
        )

    if len(writable) == 1:
        current = writable[0]
        host, port = _where(databases, current)
        stale = topology["stale_regions"]
        if stale:
            return dict(
                plan,
                target=current,
                host=host,
                port=port,
                repoint=True,
                stale_regions=stale,
                reason=f"{current} is the writable primary, but the services in {', '.join(stale)} use another "
                "server: point them at it (a failover left half-done)",
            )
        return dict(plan, target=current, host=host, port=port, reason=f"{current} is the primary: no failover")

    down = [name for name, s in servers.items() if not s.get("reachable")]
    if not down:
        return dict(plan, reason="every database answers and none takes writes: no failover can help, look at them")
    candidates = _candidates(servers, databases, down)
    if not candidates:
        return dict(
            plan,
            old_primary=down[0] if len(down) == 1 else None,
            reason=f"{', '.join(down)} unreachable, but no reachable replica replicates from it: no candidate",
        )
    sources = sorted({source for name, source in candidates})
    if len(sources) > 1:
        return dict(
            plan,
            reason=f"replicas replicate from several unreachable servers ({', '.join(sources)}): look at them by hand",
        )
    old = sources[0]
    # The lost primary's replicas that answer, and the other servers that do not (named, as excluded).
    replicas = [name for name, source in candidates] + [d for d in down if d != old]
    choice = choose(servers, replicas, old, databases, versions)
    plan.update(
        old_primary=old,
        candidates=choice["candidates"],
        excluded=choice["excluded"],
        errant={n: e["gtids"] for n, e in choice["errant"].items() if e["gtids"]},
    )
    name = choice["promote"]
    if name is None:
        return dict(plan, reason=f"primary {old} is unreachable; {choice['reason']}")
    host, port = _where(databases, name)
    stale = sorted(r for r, t in targets.items() if t.get("read") and t.get("server") != name)
    return dict(
        plan,
        needed=True,
        promote=name,
        target=name,
        host=host,
        port=port,
        repoint=True,
        stale_regions=stale,
        siblings=choice["siblings"],
        sibling_servers=_logins(databases, choice["siblings"]),
        reason=f"primary {old} is unreachable; promote {name}: {choice['reason']}",
    )


class FilterModule:
    def filters(self):
        return {"db_failover_plan": db_failover_plan}
