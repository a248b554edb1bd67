"""mysql_fence against the lab's real MariaDB pair: the split-brain guard and the rejoin after a failover."""

from __future__ import annotations

import pymysql
import pytest

from incidentlab import mariadb
from mysql_lab import (
    admin_value,
    app_insert,
    app_write_refused,
    assert_no_secrets,
    count,
    login,
    replica_status,
    replication_from,
    restart_writable,
)
from support import db, run_module, wait_for


def fail_over(lab) -> None:
    """The runbook's emergency: the primary dies, the replica is promoted (by the module under test elsewhere)."""
    mariadb.wait_caught_up(lab.cfg, lab.secrets(), "db-replica", "db-primary")
    lab.break_fault("db-primary-down")
    res = run_module("mysql_promote", login(lab, "db-replica"))
    assert res["promoted"], res["msg"]


def test_recovered_old_primary_is_fenced_and_rejoins_the_new_primary(fresh_databases):
    lab = fresh_databases
    fail_over(lab)
    restart_writable(lab, "db-primary")
    assert admin_value(lab, "db-primary", "SELECT @@read_only") == 0  # back, writable: the split-brain risk
    app_session = db(lab, "db-primary")  # an application that reconnected to it

    plan = run_module(
        "mysql_fence",
        dict(login(lab, "db-primary"), kill_connections=True, replicate_from=replication_from(lab, "db-replica")),
        check=True,
        diff=True,
    )
    assert not plan["failed"], plan["msg"]
    assert plan["changed"] is True
    assert plan["diff"]["before"] == dict(read_only=False, super_read_only=None, replication_source=None)
    new_primary = f"127.0.0.1:{lab.cfg.ports['db-replica']}"
    assert plan["diff"]["after"] == dict(read_only=True, super_read_only=None, replication_source=new_primary)
    assert plan["statements"][0] == "SET GLOBAL read_only = ON"
    assert any(s.startswith("KILL CONNECTION") for s in plan["statements"])
    assert (
        "MASTER_PASSWORD='********'" in plan["statements"][-2]
        and "MASTER_USE_GTID=current_pos" in plan["statements"][-2]
    )
    assert plan["statements"][-1] == "START REPLICA"
    assert "shop_app" in [c["user"] for c in plan["killed_connections"]]
    assert admin_value(lab, "db-primary", "SELECT @@read_only") == 0  # check mode wrote nothing
    assert replica_status(lab, "db-primary") is None

    # A wrong replication password: fenced all the same, and told why it does not replicate.
    bad = run_module(
        "mysql_fence",
        dict(login(lab, "db-primary"), kill_connections=True, replicate_from=replication_from(lab, "db-replica", "no")),
    )
    assert bad["failed"] and bad["fenced"] is True
    assert "check replicate_from.user and replicate_from.password" in bad["msg"]
    assert app_write_refused(lab, "db-primary")
    with pytest.raises(pymysql.err.OperationalError):  # its session was ended
        app_session.cursor().execute("SELECT 1")

    # The rejoin that works uses slave_pos (the runs above used the default, current_pos, for real).
    rejoin = dict(
        login(lab, "db-primary"), replicate_from=dict(replication_from(lab, "db-replica"), use_gtid="slave_pos")
    )
    res = run_module("mysql_fence", rejoin)
    assert not res["failed"], res["msg"]
    assert res["changed"] is True and res["fenced"] is True
    assert "SET GLOBAL gtid_slave_pos = @@global.gtid_current_pos" in res["statements"]
    assert res["state"]["replication"]["using_gtid"] == "Slave_Pos"
    assert res["state"]["role"] == "replica" and res["state"]["replication"]["io_thread"] == "running"
    app_insert(lab, "db-replica", "written-on-the-new-primary")
    wait_for(
        lambda: count(lab, "db-primary", "SELECT COUNT(*) FROM heartbeat WHERE source='written-on-the-new-primary'"),
        10,
        "the new primary's row on the rejoined old primary",
    )
    assert app_write_refused(lab, "db-primary")

    again = run_module("mysql_fence", rejoin)  # the same request again
    assert not again["failed"], again["msg"]
    assert again["changed"] is False and again["statements"] == [] and "nothing to change" in again["msg"]
    assert_no_secrets(lab, plan, bad, res, again)


