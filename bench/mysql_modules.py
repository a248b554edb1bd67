"""Benchmark: the runbook's database steps (2.2) done by hand with the mysql client vs the collection's modules.

Runs against a lab of its own (started and stopped here). Reports medians; never asserts on time.

    .venv/bin/python bench/mysql_modules.py [--runs 5] [--port-base 28000]

Steps compared:

* status check: runbook ``mysql -e "SHOW MASTER STATUS"`` on the primary, then ``mysql -e "SHOW SLAVE
  STATUS"`` on the secondary, vs one ``mysql_replication_info`` task for both servers (and vs two tasks).
* failover after the primary died: runbook ``mysql -e "STOP SLAVE; RESET SLAVE ALL"`` (no check, no
  read_only change, no proof) vs ``mysql_promote`` (gate, promotion, read-back, heartbeat write).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "collection")]

from incidentlab.config import DB_USERS, HOST  # noqa: E402
from incidentlab.lab import Lab  # noqa: E402
from support import run_module  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def mysql_cli(lab: Lab, name: str, sql: str) -> None:
    """The runbook's way: one mysql client process per statement batch (password via MYSQL_PWD, not argv)."""
    env = dict(os.environ, MYSQL_PWD=lab.secrets()["admin"])
    cmd = ["mariadb", "-h", HOST, "-P", str(lab.cfg.ports[name]), "-u", DB_USERS["admin"], "-e", sql]
    subprocess.run(cmd, env=env, check=True, capture_output=True)


def login(lab: Lab, name: str) -> dict:
    return dict(
        login_host=HOST,
        login_port=lab.cfg.ports[name],
        login_user=DB_USERS["admin"],
        login_password=lab.secrets()["admin"],
    )


def ping() -> None:
    # A dict argument: an empty one would be taken as raw params, and ping would fail on the controller.
    assert not run_module("ansible.builtin.ping", {"data": "pong"})["failed"]


def info_both(lab: Lab) -> None:
    primary, replica = login(lab, "db-primary"), login(lab, "db-replica")
    res = run_module(
        "mysql_replication_info",
        dict(
            login_user=primary["login_user"],
            login_password=primary["login_password"],
            servers=[
                dict(name="primary", login_port=primary["login_port"], login_host=HOST),
                dict(name="replica", login_port=replica["login_port"], login_host=HOST),
            ],
        ),
    )
    assert not res["failed"], res["msg"]


def info_each(lab: Lab) -> None:
    for name in ("db-primary", "db-replica"):
        assert not run_module("mysql_replication_info", login(lab, name))["failed"]


def module_own_work(lab: Lab) -> None:
    """What the module itself spends (connect, detect flavour, 4 statements, normalise) for both servers."""
    from ansible_collections.incident.response.plugins.module_utils.common import bounded_map
    from ansible_collections.incident.response.plugins.module_utils.mysql_replication import Server

    def one(name):
        server = Server(dict(login(lab, name), login_unix_socket=None, connect_timeout=5))
        try:
            return server.state()
        finally:
            server.close()

    bounded_map(one, ["db-primary", "db-replica"], 2)


def failover_runbook(lab: Lab) -> None:
    mysql_cli(lab, "db-replica", "STOP SLAVE; RESET SLAVE ALL;")


def failover_module(lab: Lab) -> None:
    hb = dict(table="shop.heartbeat", login_user=DB_USERS["app"], login_password=lab.secrets()["app"])
    res = run_module("mysql_promote", dict(login(lab, "db-replica"), heartbeat=hb))
    assert res.get("promoted"), res["msg"]


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:7.0f} ms (min {min(samples) * 1000:5.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port-base", type=int, default=28000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-mysql-") as tmp:
        lab = Lab.open(Path(tmp), args.port_base)
        lab.up()
        try:
            rows = []
            status = {
                "baseline: ansible.builtin.ping task (Ansible's fixed cost per task)": lambda: ping(),
                "runbook: mysql CLI, SHOW MASTER STATUS + SHOW SLAVE STATUS": lambda: (
                    mysql_cli(lab, "db-primary", "SHOW MASTER STATUS"),
                    mysql_cli(lab, "db-replica", "SHOW SLAVE STATUS"),
                ),
                "mysql_replication_info, both servers in one task": lambda: info_both(lab),
                "mysql_replication_info, one task per server (2 tasks)": lambda: info_each(lab),
                "  of which the module's own work (both servers, in-process)": lambda: module_own_work(lab),
            }
            for label, fn in status.items():
                fn()  # warm-up
                rows.append((label, [timed(fn) for _ in range(args.runs)]))

            for label, fn in (
                ("runbook: STOP SLAVE; RESET SLAVE ALL (no gate, read_only left on)", failover_runbook),
                ("mysql_promote: gate + promotion + read-back + heartbeat", failover_module),
            ):
                samples = []
                for _ in range(args.runs):
                    lab.reset_databases()
                    lab.break_fault("db-primary-down")
                    samples.append(timed(lambda fn=fn: fn(lab)))
                rows.append((label, samples))
            lab.reset_databases()
        finally:
            lab.down()

    print(f"median of {args.runs} runs, MariaDB 10.11 lab pair on localhost")
    for label, samples in rows:
        print(f"{median_ms(samples)}  {label}")


if __name__ == "__main__":
    main()
