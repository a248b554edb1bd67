"""Answers kept by the content of the files they depend on: computed once, again after any edit."""

from __future__ import annotations

from incidentctl import cache


def test_an_answer_is_computed_once_per_content_and_again_after_an_edit(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text("all: {}\n")
    (inventory / "group_vars" / "all.yml").write_text("a: 1\n")
    calls = []

    def compute():
        calls.append(1)
        return {"n": len(calls)}

    def answer():
        return cache.cached("test", cache.content_key([inventory]), compute, lambda v: isinstance(v, dict))

    assert answer() == {"n": 1} and answer() == {"n": 1} and len(calls) == 1
    (inventory / "group_vars" / "all.yml").write_text("a: 2\n")  # an edit anywhere below the path
    assert answer() == {"n": 2} and len(calls) == 2
    (tmp_path / "cache" / "incidentctl").chmod(0o500)  # a cache that cannot be written is no error
    try:
        (inventory / "hosts.yml").write_text("all: {hosts: {x: {}}}\n")
        assert answer() == {"n": 3}
    finally:
        (tmp_path / "cache" / "incidentctl").chmod(0o700)
