"""Fault injection: real failures of real components, and how each one is healed.

Data tier (each fault takes the database server it acts on, ``--server NAME``; by default the
default cluster's: db-primary for the primary's faults, the replica for the replica's):

* ``db-primary-down``   SIGKILL of the server. Heal restarts it: if no other server of its cluster
  was promoted, it simply comes back and its replicas resume; if one was promoted meanwhile, it
  comes back read-only (never a second writer) and rejoins as a replica of the promoted one by
  GTID; if it holds transactions the new primary never received, it is rebuilt from the new
  primary's binlog.
* ``db-primary-partitioned`` SIGSTOP of the server: it accepts connections and never answers, as
  behind a network partition. Its replicas' IO threads keep their connection until
  ``slave_net_timeout`` (60 s), so a promotion gate can see that the primary may be alive. Heal
  sends SIGCONT; if a replica was promoted meanwhile, the old primary is restarted read-only and
  rejoins as a replica (as after ``db-primary-down``), never left as a second writer.
* ``replica-lag``        the replica's SQL thread stops while the primary takes writes.
* ``replication-broken`` the replication account's password changes on the replica's primary, so
  the replica's IO thread cannot connect (Last_IO_Error: access denied).
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
    server: bool = False  # takes an optional database server (--server), checked against the lab's topology
    default_arg: str | None = None  # the argument is optional and means this when left out (region-down: primary)

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
    if fault.arg and require_arg and not arg and not fault.default_arg:
        raise LabInputError(
            f"fault {name} needs {fault.arg}" + (f" (one of {', '.join(fault.choices)})" if fault.choices else "")
        )
    if not fault.arg and not fault.server and arg:
        raise LabInputError(f"fault {name} takes no argument (got {arg!r})")
    if arg and fault.choices and arg not in fault.choices:
        raise LabInputError(f"{fault.arg} must be one of {', '.join(fault.choices)} (got {arg!r})")
    return fault


# -- roles ---------------------------------------------------------------------
def _is_replica(lab: Lab, name: str) -> bool | None:
    """Whether a server replicates from another (None: it does not answer)."""
    try:
        with mariadb.admin(lab.cfg, name, lab.secrets(), timeout=1) as conn:
            return mariadb.replica_status(conn) is not None
    except pymysql.MySQLError:
        return None


def cluster_roles(lab: Lab, server: str) -> tuple[str | None, list[str]]:
    """(primary, replicas) of a server's cluster by what the servers say, not by their names: a promotion swaps them."""
    primary, replicas = None, []
    for s in lab.topology.cluster_of(server).servers:
        is_replica = _is_replica(lab, s.name)
        if is_replica:
            replicas.append(s.name)
        elif is_replica is False:
            primary = s.name
    return primary, replicas


def _server(lab: Lab, server: str | None, default: str) -> str:
    name = server or default
    lab.topology.server(name)  # a clear error for a server the running topology does not have
    return name


def _replica_and_primary(lab: Lab, server: str | None) -> tuple[str, str]:
    """The replica a replica fault acts on (given, or the default cluster's first replica) and its primary."""
    primary, replicas = cluster_roles(lab, _server(lab, server, "db-primary"))
    replica = server if server else (replicas[0] if replicas else None)
    if not primary or not replica:
        raise LabInputError("this fault needs a running primary and replica; run `incidentctl lab heal` first")
    if replica not in replicas:
        raise LabInputError(f"{replica} is not a replica now (the primary of its cluster is {primary})")
    return primary, replica


# -- db-primary-down -------------------------------------------------------------
def _kill_primary(lab: Lab, server: str | None) -> str:
    name = _server(lab, server, "db-primary")
    rec = lab.procs.get(name)
    if not lab.procs.kill(name, signal.SIGKILL):
        raise LabInputError(f"{name} is not running: nothing to kill")
    return f"{name} (pid {rec.pid}) killed with SIGKILL"


def _delay(lab: Lab, name: str) -> int:
    return lab.topology.server(name).delay


def restore_db(lab: Lab, name: str) -> str:
    """Bring a stopped database back without ever creating a second writer."""
    cfg, secrets = lab.cfg, lab.secrets()
    if lab.procs.get(name) and lab.procs.get(name).running:
        return f"{name} is running"
    cluster = lab.topology.cluster_of(name)
    others = {s.name: _is_replica(lab, s.name) for s in cluster.servers if s.name != name}
    answering = [o for o, is_replica in others.items() if is_replica is not None]
    if not answering:
        raise LabError(f"cannot restore {name}: no other server of the {cluster.name} cluster answers")
    primary = next((o for o in answering if others[o] is False), None)
    if primary is None:
        # Nobody was promoted: it is still the primary, and its replicas resume.
        mariadb.start(cfg, lab.procs, name, fresh=False)
        mariadb.wait_ready(cfg, lab.procs, name, secrets["root"])
        for other in answering:
            mariadb.wait_caught_up(cfg, secrets, other, name, received=bool(_delay(lab, other)))
        return f"{name} restarted; {', '.join(answering)} replicate{'s' if len(answering) == 1 else ''} from it again"
    # Another server was promoted: come back fenced and follow it.
    delay = _delay(lab, name)
    mariadb.start(cfg, lab.procs, name, fresh=False, read_only=True)
    mariadb.wait_ready(cfg, lab.procs, name, secrets["root"])
    with mariadb.admin(cfg, name, secrets) as conn:
        mariadb.execute(conn, mariadb.replicate_from(cfg.ports[primary], secrets, use_gtid="current_pos", delay=delay))
    try:
        mariadb.wait_caught_up(cfg, secrets, name, primary, timeout=5, received=bool(delay))
        return f"{name} restarted read-only and rejoined as a replica of {primary} (the promoted primary)"
    except LabError:
        pass
    # Diverged (it had writes the promoted side never received): rebuild from the new primary.
    lab.procs.stop(name)
    mariadb.start(cfg, lab.procs, name, fresh=True, read_only=True)
    mariadb.wait_ready(cfg, lab.procs, name, None)
    with mariadb.connect(cfg, name, root_password=None) as conn:
        mariadb.execute(conn, mariadb.account_statements(secrets))
    with mariadb.admin(cfg, name, secrets) as conn:
        mariadb.execute(conn, mariadb.replicate_from(cfg.ports[primary], secrets, delay=delay))
    mariadb.wait_caught_up(cfg, secrets, name, primary, received=bool(delay))
    return f"{name} had diverged from {primary}; rebuilt read-only as a replica of {primary} (the promoted primary)"


