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

from ansible_collections.incident.response.plugins.module_utils import topology as topo

LB_PREFIX = "load-balancer"
GLOBAL_ENTRY = "global-entry"


def _checks(health):
    return [c for c in (health or {}).get("checks") or [] if isinstance(c, dict)]


def _load_balancers(checks):
    out = {}
    for c in checks:
        if c.get("name", "").startswith(LB_PREFIX):
            region = c.get("region") or c["name"][len(LB_PREFIX) :].strip("@-") or "unknown"
            out[region] = {
                "up": c.get("http_status") is not None,
                "healthy": c.get("status") == "UP",
                "timed_out": bool(c.get("timed_out")),
                "error": c.get("error"),
                "failing_components": c.get("failing_components") or [],
            }
    return out


def _services(checks):
    out = []
    for c in checks:
        name = c.get("name", "")
        if c.get("kind") != "http" or name.startswith(LB_PREFIX) or name == GLOBAL_ENTRY:
            continue
        service, region = name.split("@", 1) if "@" in name else (name, "")
        out.append(
            {
                "name": service,
                "region": c.get("region") or region or None,
                "up": c.get("status") == "UP",
                "timed_out": bool(c.get("timed_out")),
                "error": c.get("error"),
                "latency_ms": c.get("latency_ms"),
            }
        )
    return out


def _replication(rep):
    if not rep:
        return None
    io, sql = rep.get("io_thread"), rep.get("sql_thread")
    errors = [e.get("message") for e in (rep.get("last_io_error"), rep.get("last_sql_error")) if e]
    healthy = io == "running" and sql == "running" and not errors
    pending = rep.get("pending_transactions")
    summary = f"io {io}, sql {sql}" + (f", {pending} pending" if pending else "")
    return {
        "healthy": healthy,
        # Broken: the replica cannot receive, or a thread stopped on an error. A SQL thread stopped
        # without an error (paused, delayed) is lag, not breakage.
        "broken": io != "running" or bool(errors),
        "io_thread": io,
        "sql_thread": sql,
        "error": "; ".join(errors) or (None if healthy else f"io thread {io}, sql thread {sql}"),
        "transactions_behind": pending,
        "relay_log_applied": rep.get("relay_log_applied"),
        "seconds_behind_source": rep.get("seconds_behind_source"),
        "sql_delay": rep.get("sql_delay") or 0,
        "source": f"{rep.get('source_host')}:{rep.get('source_port')}",
        "summary": summary,
    }


def _databases(spec, clusters):
    spec = spec or {}
    result = spec.get("result") or {}
    inventory = spec.get("inventory") or {}
    out = {}
    for name, srv in (result.get("servers") or {}).items():
        out[name] = {
            "name": name,
            "cluster": topo.cluster_of(clusters, name),
            "expected_role": (inventory.get(name) or {}).get("expected_role"),
            "reachable": bool(srv.get("reachable")),
            # Unreachable but maybe alive: hung, or cut off behind a partition.
            "timed_out": bool(srv.get("timed_out")),
            "timed_out_after": srv.get("timed_out_after"),
            "error": srv.get("error"),
            "role": srv.get("role"),
            "read_only": srv.get("read_only"),
            "writable": topo.writable(srv),
            "gtid": (srv.get("gtid") or {}).get("executed"),
            "replication": _replication(srv.get("replication")),
        }
    return out


def _alerts(result):
    result = result or {}
    alerts = [a for a in result.get("alerts") or [] if a.get("state", "firing") == "firing"]
    if not alerts:  # Prometheus down: Alertmanager may still know
        alerts = result.get("alertmanager_alerts") or []
    out = []
    for a in alerts:
        labels = a.get("labels") or {}
        out.append(
            {
                "alertname": labels.get("alertname"),
                "severity": labels.get("severity"),
                "labels": labels,
                "summary": (a.get("annotations") or {}).get("summary"),
            }
        )
    return out


def _monitoring(result):
    """Prometheus / Alertmanager that did not answer the alert assessment: the findings may miss alerts."""
    out = {}
    for name in ("prometheus", "alertmanager"):
        server = (result or {}).get(name) or {}
        if server.get("reachable") is False:
            out[name] = {"url": server.get("url"), "error": server.get("error")}
    return out


def _cluster(result):
    """Per region health and crash-looping pods from cluster_snapshot."""
    result = result or {}
    clusters = {}
    for name, snap in (result.get("clusters") or {}).items():
        health = (result.get("health") or {}).get(name) or {}
        reachable = bool((snap or {}).get("reachable", True))
        timed_out = bool((snap or {}).get("timed_out"))
        problems = health.get("problems") or []
        summary = health.get("line") or "; ".join(problems) or (snap or {}).get("error") or ""
        if timed_out:
            summary = f"{name}: {_not_answering((snap or {}).get('timed_out_after'))}"
        clusters[name] = {
            "healthy": reachable and not timed_out and bool(health.get("healthy", not problems)),
            "reachable": reachable,
            "timed_out": timed_out,
            "summary": summary,
            "error": (snap or {}).get("error"),
        }
    return clusters, list(result.get("crashlooping_pods") or [])


def _not_answering(seconds):
    return f"not answering (timed out after {seconds:.1f} s)" if seconds is not None else "not answering (timed out)"


def _db_problem(d):
    if d["timed_out"]:  # the gate and the policy read reachable=false; the timeout says it may be alive
        return f"database {d['name']} {_not_answering(d['timed_out_after'])}: hung or cut off, it may still be alive"
    return f"database {d['name']} unreachable: {d['error']}"


