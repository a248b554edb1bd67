"""The severity policy: findings in, severity and reasons out."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.incident.response.plugins.filter.classify_severity import classify_severity

POLICY = [
    {"severity": "P0", "check": "lb_down", "params": {"region": "primary"}, "reason": "primary region down"},
    {"severity": "P0", "check": "database_down", "params": {"role": "primary"}},
    {"severity": "P0", "check": "data_loss_risk"},
    {"severity": "P1", "check": "alert_firing", "params": {"alertname": ["HighLatency", "HighErrorRate"]}},
    {"severity": "P1", "check": "services_down", "params": {"min": 2}},
    {"severity": "P2", "check": "services_down", "params": {"min": 1}},
    {"severity": "P2", "check": "config_issue"},
    {"severity": "P2", "check": "replication_broken"},
    {"severity": "P3", "check": "replica_lagging", "params": {"min_transactions": 1}},
]


def healthy():
    return {
        "load_balancers": {"primary": {"up": True}, "secondary": {"up": True}},
        "services": [{"name": "user-service", "region": "primary", "up": True}],
        "databases": {
            "db-primary": {"name": "db-primary", "expected_role": "primary", "reachable": True},
            "db-replica": {
                "name": "db-replica",
                "expected_role": "replica",
                "reachable": True,
                "replication": {"healthy": True, "transactions_behind": 0, "relay_log_applied": True},
            },
        },
        "alerts": [],
    }


def test_healthy_platform_is_no_incident():
    res = classify_severity(healthy(), POLICY)
    assert res == {"severity": None, "reasons": [], "matched": []}


def test_primary_database_down_is_p0_with_the_reason():
    f = healthy()
    f["databases"]["db-primary"].update(reachable=False, error="Connection refused")
    res = classify_severity(f, POLICY)
    assert res["severity"] == "P0"
    assert "primary database db-primary is unreachable (Connection refused)" in res["reasons"][0]


def test_data_loss_risk_when_replica_had_not_applied_everything():
    f = healthy()
    f["databases"]["db-primary"]["reachable"] = False
    f["databases"]["db-replica"]["replication"]["relay_log_applied"] = False
    res = classify_severity(f, POLICY)
    assert [m["check"] for m in res["matched"]] == ["database_down", "data_loss_risk"]


def test_primary_lb_down_reason_uses_the_rule_text():
    f = healthy()
    f["load_balancers"]["primary"] = {"up": False, "error": "connection refused"}
    res = classify_severity(f, POLICY)
    assert res["severity"] == "P0"
    assert res["reasons"][0].startswith("primary region down: the primary region's load balancer")


def test_latency_alert_is_p1_and_one_service_down_alone_is_p2():
    f = healthy()
    f["alerts"] = [{"alertname": "HighLatency", "severity": "warning"}]
    assert classify_severity(f, POLICY)["severity"] == "P1"
    f = healthy()
    f["services"] = [{"name": "payment-service", "region": "primary", "up": False}]
    res = classify_severity(f, POLICY)
    assert res["severity"] == "P2"
    assert "payment-service@primary" in res["reasons"][0]


def test_more_severe_rules_come_first_whatever_the_policy_order():
    f = healthy()
    f["services"] = [{"name": "a", "region": "primary", "up": False}]
    f["databases"]["db-primary"]["reachable"] = False
    res = classify_severity(f, list(reversed(POLICY)))
    assert res["severity"] == "P0"
    assert [m["severity"] for m in res["matched"]] == ["P0", "P2"]


def test_lagging_replica_alone_is_p3():
    f = healthy()
    f["databases"]["db-replica"]["replication"]["transactions_behind"] = 25
    assert classify_severity(f, POLICY)["severity"] == "P3"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"severity": "P9", "check": "lb_down"}, "severity 'P9'"),
        ({"severity": "P1", "check": "moon_phase"}, "unknown check 'moon_phase'"),
        ({"severity": "P1", "check": "lb_down", "params": {"zone": "a"}}, "bad params"),
    ],
)
def test_a_broken_policy_fails_loudly(rule, message):
    with pytest.raises(AnsibleFilterError, match=message):
        classify_severity(healthy(), [rule])
