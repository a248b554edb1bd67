"""Which replica to promote, decided from what the servers say."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.incident.response.plugins.filter.db_clusters import db_clusters
from ansible_collections.incident.response.plugins.filter.db_failover_plan import db_failover_plan
from ansible_collections.incident.response.plugins.filter.db_failover_plans import db_failover_plans

DATABASES = {
    "db-primary": {"host": "127.0.0.1", "port": 24306, "region": "primary"},
    "db-replica": {"host": "127.0.0.1", "port": "24307", "region": "secondary"},
}


def replica_of(port):
    return {"reachable": True, "role": "replica", "replication": {"source_host": "127.0.0.1", "source_port": port}}


def test_primary_down_promotes_its_replica():
    state = {"servers": {"db-primary": {"reachable": False, "error": "refused"}, "db-replica": replica_of(24306)}}
    plan = db_failover_plan(state, DATABASES)
    assert plan["needed"] and plan["promote"] == "db-replica" and plan["old_primary"] == "db-primary"
    assert (plan["host"], plan["port"]) == ("127.0.0.1", 24307)


def test_everything_up_needs_nothing():
    state = {"servers": {"db-primary": {"reachable": True, "role": "primary"}, "db-replica": replica_of(24306)}}
    assert db_failover_plan(state, DATABASES)["needed"] is False


def test_after_an_earlier_failover_roles_come_from_the_servers():
    # db-replica is the primary now and db-primary follows it; then db-replica dies.
    state = {"servers": {"db-primary": replica_of(24307), "db-replica": {"reachable": False}}}
    plan = db_failover_plan(state, DATABASES)
    assert plan["promote"] == "db-primary" and plan["old_primary"] == "db-replica"


def test_a_down_replica_is_no_reason_to_promote():
    state = {"servers": {"db-primary": {"reachable": True, "role": "primary"}, "db-replica": {"reachable": False}}}
    plan = db_failover_plan(state, DATABASES)
    assert plan["needed"] is False and plan["repoint"] is False and plan["target"] == "db-primary"
    assert "db-primary is the primary" in plan["reason"]


def test_two_candidates_are_left_to_people():
    dbs = {**DATABASES, "db-third": {"host": "127.0.0.1", "port": 24308}}
    state = {
        "servers": {"db-primary": {"reachable": False}, "db-replica": replica_of(24306), "db-third": replica_of(24306)}
    }
    plan = db_failover_plan(state, dbs)
    assert plan["needed"] is False and "choose one by hand" in plan["reason"]


def test_wrong_input_fails_loudly():
    with pytest.raises(AnsibleFilterError):
        db_failover_plan({"reachable": True}, DATABASES)


# -- the services' side: which database each region's ConfigMap names ---------------------------

CONFIG = {"name": "microservice-config", "namespace": "shop", "keys": {"host": "db.host", "port": "db.port"}}


def clusters(**ports):
    """A cluster_snapshot result read with configmaps: region -> the db.port its ConfigMap names (None: not read)."""
    out = {}
    for region, port in ports.items():
        maps = None
        if port is not None:
            data = {"db.host": "127.0.0.1", "db.port": str(port), "log.level": "INFO"}
            maps = [{"namespace": "shop", "name": "microservice-config", "data": data}]
        out[region] = {"configmaps": maps}
    return {"clusters": out}


def primary(**extra):
    return {"reachable": True, "role": "primary", "read_only": False, "writable": True, **extra}


def test_a_promotion_done_but_services_left_on_the_dead_primary_is_finished_by_re_pointing():
    """The promoted replica is the only writable server, the ConfigMaps still name the dead primary."""
    state = {"servers": {"db-primary": {"reachable": False}, "db-replica": primary()}}
    plan = db_failover_plan(state, DATABASES, clusters(primary=24306, secondary=24306), CONFIG)
    assert plan["needed"] is False and plan["repoint"] is True
    assert plan["stale_regions"] == ["primary", "secondary"]
    assert (plan["target"], plan["host"], plan["port"]) == ("db-replica", "127.0.0.1", 24307)
    assert "half-done" in plan["reason"]


def test_services_already_on_the_writable_primary_need_nothing():
    state = {"servers": {"db-primary": {"reachable": False}, "db-replica": primary()}}
    plan = db_failover_plan(state, DATABASES, clusters(primary=24307, secondary=24307), CONFIG)
    assert plan["needed"] is False and plan["repoint"] is False and plan["fence"] == []


def test_a_region_whose_configmap_was_not_read_is_not_called_stale():
    state = {"servers": {"db-primary": {"reachable": False}, "db-replica": primary()}}
    plan = db_failover_plan(state, DATABASES, clusters(primary=None, secondary=24306), CONFIG)
    assert plan["stale_regions"] == ["secondary"]


def test_split_brain_fences_the_primary_the_services_no_longer_use():
    state = {"servers": {"db-primary": primary(), "db-replica": primary()}}
    plan = db_failover_plan(state, DATABASES, clusters(primary=24307, secondary=24307), CONFIG)
    assert plan["split_brain"] is True and plan["fence"] == ["db-primary"]
    assert plan["target"] == "db-replica" and plan["needed"] is False and plan["repoint"] is False
    assert "the services use db-replica" in plan["reason"]


def test_split_brain_with_services_on_both_fences_nothing_and_says_why():
    state = {"servers": {"db-primary": primary(), "db-replica": primary()}}
    plan = db_failover_plan(state, DATABASES, clusters(primary=24306, secondary=24307), CONFIG)
    assert plan["split_brain"] is True and plan["fence"] == [] and plan["target"] is None
    assert "cannot tell which one is current" in plan["reason"]


def test_split_brain_without_the_services_view_fences_nothing():
    state = {"servers": {"db-primary": primary(), "db-replica": primary()}}
    plan = db_failover_plan(state, DATABASES)
    assert plan["split_brain"] is True and plan["fence"] == []


def test_a_promotion_repoints_every_region_read():
    state = {"servers": {"db-primary": {"reachable": False}, "db-replica": replica_of(24306)}}
    plan = db_failover_plan(state, DATABASES, clusters(primary=24306, secondary=24306), CONFIG)
    assert plan["needed"] and plan["repoint"] and plan["stale_regions"] == ["primary", "secondary"]


# -- several database clusters -------------------------------------------------------------------

SERVICES = ["order-service", "payment-service"]
TWO = {
    **{k: dict(v, cluster="shop") for k, v in DATABASES.items()},
    "pay-primary": {"host": "127.0.0.1", "port": 24316, "cluster": "payments"},
    "pay-replica": {"host": "127.0.0.1", "port": 24317, "cluster": "payments"},
}


def test_without_clusters_every_database_is_one_cluster_for_every_service():
    clusters = db_clusters(DATABASES, {}, CONFIG, SERVICES)
    assert clusters == {
        "default": dict(
            name="default", servers=["db-primary", "db-replica"], config=CONFIG, services=SERVICES, versions=None
        )
    }


def test_clusters_take_their_keys_and_services_and_the_rest_of_the_services_go_to_the_others():
    spec = {
        "shop": {},
        "payments": {"config_keys": {"host": "p.host", "port": "p.port"}, "services": ["payment-service"]},
    }
    clusters = db_clusters(TWO, spec, CONFIG, SERVICES)
    assert clusters["payments"]["config"] == dict(CONFIG, keys={"host": "p.host", "port": "p.port"})
    assert clusters["payments"]["services"] == ["payment-service"] and clusters["shop"]["services"] == ["order-service"]
    assert clusters["shop"]["servers"] == ["db-primary", "db-replica"]


def test_a_server_without_a_described_cluster_fails_clearly():
    with pytest.raises(AnsibleFilterError, match=r"databases\.pay-primary names cluster 'payments', which"):
        db_clusters(TWO, {"shop": {}}, CONFIG, SERVICES)
    with pytest.raises(AnsibleFilterError, match="database cluster empty has no server"):
        db_clusters(TWO, {"shop": {}, "payments": {}, "empty": {}}, CONFIG, SERVICES)


def test_only_the_cluster_whose_primary_is_down_acts():
    state = {
        "servers": {
            "db-primary": primary(),
            "db-replica": replica_of(24306),
            "pay-primary": {"reachable": False},
            "pay-replica": replica_of(24316),
        }
    }
    spec = {
        "shop": {},
        "payments": {"config_keys": {"host": "p.host", "port": "p.port"}, "services": ["payment-service"]},
    }
    plans = db_failover_plans(state, TWO, None, db_clusters(TWO, spec, CONFIG, SERVICES))
    by = {p["cluster"]: p for p in plans}
    assert by["shop"]["act"] is False and by["shop"]["split_brain"] is False  # two clusters' primaries: no split brain
    assert by["payments"]["act"] is True and by["payments"]["promote"] == "pay-replica"
    assert by["payments"]["config"]["keys"] == {"host": "p.host", "port": "p.port"}
    assert by["payments"]["services"] == ["payment-service"]
