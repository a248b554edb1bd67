"""The state_file inventory source: a JSON file as a host variable, read by ansible-inventory itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.incident.response.plugins.inventory.state_file import choose_path

COLLECTIONS = Path(__file__).resolve().parents[7]


def inventory(tmp_path: Path, source_name: str = "z.state_file.yml", group_vars: str | None = None) -> Path:
    """An inventory directory: one host, a state_file source, and optionally group_vars/all.yml."""
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text("all:\n  hosts:\n    controller:\n      ansible_connection: local\n")
    (inv / source_name).write_text(
        "plugin: incident.response.state_file\n"
        "paths:\n  - ${STATE_TEST_DIR}/state.json\n  - ../default/state.json\n"
        "variable: platform_state\n"
    )
    if group_vars is not None:
        (inv / "group_vars" / "all.yml").write_text(group_vars)
    return inv


def hostvars(inv: Path, **env) -> tuple[dict, str]:
    environ = {k: v for k, v in os.environ.items() if k != "STATE_TEST_DIR"}
    environ.update(ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="false", **env)
    res = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(inv), "--host", "controller"],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(res.stdout), res.stderr


def write_state(directory: Path, data) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "state.json").write_text(json.dumps(data))


def test_the_file_is_the_hosts_variable_and_takes_precedence_over_group_vars(tmp_path):
    inv = inventory(tmp_path, group_vars="platform_state: {status: from-group-vars}\n")
    write_state(tmp_path / "default", {"status": "up", "ports": {"lb": 24000}})
    assert hostvars(inv)[0]["platform_state"] == {"status": "up", "ports": {"lb": 24000}}


def test_a_path_whose_environment_variable_is_set_is_the_file_even_when_missing(tmp_path):
    inv = inventory(tmp_path, group_vars="platform_state: {status: fallback}\n")
    write_state(tmp_path / "default", {"status": "default-dir"})
    write_state(tmp_path / "elsewhere", {"status": "env-dir"})
    assert hostvars(inv, STATE_TEST_DIR=str(tmp_path / "elsewhere"))[0]["platform_state"] == {"status": "env-dir"}
    # the environment names a directory without the file: nothing is set, group_vars decide (not the default dir)
    assert hostvars(inv, STATE_TEST_DIR=str(tmp_path / "empty"))[0]["platform_state"] == {"status": "fallback"}
    # an empty variable counts as unset: the next path
    assert hostvars(inv, STATE_TEST_DIR="")[0]["platform_state"] == {"status": "default-dir"}


def test_a_file_that_does_not_decode_fails_the_source_and_says_which(tmp_path):
    inv = inventory(tmp_path, group_vars="platform_state: {status: fallback}\n")
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "state.json").write_text('{"status": ')
    got, err = hostvars(inv)
    assert got["platform_state"] == {"status": "fallback"}
    assert "cannot read the state file" in err and "state.json" in err


def test_a_source_parsed_before_the_hosts_says_how_to_name_it(tmp_path):
    inv = inventory(tmp_path, source_name="a.state_file.yml")
    write_state(tmp_path / "default", {"status": "up"})
    got, err = hostvars(inv)
    assert "platform_state" not in got
    assert "has no host yet" in err and "name this file after the one that defines the hosts" in err


@pytest.mark.parametrize(
    ("paths", "environ", "expected"),
    [
        (["$A/x.json", "rel/y.json"], {"A": "/srv"}, "/srv/x.json"),
        (["${A}/x.json", "rel/y.json"], {}, "/base/rel/y.json"),
        (["${A}/${B}.json"], {"A": "/srv"}, None),
        (["../up.json"], {}, "/up.json"),
    ],
)
def test_choose_path(paths, environ, expected):
    assert choose_path(paths, "/base", environ) == expected
