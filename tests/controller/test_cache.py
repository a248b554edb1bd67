"""Answers kept by the content of the files they depend on: computed once, again after any edit."""

from __future__ import annotations

import os
import time

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
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a cache that can be neither read nor written: no error
    assert answer() == {"n": 3} and answer() == {"n": 4}


def test_entries_unused_for_a_month_go_when_another_of_their_kind_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def keep(key, kind="test"):
        return cache.cached(kind, key, lambda: {"key": key}, lambda v: isinstance(v, dict))

    for key in ("old", "used"):
        keep(key)
    keep("other", kind="other")
    month = time.time() - cache.MAX_UNUSED - 60
    for name in ("test-old.json", "test-used.json", "other-other.json"):
        os.utime(cache.directory() / name, (month, month))
    keep("used")  # read: in use again
    keep("new")  # a new entry of the kind: the unused ones of that kind go
    left = sorted(p.name for p in cache.directory().glob("*.json"))
    assert left == ["other-other.json", "test-new.json", "test-used.json"]
