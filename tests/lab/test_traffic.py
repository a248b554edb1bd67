"""The traffic generator writes to the primary all the time; tests that count transactions pause it."""

from __future__ import annotations

import json
from pathlib import Path

from incidentlab import traffic
from support import db, incidentctl, scalar, wait_for


def binlog_pos(lab) -> str:
    with db(lab, "db-primary", role="admin", database=None) as conn:
        return scalar(conn, "SELECT @@gtid_binlog_pos")


def every_loop_held(lab) -> bool:
    """Every request loop of the generator has come to the gate since the current pause and been held:
    each had its turn to send and did not (no waiting for a quiet while)."""
    token = traffic.pause_token(lab.cfg)
    held, loops = traffic.loops_held(lab.cfg, token) if token else (0, 0)
    return loops > 0 and held == loops


def test_paused_traffic_writes_nothing_and_heal_resumes_it(lab, healed):
    lab.pause_traffic()
    before = binlog_pos(lab)
    tr = {c.name: c for c in lab.status()}["traffic"]
    assert tr.running and tr.detail.startswith("paused since")
    # Paused, not stopped (SIGSTOP): it still acts on `lab down`'s SIGTERM at once.
    pid = lab.procs.get("traffic").pid
    assert Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T"
    wait_for(lambda: every_loop_held(lab), 30, "every request loop to be held at the pause")
    assert binlog_pos(lab) == before, "a write reached the primary while the traffic was paused"

    assert "traffic generator resumed" in lab.heal()
    wait_for(lambda: binlog_pos(lab) != before, 30, "the generator's writes to reach the primary again")
    assert {c.name: c for c in lab.status()}["traffic"].detail == "10 requests/s"


def test_a_pause_already_on_stays_on_after_a_nested_one(lab):
    with lab.traffic_paused():
        with lab.traffic_paused():
            pass
        assert "paused" in {c.name: c for c in lab.status()}["traffic"].detail
        # The nested pause took a new token; the loops held before count for it too.
        wait_for(lambda: every_loop_held(lab), 30, "every request loop to be held at the nested pause")
    assert {c.name: c for c in lab.status()}["traffic"].detail == "10 requests/s"


def _traffic(lab, *args: str):
    return incidentctl("lab", "traffic", *args, "--lab-dir", str(lab.cfg.lab_dir))


def test_traffic_pause_command_lasts_across_commands_until_resume(lab, healed):
    res = _traffic(lab, "pause")
    assert res.returncode == 0 and res.stdout.strip() == "traffic generator paused: no request in flight", res
    before = binlog_pos(lab)
    # The command has exited; the generator stays paused, and other commands see it.
    wait_for(lambda: every_loop_held(lab), 30, "every request loop to be held at the pause")
    assert binlog_pos(lab) == before, "a write reached the primary while the traffic was paused"
    st = json.loads(_traffic(lab, "status", "--json").stdout)
    assert st["running"] and st["paused"] and st["drained"] and st["paused_since"].endswith("Z")
    assert _traffic(lab, "status").stdout.startswith("traffic generator: paused since ")
    status = json.loads(incidentctl("lab", "status", "--json", "--lab-dir", str(lab.cfg.lab_dir)).stdout)
    detail = {c["name"]: c["detail"] for c in status["components"]}["traffic"]
    assert detail.startswith("paused since") and "incidentctl lab traffic resume" in detail

    res = _traffic(lab, "resume")
    assert res.returncode == 0 and res.stdout.strip() == "traffic generator resumed"
    wait_for(lambda: binlog_pos(lab) != before, 30, "the generator's writes to reach the primary again")
    assert json.loads(_traffic(lab, "status", "--json").stdout)["paused"] is False
    assert _traffic(lab, "resume").stdout.strip() == "traffic generator was not paused"


def test_lab_heal_ends_a_pause_made_by_the_command(lab, healed):
    assert _traffic(lab, "pause").returncode == 0
    res = incidentctl("lab", "heal", "--lab-dir", str(lab.cfg.lab_dir))
    assert res.returncode == 0 and "traffic generator resumed" in res.stdout
    assert json.loads(_traffic(lab, "status", "--json").stdout)["paused"] is False


def test_traffic_commands_refuse_a_lab_that_is_not_up(tmp_path):
    res = incidentctl("lab", "traffic", "pause", "--lab-dir", str(tmp_path / "nolab"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().endswith("is not up: run `incidentctl lab up` first")


def test_an_answer_cut_short_is_counted_and_the_request_loop_goes_on():
    """A service or LB that goes away mid-answer (IncompleteRead) once killed its request loop: that loop
    sent nothing more and was never held at a pause, so every later pause timed out."""
    import contextlib
    import socket
    import threading
    from types import SimpleNamespace

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer_cut_short():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n")  # and no body
                conn.shutdown(socket.SHUT_WR)  # a clean end (no reset): the client reads an answer cut short
                with contextlib.suppress(OSError):
                    while conn.recv(65536):
                        pass

    threading.Thread(target=answer_cut_short, daemon=True).start()
    cfg = SimpleNamespace(url=lambda entry, path: f"http://127.0.0.1:{port}{path}")
    gen = traffic.Traffic(cfg, rate=20.0)
    try:
        assert gen.one("lb-global", "user-service") == "cut short"
        looping = threading.Thread(target=gen.loop, args=("lb-global", "user-service"), daemon=True)
        looping.start()
        wait_for(lambda: gen.counts[("lb-global", "cut short")] >= 3, 30, "three answers cut short, one loop")
        assert looping.is_alive() and gen.in_flight in (0, 1)
    finally:
        gen.stop.set()
        server.close()
