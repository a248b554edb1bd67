"""mysql_replication_info against the lab's real MariaDB pair, healthy and in each fault."""

from __future__ import annotations

import pytest

from incidentlab import mariadb
from mysql_lab import assert_no_secrets, login, replica_status
from support import run_module, wait_for


def both(lab, **extra):
    """The runbook's check of primary and secondary as one task."""
    primary, replica = login(lab, "db-primary"), login(lab, "db-replica")
    return run_module(
        "mysql_replication_info",
        dict(
            login_user=primary["login_user"],
            login_password=primary["login_password"],
            servers=[
                dict(name="primary", login_host=primary["login_host"], login_port=primary["login_port"]),
                dict(name="replica", login_host=replica["login_host"], login_port=replica["login_port"]),
            ],
            **extra,
        ),
    )


def test_primary_and_replica_in_one_task(lab, quiet_traffic):
    mariadb.wait_caught_up(lab.cfg, lab.secrets(), "db-replica", "db-primary")
    res = both(lab, processlist=True)
    assert not res["failed"], res["msg"]
    assert res["changed"] is False
    assert res["primaries"] == ["primary"] and res["replicas"] == ["replica"] and res["unreachable_servers"] == []
    primary, replica = res["servers"]["primary"], res["servers"]["replica"]

    assert primary["reachable"] and primary["role"] == "primary"
    assert primary["read_only"] is False and primary["writable"] is True
    assert primary["super_read_only"] is None  # MariaDB has none: not "false"
    assert primary["server"]["flavor"] == "mariadb"
    assert primary["binlog"]["enabled"] and primary["binlog"]["file"].startswith("mysql-bin.")
    assert primary["binlog"]["position"] > 0
    assert primary["replication"] is None
    assert [r["port"] for r in primary["connected_replicas"]] == [lab.cfg.ports["db-replica"]]
    assert any(p["command"] == "Binlog Dump" and p["user"] == "repl" for p in primary["processlist"])

    assert replica["role"] == "replica" and replica["read_only"] is True and replica["writable"] is False
    rep = replica["replication"]
    assert rep["source_port"] == lab.cfg.ports["db-primary"] and rep["source_user"] == "repl"
    assert rep["io_thread"] == "running" and rep["sql_thread"] == "running"
    assert rep["seconds_behind_source"] == 0
    assert rep["relay_log_applied"] is True and rep["pending_transactions"] == 0
    assert rep["last_io_error"] is None and rep["last_sql_error"] is None
    assert rep["using_gtid"] == "Slave_Pos"
    assert replica["gtid"]["executed"] == primary["gtid"]["executed"]
    assert any(p["command"] == "Slave_SQL" for p in replica["processlist"])
    assert_no_secrets(lab, res)


def test_single_server_form_returns_the_state_at_the_top(lab):
    res = run_module("mysql_replication_info", login(lab, "db-replica"))
    assert not res["failed"], res["msg"]
    assert "servers" not in res
    assert res["reachable"] is True and res["role"] == "replica"
    assert res["summary"].startswith(f"replica of 127.0.0.1:{lab.cfg.ports['db-primary']}, read-only, io=running")
    assert "processlist" not in res


def test_lagging_replica_reports_unknown_lag_and_what_is_not_applied(lab, healed, quiet_traffic):
    lab.break_fault("replica-lag")
    res = run_module("mysql_replication_info", login(lab, "db-replica"))
    assert not res["failed"], res["msg"]
    rep = res["replication"]
    assert rep["sql_thread"] == "stopped" and rep["io_thread"] == "running"
    assert "seconds_behind_source" in rep and rep["seconds_behind_source"] is None  # unknown, never 0
    assert rep["relay_log_applied"] is False
    assert rep["pending_transactions"] == 25  # faults.LAG_WRITES
    assert "lag unknown" in res["summary"]


def test_broken_replica_reports_the_io_error(lab, healed):
    lab.break_fault("replication-broken")
    wait_for(lambda: (replica_status(lab, "db-replica") or {}).get("Last_IO_Errno"), 30, "the IO thread's error")
    res = run_module("mysql_replication_info", login(lab, "db-replica"))
    assert not res["failed"], res["msg"]
    rep = res["replication"]
    assert rep["io_thread"] == "connecting"
    assert rep["last_io_error"]["errno"] == 1045 and "Access denied" in rep["last_io_error"]["message"]
    assert rep["seconds_behind_source"] is None
    assert "io error 1045" in res["summary"]


def test_primary_down_is_a_finding_when_asked_and_a_clear_failure_by_default(lab, healed, quiet_traffic):
    lab.break_fault("db-primary-down")
    res = both(lab, fail_on_unreachable=False)
    assert not res["failed"], res["msg"]
    assert res["unreachable_servers"] == ["primary"] and res["replicas"] == ["replica"]
    down = res["servers"]["primary"]
    assert down["reachable"] is False and down["timed_out"] is False  # refused: down, not hung
    assert "cannot connect: is the server running" in down["error"]
    assert res["timed_out_servers"] == []
    rep = res["servers"]["replica"]["replication"]
    assert rep["io_thread"] == "connecting" and rep["sql_thread"] == "running"
    assert rep["relay_log_applied"] is True and rep["seconds_behind_source"] is None

    res = run_module("mysql_replication_info", login(lab, "db-primary"))
    assert res["failed"]
    assert f"127.0.0.1:{lab.cfg.ports['db-primary']}: cannot connect" in res["msg"]
    assert "Traceback" not in str(res)


