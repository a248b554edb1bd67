"""Prometheus helpers: durations, times, query plans and result normalisation."""

from __future__ import annotations

import pytest

from ansible_collections.incident.response.plugins.module_utils import prometheus
from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure

NOW = 1_769_860_800.0  # 2026-01-31T12:00:00Z


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("60", 60), (60, 60), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("1.5h", 5400), ("500ms", 0.5)],
)
def test_durations(text, seconds):
    assert prometheus.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "h", "5m junk", "0", "-5"])
def test_bad_durations_say_what_is_expected(text):
    with pytest.raises(ValueError):
        prometheus.parse_duration(text)


def test_times():
    assert prometheus.parse_time(None, NOW) == NOW
    assert prometheus.parse_time("now", NOW) == NOW
    assert prometheus.parse_time("now-1h", NOW) == NOW - 3600
    assert prometheus.parse_time("1769857200", NOW) == 1769857200
    assert prometheus.parse_time("2026-01-31T11:00:00Z", NOW) == NOW - 3600
    assert prometheus.parse_time("2026-01-31T13:00:00+02:00", NOW) == NOW - 3600
    with pytest.raises(ValueError, match="RFC 3339"):
        prometheus.parse_time("yesterday", NOW)


def test_runbook_query_range_plan():
    path, params, info = prometheus.plan(
        {"name": "rate", "query": "rate(http_server_requests_seconds_count[5m])", "range": "1h", "step": "60"}, NOW
    )
    assert path == "/api/v1/query_range"
    assert params == {
        "query": "rate(http_server_requests_seconds_count[5m])",
        "start": f"{NOW - 3600:.3f}",
        "end": f"{NOW:.3f}",
        "step": "60",
    }
    assert info == {"type": "range", "start": "2026-01-31T11:00:00Z", "end": "2026-01-31T12:00:00Z", "step": 60}


def test_instant_plan_and_input_errors():
    path, params, info = prometheus.plan({"name": "up", "query": "up"}, NOW)
    assert (path, params["time"], info["type"]) == ("/api/v1/query", f"{NOW:.3f}", "instant")
    with pytest.raises(ModuleFailure, match="query up: end and step only apply to a range query"):
        prometheus.plan({"name": "up", "query": "up", "step": "60"}, NOW)
    with pytest.raises(ModuleFailure, match="must be before end"):
        prometheus.plan({"name": "up", "query": "up", "start": "now", "end": "now-1h"}, NOW)
    with pytest.raises(ModuleFailure, match="not a duration"):
        prometheus.plan({"name": "up", "query": "up", "range": "an hour"}, NOW)


def test_results_become_numbers_and_nan_stays_a_string():
    vector = {"resultType": "vector", "result": [{"metric": {"db": "a"}, "value": [NOW, "1"]}]}
    assert prometheus.normalize(vector) == {
        "result_type": "vector",
        "series": [{"metric": {"db": "a"}, "timestamp": NOW, "value": 1.0}],
        "series_count": 1,
    }
    matrix = {
        "resultType": "matrix",
        "result": [{"metric": {}, "values": [[NOW, "NaN"], [NOW + 60, "+Inf"], [NOW, "2.5"]]}],
    }
    assert prometheus.normalize(matrix)["series"][0]["values"] == [[NOW, "NaN"], [NOW + 60, "+Inf"], [NOW, 2.5]]
    assert prometheus.normalize({"resultType": "scalar", "result": [NOW, "3"]})["value"] == 3.0
