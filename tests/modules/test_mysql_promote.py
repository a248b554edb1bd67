"""mysql_promote against the lab's real MariaDB pair: failover, refusals, force, check mode, switchover."""

from __future__ import annotations

from incidentlab import mariadb
from mysql_lab import (
    admin_value,
    app_insert,
    app_write_refused,
    assert_no_secrets,
    count,
    login,
    replica_status,
)
from support import db, run_module, wait_for

PROMOTION = ["STOP REPLICA IO_THREAD", "STOP REPLICA", "RESET REPLICA ALL", "SET GLOBAL read_only = OFF"]


def app_heartbeat(lab) -> dict:
    secrets = lab.secrets()
    return dict(table="shop.heartbeat", login_user="shop_app", login_password=secrets["app"])


def checks(res) -> dict:
    return {c["name"]: c for c in res["gate"]["checks"]}


def write_orders(lab, n: int) -> int:
    with db(lab, "db-primary") as conn:
        conn.cursor().executemany(
            "INSERT INTO orders (user_id, total, status) VALUES (1, %s, 'NEW')", [(i,) for i in range(n)]
        )
    return count(lab, "db-primary", "SELECT COUNT(*) FROM orders")


def still_replicating(lab) -> bool:
    """The pair still works: the replica is a read-only replica and a new row on the primary reaches it."""
    rs = replica_status(lab, "db-replica")
    assert rs and rs["Slave_IO_Running"] == "Yes" and rs["Slave_SQL_Running"] == "Yes"
    assert admin_value(lab, "db-replica", "SELECT @@read_only") == 1
    marker = f"still-replicating-{rs['Exec_Master_Log_Pos']}"
    app_insert(lab, "db-primary", marker)
    wait_for(
        lambda: count(lab, "db-replica", "SELECT COUNT(*) FROM heartbeat WHERE source=%s", (marker,)) == 1,
        30,
        "the new row on the replica",
    )
    return True


def test_failover_after_primary_killed_loses_no_row_and_a_second_run_changes_nothing(fresh_databases, quiet_traffic):
    lab = fresh_databases
    written = write_orders(lab, 200)
    mariadb.wait_caught_up(lab.cfg, lab.secrets(), "db-replica", "db-primary")
    lab.break_fault("db-primary-down")

    res = run_module("mysql_promote", dict(login(lab, "db-replica"), heartbeat=app_heartbeat(lab)), diff=True)
    assert not res["failed"], res["msg"]
    assert res["changed"] is True and res["promoted"] is True
    assert res["gate"]["passed"] is True and res["gate"]["overridden"] == []
    found = checks(res)
    assert set(found) == {"sql_thread", "lag", "gtid_position", "old_primary", "relay_log_applied"}
    assert "unreachable from here" in found["old_primary"]["detail"]
    assert "and from the replica (io=connecting, error 20" in found["old_primary"]["detail"]  # 2003 or 2013
    assert res["old_primary"]["reachable"] is False
    assert res["statements"] == {"replica": PROMOTION, "old_primary": []}
    assert res["heartbeat"]["login_user"] == "shop_app" and res["heartbeat"]["read_only_after"] is False
    assert res["diff"][0]["before"] == dict(
        role="replica", read_only=True, replication_source=f"127.0.0.1:{lab.cfg.ports['db-primary']}"
    )
    assert res["diff"][0]["after"] == dict(role="primary", read_only=False, replication_source=None)
    assert res["state"]["role"] == "primary" and res["state"]["writable"] is True

    # Nothing that reached the replica was lost, and the application can write to the new primary.
    assert count(lab, "db-replica", "SELECT COUNT(*) FROM orders") == written
    assert count(lab, "db-replica", "SELECT COUNT(*) FROM heartbeat WHERE source=%s", (res["heartbeat"]["value"],)) == 1
    app_insert(lab, "db-replica", "app-after-failover")
    assert replica_status(lab, "db-replica") is None

    again = run_module("mysql_promote", dict(login(lab, "db-replica"), heartbeat=app_heartbeat(lab)))
    assert not again["failed"], again["msg"]
    assert again["changed"] is False and again["promoted"] is False
    assert "already a writable primary" in again["msg"]
    assert again["statements"] == {"replica": [], "old_primary": []}
    assert_no_secrets(lab, res, again)


def test_promotion_waits_until_the_relay_log_is_applied(fresh_databases, quiet_traffic):
    lab = fresh_databases
    # A delayed replica: the IO thread has the rows, the SQL thread applies them 6 s later (long enough for
    # the module to start and find them unapplied, even when an Ansible task takes seconds on a loaded machine).
    with mariadb.admin(lab.cfg, "db-replica", lab.secrets()) as conn:
        mariadb.execute(conn, ["STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=6", "START SLAVE"])
    written = write_orders(lab, 20)
    target = admin_value(lab, "db-primary", "SELECT @@gtid_binlog_pos")
    wait_for(lambda: replica_status(lab, "db-replica")["Gtid_IO_Pos"] == target, 30, "the replica to receive")
    assert count(lab, "db-replica", "SELECT COUNT(*) FROM orders") < written  # received, not applied yet
    lab.break_fault("db-primary-down")

    res = run_module("mysql_promote", dict(login(lab, "db-replica"), wait_timeout=20))
    assert not res["failed"], res["msg"]
    assert checks(res)["relay_log_applied"]["ok"] is True
    assert res["gate"]["waited_seconds"] > 0.5
    assert count(lab, "db-replica", "SELECT COUNT(*) FROM orders") == written


