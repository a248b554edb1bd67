"""Session fixtures: one lab for the whole test run, started once and stopped at the end.

The test lab uses its own directory and port range (INCIDENTLAB_TEST_PORT_BASE, default
34000), so it runs beside an operator's lab on the default ports.
"""

from __future__ import annotations

import os

import pytest
from incidentlab.lab import Lab

TEST_PORT_BASE = int(os.environ.get("INCIDENTLAB_TEST_PORT_BASE", "34000"))


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Lab:
    lab = Lab.open(tmp_path_factory.mktemp("lab"), TEST_PORT_BASE)
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
def fresh_databases(lab):
    """For tests that change database roles (promote, fence): the original pair is rebuilt afterwards."""
    yield lab
    lab.reset_databases()
