"""Findings built from module results recorded on the lab (healthy, and with the primary database killed)."""

from __future__ import annotations

import json
from pathlib import Path

from ansible_collections.incident.response.plugins.filter.classify_severity import classify_severity
from ansible_collections.incident.response.plugins.filter.triage_findings import triage_findings

FIXTURES = Path(__file__).parent / "fixtures"
DATABASES = {"db-primary": {"expected_role": "primary"}, "db-replica": {"expected_role": "replica"}}
POLICY = [
    {"severity": "P0", "check": "lb_down", "params": {"region": "primary"}},
    {"severity": "P0", "check": "database_down", "params": {"role": "primary"}},
    {"severity": "P2", "check": "services_down", "params": {"min": 1}},
    {"severity": "P2", "check": "replication_broken"},
]


def findings(name: str) -> dict:
    raw = json.loads((FIXTURES / f"triage-{name}.json").read_text())
    return triage_findings(
        raw["health"], {"result": raw["databases"], "inventory": DATABASES}, raw["alerts"], raw["cluster"]
    )


def test_healthy_lab_has_no_problem_and_no_incident():
    f = findings("healthy")
    assert f["problems"] == [] and f["timed_out"] == []
    assert set(f["load_balancers"]) == {"primary", "secondary"} and all(lb["up"] for lb in f["load_balancers"].values())
    assert len(f["services"]) == 10 and all(s["up"] for s in f["services"])
    assert f["databases"]["db-replica"]["replication"]["healthy"] is True
    assert set(f["clusters"]) == {"primary", "secondary"} and all(c["healthy"] for c in f["clusters"].values())
    assert classify_severity(f, POLICY)["severity"] is None


def test_killed_primary_is_p0_and_the_load_balancers_still_count_as_up():
    f = findings("db-primary-down")
    assert f["databases"]["db-primary"]["reachable"] is False
    assert f["databases"]["db-replica"]["replication"]["broken"] is True  # its IO thread cannot connect
    # Every service is DOWN behind them, but the load balancers answer: no region outage.
    assert all(lb["up"] and not lb["healthy"] for lb in f["load_balancers"].values())
    assert not any(s["up"] for s in f["services"])
    res = classify_severity(f, POLICY)
    assert res["severity"] == "P0"
    assert [m["check"] for m in res["matched"]] == ["database_down", "services_down", "replication_broken"]


def test_a_frozen_primary_is_unreachable_for_the_policy_and_named_as_timed_out():
    f = findings("db-primary-partitioned")
    primary = f["databases"]["db-primary"]
    assert primary["reachable"] is False and primary["timed_out"] is True and primary["timed_out_after"] > 0
    problem = next(p for p in f["problems"] if p.startswith("database db-primary"))
    assert problem.startswith("database db-primary not answering (timed out after ")
    assert problem.endswith("hung or cut off, it may still be alive")
    assert "database db-primary" in f["timed_out"]
    # The services hang on it behind their health endpoints: down, and timed out too.
    assert all(not s["up"] and s["timed_out"] for s in f["services"])
    res = classify_severity(f, POLICY)
    assert res["severity"] == "P0" and res["matched"][0]["check"] == "database_down"


def test_a_frozen_region_says_its_cluster_and_load_balancer_timed_out():
    f = findings("region-down")
    primary, secondary = f["clusters"]["primary"], f["clusters"]["secondary"]
    assert primary["timed_out"] and not primary["reachable"] and not primary["healthy"]
    assert primary["summary"].startswith("primary: not answering (timed out after ")
    assert f"cluster {primary['summary']}" in f["problems"]
    assert secondary["reachable"] and not secondary["timed_out"]
    assert f["load_balancers"]["primary"]["timed_out"] and not f["load_balancers"]["primary"]["up"]
    assert {"load balancer primary", "cluster primary"} <= set(f["timed_out"])
    assert classify_severity(f, POLICY)["matched"][0]["check"] == "lb_down"


def test_a_refused_database_is_not_timed_out():
    f = findings("db-primary-down")
    assert f["databases"]["db-primary"]["timed_out"] is False and f["timed_out"] == []
    assert any(p.startswith("database db-primary unreachable: ") for p in f["problems"])


