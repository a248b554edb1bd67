"""Which executor runs a command, from the inventory's incident_executors, --region and --executor: no node
needed, the choice is made before anything runs."""

from __future__ import annotations

import pytest

from incidentctl.errors import BadInput
from incidentctl.executor import SshExecutor, for_platform

NODE = "ssh://runner@10.0.0.5"


def test_the_primary_region_s_node_is_the_default_by_literal_or_by_the_first_preference():
    table = {"incident_executors": {"primary": NODE, "secondary": "local"}}
    assert isinstance(for_platform({**table, "primary_region": "primary"}, None, None), SshExecutor)
    derived = {**table, "primary_region": "{{ region_preference | first }}", "region_preference": ["primary"]}
    assert for_platform(derived, None, None).host == "10.0.0.5"
    assert not for_platform({**table, "primary_region": "primary"}, None, "secondary").remote
    assert not for_platform({"primary_region": "{{ x }}"}, None, None).remote  # no nodes: local


def test_nodes_and_a_primary_region_only_templating_can_tell_are_refused_not_run_locally():
    hostvars = {
        "incident_executors": {"primary": NODE},
        "primary_region": "{{ region_preference | first }}",
        "region_preference": "{{ lab_state.regions }}",
    }
    with pytest.raises(BadInput, match="primary region cannot be read from the inventory without templating"):
        for_platform(hostvars, None, None)
    assert for_platform(hostvars, None, "primary").host == "10.0.0.5"  # --region says it
