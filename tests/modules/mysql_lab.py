"""Helpers for the MySQL module tests: logins to the lab's pair, direct SQL, secret checks."""

from __future__ import annotations

import json

import pymysql

from incidentlab import mariadb
from incidentlab.config import DB_USERS, HOST
from support import db, scalar


def login(lab, name: str, role: str = "admin") -> dict:
    """Module login options for one lab database."""
    return dict(
        login_host=HOST,
        login_port=lab.cfg.ports[name],
        login_user=DB_USERS[role],
        login_password=lab.secrets()[role],
    )


def replication_from(lab, source: str, password: str | None = None) -> dict:
    return dict(
        host=HOST,
        port=lab.cfg.ports[source],
        user=DB_USERS["replication"],
        password=lab.secrets()["replication"] if password is None else password,
        connect_retry=1,
    )


def assert_no_secrets(lab, *results: dict) -> None:
    text = json.dumps(results, default=str)
    for role, password in lab.secrets().items():
        assert password not in text, f"the {role} password leaked into a module result"


def admin_value(lab, name: str, sql: str, args=None):
    with db(lab, name, role="admin", database=None) as conn:
        return scalar(conn, sql, args)


def replica_status(lab, name: str) -> dict | None:
    with mariadb.admin(lab.cfg, name, lab.secrets()) as conn:
        return mariadb.replica_status(conn)


def app_insert(lab, name: str, source: str) -> None:
    """An application write (shop_app: read_only stops it)."""
    with db(lab, name) as conn:
        conn.cursor().execute("INSERT INTO heartbeat (source) VALUES (%s)", (source,))


def app_write_refused(lab, name: str) -> bool:
    try:
        app_insert(lab, name, "must-be-refused")
    except pymysql.err.OperationalError as exc:
        return exc.args[0] == 1290  # read_only
    return False


def count(lab, name: str, sql: str, args=None) -> int:
    with db(lab, name) as conn:
        return scalar(conn, sql, args)


def restart_writable(lab, name: str) -> None:
    """Bring a killed server back as it was (writable): the dangerous real case, no fence on start."""
    mariadb.start(lab.cfg, lab.procs, name, fresh=False)
    mariadb.wait_ready(lab.cfg, lab.procs, name, lab.secrets()["root"])