def test_missing_results_give_empty_findings_rather_than_errors():
    f = triage_findings({"checks": []})
    assert f["services"] == [] and f["databases"] == {} and f["alerts"] == [] and f["crashlooping_pods"] == []


def _config_snapshot(port_by_region):
    def data(port):
        return {"db.host": "127.0.0.1", "db.port": str(port)}

    return {
        "clusters": {
            region: {"configmaps": [{"namespace": "shop", "name": "microservice-config", "data": data(port)}]}
            for region, port in port_by_region.items()
        }
    }


TOPOLOGY_DBS = {
    "db-primary": {"expected_role": "primary", "host": "127.0.0.1", "port": 3306},
    "db-replica": {"expected_role": "replica", "host": "127.0.0.1", "port": 3307},
}
CONFIG = {"name": "microservice-config", "namespace": "shop", "keys": {"host": "db.host", "port": "db.port"}}
WRITABLE = {"reachable": True, "role": "primary", "read_only": False, "writable": True}


def test_two_writable_primaries_are_a_split_brain_and_p0():
    dbs = {"result": {"servers": {"db-primary": WRITABLE, "db-replica": WRITABLE}}, "inventory": TOPOLOGY_DBS}
    f = triage_findings({"checks": []}, {**dbs, "config": CONFIG}, None, _config_snapshot({"primary": 3307}))
    assert f["topology"]["split_brain"] is True and f["topology"]["writable"] == ["db-primary", "db-replica"]
    assert f["database_config"]["primary"]["server"] == "db-replica"
    assert any("split brain" in p for p in f["problems"])
    res = classify_severity(f, [{"severity": "P0", "check": "split_brain"}])
    assert res["severity"] == "P0" and "db-primary and db-replica" in res["reasons"][0]


def test_services_left_on_a_server_that_is_not_the_primary_are_p0():
    servers = {"db-primary": {"reachable": False}, "db-replica": WRITABLE}
    dbs = {"result": {"servers": servers}, "inventory": TOPOLOGY_DBS, "config": CONFIG}
    f = triage_findings({"checks": []}, dbs, None, _config_snapshot({"primary": 3306, "secondary": 3307}))
    assert f["topology"]["current"] == "db-replica" and f["topology"]["stale_regions"] == ["primary"]
    res = classify_severity(f, [{"severity": "P0", "check": "services_on_stale_database"}])
    assert res["severity"] == "P0" and "services in primary use db-primary" in res["reasons"][0]


def test_one_writable_primary_used_by_every_region_is_no_finding():
    servers = {"db-primary": WRITABLE, "db-replica": {"reachable": True, "role": "replica", "replication": {}}}
    dbs = {"result": {"servers": servers}, "inventory": TOPOLOGY_DBS, "config": CONFIG}
    f = triage_findings({"checks": []}, dbs, None, _config_snapshot({"primary": 3306, "secondary": 3306}))
    policy = [{"severity": "P0", "check": c} for c in ("split_brain", "services_on_stale_database")]
    assert classify_severity(f, policy)["severity"] is None and f["problems"] == []


# -- several database clusters ----------------------------------------------------------------
CLUSTER_DBS = {
    "db-primary": {"expected_role": "primary", "host": "127.0.0.1", "port": 3306, "cluster": "shop"},
    "db-replica": {"expected_role": "replica", "host": "127.0.0.1", "port": 3307, "cluster": "shop"},
    "pay-primary": {"expected_role": "primary", "host": "127.0.0.1", "port": 3316, "cluster": "payments"},
    "pay-replica": {"expected_role": "replica", "host": "127.0.0.1", "port": 3317, "cluster": "payments"},
}
CLUSTERS = {
    "shop": {"servers": ["db-primary", "db-replica"], "config": CONFIG, "services": ["order-service"]},
    "payments": {
        "servers": ["pay-primary", "pay-replica"],
        "config": dict(CONFIG, keys={"host": "pay.host", "port": "pay.port"}),
        "services": ["payment-service"],
    },
}


def _two_cluster_snapshot(shop_port, pay_port):
    data = {"db.host": "127.0.0.1", "db.port": str(shop_port), "pay.host": "127.0.0.1", "pay.port": str(pay_port)}
    cm = [{"namespace": "shop", "name": "microservice-config", "data": data}]
    return {"clusters": {"primary": {"configmaps": cm}, "secondary": {"configmaps": cm}}}


