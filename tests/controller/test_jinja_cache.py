"""incidentctl's strategy keeps Jinja's compiled templates between tasks and runs (incidentctl.jinja_cache): a
template gives what Ansible alone gives, the next compile comes from the cache, and what the code depends on (the
syntax, how a filter takes its arguments) is part of what is kept, so a change compiles again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

# Run in a process of its own: the patch changes Ansible's Jinja environment class for the whole process.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from ansible.errors import AnsibleError
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible._internal._templating._jinja_bits import AnsibleEnvironment
    from ansible._internal._datatag._tags import TrustedAsTemplate

    compiled = []
    original = AnsibleEnvironment.compile
    def counting(self, source, *args, **kwargs):
        compiled.append(type(source).__name__)
        return original(self, source, *args, **kwargs)
    AnsibleEnvironment.compile = counting  # Jinja's own compile, under the cache when it is installed

    if sys.argv[1] == "cached":
        from incidentctl import jinja_cache
        jinja_cache.install()

    variables = {"regions": {"primary": {"up": True}, "secondary": {"up": False}}, "name": "db"}
    templar = Templar(loader=DataLoader(), variables=variables)
    trust = TrustedAsTemplate().tag
    out = {}
    for label, template in [
        ("expression", "{{ regions | dict2items | selectattr('value.up') | map(attribute='key') | list }}"),
        ("text", "database {{ name | upper }} in {{ regions | length }} regions"),
        ("block", "{% for r in regions %}{{ r }};{% endfor %}"),
        ("overrides", "#jinja2:variable_start_string:'[[', variable_end_string:']]'\\n[[ name ]] {{ name }}"),
    ]:
        out[label] = templar.template(trust(template))
    out["conditional"] = [templar.evaluate_conditional(trust(c)) for c in ("name == 'db'", "regions.secondary.up")]
    try:
        templar.template(trust("{{ name | no_such_filter_here }}"))
    except AnsibleError as exc:
        out["error"] = type(exc).__name__ + ": " + str(exc).splitlines()[0]
    out["compiled"] = compiled
    print(json.dumps(out))
    """
)


def run(mode, cache_home):
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_templates_give_ansible_s_answers_and_come_from_the_cache_the_next_time(tmp_path):
    plain = run("plain", tmp_path)
    first = run("cached", tmp_path)
    entries = sorted((tmp_path / "incidentctl").glob("jinja-*.bin"))
    second = run("cached", tmp_path)

    answers = {k: v for k, v in plain.items() if k != "compiled"}
    assert answers["expression"] == ["primary"]
    assert answers["overrides"] == "db {{ name }}"
    assert answers["conditional"] == [True, False]
    assert "no_such_filter_here" in answers["error"]
    for run_ in (first, second):
        assert {k: v for k, v in run_.items() if k != "compiled"} == answers

    # every template and conditional was compiled by Jinja the first time and kept (not the one in error)...
    assert first["compiled"] == plain["compiled"] and len(plain["compiled"]) >= 6
    assert len(entries) == len(plain["compiled"]) - 1
    # ...and none the next time: the template that does not compile is compiled (and fails) again
    assert len(second["compiled"]) == 1


def test_an_entry_whose_filter_now_takes_other_arguments_is_compiled_again(tmp_path):
    run("cached", tmp_path)
    import marshal

    changed = 0
    for path in (tmp_path / "incidentctl").glob("jinja-*.bin"):
        uses, code = marshal.loads(path.read_bytes())
        if any(kind == "filter" and name == "upper" for kind, name, _ in uses):
            uses = tuple((k, n, "_PassArg.context" if n == "upper" else how) for k, n, how in uses)
            path.write_bytes(marshal.dumps((uses, code)))
            changed += 1
    assert changed == 1
    again = run("cached", tmp_path)
    assert again["text"] == "database DB in 2 regions"
    assert len(again["compiled"]) == 2  # the template with `upper`, and the one in error
