# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Triage's findings from the probes' results, and the severity policy that classifies them.

Shared by the filters (P(incident.response.triage_findings#filter), P(incident.response.classify_severity#filter))
and M(incident.response.triage_probe), which classifies in the task that probes: one task less on the way to the
first change.
"""

from __future__ import annotations

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


def findings(health, databases=None, alerts=None, cluster=None):
    checks = _checks(health)
    lbs = _load_balancers(checks)
    glob = next((c for c in checks if c.get("name") == GLOBAL_ENTRY), None)
    services = _services(checks)
    spec = databases or {}
    try:
        db_clusters, topology, targets, db_problems = _database_clusters(spec, cluster)
    except topo.TopologyError as exc:
        raise ValueError(str(exc)) from None
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


# -- the severity policy --------------------------------------------------------------------------------

LEVELS = ("P0", "P1", "P2", "P3")


def _down_services(findings, region=None):
    services = findings.get("services") or []
    return [s for s in services if not s.get("up") and (region is None or s.get("region") == region)]


def _dbs(findings, role):
    """Every database whose role in normal operation is ``role``, in name order."""
    found = findings.get("databases") or {}
    return [found[n] for n in sorted(found) if isinstance(found[n], dict) and found[n].get("expected_role") == role]


def _delayed(db):
    return bool(((db or {}).get("replication") or {}).get("sql_delay"))


def _by_cluster(findings):
    """{cluster: [databases]} (one group when the findings name no cluster)."""
    out, found = {}, findings.get("databases") or {}
    for name in sorted(found):
        if isinstance(found[name], dict):
            out.setdefault(found[name].get("cluster"), []).append(found[name])
    return out


def check_lb_down(findings, region="primary"):
    lb = (findings.get("load_balancers") or {}).get(region)
    if lb is not None and not lb.get("up"):
        return f"the {region} region's load balancer is not answering ({lb.get('error') or 'no error text'})"
    return None


def check_database_down(findings, role="primary"):
    down = [db for db in _dbs(findings, role) if not db.get("reachable")]
    if not down:
        return None
    return "; ".join(
        f"the {role} database {db.get('name', '')} is unreachable ({db.get('error') or 'no error text'})".replace(
            "  ", " "
        )
        for db in down
    )


def check_replication_broken(findings):
    broken = []
    for db in _dbs(findings, "replica"):
        rep = db.get("replication") or {}
        if db.get("reachable") and rep and rep.get("broken", not rep.get("healthy", True)):
            broken.append(f"replication into {db.get('name')} is broken: {rep.get('error') or 'threads stopped'}")
    return "; ".join(broken) or None


def check_replica_lagging(findings, min_transactions=1):
    lagging = []
    for db in _dbs(findings, "replica"):
        behind = (db.get("replication") or {}).get("transactions_behind")
        if behind is not None and behind >= int(min_transactions) and not _delayed(db):  # delayed on purpose
            lagging.append(f"replica {db.get('name')} is {behind} transaction(s) behind")
    return "; ".join(lagging) or None


def check_data_loss_risk(findings):
    """Per cluster: its primary is down and a replica has not applied everything it received, or none answers."""
    risks = []
    for cluster, dbs in _by_cluster(findings).items():
        primaries = [d for d in dbs if d.get("expected_role") == "primary"]
        replicas = [d for d in dbs if d.get("expected_role") == "replica"]
        if not primaries or not replicas or any(p.get("reachable") for p in primaries):
            continue
        where = f" of cluster {cluster}" if cluster and len(_by_cluster(findings)) > 1 else ""
        answering = [r for r in replicas if r.get("reachable")]
        if not answering:
            risks.append("both databases are unreachable" if len(dbs) == 2 else f"every database{where} is unreachable")
            continue
        behind = [
            r for r in answering if (r.get("replication") or {}).get("relay_log_applied") is False and not _delayed(r)
        ]
        risks += [
            f"the primary{where} is down and {r.get('name')} has not applied everything it received" for r in behind
        ]
    return "; ".join(risks) or None


def check_services_down(findings, min=1, max=None, region=None):
    down = _down_services(findings, region)
    if len(down) >= int(min) and (max is None or len(down) <= int(max)):
        names = ", ".join(sorted({f"{s.get('name')}@{s.get('region', '?')}" for s in down}))
        where = f" in {region}" if region else ""
        return f"{len(down)} service endpoint(s) down{where}: {names}"
    return None


def check_alert_firing(findings, alertname=None, severity=None):
    names = [alertname] if isinstance(alertname, str) else alertname
    hits = [
        a
        for a in findings.get("alerts") or []
        if (not names or a.get("alertname") in names) and (severity is None or a.get("severity") == severity)
    ]
    if hits:
        labels = sorted({a.get("alertname", "?") for a in hits})
        return f"alert(s) firing: {', '.join(labels)} ({len(hits)} instance(s))"
    return None


def check_config_issue(findings):
    issues = findings.get("config_issues") or []
    if issues:
        return "configuration issue(s): " + "; ".join(str(i) for i in issues)
    return None


def check_pods_crashlooping(findings, min=1):
    pods = findings.get("crashlooping_pods") or []
    if len(pods) >= int(min):
        return f"{len(pods)} pod(s) crash-looping: {', '.join(sorted(pods)[:5])}"
    return None


def check_split_brain(findings):
    topology = findings.get("topology") or {}
    if not topology.get("split_brain"):
        return None
    per = findings.get("database_clusters") or {}
    if len(per) > 1:
        return "; ".join(
            f"{' and '.join(c['topology']['writable'])} are both writable primaries of cluster {name} (split brain)"
            for name, c in sorted(per.items())
            if c.get("topology", {}).get("split_brain")
        )
    return f"{' and '.join(topology.get('writable') or [])} are both writable primaries (split brain)"


def check_services_on_stale_database(findings):
    topology = findings.get("topology") or {}
    stale = topology.get("stale_regions") or []
    if not stale:
        return None
    per = findings.get("database_clusters") or {}
    if len(per) > 1:
        out = []
        for name, c in sorted(per.items()):
            cluster_stale = (c.get("topology") or {}).get("stale_regions") or []
            if cluster_stale:
                config = c.get("database_config") or {}
                used = sorted(
                    {
                        str((config.get(r) or {}).get("server") or (config.get(r) or {}).get("host"))
                        for r in cluster_stale
                    }
                )
                out.append(
                    f"the services of cluster {name} in {', '.join(cluster_stale)} use {', '.join(used)}, "
                    f"not its writable primary {c['topology'].get('current')}"
                )
        return "; ".join(out) or None
    config = findings.get("database_config") or {}
    used = sorted({str((config.get(r) or {}).get("server") or (config.get(r) or {}).get("host")) for r in stale})
    return (
        f"the services in {', '.join(stale)} use {', '.join(used)}, not the writable primary {topology.get('current')}"
    )


CHECKS = {
    "split_brain": check_split_brain,
    "services_on_stale_database": check_services_on_stale_database,
    "lb_down": check_lb_down,
    "database_down": check_database_down,
    "replication_broken": check_replication_broken,
    "replica_lagging": check_replica_lagging,
    "data_loss_risk": check_data_loss_risk,
    "services_down": check_services_down,
    "alert_firing": check_alert_firing,
    "config_issue": check_config_issue,
    "pods_crashlooping": check_pods_crashlooping,
}


def classify(findings, policy):
    if not isinstance(findings, dict):
        raise ValueError(f"findings must be a dict, got {type(findings).__name__}")
    if not isinstance(policy, list):
        raise ValueError("the policy must be a list of rules")
    matched = []
    for i, rule in enumerate(policy):
        if not isinstance(rule, dict):
            raise ValueError(f"rule {i} is not a dict")
        severity, check = rule.get("severity"), rule.get("check")
        if severity not in LEVELS:
            raise ValueError(f"rule {i} has severity {severity!r}; use one of {LEVELS}")
        if check not in CHECKS:
            raise ValueError(f"rule {i} uses unknown check {check!r}; known: {', '.join(sorted(CHECKS))}")
        params = rule.get("params") or {}
        try:
            found = CHECKS[check](findings, **params)
        except TypeError as exc:
            raise ValueError(f"rule {i} ({check}) has bad params {params}: {exc}") from None
        if found:
            reason = f"{rule['reason']}: {found}" if rule.get("reason") else found
            matched.append({"severity": severity, "check": check, "reason": reason})
    matched.sort(key=lambda m: LEVELS.index(m["severity"]))  # stable: policy order within a level
    return {
        "severity": matched[0]["severity"] if matched else None,
        "reasons": [m["reason"] for m in matched],
        "matched": matched,
    }
