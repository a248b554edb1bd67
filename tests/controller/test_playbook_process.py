"""The ansible-playbook process incidentctl runs keeps Ansible's parse of the collections' routing between runs:
the same answer as Ansible's own parser, from the cache on the next run, parsed again when the YAML changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import ansible

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from ansible.utils.collection_loader import _collection_finder
    from incidentctl import playbook_process
    original = _collection_finder._meta_yml_to_dict
    playbook_process.install()
    playbook_process.install()  # a second install changes nothing
    parse = _collection_finder._meta_yml_to_dict
    assert parse.__wrapped__ is original
    data = open(sys.argv[1], "rb").read()
    print(json.dumps([parse(data, ("ansible.builtin", "runtime.yml")) == original(data, None), parse(data, None)]))
    """
)


def run(path, cache_home):
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(path)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_the_routing_is_ansible_s_own_parse_kept_between_runs_and_parsed_again_when_edited(tmp_path):
    builtin = os.path.join(os.path.dirname(ansible.__file__), "config", "ansible_builtin_runtime.yml")
    same, routing = run(builtin, tmp_path)
    assert same and routing["plugin_routing"]["modules"]
    entries = list((tmp_path / "incidentctl").glob("ansible-routing-*.json"))
    assert len(entries) == 1 and json.loads(entries[0].read_text()) == routing

    # the next run's answer comes from the cache: make the kept entry say something else and see it read
    entries[0].write_text(json.dumps({"from": "the cache"}))
    assert run(builtin, tmp_path) == [False, {"from": "the cache"}]

    edited = tmp_path / "runtime.yml"
    edited.write_text("requires_ansible: '>=2.16'\nplugin_routing: {modules: {old: {redirect: ns.c.new}}}\n")
    same, routing = run(edited, tmp_path)
    assert same and routing["plugin_routing"]["modules"]["old"] == {"redirect": "ns.c.new"}
    assert len(list((tmp_path / "incidentctl").glob("ansible-routing-*.json"))) == 2
