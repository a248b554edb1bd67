"""The inventories describe a platform completely, and the example has everything the lab has."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import PROJECT_ROOT, ansible_env

LAB_ONLY = {
    "lab_dir",
    "lab_state",
    "lab_ports",
    "lab_secrets",
    # How the lab inventory builds `databases` for the lab's topologies.
    "lab_pair_databases",
    "lab_topology_databases",
    "lab_promotion_rules",
}


def _vars(inventory: str) -> dict:
    res = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", inventory, "--list", "--export"],
        cwd=PROJECT_ROOT,
        env=ansible_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(res.stdout)
    return {**data.get("all", {}).get("vars", {}), **data["_meta"]["hostvars"].get("controller", {})}


def test_example_inventory_defines_every_platform_variable_of_the_lab():
    lab, example = _vars("inventories/lab"), _vars("inventories/example")
    missing = set(lab) - set(example) - LAB_ONLY
    assert missing == set(), f"inventories/example lacks {sorted(missing)}"


def test_example_inventory_keeps_secrets_out_of_the_repository():
    text = "\n".join(p.read_text() for p in (PROJECT_ROOT / "inventories" / "example").rglob("*.yml"))
    secrets = _vars("inventories/example")
    for name in ("db_admin_password", "slack_webhook_url", "pagerduty_routing_key", "statuspage_api_key"):
        assert "lookup('ansible.builtin.env'" in secrets[name] or "vault_" in secrets[name], name
    assert "password:" not in text.replace("_password:", "")


def test_every_variable_of_the_example_is_explained_in_its_readme():
    readme = (PROJECT_ROOT / "inventories" / "example" / "README.md").read_text()
    undocumented = [v for v in _vars("inventories/example") if f"`{v}" not in readme and not v.startswith("ansible_")]
    assert undocumented == []
