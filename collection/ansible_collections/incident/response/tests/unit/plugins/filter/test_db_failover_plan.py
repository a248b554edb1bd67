"""Which replica to promote, decided from what the servers say."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.incident.response.plugins.filter.db_failover_plan import db_failover_plan

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
    assert plan["needed"] is False and "no reachable replica" in plan["reason"]


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