def test_lagging_replica_is_refused_with_the_reasons_and_force_promotes_saying_what_it_overrode(
    fresh_databases, quiet_traffic
):
    lab = fresh_databases
    lab.break_fault("replica-lag")

    refused = run_module("mysql_promote", login(lab, "db-replica"))
    assert refused["failed"] and refused["msg"].startswith("refusing to promote")
    failed = {c["name"] for c in refused["gate"]["checks"] if not c["ok"]}
    assert failed == {"sql_thread", "lag", "relay_log_applied", "old_primary", "caught_up_with_old_primary"}
    assert "25 received transaction(s) not applied" in checks(refused)["relay_log_applied"]["detail"]
    assert "unknown" in checks(refused)["lag"]["detail"]
    assert "split brain" in checks(refused)["old_primary"]["detail"]
    for name in failed:
        assert name in refused["msg"]
    assert refused["changed"] is False and refused["statements"] == {"replica": [], "old_primary": []}
    assert replica_status(lab, "db-replica") is not None  # untouched
    assert admin_value(lab, "db-replica", "SELECT @@read_only") == 1

    forced = run_module("mysql_promote", dict(login(lab, "db-replica"), force=True))
    assert not forced["failed"], forced["msg"]
    assert forced["changed"] is True and forced["promoted"] is True
    assert set(forced["gate"]["overridden"]) == failed
    assert "forced past" in forced["msg"]
    assert forced["statements"]["replica"] == PROMOTION
    assert admin_value(lab, "db-replica", "SELECT @@read_only") == 0
    assert_no_secrets(lab, refused, forced)


def test_check_mode_changes_nothing_and_the_replica_keeps_replicating(fresh_databases, quiet_traffic):
    lab = fresh_databases
    res = run_module(
        "mysql_promote",
        dict(login(lab, "db-replica"), fence_old_primary=True, heartbeat=app_heartbeat(lab)),
        check=True,
        diff=True,
    )
    assert not res["failed"], res["msg"]
    assert res["changed"] is True and res["promoted"] is True  # what a real run would do
    assert "check mode" in res["msg"]
    assert res["statements"] == {"replica": PROMOTION, "old_primary": ["SET GLOBAL read_only = ON"]}
    assert res["gate"]["passed"] is True
    assert "fences it first" in checks(res)["old_primary"]["detail"]
    assert [d["before_header"] for d in res["diff"]] == [
        f"127.0.0.1:{lab.cfg.ports['db-replica']}",
        f"127.0.0.1:{lab.cfg.ports['db-primary']} (old primary)",
    ]
    assert "heartbeat" not in res
    # Nothing was written anywhere.
    assert admin_value(lab, "db-primary", "SELECT @@read_only") == 0
    assert count(lab, "db-primary", "SELECT COUNT(*) FROM heartbeat WHERE source LIKE 'incident.response%'") == 0
    assert still_replicating(lab)
    assert_no_secrets(lab, res)


def test_reachable_writable_old_primary_is_refused_unless_fenced_first(fresh_databases, quiet_traffic):
    lab = fresh_databases
    refused = run_module("mysql_promote", login(lab, "db-replica"))
    assert refused["failed"]
    assert [c["name"] for c in refused["gate"]["checks"] if not c["ok"]] == ["old_primary"]
    assert "reachable and writable" in refused["msg"] and "fence_old_primary: true" in refused["msg"]
    assert still_replicating(lab)
    assert admin_value(lab, "db-primary", "SELECT @@read_only") == 0

    # Planned switchover: fence the old primary, let the replica catch up, promote.
    app_insert(lab, "db-primary", "last-write-before-switchover")
    res = run_module(
        "mysql_promote", dict(login(lab, "db-replica"), fence_old_primary=True, heartbeat=app_heartbeat(lab))
    )
    assert not res["failed"], res["msg"]
    assert res["old_primary"]["fenced_by_this_run"] is True and res["old_primary"]["fenced"] is True
    assert res["statements"]["old_primary"] == ["SET GLOBAL read_only = ON"]
    assert checks(res)["caught_up_with_old_primary"]["ok"] is True
    assert count(lab, "db-replica", "SELECT COUNT(*) FROM heartbeat WHERE source='last-write-before-switchover'") == 1
    assert app_write_refused(lab, "db-primary")  # the old primary takes no application writes
    app_insert(lab, "db-replica", "first-write-on-new-primary")

    # The fenced old primary is no replica and read-only: asking to promote it is refused.
    wrong = run_module("mysql_promote", login(lab, "db-primary"))
    assert wrong["failed"] and "is not a replica and is read-only" in wrong["msg"]
    assert admin_value(lab, "db-primary", "SELECT @@read_only") == 1
    assert_no_secrets(lab, refused, res, wrong)


