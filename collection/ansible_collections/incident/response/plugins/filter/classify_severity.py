# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Severity policy: which triage findings make which severity, with the reasons.

The policy is evaluated in one place, module_utils/triage.py, which this filter and
incident.response.triage_probe (triage's task) share. The triage playbook publishes the result;
the controller reads that result and never decides on its own, so a playbook run by hand and the
controller agree.
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

from ansible_collections.incident.response.plugins.module_utils import triage

LEVELS = triage.LEVELS
CHECKS = triage.CHECKS


def classify_severity(findings, policy):
    try:
        return triage.classify(findings, policy)
    except ValueError as exc:
        raise AnsibleFilterError(f"classify_severity: {exc}") from None


class FilterModule:
    def filters(self):
        return {"classify_severity": classify_severity}
