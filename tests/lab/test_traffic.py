"""The traffic generator writes to the primary all the time; tests that count transactions pause it."""

from __future__ import annotations

import time
from pathlib import Path

from support import db, scalar, wait_for


def binlog_pos(lab) -> str:
    with db(lab, "db-primary", role="admin", database=None) as conn:
        return scalar(conn, "SELECT @@gtid_binlog_pos")


def test_paused_traffic_writes_nothing_and_heal_resumes_it(lab, healed):
    lab.pause_traffic()
    before = binlog_pos(lab)
    traffic = {c.name: c for c in lab.status()}["traffic"]
    assert traffic.running and traffic.detail.startswith("paused since")
    # Paused, not stopped (SIGSTOP): it still acts on `lab down`'s SIGTERM at once.
    pid = lab.procs.get("traffic").pid
    assert Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T"
    # The generator writes about two rows a second: three quiet seconds say it sends nothing.
    watch_until = time.monotonic() + 3
    while time.monotonic() < watch_until:
        assert binlog_pos(lab) == before, "a write reached the primary while the traffic was paused"
        time.sleep(0.2)

    assert "traffic generator resumed" in lab.heal()
    wait_for(lambda: binlog_pos(lab) != before, 30, "the generator's writes to reach the primary again")
    assert {c.name: c for c in lab.status()}["traffic"].detail == "10 requests/s"


def test_a_pause_already_on_stays_on_after_a_nested_one(lab):
    with lab.traffic_paused():
        with lab.traffic_paused():
            pass
        assert "paused" in {c.name: c for c in lab.status()}["traffic"].detail
    assert {c.name: c for c in lab.status()}["traffic"].detail == "10 requests/s"
