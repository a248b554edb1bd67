"""`incidentctl lab up --regions N`: which counts the lab takes, and how its regions share the pod ports."""

from __future__ import annotations

import itertools

import pytest

from incidentlab.config import LabConfig, write_json
from incidentlab.errors import LabInputError
from incidentlab.kube.server import lab_regions, pod_port_range, region_names
from support import incidentctl


def test_region_counts_the_lab_takes():
    assert region_names(None) == ("primary", "secondary")
    assert region_names(2) == ("primary", "secondary")
    assert region_names(3) == ("primary", "secondary", "tertiary")
    for wrong in (0, 1, 4, 5):
        with pytest.raises(LabInputError, match="2 to 3 regions"):
            region_names(wrong)


def test_up_refuses_five_regions_with_the_counts_it_takes_and_starts_nothing(tmp_path):
    res = incidentctl("lab", "up", "--regions", "5", "--lab-dir", str(tmp_path / "lab"), "--port-base", "30000")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "not 5" in res.stderr and "--regions 3" in res.stderr and "tertiary" in res.stderr
    assert not (tmp_path / "lab" / "lab.json").exists()


def test_the_regions_of_a_lab_share_its_pod_ports_without_overlap(tmp_path):
    cfg = LabConfig(tmp_path, 30000)
    assert lab_regions(cfg) == ("primary", "secondary")  # a lab that does not record them has two
    lo, hi = cfg.pod_port_range
    assert [pod_port_range(cfg, r) for r in ("primary", "secondary")] == [(lo, lo + 250), (lo + 250, hi)]
    write_json(cfg.state_file, {"regions": ["primary", "secondary", "tertiary"]})
    ranges = [pod_port_range(cfg, r) for r in lab_regions(cfg)]
    assert ranges[0][0] == lo and ranges[-1][1] <= hi
    assert all(a[1] <= b[0] and a[0] < a[1] for a, b in itertools.pairwise(ranges))
