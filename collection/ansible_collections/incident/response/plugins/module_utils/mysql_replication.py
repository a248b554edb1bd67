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

from ansible_collections.incident.response.plugins.module_utils.common import Deadline, ModuleFailure, timed_out_text
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


# Replication errors an operator can act on.
IO_ERROR_HINTS = {
    1236: "the source cannot serve this server's GTID position: this server has transactions the source never "
    "received (it diverged), or the source purged binary logs it needs. Rebuild it from the source (backup/clone)",
    1045: "the source rejects the replication login: check {option}.user and {option}.password",
    2003: "this server cannot reach the source: check {option}.host and port from this server's network",
    2005: "this server cannot resolve {option}.host",
    1593: "source and replica have the same server_id (or server_uuid): {option} points at this server itself?",
}


def replication_matches(server, state, want):
    """Already replicating from the wanted source, the way we would set it up, with both threads running."""
    rep = state["replication"]
    if not rep:
        return False
    gtid_ok = rep["using_gtid"].lower() == want["use_gtid"] if server.flavor.is_mariadb else rep["using_gtid"] != "No"
    return (
        rep["source_host"] == want["host"]
        and rep["source_port"] == want["port"]
        and rep["source_user"] == want["user"]
        and gtid_ok
        and rep["io_thread"] == "running"
        and rep["sql_thread"] == "running"
    )


def repoint_plan(server, state, want, keep_slave_pos=False):
    """(statement name, args, secret keys, keywords) to make the server replicate from ``want``.

    MariaDB with ``use_gtid=slave_pos`` first sets gtid_slave_pos from everything the server has (an old
    primary's own writes included); ``keep_slave_pos`` keeps it as the SQL thread left it (a replica that
    changes source: what it applied is its position, a write of its own is not)."""
    plan = []
    if state["replication"]:
        plan.append(("stop_replica", None, (), {}))
    keywords = {}
    if server.flavor.is_mariadb:
        if want["use_gtid"] == "slave_pos" and not keep_slave_pos:
            plan.append(("gtid_slave_pos_from_current", None, (), {}))
        keywords = dict(use_gtid=want["use_gtid"])
    args = dict(
        host=want["host"],
        port=want["port"],
        user=want["user"],
        password=want["password"] or "",
        connect_retry=want["connect_retry"],
    )
    plan.append(("change_source", args, ("password",), keywords))
    plan.append(("start_replica", None, (), {}))
    return plan


def wait_threads(server, timeout):
    """Until both threads run (seen twice in a row), a thread reports an error, or the time is up."""
    deadline = Deadline(timeout)
    seen_running = 0
    while True:
        state = server.state()
        rep = state["replication"]
        errors = [e for e in (rep["last_io_error"], rep["last_sql_error"]) if e and e["errno"]]
        running = rep["io_thread"] == "running" and rep["sql_thread"] == "running" and not errors
        seen_running = seen_running + 1 if running else 0
        if seen_running >= 2 or (errors and rep["io_thread"] != "running") or deadline.expired:
            return state, seen_running >= 2
        time.sleep(max(POLL_INTERVAL, 0.2 if running else POLL_INTERVAL))


def explain_replication(rep, option="replicate_from"):
    """The replication errors of a state, each with what to do (``option``: the module option that set the source)."""
    parts = []
    for kind in ("io", "sql"):
        err = rep[f"last_{kind}_error"]
        if err and err["errno"]:
            hint = IO_ERROR_HINTS.get(err["errno"], "").format(option=option) if kind == "io" else None
            parts.append(f"{kind} thread error {err['errno']}: {err['message']}" + (f" -> {hint}" if hint else ""))
    if not parts:
        parts.append(f"io={rep['io_thread']}, sql={rep['sql_thread']}")
    return "; ".join(parts)


