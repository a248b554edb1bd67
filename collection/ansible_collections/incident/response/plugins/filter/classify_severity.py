# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Severity policy: which triage findings make which severity, with the reasons.

This is the one place where the policy is evaluated. The triage playbook calls it and
publishes the result; the controller reads that result and never decides on its own,
so a playbook run by hand and the controller agree.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: classify_severity
short_description: Classify an incident from triage findings with a severity policy
version_added: 0.1.0
description:
  - Evaluates the rules of a severity policy, in order, against the findings of triage,
    and returns the most severe level whose rules match, with every matching reason.
  - Rules are data (normally in the inventory). Each names a check from a fixed set and
    its parameters, so a policy cannot run arbitrary code and a typo fails loudly.
  - "Checks: V(lb_down) (O(region)), V(database_down) (O(role): primary or replica),
    V(replication_broken), V(replica_lagging) (O(min_transactions); a replica delayed on purpose does not count),
    V(data_loss_risk) (a cluster's primary down while a replica had not applied everything), V(services_down)
    (O(min), O(max), O(region)), V(alert_firing) (O(alertname) list, O(severity)),
    V(config_issue), V(pods_crashlooping) (O(min)), V(split_brain) (two writable primaries),
    V(services_on_stale_database) (services of a region use a server other than the one writable primary:
    a failover left half-done). The database checks look at every database of the role, and with several
    database clusters (C(database_clusters)) at each cluster apart."
positional: policy
options:
  _input:
    description:
      - "The findings of triage. Every key is optional; a check whose data is absent does not match.
        C(load_balancers): region name -> {up, error}.
        C(services): list of {name, region, up, error}.
        C(databases): name -> {name, cluster, expected_role (primary|replica), reachable, error, role, read_only,
        replication: {healthy, error, transactions_behind, relay_log_applied, sql_delay}}.
        C(alerts): list of {alertname, severity, labels}.
        C(config_issues): list of strings. C(crashlooping_pods): list of pod names.
        C(topology): {writable, split_brain, stale_regions, current}. C(database_config): region -> {server, host}.
        C(database_clusters): cluster -> {topology, database_config}."
    type: dict
    required: true
  policy:
    description:
      - The rules, a list of dicts with C(severity) (P0..P3), C(check), optional C(params) and C(reason).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Classify
  ansible.builtin.set_fact:
    classification: "{{ findings | incident.response.classify_severity(severity_policy) }}"
"""

RETURN = r"""
_value:
  description: The classification.
  type: dict
  contains:
    severity:
      description: The most severe matching level (P0..P3), or null when nothing matched (no incident).
      type: str
    reasons:
      description: One sentence per matching rule, most severe first.
      type: list
      elements: str
    matched:
      description: The matching rules with their severity and check.
      type: list
      elements: dict
"""

from ansible.errors import AnsibleFilterError

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


def classify_severity(findings, policy):
    if not isinstance(findings, dict):
        raise AnsibleFilterError(f"classify_severity: findings must be a dict, got {type(findings).__name__}")
    if not isinstance(policy, list):
        raise AnsibleFilterError("classify_severity: the policy must be a list of rules")
    matched = []
    for i, rule in enumerate(policy):
        if not isinstance(rule, dict):
            raise AnsibleFilterError(f"classify_severity: rule {i} is not a dict")
        severity, check = rule.get("severity"), rule.get("check")
        if severity not in LEVELS:
            raise AnsibleFilterError(f"classify_severity: rule {i} has severity {severity!r}; use one of {LEVELS}")
        if check not in CHECKS:
            raise AnsibleFilterError(
                f"classify_severity: rule {i} uses unknown check {check!r}; known: {', '.join(sorted(CHECKS))}"
            )
        params = rule.get("params") or {}
        try:
            found = CHECKS[check](findings, **params)
        except TypeError as exc:
            raise AnsibleFilterError(f"classify_severity: rule {i} ({check}) has bad params {params}: {exc}") from None
        if found:
            reason = f"{rule['reason']}: {found}" if rule.get("reason") else found
            matched.append({"severity": severity, "check": check, "reason": reason})
    matched.sort(key=lambda m: LEVELS.index(m["severity"]))  # stable: policy order within a level
    return {
        "severity": matched[0]["severity"] if matched else None,
        "reasons": [m["reason"] for m in matched],
        "matched": matched,
    }


class FilterModule:
    def filters(self):
        return {"classify_severity": classify_severity}
