"""Log scanning: line counts and error-looking lines, as bytes and fast."""

from __future__ import annotations

import pytest

from ansible_collections.incident.response.plugins.module_utils import k8s_logs
from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure


def test_scan_counts_each_error_line_once_and_samples_the_first():
    data = b"start\nERROR: db down, error again\nok\nTraceback (most recent call last):\nfine\nfatal at the end"
    pattern = k8s_logs.compile_pattern(None)
    lines, errors, samples = k8s_logs.scan(data, pattern, samples=2)
    assert (lines, errors) == (6, 3)
    assert samples == ["ERROR: db down, error again", "Traceback (most recent call last):"]


def test_scan_words_only_and_custom_patterns():
    data = b"terrorism is not an error word\nno errors here\nWARN slow\n"
    assert k8s_logs.scan(data, k8s_logs.compile_pattern(None))[:2] == (3, 1)
    assert k8s_logs.scan(data, k8s_logs.compile_pattern(r"WARN|slow"))[:2] == (3, 1)
    assert k8s_logs.scan(b"", k8s_logs.compile_pattern(None)) == (0, 0, [])


def test_scan_counts_a_big_log_exactly():
    # Its speed (a search over the buffer, not a Python loop per line) is measured in bench/pod_logs.py.
    line = b"2026-01-31T12:00:00.000Z  INFO 1 --- [svc] [exec-1] c.i.Controller : request handled in 5 ms\n"
    data = line * 10_000 + b"ERROR boom\n" + line * 10_000
    assert k8s_logs.scan(data, k8s_logs.compile_pattern(None))[:2] == (20_001, 1)


def test_bad_pattern_is_a_clear_failure():
    with pytest.raises(ModuleFailure, match="not a valid regular expression"):
        k8s_logs.compile_pattern("(unclosed")


def test_last_lines():
    assert k8s_logs.last_lines(b"a\nb\nc\n", 2) == ["b", "c"]
    assert k8s_logs.last_lines(b"a\nb", 5) == ["a", "b"]
    assert k8s_logs.last_lines(b"a\n", 0) == []


def test_the_fast_default_matcher_agrees_with_its_regex():
    import random

    rng = random.Random(7)
    words = ["Error", "ERRORS", "terror", "exception", "Exception:", "_fatal", "fatal_", "(panic)", "ok", "Critical!"]
    data = "\n".join(" ".join(rng.choice(words) for _w in range(rng.randint(0, 4))) for _l in range(2000)).encode()
    fast = k8s_logs.scan(data, k8s_logs.compile_pattern(None), samples=50)
    # the same words, through the regex path (a pattern that differs from the default only in spelling)
    slow = k8s_logs.scan(
        data, k8s_logs.compile_pattern(r"(?i)\b(?:error|exception|fatal|panic|traceback|critical|severe)\b"), samples=50
    )
    assert fast == slow and fast[1] > 100
