"""A small Prometheus exporter for the lab databases' replication state.

``python -m incidentlab.exporter --lab-dir DIR`` serves ``/metrics`` on the lab's
``exporter`` port. Every scrape logs in to each database of the lab's topology (like
mysqld_exporter does) and reports, labelled ``db="db-primary"`` / ``db="db-replica"`` (and
``cluster``): up, read_only, GTID position, replica threads, seconds behind (absent when the
server says NULL: unknown is not zero), the configured delay, and transactions behind the source
(from GTID positions of the cluster's GTID domain).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pymysql

from .config import DB_USERS, HOST, LabConfig
from .mariadb import gtid_seq, lab_topology

# Well inside Prometheus' scrape timeout (monitoring.SCRAPE_TIMEOUT), as mysqld_exporter keeps inside the
# timeout Prometheus sends it: a frozen server (a partition) is reported down, instead of failing the whole
# scrape and leaving every database without metrics, so without DatabaseDown.
SERVER_TIMEOUT = 0.6


def _login(host: str, port: int, secrets: dict[str, str]) -> pymysql.Connection:
    return pymysql.connect(
        host=host,
        port=port,
        user=DB_USERS["exporter"],
        password=secrets["exporter"],
        connect_timeout=SERVER_TIMEOUT,
        read_timeout=SERVER_TIMEOUT,
        write_timeout=SERVER_TIMEOUT,
        autocommit=True,
    )


def probe(cfg: LabConfig, name: str, secrets: dict[str, str], domain: int = 0) -> dict:
    out: dict = {"up": 0}
    try:
        conn = _login(HOST, cfg.ports[name], secrets)
    except pymysql.MySQLError:
        return out
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SELECT @@read_only AS ro, @@gtid_binlog_pos AS pos, @@gtid_slave_pos AS spos")
            v = cur.fetchone()
            cur.execute("SHOW SLAVE STATUS")
            rs = cur.fetchone()
            cur.execute("SHOW SLAVE HOSTS")
            replicas = len(cur.fetchall())
    except pymysql.MySQLError:
        return out
    finally:
        conn.close()
    out.update(up=1, read_only=int(v["ro"]), binlog_seq=gtid_seq(v["pos"], domain), pos=v["pos"], replicas=replicas)
    if rs:
        out["replica"] = {
            "io": int(rs["Slave_IO_Running"] == "Yes"),
            "sql": int(rs["Slave_SQL_Running"] == "Yes"),
            "behind": rs["Seconds_Behind_Master"],
            "io_errno": int(rs["Last_IO_Errno"] or 0),
            "sql_errno": int(rs["Last_SQL_Errno"] or 0),
            "executed_seq": gtid_seq(v["spos"], domain),
            "delay": int(rs.get("SQL_Delay") or 0),
            "source": (rs["Master_Host"], int(rs["Master_Port"])),
        }
    return out


def source_seq(host: str, port: int, secrets: dict[str, str], domain: int = 0) -> int | None:
    try:
        conn = _login(host, port, secrets)
    except pymysql.MySQLError:
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@gtid_binlog_pos")
            return gtid_seq(cur.fetchone()[0], domain)
    except pymysql.MySQLError:
        return None
    finally:
        conn.close()


def render(
    cfg: LabConfig, secrets: dict[str, str], pool: ThreadPoolExecutor, clusters: dict[str, tuple[str, int]]
) -> str:
    """``clusters``: server name -> (its cluster, the cluster's GTID domain)."""
    start = time.perf_counter()
    names = list(clusters)
    results = dict(zip(names, pool.map(lambda n: probe(cfg, n, secrets, clusters[n][1]), names), strict=True))
    metrics: dict[str, list[str]] = {}
    several = len({c for c, _ in clusters.values()}) > 1  # the default pair keeps its labels as they were

    def add(metric: str, db: str, value, extra: str = "") -> None:
        if value is not None:
            where = f',cluster="{clusters[db][0]}"' if several else ""
            metrics.setdefault(metric, []).append(f'{metric}{{db="{db}"{where}{extra}}} {value}')

    for db, r in results.items():
        add("mysql_up", db, r["up"])
        if not r["up"]:
            continue
        add("mysql_read_only", db, r["read_only"])
        add("mysql_gtid_binlog_seq", db, r["binlog_seq"])
        add("mysql_gtid_info", db, 1, f',gtid_binlog_pos="{r["pos"]}"')
        add("mysql_connected_replicas", db, r["replicas"])
        rep = r.get("replica")
        add("mysql_replica_configured", db, int(bool(rep)))
        if rep:
            add("mysql_replica_io_running", db, rep["io"])
            add("mysql_replica_sql_running", db, rep["sql"])
            add("mysql_replica_seconds_behind_source", db, rep["behind"])
            add("mysql_replica_last_io_errno", db, rep["io_errno"])
            add("mysql_replica_last_sql_errno", db, rep["sql_errno"])
            add("mysql_replica_gtid_executed_seq", db, rep["executed_seq"])
            add("mysql_replica_sql_delay_seconds", db, rep["delay"])
            seq = source_seq(*rep["source"], secrets, clusters[db][1])
            if seq is not None:
                add("mysql_replica_transactions_behind", db, max(0, seq - rep["executed_seq"]))
    lines = []
    for metric, samples in metrics.items():
        lines.append(f"# TYPE {metric} gauge")
        lines.extend(samples)
    lines.append("# TYPE mysql_exporter_scrape_seconds gauge")
    lines.append(f"mysql_exporter_scrape_seconds {time.perf_counter() - start:.4f}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lab-dir", type=Path, required=True)
    args = parser.parse_args()
    cfg = LabConfig.resolve(args.lab_dir)
    secrets = cfg.load_secrets()
    pool = ThreadPoolExecutor(max_workers=4)
    topo = lab_topology(cfg)
    clusters = {s.name: (c.name, c.domain_id) for c in topo.clusters for s in c.servers}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = render(cfg, secrets, pool, clusters).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((HOST, cfg.ports["exporter"]), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
