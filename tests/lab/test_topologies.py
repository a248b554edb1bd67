"""The lab's database topologies from the command line: bad input is one clear line, and changes nothing.
(The replicas and clusters topologies themselves run in tests/modules/test_mysql_siblings.py and
tests/e2e/test_topology.py, on labs of their own.)"""

from __future__ import annotations

import pytest

from support import incidentctl

pytestmark = pytest.mark.lab


def one_line_error(res, code: int, words: str) -> None:
    assert res.returncode == code, res.stdout + res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], res.stderr
    assert "Traceback" not in res.stdout + res.stderr


def test_an_unknown_topology_is_refused_before_anything_starts(tmp_path):
    res = incidentctl("lab", "up", "--topology", "ring", "--lab-dir", str(tmp_path / "lab"))
    one_line_error(res, 2, "unknown topology 'ring': use one of pair, replicas, clusters")
    assert not (tmp_path / "lab" / "lab.json").exists()


def test_database_faults_name_a_server_of_the_running_topology(lab):
    opt = ("--lab-dir", str(lab.cfg.lab_dir))
    one_line_error(
        incidentctl("lab", "break", "db-primary-down", "--server", "payments-primary", *opt),
        2,
        "no database server 'payments-primary' in the pair topology; it has db-primary, db-replica",
    )
    one_line_error(
        incidentctl("lab", "break", "service-down", "payment-service", "--server", "db-primary", *opt),
        2,
        "fault service-down does not act on a database server",
    )
    one_line_error(
        incidentctl("lab", "up", "--topology", "replicas", *opt),
        2,
        "the lab is up with the pair topology; run `incidentctl lab down` before `lab up --topology replicas`",
    )
    assert lab.active_faults() == []
    assert all(c.healthy for c in lab.status() if c.kind == "database")
