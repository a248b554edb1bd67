"""Candidate selection and errant transactions on recorded rows: MySQL 5.7 / 8.0 / 8.4 (GTID sets, tags,
Source_UUID / Master_UUID) and MariaDB positions (domains, strict mode). The lab's live MariaDB cases are in
tests/modules/test_mysql_siblings.py."""

from __future__ import annotations

import json
from pathlib import Path

from ansible_collections.incident.response.plugins.module_utils.mysql_candidates import choose, errant, will_have
from ansible_collections.incident.response.plugins.module_utils.mysql_flavors import (
    Flavor,
    format_mysql_gtid_set,
    mariadb_position_max,
    mysql_set_subtract,
    mysql_set_union,
    normalise_state,
    parse_binlog_state,
)

FIXTURES = Path(__file__).parent / "fixtures"
SOURCE = "3e11fa47-71ca-11e1-9e33-c80aa9429562"  # the old primary of the recorded MySQL replicas
OTHER = "6c27ed6d-7ee1-11e3-be39-6c626d957cff"  # an earlier primary, in every replica's history


def state_of(name, variables=None, reachable=True, **row_changes):
    doc = json.loads((FIXTURES / f"{name}.json").read_text())
    flavor = Flavor.detect(doc["detect"]["version"], doc["detect"]["version_comment"])
    rows = [dict(doc["replica_status"][0], **row_changes)]
    state = normalise_state(flavor, dict(doc["variables"], **(variables or {})), rows, None, [])
    return dict(state, reachable=reachable)


def mysql_replica(uuid, executed, retrieved, version="mysql_8_0_replica_lag", **row):
    return state_of(
        version,
        {"server_uuid": uuid, "gtid_executed": executed},
        Retrieved_Gtid_Set=retrieved,
        Executed_Gtid_Set=executed,
        **row,
    )


A = "aaaaaaaa-0000-0000-0000-00000000000a"
B = "bbbbbbbb-0000-0000-0000-00000000000b"


def test_mysql_set_arithmetic_keeps_tags_and_merges_intervals():
    have = mysql_set_union(f"{SOURCE}:1-10:20-30:incident:1-3", f"{SOURCE}:11-15")
    assert have[(SOURCE, "")] == [(1, 15), (20, 30)]
    left = mysql_set_subtract(have, mysql_set_union(f"{SOURCE}:5-25:incident:2"))
    assert format_mysql_gtid_set(left) == f"{SOURCE}:1-4:26-30:incident:1:3"


def test_mariadb_positions_and_binlog_state():
    assert mariadb_position_max("0-1-5,1-11-3", "0-2-7", "1-11-2") == "0-2-7,1-11-3"
    assert parse_binlog_state("0-1-12,0-3-13,1-11-4") == {(0, 1): 12, (0, 3): 13, (1, 11): 4}


def test_mysql_errant_transactions_are_the_replicas_own_that_no_sibling_has():
    executed = f"{OTHER}:1-57,{SOURCE}:1-1050,{A}:1-2"
    candidate = mysql_replica(A, executed, f"{SOURCE}:1-1050")
    sibling = mysql_replica(B, f"{OTHER}:1-57,{SOURCE}:1-1050", f"{SOURCE}:1-1050")
    found = errant(candidate, [sibling])
    assert found["gtids"] == [f"{A}:1-2"] and found["count"] == 2 and found["checked"] is True
    # A sibling that has them (they were replicated once, when A was a primary): nothing errant.
    sibling_with = mysql_replica(B, f"{OTHER}:1-57,{SOURCE}:1-1050,{A}:1-2", f"{SOURCE}:1-1050")
    assert errant(candidate, [sibling_with])["gtids"] == []
    # Nobody to compare with: not checked, and it says so (MySQL has no sequence to go by).
    alone = errant(candidate, [])
    assert alone["checked"] is False and "nothing to compare with" in alone["detail"]


def test_mysql_position_after_applying_counts_received_and_leaves_errant_out():
    candidate = mysql_replica(A, f"{SOURCE}:1-1025,{A}:1", f"{SOURCE}:1-1050")
    assert will_have(candidate, errant(candidate, [mysql_replica(B, f"{SOURCE}:1-1000", "")])) == f"{SOURCE}:1-1050"


def test_mysql_the_most_advanced_wins_and_a_newer_major_version_is_excluded():
    servers = {
        "old": {"reachable": False, "error": "2003"},
        "r80": mysql_replica(A, f"{SOURCE}:1-1000", f"{SOURCE}:1-1050"),  # 8.0, received the most
        "r80b": mysql_replica(B, f"{SOURCE}:1-1040", f"{SOURCE}:1-1040"),
        # 8.4: the 8.0 siblings could not replicate from it, however far it got.
        "r84": dict(
            mysql_replica(
                "cccccccc-0000-0000-0000-00000000000c",
                f"{SOURCE}:1-1050",
                f"{SOURCE}:1001-1050",
                version="mysql_8_4_replica_source_down",
            )
        ),
    }
    choice = choose(servers, ["r80", "r80b", "r84"], "old")
    assert choice["promote"] == "r80"
    assert [c["name"] for c in choice["candidates"]] == ["r80", "r80b"]
    assert choice["candidates"][1]["lacks"] == {"r80": 10}
    (excluded,) = choice["excluded"]
    assert excluded["name"] == "r84" and "runs 8.4, newer than 8.0 on its siblings" in excluded["reasons"][0]
    assert sorted(choice["siblings"]) == ["r80b", "r84"]
    # Allowed versions from the inventory exclude the others too.
    only_84 = choose(servers, ["r80", "r80b", "r84"], "old", versions=["8.4"])
    assert only_84["promote"] is None and "not one of the versions allowed (8.4)" in only_84["reason"]


