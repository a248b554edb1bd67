"""Fault injection: real failures of real components, and how each one is healed.

Data tier:

* ``db-primary-down``   SIGKILL of the primary's server. Heal restarts it: if the replica
  is still a replica, the old primary simply comes back and replication resumes; if the
  replica was promoted meanwhile, the old primary comes back read-only (never a second
  writer) and rejoins as a replica of the promoted one by GTID; if it holds transactions
  the new primary never received, it is rebuilt from the new primary's binlog.
* ``db-primary-partitioned`` SIGSTOP of the primary's server: it accepts connections and never
  answers, as behind a network partition. The replica's IO thread keeps its connection until
  ``slave_net_timeout`` (60 s), so a promotion gate can see that the primary may be alive. Heal
  sends SIGCONT; if the replica was promoted meanwhile, the old primary is restarted read-only
  and rejoins as a replica (as after ``db-primary-down``), never left as a second writer.
* ``replica-lag``        the replica's SQL thread stops while the primary takes writes.
* ``replication-broken`` the replication account's password changes on the primary, so the
  replica's IO thread cannot connect (Last_IO_Error: access denied).
"""

from __future__ import annotations

import secrets as pysecrets
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pymysql

from . import mariadb
from .config import DB_USERS
from .errors import LabError, LabInputError

if TYPE_CHECKING:
    from .lab import Lab


@dataclass(frozen=True)
class Fault:
    name: str
    summary: str
    inject: Callable[[Lab, str | None], str]
    heal: Callable[[Lab, str | None], str]
    arg: str | None = None  # name of the argument the fault needs, e.g. "SERVICE"
    choices: tuple[str, ...] = ()

    def label(self, arg: str | None) -> str:
        return f"{self.name} {arg}" if arg else self.name


FAULTS: dict[str, Fault] = {}


def register(fault: Fault) -> Fault:
    FAULTS[fault.name] = fault
    return fault


def get_fault(name: str, arg: str | None = None, require_arg: bool = True) -> Fault:
    fault = FAULTS.get(name)
    if fault is None:
        raise LabInputError(f"unknown fault {name!r}; known faults: {', '.join(sorted(FAULTS))}")
    if fault.arg and require_arg and not arg:
        raise LabInputError(
            f"fault {name} needs {fault.arg}" + (f" (one of {', '.join(fault.choices)})" if fault.choices else "")
        )
    if not fault.arg and arg:
        raise LabInputError(f"fault {name} takes no argument (got {arg!r})")
    if arg and fault.choices and arg not in fault.choices:
        raise LabInputError(f"{fault.arg} must be one of {', '.join(fault.choices)} (got {arg!r})")
    return fault


# -- roles ---------------------------------------------------------------------
def roles(lab: Lab) -> tuple[str | None, str | None]:
    """(primary, replica) by what the servers say, not by their names: a promotion swaps them."""
    secrets = lab.secrets()
    primary = replica = None
    for name in mariadb.DB_NODES:
        try:
            with mariadb.admin(lab.cfg, name, secrets, timeout=1) as conn:
                is_replica = mariadb.replica_status(conn) is not None
        except pymysql.MySQLError:
            continue
        if is_replica:
            replica = name
        else:
            primary = name
    return primary, replica


def _need_pair(lab: Lab) -> tuple[str, str]:
    primary, replica = roles(lab)
    if not (primary and replica):
        raise LabInputError("this fault needs a running primary and replica; run `incidentctl lab heal` first")
    return primary, replica


# -- db-primary-down -------------------------------------------------------------
def _kill_primary(lab: Lab, _: str | None) -> str:
    rec = lab.procs.get("db-primary")
    if not lab.procs.kill("db-primary", signal.SIGKILL):
        raise LabInputError("db-primary is not running: nothing to kill")
    return f"db-primary (pid {rec.pid}) killed with SIGKILL"


def restore_db(lab: Lab, name: str) -> str:
    """Bring a stopped database back without ever creating a second writer."""
    cfg, secrets = lab.cfg, lab.secrets()
    if lab.procs.get(name) and lab.procs.get(name).running:
        return f"{name} is running"
    other = next(n for n in mariadb.DB_NODES if n != name)
    try:
        with mariadb.admin(cfg, other, secrets, timeout=1) as conn:
            other_is_primary = mariadb.replica_status(conn) is None
    except pymysql.MySQLError as exc:
        raise LabError(f"cannot restore {name}: {other} is not answering either ({exc.args[-1]})") from None
    if not other_is_primary:
        mariadb.start(cfg, lab.procs, name, fresh=False)
        mariadb.wait_ready(cfg, lab.procs, name, secrets["root"])
        mariadb.wait_caught_up(cfg, secrets, other, name)
        return f"{name} restarted; {other} replicates from it again"
    # The other side was promoted: come back fenced and follow it.
    mariadb.start(cfg, lab.procs, name, fresh=False, read_only=True)
    mariadb.wait_ready(cfg, lab.procs, name, secrets["root"])
    with mariadb.admin(cfg, name, secrets) as conn:
        mariadb.execute(conn, mariadb.replicate_from(cfg.ports[other], secrets, use_gtid="current_pos"))
    try:
        mariadb.wait_caught_up(cfg, secrets, name, other, timeout=5)
        return f"{name} restarted read-only and rejoined as a replica of {other} (the promoted primary)"
    except LabError:
        pass
    # Diverged (it had writes the promoted side never received): rebuild from the new primary.
    lab.procs.stop(name)
    mariadb.start(cfg, lab.procs, name, fresh=True, read_only=True)
    mariadb.wait_ready(cfg, lab.procs, name, None)
    with mariadb.connect(cfg, name, root_password=None) as conn:
        mariadb.execute(conn, mariadb.account_statements(secrets))
    with mariadb.admin(cfg, name, secrets) as conn:
        mariadb.execute(conn, mariadb.replicate_from(cfg.ports[other], secrets))
    mariadb.wait_caught_up(cfg, secrets, name, other)
    return f"{name} had diverged from {other}; rebuilt read-only as a replica of {other} (the promoted primary)"


