"""Soak: many P0 drills in a row, each on a fresh lab, with writers running through them.

Rotates the faults ``db-primary-down``, ``db-primary-partitioned``, ``region-down`` and
``replica-lag`` followed by ``db-primary-down``. Beside each response:

* a writer through the application (POST /order-service/api/records via the global entry point)
  and one straight to the primary database (the application's account), both keeping the rows
  the platform acknowledged;
* a sampler reading both database servers every 50 ms: a sample where both take writes is a
  double-writer window (must be 0).

Per drill: acknowledged rows lost (missing on the primary after the response; counted apart when
the replica had never received them, which asynchronous replication allows: a writer's rows reach
the replica in the order they were acknowledged, so the missing rows acknowledged before the fault
and after the last one the new primary has are the ones never received), double-writer
samples, promotions refused and why, the exit code, and the time from the response's start to the
first write the application accepted. Not part of CI: run it by hand.

  .venv/bin/python bench/soak.py [--drills 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from incidentlab import mariadb  # noqa: E402
from incidentlab.config import DB_USERS, HOST  # noqa: E402
from incidentlab.lab import Lab  # noqa: E402
from support import claim_port_base  # noqa: E402

FAULTS = ["db-primary-down", "db-primary-partitioned", "region-down", "replica-lag+db-primary-down"]


def connect(lab: Lab, name: str, role: str = "app", timeout: float = 1.0):
    return pymysql.connect(
        host=HOST, port=lab.cfg.ports[name], user=DB_USERS[role], password=lab.secrets()[role], database="shop",
        autocommit=True, connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout,
    )  # fmt: skip


class Writers(threading.Thread):
    """Writes until stopped; keeps what the platform acknowledged and when the application first wrote."""

    def __init__(self, lab: Lab):
        super().__init__(daemon=True)
        self.lab, self.stop = lab, threading.Event()
        # (acknowledged at, what): the orders the application acknowledged, the rows written straight to the primary
        self.app_acked: list[tuple[float, int]] = []
        self.db_acked: list[tuple[float, str]] = []
        self.first_app_write_after: dict[float, float] = {}
        self.since: float | None = None

    def run(self):
        n, conn = 0, None
        glob = self.lab.cfg.url("lb-global")
        while not self.stop.is_set():
            n += 1
            order = post_order(glob)
            if order is not None:
                self.app_acked.append((time.monotonic(), order))
                if self.since is not None and self.since not in self.first_app_write_after:
                    self.first_app_write_after[self.since] = time.monotonic()
            mark = f"soak-db-{n}"
            try:
                conn = conn or connect(self.lab, "db-primary")
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO heartbeat (source) VALUES (%s)", (mark,))
                self.db_acked.append((time.monotonic(), mark))
            except pymysql.MySQLError:
                conn = None
            time.sleep(0.02)


def post_order(glob: str) -> int | None:
    """The id of the order the application acknowledged (201), or None."""
    req = urllib.request.Request(f"{glob}/order-service/api/records", data=b"{}", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=1.0) as resp:
            return json.loads(resp.read())["id"] if resp.status == 201 else None
    except (OSError, ValueError, KeyError):
        return None


class Sampler(threading.Thread):
    """Counts samples where both servers take writes (read_only off and no replication)."""

    def __init__(self, lab: Lab):
        super().__init__(daemon=True)
        self.lab, self.stop, self.double = lab, threading.Event(), 0

    def writable(self, name: str) -> bool:
        try:
            with connect(self.lab, name, "admin", 0.3) as conn, conn.cursor() as cur:
                cur.execute("SELECT @@read_only")
                ro = cur.fetchone()[0]
                cur.execute("SHOW SLAVE STATUS")
                return not ro and not cur.fetchall()
        except pymysql.MySQLError:
            return False

    def run(self):
        while not self.stop.is_set():
            if self.writable("db-primary") and self.writable("db-replica"):
                self.double += 1
            time.sleep(0.05)


def lost(acked: list[tuple[float, object]], have: set, fault_at: float) -> tuple[int, int]:
    """(lost, never received) of one writer's acknowledged rows, given what the primary has now."""
    before = [x for t, x in acked if t < fault_at]
    last_kept = max((i for i, x in enumerate(before) if x in have), default=-1)
    unreceived = sum(1 for x in before[last_kept + 1 :] if x not in have)
    return sum(1 for _, x in acked if x not in have) - unreceived, unreceived


