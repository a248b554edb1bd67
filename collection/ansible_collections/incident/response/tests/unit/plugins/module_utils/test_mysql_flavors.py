"""The statement table and the row normalisers, for every flavour, on recorded result rows.

MariaDB rows were recorded from the lab's MariaDB 10.11 in each fault; MySQL 5.7/8.0/8.4 rows
follow the reference manual's column lists for each version (see fixtures/README.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ansible_collections.incident.response.plugins.module_utils.mysql_flavors import (
    MARIADB,
    MYSQL,
    STATEMENTS,
    Flavor,
    UnsupportedStatement,
    gtid_missing,
    is_client_session,
    normalise_processlist,
    normalise_state,
    parse_mariadb_gtid,
    parse_mysql_gtid_set,
    parse_version,
    redact_sql,
)

FIXTURES = Path(__file__).parent / "fixtures"

MARIADB_10_5_0 = Flavor(MARIADB, (10, 5, 0))
MARIADB_10_11 = Flavor(MARIADB, (10, 11, 18))
MYSQL_5_7 = Flavor(MYSQL, (5, 7, 44))
MYSQL_8_0_21 = Flavor(MYSQL, (8, 0, 21))
MYSQL_8_0_22 = Flavor(MYSQL, (8, 0, 22))
MYSQL_8_0_36 = Flavor(MYSQL, (8, 0, 36))
MYSQL_8_4 = Flavor(MYSQL, (8, 4, 3))
ALL = [MARIADB_10_5_0, MARIADB_10_11, MYSQL_5_7, MYSQL_8_0_21, MYSQL_8_0_22, MYSQL_8_0_36, MYSQL_8_4]


def fixture(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())


def state_of(name):
    doc = fixture(name)
    flavor = Flavor.detect(doc["detect"]["version"], doc["detect"]["version_comment"])
    binlog = doc["binlog_status"][0] if doc["binlog_status"] else None
    return normalise_state(flavor, doc["variables"], doc["replica_status"], binlog, doc["replica_hosts"])


# -- the table --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flavor", "name", "expected"),
    [
        (MARIADB_10_5_0, "replica_status", "SHOW SLAVE STATUS"),
        (MARIADB_10_11, "replica_status", "SHOW REPLICA STATUS"),
        (MYSQL_5_7, "replica_status", "SHOW SLAVE STATUS"),
        (MYSQL_8_0_21, "replica_status", "SHOW SLAVE STATUS"),
        (MYSQL_8_0_22, "replica_status", "SHOW REPLICA STATUS"),
        (MYSQL_8_4, "replica_status", "SHOW REPLICA STATUS"),
        (MARIADB_10_5_0, "binlog_status", "SHOW MASTER STATUS"),
        (MARIADB_10_11, "binlog_status", "SHOW BINLOG STATUS"),
        (MYSQL_5_7, "binlog_status", "SHOW MASTER STATUS"),
        (MYSQL_8_0_36, "binlog_status", "SHOW MASTER STATUS"),
        (Flavor(MYSQL, (8, 2, 0)), "binlog_status", "SHOW BINARY LOG STATUS"),
        (MYSQL_8_4, "binlog_status", "SHOW BINARY LOG STATUS"),
        (MARIADB_10_11, "replica_hosts", "SHOW REPLICA HOSTS"),
        (MYSQL_5_7, "replica_hosts", "SHOW SLAVE HOSTS"),
        (MYSQL_8_0_22, "replica_hosts", "SHOW REPLICAS"),
        (MARIADB_10_5_0, "reset_replica_all", "RESET SLAVE ALL"),
        (MARIADB_10_11, "reset_replica_all", "RESET REPLICA ALL"),
        (MYSQL_8_0_21, "stop_replica", "STOP SLAVE"),
        (MYSQL_8_4, "stop_replica_io", "STOP REPLICA IO_THREAD"),
        (MARIADB_10_11, "fence", "SET GLOBAL read_only = ON"),
        (MYSQL_5_7, "fence", "SET GLOBAL super_read_only = ON"),
        (MYSQL_8_4, "unfence", "SET GLOBAL read_only = OFF"),
    ],
)
def test_each_flavour_and_version_gets_its_own_spelling(flavor, name, expected):
    assert flavor.sql(name) == expected


def test_change_source_is_spelled_per_version_and_keeps_data_as_parameters():
    assert MARIADB_10_11.sql("change_source", use_gtid="current_pos").startswith(
        "CHANGE MASTER TO MASTER_HOST=%(host)s"
    )
    assert MARIADB_10_11.sql("change_source", use_gtid="slave_pos").endswith("MASTER_USE_GTID=slave_pos")
    assert MYSQL_5_7.sql("change_source").endswith("MASTER_AUTO_POSITION=1")
    assert "GET_MASTER_PUBLIC_KEY=1" in MYSQL_8_0_22.sql("change_source")
    assert MYSQL_8_0_36.sql("change_source").startswith("CHANGE REPLICATION SOURCE TO SOURCE_HOST=%(host)s")
    assert "SOURCE_AUTO_POSITION=1" in MYSQL_8_4.sql("change_source")
    for flavor in ALL:
        assert "%(password)s" in flavor.sql(
            "change_source", **({"use_gtid": "current_pos"} if flavor.is_mariadb else {})
        )


def test_mysql_8_4_never_gets_a_removed_master_or_slave_statement():
    # 8.4 removed SHOW SLAVE STATUS, SHOW MASTER STATUS, CHANGE MASTER, START/STOP/RESET SLAVE...
    for name in STATEMENTS:
        if name == "gtid_slave_pos_from_current":
            continue
        text = MYSQL_8_4.sql(name)
        assert not re.search(r"\b(MASTER|SLAVE)\b", text.upper()), (name, text)


@pytest.mark.parametrize("flavor", ALL, ids=lambda f: f.label)
def test_every_statement_exists_for_every_supported_flavour(flavor):
    for name in STATEMENTS:
        if name == "gtid_slave_pos_from_current" and not flavor.is_mariadb:
            with pytest.raises(UnsupportedStatement, match="MySQL"):
                flavor.sql(name)
            continue
        keywords = {"use_gtid": "current_pos"} if name == "change_source" and flavor.is_mariadb else {}
        assert flavor.sql(name, **keywords)


def test_keywords_spliced_into_sql_are_whitelisted():
    with pytest.raises(ValueError, match="use_gtid"):
        MARIADB_10_11.sql("change_source", use_gtid="current_pos; DROP DATABASE shop")


def test_unknown_statement_and_too_old_servers_are_refused():
    with pytest.raises(UnsupportedStatement):
        MARIADB_10_11.sql("no_such_statement")
    assert not Flavor(MYSQL, (5, 6, 51)).supported
    assert not Flavor(MARIADB, (10, 4, 33)).supported
    assert MYSQL_5_7.supported and MARIADB_10_5_0.supported


@pytest.mark.parametrize(
    ("version", "comment", "flavor", "parsed"),
    [
        ("10.11.18-MariaDB-0+deb12u1-log", "Debian 12", MARIADB, (10, 11, 18)),
        ("5.5.5-10.6.16-MariaDB", "", MARIADB, (5, 5, 5)),
        ("8.0.36", "MySQL Community Server - GPL", MYSQL, (8, 0, 36)),
        ("8.4.3-commercial", "MySQL Enterprise Server - Commercial", MYSQL, (8, 4, 3)),
        ("5.7.44-log", "MySQL Community Server (GPL)", MYSQL, (5, 7, 44)),
        ("8.0.35-27", "Percona Server (GPL), Release 27", MYSQL, (8, 0, 35)),
    ],
)
def test_flavour_detection(version, comment, flavor, parsed):
    detected = Flavor.detect(version, comment)
    assert detected.name == flavor
    assert detected.version == parsed


def test_version_parse_errors_are_clear():
    with pytest.raises(ValueError, match="cannot read a server version"):
        parse_version("unknown")


# -- recorded rows: the same keys for every flavour ---------------------------------------------
@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_recorded_statements_are_what_the_table_sends(name):
    doc = fixture(name)
    flavor = Flavor.detect(doc["detect"]["version"], doc["detect"]["version_comment"])
    for statement, text in doc["statements"].items():
        if statement == "variables":
            assert text == flavor.sql("variables")
        else:
            assert flavor.sql(statement) == text, statement


@pytest.mark.parametrize("name", ["mariadb_10_11_primary", "mysql_8_4_primary"])
def test_primary(name):
    st = state_of(name)
    assert st["role"] == "primary"
    assert st["replication"] is None
    assert st["writable"] is True and st["read_only"] is False
    assert st["binlog"]["enabled"] and st["binlog"]["file"] and st["binlog"]["position"] > 0
    assert st["gtid"]["enabled"] and st["gtid"]["executed"]
    assert len(st["connected_replicas"]) == 1
    assert st["connected_replicas"][0]["server_id"] == 2 and st["connected_replicas"][0]["port"]


def test_super_read_only_is_reported_where_it_exists_only():
    maria = state_of("mariadb_10_11_replica")
    mysql = state_of("mysql_5_7_replica")
    assert maria["super_read_only"] is None and maria["read_only"] is True
    assert mysql["super_read_only"] is True and mysql["writable"] is False


@pytest.mark.parametrize("name", ["mariadb_10_11_replica", "mysql_5_7_replica"])
def test_healthy_replica(name):
    st = state_of(name)
    rep = st["replication"]
    assert st["role"] == "replica"
    assert rep["io_thread"] == "running" and rep["sql_thread"] == "running"
    assert rep["seconds_behind_source"] == 0  # known zero stays zero
    assert rep["relay_log_applied"] is True and rep["pending_transactions"] == 0
    assert rep["last_io_error"] is None and rep["last_sql_error"] is None
    assert rep["source_port"] and rep["source_host"] and rep["source_user"] == "repl"
    assert rep["using_gtid"] in ("Slave_Pos", "auto_position")
    assert "lag 0s" in st["summary"] and "relay log applied" in st["summary"]


@pytest.mark.parametrize("name", ["mariadb_10_11_replica_lag", "mysql_8_0_replica_lag"])
def test_lagging_replica_has_unknown_lag_and_pending_transactions(name):
    st = state_of(name)
    rep = st["replication"]
    assert rep["sql_thread"] == "stopped" and rep["io_thread"] == "running"
    assert rep["seconds_behind_source"] is None  # unknown, not 0
    assert rep["relay_log_applied"] is False
    assert rep["pending_transactions"] == 25
    assert "lag unknown" in st["summary"] and "25 received transaction(s) not applied" in st["summary"]


@pytest.mark.parametrize("name", ["mariadb_10_11_replica_broken", "mysql_8_0_replica_broken"])
def test_broken_replica_reports_the_io_error(name):
    st = state_of(name)
    rep = st["replication"]
    assert rep["io_thread"] == "connecting"
    assert rep["seconds_behind_source"] is None
    assert rep["last_io_error"]["errno"] == 1045
    assert "Access denied" in rep["last_io_error"]["message"]
    assert "io error 1045" in st["summary"]


@pytest.mark.parametrize("name", ["mariadb_10_11_replica_source_down", "mysql_8_4_replica_source_down"])
def test_replica_of_a_dead_source_has_applied_everything_received(name):
    st = state_of(name)
    rep = st["replication"]
    assert rep["io_thread"] == "connecting" and rep["sql_thread"] == "running"
    assert rep["last_io_error"]["errno"] == 2003
    assert rep["seconds_behind_source"] is None
    assert rep["relay_log_applied"] is True and rep["pending_transactions"] == 0


def test_mariadb_replica_that_rejoined_with_current_pos_counts_its_own_binlog():
    doc = fixture("mariadb_10_11_replica")
    variables = dict(doc["variables"], gtid_slave_pos="", gtid_executed="0-1-40")
    row = dict(doc["replica_status"][0], Gtid_IO_Pos="0-1-40", Using_Gtid="Current_Pos")
    st = normalise_state(MARIADB_10_11, variables, [row], None, [])
    assert st["replication"]["pending_transactions"] == 0


def test_position_fallback_without_gtid():
    doc = fixture("mysql_5_7_replica")
    row = dict(doc["replica_status"][0], Retrieved_Gtid_Set="", Auto_Position=0)
    st = normalise_state(MYSQL_5_7, doc["variables"], [row], None, [])
    assert st["replication"]["pending_transactions"] is None
    assert st["replication"]["relay_log_applied"] is True
    behind = dict(row, Exec_Master_Log_Pos=100)
    st = normalise_state(MYSQL_5_7, doc["variables"], [behind], None, [])
    assert st["replication"]["relay_log_applied"] is False


def test_standalone_without_binlog_or_replicas():
    variables = dict(fixture("mysql_8_4_primary")["variables"], log_bin=0)
    assert normalise_state(MYSQL_8_4, variables, [], None, [])["role"] == "standalone"


# -- GTID arithmetic -----------------------------------------------------------------------
def test_mariadb_gtid_positions_compare_per_domain():
    assert parse_mariadb_gtid("0-1-57,1-2-3") == {0: 57, 1: 3}
    assert gtid_missing(MARIADB, "0-1-57", "0-1-57") == 0
    assert gtid_missing(MARIADB, "0-1-12", "0-1-37") == 25
    assert gtid_missing(MARIADB, "0-2-40", "0-1-37") == 0  # a later server id in the same domain
    assert gtid_missing(MARIADB, "0-1-10", "0-1-10,1-5-4") == 4
    assert gtid_missing(MARIADB, "", "") == 0


def test_mysql_gtid_sets_subtract_exactly():
    a = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    b = "6c27ed6d-7ee1-11e3-be39-6c626d957cff"
    assert parse_mysql_gtid_set(f"{a}:1-5:7,\n{b}:1-3") == {(a, ""): [(1, 5), (7, 7)], (b, ""): [(1, 3)]}
    assert gtid_missing(MYSQL, f"{a}:1-1025", f"{a}:1-1050") == 25
    assert gtid_missing(MYSQL, f"{a}:1-5:7-10", f"{a}:1-10") == 1
    assert gtid_missing(MYSQL, f"{b}:1-3,\n{a}:1-10", f"{a}:3-8") == 0
    assert gtid_missing(MYSQL, f"{a}:1-10", f"{a}:1-10:incident:1-3") == 3  # 8.4 tags are their own series
    assert gtid_missing(MYSQL, f"{a}:1-10:incident:1-3", f"{a.upper()}:incident:2") == 0


# -- secrets and sessions ----------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "CREATE USER 'x'@'%' IDENTIFIED BY 's3cr3t'",
        "ALTER USER x IDENTIFIED WITH mysql_native_password BY 's3cr3t'",
        "CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD='s3cr3t'",
        "CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = \"s3cr3t\", SOURCE_HOST='h'",
        "SET PASSWORD FOR x = PASSWORD('s3cr3t')",
        "GRANT ALL ON *.* TO x IDENTIFIED BY PASSWORD 's3cr3t'",
    ],
)
def test_password_literals_are_masked(sql):
    masked = redact_sql(sql)
    assert "s3cr3t" not in masked
    assert "'********'" in masked


def test_processlist_is_normalised_and_client_sessions_exclude_server_threads():
    rows = [
        dict(Id=1, User="system user", Host="", db=None, Command="Slave_IO", Time=5, State="", Info=None),
        dict(Id=2, User="repl", Host="10.0.0.2:4000", db=None, Command="Binlog Dump GTID", Time=9, State="", Info=None),
        dict(Id=3, User="shop_app", Host="10.0.0.9:5000", db="shop", Command="Sleep", Time=1, State="", Info=None),
        dict(Id=4, User="admin", Host="localhost", db=None, Command="Query", Time=0, State="", Info="SHOW PROCESSLIST"),
        dict(Id=5, User="event_scheduler", Host="localhost", db=None, Command="Daemon", Time=9, State="", Info=None),
        dict(Id=6, User="ops", Host="h", db=None, Command="Query", Time=0, State="", Info="SET PASSWORD = 'pw1234'"),
    ]
    procs = normalise_processlist(rows)
    assert procs[2] == dict(
        id=3, user="shop_app", host="10.0.0.9:5000", db="shop", command="Sleep", time=1, state=None, info=None
    )
    assert "pw1234" not in procs[5]["info"]
    assert [p["id"] for p in procs if is_client_session(p, own_id=4)] == [3, 6]