register(
    Fault(
        "db-primary-down",
        "SIGKILL a primary database server (default db-primary)",
        _kill_primary,
        lambda lab, server: restore_db(lab, _server(lab, server, "db-primary")),
        server=True,
    )
)


# -- db-primary-partitioned -----------------------------------------------------------
def _freeze_primary(lab: Lab, server: str | None) -> str:
    name = _server(lab, server, "db-primary")
    rec = lab.procs.get(name)
    if not lab.procs.kill(name, signal.SIGSTOP):
        raise LabInputError(f"{name} is not running: nothing to partition")
    return f"{name} (pid {rec.pid}) frozen with SIGSTOP: it accepts connections and never answers"


def _thaw_primary(lab: Lab, server: str | None) -> str:
    name = _server(lab, server, "db-primary")
    if not lab.procs.kill(name, signal.SIGCONT):
        return restore_db(lab, name)
    others = [s.name for s in lab.topology.cluster_of(name).servers if s.name != name]
    promoted = [o for o in others if _is_replica(lab, o) is False]
    if not promoted:
        return f"{name} answers again; {', '.join(others)} still replicate{'s' if len(others) == 1 else ''} from it"
    # Two writable primaries now: the old one goes down at once and comes back fenced, as a replica.
    lab.procs.stop(name)
    return f"{name} answered again beside the promoted {promoted[0]}: " + restore_db(lab, name)


register(
    Fault(
        "db-primary-partitioned",
        "freeze a primary database server (SIGSTOP; default db-primary): connections hang, "
        "as behind a network partition",
        _freeze_primary,
        _thaw_primary,
        server=True,
    )
)


# -- replica-lag ---------------------------------------------------------------------
LAG_WRITES = 25


def _stop_sql_thread(lab: Lab, server: str | None) -> str:
    primary, replica = _replica_and_primary(lab, server)
    secrets = lab.secrets()
    with mariadb.admin(lab.cfg, replica, secrets) as conn:
        mariadb.execute(conn, "STOP SLAVE SQL_THREAD")
    with mariadb.admin(lab.cfg, primary, secrets) as conn:
        for i in range(LAG_WRITES):
            mariadb.execute(conn, "INSERT INTO shop.heartbeat (source) VALUES (%s)", (f"replica-lag-{i}",))
    return f"{replica}'s SQL thread stopped; {LAG_WRITES} transactions written on {primary} since"


def _start_sql_thread(lab: Lab, server: str | None) -> str:
    primary, replica = _replica_and_primary(lab, server)
    secrets = lab.secrets()
    with mariadb.admin(lab.cfg, replica, secrets) as conn:
        mariadb.execute(conn, "START SLAVE SQL_THREAD")
    mariadb.wait_caught_up(lab.cfg, secrets, replica, primary, received=bool(_delay(lab, replica)))
    return f"{replica}'s SQL thread running again and caught up with {primary}"


register(
    Fault(
        "replica-lag",
        "stop a replica's SQL thread while the primary takes writes (default: the replica)",
        _stop_sql_thread,
        _start_sql_thread,
        server=True,
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


def _break_replication(lab: Lab, server: str | None) -> str:
    primary, replica = _replica_and_primary(lab, server)
    _set_repl_password(lab, primary, pysecrets.token_urlsafe(18))
    _restart_io_thread(lab, replica)
    return f"replication account rejected by {primary}: {replica}'s IO thread cannot connect"


def _fix_replication(lab: Lab, server: str | None) -> str:
    primary, replica = _replica_and_primary(lab, server)
    _set_repl_password(lab, primary, lab.secrets()["replication"])
    _restart_io_thread(lab, replica)
    mariadb.wait_caught_up(lab.cfg, lab.secrets(), replica, primary, received=bool(_delay(lab, replica)))
    return f"replication account restored; {replica} connected and caught up with {primary}"


register(
    Fault(
        "replication-broken",
        "make a replica's IO thread fail to connect (default: the replica)",
        _break_replication,
        _fix_replication,
        server=True,
    )
)

# The cluster's faults (service-down, service-slow, bad-config, region-down) live with the cluster.
from .kube.faults import register_cluster_faults  # noqa: E402 - registered after Fault and register exist

register_cluster_faults(register, Fault)
