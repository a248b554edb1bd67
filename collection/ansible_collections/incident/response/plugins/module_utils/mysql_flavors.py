# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every replication statement the database modules send, spelled for each server flavour and version.

MySQL and MariaDB renamed their replication statements and result columns at different
versions (``SHOW SLAVE STATUS`` -> ``SHOW REPLICA STATUS``, ``SHOW MASTER STATUS`` ->
``SHOW BINARY LOG STATUS`` / ``SHOW BINLOG STATUS``, ``CHANGE MASTER`` -> ``CHANGE
REPLICATION SOURCE``, ``Seconds_Behind_Master`` -> ``Seconds_Behind_Source``...). The
modules never write SQL for replication themselves: they ask :meth:`Flavor.sql` for a
statement by its logical name, and read result rows through :func:`pick` and the
normalisers below, which return one set of keys for every flavour.

Nothing here talks to a server: it is pure data and functions, tested with recorded rows.
"""

from __future__ import annotations

import re

MARIADB = "mariadb"
MYSQL = "mysql"
LABELS = {MARIADB: "MariaDB", MYSQL: "MySQL"}

# Oldest versions the table knows how to speak to.
MINIMUM_VERSION = {MARIADB: (10, 5, 0), MYSQL: (5, 7, 8)}

# Keywords that are spliced into statements (never user text): the only values allowed.
KEYWORDS = {"use_gtid": ("current_pos", "slave_pos")}

_CHANGE_MARIADB = (
    "CHANGE MASTER TO MASTER_HOST=%(host)s, MASTER_PORT=%(port)s, MASTER_USER=%(user)s, "
    "MASTER_PASSWORD=%(password)s, MASTER_CONNECT_RETRY=%(connect_retry)s, MASTER_USE_GTID={use_gtid}"
)
_CHANGE_MYSQL57 = (
    "CHANGE MASTER TO MASTER_HOST=%(host)s, MASTER_PORT=%(port)s, MASTER_USER=%(user)s, "
    "MASTER_PASSWORD=%(password)s, MASTER_CONNECT_RETRY=%(connect_retry)s, MASTER_AUTO_POSITION=1"
)
# caching_sha2_password (the 8.x default) needs the source's public key without TLS.
_CHANGE_MYSQL80 = _CHANGE_MYSQL57 + ", GET_MASTER_PUBLIC_KEY=1"
_CHANGE_MYSQL8023 = (
    "CHANGE REPLICATION SOURCE TO SOURCE_HOST=%(host)s, SOURCE_PORT=%(port)s, SOURCE_USER=%(user)s, "
    "SOURCE_PASSWORD=%(password)s, SOURCE_CONNECT_RETRY=%(connect_retry)s, SOURCE_AUTO_POSITION=1, "
    "GET_SOURCE_PUBLIC_KEY=1"
)

_VARIABLES_MARIADB = (
    "SELECT @@global.server_id AS server_id, @@global.read_only AS read_only, NULL AS super_read_only, "
    "@@global.log_bin AS log_bin, NULL AS gtid_mode, @@global.gtid_current_pos AS gtid_executed, "
    "@@global.gtid_binlog_pos AS gtid_binlog_pos, @@global.gtid_slave_pos AS gtid_slave_pos, "
    "@@global.gtid_strict_mode AS gtid_strict_mode, NULL AS server_uuid, CONNECTION_ID() AS connection_id, "
    "@@global.gtid_binlog_state AS gtid_binlog_state"
)
_VARIABLES_MYSQL = (
    "SELECT @@global.server_id AS server_id, @@global.read_only AS read_only, "
    "@@global.super_read_only AS super_read_only, @@global.log_bin AS log_bin, @@global.gtid_mode AS gtid_mode, "
    "@@global.gtid_executed AS gtid_executed, @@global.gtid_executed AS gtid_binlog_pos, NULL AS gtid_slave_pos, "
    "NULL AS gtid_strict_mode, @@global.server_uuid AS server_uuid, CONNECTION_ID() AS connection_id, "
    "NULL AS gtid_binlog_state"
)

# name -> ((flavour, first version with this spelling, statement), ...)
# The newest spelling whose version is <= the server's wins. A name missing for a flavour
# means the flavour has no such statement (the caller gets UnsupportedStatement).
STATEMENTS = {
    "variables": (
        (MARIADB, (10, 5, 0), _VARIABLES_MARIADB),
        (MYSQL, (5, 7, 8), _VARIABLES_MYSQL),
    ),
    "replica_status": (
        (MARIADB, (10, 5, 0), "SHOW SLAVE STATUS"),
        (MARIADB, (10, 5, 1), "SHOW REPLICA STATUS"),
        (MYSQL, (5, 7, 8), "SHOW SLAVE STATUS"),
        (MYSQL, (8, 0, 22), "SHOW REPLICA STATUS"),
    ),
    "binlog_status": (
        (MARIADB, (10, 5, 0), "SHOW MASTER STATUS"),
        (MARIADB, (10, 5, 2), "SHOW BINLOG STATUS"),
        (MYSQL, (5, 7, 8), "SHOW MASTER STATUS"),
        (MYSQL, (8, 2, 0), "SHOW BINARY LOG STATUS"),
    ),
    "replica_hosts": (
        (MARIADB, (10, 5, 0), "SHOW SLAVE HOSTS"),
        (MARIADB, (10, 5, 1), "SHOW REPLICA HOSTS"),
        (MYSQL, (5, 7, 8), "SHOW SLAVE HOSTS"),
        (MYSQL, (8, 0, 22), "SHOW REPLICAS"),
    ),
    "processlist": (
        (MARIADB, (10, 5, 0), "SHOW FULL PROCESSLIST"),
        (MYSQL, (5, 7, 8), "SHOW FULL PROCESSLIST"),
    ),
    "stop_replica": (
        (MARIADB, (10, 5, 0), "STOP SLAVE"),
        (MARIADB, (10, 5, 1), "STOP REPLICA"),
        (MYSQL, (5, 7, 8), "STOP SLAVE"),
        (MYSQL, (8, 0, 22), "STOP REPLICA"),
    ),
    "stop_replica_io": (
        (MARIADB, (10, 5, 0), "STOP SLAVE IO_THREAD"),
        (MARIADB, (10, 5, 1), "STOP REPLICA IO_THREAD"),
        (MYSQL, (5, 7, 8), "STOP SLAVE IO_THREAD"),
        (MYSQL, (8, 0, 22), "STOP REPLICA IO_THREAD"),
    ),
    "start_replica_sql": (
        (MARIADB, (10, 5, 0), "START SLAVE SQL_THREAD"),
        (MARIADB, (10, 5, 1), "START REPLICA SQL_THREAD"),
        (MYSQL, (5, 7, 8), "START SLAVE SQL_THREAD"),
        (MYSQL, (8, 0, 22), "START REPLICA SQL_THREAD"),
    ),
    "start_replica": (
        (MARIADB, (10, 5, 0), "START SLAVE"),
        (MARIADB, (10, 5, 1), "START REPLICA"),
        (MYSQL, (5, 7, 8), "START SLAVE"),
        (MYSQL, (8, 0, 22), "START REPLICA"),
    ),
    "reset_replica_all": (
        (MARIADB, (10, 5, 0), "RESET SLAVE ALL"),
        (MARIADB, (10, 5, 1), "RESET REPLICA ALL"),
        (MYSQL, (5, 7, 8), "RESET SLAVE ALL"),
        (MYSQL, (8, 0, 22), "RESET REPLICA ALL"),
    ),
    "change_source": (
        (MARIADB, (10, 5, 0), _CHANGE_MARIADB),
        (MYSQL, (5, 7, 8), _CHANGE_MYSQL57),
        (MYSQL, (8, 0, 4), _CHANGE_MYSQL80),
        (MYSQL, (8, 0, 23), _CHANGE_MYSQL8023),
    ),
    # MariaDB only: make the replica position start from everything this server already has.
    "gtid_slave_pos_from_current": ((MARIADB, (10, 5, 0), "SET GLOBAL gtid_slave_pos = @@global.gtid_current_pos"),),
    # The fence. MySQL's super_read_only also stops SUPER accounts and implies read_only;
    # MariaDB has no super_read_only: read_only stops every account without READ ONLY ADMIN.
    "fence": (
        (MARIADB, (10, 5, 0), "SET GLOBAL read_only = ON"),
        (MYSQL, (5, 7, 8), "SET GLOBAL super_read_only = ON"),
    ),
    # Turning read_only off also turns super_read_only off on MySQL.
    "unfence": (
        (MARIADB, (10, 5, 0), "SET GLOBAL read_only = OFF"),
        (MYSQL, (5, 7, 8), "SET GLOBAL read_only = OFF"),
    ),
    "kill_connection": (
        (MARIADB, (10, 5, 0), "KILL CONNECTION %(id)s"),
        (MYSQL, (5, 7, 8), "KILL CONNECTION %(id)s"),
    ),
}

DETECT_SQL = "SELECT VERSION() AS version, @@version_comment AS version_comment"


class UnsupportedStatement(Exception):
    """The server flavour or version has no spelling for a statement."""


def parse_version(text):
    """(major, minor, patch) from a VERSION() string such as '10.11.18-MariaDB-0+deb12u1-log' or '8.0.36'."""
    match = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not match:
        raise ValueError(f"cannot read a server version from {text!r}")
    return tuple(int(part or 0) for part in match.groups())


class Flavor:
    """A server flavour and version: the one place that knows how to spell statements for it."""

    def __init__(self, name, version, version_text=None):
        if name not in LABELS:
            raise ValueError(f"unknown server flavour {name!r}")
        self.name = name
        self.version = tuple(version)
        self.version_text = version_text or ".".join(str(p) for p in self.version)

    @classmethod
    def detect(cls, version_text, version_comment=""):
        """From ``SELECT VERSION(), @@version_comment``: MariaDB says so in one of them, anything else is MySQL."""
        is_mariadb = "mariadb" in f"{version_text} {version_comment}".lower()
        return cls(MARIADB if is_mariadb else MYSQL, parse_version(version_text), version_text)

    @property
    def label(self):
        return f"{LABELS[self.name]} {'.'.join(str(p) for p in self.version)}"

    @property
    def supported(self):
        return self.version >= MINIMUM_VERSION[self.name]

    @property
    def has_super_read_only(self):
        return self.name == MYSQL

    @property
    def is_mariadb(self):
        return self.name == MARIADB

    def sql(self, name, **keywords):
        """The statement ``name`` as this flavour and version spell it.

        ``keywords`` fill the ``{...}`` slots of a statement; they must be one of the
        values in :data:`KEYWORDS` (they are SQL keywords, never quoted data). Data goes
        in the ``%(...)s`` parameters at execution time.
        """
        spellings = [(since, text) for flavor, since, text in STATEMENTS.get(name, ()) if flavor == self.name]
        usable = [(since, text) for since, text in spellings if since <= self.version]
        if not usable:
            raise UnsupportedStatement(
                f"{self.label} has no {name.replace('_', ' ')} statement"
                + (f" (needs {self.name} >= {'.'.join(map(str, min(spellings)[0]))})" if spellings else "")
            )
        text = max(usable)[1]
        for key, value in keywords.items():
            if value not in KEYWORDS.get(key, ()):
                raise ValueError(f"{key}={value!r} is not one of {', '.join(KEYWORDS.get(key, ()))}")
        return text.format(**keywords) if keywords else text


# -- result rows ------------------------------------------------------------------
# Normalised key -> the column names that carry it, newest spelling first.
REPLICA_COLUMNS = {
    "source_host": ("Source_Host", "Master_Host"),
    "source_port": ("Source_Port", "Master_Port"),
    "source_user": ("Source_User", "Master_User"),
    "source_server_id": ("Source_Server_Id", "Master_Server_Id"),
    "source_uuid": ("Source_UUID", "Master_UUID"),
    "io_running": ("Replica_IO_Running", "Slave_IO_Running"),
    "sql_running": ("Replica_SQL_Running", "Slave_SQL_Running"),
    "io_state": ("Replica_IO_State", "Slave_IO_State"),
    "sql_state": ("Replica_SQL_Running_State", "Slave_SQL_Running_State"),
    "seconds_behind": ("Seconds_Behind_Source", "Seconds_Behind_Master"),
    "source_log_file": ("Source_Log_File", "Master_Log_File"),
    "read_source_log_pos": ("Read_Source_Log_Pos", "Read_Master_Log_Pos"),
    "relay_source_log_file": ("Relay_Source_Log_File", "Relay_Master_Log_File"),
    "exec_source_log_pos": ("Exec_Source_Log_Pos", "Exec_Master_Log_Pos"),
    "last_io_errno": ("Last_IO_Errno",),
    "last_io_error": ("Last_IO_Error",),
    "last_sql_errno": ("Last_SQL_Errno",),
    "last_sql_error": ("Last_SQL_Error",),
    "sql_delay": ("SQL_Delay",),
    # GTID: MySQL reports sets, MariaDB positions.
    "gtid_received": ("Retrieved_Gtid_Set", "Gtid_IO_Pos"),
    "gtid_executed": ("Executed_Gtid_Set",),
    "auto_position": ("Auto_Position",),
    "using_gtid": ("Using_Gtid",),
    "channel": ("Channel_Name", "Channel_name", "Connection_name"),
}

HOST_COLUMNS = {
    "server_id": ("Server_Id", "Server_id"),
    "host": ("Host",),
    "port": ("Port",),
    "source_id": ("Source_Id", "Master_id", "Master_Id"),
    "uuid": ("Replica_UUID", "Slave_UUID"),
}

_MISSING = object()


def pick(row, columns, default=None):
    """The value of the first of ``columns`` that the row has (rows of every flavour spell them differently)."""
    for column in columns:
        value = row.get(column, _MISSING)
        if value is not _MISSING:
            return value
    return default


def _text(value):
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    return str(value)


def _int_or_none(value):
    """Integers stay integers, NULL and '' (unknown) stay None: unknown lag is not zero lag."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _flag(value):
    """read_only and friends: 1/0, 'ON'/'OFF', None when the variable does not exist."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    if isinstance(value, str):
        return value.strip().upper() in ("1", "ON", "YES", "TRUE")
    return bool(value)


_THREAD_STATES = {"yes": "running", "no": "stopped", "connecting": "connecting", "preparing": "connecting"}


def thread_state(value):
    """'Yes' / 'No' / 'Connecting' (and MariaDB's 'Preparing') -> running / stopped / connecting."""
    return _THREAD_STATES.get(_text(value).strip().lower(), "stopped" if not value else _text(value).lower())


# -- GTID positions and sets ------------------------------------------------------------
def parse_mariadb_gtid(text):
    """'0-1-57,1-2-3' -> {domain: sequence}; the highest sequence per domain wins."""
    out = {}
    for part in _text(text).replace("\n", "").split(","):
        bits = part.strip().split("-")
        if len(bits) == 3 and all(b.isdigit() for b in bits):
            domain, seq = int(bits[0]), int(bits[2])
            out[domain] = max(seq, out.get(domain, 0))
    return out


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def parse_mysql_gtid_set(text):
    """'uuid:1-5:7,uuid2:tag:1-3' -> {(uuid, tag): [(start, end), ...]} (MySQL 8.4 tags included)."""
    out = {}
    for member in _text(text).replace("\n", "").split(","):
        parts = [p.strip() for p in member.strip().split(":")]
        if not parts or not _UUID.match(parts[0]):
            continue
        uuid, tag = parts[0].lower(), ""
        for segment in parts[1:]:
            match = re.match(r"^(\d+)(?:-(\d+))?$", segment)
            if match:
                start = int(match.group(1))
                end = int(match.group(2) or start)
                out.setdefault((uuid, tag), []).append((start, end))
            elif segment:
                tag = segment.lower()
    return out


def _count_missing_intervals(have, want):
    """How many numbers of the ``want`` intervals are not covered by the ``have`` intervals."""
    missing = 0
    for start, end in want:
        covered = 0
        for h_start, h_end in have:
            lo, hi = max(start, h_start), min(end, h_end)
            if lo <= hi:
                covered += hi - lo + 1
        missing += max(0, (end - start + 1) - covered)
    return missing


def _merge(intervals):
    merged = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def parse_binlog_state(text):
    """MariaDB's gtid_binlog_state '0-1-57,0-3-58,1-2-3' -> {(domain, server_id): last sequence}."""
    out = {}
    for part in _text(text).replace("\n", "").split(","):
        bits = part.strip().split("-")
        if len(bits) == 3 and all(b.isdigit() for b in bits):
            key = (int(bits[0]), int(bits[1]))
            out[key] = max(int(bits[2]), out.get(key, 0))
    return out


def format_mariadb_gtid(positions):
    """{domain: sequence} (or {(domain, server): sequence}) back to text; a position without server id gets 0."""
    parts = []
    for key, seq in sorted(positions.items()):
        domain, server = key if isinstance(key, tuple) else (key, 0)
        parts.append(f"{domain}-{server}-{seq}")
    return ",".join(parts)


def mariadb_position_max(*texts):
    """The furthest position per domain of several MariaDB GTID positions, keeping each domain's GTID as written."""
    best = {}
    for text in texts:
        for part in _text(text).replace("\n", "").split(","):
            bits = part.strip().split("-")
            if len(bits) == 3 and all(b.isdigit() for b in bits):
                domain, seq = int(bits[0]), int(bits[2])
                if domain not in best or seq > best[domain][1]:
                    best[domain] = (part.strip(), seq)
    return ",".join(best[d][0] for d in sorted(best))


def mysql_set_union(*texts):
    """The union of MySQL GTID sets, as {(uuid, tag): merged intervals}."""
    out = {}
    for text in texts:
        for key, intervals in (parse_mysql_gtid_set(text) if isinstance(text, str) or text is None else text).items():
            out[key] = _merge(out.get(key, []) + intervals)
    return out


def mysql_set_subtract(have, remove):
    """``have`` minus ``remove`` (both {(uuid, tag): intervals}), merged."""
    out = {}
    for key, intervals in have.items():
        cut = _merge(remove.get(key, []))
        left = []
        for start, end in _merge(intervals):
            cursor = start
            for c_start, c_end in cut:
                if c_end < cursor or c_start > end:
                    continue
                if c_start > cursor:
                    left.append((cursor, c_start - 1))
                cursor = max(cursor, c_end + 1)
            if cursor <= end:
                left.append((cursor, end))
        if left:
            out[key] = left
    return out


def format_mysql_gtid_set(parsed):
    """{(uuid, tag): intervals} -> 'uuid:1-5:7,uuid:tag:1-3' (MySQL's own spelling, tags after the untagged)."""
    by_uuid = {}
    for (uuid, tag), intervals in sorted(parsed.items()):
        text = ":".join(f"{a}-{b}" if a != b else str(a) for a, b in _merge(intervals))
        if text:
            by_uuid.setdefault(uuid, []).append(f"{tag}:{text}" if tag else text)
    return ",".join(f"{uuid}:{':'.join(parts)}" for uuid, parts in by_uuid.items())


def mysql_set_size(parsed):
    return sum(end - start + 1 for intervals in parsed.values() for start, end in _merge(intervals))


def gtid_missing(flavor_name, have, want):
    """How many transactions of ``want`` are not in ``have`` (0: ``have`` contains ``want``).

    MariaDB compares per replication domain by sequence number (as MASTER_GTID_WAIT does,
    exact under gtid_strict_mode); MySQL counts the GTIDs of the set difference.
    """
    if flavor_name == MARIADB:
        have_pos, want_pos = parse_mariadb_gtid(have), parse_mariadb_gtid(want)
        return sum(max(0, seq - have_pos.get(domain, 0)) for domain, seq in want_pos.items())
    have_set, want_set = parse_mysql_gtid_set(have), parse_mysql_gtid_set(want)
    return sum(
        _count_missing_intervals(_merge(have_set.get(key, [])), _merge(intervals))
        for key, intervals in want_set.items()
    )


# -- secrets in SQL text ---------------------------------------------------------------
_SECRET_PATTERNS = (
    # IDENTIFIED BY 'x', IDENTIFIED BY PASSWORD 'x', IDENTIFIED WITH plugin BY/AS 'x'
    re.compile(
        r"(IDENTIFIED\s+(?:WITH\s+\S+\s+)?(?:BY|AS)\s+(?:PASSWORD\s+)?)('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", re.I
    ),
    # MASTER_PASSWORD='x', SOURCE_PASSWORD = 'x', PASSWORD='x'
    re.compile(r"((?:MASTER_|SOURCE_)?PASSWORD\s*=\s*)('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", re.I),
    # PASSWORD('x'), OLD_PASSWORD('x')
    re.compile(r"(PASSWORD\s*\(\s*)('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", re.I),
)
REDACTED = "'********'"


def redact_sql(text):
    """SQL text with every password literal replaced, for process lists and reports."""
    if text is None:
        return None
    text = _text(text)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


# -- whole server state -------------------------------------------------------------------
_REPLICATION_THREADS = ("Binlog Dump", "Binlog Dump GTID")
_SYSTEM_COMMANDS = ("Daemon", "Slave_IO", "Slave_SQL", "Slave_worker", "Killed")
_SYSTEM_USERS = ("system user", "event_scheduler")


def normalise_processlist(rows):
    out = []
    for row in rows:
        out.append(
            dict(
                id=_int_or_none(row.get("Id")),
                user=_text(row.get("User")),
                host=_text(row.get("Host")),
                db=row.get("db"),
                command=_text(row.get("Command")),
                time=_int_or_none(row.get("Time")),
                state=_text(row.get("State")) or None,
                info=redact_sql(row.get("Info")),
            )
        )
    return out


def is_client_session(proc, own_id=None):
    """A session of a client (could write): not ours, not a server thread, not a replica's binlog dump."""
    return (
        proc["id"] != own_id
        and proc["user"] not in _SYSTEM_USERS
        and proc["command"] not in _SYSTEM_COMMANDS + _REPLICATION_THREADS
    )


def normalise_replica(flavor_name, row, executed, slave_pos=None):
    """One SHOW SLAVE/REPLICA STATUS row -> the collection's keys.

    ``executed`` is what the server has applied (MariaDB gtid_current_pos, MySQL
    gtid_executed); ``slave_pos`` is MariaDB's gtid_slave_pos (what the SQL thread applied).
    """
    sbm = _int_or_none(pick(row, REPLICA_COLUMNS["seconds_behind"]))
    io = thread_state(pick(row, REPLICA_COLUMNS["io_running"]))
    sql = thread_state(pick(row, REPLICA_COLUMNS["sql_running"]))
    received = _text(pick(row, REPLICA_COLUMNS["gtid_received"])).replace("\n", "")
    # Applied everything received? By GTID where the server tracks it, else by binlog coordinates.
    pending = None
    if flavor_name == MARIADB:
        # The SQL thread advances gtid_slave_pos; a server that rejoined with MASTER_USE_GTID=current_pos
        # starts from its own binlog (gtid_current_pos), so whichever covers more counts.
        applied_pos = executed
        using_gtid = _text(pick(row, REPLICA_COLUMNS["using_gtid"])) or "No"
        if received:
            pending = min(gtid_missing(MARIADB, pos, received) for pos in (executed, _text(slave_pos)))
    else:
        applied_pos = _text(pick(row, REPLICA_COLUMNS["gtid_executed"])).replace("\n", "") or executed
        using_gtid = "auto_position" if _int_or_none(pick(row, REPLICA_COLUMNS["auto_position"])) == 1 else "No"
        if received:
            pending = gtid_missing(MYSQL, applied_pos, received)
    by_position = _text(pick(row, REPLICA_COLUMNS["source_log_file"])) == _text(
        pick(row, REPLICA_COLUMNS["relay_source_log_file"])
    ) and _int_or_none(pick(row, REPLICA_COLUMNS["read_source_log_pos"])) == _int_or_none(
        pick(row, REPLICA_COLUMNS["exec_source_log_pos"])
    )
    applied = pending == 0 if pending is not None else by_position

    def error(kind):
        errno = _int_or_none(pick(row, REPLICA_COLUMNS[f"last_{kind}_errno"])) or 0
        message = _text(pick(row, REPLICA_COLUMNS[f"last_{kind}_error"]))
        return dict(errno=errno, message=redact_sql(message)) if errno or message else None

    return dict(
        source_host=_text(pick(row, REPLICA_COLUMNS["source_host"])),
        source_port=_int_or_none(pick(row, REPLICA_COLUMNS["source_port"])),
        source_user=_text(pick(row, REPLICA_COLUMNS["source_user"])),
        source_server_id=_int_or_none(pick(row, REPLICA_COLUMNS["source_server_id"])),
        source_uuid=_text(pick(row, REPLICA_COLUMNS["source_uuid"])).lower() or None,
        channel=_text(pick(row, REPLICA_COLUMNS["channel"])),
        io_thread=io,
        sql_thread=sql,
        io_state=_text(pick(row, REPLICA_COLUMNS["io_state"])),
        sql_state=_text(pick(row, REPLICA_COLUMNS["sql_state"])),
        last_io_error=error("io"),
        last_sql_error=error("sql"),
        seconds_behind_source=sbm,
        sql_delay=_int_or_none(pick(row, REPLICA_COLUMNS["sql_delay"])),
        using_gtid=using_gtid,
        gtid_received=received,
        gtid_applied=_text(applied_pos),
        relay_log_applied=bool(applied),
        pending_transactions=pending,
        source_log_file=_text(pick(row, REPLICA_COLUMNS["source_log_file"])),
        read_source_log_pos=_int_or_none(pick(row, REPLICA_COLUMNS["read_source_log_pos"])),
        exec_source_log_pos=_int_or_none(pick(row, REPLICA_COLUMNS["exec_source_log_pos"])),
    )


def role_of(replication, log_bin, connected_replicas):
    """replica: replicates from a source; primary: can feed replicas (binary log on) or has some; else standalone."""
    if replication:
        return "replica"
    if log_bin or connected_replicas:
        return "primary"
    return "standalone"


def normalise_state(flavor, variables, replica_rows, binlog_row, host_rows, processlist_rows=None):
    """The whole replication state of one server from its raw result rows (see mysql_replication_info RETURN)."""
    read_only = _flag(variables.get("read_only"))
    super_read_only = _flag(variables.get("super_read_only")) if flavor.has_super_read_only else None
    log_bin = bool(_flag(variables.get("log_bin")))
    executed = _text(variables.get("gtid_executed")).replace("\n", "")
    replicas = [
        dict(
            server_id=_int_or_none(pick(r, HOST_COLUMNS["server_id"])),
            host=_text(pick(r, HOST_COLUMNS["host"])),
            port=_int_or_none(pick(r, HOST_COLUMNS["port"])),
        )
        for r in host_rows or []
    ]
    replication = None
    if replica_rows:
        replication = normalise_replica(flavor.name, replica_rows[0], executed, variables.get("gtid_slave_pos"))
        replication["channels"] = len(replica_rows)
    if flavor.is_mariadb:
        gtid = dict(
            enabled=True,
            executed=executed,
            binlog_pos=_text(variables.get("gtid_binlog_pos")),
            slave_pos=_text(variables.get("gtid_slave_pos")),
            # The last GTID of every (domain, server id) in the binary log: who wrote what, for the errant check.
            binlog_state=_text(variables.get("gtid_binlog_state")).replace("\n", ""),
            strict_mode=bool(_flag(variables.get("gtid_strict_mode"))),
            mode=None,
        )
    else:
        mode = _text(variables.get("gtid_mode")) or "OFF"
        gtid = dict(enabled=mode.upper() == "ON", executed=executed, mode=mode)
    binlog = dict(enabled=log_bin, file=None, position=None)
    if binlog_row:
        binlog.update(file=_text(binlog_row.get("File")) or None, position=_int_or_none(binlog_row.get("Position")))
    state = dict(
        server=dict(
            flavor=flavor.name, version=flavor.version_text, server_id=_int_or_none(variables.get("server_id"))
        ),
        role=role_of(replication, log_bin, replicas),
        read_only=bool(read_only),
        super_read_only=super_read_only,
        writable=not read_only and not super_read_only,
        binlog=binlog,
        gtid=gtid,
        replication=replication,
        connected_replicas=replicas,
    )
    if variables.get("server_uuid"):
        state["server"]["server_uuid"] = _text(variables["server_uuid"])
    if processlist_rows is not None:
        state["processlist"] = normalise_processlist(processlist_rows)
    state["summary"] = summarise(state)
    return state


def summarise(state):
    """One line an operator reads first."""
    ro = "read-only" if state["read_only"] else "read-write"
    if state["super_read_only"]:
        ro = "super-read-only"
    rep = state["replication"]
    if not rep:
        replicas = ", ".join(f"{r['host']}:{r['port']}" for r in state["connected_replicas"]) or "none"
        return f"{state['role']}, {ro}, gtid {state['gtid']['executed'] or '-'}, connected replicas: {replicas}"
    lag = rep["seconds_behind_source"]
    parts = [
        f"replica of {rep['source_host']}:{rep['source_port']}",
        ro,
        f"io={rep['io_thread']}",
        f"sql={rep['sql_thread']}",
        "lag unknown" if lag is None else f"lag {lag}s",
        "relay log applied"
        if rep["relay_log_applied"]
        else f"{rep['pending_transactions'] if rep['pending_transactions'] is not None else 'some'} received "
        "transaction(s) not applied",
    ]
    for kind in ("io", "sql"):
        err = rep[f"last_{kind}_error"]
        if err:
            parts.append(f"{kind} error {err['errno']}: {err['message']}")
    return ", ".join(parts)
