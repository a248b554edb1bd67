# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replication state and changes on one server, for mysql_replication_info, mysql_promote and mysql_fence.

A :class:`Server` is one login. Every statement it sends comes from the flavour table
(:mod:`mysql_flavors`) by name; every statement that changes something is recorded, as
text without secrets, so a module can return what it did (or, in check mode, would do).
"""

from __future__ import annotations

import contextlib
import time

from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure, timed_out_text
from ansible_collections.incident.response.plugins.module_utils.mysql import (
    ConnectFailure,
    bound_io,
    connect,
    describe_target,
    error_code,
    explain,
    is_timeout,
)
from ansible_collections.incident.response.plugins.module_utils.mysql_flavors import (
    DETECT_SQL,
    MINIMUM_VERSION,
    Flavor,
    UnsupportedStatement,
    gtid_missing,
    is_client_session,
    normalise_state,
)

try:
    import pymysql
    from pymysql.converters import escape_string
except ImportError:  # reported by require_pymysql() before anything here runs
    pymysql = None

SECRET_MASK = "'********'"
POLL_INTERVAL = 0.1


def _literal(value):
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + escape_string(str(value)) + "'"


def display_sql(sql, args=None, secret=()):
    """The statement as it would run, with the ``secret`` parameters masked."""
    if not args:
        return sql
    return sql % {key: (SECRET_MASK if key in secret else _literal(value)) for key, value in args.items()}


class StatementFailure(ModuleFailure):
    """A statement failed; ``code`` is the server's error number; ``timed_out`` when no answer came in time."""

    def __init__(self, msg, code=None, timed_out=False, **result):
        super().__init__(msg, **result)
        self.code = code
        self.timed_out = timed_out


class Server:
    """One logged-in MySQL/MariaDB server; statements by name through its flavour.

    With ``deadline`` (a common.Deadline for the whole step), the connection and every statement
    wait at most what is left of it.
    """

    def __init__(self, params, name=None, deadline=None):
        self.params = params
        self.address = describe_target(params)
        self.name = name or self.address
        self.deadline = deadline
        self.started = time.monotonic()
        self.conn = connect(params, deadline=deadline)
        self.done = []  # statements that changed something, secrets masked
        try:
            row = self._query(DETECT_SQL)[0]
            self.flavor = Flavor.detect(row["version"], row.get("version_comment") or "")
        except ValueError as exc:
            self.close()
            raise ModuleFailure(f"{self.address}: {exc}") from None
        if not self.flavor.supported:
            self.close()
            minimum = ".".join(str(p) for p in MINIMUM_VERSION[self.flavor.name])
            raise ModuleFailure(
                f"{self.address} runs {self.flavor.label}; these modules support {self.flavor.name} >= {minimum}"
            )

    # -- plumbing -----------------------------------------------------------
    def _query(self, sql, args=None, shown=None):
        if not bound_io(self.conn, self.deadline):
            self.close()
            raise StatementFailure(
                f"{self.address}: {timed_out_text(time.monotonic() - self.started)}: the step's deadline was spent "
                f"before: {shown or sql}",
                timed_out=True,
                target=self.address,
                statements_done=list(self.done),
            )
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        except pymysql.MySQLError as exc:
            if is_timeout(exc):
                raise StatementFailure(
                    f"{self.address}: {timed_out_text(time.monotonic() - self.started)} while running: {shown or sql}",
                    code=error_code(exc),
                    timed_out=True,
                    target=self.address,
                    statements_done=list(self.done),
                ) from None
            raise StatementFailure(
                f"{explain(exc, self.params)} while running: {shown or sql}",
                code=error_code(exc),
                target=self.address,
                statements_done=list(self.done),
            ) from None

    def sql(self, name, **keywords):
        try:
            return self.flavor.sql(name, **keywords)
        except UnsupportedStatement as exc:
            raise ModuleFailure(f"{self.address}: {exc}") from None

    def rows(self, name, args=None, **keywords):
        """Rows of a read-only statement."""
        return self._query(self.sql(name, **keywords), args)

    def plan(self, name, args=None, secret=(), **keywords):
        """The text of a changing statement, as it would run (secrets masked)."""
        return display_sql(self.sql(name, **keywords), args, secret)

    def change(self, name, args=None, secret=(), **keywords):
        """Run a changing statement and record it."""
        sql = self.sql(name, **keywords)
        shown = display_sql(sql, args, secret)
        self._query(sql, args, shown=shown)
        self.done.append(shown)
        return shown

    def close(self):
        with contextlib.suppress(Exception):  # already gone: nothing to close
            self.conn.close()

    # -- state --------------------------------------------------------------
    def variables(self):
        return self.rows("variables")[0]

    def state(self, processlist=False):
        """Normalised replication state (see mysql_replication_info's RETURN)."""
        variables = self.variables()
        replica_rows = self.rows("replica_status")
        binlog_rows = self.rows("binlog_status") if _truthy(variables.get("log_bin")) else []
        host_rows = self.rows("replica_hosts")
        proc_rows = self.rows("processlist") if processlist else None
        state = normalise_state(
            self.flavor, variables, replica_rows, binlog_rows[0] if binlog_rows else None, host_rows, proc_rows
        )
        state["server"]["address"] = self.address
        state["server"]["connection_id"] = variables.get("connection_id")
        return state

    def client_sessions(self, exclude_users=()):
        """Sessions that could still write: every client except us, server threads and replicas' binlog dumps."""
        own = self.variables().get("connection_id")
        procs = self.state(processlist=True)["processlist"]
        return [p for p in procs if is_client_session(p, own) and p["user"] not in exclude_users]


def _truthy(value):
    if isinstance(value, str):
        return value.upper() in ("1", "ON")
    return bool(value)


def fenced(state):
    """Writes from ordinary accounts are refused: super_read_only where it exists, else read_only."""
    if state["super_read_only"] is not None:
        return bool(state["super_read_only"])
    return bool(state["read_only"])


def open_server(params, name=None):
    """(Server, None) or (None, ConnectFailure) for a server that may be down."""
    try:
        return Server(params, name), None
    except ConnectFailure as exc:
        return None, exc


def source_of(state):
    rep = state.get("replication")
    return f"{rep['source_host']}:{rep['source_port']}" if rep else None


def wait_replica(server, timeout, target_gtid=None):
    """Poll until the replica applied everything it received (and ``target_gtid`` if given), or give up.

    Gives up at once when waiting cannot help: the server is no replica, its SQL thread does
    not run, or the target is still missing and the IO thread is stopped (nothing more can
    arrive; a thread that is still connecting may recover, so that one is waited for).
    Returns (state, seconds waited, done).
    """
    start = time.monotonic()
    while True:
        state = server.state()
        rep = state["replication"]
        applied = bool(rep) and rep["relay_log_applied"]
        done = applied
        if applied and target_gtid:
            done = gtid_missing(server.flavor.name, state["gtid"]["executed"], target_gtid) == 0
        waited = time.monotonic() - start
        hopeless = not rep or rep["sql_thread"] != "running" or (applied and rep["io_thread"] == "stopped")
        if done or hopeless or waited >= timeout:
            return state, round(waited, 3), done
        time.sleep(min(POLL_INTERVAL, max(0.0, timeout - waited)))


__all__ = [
    "ConnectFailure",
    "Server",
    "StatementFailure",
    "display_sql",
    "error_code",
    "fenced",
    "open_server",
    "source_of",
    "wait_replica",
]
