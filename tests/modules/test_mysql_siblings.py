"""Several replicas of one primary, on the lab's real MariaDB servers (`lab up --topology replicas`: db-primary
with db-replica, db-spare and db-delayed, an hour behind on purpose): the candidate the plan chooses and why,
errant transactions named and refused, siblings that follow the new primary, and community.mysql's view of
the result."""

from __future__ import annotations

import os

import pytest

from ansible_collections.incident.response.plugins.filter.db_failover_plan import db_failover_plan
from incidentlab import mariadb
from mysql_lab import login, replica_status
from support import COLLECTIONS_PATH, bundled_collections, db, run_module, scalar

pytestmark = pytest.mark.topology("replicas")

REPLICAS = ("db-replica", "db-spare", "db-delayed")


def servers(lab) -> list[dict]:
    return [dict(name=n, login_host="127.0.0.1", login_port=lab.cfg.ports[n]) for n in lab.topology.server_names]


def inventory(lab, **rules) -> dict:
    """The databases map as the lab inventory builds it (lab.json), with these promotion rules."""
    dbs = {name: dict(entry) for name, entry in lab.state()["databases"].items()}
    for name, rule in rules.items():
        dbs[name]["promotion_rule"] = rule
    return dbs


def replication_info(lab) -> dict:
    secrets = lab.secrets()
    res = run_module(
        "mysql_replication_info",
        dict(
            servers=servers(lab),
            login_user="incident_admin",
            login_password=secrets["admin"],
            fail_on_unreachable=False,
        ),
    )
    assert not res["failed"], res["msg"]
    return res


def sibling_logins(lab, *names) -> list[dict]:
    return [dict(name=n, login_host="127.0.0.1", login_port=lab.cfg.ports[n]) for n in names]


def promote_args(lab, name: str, *siblings: str) -> dict:
    return dict(
        login(lab, name),
        apply_relay_log=True,
        wait_timeout=20,
        siblings=sibling_logins(lab, *siblings),
        replication=dict(user="repl", password=lab.secrets()["replication"], connect_retry=1),
    )


def checks(res) -> dict:
    return {c["name"]: c for c in res["gate"]["checks"]}


def excluded(plan) -> dict:
    return {e["name"]: " ".join(e["reasons"]) for e in plan["excluded"]}


def write_orders(lab, n: int, status: str) -> None:
    with db(lab, "db-primary") as conn:
        conn.cursor().executemany(
            "INSERT INTO orders (user_id, total, status) VALUES (1, %s, %s)", [(i, status) for i in range(n)]
        )


def test_the_plan_never_chooses_a_delayed_or_never_replica_breaks_ties_by_rule_and_says_why(own_lab):
    lab = own_lab
    with lab.traffic_paused():
        write_orders(lab, 10, "PLAN")
        for name in REPLICAS:
            mariadb.wait_caught_up(lab.cfg, lab.secrets(), name, "db-primary", received=name == "db-delayed")
        lab.break_fault("db-primary-down")
        info = replication_info(lab)

    # Every candidate has everything: the rule decides (db-replica prefer, db-spare neutral).
    plan = db_failover_plan(info, inventory(lab, **{"db-replica": "prefer", "db-delayed": "never"}))
    assert plan["needed"] and plan["promote"] == "db-replica" and plan["old_primary"] == "db-primary"
    assert "as much as db-spare; promotion rule prefer" in plan["reason"]
    assert "delayed by 3600 s on purpose" in excluded(plan)["db-delayed"]
    assert sorted(plan["siblings"]) == ["db-delayed", "db-spare"]
    assert {s["login_port"] for s in plan["sibling_servers"]} == {
        lab.cfg.ports["db-spare"],
        lab.cfg.ports["db-delayed"],
    }

    # avoid loses a tie; never is never chosen, and the plan says so.
    plan = db_failover_plan(info, inventory(lab, **{"db-replica": "avoid"}))
    assert plan["promote"] == "db-spare"
    plan = db_failover_plan(info, inventory(lab, **{"db-spare": "never"}))
    assert plan["promote"] == "db-replica" and excluded(plan)["db-spare"] == "promotion rule never"
    assert "db-spare excluded: promotion rule never" in plan["reason"]

    # Only the delayed replica left: no promotion, and every reason named.
    plan = db_failover_plan(info, inventory(lab, **{"db-spare": "never", "db-replica": "never"}))
    assert plan["needed"] is False and plan["promote"] is None
    assert "no replica can be promoted" in plan["reason"]
    for reason in ("db-replica: promotion rule never", "db-spare: promotion rule never", "db-delayed: delayed by 3600"):
        assert reason in plan["reason"], plan["reason"]


