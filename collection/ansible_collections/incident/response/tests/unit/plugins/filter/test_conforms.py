"""The record's contracts: data that fits passes unchanged, data that does not is named where it breaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.incident.response.plugins.filter.conforms import conforms

CONTRACTS = Path(__file__).resolve().parents[8] / "playbooks" / "contracts"


def contract(name):
    return json.loads((CONTRACTS / f"{name}.schema.json").read_text())


def test_a_changes_record_that_fits_is_returned_unchanged():
    record = {"procedure": "p0_critical", "recorded_at": 1.5, "traffic": None, "configmap": None, "scale": None,
              "database": {"promoted": "db-replica", "old_primary": "db-primary", "fenced": []}}  # fmt: skip
    assert conforms(record, contract("changes"), "changes/x.json") is record


def test_the_first_place_that_breaks_is_named():
    with pytest.raises(AnsibleFilterError, match=r"changes/x.json does not fit its contract \(changes\): at scale"):
        conforms(
            {"procedure": "p1", "recorded_at": 1, "traffic": None, "configmap": None, "scale": "3", "database": None},
            contract("changes"),
            "changes/x.json",
        )


@pytest.mark.parametrize("name", ["triage", "outcome", "changes", "investigation", "incident"])
def test_every_contract_is_a_valid_json_schema(name):
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(contract(name))
