# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who is the primary, and which database the services of each region use, per database cluster.

Shared by the filters that read the database state (triage_findings, db_failover_plan): the
same answer for triage's findings and for P0's plan. Pure functions of the registered results of
mysql_replication_info (``servers``) and cluster_snapshot (with ``configmaps``), and of the
inventory's ``databases`` map and its optional ``database_clusters``.
"""

from __future__ import annotations

DEFAULT_CLUSTER = "default"


class TopologyError(ValueError):
    """The inventory's databases and database_clusters do not fit together."""


def clusters(databases, database_clusters=None, default_config=None, services=None):
    """The inventory's database clusters, each with its servers, ConfigMap and services.

    Without ``database_clusters`` every server of ``databases`` forms one cluster (named ``default``), used by
    every service through ``default_config`` - the platform as it was described before clusters existed. With
    it, each server names its cluster (``databases.<name>.cluster``; a server without one belongs to the only
    cluster, when there is only one); a cluster's ``config`` overrides the default ConfigMap's ``name``,
    ``namespace`` and ``keys`` (``config_keys`` is short for ``config.keys``), and its ``services`` default to
    every service of ``services`` that no other cluster names.

    A cluster's ``versions`` lists the major versions (``10.11``, ``8.0``) a server must run to be promoted.

    Returns ``{name: {name, servers: [...], config: {name, namespace, keys}, services: [...], versions}}``.
    """
    databases = databases or {}
    default_config = dict(default_config or {})
    given = database_clusters or {}
    if not isinstance(given, dict):
        raise TopologyError("database_clusters must be a mapping of cluster name to its settings")
    if not given:
        return {
            DEFAULT_CLUSTER: dict(
                name=DEFAULT_CLUSTER,
                servers=sorted(databases),
                config=default_config,
                services=list(services or []),
                versions=None,
            )
        }
    out = {}
    for name, spec in given.items():
        spec = spec or {}
        config = dict(default_config)
        config.update({k: v for k, v in (spec.get("config") or {}).items() if v not in (None, "")})
        if spec.get("config_keys"):
            config["keys"] = dict(spec["config_keys"])
        out[name] = dict(
            name=name,
            servers=[],
            config=config,
            services=list(spec.get("services") or []),
            versions=spec.get("versions"),
            claims=spec.get("services") is not None,
        )
    for server, db in sorted(databases.items()):
        cluster = (db or {}).get("cluster")
        if cluster is None and len(out) == 1:
            cluster = next(iter(out))
        if cluster not in out:
            raise TopologyError(
                f"databases.{server} names cluster {cluster!r}, which database_clusters does not describe"
                if cluster
                else f"databases.{server} names no cluster: give it cluster: <one of {', '.join(sorted(out))}>"
            )
        out[cluster]["servers"].append(server)
    claimed = {svc for c in out.values() if c["claims"] for svc in c["services"]}
    for c in out.values():
        if not c.pop("claims"):
            c["services"] = [svc for svc in services or [] if svc not in claimed]
        if not c["servers"]:
            raise TopologyError(f"database cluster {c['name']} has no server in databases")
    return out


def cluster_of(clusters_, server):
    """The name of the cluster a server belongs to, or None."""
    return next((name for name, c in (clusters_ or {}).items() if server in (c.get("servers") or [])), None)


def only(mapping, names):
    """The entries of a name -> value mapping whose name is in ``names``."""
    return {k: v for k, v in (mapping or {}).items() if k in names}


def address(host, port):
    return f"{host}:{int(port)}" if host and port not in (None, "") else None


def names_by_address(databases):
    """{"host:port": server name} for the inventory's databases."""
    out = {}
    for name, db in (databases or {}).items():
        addr = address((db or {}).get("host"), (db or {}).get("port"))
        if addr:
            out[addr] = name
    return out


def writable(server):
    """A server that takes writes from ordinary accounts: it answers, replicates from nobody, is not read-only."""
    return bool(
        server.get("reachable")
        and not server.get("replication")
        and server.get("role") != "replica"
        and server.get("writable", not server.get("read_only"))
    )


def writable_servers(servers):
    return sorted(name for name, s in (servers or {}).items() if writable(s or {}))


def config_targets(cluster_result, config, databases):
    """Per region, the database its services are configured to use.

    ``config`` is ``{name, namespace, keys: {host, port}}`` (the ConfigMap and its keys);
    ``cluster_result`` a cluster_snapshot result read with ``configmaps``. A region whose
    ConfigMap was not read has ``read: false``.
    """
    config = config or {}
    keys = config.get("keys") or {}
    by_addr = names_by_address(databases)
    out = {}
    for region, snap in ((cluster_result or {}).get("clusters") or {}).items():
        maps = (snap or {}).get("configmaps")
        entry = dict(read=maps is not None, host=None, port=None, server=None)
        for cm in maps or []:
            if cm.get("name") == config.get("name") and cm.get("namespace") == config.get("namespace"):
                data = cm.get("data") or {}
                entry.update(host=data.get(keys.get("host", "")), port=data.get(keys.get("port", "")))
                entry["server"] = by_addr.get(address(entry["host"], entry["port"])) if entry["port"] else None
        out[region] = entry
    return out


def assess(servers, targets):
    """What the topology says: writable primaries, split brain, and which regions use a server that is not
    the (one) writable primary. ``servers`` is mysql_replication_info's ``servers``, ``targets`` config_targets'."""
    live = writable_servers(servers)
    used = sorted({t["server"] for t in (targets or {}).values() if t.get("server")})
    out = dict(writable=live, split_brain=len(live) > 1, used_by_services=used, stale_regions=[], current=None)
    if len(live) == 1:
        out["current"] = live[0]
        out["stale_regions"] = sorted(
            region for region, t in (targets or {}).items() if t.get("read") and t.get("server") != live[0]
        )
    return out


def fence_choice(topology):
    """In a split brain, the writable servers the services no longer use, and why; [] when it cannot tell."""
    live, used = topology["writable"], topology["used_by_services"]
    in_use = [name for name in live if name in used]
    if len(in_use) == 1:
        others = [name for name in live if name != in_use[0]]
        return others, f"the services use {in_use[0]}; {', '.join(others)} took writes nobody should make"
    if not in_use:
        return [], f"no service uses any of {', '.join(live)}: cannot tell which one is current"
    return [], f"services use several of them ({', '.join(in_use)}): cannot tell which one is current"