def test_an_errant_transaction_refuses_its_replica_naming_the_gtid_and_another_is_chosen(own_lab):
    lab = own_lab
    secrets = lab.secrets()
    with lab.traffic_paused():
        for name in REPLICAS:
            mariadb.wait_caught_up(lab.cfg, secrets, name, "db-primary", received=name == "db-delayed")
        # Written on the replica itself (the admin login passes read_only): a transaction only db-replica has.
        with db(lab, "db-replica", role="admin", database=None) as conn:
            conn.cursor().execute("INSERT INTO shop.heartbeat (source) VALUES ('written on a replica')")
            errant_gtid = scalar(conn, "SELECT @@gtid_binlog_pos")
        assert errant_gtid.startswith("0-2-")  # db-replica's server id
        lab.break_fault("db-primary-down")

        refused = run_module("mysql_promote", promote_args(lab, "db-replica", "db-spare", "db-delayed"))
        assert refused["failed"] and refused["msg"].startswith("refusing to promote")
        found = checks(refused)["errant_transactions"]
        assert found["ok"] is False and errant_gtid in found["detail"] and errant_gtid in refused["msg"]
        assert "compared with 2 sibling(s)" in found["detail"]
        assert replica_status(lab, "db-replica") is not None  # untouched
        assert "siblings" not in refused

        # The plan sees it too, and chooses the replica without one.
        plan = db_failover_plan(replication_info(lab), inventory(lab, **{"db-replica": "prefer"}))
        assert plan["promote"] == "db-spare"
        assert (
            f"errant transactions: written here and on no other server: {errant_gtid}" in excluded(plan)["db-replica"]
        )
        assert plan["errant"] == {"db-replica": [errant_gtid]}

        # Promoting it, the replica with the errant transaction is reported and left alone, never forced.
        res = run_module("mysql_promote", promote_args(lab, "db-spare", "db-replica", "db-delayed"))
    assert not res["failed"], res["msg"]
    assert res["promoted"] is True and checks(res)["errant_transactions"]["ok"] is True
    sib = {s["name"]: s for s in res["siblings"]}
    assert sib["db-replica"]["followed"] is False and sib["db-replica"]["changed"] is False
    assert errant_gtid in sib["db-replica"]["detail"] and "rebuild it" in sib["db-replica"]["detail"]
    assert "db-replica could not follow" in res["msg"]
    assert replica_status(lab, "db-replica")["Master_Port"] == lab.cfg.ports["db-primary"]
    assert sib["db-delayed"]["followed"] is True
    assert replica_status(lab, "db-delayed")["Master_Port"] == lab.cfg.ports["db-spare"]


def test_a_replica_behind_is_not_promoted_over_one_that_has_more(own_lab):
    """The gate on its own: promoting the replica whose IO thread was stopped would lose what db-spare holds."""
    lab = own_lab
    secrets = lab.secrets()
    with lab.traffic_paused():
        with mariadb.admin(lab.cfg, "db-replica", secrets) as conn:
            mariadb.execute(conn, "STOP SLAVE IO_THREAD")
        write_orders(lab, 20, "BEHIND")
        mariadb.wait_caught_up(lab.cfg, secrets, "db-spare", "db-primary")
        lab.break_fault("db-primary-down")
        checked = run_module("mysql_promote", promote_args(lab, "db-replica", "db-spare", "db-delayed"), check=True)
    assert checked["failed"]
    holdings = checks(checked)["has_siblings_transactions"]
    assert holdings["ok"] is False and "db-spare has 20 transaction(s) this server lacks" in holdings["detail"]
    assert "db-delayed has 20" in holdings["detail"]  # received, not applied: it would be lost as well
    assert replica_status(lab, "db-replica")["Slave_SQL_Running"] == "Yes"


@pytest.mark.peer_client
def test_community_mysql_agrees_with_the_topology_after_the_failover(own_lab):
    """community.mysql's mysql_replication (mode getreplica, from the PyPI `ansible` bundle) reads every server
    after a failover with siblings: the new primary is no replica, every other live server replicates from it."""
    lab = own_lab
    with lab.traffic_paused():
        lab.break_fault("db-primary-down")
        res = run_module("mysql_promote", promote_args(lab, "db-spare", "db-replica", "db-delayed"))
    assert not res["failed"] and all(s["followed"] for s in res["siblings"]), res["msg"]

    env = {
        "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(
            [str(COLLECTIONS_PATH), str(bundled_collections("community.mysql"))]
        )
    }
    seen = {}
    for name in ("db-spare", *[n for n in REPLICAS if n != "db-spare"]):
        seen[name] = run_module(
            "community.mysql.mysql_replication",
            dict(mode="getreplica", **login(lab, name)),
            env=env,
        )
    assert not seen["db-spare"]["failed"] and seen["db-spare"]["Is_Replica"] is False
    for name in ("db-replica", "db-delayed"):
        got = seen[name]
        assert not got["failed"] and got["Is_Replica"] is True, got
        assert (got["Master_Host"], got["Master_Port"]) == ("127.0.0.1", lab.cfg.ports["db-spare"])
        assert got["Slave_IO_Running"] == "Yes" and got["Slave_SQL_Running"] == "Yes"
        assert got["Using_Gtid"] == "Slave_Pos"
    assert seen["db-replica"]["Seconds_Behind_Master"] == 0
    assert seen["db-delayed"]["SQL_Delay"] == 3600