def _replica_of(port):
    rep = {"source_host": "127.0.0.1", "source_port": port, "io_thread": "running", "sql_thread": "running"}
    return {"reachable": True, "role": "replica", "replication": rep}


def test_two_clusters_primaries_are_no_split_brain_and_each_cluster_is_reported():
    servers = {
        "db-primary": WRITABLE,
        "db-replica": _replica_of(3306),
        "pay-primary": WRITABLE,
        "pay-replica": _replica_of(3316),
    }
    spec = {"result": {"servers": servers}, "inventory": CLUSTER_DBS, "config": CONFIG, "clusters": CLUSTERS}
    f = triage_findings({"checks": []}, spec, None, _two_cluster_snapshot(3306, 3316))
    assert f["topology"]["split_brain"] is False and f["topology"]["writable"] == ["db-primary", "pay-primary"]
    assert f["topology"]["by_cluster"] == {"shop": "db-primary", "payments": "pay-primary"}
    assert f["database_config"]["primary"]["payments"]["server"] == "pay-primary"
    assert f["databases"]["pay-replica"]["cluster"] == "payments" and f["problems"] == []
    policy = [{"severity": "P0", "check": c} for c in ("split_brain", "services_on_stale_database", "database_down")]
    assert classify_severity(f, policy)["severity"] is None


def test_one_cluster_losing_its_primary_is_p0_and_only_that_cluster_is_named():
    servers = {
        "db-primary": WRITABLE,
        "db-replica": _replica_of(3306),
        "pay-primary": {"reachable": False, "error": "refused"},
        "pay-replica": dict(_replica_of(3316), replication={"relay_log_applied": False, "io_thread": "connecting"}),
    }
    spec = {"result": {"servers": servers}, "inventory": CLUSTER_DBS, "config": CONFIG, "clusters": CLUSTERS}
    f = triage_findings({"checks": []}, spec, None, _two_cluster_snapshot(3306, 3316))
    assert f["database_clusters"]["payments"]["primary_down"] == ["pay-primary"]
    assert f["database_clusters"]["shop"]["primary_down"] == []
    policy = [
        {"severity": "P0", "check": "database_down", "params": {"role": "primary"}},
        {"severity": "P0", "check": "data_loss_risk"},
    ]
    res = classify_severity(f, policy)
    assert res["severity"] == "P0"
    assert res["reasons"][0] == "the primary database pay-primary is unreachable (refused)"
    assert "the primary of cluster payments is down and pay-replica has not applied" in res["reasons"][1]


def test_services_of_one_cluster_left_on_its_old_primary_are_named_with_their_cluster():
    servers = {
        "db-primary": WRITABLE,
        "db-replica": _replica_of(3306),
        "pay-primary": {"reachable": False},
        "pay-replica": WRITABLE,
    }
    spec = {"result": {"servers": servers}, "inventory": CLUSTER_DBS, "config": CONFIG, "clusters": CLUSTERS}
    f = triage_findings({"checks": []}, spec, None, _two_cluster_snapshot(3306, 3316))
    assert f["topology"]["stale_regions"] == ["primary", "secondary"]
    res = classify_severity(f, [{"severity": "P0", "check": "services_on_stale_database"}])
    assert res["reasons"] == [
        "the services of cluster payments in primary, secondary use pay-primary, not its writable primary pay-replica"
    ]


def test_a_replica_delayed_on_purpose_is_no_lag():
    delayed = {
        "expected_role": "replica",
        "reachable": True,
        "replication": {"transactions_behind": 40, "sql_delay": 3600},
    }
    lagging = {"expected_role": "replica", "reachable": True, "replication": {"transactions_behind": 3}}
    policy = [{"severity": "P1", "check": "replica_lagging"}]
    assert classify_severity({"databases": {"d": dict(delayed, name="d")}}, policy)["severity"] is None
    both = {"d": dict(delayed, name="d"), "l": dict(lagging, name="l")}
    assert classify_severity({"databases": both}, policy)["reasons"] == ["replica l is 3 transaction(s) behind"]
