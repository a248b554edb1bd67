"""The lab's MariaDB servers: by default db-primary (primary region) replicating to db-replica
(secondary region); other topologies (topology.py) add replicas and a second cluster.

Instances start from a datadir template made once (mariadb-install-db) and copied onto
tmpfs, which brings a replicating pair up in about half a second. Accounts are created
per instance with ``sql_log_bin=0``, so only the shop schema travels through the binlog.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql

from . import topology as topologies
from .config import DB_NAME, DB_USERS, HOST, LabConfig, read_json
from .errors import LabError
from .procs import ProcessTable

# The default topology's servers (the pair); servers(cfg) names those of the running lab.
DB_NODES = topologies.get(topologies.DEFAULT_TOPOLOGY).server_names
# A server's id and GTID domain go with its name, whatever topology it runs in.
SERVER_IDS = {s.name: s.server_id for t in topologies.TOPOLOGIES.values() for s in t.servers}
DOMAIN_IDS = {s.name: c.domain_id for t in topologies.TOPOLOGIES.values() for c in t.clusters for s in c.servers}


def lab_topology(cfg: LabConfig) -> topologies.Topology:
    """The topology the lab in ``cfg`` was brought up with (lab.json), the pair when none is recorded."""
    return topologies.get((read_json(cfg.state_file) or {}).get("topology"))


def servers(cfg: LabConfig) -> tuple[str, ...]:
    return lab_topology(cfg).server_names


# Small footprint: the lab runs two servers on a two-core machine.
SERVER_SETTINGS = """\
innodb_buffer_pool_size=16M
innodb_log_file_size=4M
innodb_flush_log_at_trx_commit=2
performance_schema=OFF
skip-name-resolve
max_connections=300
"""

SCHEMA = """\
CREATE DATABASE IF NOT EXISTS shop;
USE shop;
CREATE TABLE users (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL,
  email VARCHAR(128) NOT NULL, created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id BIGINT NOT NULL,
  total DECIMAL(10,2) NOT NULL, status VARCHAR(16) NOT NULL,
  created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
CREATE TABLE payments (id BIGINT AUTO_INCREMENT PRIMARY KEY, order_id BIGINT NOT NULL,
  amount DECIMAL(10,2) NOT NULL, status VARCHAR(16) NOT NULL,
  created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
CREATE TABLE inventory (id BIGINT AUTO_INCREMENT PRIMARY KEY, sku VARCHAR(32) NOT NULL,
  quantity INT NOT NULL, created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
CREATE TABLE notifications (id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id BIGINT NOT NULL,
  channel VARCHAR(16) NOT NULL, message VARCHAR(255) NOT NULL,
  created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
CREATE TABLE heartbeat (id BIGINT AUTO_INCREMENT PRIMARY KEY, source VARCHAR(64) NOT NULL,
  created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
INSERT INTO users (name, email) VALUES ('alice', 'alice@example.com'), ('bob', 'bob@example.com'),
  ('carol', 'carol@example.com'), ('dave', 'dave@example.com'), ('erin', 'erin@example.com');
INSERT INTO orders (user_id, total, status) VALUES (1, 42.50, 'PAID'), (2, 17.00, 'NEW'), (3, 99.90, 'SHIPPED');
INSERT INTO payments (order_id, amount, status) VALUES (1, 42.50, 'CAPTURED'), (3, 99.90, 'CAPTURED');
INSERT INTO inventory (sku, quantity) VALUES ('SKU-10001', 12), ('SKU-10002', 0), ('SKU-10003', 250);
INSERT INTO notifications (user_id, channel, message) VALUES (1, 'email', 'Your order has shipped');
"""


@dataclass(frozen=True)
class DbNode:
    """Where one instance lives: its files, socket and port."""

    name: str
    port: int
    datadir: Path
    confdir: Path

    @property
    def socket(self) -> Path:
        return self.confdir / "mysqld.sock"

    @property
    def cnf(self) -> Path:
        return self.confdir / "my.cnf"

    @property
    def error_log(self) -> Path:
        return self.confdir / "error.log"


def node(cfg: LabConfig, name: str) -> DbNode:
    return DbNode(name, cfg.ports[name], cfg.data_root / name, cfg.path("mariadb", name))


def template_dir(cfg: LabConfig) -> Path:
    return cfg.path("cache", "mariadb-template")


def build_template(cfg: LabConfig) -> Path:
    """System tables made once per lab directory; copying them is much faster than installing."""
    tpl = template_dir(cfg)
    if (tpl / ".complete").exists():
        return tpl
    if shutil.which("mariadb-install-db") is None:
        raise LabError("mariadb-install-db is missing: install the Debian package mariadb-server")
    shutil.rmtree(tpl, ignore_errors=True)
    tpl.mkdir(parents=True)
    defaults = tpl.parent / "template.cnf"
    defaults.write_text("[mariadbd]\n" + SERVER_SETTINGS)
    init_sql = tpl.parent / "template-init.sql"
    init_sql.write_text("FLUSH PRIVILEGES;\n")
    res = subprocess.run(
        [
            "mariadb-install-db",
            f"--defaults-file={defaults}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            f"--datadir={tpl}",
            "--user=root",
            f"--extra-file={init_sql}",
        ],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise LabError(f"mariadb-install-db failed: {(res.stderr or res.stdout).strip().splitlines()[-1:]}")
    (tpl / ".complete").write_text("")
    return tpl


def write_config(cfg: LabConfig, n: DbNode) -> None:
    n.confdir.mkdir(parents=True, exist_ok=True)
    (n.confdir / "tmp").mkdir(exist_ok=True)  # per instance: a shared tmpdir breaks parallel starts
    n.cnf.write_text(
        f"""[mariadbd]
user=root
datadir={n.datadir}
socket={n.socket}
port={n.port}
bind-address={HOST}
tmpdir={n.confdir / "tmp"}
log-error={n.error_log}
pid-file={n.confdir / "mysqld.pid"}
server_id={SERVER_IDS[n.name]}
gtid_domain_id={DOMAIN_IDS[n.name]}
log_bin=mysql-bin
log_slave_updates=ON
binlog_format=ROW
gtid_strict_mode=ON
report_host={HOST}
report_port={n.port}
{SERVER_SETTINGS}"""
    )


def start(cfg: LabConfig, procs: ProcessTable, name: str, *, fresh: bool, read_only: bool = False) -> None:
    """Start an instance; ``fresh`` copies the template (new empty server), otherwise the datadir is reused."""
    n = node(cfg, name)
    if fresh:
        shutil.rmtree(n.datadir, ignore_errors=True)
        n.datadir.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(build_template(cfg), n.datadir, ignore=shutil.ignore_patterns(".complete"))
    write_config(cfg, n)
    argv = ["mariadbd", f"--defaults-file={n.cnf}"]
    if read_only:
        argv.append("--read-only")  # comes up fenced: no window in which it takes writes
    procs.start(name, argv, log_path=cfg.path("logs", f"{name}.log"))


def connect(cfg: LabConfig, name: str, *, root_password: str | None, timeout: float = 2) -> pymysql.Connection:
    """Management connection over the instance's unix socket as root."""
    return pymysql.connect(
        unix_socket=str(node(cfg, name).socket),
        user="root",
        password=root_password or "",
        connect_timeout=timeout,
        read_timeout=10,
        autocommit=True,
    )


def wait_ready(cfg: LabConfig, procs: ProcessTable, name: str, root_password: str | None, timeout: float = 30) -> None:
    """Ready means a real login works (mariadb-admin ping answers before logins do)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        rec = procs.get(name)
        if rec is None or not rec.running:
            raise LabError(f"{name} exited during start-up: {tail(node(cfg, name).error_log)}")
        try:
            connect(cfg, name, root_password=root_password, timeout=1).close()
            return
        except pymysql.MySQLError as exc:
            last = str(exc)
        time.sleep(0.05)
    raise LabError(f"{name} did not accept logins within {timeout:.0f}s ({last}); see {node(cfg, name).error_log}")


def tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except FileNotFoundError:
        return f"no log at {path}"


def execute(conn: pymysql.Connection, statements: list[str] | str, args=None) -> list:
    """Run statements in order; returns the rows of the last one."""
    if isinstance(statements, str):
        statements = [statements]
    rows: list = []
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        for stmt in statements:
            cur.execute(stmt, args)
            rows = cur.fetchall()
    return rows


def account_statements(secrets: dict[str, str]) -> list[str]:
    """Accounts for one instance; kept out of the binlog so each server owns its own."""
    u = DB_USERS

    def pw(role: str) -> str:
        return pymysql.converters.escape_string(secrets[role])

    return [
        "SET SESSION sql_log_bin=0",
        "DELETE FROM mysql.global_priv WHERE User='root' AND Host<>'localhost'",
        "FLUSH PRIVILEGES",
        f"ALTER USER 'root'@'localhost' IDENTIFIED BY '{pw('root')}'",
        # The automation: everything it needs to inspect, fence and promote.
        f"CREATE USER '{u['admin']}'@'%' IDENTIFIED BY '{pw('admin')}'",
        f"GRANT ALL PRIVILEGES ON *.* TO '{u['admin']}'@'%'",
        f"CREATE USER '{u['replication']}'@'%' IDENTIFIED BY '{pw('replication')}'",
        f"GRANT REPLICATION SLAVE ON *.* TO '{u['replication']}'@'%'",
        # The services: data only, so read_only really stops them.
        f"CREATE USER '{u['app']}'@'%' IDENTIFIED BY '{pw('app')}'",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {DB_NAME}.* TO '{u['app']}'@'%'",
        f"CREATE USER '{u['exporter']}'@'%' IDENTIFIED BY '{pw('exporter')}'",
        f"GRANT PROCESS, BINLOG MONITOR, SLAVE MONITOR, REPLICATION MASTER ADMIN ON *.* TO '{u['exporter']}'@'%'",
        "SET SESSION sql_log_bin=1",
    ]


def replicate_from(source_port: int, secrets: dict[str, str], use_gtid: str = "slave_pos", delay: int = 0) -> list[str]:
    pw = pymysql.converters.escape_string(secrets["replication"])
    return [
        "STOP SLAVE",
        "RESET SLAVE ALL",
        f"CHANGE MASTER TO MASTER_HOST='{HOST}', MASTER_PORT={source_port}, "
        f"MASTER_USER='{DB_USERS['replication']}', MASTER_PASSWORD='{pw}', "
        f"MASTER_USE_GTID={use_gtid}, MASTER_CONNECT_RETRY=1" + (f", MASTER_DELAY={int(delay)}" if delay else ""),
        "START SLAVE",
    ]


def bootstrap(cfg: LabConfig, procs: ProcessTable, secrets: dict[str, str], topo: topologies.Topology) -> None:
    """Start every server of the topology from the template, create accounts, seed shop on each
    cluster's primary, and make the others its replicas, in sync (a delayed one gets its delay once
    it has the schema)."""
    build_template(cfg)
    for s in topo.servers:
        start(cfg, procs, s.name, fresh=True)
    for s in topo.servers:
        wait_ready(cfg, procs, s.name, root_password=None)
        conn = connect(cfg, s.name, root_password=None)
        try:
            execute(conn, account_statements(secrets))
        finally:
            conn.close()
    for cluster in topo.clusters:
        with admin(cfg, cluster.primary.name, secrets) as conn:
            execute(conn, [s for s in SCHEMA.split(";\n") if s.strip()])
        replicas = [s for s in cluster.servers if not s.primary]
        for s in replicas:
            with admin(cfg, s.name, secrets) as conn:
                execute(conn, ["SET GLOBAL read_only=1", *replicate_from(cfg.ports[cluster.primary.name], secrets)])
        for s in replicas:
            wait_caught_up(cfg, secrets, s.name, cluster.primary.name)
            if s.delay:
                with admin(cfg, s.name, secrets) as conn:
                    execute(conn, ["STOP SLAVE", f"CHANGE MASTER TO MASTER_DELAY={int(s.delay)}", "START SLAVE"])


def bootstrap_pair(cfg: LabConfig, procs: ProcessTable, secrets: dict[str, str]) -> None:
    """Start both servers of the default pair from the template, create accounts, seed shop, replicate."""
    bootstrap(cfg, procs, secrets, topologies.get(topologies.DEFAULT_TOPOLOGY))


class admin:
    """``with admin(cfg, name, secrets) as conn``: root session on one instance."""

    def __init__(self, cfg: LabConfig, name: str, secrets: dict[str, str], timeout: float = 2):
        self.conn = connect(cfg, name, root_password=secrets["root"], timeout=timeout)

    def __enter__(self) -> pymysql.Connection:
        return self.conn

    def __exit__(self, *exc) -> None:
        self.conn.close()


def gtid_seq(gtid_list: str | None, domain: int = 0) -> int:
    """Highest sequence number of a domain in a MariaDB GTID list such as '0-1-57,1-2-3'."""
    best = 0
    for part in (gtid_list or "").split(","):
        bits = part.strip().split("-")
        if len(bits) == 3 and bits[0].isdigit() and int(bits[0]) == domain:
            best = max(best, int(bits[2]))
    return best


def replica_status(conn: pymysql.Connection) -> dict | None:
    rows = execute(conn, "SHOW SLAVE STATUS")
    return rows[0] if rows else None


def wait_caught_up(
    cfg: LabConfig, secrets: dict[str, str], replica: str, source: str, timeout: float = 20, received: bool = False
) -> None:
    """Wait until both replica threads run and the replica has executed everything the source binlogged
    (with ``received``, only received it: a delayed replica applies it later, on purpose)."""
    deadline = time.monotonic() + timeout
    while True:
        with admin(cfg, replica, secrets) as rep:
            rs = replica_status(rep) or {}
        if rs.get("Slave_IO_Running") == "Yes" and rs.get("Slave_SQL_Running") == "Yes":
            break
        if time.monotonic() > deadline:
            err = rs.get("Last_IO_Error") or rs.get("Last_SQL_Error") or "threads not running"
            raise LabError(f"{replica} is not replicating from {source} after {timeout:.0f}s: {err}")
        time.sleep(0.05)
    with admin(cfg, source, secrets) as src:
        target = execute(src, "SELECT @@gtid_binlog_pos AS pos")[0]["pos"]
    if received:
        while True:
            with admin(cfg, replica, secrets) as rep:
                got = (replica_status(rep) or {}).get("Gtid_IO_Pos") or ""
            if all(gtid_seq(got, d) >= gtid_seq(target, d) for d in gtid_domains(target)):
                return
            if time.monotonic() > deadline:
                raise LabError(f"{replica} did not receive {source}'s transactions within {timeout:.0f}s ({target})")
            time.sleep(0.05)
    with admin(cfg, replica, secrets) as rep:
        rows = execute(rep, "SELECT MASTER_GTID_WAIT(%s, %s) AS r", (target, timeout))
    if rows[0]["r"] != 0:
        raise LabError(f"{replica} did not catch up with {source} within {timeout:.0f}s (target GTID {target})")


def gtid_domains(gtid_list: str | None) -> set[int]:
    return {int(p.split("-")[0]) for p in (gtid_list or "").split(",") if p.strip().split("-")[0].isdigit()}


def describe(cfg: LabConfig, name: str, secrets: dict[str, str]) -> dict:
    """Role and replication state of one instance, for `lab status`."""
    try:
        with admin(cfg, name, secrets, timeout=1) as conn:
            v = execute(conn, "SELECT @@read_only AS ro, @@gtid_binlog_pos AS pos, @@gtid_slave_pos AS spos")[0]
            rs = replica_status(conn)
    except pymysql.MySQLError as exc:
        return {"healthy": False, "role": "unknown", "detail": f"cannot log in: {exc.args[-1]}"}
    info = {"read_only": bool(v["ro"]), "gtid_binlog_pos": v["pos"], "role": "primary"}
    if rs:
        io, sql = rs["Slave_IO_Running"], rs["Slave_SQL_Running"]
        info.update(role="replica", source=f"{rs['Master_Host']}:{rs['Master_Port']}", io=io, sql=sql)
        info["healthy"] = io == "Yes" and sql == "Yes" and info["read_only"]
        err = rs["Last_IO_Error"] or rs["Last_SQL_Error"]
        delay = int(rs.get("SQL_Delay") or 0)
        info["detail"] = (
            f"replica of {info['source']}, io={io} sql={sql}"
            + (f", delayed {delay}s" if delay else "")
            + (f", error: {err}" if err else "")
        )
    else:
        info["healthy"] = not info["read_only"]
        info["detail"] = f"primary, {'read-only' if info['read_only'] else 'read-write'}, gtid {v['pos'] or '-'}"
    return info