def repoint_sibling(sibling, target_gtid, want, timeout, check=False, errant_gtids=()):
    """Make a replica of the lost primary follow the new one by GTID, once nothing it holds can be lost.

    It first applies what it received (waiting up to ``timeout``). A sibling that cannot finish that (a
    delay on purpose, a stopped SQL thread) is re-pointed only when the new primary already has everything
    it received (``target_gtid``, the new primary's GTIDs): it fetches them again from there by GTID, none
    lost and none applied twice. Then the source changes (MariaDB keeps its gtid_slave_pos: what it
    applied, never a write of its own), and it is verified: both threads run, it has received (a delayed
    sibling) or applied everything the new primary had, and its lag is 0. A sibling that cannot follow is
    reported with the reason, never forced - so is one holding ``errant_gtids`` (transactions written on it
    alone: the new primary's next writes would collide with them). Returns a dict (``followed``, ``changed``,
    ``statements``, ``detail``...); raises nothing for the sibling's own problems.
    """
    out = dict(address=sibling.address, followed=False, changed=False, statements=[], waited_seconds=0.0)
    deadline = Deadline(timeout)
    try:
        before = sibling.state()
        rep = before["replication"]
        out.update(source_before=source_of(before), sql_delay=(rep or {}).get("sql_delay") or 0)
        if not rep:
            out["detail"] = f"not a replica ({before['summary']}): nothing to re-point"
            return out
        if errant_gtids:
            out["detail"] = (
                f"cannot follow: it holds transactions written on it alone ({', '.join(errant_gtids)}); the new "
                "primary's history does not have them, so replicating from it would break on them or keep them: "
                "rebuild it from the new primary"
            )
            return out
        if replication_matches(sibling, before, want):
            out.update(followed=True, source_after=source_of(before))
            state, done = _caught_up(sibling, target_gtid, deadline, out["sql_delay"])
            out["detail"] = "already follows the new primary" + ("" if done else ", but " + _behind(state, target_gtid))
            out["followed"] = done
            return out
        # Apply what it received first, unless it is delayed on purpose: then the new primary must have it all.
        received = rep["gtid_received"] or ""
        primary_has_all = gtid_missing(sibling.flavor.name, target_gtid or "", received) == 0 if received else True
        applied = rep["relay_log_applied"]
        if not applied and not out["sql_delay"] and rep["sql_thread"] == "running":
            state, out["waited_seconds"], applied = wait_replica(sibling, deadline.remaining())
        if not applied and not primary_has_all:
            pending = rep["pending_transactions"]
            out["detail"] = (
                f"cannot follow: {pending if pending is not None else 'some'} received transaction(s) are not applied "
                f"({explain_replication(rep, 'replication')}) and the new primary lacks some of them ({received}): "
                "re-pointing would lose them"
            )
            return out
        plan = repoint_plan(sibling, before, want, keep_slave_pos=True)
        if check:
            out["statements"] = [sibling.plan(name, args, secret, **kw) for name, args, secret, kw in plan]
            out.update(changed=True, followed=True, source_after=f"{want['host']}:{want['port']}")
            out["detail"] = (
                "check mode: would "
                + ("apply what it received, then " if not applied and not out["sql_delay"] else "")
                + f"replicate from {want['host']}:{want['port']} by GTID"
            )
            return out
        for name, args, secret, kw in plan:
            out["statements"].append(sibling.change(name, args, secret, **kw))
        out["changed"] = True
        state, running = wait_threads(sibling, deadline.remaining())
        out["source_after"] = source_of(state)
        if not running:
            out["detail"] = (
                f"re-pointed but not replicating: {explain_replication(state['replication'], 'replication')}"
            )
            return out
        state, done = _caught_up(sibling, target_gtid, deadline, out["sql_delay"])
        if not done and (state["replication"] or {}).get("last_sql_error"):
            out["detail"] = f"re-pointed but stopped: {explain_replication(state['replication'], 'replication')}"
            return out
        out["followed"] = done
        out["detail"] = (
            f"replicates from {out['source_after']}, " + _lag_text(state)
            if done
            else f"replicates from {out['source_after']}, but {_behind(state, target_gtid)}"
        )
        out["summary"] = state["summary"]
        return out
    except ModuleFailure as exc:
        out["detail"] = f"cannot follow: {exc.msg}"
        return out


def _caught_up(server, target_gtid, deadline, delayed):
    """Poll until it has received (a delayed sibling) or applied everything of ``target_gtid`` with 0 lag;
    give up at once when a replication thread stopped on an error (waiting cannot help)."""
    while True:
        state = server.state()
        rep = state["replication"] or {}
        have = rep.get("gtid_received") if delayed else state["gtid"]["executed"]
        done = bool(rep) and gtid_missing(server.flavor.name, have or "", target_gtid or "") == 0
        if done and not delayed:
            done = rep.get("seconds_behind_source") == 0 and rep.get("relay_log_applied")
        io_broken = rep.get("last_io_error") and rep.get("io_thread") != "running"
        if done or not rep or rep.get("last_sql_error") or io_broken or deadline.expired:
            return state, bool(done)
        time.sleep(min(POLL_INTERVAL, max(0.0, deadline.remaining())))


def _lag_text(state):
    rep = state["replication"] or {}
    if rep.get("sql_delay"):
        return f"has received everything, applies it {rep['sql_delay']} s later on purpose"
    return f"caught up, lag {rep.get('seconds_behind_source')}s"


def _behind(state, target_gtid):
    rep = state["replication"] or {}
    return (
        f"not caught up with {target_gtid} in time (applied {state['gtid']['executed'] or '-'}, "
        f"received {rep.get('gtid_received') or '-'}, lag {rep.get('seconds_behind_source')})"
    )


__all__ = [
    "IO_ERROR_HINTS",
    "ConnectFailure",
    "Server",
    "StatementFailure",
    "display_sql",
    "error_code",
    "explain_replication",
    "fenced",
    "open_server",
    "replication_matches",
    "repoint_plan",
    "repoint_sibling",
    "source_of",
    "wait_replica",
    "wait_threads",
]