def test_bad_input_fails_with_a_clear_message(lab):
    res = run_module("mysql_promote", dict(login(lab, "db-replica"), login_password="wrong"))
    assert res["failed"] and "access denied: check login_user and login_password" in res["msg"]

    res = run_module("mysql_promote", dict(login(lab, "db-replica"), login_port=lab.cfg.port_base + 999))
    assert res["failed"] and "cannot connect: is the server running and reachable" in res["msg"]

    res = run_module("mysql_promote", dict(login(lab, "db-replica"), max_lag_seconds=-1))
    assert res["failed"] and res["msg"] == "max_lag_seconds must be 0 or more (got -1)"

    res = run_module("mysql_promote", dict(login(lab, "db-replica"), heartbeat=dict(table="heartbeat")))
    assert res["failed"] and "heartbeat.table must be database.table" in res["msg"]

    # An old primary that answers but refuses the login cannot be checked: refused, nothing changed.
    res = run_module(
        "mysql_promote",
        dict(login(lab, "db-replica"), old_primary=dict(login_password="wrong"), fence_old_primary=True),
    )
    assert res["failed"] and "answers but cannot be checked" in res["msg"]
    assert replica_status(lab, "db-replica")["Slave_SQL_Running"] == "Yes"
    assert "Traceback" not in str(res)
    assert_no_secrets(lab, res)


def test_a_login_without_the_privileges_gets_told_which(lab):
    res = run_module("mysql_promote", login(lab, "db-replica", role="app"))
    assert res["failed"]
    assert "the login user lacks a privilege this step needs" in res["msg"]
    assert "while running: SHOW REPLICA STATUS" in res["msg"]
    assert replica_status(lab, "db-replica")["Slave_SQL_Running"] == "Yes"


def test_a_replica_paused_without_an_error_applies_what_it_received_then_is_promoted(fresh_databases, quiet_traffic):
    """replica-lag (SQL thread stopped, no error, rows received), then the primary dies: with apply_relay_log
    the module starts the SQL thread, waits for the relay log and promotes, saying how much it applied first;
    without it the gate refuses as before. Every row the replica had received is on the new primary."""
    lab = fresh_databases
    lab.break_fault("replica-lag")
    written = write_orders(lab, 50)
    target = admin_value(lab, "db-primary", "SELECT @@gtid_binlog_pos")
    wait_for(lambda: replica_status(lab, "db-replica")["Gtid_IO_Pos"] == target, 30, "the replica to receive")
    assert count(lab, "db-replica", "SELECT COUNT(*) FROM orders") < written  # received, not applied
    lab.break_fault("db-primary-down")

    refused = run_module("mysql_promote", login(lab, "db-replica"))
    assert refused["failed"] and "sql_thread" in refused["msg"]

    planned = run_module("mysql_promote", dict(login(lab, "db-replica"), apply_relay_log=True), check=True)
    assert not planned["failed"], planned["msg"]
    assert planned["statements"]["replica"][0] == "START REPLICA SQL_THREAD"
    assert "check mode: the SQL thread would be started" in checks(planned)["relay_log_applied"]["detail"]
    assert replica_status(lab, "db-replica")["Slave_SQL_Running"] == "No"  # check mode started nothing

    res = run_module("mysql_promote", dict(login(lab, "db-replica"), apply_relay_log=True, wait_timeout=30))
    assert not res["failed"], res["msg"]
    assert res["promoted"] is True and res["gate"]["passed"] is True
    first = res["applied_first"]
    assert first["started_sql_thread"] is True and first["applied"] is True and first["pending_before"] >= 50
    assert "applied first" in checks(res)["relay_log_applied"]["detail"]
    assert res["statements"]["replica"] == ["START REPLICA SQL_THREAD", *PROMOTION]
    assert count(lab, "db-replica", "SELECT COUNT(*) FROM orders") == written


def test_two_promotions_at_once_end_in_one_primary_and_no_crash(fresh_databases, quiet_traffic):
    """Two runs promote the same replica at the same time (two responders): neither crashes, the server ends
    a writable primary, and a run that finds it promoted by the other says so instead of claiming a failure."""
    from concurrent.futures import ThreadPoolExecutor

    lab = fresh_databases
    lab.break_fault("db-primary-down")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: run_module("mysql_promote", login(lab, "db-replica")), range(2)))
    for res in results:
        assert "Traceback" not in str(res.get("module_stderr", "")) and "TypeError" not in res.get("msg", ""), res
    assert any(r.get("promoted") for r in results), results
    for res in results:
        assert not res["failed"] or "another run" in res["msg"] or "someone else" in res["msg"], res["msg"]
    assert admin_value(lab, "db-replica", "SELECT @@read_only") == 0
    assert replica_status(lab, "db-replica") is None
    again = run_module("mysql_promote", login(lab, "db-replica"))
    assert again["changed"] is False and "already a writable primary" in again["msg"]
