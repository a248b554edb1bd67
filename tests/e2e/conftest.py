"""A lab of its own for each end-to-end test: a procedure may promote, fail over or reconfigure
anything, and the next test must start from the state `lab up` makes."""

from __future__ import annotations

import os

import pytest

from incidentlab.lab import Lab
from support import lab_port_base


@pytest.fixture
def own_lab(tmp_path):
    lab = Lab.open(tmp_path / "lab", lab_port_base() + 1000)  # the claimed range's second half
    lab.up()
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture
def ctl_env(own_lab, tmp_path):
    """Environment for incidentctl against that lab, with an incidents directory of its own."""
    return {
        **os.environ,
        "INCIDENTLAB_DIR": str(own_lab.cfg.lab_dir),
        "INCIDENTCTL_INCIDENTS_DIR": str(tmp_path / "incidents"),
    }
