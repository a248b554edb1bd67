"""`incidentctl lab up | down | status` through the real command line, on a lab of its own."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from incidentlab.config import HOST, LabConfig, port_open
from incidentlab.kube import lb
from incidentlab.procs import MARKER_ENV, ProcessTable
from support import incidentctl, lab_port_base, wait_for

PORT_BASE = lab_port_base() + 1000  # the second half of this run's claimed range


@pytest.fixture
def own_lab(tmp_path):
    lab_dir = tmp_path / "lab"
    yield lab_dir, ["--lab-dir", str(lab_dir)]
    incidentctl("lab", "down", "--lab-dir", str(lab_dir))


def _lab_processes(lab_dir) -> list[int]:
    cfg = LabConfig(lab_dir, PORT_BASE)
    return ProcessTable(cfg.path("run"), cfg.lab_id).sweep()


def _one_line_error(res: subprocess.CompletedProcess, code: int, needle: str) -> None:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert needle in res.stderr


def test_up_is_idempotent_and_down_leaves_no_process_or_port(own_lab):
    lab_dir, opt = own_lab
    res = incidentctl("lab", "up", *opt, "--port-base", str(PORT_BASE))
    assert res.returncode == 0, res.stderr
    pids = _lab_processes(lab_dir)
    assert len(pids) >= 6

    again = incidentctl("lab", "up", *opt)
    assert again.returncode == 0 and "already up" in again.stderr
    assert sorted(_lab_processes(lab_dir)) == sorted(pids)

    status = json.loads(incidentctl("lab", "status", "--json", *opt).stdout)
    assert status["healthy"] is True

    assert incidentctl("lab", "down", *opt).returncode == 0
    assert _lab_processes(lab_dir) == []
    cfg = LabConfig(lab_dir, PORT_BASE)
    assert [name for name, port in cfg.ports.items() if port_open(port)] == []
    status = incidentctl("lab", "status", "--json", *opt)
    assert status.returncode == 1 and json.loads(status.stdout)["status"] == "down"


def test_up_after_down_starts_with_the_global_entry_on_the_primary_region(own_lab):
    lab_dir, opt = own_lab
    assert incidentctl("lab", "up", *opt, "--port-base", str(PORT_BASE)).returncode == 0
    cfg = LabConfig(lab_dir, PORT_BASE)

    def entry() -> tuple[str, str]:
        status = json.loads(incidentctl("lab", "status", "--json", *opt).stdout)
        detail = {c["name"]: c["detail"] for c in status["components"]}["lb-global"]
        with urllib.request.urlopen(cfg.url("lb-global", "/user-service/actuator/health"), timeout=5) as r:
            return detail, r.headers["X-Lab-Region"]

    # A failover, as traffic_failover does it: the other region's LB in upstream.conf, then a reload.
    global_dir = lb.lb_dir(cfg, "global")
    (global_dir / "upstream.conf").write_text(lb.render_upstream(cfg, "secondary"))
    assert lb.reload(global_dir / "nginx.pid")
    wait_for(lambda: entry() == ("UP via secondary", "secondary"), 30, "the global entry on the secondary region")

    assert incidentctl("lab", "down", *opt).returncode == 0
    assert incidentctl("lab", "up", *opt).returncode == 0
    # A fresh lab: the primary region takes the traffic again, so its faults show in its alerts.
    assert entry() == ("UP via primary", "primary")


def test_up_cleans_up_after_a_killed_controller(own_lab):
    lab_dir, opt = own_lab
    env = {**os.environ, "INCIDENTLAB_PORT_BASE": str(PORT_BASE)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "incidentctl", "lab", "up", *opt],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # Kill the controller in the middle of `up`, once some lab processes exist.
    wait_for(lambda: len(_lab_processes(lab_dir)) >= 2, 60, "lab processes to appear")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _lab_processes(lab_dir), "the killed controller left lab processes behind (that is the point)"

    res = incidentctl("lab", "up", *opt, env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(incidentctl("lab", "status", "--json", *opt).stdout)["healthy"] is True
    assert incidentctl("lab", "down", *opt).returncode == 0
    assert _lab_processes(lab_dir) == []


def test_down_stops_an_nginx_that_a_killed_controller_never_recorded(own_lab):
    """nginx writes its title over its environment (and the lab's marker): `down` knows it by its prefix.

    A controller killed while it starts nginx (Popen waits for the exec) leaves an nginx without a record.
    """
    lab_dir, opt = own_lab
    cfg = LabConfig(lab_dir, PORT_BASE)
    cfg.ensure_dir()
    lb.write_global(cfg)
    nginx = subprocess.Popen(
        lb.nginx_argv(cfg, "global"),
        env={**os.environ, MARKER_ENV: cfg.lab_id},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: port_open(cfg.ports["lb-global"]), 60, "the unrecorded nginx listening")
        assert nginx.pid in _lab_processes(lab_dir)
        assert incidentctl("lab", "down", *opt).returncode == 0
        assert nginx.wait(timeout=10) is not None
        assert not port_open(cfg.ports["lb-global"]) and _lab_processes(lab_dir) == []
    finally:
        if nginx.poll() is None:
            os.killpg(nginx.pid, signal.SIGKILL)  # with its worker


def test_unknown_fault_is_one_clear_line(own_lab):
    _, opt = own_lab
    _one_line_error(incidentctl("lab", "break", "disk-full", *opt), 2, "unknown fault 'disk-full'")


def test_break_before_up_is_refused(own_lab):
    _, opt = own_lab
    _one_line_error(incidentctl("lab", "break", "db-primary-down", *opt), 2, "not up")


def test_unwritable_lab_directory_is_reported(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    # Root ignores permission bits, so make the directory impossible: its parent is a file.
    _one_line_error(incidentctl("lab", "up", "--lab-dir", str(blocker / "lab")), 4, "not writable")


def test_port_taken_by_another_program_is_reported(own_lab):
    _, opt = own_lab
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((HOST, PORT_BASE + 306))
        squatter.listen()
        res = incidentctl("lab", "up", *opt, "--port-base", str(PORT_BASE))
    _one_line_error(res, 4, f"port {PORT_BASE + 306} (db-primary) is already in use")