register(
    Fault(
        "db-primary-down",
        "SIGKILL the primary database server",
        _kill_primary,
        lambda lab, _: restore_db(lab, "db-primary"),
    )
)


# -- db-primary-partitioned -----------------------------------------------------------
def _freeze_primary(lab: Lab, _: str | None) -> str:
    rec = lab.procs.get("db-primary")
    if not lab.procs.kill("db-primary", signal.SIGSTOP):
        raise LabInputError("db-primary is not running: nothing to partition")
    return f"db-primary (pid {rec.pid}) frozen with SIGSTOP: it accepts connections and never answers"


def _thaw_primary(lab: Lab, _: str | None) -> str:
    if not lab.procs.kill("db-primary", signal.SIGCONT):
        return restore_db(lab, "db-primary")
    try:
        with mariadb.admin(lab.cfg, "db-replica", lab.secrets(), timeout=2) as conn:
            promoted = mariadb.replica_status(conn) is None
    except pymysql.MySQLError:
        promoted = False
    if not promoted:
        return "db-primary answers again; db-replica still replicates from it"
    # Two writable primaries now: the old one goes down at once and comes back fenced, as a replica.
    lab.procs.stop("db-primary")
    return "db-primary answered again beside the promoted db-replica: " + restore_db(lab, "db-primary")


register(
    Fault(
        "db-primary-partitioned",
        "freeze the primary database server (SIGSTOP): connections hang, as behind a network partition",
        _freeze_primary,
        _thaw_primary,
    )
)


# -- replica-lag ---------------------------------------------------------------------
LAG_WRITES = 25


def _stop_sql_thread(lab: Lab, _: str | None) -> str:
    primary, replica = _need_pair(lab)
    secrets = lab.secrets()
    with mariadb.admin(lab.cfg, replica, secrets) as conn:
        mariadb.execute(conn, "STOP SLAVE SQL_THREAD")
    with mariadb.admin(lab.cfg, primary, secrets) as conn:
        for i in range(LAG_WRITES):
            mariadb.execute(conn, "INSERT INTO shop.heartbeat (source) VALUES (%s)", (f"replica-lag-{i}",))
    return f"{replica}'s SQL thread stopped; {LAG_WRITES} transactions written on {primary} since"


def _start_sql_thread(lab: Lab, _: str | None) -> str:
    primary, replica = _need_pair(lab)
    secrets = lab.secrets()
    with mariadb.admin(lab.cfg, replica, secrets) as conn:
        mariadb.execute(conn, "START SLAVE SQL_THREAD")
    mariadb.wait_caught_up(lab.cfg, secrets, replica, primary)
    return f"{replica}'s SQL thread running again and caught up with {primary}"


register(
    Fault(
        "replica-lag",
        "stop the replica's SQL thread while the primary takes writes",
        _stop_sql_thread,
        _start_sql_thread,
    )
)


# -- replication-broken --------------------------------------------------------------
def _set_repl_password(lab: Lab, primary: str, password: str) -> None:
    pw = pymysql.converters.escape_string(password)
    with mariadb.admin(lab.cfg, primary, lab.secrets()) as conn:
        mariadb.execute(
            conn,
            ["SET SESSION sql_log_bin=0", f"ALTER USER '{DB_USERS['replication']}'@'%' IDENTIFIED BY '{pw}'"],
        )


def _restart_io_thread(lab: Lab, replica: str) -> None:
    with mariadb.admin(lab.cfg, replica, lab.secrets()) as conn:
        mariadb.execute(conn, ["STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD"])


def _break_replication(lab: Lab, _: str | None) -> str:
    primary, replica = _need_pair(lab)
    _set_repl_password(lab, primary, pysecrets.token_urlsafe(18))
    _restart_io_thread(lab, replica)
    return f"replication account rejected by {primary}: {replica}'s IO thread cannot connect"


def _fix_replication(lab: Lab, _: str | None) -> str:
    primary, replica = _need_pair(lab)
    _set_repl_password(lab, primary, lab.secrets()["replication"])
    _restart_io_thread(lab, replica)
    mariadb.wait_caught_up(lab.cfg, lab.secrets(), replica, primary)
    return f"replication account restored; {replica} connected and caught up with {primary}"


register(
    Fault("replication-broken", "make the replica's IO thread fail to connect", _break_replication, _fix_replication)
)

# The cluster's faults (service-down, service-slow, bad-config, region-down) live with the cluster.
from .kube.faults import register_cluster_faults  # noqa: E402 - registered after Fault and register exist

register_cluster_faults(register, Fault)
