"""The lab's database pair behaves like the platform's: GTID replication, read-only replica, least privilege."""

from __future__ import annotations

import json
import stat
import uuid

import pymysql
import pytest

from kubeutil import http
from support import db, incidentctl, scalar, wait_for


def test_pair_replicates_a_row(lab):
    marker = f"repl-{uuid.uuid4().hex[:8]}"
    with db(lab, "db-primary") as conn:
        scalar(conn, "SELECT 1")
        conn.cursor().execute("INSERT INTO users (name, email) VALUES (%s, 'r@example.com')", (marker,))
    with db(lab, "db-replica") as conn:
        wait_for(lambda: scalar(conn, "SELECT COUNT(*) FROM users WHERE name=%s", (marker,)) == 1, 30, "row on replica")


def test_replica_refuses_application_writes(lab):
    with db(lab, "db-replica") as conn, pytest.raises(pymysql.err.OperationalError) as exc:
        conn.cursor().execute("INSERT INTO users (name, email) VALUES ('x', 'x@example.com')")
    assert exc.value.args[0] == 1290  # running with --read-only


def test_seeded_schema_has_rows(lab):
    with db(lab, "db-replica") as conn:
        for table in ("users", "orders", "payments", "inventory", "notifications"):
            assert scalar(conn, f"SELECT COUNT(*) FROM {table}") > 0, table


def test_application_account_has_only_data_privileges(lab):
    with db(lab, "db-primary") as conn:
        with pytest.raises(pymysql.err.OperationalError) as exc:
            conn.cursor().execute("CREATE DATABASE nope")
        assert exc.value.args[0] == 1044  # access denied
        with pytest.raises(pymysql.err.OperationalError):
            conn.cursor().execute("SELECT * FROM mysql.user")


MINE = "SELECT COUNT(*) FROM orders WHERE status = 'KILL-TEST'"


def test_killed_primary_leaves_replica_data_intact(lab, healed):
    # The traffic generator writes orders all the time: count only this test's rows.
    with db(lab, "db-primary") as conn:
        cur = conn.cursor()
        cur.executemany(
            "INSERT INTO orders (user_id, total, status) VALUES (1, %s, 'KILL-TEST')", [(i,) for i in range(50)]
        )
        written = scalar(conn, MINE)
    with db(lab, "db-replica") as conn:
        wait_for(lambda: scalar(conn, MINE) == written, 30, "replica caught up")
    lab.break_fault("db-primary-down")
    with pytest.raises(pymysql.err.OperationalError):
        db(lab, "db-primary")
    with db(lab, "db-replica") as conn:
        assert scalar(conn, MINE) == written
    lab.heal("db-primary-down")
    with db(lab, "db-primary") as conn:
        assert scalar(conn, MINE) == written


def test_passwords_are_private_and_never_in_status(lab):
    mode = stat.S_IMODE(lab.cfg.secrets_file.stat().st_mode)
    assert mode == 0o600
    res = incidentctl("lab", "status", "--json", "--lab-dir", str(lab.cfg.lab_dir))
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["healthy"] is True
    assert {c["name"] for c in doc["components"]} >= {"db-primary", "db-replica", "prometheus", "alertmanager"}
    for password in lab.secrets().values():
        assert password not in res.stdout


def test_reset_rebuilds_the_original_pair_and_the_services_use_it_at_once(lab):
    with db(lab, "db-primary") as conn:
        conn.cursor().execute("INSERT INTO users (name, email) VALUES ('temp', 't@example.com')")
    lab.reset_databases()
    with db(lab, "db-primary") as conn:
        assert scalar(conn, "SELECT COUNT(*) FROM users WHERE name='temp'") == 0
    with db(lab, "db-replica") as conn:
        assert scalar(conn, "SELECT @@read_only") == 1
    # The cluster's services keep the database's address: they reconnect, and reset returns once they have.
    for region in ("primary", "secondary"):
        code, body, _ = http(lab.cfg.url(f"lb-{region}", "/order-service/api/records"), method="POST")
        assert code == 201, (region, code, body)
        with db(lab, "db-primary") as conn:
            assert scalar(conn, "SELECT COUNT(*) FROM orders WHERE id=%s", (body["id"],)) == 1