def test_fencing_a_writable_primary_ends_its_open_sessions_and_keeps_the_ones_asked(fresh_databases):
    lab = fresh_databases
    app = db(lab, "db-primary")
    app.autocommit(False)
    app.cursor().execute("INSERT INTO heartbeat (source) VALUES ('uncommitted')")  # open transaction
    monitor = db(lab, "db-primary", role="exporter", database=None)

    res = run_module(
        "mysql_fence",
        dict(login(lab, "db-primary"), kill_connections=True, keep_connections_of=["exporter"]),
        diff=True,
    )
    assert not res["failed"], res["msg"]
    assert res["changed"] is True and res["fenced"] is True
    assert res["statements"][0] == "SET GLOBAL read_only = ON"
    killed_users = {c["user"] for c in res["killed_connections"]}
    assert "shop_app" in killed_users and "exporter" not in killed_users
    assert res["diff"]["after"]["read_only"] is True
    with pytest.raises(pymysql.err.OperationalError):
        app.commit()
    assert count(lab, "db-primary", "SELECT COUNT(*) FROM heartbeat WHERE source='uncommitted'") == 0
    assert monitor.cursor().execute("SELECT 1") == 1  # kept
    assert app_write_refused(lab, "db-primary")

    again = run_module("mysql_fence", login(lab, "db-primary"))
    assert again["changed"] is False and again["statements"] == []


def test_a_diverged_old_primary_is_refused_by_the_new_primary_and_stays_fenced(fresh_databases):
    lab = fresh_databases
    # The old primary commits a row the replica never receives, then dies.
    with mariadb.admin(lab.cfg, "db-replica", lab.secrets()) as conn:
        mariadb.execute(conn, "STOP SLAVE IO_THREAD")
    app_insert(lab, "db-primary", "only-on-the-old-primary")
    lab.break_fault("db-primary-down")
    promoted = run_module("mysql_promote", login(lab, "db-replica"))
    assert promoted["promoted"], promoted["msg"]
    app_insert(lab, "db-replica", "only-on-the-new-primary")
    restart_writable(lab, "db-primary")

    res = run_module("mysql_fence", dict(login(lab, "db-primary"), replicate_from=replication_from(lab, "db-replica")))
    assert res["failed"] and res["fenced"] is True
    assert "io thread error 1236" in res["msg"] and "diverged" in res["msg"] and "Rebuild it" in res["msg"]
    assert admin_value(lab, "db-primary", "SELECT @@read_only") == 1
    assert_no_secrets(lab, res)


def test_bad_input_fails_with_a_clear_message(lab):
    res = run_module("mysql_fence", dict(login(lab, "db-primary"), replicate_from=dict(host="127.0.0.1")))
    assert res["failed"] and "user" in res["msg"] and "replicate_from" in res["msg"]
    assert admin_value(lab, "db-primary", "SELECT @@read_only") == 0

    res = run_module("mysql_fence", dict(login(lab, "db-primary"), login_host="127.0.0.2", connect_timeout=1))
    assert res["failed"] and "cannot connect" in res["msg"]

    res = run_module("mysql_fence", dict(login(lab, "db-primary"), replicate_from=replication_from(lab, "db-replica")))
    assert res["failed"] and "connected as its own replica" in res["msg"] and "replication loop" in res["msg"]

    res = run_module(
        "mysql_fence",
        dict(login(lab, "db-primary"), replicate_from=dict(replication_from(lab, "db-replica"), use_gtid="own_pos")),
    )
    assert res["failed"] and "use_gtid" in res["msg"] and "current_pos" in res["msg"]
    assert admin_value(lab, "db-primary", "SELECT @@read_only") == 0
    assert_no_secrets(lab, res)