def missing(lab: Lab, writers: Writers, fault_at: float) -> dict:
    """Acknowledged rows absent on the platform's primary (whichever it is now), per writer."""
    for name in ("db-replica", "db-primary"):
        try:
            with connect(lab, name, "admin", 2.0) as conn, conn.cursor() as cur:
                cur.execute("SELECT @@read_only")
                if cur.fetchone()[0]:
                    continue
                cur.execute("SELECT source FROM heartbeat WHERE source LIKE 'soak-%%'")
                have_sources = {r[0] for r in cur.fetchall()}
                cur.execute("SELECT id FROM orders")
                have_orders = {r[0] for r in cur.fetchall()}
        except pymysql.MySQLError:
            continue
        app = lost(writers.app_acked, have_orders, fault_at)
        db = lost(writers.db_acked, have_sources, fault_at)
        return {"app": app, "db": db, "acked": len(writers.app_acked) + len(writers.db_acked)}
    n = len(writers.app_acked) + len(writers.db_acked)
    return {"app": (len(writers.app_acked), 0), "db": (len(writers.db_acked), 0), "acked": n}


def drill(fault: str, base: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        lab = Lab.open(Path(tmp) / "lab", base)
        lab.up()
        writers, sampler = Writers(lab), Sampler(lab)
        try:
            writers.start()
            sampler.start()
            time.sleep(2.0)  # some acknowledged rows before the fault
            fault_at = time.monotonic()
            for f in fault.split("+"):
                if f == "db-primary-down" and "replica-lag" in fault:
                    time.sleep(2.0)  # rows received but not applied
                if f == "db-primary-partitioned":
                    with mariadb.admin(lab.cfg, "db-replica", lab.secrets()) as conn:
                        mariadb.execute(conn, ["STOP SLAVE IO_THREAD", "SET GLOBAL slave_net_timeout = 5",
                                               "START SLAVE IO_THREAD"])  # fmt: skip
                if f != "replica-lag":
                    fault_at = time.monotonic()
                lab.break_fault(f)
            start = time.monotonic()
            writers.since = start
            env = {**os.environ, "INCIDENTLAB_DIR": str(lab.cfg.lab_dir),
                   "INCIDENTCTL_INCIDENTS_DIR": str(Path(tmp) / "incidents")}  # fmt: skip
            res = subprocess.run([str(Path(sys.executable).with_name("incidentctl")), "respond", "-i", "lab",
                                  "--yes", "--json"], env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
            took = time.monotonic() - start
            time.sleep(2.0)
            writers.stop.set()
            sampler.stop.set()
            writers.join(5)
            sampler.join(5)
            doc = json.loads(res.stdout) if res.stdout.strip().startswith("{") else {}
            refused = [f for f in doc.get("failures") or [] if "refusing to promote" in f]
            first = writers.first_app_write_after.get(start)
            gone = missing(lab, writers, fault_at)
            return {
                "fault": fault,
                "rc": res.returncode,
                "status": doc.get("status"),
                "took": round(took, 1),
                "first write": None if first is None else round(first - start, 2),
                "rows acknowledged": gone["acked"],
                "rows lost": gone["app"][0] + gone["db"][0],
                "never received": gone["app"][1] + gone["db"][1],
                "double-writer samples": sampler.double,
                "refused": refused,
            }
        finally:
            writers.stop.set()
            sampler.stop.set()
            lab.down()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--drills", type=int, default=20)
    args = ap.parse_args()
    base = claim_port_base()
    rows = []
    for i in range(args.drills):
        row = drill(FAULTS[i % len(FAULTS)], base)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"\n{args.drills} drills, load {os.getloadavg()[0]:.1f}\n")
    print(
        "| fault | exit | status | first write (s) | rows acknowledged | lost | never received by the replica "
        "| double-writer samples | promotions refused |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        refused = "; ".join(r["refused"])[:120] or "-"
        print(f"| {r['fault']} | {r['rc']} | {r['status']} | {r['first write']} | {r['rows acknowledged']} | "
              f"{r['rows lost']} | {r['never received']} | {r['double-writer samples']} | {refused} |")  # fmt: skip


if __name__ == "__main__":
    main()
