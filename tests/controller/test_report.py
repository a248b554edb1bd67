"""The incident report from records built here (no lab): the data it prepares, the page, the browser.

A record is written the way the controller and the playbooks write it (incident.json, the
timeline, triage findings, runner job events, changes, an investigation's metrics.json), with
chosen values, so each test knows exactly what the page must show.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import pytest

from browser import Chromium
from incidentctl import report
from incidentctl.record import Incident
from support import incidentctl

T0 = 1_800_000_000.0  # the incident opens here; the fault started 20 s earlier
PRIMARY, REPLICA = "10.0.0.1:3306", "10.0.0.2:3306"
SERVICES = ("order-service", "user-service")
REGIONS = ("primary", "secondary")
HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">&amp; "quoted"'


# -- building records ---------------------------------------------------------------------------
def _incident(root: Path, **data) -> Incident:
    inc = Incident.create(root, inventory="inventories/lab", operator="alice")
    inc.update(
        opened_at=T0,
        severity="P0",
        severity_source="policy",
        reasons=["primary database down"],
        response_minutes=15,
        **data,
    )
    # the timeline as the controller writes it, with our clock
    (inc.path / "timeline.jsonl").write_text("")
    return inc


def _task(
    inc: Incident, ts: float, run: str, task: str, module: str, *, changed=False, failed=False, summary="", outcome="ok"
):
    inc.append(
        {
            "ts": ts,
            "source": "ansible",
            "run": run,
            "play": "p",
            "task": task,
            "host": "controller",
            "module": f"incident.response.{module}",
            "outcome": "failed" if failed else outcome,
            "changed": changed,
            "failed": failed,
            "ignored": False,
            "duration": 0.1,
            "summary": summary,
        }
    )


def _step(inc: Incident, ts: float, kind: str, message: str, **fields):
    inc.append({"ts": ts, "source": "controller", "kind": kind, "message": message, **fields})


def _runs(inc: Incident, *runs: tuple[str, bool]):
    inc.update(runs=[{"name": n, "status": "successful", "check_mode": c} for n, c in runs])
    for name, _ in runs:
        (inc.path / "runs" / name / "artifacts" / "artifacts" / "job_events").mkdir(parents=True, exist_ok=True)


def _job_event(inc: Incident, run: str, counter: int, task: str, module: str, res: dict, event="runner_on_ok"):
    path = inc.path / "runs" / run / "artifacts" / "artifacts" / "job_events" / f"{counter}-uuid{counter}.json"
    ed = {"task": task, "resolved_action": f"incident.response.{module}", "host": "controller", "res": res}
    path.write_text(json.dumps({"counter": counter, "event": event, "event_data": ed}))


def _findings(inc: Incident):
    servers = {
        "db-primary": {"reachable": False, "error": f"{PRIMARY}: cannot connect"},
        "db-replica": {
            "reachable": True,
            "role": "replica",
            "read_only": True,
            "server": {"address": REPLICA},
            "replication": {"source_host": "10.0.0.1", "source_port": 3306, "io_thread": "connecting"},
        },
    }
    findings = {
        "load_balancers": {r: {"up": True, "healthy": False, "error": "health DOWN"} for r in REGIONS},
        "services": [{"name": s, "region": r, "up": False} for s in SERVICES for r in REGIONS],
        "clusters": {r: {"reachable": True, "summary": f"{r}: 3/3 nodes ready"} for r in REGIONS},
    }
    doc = {"findings": findings, "raw": {"databases": {"servers": servers}}, "classification": {"severity": "P0"}}
    (inc.subdir("triage") / "findings.json").write_text(json.dumps(doc))


def _series(metric: dict, values: list[tuple[float, float | str]]) -> dict:
    return {"metric": metric, "values": [[t, v] for t, v in values]}


def _range(name: str, query: str, series: list[dict], start: float, end: float, step: float = 1.0) -> dict:
    def iso(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")

    return {
        "name": name,
        "query": query,
        "type": "range",
        "start": iso(start),
        "end": iso(end),
        "step": step,
        "result_type": "matrix",
        "series": series,
        "series_count": len(series),
        "error": None,
    }


def _window_metrics(inc: Incident, start: float = T0 - 140, end: float = T0 + 40, first: float = T0 - 30):
    """The db-primary-down story: errors from T0-20 to T0+12, no order-service pod in the primary region from
    T0-18 to T0+13, replication stops at T0-19, alerts."""
    ts = [float(t) for t in range(int(first), int(end) + 1)]

    def per_service(fn):
        return [_series({"region": r, "service": s}, [(t, fn(t, r, s)) for t in ts]) for s in SERVICES for r in REGIONS]

    def available(t, s, r):
        if (s, r) == (SERVICES[0], "primary") and T0 - 18 <= t < T0 + 13:
            return 0.0  # lost in the incident
        if (s, r) == (SERVICES[1], "secondary") and t < first + 3:
            return 0.0  # still starting when the window's data begins: not this incident's
        return 2.0

    results = {
        "window_request_rate": per_service(lambda t, r, s: 10.0),
        "window_error_ratio": per_service(lambda t, r, s: 1.0 if T0 - 20 <= t < T0 + 12 else 0.0),
        "window_latency_p95_seconds": per_service(lambda t, r, s: "NaN" if t == T0 else 0.005),
        "window_replicas_available": [
            _series({"region": r, "deployment": s}, [(t, available(t, s, r)) for t in ts])
            for s in SERVICES
            for r in REGIONS
        ],
        "window_databases_up": [
            _series({"db": "db-primary"}, [(t, 0.0 if t >= T0 - 20 else 1.0) for t in ts]),
            _series({"db": "db-replica"}, [(t, 1.0) for t in ts]),
        ],
        "window_replication_io_running": [
            _series({"db": "db-replica"}, [(t, 0.0 if t >= T0 - 19 else 1.0) for t in ts if t < T0 + 5])
        ],
        "window_replication_seconds_behind": [_series({"db": "db-replica"}, [(t, 0.0) for t in ts if t < T0 - 19])],
        "window_alerts_firing": [
            # DatabaseDown fires and stays; HighErrorRate fires for two services, one flaps, all resolve
            _series({"alertname": "DatabaseDown"}, [(t, 1.0) for t in ts if t >= T0 - 16]),
            _series({"alertname": "HighErrorRate", "service": "a"}, [(t, 1.0) for t in ts if T0 - 12 <= t < T0 + 10]),
            _series({"alertname": "HighErrorRate", "service": "b"}, [(t, 1.0) for t in ts if T0 - 10 <= t < T0 + 14]),
        ],
    }
    doc = {
        "degraded": False,
        "query_results": {name: _range(name, "q", series, start, end) for name, series in results.items()},
    }
    inv = inc.subdir("investigation", "20270115T080100Z")
    (inv / "metrics.json").write_text(json.dumps(doc))
    (inv / "logs" / "primary" / "microservices").mkdir(parents=True)
    (inv / "logs" / "primary" / "microservices" / "order-service.log").write_text("log line\n")
    return inv


def p0_record(root: Path, *, summary: str = "127.0.0.1:3307 promoted to primary") -> Incident:
    """A mitigated P0: triage, a procedure with four changes, the investigation, a postmortem."""
    inc = _incident(root, first_action_at=T0 + 5, mitigated_at=T0 + 16, status="mitigated")
    _runs(inc, ("01-triage", False), ("02-p0_critical", False), ("03-investigate", False), ("04-postmortem", False))
    _findings(inc)
    (inc.subdir("triage") / "alerts.json").write_text(json.dumps({"alerts": []}))
    _step(inc, T0, "opened", "incident opened by alice")
    _task(inc, T0 + 2, "01-triage", "Alert assessment", "prometheus_query", summary="alerts: DatabaseDown")
    _task(inc, T0 + 5, "02-p0_critical", "Notify stakeholders", "incident_notify", changed=True, summary="sent")
    _task(inc, T0 + 6, "02-p0_critical", "Fail traffic over", "traffic_failover", outcome="skipped")
    _task(inc, T0 + 7, "02-p0_critical", "Promote the replica", "mysql_promote", changed=True, summary=summary)
    _task(inc, T0 + 11, "02-p0_critical", "Point the services", "config_patch", changed=True, summary="patched")
    _task(inc, T0 + 12, "02-p0_critical", "Restart the failing pods", "workload_restart", failed=True, summary="no")
    _task(inc, T0 + 15, "02-p0_critical", "Final notification", "incident_notify", changed=True, summary="resolved")
    _step(inc, T0 + 16, "mitigated", "p0_critical finished and verification passed", run="02-p0_critical")
    _task(inc, T0 + 20, "03-investigate", "Query Prometheus", "prometheus_query", summary="13 queries")
    _task(inc, T0 + 25, "04-postmortem", "Write the postmortem draft", "template", changed=True)
    _job_event(
        inc,
        "02-p0_critical",
        5,
        "Check database status",
        "mysql_replication_info",
        {
            "servers": {"db-primary": {"reachable": False}, "db-replica": {"reachable": True, "role": "replica"}},
            "invocation": {
                "module_args": {
                    "servers": [
                        {"name": "db-primary", "login_host": "10.0.0.1", "login_port": 3306},
                        {"name": "db-replica", "login_host": "10.0.0.2", "login_port": 3306},
                    ]
                }
            },
        },
    )
    _job_event(
        inc,
        "02-p0_critical",
        7,
        "Promote the replica",
        "mysql_promote",
        {
            "changed": True,
            "promoted": True,
            "msg": summary,
            "state": {"role": "primary", "read_only": False, "server": {"address": REPLICA}, "replication": None},
            "old_primary": {"address": PRIMARY, "reachable": False, "fenced": None},
            "gate": {
                "passed": True,
                "checks": [
                    {"name": "sql_thread", "ok": True, "detail": "running"},
                    {"name": "relay_log_applied", "ok": True, "detail": "everything received is applied"},
                ],
                "overridden": [],
            },
            "heartbeat": {"table": "shop.heartbeat", "login_user": "shop_app", "proves": "the app can write"},
            "statements": {"replica": ["STOP REPLICA", "RESET REPLICA ALL", "SET GLOBAL read_only = OFF"]},
        },
    )
    _job_event(
        inc,
        "02-p0_critical",
        9,
        "Health of every service",
        "service_health",
        {"checks": [{"name": f"{s}@{r}", "region": r, "status": "UP"} for s in SERVICES for r in REGIONS]},
    )
    (inc.subdir("changes") / "20270115T080011-p0_critical.json").write_text(
        json.dumps(
            {
                "procedure": "p0_critical",
                "recorded_at": T0 + 11,
                "configmap": [{"cluster": "primary", "namespace": "ms", "name": "cfg", "data": {"db.port": "3306"}}],
                "database": {"promoted": "db-replica", "old_primary": "db-primary"},
                "traffic": None,
            }
        )
    )
    _window_metrics(inc)
    (inc.path / "postmortem.md").write_text(
        "# Postmortem\n\n| measure | minutes |\n|---|---|\n| first action | 0.1 |\n"
    )
    return inc


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "incidents"


# -- the data the page shows --------------------------------------------------------------------------
def test_window_starts_at_the_first_sample_and_ends_with_the_queries(root):
    data = report.prepare(p0_record(root))
    assert data["metrics"].kind == "window" and data["metrics"].step == 1.0
    assert data["domain"] == (T0 - 30, T0 + 40)  # the query began at T0-140, the lab's data at T0-30
    assert [p.metric for p in data["plots"]] == [s.metric for s in report.PLOT_SPECS]
    error = next(p for p in data["plots"] if p.metric == "error_ratio")
    assert sorted(s.label for s in error.series) == sorted(f"{s}@{r}" for s in SERVICES for r in REGIONS)


def test_nan_samples_split_a_line_instead_of_drawing_zero(root):
    data = report.prepare(p0_record(root))
    latency = next(p for p in data["plots"] if p.metric == "latency_p95")
    assert all(T0 not in [t for t, _ in s.points] for s in latency.series)
    svg = report.svg_plot(latency, data["domain"], [], None, 1.0, {})
    group = re.search(r'<g class="series" data-series="order-service@primary".*?</g>', str(svg)).group(0)
    assert group.count("<polyline") == 1  # a 1 s hole is within the gap allowed between samples
    assert report._segments([(0, 1), (1, 1), (5, 1), (6, 1)], 2.5) == [[(0, 1), (1, 1)], [(5, 1), (6, 1)]]


def test_one_marker_per_change_of_a_procedure_not_for_the_record_only_runs(root):
    data = report.prepare(p0_record(root))
    changes = [m for m in data["markers"] if m.kind == "change"]
    # notify, promote, config_patch, final notify; not the failed restart, not the postmortem's file
    assert [(m.module, m.ts) for m in changes] == [
        ("incident_notify", T0 + 5),
        ("mysql_promote", T0 + 7),
        ("config_patch", T0 + 11),
        ("incident_notify", T0 + 15),
    ]
    assert [m.label for m in changes] == ["1", "2", "3", "4"]
    assert changes[1].title == "mysql_promote: 127.0.0.1:3307 promoted to primary"
    svg = str(report.svg_plot(data["plots"][0], data["domain"], data["markers"], None, 1.0, {}))
    assert svg.count('<g class="marker change"') == 4
    assert svg.count('class="took"') == 4  # each task ran 0.1 s before it reported its change


def test_alerts_are_firing_and_resolved_markers_merged_per_alert(root):
    data = report.prepare(p0_record(root))
    alerts = [(a["name"], a["start"], a["end"]) for a in data["alerts"]]
    # DatabaseDown still fires at the window's end; HighErrorRate's two instances overlap: one interval
    assert alerts == [("DatabaseDown", T0 - 16, None), ("HighErrorRate", T0 - 12, T0 + 14)]
    kinds = [(m.kind, m.ts) for m in data["markers"] if m.kind.startswith("alert")]
    assert kinds == [("alert-firing", T0 - 16), ("alert-firing", T0 - 12), ("alert-resolved", T0 + 14)]


def test_key_moments_tell_the_story_in_order(root):
    moments = report.prepare(p0_record(root))["moments"]
    assert [(m["what"], m["ts"]) for m in moments] == [
        ("database db-primary down", T0 - 20),
        ("errors above 5% of requests", T0 - 20),
        ("replication into db-replica stopped", T0 - 19),
        ("no available replica of order-service@primary", T0 - 18),
        ("first alert: DatabaseDown", T0 - 16),
        ("incident opened", T0),
        ("mysql_promote: 127.0.0.1:3307 promoted to primary", T0 + 7),
        # errors end at T0+11, the service has pods again at T0+13: the first sample with neither
        ("users served again: every service available, errors under the threshold", T0 + 13),
        ("mitigated: the procedure's verification passed", T0 + 16),
    ]
    assert [m["offset"] for m in moments][:1] == ["-0:20"]


def test_topology_before_is_triage_and_after_is_what_the_promotion_left(root):
    topo = report.prepare(p0_record(root))["topology"]
    before = {s["name"]: s for s in topo["before"]}
    after = {s["name"]: s for s in topo["after"]}
    assert before["db-primary"]["role"] == "unreachable"
    assert before["db-replica"]["role"] == "replica" and before["db-replica"]["read_only"] is True
    assert before["db-replica"]["source"] == "db-primary"  # the address resolved to the server's name
    assert after["db-replica"]["role"] == "primary" and after["db-replica"]["read_only"] is False
    assert after["db-replica"]["source"] is None
    assert after["db-primary"]["role"] == "unreachable" and "not fenced" in after["db-primary"]["note"]


def test_regions_traffic_gate_and_rollback_data(root):
    data = report.prepare(p0_record(root))
    regions = {r["name"]: r for r in data["regions"]["regions"]}
    assert regions["primary"]["before"] == {
        "lb": "degraded",
        "services": "0 of 2 up",
        "cluster": "primary: 3/3 nodes ready",
    }
    assert regions["secondary"]["after"]["services"] == "2 of 2 up"
    assert "decided against a region failover" in data["regions"]["traffic"]["note"]
    (gate,) = data["gates"]
    assert (
        gate["passed"]
        and gate["promoted"]
        and [c["name"] for c in gate["checks"]] == ["sql_thread", "relay_log_applied"]
    )
    assert gate["statements"][-1] == "SET GLOBAL read_only = OFF"
    (kept,) = data["rollback"]
    assert dict(kept["entries"]) == {
        "configmap": 'primary/ms/cfg data: {"db.port": "3306"}',
        "database": "promoted: db-replica, old_primary: db-primary",
    }


def test_a_check_mode_incident_draws_no_change_and_lists_what_would_change(root):
    inc = _incident(root, check_mode=True)
    _runs(inc, ("01-triage", True), ("02-p0_critical", True))
    _findings(inc)
    _task(inc, T0 + 7, "02-p0_critical", "Promote the replica", "mysql_promote", changed=True, summary="would promote")
    _window_metrics(inc)
    data = report.prepare(inc)
    assert [m for m in data["markers"] if m.kind == "change"] == []
    assert [v["text"] for v in data["header"]["verdicts"]] == ["check mode", "check mode"]
    assert [c["summary"] for c in data["planned"]] == ["would promote"]
    assert any(n.startswith("Check mode: nothing was changed; 1 step(s)") for n in data["missing"])
    row = next(r for r in data["timeline"] if r["what"] == "Promote the replica")
    assert row["result"] == "would change"


def test_a_record_with_missing_parts_still_gives_a_page_that_says_what_is_missing(root):
    inc = _incident(root)
    _runs(inc, ("01-triage", False))
    _step(inc, T0 + 3, "triage failed", "triage failed: Prometheus down")
    path = report.write(inc)
    page = path.read_text()
    assert path == inc.path / "report.html"
    lacks = page.split('id="missing"', 1)[1].split("</section>", 1)[0]
    assert "No triage findings: triage did not finish" in lacks
    assert "No procedure ran" in lacks
    assert "No metrics: no investigation ran" in lacks
    assert "No postmortem draft" in lacks
    assert "No plots: No metrics: no investigation ran" in page
    assert "triage failed: Prometheus down" in page  # the timeline is still there


def test_an_unreadable_part_costs_that_part_not_the_page(root):
    inc = p0_record(root)
    (inc.path / "triage" / "findings.json").write_text('{"findings": {"services": "not a list"}}')
    page = report.write(inc).read_text()
    assert "regions could not be prepared from the record" in page
    assert page.count('class="plot"') == len(report.PLOT_SPECS)  # the rest of the page is there


def test_an_older_record_with_the_last_hour_only_is_plotted_with_a_note(root):
    inc = _incident(root)
    series = [
        _series({"service": "a", "region": "primary", "uri": "/api", "pod": "a-1"}, [(T0, 1.0), (T0 + 60, 2.0)]),
        _series({"service": "a", "region": "primary", "uri": "/api", "pod": "a-2"}, [(T0, 3.0), (T0 + 60, 4.0)]),
        _series({"service": "a", "region": "primary", "uri": "/actuator/health", "pod": "a-1"}, [(T0, 9.0)]),
    ]
    doc = {"query_results": {"request_rate": _range("request_rate", "rate(...)", series, T0 - 3600, T0 + 60, 60)}}
    (inc.subdir("investigation", "old") / "metrics.json").write_text(json.dumps(doc))
    data = report.prepare(inc)
    assert data["metrics"].kind == "last hour"
    assert any("no incident-window queries" in n for n in data["missing"])
    rate = next(p for p in data["plots"] if p.metric == "request_rate")
    assert [(s.label, s.points) for s in rate.series] == [("a@primary", [(T0, 4.0), (T0 + 60, 6.0)])]


def test_a_long_incident_stays_a_small_page(root):
    """Six hours at 1 s for 20 series: the plots keep two points per pixel column, spikes included."""
    inc = _incident(root)
    ts = range(int(T0), int(T0) + 6 * 3600)
    series = [_series({"service": f"s{i}", "region": "primary"}, [(t, (t % 997) / 997) for t in ts]) for i in range(20)]
    series[0]["values"][12345][1] = 50.0  # one spike
    doc = {"query_results": {"window_request_rate": _range("window_request_rate", "q", series, T0, T0 + 6 * 3600)}}
    (inc.subdir("investigation", "long") / "metrics.json").write_text(json.dumps(doc))
    page = report.write(inc).read_text()
    assert len(page.encode()) < 2_000_000
    svg = re.search(r'<svg data-points="(\d+)" class="plot" data-metric="request_rate"', page)
    assert int(svg.group(1)) <= 20 * 2 * (report.W - report.PAD_L - report.PAD_R)
    assert ">50<" in page  # the spike sets the axis: it was kept


def test_evidence_links_are_relative_and_point_at_the_files(root, tmp_path):
    inc = p0_record(root)
    elsewhere = tmp_path / "out" / "page.html"
    elsewhere.parent.mkdir()
    for path in (report.write(inc), report.write(inc, elsewhere)):
        hrefs = re.findall(r'href="([^"]+)"', path.read_text())
        assert hrefs and all(not h.startswith(("/", "file:", "http")) for h in hrefs)
        targets = [(path.parent / unquote(h)).resolve() for h in hrefs]
        assert all(t.exists() for t in targets), [h for h, t in zip(hrefs, targets, strict=True) if not t.exists()]
        assert (
            inc.path
            / "investigation"
            / "20270115T080100Z"
            / "logs"
            / "primary"
            / "microservices"
            / ("order-service.log")
            in targets
        )


def test_record_text_is_escaped_everywhere(root):
    inc = p0_record(root, summary=HOSTILE)
    _step(inc, T0 + 30, HOSTILE, HOSTILE)
    (inc.path / "postmortem.md").write_text(f"# Postmortem\n\n{HOSTILE}\n\n[x](javascript:alert(1))\n")
    page = report.write(inc).read_text()
    assert "<script>window.pwned" not in page and "<img src=x" not in page
    assert page.count("&lt;script&gt;window.pwned=1&lt;/script&gt;") >= 4  # marker, timeline, postmortem, moments
    assert 'href="javascript:' not in page


# -- the command line -----------------------------------------------------------------------------
def test_report_command_writes_the_page_into_the_record_and_show_points_at_it(root, tmp_path):
    inc = p0_record(root)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["INCIDENTCTL_INCIDENTS_DIR"] = str(root)
    res = incidentctl("report", inc.id, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"report: {inc.path / 'report.html'}"
    out = tmp_path / "elsewhere.html"
    res = incidentctl("report", inc.id, "-o", str(out), "--open", env=env)  # no DISPLAY: prints the URL
    assert res.returncode == 0 and out.exists() and f"no browser here: open {out.as_uri()}" in res.stdout
    res = incidentctl("show", inc.id, env=env)
    assert res.returncode == 0 and f"report: {inc.path / 'report.html'}" in res.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("report", "INC-nope"), "'INC-nope' is not an incident id"),
        (("report", "INC-20260101-000000-abcd"), "no incident 'INC-20260101-000000-abcd'"),
        (("report", "ID", "-o", "/nonexistent-dir/x.html"), "cannot write the report to /nonexistent-dir/x.html"),
    ],
)
def test_report_bad_input_is_one_line_and_exit_2(root, args, needle):
    inc = p0_record(root)
    env = {**os.environ, "INCIDENTCTL_INCIDENTS_DIR": str(root)}
    res = incidentctl(*[inc.id if a == "ID" else a for a in args], env=env)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], res.stderr


# -- in a real browser (Debian's chromium, headless) ---------------------------------------------------
@pytest.fixture
def browser(tmp_path):
    with Chromium(tmp_path / "browser") as b:
        yield b


def test_in_the_browser_nothing_injected_runs_and_no_error_is_logged(root, browser):
    inc = p0_record(root, summary=HOSTILE)
    _step(inc, T0 + 30, "note", HOSTILE)
    page = browser.open(report.write(inc).as_uri())
    assert page.errors() == []
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('img, script:not(:last-of-type)').length") == 0
    assert page.evaluate("document.querySelectorAll('script').length") == 1  # the page's own


def test_in_the_browser_the_timeline_filters_by_run_changed_and_failed(root, browser):
    inc = p0_record(root)
    page = browser.open(report.write(inc).as_uri())
    visible = "Array.from(document.querySelectorAll('#timeline-table tbody tr')).filter(r => !r.hidden)"
    total = page.evaluate(f"{visible}.length")
    assert total == len(inc.timeline())

    def pick(js: str) -> list[str]:
        page.evaluate(js + "; undefined")
        return page.evaluate(f"{visible}.map(r => r.cells[3].textContent)")

    assert pick("document.getElementById('f-changed').click()") == [
        "Notify stakeholders",
        "Promote the replica",
        "Point the services",
        "Final notification",
        "Write the postmortem draft",
    ]
    assert pick("document.getElementById('f-failed').click()") == []  # changed and failed: none
    assert pick("document.getElementById('f-changed').click()") == ["Restart the failing pods"]
    page.evaluate("document.getElementById('f-failed').click()")
    run = "const s = document.getElementById('f-run'); s.value = '03-investigate'; s.dispatchEvent(new Event('change'))"
    assert pick(run) == ["Query Prometheus"]
    assert page.evaluate("document.getElementById('f-count').textContent") == f"1 of {total} entries"