def test_mysql_errant_sql_error_delay_and_rule_each_exclude_with_their_reason():
    base = f"{OTHER}:1-57,{SOURCE}:1-1050"
    servers = {
        "errant": mysql_replica(A, f"{base},{A}:1-3", f"{SOURCE}:1-1050"),
        "broken": mysql_replica(
            B, base, f"{SOURCE}:1-1050", Replica_SQL_Running="No", Last_SQL_Errno=1062, Last_SQL_Error="Duplicate"
        ),
        "delayed": mysql_replica("dddddddd-0000-0000-0000-00000000000d", base, f"{SOURCE}:1-1050", SQL_Delay=3600),
        "never": mysql_replica("eeeeeeee-0000-0000-0000-00000000000e", base, f"{SOURCE}:1-1050"),
        "good": mysql_replica("ffffffff-0000-0000-0000-00000000000f", base, f"{SOURCE}:1-1050"),
    }
    choice = choose(servers, list(servers), None, {"never": {"promotion_rule": "never"}})
    assert choice["promote"] == "good"
    reasons = {e["name"]: " ".join(e["reasons"]) for e in choice["excluded"]}
    assert f"errant transactions: 3 written here and on no other server: {A}:1-3" in reasons["errant"]
    assert "error 1062: Duplicate" in reasons["broken"]
    assert "delayed by 3600 s on purpose" in reasons["delayed"]
    assert reasons["never"] == "promotion rule never"


def test_a_replica_that_holds_more_than_the_choice_stops_the_plan():
    servers = {
        "never": mysql_replica(A, f"{SOURCE}:1-1050", f"{SOURCE}:1-1050"),
        "behind": mysql_replica(B, f"{SOURCE}:1-1000", f"{SOURCE}:1-1000"),
    }
    choice = choose(servers, ["never", "behind"], None, {"never": {"promotion_rule": "never"}})
    assert choice["promote"] is None and choice["loses"][0] == dict(
        name="never", transactions=50, position=f"{SOURCE}:1-1050"
    )
    assert "behind would be the candidate, but never has 50 transaction(s) it lacks" in choice["reason"]


def test_diverged_candidates_are_left_to_people():
    servers = {
        "a": mysql_replica(A, f"{SOURCE}:1-10:20", f"{SOURCE}:1-10:20"),
        "b": mysql_replica(B, f"{SOURCE}:1-11", f"{SOURCE}:1-11"),
    }
    choice = choose(servers, ["a", "b"], None)
    assert choice["promote"] is None and "the candidates diverge" in choice["reason"]


def test_mariadb_strict_mode_tells_errant_from_history_without_anyone_to_compare_with():
    # db-replica (server id 2) wrote 0-2-13 after it received 0-1-12: errant. A write of its own at 5, from
    # the days it was a primary, is below what its source sent since: history.
    errant_one = state_of("mariadb_10_11_replica", {"gtid_binlog_state": "0-1-12,0-2-13"})
    found = errant(errant_one, [])
    assert found["gtids"] == ["0-2-13"] and found["checked"] is True
    history = state_of("mariadb_10_11_replica", {"gtid_binlog_state": "0-2-5,0-1-12"})
    assert errant(history, [])["gtids"] == []
    # Another domain (a write with gtid_domain_id=7) is named with its domain.
    other_domain = state_of("mariadb_10_11_replica", {"gtid_binlog_state": "0-1-12,7-2-1"})
    assert errant(other_domain, [])["gtids"] == ["7-2-1"]


def test_mariadb_ranks_by_what_each_will_have_applied_not_by_what_it_applied():
    # The paused replica applied 0-1-12 but received 0-1-37: once it applied its relay log it has the most.
    paused = state_of("mariadb_10_11_replica_lag", {"server_id": 3})
    servers = {"paused": paused, "current": state_of("mariadb_10_11_replica")}
    assert will_have(paused) == "0-1-37"
    choice = choose(servers, ["paused", "current"], None, {"current": {"promotion_rule": "prefer"}})
    assert choice["promote"] == "paused" and choice["candidates"][1]["lacks"] == {"paused": 25}
    assert "current (prefer) lacks 25 of its transactions" in choice["reason"]


def test_the_source_uuid_is_read_in_every_spelling():
    for name in ("mysql_5_7_replica", "mysql_8_0_replica_lag", "mysql_8_4_replica_source_down"):
        assert state_of(name)["replication"]["source_uuid"] == SOURCE, name
    assert state_of("mariadb_10_11_replica")["replication"]["source_uuid"] is None
    assert state_of("mariadb_10_11_replica")["gtid"]["binlog_state"] == "0-1-12"