def _timed_out(lbs, glob, services, dbs, clusters, alerts):
    """Names of the probes that got no answer in time, for people and for the record."""
    out = [f"load balancer {r}" for r, lb in lbs.items() if lb["timed_out"]]
    out += ["global entry"] if glob and glob.get("timed_out") else []
    out += [f"service {s['name']}@{s['region']}" for s in services if s["timed_out"]]
    out += [f"database {d['name']}" for d in dbs.values() if d["timed_out"]]
    out += [f"cluster {name}" for name, c in clusters.items() if c["timed_out"]]
    out += [f"monitoring {name}" for name in (alerts or {}).get("timed_out") or []]
    return out


def _database_clusters(spec, cluster):
    """Per database cluster: its servers' topology and which of its servers each region's services use.

    Returns (clusters, topology, database_config, problems). One cluster (the inventory without
    database_clusters, or with one): topology and database_config as they always were. Several: each is
    judged apart (two clusters' primaries are no split brain); topology aggregates them, and database_config
    says per region which server each cluster's services use."""
    servers = (spec.get("result") or {}).get("servers") or {}
    inventory = spec.get("inventory") or {}
    defined = spec.get("clusters")
    if not defined:  # every server the inventory or the result names, as one cluster
        every = sorted(set(servers) | set(inventory))
        defined = {topo.DEFAULT_CLUSTER: dict(servers=every, config=spec.get("config"), services=[])}
    out, problems = {}, []
    several = len(defined) > 1
    for name in sorted(defined):
        c = defined[name]
        members = c.get("servers") or []
        config = c.get("config")
        targets = topo.config_targets(cluster, config, topo.only(inventory, members)) if config else {}
        topology = topo.assess(topo.only(servers, members), targets)
        where = f" (cluster {name})" if several else ""
        if topology["split_brain"]:
            problems.append(f"split brain{where}: {' and '.join(topology['writable'])} are both writable primaries")
        problems += [
            f"services{(' of cluster ' + name) if several else ''} in {region} use "
            f"{targets[region]['server'] or targets[region]['host']}, not the writable primary {topology['current']}"
            for region in topology["stale_regions"]
        ]
        out[name] = {
            "servers": members,
            "services": list(c.get("services") or []),
            "config": config,
            "topology": topology,
            "database_config": targets,
            "primary_down": [
                s
                for s in members
                if (inventory.get(s) or {}).get("expected_role") == "primary"
                and not (servers.get(s) or {}).get("reachable", True)
            ],
        }
    if not several:
        only = next(iter(out.values()), {"topology": topo.assess(servers, {}), "database_config": {}})
        return out, only["topology"], only["database_config"], problems
    union = sorted({n for c in out.values() for n in c["topology"]["writable"]})
    topology = dict(
        writable=union,
        split_brain=any(c["topology"]["split_brain"] for c in out.values()),
        used_by_services=sorted({n for c in out.values() for n in c["topology"]["used_by_services"]}),
        stale_regions=sorted({r for c in out.values() for r in c["topology"]["stale_regions"]}),
        current=None,
        by_cluster={name: c["topology"]["current"] for name, c in out.items()},
    )
    config = {}
    for name, c in out.items():
        for region, target in c["database_config"].items():
            config.setdefault(region, {})[name] = target
    return out, topology, config, problems


def triage_findings(health, databases=None, alerts=None, cluster=None):
    checks = _checks(health)
    lbs = _load_balancers(checks)
    glob = next((c for c in checks if c.get("name") == GLOBAL_ENTRY), None)
    services = _services(checks)
    spec = databases or {}
    try:
        db_clusters, topology, targets, db_problems = _database_clusters(spec, cluster)
    except topo.TopologyError as exc:
        raise AnsibleFilterError(f"triage_findings: {exc}") from None
    dbs = _databases(databases, spec.get("clusters"))
    clusters, crashlooping = _cluster(cluster)
    alert_list = _alerts(alerts)
    problems = [f"load balancer {r} not answering: {lb['error']}" for r, lb in lbs.items() if not lb["up"]]
    problems += [f"{s['name']}@{s['region']} down: {s['error']}" for s in services if not s["up"]]
    problems += [_db_problem(d) for d in dbs.values() if not d["reachable"]]
    problems += [
        f"replication into {d['name']}: {d['replication']['error']}"
        for d in dbs.values()
        if d["replication"] and not d["replication"]["healthy"]
    ]
    problems += db_problems
    problems += [f"alert {a['alertname']}: {a['summary'] or ''}".rstrip(": ") for a in alert_list]
    monitoring = _monitoring(alerts)
    problems += [f"{name} not answering, alerts may be missing: {m['error']}" for name, m in monitoring.items()]
    problems += [f"pod crash-looping: {p}" for p in crashlooping]
    problems += [f"cluster {c['summary']}" for c in clusters.values() if c["timed_out"]]
    return {
        "load_balancers": lbs,
        "global_entry": None
        if glob is None
        else {
            "up": glob.get("http_status") is not None,
            "healthy": glob.get("status") == "UP",
            "timed_out": bool(glob.get("timed_out")),
            "error": glob.get("error"),
        },
        "services": services,
        "databases": dbs,
        "database_clusters": db_clusters,
        "alerts": alert_list,
        "crashlooping_pods": crashlooping,
        "clusters": clusters,
        "config_issues": [],
        "monitoring_down": monitoring,
        "database_config": targets,
        "topology": topology,
        "problems": problems,
        "timed_out": _timed_out(lbs, glob, services, dbs, clusters, alerts),
    }


class FilterModule:
    def filters(self):
        return {"triage_findings": triage_findings}