def test_an_unnamed_server_that_does_not_answer_is_named_once(lab):
    """The error already names the address: the message does not say it twice."""
    res = run_module(
        "mysql_replication_info",
        dict(login(lab, "db-replica"), servers=[{"login_host": "127.0.0.1", "login_port": 1}], connect_timeout=2),
    )
    assert res["failed"]
    assert res["msg"].count("127.0.0.1:1") == 1, res["msg"]


def test_a_frozen_primary_is_named_timed_out_and_the_task_ends_by_its_deadline(lab, healed):
    """The lab's primary frozen as behind a partition: it accepts the TCP connection and never greets.
    A 30 s connect timeout is cut to the task's deadline; the primary is unreachable and timed out
    (maybe alive), the replica is read as usual."""
    lab.break_fault("db-primary-partitioned")
    res = both(lab, fail_on_unreachable=False, connect_timeout=30, deadline=3)
    assert not res["failed"], res["msg"]
    frozen = res["servers"]["primary"]
    assert frozen["reachable"] is False and frozen["timed_out"] is True and frozen["timed_out_after"] > 0
    assert frozen["error"].startswith(f"127.0.0.1:{lab.cfg.ports['db-primary']}: not answering (timed out after")
    assert res["timed_out_servers"] == ["primary"] and res["unreachable_servers"] == ["primary"]
    assert res["servers"]["replica"]["reachable"] and res["replicas"] == ["replica"]
    assert "primary: 127.0.0.1:" in res["msg"] and "not answering (timed out after" in res["msg"]

    res = run_module("mysql_replication_info", dict(login(lab, "db-primary"), deadline=3))  # fail_on_unreachable
    assert res["failed"] and "not answering (timed out after" in res["msg"]


def test_a_server_that_freezes_after_the_login_times_out_within_the_deadline(lab, healed):
    """Reads honour the step's deadline too: a primary frozen between the login and its statements
    makes the next statement give up when the deadline is spent, as a timeout, not a refusal."""
    from ansible_collections.incident.response.plugins.module_utils.common import Deadline
    from ansible_collections.incident.response.plugins.module_utils.mysql_replication import (
        Server,
        StatementFailure,
    )

    server = Server(dict(login(lab, "db-primary"), login_unix_socket=None), deadline=Deadline(3))
    try:
        lab.break_fault("db-primary-partitioned")
        with pytest.raises(StatementFailure) as failure:
            server.state()
    finally:
        server.close()
    assert failure.value.timed_out is True
    assert "not answering (timed out after" in failure.value.msg and "while running" in failure.value.msg


def test_bad_input_fails_with_a_clear_message(lab):
    bad_password = dict(login(lab, "db-replica"), login_password="wrong-password")
    res = run_module("mysql_replication_info", bad_password)
    assert res["failed"] and "access denied: check login_user and login_password" in res["msg"]

    res = run_module(
        "mysql_replication_info",
        dict(login(lab, "db-primary"), servers=[dict(name="a", login_port=1), dict(name="b", login_host="h")]),
    )
    assert res["failed"] and "servers entry a: set login_host or login_unix_socket" in res["msg"]

    one = dict(login_host="127.0.0.1", login_port=lab.cfg.ports["db-primary"])
    res = run_module("mysql_replication_info", dict(login(lab, "db-primary"), servers=[dict(one, name="x")] * 2))
    assert res["failed"] and "used more than once: x" in res["msg"]

    res = run_module("mysql_replication_info", dict(login(lab, "db-primary"), deadline=0))
    assert res["failed"] and "deadline must be a positive number of seconds" in res["msg"]

    res = run_module("mysql_replication_info", dict(login(lab, "db-primary"), login_port="not-a-port"))
    assert res["failed"] and "login_port" in res["msg"] and "Traceback" not in res["msg"]
    assert_no_secrets(lab, res)


def test_connections_share_one_tls_context_that_verifies_what_pymysql_s_would_without_a_ca_store(lab):
    """Without TLS options pymysql builds, per connection, a context that verifies nothing and still loads every CA
    certificate; the collection's connections share one context per process with the same settings and no CA
    store (which a context that verifies nothing never reads)."""
    import ssl

    import pymysql

    from ansible_collections.incident.response.plugins.module_utils import mysql

    theirs = pymysql.connections.Connection._create_ssl_ctx(None, {})
    ours = mysql.unverified_tls_context()
    for attr in ("protocol", "verify_mode", "check_hostname", "options", "verify_flags", "minimum_version"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert ours.verify_mode == ssl.CERT_NONE and ours.cert_store_stats()["x509_ca"] == 0
    db = login(lab, "db-primary")
    first, second = mysql.connect(db, timeout=5), mysql.connect(db, timeout=5)
    try:
        assert first.ctx is second.ctx
        assert first.ctx.verify_mode == ssl.CERT_NONE and first.ctx.cert_store_stats()["x509_ca"] == 0
    finally:
        first.close()
        second.close()
