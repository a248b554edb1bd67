"""Session fixtures: one lab for the whole test run, started once and stopped at the end.

The test lab uses its own directory and a port range claimed for this run (see
support.claim_port_base), so it runs beside an operator's lab and beside other test runs.
"""

from __future__ import annotations

import pytest

from incidentlab.lab import Lab
from support import lab_port_base


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Lab:
    lab = Lab.open(tmp_path_factory.mktemp("lab"), lab_port_base())
    lab.up()
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="session")
def secrets(lab) -> dict[str, str]:
    return lab.secrets()


@pytest.fixture
def healed(lab):
    """For tests that inject faults: whatever they break is healed afterwards."""
    yield lab
    lab.heal()


@pytest.fixture
def quiet_traffic(lab):
    """For tests that count the primary's transactions, kill it or rejoin it: the traffic generator's
    writes would make counts inexact and a killed primary diverge. Paused until the test ends."""
    with lab.traffic_paused():
        yield lab


@pytest.fixture
def fresh_databases(lab):
    """For tests that change database roles (promote, fence): the original pair is rebuilt afterwards."""
    yield lab
    lab.reset_databases()
