"""mysql_promote's gate decisions on MySQL-shaped states (the lab runs MariaDB; these run on recorded rows)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.incident.response.plugins.module_utils.mysql_flavors import Flavor, normalise_state
from ansible_collections.incident.response.plugins.modules.mysql_promote import (
    Gate,
    check_old_primary,
    check_replica,
    validate,
)

FIXTURES = Path(__file__).parents[1] / "module_utils" / "fixtures"


def state_of(name, **row_changes):
    doc = json.loads((FIXTURES / f"{name}.json").read_text())
    flavor = Flavor.detect(doc["detect"]["version"], doc["detect"]["version_comment"])
    rows = [dict(doc["replica_status"][0], **row_changes)]
    return normalise_state(flavor, doc["variables"], rows, None, [])


def checks(gate):
    return {c["name"]: c for c in gate.checks}


UNREACHABLE = dict(address="db-primary:3306", reachable=False, error="2003: refused", refused=False)


def test_source_down_is_the_normal_failover_case():
    gate = Gate()
    state = state_of("mysql_8_4_replica_source_down")
    check_replica(gate, state, max_lag=60)
    check_old_primary(gate, UNREACHABLE, state)
    assert not gate.failed, gate.checks
    assert "nothing more can arrive" in checks(gate)["lag"]["detail"]
    assert "from the replica (io=connecting, error 2003" in checks(gate)["old_primary"]["detail"]


def test_stopped_sql_thread_means_unknown_lag_and_refusal():
    gate = Gate()
    check_replica(gate, state_of("mysql_8_0_replica_lag"), max_lag=60)
    failed = {c["name"] for c in gate.failed}
    assert failed == {"sql_thread", "lag"}
    assert "unknown" in checks(gate)["lag"]["detail"]


def test_sql_error_is_named():
    gate = Gate()
    state = state_of(
        "mysql_5_7_replica", Slave_SQL_Running="No", Last_SQL_Errno=1062, Last_SQL_Error="Duplicate entry '7'"
    )
    check_replica(gate, state, max_lag=60)
    assert "1062: Duplicate entry" in checks(gate)["sql_thread"]["detail"]


def test_lag_threshold():
    gate = Gate()
    check_replica(gate, state_of("mysql_5_7_replica", Seconds_Behind_Master=120), max_lag=60)
    assert checks(gate)["lag"] == dict(name="lag", ok=False, detail="120s behind the source (limit 60s)")


def test_unreachable_from_here_but_connected_from_the_replica_is_a_partition():
    gate = Gate()
    check_old_primary(gate, UNREACHABLE, state_of("mysql_5_7_replica"))
    assert "it is alive" in gate.failed[0]["detail"]


@pytest.mark.parametrize(
    ("op", "ok", "words"),
    [
        (dict(address="a", reachable=False, error="1045: denied", refused=True), False, "cannot be checked"),
        (
            dict(address="a", reachable=True, fenced=True, fence_label="super_read_only", will_fence=False),
            True,
            "fenced",
        ),
        (dict(address="a", reachable=True, fenced=False, will_fence=True), True, "fences it first"),
        (dict(address="a", reachable=True, fenced=False, will_fence=False), False, "split brain"),
    ],
)
def test_old_primary_must_be_fenced_or_gone(op, ok, words):
    gate = Gate()
    check_old_primary(gate, op, state_of("mysql_8_4_replica_source_down"))
    assert gate.checks[0]["ok"] is ok
    assert words in gate.checks[0]["detail"]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        (dict(max_lag_seconds=-1), "max_lag_seconds"),
        (dict(wait_timeout=-5), "wait_timeout"),
        (dict(heartbeat=dict(table="heartbeat", column="source")), "database.table"),
        (dict(heartbeat=dict(table="shop.heartbeat; DROP TABLE x", column="source")), "database.table"),
        (dict(heartbeat=dict(table="shop.heartbeat", column="a`b")), "heartbeat.column"),
    ],
)
def test_malformed_parameters_are_refused_with_the_option_named(changes, words):
    from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure

    params = dict(max_lag_seconds=60, wait_timeout=30, heartbeat=None, **{})
    params.update(changes)
    with pytest.raises(ModuleFailure, match=words):
        validate(params)
