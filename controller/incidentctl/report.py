"""The incident report: the record as one page to look at (``report.html`` in the record).

People look, they do not read: how the error rate moved, when replication stopped, when the
promotion happened, when users were served again. The page shows the incident window's
metrics with a marker for every alert and every change the automation made, the database
topology and the traffic before and after, the safety gate of each promotion, the rollback
data, the timeline (filterable), links to the evidence and the postmortem draft.

One self-contained file: inline CSS, a few lines of inline JavaScript (the timeline's
filters), and plots drawn here as inline SVG, so the page needs no network, works from a
``file://`` URL and prints as it shows. Everything read from the record is untrusted text:
the page is a Jinja template with autoescaping, the SVG escapes every text it writes, and
the postmortem's markdown is rendered with raw HTML off.

Each part of the page is prepared by a function of its own from the record; a part that
is missing (no triage, no procedure, no investigation, check mode) or that cannot be read
becomes a note on the page instead of an error.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import math
import os
import re
import webbrowser
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from .errors import BadInput
from .flow import response_times
from .record import Incident

REPORT_NAME = "report.html"
TEMPLATES = Path(__file__).parent / "templates"

# Playbooks that only read the platform and write the record: their "changed" tasks (the
# postmortem's file) are not changes to the platform and get no marker.
RECORD_ONLY = frozenset({"triage", "investigate", "postmortem"})
ERROR_THRESHOLD = 0.05  # the lab's HighErrorRate alert: more than 5% of business requests fail


# -- reading the record ------------------------------------------------------------------------
def _load_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _epoch(value) -> float | None:
    """Unix seconds of a number or an RFC 3339 string (Prometheus gives nanoseconds)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().replace("Z", "+00:00")
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
    if m:  # fromisoformat takes at most 6 fractional digits on every Python we support
        text = m.group(1) + (m.group(2) or "")[:7] + m.group(3)
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _short_module(name: str) -> str:
    return (name or "").rsplit(".", 1)[-1]


def _playbook_of(run_name: str) -> str:
    """``02-p0_critical`` -> ``p0_critical``."""
    return run_name.split("-", 1)[1] if "-" in run_name else run_name


@dataclass
class TaskEvent:
    """One task result from ansible-runner's job events (the modules' whole results)."""

    run: str
    counter: int
    task: str
    module: str
    host: str
    outcome: str
    res: dict
    check_mode: bool


class Record:
    """Read-only view of an incident record; every missing or unreadable part reads as empty."""

    def __init__(self, incident: Incident):
        self.incident = incident
        self.path = incident.path
        self.data = incident.data

    @cached_property
    def timeline(self) -> list[dict]:
        return self.incident.timeline()

    def json(self, rel: str):
        return _load_json(self.path / rel)

    @cached_property
    def runs(self) -> list[dict]:
        """Every run in order: name, playbook, status, check_mode (incident.json, then the runs/ directory)."""
        known = {r.get("name"): r for r in self.data.get("runs") or [] if isinstance(r, dict)}
        names = set(known)
        with contextlib.suppress(OSError):
            names |= {p.name for p in (self.path / "runs").iterdir() if p.is_dir()}
        out = []
        for name in sorted((n for n in names if n), key=lambda n: (int(n.split("-")[0]) if n[:1].isdigit() else 0, n)):
            r = known.get(name, {})
            out.append(
                {
                    "name": name,
                    "playbook": _playbook_of(name),
                    "status": r.get("status") or "unknown (no end recorded)",
                    "check_mode": bool(r.get("check_mode", self.data.get("check_mode"))),
                }
            )
        return out

    def run(self, name: str) -> dict:
        return next((r for r in self.runs if r["name"] == name), {"name": name, "check_mode": False})

    @cached_property
    def procedure_runs(self) -> list[dict]:
        return [r for r in self.runs if r["playbook"] not in RECORD_ONLY]

    @cached_property
    def task_events(self) -> list[TaskEvent]:
        """Task results of the procedure runs, in order (the record-only runs are not read: large, not needed)."""
        out = []
        for run in self.procedure_runs:
            for path in sorted(
                (self.path / "runs" / run["name"]).glob("artifacts/*/job_events/*.json"),
                key=lambda p: int(p.name.split("-", 1)[0]) if p.name.split("-", 1)[0].isdigit() else 0,
            ):
                ev = _load_json(path)
                if not isinstance(ev, dict) or ev.get("event") not in (
                    "runner_on_ok",
                    "runner_on_failed",
                    "runner_on_unreachable",
                ):
                    continue
                ed = ev.get("event_data") or {}
                out.append(
                    TaskEvent(
                        run=run["name"],
                        counter=int(ev.get("counter") or 0),
                        task=str(ed.get("task") or ""),
                        module=str(ed.get("resolved_action") or ed.get("task_action") or ""),
                        host=str(ed.get("host") or ""),
                        outcome="ok" if ev["event"] == "runner_on_ok" else "failed",
                        res=ed.get("res") if isinstance(ed.get("res"), dict) else {},
                        check_mode=run["check_mode"],
                    )
                )
        return out

    def events(self, module: str) -> list[TaskEvent]:
        return [e for e in self.task_events if _short_module(e.module) == module]

    @cached_property
    def investigations(self) -> list[Path]:
        with contextlib.suppress(OSError):
            return sorted(p for p in (self.path / "investigation").iterdir() if p.is_dir())
        return []

    @cached_property
    def findings(self) -> dict | None:
        doc = self.json("triage/findings.json")
        return doc if isinstance(doc, dict) else None


# -- the header: who, when, against the response time --------------------------------------------
def header(rec: Record) -> dict:
    d = rec.data
    times = response_times(d)
    target = times.get("response_target_minutes")
    verdicts = []
    for key, label in (("first_action", "first action"), ("mitigation", "mitigation")):
        minutes = times.get(f"time_to_{key}_minutes")
        within = times.get(f"{key}_within_target")
        if minutes is None:
            state = "pending"
            text = "check mode" if d.get("check_mode") else ("not yet" if d.get("status") == "open" else "none")
        elif within is None:
            state, text = "unknown", "no target"
        else:
            state, text = ("met", "met") if within else ("missed", "missed")
        verdicts.append({"label": label, "minutes": minutes, "state": state, "text": text})
    opened = d.get("opened_at")
    milestones = []
    for key, label in (
        ("opened_at", "opened"),
        ("first_action_at", "first action"),
        ("mitigated_at", "mitigated"),
        ("resolved_at", "resolved"),
        ("closed_at", "closed"),
    ):
        milestones.append({"label": label, "ts": d.get(key), "offset": _offset(d.get(key), opened)})
    return {
        "id": d.get("id") or rec.path.name,
        "severity": d.get("severity"),
        "severity_source": d.get("severity_source"),
        "reasons": [str(r) for r in d.get("reasons") or []],
        "status": d.get("status") or "unknown",
        "operator": d.get("operator") or "unknown",
        "inventory": d.get("inventory") or "",
        "check_mode": bool(d.get("check_mode")),
        "services": [str(s) for s in d.get("services") or []],
        "resolution": d.get("resolution"),
        "target_minutes": target,
        "verdicts": verdicts,
        "milestones": milestones,
    }


def _empty_header(name: str) -> dict:
    return {
        **dict.fromkeys(("severity", "severity_source", "resolution", "target_minutes")),
        **{"id": name, "reasons": [], "status": "unknown", "operator": "unknown", "inventory": "", "services": []},
        **{"check_mode": False, "verdicts": [], "milestones": []},
    }


def _offset(ts, origin) -> str:
    if ts is None or origin is None:
        return ""
    delta = round(float(ts) - float(origin))
    sign = "-" if delta < 0 else "+"
    s = abs(delta)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{sign}{h}:{m:02d}:{s:02d}" if h else f"{sign}{m}:{s:02d}"


def _clock(ts) -> str:
    return datetime.fromtimestamp(float(ts), UTC).strftime("%H:%M:%S") if ts is not None else ""


def _date(ts) -> str:
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts is not None else "-"


# -- metrics of the incident window ----------------------------------------------------------------
@dataclass
class Series:
    label: str
    key: str  # what picks the colour (service, database)
    dash: int  # 0 solid, 1 dashed (the second region)
    points: list[tuple[float, float]]


@dataclass
class Plot:
    metric: str
    title: str
    unit: str
    series: list[Series] = field(default_factory=list)
    y_max: float | None = None  # fixed top of the axis (ratios, up/down)
    y_labels: dict[float, str] | None = None
    source: str = ""  # the query it was drawn from
    missing: str = ""  # why there is no line


@dataclass
class PlotSpec:
    metric: str
    title: str
    unit: str
    query: str  # the incident window query (investigate.yml)
    fallback: str | None = None  # the last-hour query of an older record
    y_max: float | None = None
    y_labels: dict[float, str] | None = None
    aggregate_fallback: bool = False  # the runbook's request_rate is per pod and uri: summed here


PLOT_SPECS = (
    PlotSpec("request_rate", "Requests per second", "req/s", "window_request_rate", "request_rate", None, None, True),
    PlotSpec("error_ratio", "Error rate (share of 5xx answers)", "ratio", "window_error_ratio", "error_ratio", 1.0),
    PlotSpec("latency_p95", "Latency, 95th percentile", "s", "window_latency_p95_seconds", "latency_p95_seconds"),
    PlotSpec("replicas_available", "Available replicas per service", "pods", "window_replicas_available"),
    PlotSpec("databases_up", "Database up", "", "window_databases_up", "databases_up", 1.0, {0.0: "down", 1.0: "up"}),
    PlotSpec(
        "replication_running",
        "Replication running (IO thread)",
        "",
        "window_replication_io_running",
        None,
        1.0,
        {0.0: "stopped", 1.0: "running"},
    ),
    PlotSpec(
        "replication_lag", "Replication lag (seconds behind the source)", "s", "window_replication_seconds_behind"
    ),
)


def _series_name(metric: dict) -> tuple[str, str, str]:
    """(label, colour key, region) of a series from its labels."""
    region = str(metric.get("region") or "")
    for key in ("service", "db", "deployment", "instance"):
        if metric.get(key):
            base = str(metric[key])
            return (f"{base}@{region}" if region and key != "db" else base), base, region
    rest = {k: v for k, v in metric.items() if k not in ("__name__", "job")}
    label = ", ".join(f"{k}={v}" for k, v in sorted(rest.items())) or str(metric.get("__name__") or "value")
    return label, label, region


def _numbers(values: Iterable) -> list[tuple[float, float]]:
    out = []
    for pair in values or []:
        try:
            t, v = float(pair[0]), float(pair[1])
        except (TypeError, ValueError, IndexError):
            continue
        if math.isfinite(v):
            out.append((t, v))
    return out


def _aggregate_requests(series: list[dict]) -> list[dict]:
    """The runbook's per-pod, per-uri request rate summed per service and region, business requests only."""
    sums: dict[tuple, dict[float, float]] = {}
    for s in series:
        m = s.get("metric") or {}
        if str(m.get("uri", "")).startswith("/actuator"):
            continue
        key = (m.get("region", ""), m.get("service") or m.get("application") or "")
        acc = sums.setdefault(key, {})
        for t, v in _numbers(s.get("values")):
            acc[t] = acc.get(t, 0.0) + v
    return [
        {"metric": {"region": r, "service": svc}, "values": sorted(acc.items())}
        for (r, svc), acc in sorted(sums.items())
    ]


@dataclass
class Metrics:
    """The metrics file the plots come from, and the window it covers."""

    file: Path | None
    results: dict
    start: float | None
    end: float | None
    step: float | None
    kind: str  # "window", "last hour" or "none"
    notes: list[str] = field(default_factory=list)


def choose_metrics(rec: Record) -> Metrics:
    """The newest investigation with incident-window queries, else the newest with any metrics."""
    candidates = []
    for inv in reversed(rec.investigations):
        doc = _load_json(inv / "metrics.json")
        if isinstance(doc, dict) and isinstance(doc.get("query_results"), dict):
            candidates.append((inv, doc))
    if not candidates:
        why = (
            "no investigation ran (the record has no investigation/ directory)"
            if not rec.investigations
            else "the investigation kept no readable metrics.json"
        )
        return Metrics(None, {}, None, None, None, "none", [f"No metrics: {why}."])
    for kind, prefix in (("window", "window_"), ("last hour", "")):
        for inv, doc in candidates:
            results = doc["query_results"]
            spec_queries = {s.query if prefix else (s.fallback or "") for s in PLOT_SPECS} - {""}
            usable = [results[q] for q in spec_queries if isinstance(results.get(q), dict)]
            if not usable:
                continue
            first = next((q for q in usable if q.get("start")), {})
            m = Metrics(
                inv / "metrics.json",
                results,
                _epoch(first.get("start")),
                _epoch(first.get("end")),
                float(first["step"]) if first.get("step") else None,
                kind,
            )
            if doc.get("degraded"):
                m.notes.append("Prometheus did not answer every query when the evidence was collected (degraded).")
            if kind == "last hour":
                m.notes.append(
                    "This record's investigation has no incident-window queries: the plots show the runbook's "
                    "last hour at its coarse step."
                )
            return m
    return Metrics(
        None, {}, None, None, None, "none", ["No metrics: the investigation's metrics.json has no range query."]
    )


def plots(metrics: Metrics) -> list[Plot]:
    out = []
    for spec in PLOT_SPECS:
        plot = Plot(spec.metric, spec.title, spec.unit, y_max=spec.y_max, y_labels=spec.y_labels)
        name = spec.query if metrics.kind == "window" else spec.fallback
        q = metrics.results.get(name) if name else None
        if metrics.kind == "none":
            plot.missing = "no metrics in the record"
        elif not isinstance(q, dict):
            plot.missing = f"the record's metrics have no {spec.query} query"
        elif q.get("error"):
            plot.missing = f"the query failed: {q['error']}"
        else:
            plot.source = f"{name}: {q.get('query', '')}"
            raw = q.get("series") or []
            if metrics.kind != "window" and spec.aggregate_fallback:
                raw = _aggregate_requests(raw)
            regions = sorted({str((s.get("metric") or {}).get("region") or "") for s in raw} - {""})
            for s in raw:
                label, key, region = _series_name(s.get("metric") or {})
                points = _numbers(s.get("values"))
                if points:
                    dash = regions.index(region) % 2 if region in regions else 0
                    plot.series.append(Series(label, key, dash, points))
            plot.series.sort(key=lambda s: s.label)
            if not plot.series:
                plot.missing = "no series in the window (nothing was measured)"
        out.append(plot)
    return out


def time_domain(metrics: Metrics, plot_list: list[Plot]) -> tuple[float, float] | None:
    """The plotted time range: the window, from its first sample (the lab may be younger than the window)."""
    firsts = [s.points[0][0] for p in plot_list for s in p.series]
    lasts = [s.points[-1][0] for p in plot_list for s in p.series]
    if not firsts:
        return None
    start = max(metrics.start or min(firsts), min(firsts))
    end = max(metrics.end or max(lasts), max(lasts))
    if end <= start:
        end = start + 1
    return start, end


# -- markers: alerts and the automation's changes ----------------------------------------------------
@dataclass
class Marker:
    ts: float
    kind: str  # change, alert-firing, alert-resolved
    label: str  # short, drawn on the plot (a number, or A/R with a number)
    title: str  # one line: what, for the tooltip and the list
    detail: str = ""
    run: str = ""
    module: str = ""
    took: float = 0.0  # a change is reported when its task ends; it ran for this long before


def changes(rec: Record) -> tuple[list[dict], list[dict]]:
    """(changes made, changes a check-mode run would make): the timeline's changed task results of procedures."""
    made, planned = [], []
    for e in rec.timeline:
        if e.get("source") != "ansible" or not e.get("changed") or e.get("failed"):
            continue
        run = str(e.get("run") or "")
        if _playbook_of(run) in RECORD_ONLY:
            continue
        ts = _epoch(e.get("ts"))
        if ts is None:
            continue
        item = {
            "ts": ts,
            "run": run,
            "task": str(e.get("task") or ""),
            "host": str(e.get("host") or ""),
            "module": _short_module(str(e.get("module") or "")),
            "summary": str(e.get("summary") or ""),
            "duration": float(e.get("duration") or 0),
        }
        (planned if rec.run(run)["check_mode"] else made).append(item)
    return made, planned


def alert_intervals(metrics: Metrics, rec: Record) -> list[dict]:
    """When each alert was firing: name, start, end (None while still firing), instances.

    From the window's ALERTS series (each instance's firing samples, merged per alert name);
    a record without it falls back to triage's alerts, which only say since when they fired.
    """
    q = metrics.results.get("window_alerts_firing") if metrics.kind == "window" else None
    out: list[dict] = []
    if isinstance(q, dict) and not q.get("error"):
        step = metrics.step or 1.0
        per_name: dict[str, list[list[float]]] = {}
        counts: dict[str, int] = {}
        for s in q.get("series") or []:
            name = str((s.get("metric") or {}).get("alertname") or "alert")
            counts[name] = counts.get(name, 0) + 1
            times = [t for t, _ in _numbers(s.get("values"))]
            for t in times:
                spans = per_name.setdefault(name, [])
                spans.append([t, t])
        for name, spans in per_name.items():
            spans.sort()
            merged: list[list[float]] = []
            for a, b in spans:
                if merged and a <= merged[-1][1] + 1.5 * step:
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            for a, b in merged:
                still = metrics.end is None or b >= metrics.end - 2 * step
                out.append({"name": name, "start": a, "end": None if still else b + step, "instances": counts[name]})
        return sorted(out, key=lambda a: (a["start"], a["name"]))
    alerts = rec.json("triage/alerts.json") or {}
    firsts: dict[str, float] = {}
    counts = {}
    for a in alerts.get("alerts") or []:
        ts = _epoch(a.get("active_at"))
        name = str(a.get("name") or (a.get("labels") or {}).get("alertname") or "alert")
        counts[name] = counts.get(name, 0) + 1
        if ts is not None:
            firsts[name] = min(ts, firsts.get(name, ts))
    return sorted(
        (
            {"name": n, "start": t, "end": None, "instances": counts[n], "pending_since": True}
            for n, t in firsts.items()
        ),
        key=lambda a: (a["start"], a["name"]),
    )


def markers(made: list[dict], alerts: list[dict]) -> list[Marker]:
    out = []
    for i, c in enumerate(made, 1):
        out.append(
            Marker(
                c["ts"],
                "change",
                str(i),
                f"{c['module']}: {c['summary'] or c['task']}",
                f"{c['task']} [{c['host']}]" + (f", took {c['duration']:.1f} s" if c["duration"] >= 0.1 else ""),
                c["run"],
                c["module"],
                c["duration"],
            )
        )
    for a in alerts:
        since = "pending since" if a.get("pending_since") else "firing"
        out.append(Marker(a["start"], "alert-firing", "!", f"alert {a['name']} {since} ({a['instances']} instance(s))"))
        if a["end"] is not None:
            out.append(Marker(a["end"], "alert-resolved", "✓", f"alert {a['name']} resolved"))
    return sorted(out, key=lambda m: m.ts)


def key_moments(rec: Record, plot_list: list[Plot], made: list[dict], alerts: list[dict]) -> list[dict]:
    """What a person asks first, read from the metrics and the record, in time order."""
    by = {p.metric: p for p in plot_list}
    moments = []

    def add(ts, what, kind="info"):
        if ts is not None:
            moments.append({"ts": ts, "what": what, "kind": kind})

    if alerts:
        first = alerts[0]
        add(first["start"], f"first alert: {first['name']}", "bad")
    for s in by["databases_up"].series:
        down = next((t for t, v in s.points if v < 0.5), None)
        add(down, f"database {s.label} down", "bad")
        if down is not None:
            back = next((t for t, v in s.points if t > down and v >= 0.5), None)
            add(back, f"database {s.label} up again", "good")
    for s in by["replication_running"].series:
        stop = next((t for t, v in s.points if v < 0.5), None)
        add(stop, f"replication into {s.label} stopped", "bad")
    # Users are not served while a service fails requests or has no ready pod (then its LB answers
    # 503 and the service's own metrics go quiet): served again at the first sample after the last of these.
    err, avail = by["error_ratio"].series, by["replicas_available"].series
    failing = sorted(t for s in err for t, v in s.points if v > ERROR_THRESHOLD)
    add(failing[0] if failing else None, f"errors above {ERROR_THRESHOLD:.0%} of requests", "bad")
    empty = sorted((t, s.label) for s in avail for t, v in _after_startup(s.points, rec.data.get("opened_at")) if v < 1)
    add(empty[0][0] if empty else None, f"no available replica of {empty[0][1]}" if empty else "", "bad")
    bad = sorted([*failing, *(t for t, _ in empty)])
    if bad:
        after = sorted({t for s in (*err, *avail) for t, _ in s.points if t > bad[-1]})
        add(
            after[0] if after else None,
            "users served again: every service available, errors under the threshold",
            "good",
        )
    for c in made:
        if c["module"] in ("mysql_promote", "traffic_failover", "mysql_fence"):
            add(c["ts"], f"{c['module']}: {c['summary']}", "action")
    d = rec.data
    add(d.get("opened_at"), "incident opened", "info")
    add(d.get("mitigated_at"), "mitigated: the procedure's verification passed", "good")
    moments.sort(key=lambda m: m["ts"])
    origin = d.get("opened_at")
    for m in moments:
        m["clock"] = _clock(m["ts"])
        m["offset"] = _offset(m["ts"], origin)
    return moments


def _after_startup(points: list[tuple[float, float]], opened) -> list[tuple[float, float]]:
    """A series without its leading zeros when they ended before the incident opened: pods that were
    still starting (a lab just brought up, a deployment just created), not a service this incident lost."""
    first_up = next((i for i, (_, v) in enumerate(points) if v >= 1), None)
    if first_up and opened is not None and points[first_up][0] <= float(opened):
        return points[first_up:]
    return points


# -- SVG plots ----------------------------------------------------------------------------------------
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
W, PAD_L, PAD_R, PAD_T, PAD_B = 960, 58, 14, 18, 26
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if v <= m * exp * 1.0001:
            return m * exp
    return 10 * exp


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.3g}"
    return f"{v:.2g}"


def _decimate(points: list[tuple[float, float]], t0: float, t1: float, width: float) -> list[tuple[float, float]]:
    """At most two points per pixel column (its min and max): spikes stay, the page stays small."""
    inside = [p for p in points if t0 <= p[0] <= t1]
    if len(inside) <= 2 * width:
        return inside
    buckets: dict[int, list[tuple[float, float]]] = {}
    for p in inside:
        buckets.setdefault(int((p[0] - t0) / (t1 - t0) * width), []).append(p)
    out = []
    for _, group in sorted(buckets.items()):
        lo, hi = min(group, key=lambda p: p[1]), max(group, key=lambda p: p[1])
        out.extend(sorted({lo, hi}))
    return out


def _segments(points: list[tuple[float, float]], gap: float) -> list[list[tuple[float, float]]]:
    segs: list[list[tuple[float, float]]] = []
    for p in points:
        if segs and p[0] - segs[-1][-1][0] <= gap:
            segs[-1].append(p)
        else:
            segs.append([p])
    return segs


def _label_rows(xs: list[float], min_gap: float = 11.0, rows: int = 3) -> list[int]:
    """A row for each marker label (x in order), so that close markers' labels do not overlap."""
    last = [-1e9] * rows
    out = []
    for mx in xs:
        row = next((r for r in range(rows) if mx - last[r] >= min_gap), min(range(rows), key=lambda r: last[r]))
        last[row] = mx
        out.append(row)
    return out


def svg_plot(plot: Plot, domain: tuple[float, float], marks: list[Marker], band: tuple[float, float] | None,
             step: float | None, colours: dict[str, str]) -> Markup:  # fmt: skip
    """One plot: lines per series, a band for the open incident, a vertical line per marker."""
    t0, t1 = domain
    pw = W - PAD_L - PAD_R

    def x(t):
        return PAD_L + (t - t0) / (t1 - t0) * pw

    shown = [m for m in marks if t0 <= m.ts <= t1]
    rows = _label_rows([x(m.ts) for m in shown])
    pad_t = PAD_T + 10 * max(rows, default=0)
    height = (110 if plot.y_labels else 170) + pad_t
    ph = height - pad_t - PAD_B
    top = plot.y_max or _nice_max(max((v for s in plot.series for _, v in s.points), default=1.0))
    lo, hi = -0.04 * top, 1.04 * top  # a line at 0 or at the top stays off the frame

    def y(v):
        return pad_t + ph - (min(max(v, lo), hi) - lo) / (hi - lo) * ph

    parts = [
        f'<svg class="plot" data-metric="{_e(plot.metric)}" viewBox="0 0 {W} {height}" role="img" '
        f'aria-label="{_e(plot.title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    if band:
        a, b = max(band[0], t0), min(band[1], t1)
        if b > a:
            parts.append(
                f'<rect class="band" x="{x(a):.1f}" y="{pad_t}" width="{x(b) - x(a):.1f}" height="{ph}">'
                "<title>the incident, from opened to mitigated</title></rect>"
            )
    # axes and grid
    ticks = sorted(plot.y_labels) if plot.y_labels else [0.0, top / 2, top]
    for v in ticks:
        label = plot.y_labels.get(v, _fmt(v)) if plot.y_labels else _fmt(v)
        parts.append(f'<line class="grid" x1="{PAD_L}" x2="{W - PAD_R}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>')
        parts.append(f'<text class="ytick" x="{PAD_L - 5}" y="{y(v) + 4:.1f}">{_e(label)}</text>')
    tstep = next((s for s in TIME_STEPS if (t1 - t0) / s <= 8), TIME_STEPS[-1])
    t = math.ceil(t0 / tstep) * tstep
    while t <= t1:
        parts.append(f'<line class="grid" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{pad_t}" y2="{pad_t + ph}"/>')
        parts.append(f'<text class="xtick" x="{x(t):.1f}" y="{height - 8}">{_clock(t)}</text>')
        t += tstep
    parts.append(f'<rect class="frame" x="{PAD_L}" y="{pad_t}" width="{pw}" height="{ph}"/>')
    if plot.unit:
        parts.append(f'<text class="unit" x="{PAD_L - 5}" y="{pad_t - 8}">{_e(plot.unit)}</text>')
    # series, split where samples are missing
    gap = 2.5 * (step or 1.0)
    drawn = 0
    for s in plot.series:
        pts = _decimate(s.points, t0, t1, pw)
        drawn += len(pts)
        colour = colours.get(s.key, PALETTE[0])
        dash = ' stroke-dasharray="6 3"' if s.dash else ""
        parts.append(f'<g class="series" data-series="{_e(s.label)}" data-points="{len(pts)}">')
        parts.append(f"<title>{_e(s.label)}</title>")
        for seg in _segments(pts, gap):
            if len(seg) == 1:
                parts.append(f'<circle cx="{x(seg[0][0]):.1f}" cy="{y(seg[0][1]):.1f}" r="1.8" fill="{colour}"/>')
            else:
                coords = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in seg)
                parts.append(f'<polyline points="{coords}" stroke="{colour}"{dash}/>')
        parts.append("</g>")
    # markers: a line through the plot, a short label above it, the one-line message on hover
    for m, row in zip(shown, rows, strict=True):
        mx = x(m.ts)
        span = ""
        if m.took >= 0.1:  # the task ran from here to its line
            sx = x(max(m.ts - m.took, t0))
            span = f'<rect class="took" x="{sx:.1f}" y="{pad_t}" width="{mx - sx:.1f}" height="{ph}"/>'
        parts.append(
            f'<g class="marker {m.kind}" data-ts="{m.ts:.3f}"><title>{_e(_clock(m.ts))} {_e(m.title)}</title>{span}'
            f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{pad_t - 2 - 10 * row}" y2="{pad_t + ph}"/>'
            f'<text x="{mx:.1f}" y="{pad_t - 5 - 10 * row}">{_e(m.label)}</text></g>'
        )
    if not plot.series:
        parts.append(
            f'<text class="empty" x="{PAD_L + pw / 2:.1f}" y="{pad_t + ph / 2 + 4:.1f}">'
            f"{_e('no data: ' + plot.missing)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts).replace("<svg ", f'<svg data-points="{drawn}" ', 1))


def colour_map(plot_list: list[Plot]) -> dict[str, str]:
    keys = sorted({s.key for p in plot_list for s in p.series})
    return {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}


# -- topology: databases, regions and traffic, before and after --------------------------------------
def _db_status(ev: TaskEvent) -> tuple[dict, dict]:
    """A task's arguments and result about the databases' status: triage_probe (P0 reads the databases with the
    regions) keeps them under its databases probe, as mysql_replication_info would give them."""
    args = (ev.res.get("invocation") or {}).get("module_args") or {}
    if _short_module(ev.module) == "triage_probe":
        return args.get("databases") or {}, ev.res.get("databases") or {}
    return args, ev.res


def _addresses(rec: Record) -> dict[str, str]:
    """address -> server name, from the modules' arguments and the servers' own answers."""
    out: dict[str, str] = {}
    for ev in rec.task_events:
        args, res = _db_status(ev)
        for srv in args.get("servers") or []:
            if isinstance(srv, dict) and srv.get("name") and srv.get("login_host"):
                out[f"{srv['login_host']}:{srv.get('login_port') or 3306}"] = str(srv["name"])
        for name, st in (res.get("servers") or {}).items():
            addr = ((st or {}).get("server") or {}).get("address")
            if addr:
                out[addr] = name
    raw = ((rec.findings or {}).get("raw") or {}).get("databases") or {}
    for name, st in (raw.get("servers") or {}).items():
        addr = ((st or {}).get("server") or {}).get("address")
        if addr:
            out[addr] = name
        elif (st or {}).get("error"):
            m = re.match(r"^([\w.\-\[\]:]+:\d+): ", str(st["error"]))
            if m:
                out.setdefault(m.group(1), name)
    return out


def _server_view(name: str, st: dict, names: dict[str, str]) -> dict:
    rep = st.get("replication") or None
    source = None
    if rep:
        addr = rep.get("source") or (
            f"{rep.get('source_host')}:{rep.get('source_port')}" if rep.get("source_host") else None
        )
        source = names.get(addr, addr) if addr else "unknown"
    reachable = st.get("reachable")
    return {
        "name": name,
        "reachable": reachable,
        "role": st.get("role") or ("unreachable" if reachable is False else "unknown"),
        "read_only": st.get("read_only"),
        "source": source,
        "replication": (rep.get("summary") or f"io {rep.get('io_thread')}, sql {rep.get('sql_thread')}") if rep else "",
        "note": str(st.get("error") or ""),
    }


def topology(rec: Record) -> dict:
    """Database servers as triage found them and as the procedure left them (the newest observation wins)."""
    names = _addresses(rec)
    notes = []
    before: dict[str, dict] = {}
    raw = ((rec.findings or {}).get("raw") or {}).get("databases") or {}
    for name, st in sorted((raw.get("servers") or {}).items()):
        before[name] = _server_view(name, st or {}, names)
    if not before:
        for name, db in sorted(((rec.findings or {}).get("findings") or {}).get("databases", {}).items()):
            before[name] = _server_view(name, db or {}, names)
    if not before:
        notes.append("No database state from triage (triage did not finish, or found no database).")
    after = {k: dict(v) for k, v in before.items()}
    changed = False
    for ev in rec.task_events:
        mod = _short_module(ev.module)
        if ev.outcome != "ok" or ev.check_mode:
            continue
        if mod in ("mysql_replication_info", "triage_probe"):
            for name, st in (_db_status(ev)[1].get("servers") or {}).items():
                after[name] = _server_view(name, st or {}, names)
        elif mod == "mysql_promote" and ev.res.get("promoted"):
            args = (ev.res.get("invocation") or {}).get("module_args") or {}
            addr = ((ev.res.get("state") or {}).get("server") or {}).get("address") or (
                f"{args.get('login_host')}:{args.get('login_port')}"
            )
            name = names.get(addr, addr)
            after[name] = _server_view(name, {"reachable": True, **(ev.res.get("state") or {})}, names)
            after[name]["note"] = "promoted by this incident"
            old = ev.res.get("old_primary") or {}
            if old.get("address"):
                oname = names.get(old["address"], old["address"])
                view = after.setdefault(oname, {"name": oname, "role": "unknown", "source": None, "replication": ""})
                if old.get("fenced"):
                    view.update(role="fenced", read_only=True, note="fenced (read-only) by the promotion")
                elif old.get("reachable") is False:
                    view.update(reachable=False, role="unreachable", note="old primary: unreachable, not fenced")
            changed = True
        elif mod == "mysql_fence":
            args = (ev.res.get("invocation") or {}).get("module_args") or {}
            addr = f"{args.get('login_host')}:{args.get('login_port')}"
            name = names.get(addr, addr)
            aft = ev.res.get("after") or {}
            src = aft.get("replication_source")
            after[name] = {
                "name": name,
                "reachable": True,
                "role": "fenced" if ev.res.get("fenced") else "unknown",
                "read_only": aft.get("read_only"),
                "source": names.get(src, src) if src else None,
                "replication": "",
                "note": str(ev.res.get("msg") or ""),
            }
            changed = True
    if rec.data.get("check_mode"):
        notes.append("Check mode: the procedure changed nothing; 'after' is the state it read.")
    elif before and not changed:
        notes.append("No database step changed anything; 'after' is the newest state the procedure read.")
    return {"before": list(before.values()), "after": [after[k] for k in sorted(after)], "notes": notes}


def regions(rec: Record) -> dict:
    """Per region: load balancer, services, cluster at triage and after the procedure; where traffic went."""
    f = (rec.findings or {}).get("findings") or {}
    table: dict[str, dict] = {}

    def row(region):
        keys = ("lb", "services", "cluster")
        return table.setdefault(region, {"name": region, "before": dict.fromkeys(keys), "after": dict.fromkeys(keys)})

    for region, lb in (f.get("load_balancers") or {}).items():
        row(region)["before"]["lb"] = _health_text(lb.get("up"), lb.get("healthy"), lb.get("error"))
    counts: dict[str, list[int]] = {}
    for s in f.get("services") or []:
        c = counts.setdefault(str(s.get("region") or ""), [0, 0])
        c[0] += bool(s.get("up"))
        c[1] += 1
    for region, (up, total) in counts.items():
        if region:
            row(region)["before"]["services"] = f"{up} of {total} up"
    for region, c in (f.get("clusters") or {}).items():
        row(region)["before"]["cluster"] = _cluster_text(c)
    # after: the procedure's last health check per region, and the newest investigation's cluster state
    for ev in rec.task_events:
        if _short_module(ev.module) != "service_health" or ev.check_mode:
            continue
        per: dict[str, list[int]] = {}
        for chk in ev.res.get("checks") or []:
            region = chk.get("region")
            if not region or str(chk.get("name", "")).startswith("load-balancer"):
                continue  # the regions' aggregate checks are not services
            c = per.setdefault(region, [0, 0])
            c[0] += chk.get("status") == "UP"
            c[1] += 1
        for region, (up, total) in per.items():
            row(region)["after"]["services"] = f"{up} of {total} up"
    for inv in reversed(rec.investigations):
        state = _load_json(inv / "cluster-state.json")
        clusters = (state or {}).get("clusters") if isinstance(state, dict) else None
        if isinstance(clusters, dict):
            for region, c in clusters.items():
                row(region)["after"]["cluster"] = _cluster_text(c)
            break
    traffic = {"before": None, "after": None, "note": ""}
    switches = [e for e in rec.events("traffic_failover") if e.outcome == "ok"]
    if switches:
        first, last = switches[0].res, switches[-1].res
        traffic.update(before=first.get("previous_region"), after=last.get("region"))
        if any(e.check_mode for e in switches):
            traffic["note"] = "check mode: where traffic would go"
        elif not any(e.res.get("changed") for e in switches):
            traffic["note"] = "traffic already pointed there; nothing switched"
    else:
        skipped = [
            e
            for e in rec.timeline
            if _short_module(str(e.get("module") or "")) == "traffic_failover" and e.get("outcome") == "skipped"
        ]
        traffic["note"] = (
            "the procedure decided against a region failover: traffic stayed where it was"
            if skipped
            else "no procedure step touched the traffic switch"
        )
    return {"regions": [table[k] for k in sorted(table)], "traffic": traffic}


def _cluster_text(c) -> str:
    """triage keeps a cluster's summary as a line, cluster_snapshot as a dict with its line."""
    c = c if isinstance(c, dict) else {}
    summary = c.get("summary")
    if isinstance(summary, dict):
        summary = summary.get("line")
    return str(summary or c.get("error") or ("unreachable" if c.get("reachable") is False else ""))


def _health_text(up, healthy, error) -> str:
    if up is None:
        return "unknown"
    if not up:
        return f"down ({error})" if error else "down"
    return "degraded" if healthy is False else "up"


# -- the safety gate and the rollback data -------------------------------------------------------------
def gates(rec: Record) -> list[dict]:
    out = []
    for ev in rec.events("mysql_promote"):
        res = ev.res
        gate = res.get("gate") or {}
        checks = [
            {"name": str(c.get("name", "")), "ok": bool(c.get("ok")), "detail": str(c.get("detail", ""))}
            for c in gate.get("checks") or []
            if isinstance(c, dict)
        ]
        old = res.get("old_primary") or {}
        out.append(
            {
                "run": ev.run,
                "task": ev.task,
                "check_mode": ev.check_mode,
                "outcome": ev.outcome,
                "promoted": bool(res.get("promoted")),
                "passed": gate.get("passed"),
                "msg": str(res.get("msg") or ""),
                "checks": checks,
                "overridden": [str(o) for o in gate.get("overridden") or []],
                "old_primary": {
                    k: old.get(k) for k in ("address", "reachable", "fenced", "fenced_by_this_run", "error")
                },
                "heartbeat": {k: (res.get("heartbeat") or {}).get(k) for k in ("table", "login_user", "proves")},
                "statements": [str(s) for part in (res.get("statements") or {}).values() for s in (part or [])],
                "waited": gate.get("waited_seconds"),
            }
        )
    return out


def rollback_data(rec: Record) -> list[dict]:
    out = []
    with contextlib.suppress(OSError):
        for path in sorted((rec.path / "changes").glob("*.json")):
            doc = _load_json(path)
            if not isinstance(doc, dict):
                out.append({"file": path, "procedure": "?", "entries": [("unreadable", "the file is not JSON")]})
                continue
            items = []
            for kind in ("traffic", "configmap", "scale", "database"):
                value = doc.get(kind)
                if value:
                    items.append((kind, _describe(value)))
            out.append(
                {
                    "file": path,
                    "procedure": str(doc.get("procedure") or ""),
                    "recorded_at": _epoch(doc.get("recorded_at")),
                    "entries": items or [("nothing", "no value was replaced")],
                }
            )
    return out


def _describe(value) -> str:
    """A compact one-line view of a kept value (rollback data)."""
    if isinstance(value, list):
        return "; ".join(_describe(v) for v in value)
    if isinstance(value, dict):
        where = "/".join(str(value[k]) for k in ("cluster", "namespace", "name") if value.get(k))
        rest = {k: v for k, v in value.items() if k not in ("cluster", "namespace", "name")}
        body = ", ".join(
            f"{k}: {json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v}" for k, v in rest.items()
        )
        return f"{where} {body}".strip()
    return str(value)


# -- timeline and evidence ---------------------------------------------------------------------------
def timeline_rows(rec: Record) -> list[dict]:
    origin = rec.data.get("opened_at")
    rows = []
    for e in rec.timeline:
        ts = _epoch(e.get("ts"))
        if e.get("source") == "controller":
            rows.append(
                {
                    "ts": ts,
                    "clock": _clock(ts),
                    "offset": _offset(ts, origin),
                    "run": str(e.get("run") or ""),
                    "source": "controller",
                    "what": str(e.get("kind") or ""),
                    "host": "",
                    "module": "",
                    "result": "step",
                    "changed": False,
                    "failed": False,
                    "message": str(e.get("message") or ""),
                }
            )
            continue
        run = str(e.get("run") or "")
        check = rec.run(run)["check_mode"]
        failed = bool(e.get("failed"))
        if failed:
            result = "failed (ignored)" if e.get("ignored") else "failed"
        elif e.get("changed"):
            result = "would change" if check else "changed"
        else:
            result = str(e.get("outcome") or "ok")
        rows.append(
            {
                "ts": ts,
                "clock": _clock(ts),
                "offset": _offset(ts, origin),
                "run": run,
                "source": "task",
                "what": str(e.get("task") or ""),
                "host": str(e.get("host") or ""),
                "module": _short_module(str(e.get("module") or "")),
                "result": result,
                "changed": bool(e.get("changed")) and not failed,
                "failed": failed,
                "message": str(e.get("summary") or ""),
            }
        )
    return rows


def evidence(rec: Record) -> list[dict]:
    """Groups of (label, path) of the files that back the page, as paths in the record."""
    groups = []

    def existing(paths: Iterable[Path]) -> list[Path]:
        return [p for p in paths if p.exists()]

    core = existing(
        rec.path / p
        for p in (
            "incident.json",
            "timeline.jsonl",
            "postmortem.md",
            "triage/findings.json",
            "triage/alerts.json",
        )
    )
    core += sorted((rec.path / "snapshots").glob("*")) if (rec.path / "snapshots").is_dir() else []
    groups.append({"title": "The record", "files": core})
    for inv in rec.investigations:
        files = existing(inv / n for n in ("metrics.json", "network.json", "cluster-state.txt", "cluster-state.json"))
        logs = sorted(p for p in (inv / "logs").rglob("*.log")) if (inv / "logs").is_dir() else []
        groups.append({"title": f"Investigation {inv.name}", "files": files + logs})
    outcome_files = sorted((rec.path / "outcomes").glob("*.json")) + sorted((rec.path / "changes").glob("*.json"))
    if outcome_files:
        groups.append({"title": "Outcomes and rollback data", "files": outcome_files})
    run_files = []
    for run in rec.runs:
        base = rec.path / "runs" / run["name"]
        for art in sorted(base.glob("artifacts/*")):
            run_files += existing([art / "stdout", art / "status"])
            if (art / "job_events").is_dir():
                run_files.append(art / "job_events")
    if run_files:
        groups.append({"title": "Runner artifacts (ansible-runner)", "files": run_files})
    return [g for g in groups if g["files"]]


def missing_parts(rec: Record, metrics: Metrics, made: list[dict], planned: list[dict]) -> list[str]:
    notes = []
    d = rec.data
    if rec.findings is None:
        tri = [r for r in rec.runs if r["playbook"] == "triage"]
        notes.append(
            "No triage findings: "
            + ("triage did not finish (see its run in the timeline)." if tri else "triage never ran.")
        )
    if not d.get("severity"):
        notes.append("No severity: " + (str(d.get("resolution")) if d.get("resolution") else "none was decided."))
    if not rec.procedure_runs:
        notes.append("No procedure ran: nothing on the platform was changed by the automation.")
    if d.get("check_mode"):
        notes.append(
            f"Check mode: nothing was changed; {len(planned)} step(s) would have changed the platform "
            "(listed below, not drawn on the plots)."
        )
    notes += metrics.notes
    if not (rec.path / "postmortem.md").exists():
        notes.append("No postmortem draft in the record (`incidentctl postmortem ID` renders it).")
    return notes


# -- the page -------------------------------------------------------------------------------------------
@dataclass
class Section:
    """A part of the page prepared on its own: a failure in one costs that part, not the page."""

    value: object
    error: str = ""


def _safe(fn: Callable, *args, default=None) -> Section:
    try:
        return Section(fn(*args))
    except Exception as exc:
        return Section(default, f"{fn.__name__} could not be prepared from the record: {type(exc).__name__}: {exc}")


def prepare(incident: Incident) -> dict:
    """Everything the page shows, as plain data (the tests check it without a browser)."""
    rec = Record(incident)
    errors = []

    def part(fn, *args, default=None):
        s = _safe(fn, *args, default=default)
        if s.error:
            errors.append(s.error)
        return s.value

    metrics = part(choose_metrics, rec, default=Metrics(None, {}, None, None, None, "none"))
    plot_list = part(plots, metrics, default=[])
    domain = part(time_domain, metrics, plot_list)
    made, planned = part(changes, rec, default=([], []))
    alerts = part(alert_intervals, metrics, rec, default=[])
    marks = part(markers, made, alerts, default=[])
    return {
        "record": rec,
        "header": part(header, rec, default=_empty_header(incident.path.name)),
        "metrics": metrics,
        "plots": plot_list,
        "domain": domain,
        "changes": made,
        "planned": planned,
        "alerts": alerts,
        "markers": marks,
        "moments": part(key_moments, rec, plot_list, made, alerts, default=[]) if plot_list else [],
        "topology": part(topology, rec, default={"before": [], "after": [], "notes": []}),
        "regions": part(regions, rec, default={"regions": [], "traffic": {"before": None, "after": None, "note": ""}}),
        "gates": part(gates, rec, default=[]),
        "rollback": part(rollback_data, rec, default=[]),
        "timeline": part(timeline_rows, rec, default=[]),
        "evidence": part(evidence, rec, default=[]),
        "missing": part(missing_parts, rec, metrics, made, planned, default=[]) + errors,
    }


def _postmortem_html(path: Path) -> Markup | None:
    from markdown_it import MarkdownIt

    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # raw HTML off: the draft quotes task messages and logs; links to javascript: are refused by markdown-it
    return Markup(MarkdownIt("js-default", {"html": False}).render(text))


def content_security_policy(css: str, js: str) -> str:
    """Only the page's own style and script may run, and nothing is fetched: should a value from the
    record ever slip past the escaping, an injected script or handler is still refused by the browser."""

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    return f"default-src 'none'; style-src {digest(css)}; script-src {digest(js)}; img-src data:"


def render(incident: Incident, out_dir: Path | None = None) -> str:
    """The page as a string; links to the evidence are relative to ``out_dir`` (default: the record)."""
    data = prepare(incident)
    rec: Record = data["record"]
    base = Path(out_dir or rec.path).absolute()

    def link(path: Path) -> str:
        rel = os.path.relpath(path, base)
        return quote(rel.replace(os.sep, "/")) + ("/" if path.is_dir() else "")

    def label(path: Path) -> str:
        return os.path.relpath(path, rec.path)

    colours = colour_map(data["plots"])
    band = None
    d = rec.data
    if d.get("opened_at") and not d.get("check_mode"):
        band = (float(d["opened_at"]), float(d.get("mitigated_at") or (data["domain"] or (0, 0))[1]))
    svgs = []
    if data["domain"]:
        for p in data["plots"]:
            svgs.append(
                {
                    "plot": p,
                    "svg": svg_plot(p, data["domain"], data["markers"], band, data["metrics"].step, colours),
                    "legend": [
                        {"label": s.label, "colour": colours.get(s.key, PALETTE[0]), "dash": s.dash} for s in p.series
                    ],
                }
            )
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True
    )
    env.filters.update(clock=_clock, date=_date, offset=lambda ts: _offset(ts, d.get("opened_at")), link=link)
    env.filters["label"] = label
    css, js = (TEMPLATES / "report.css").read_text(), (TEMPLATES / "report.js").read_text()
    return env.get_template("report.html.j2").render(
        **data,
        svgs=svgs,
        runs=rec.runs,
        css=Markup(css),
        js=Markup(js),
        csp=content_security_policy(css, js),
        no_plots=(data["metrics"].notes or ["no series in the window"])[0],
        postmortem=_postmortem_html(rec.path / "postmortem.md"),
        postmortem_link=link(rec.path / "postmortem.md"),
        generated=_date(datetime.now(UTC).timestamp()),
        domain_text=(
            f"{_date(data['domain'][0])} to {_clock(data['domain'][1])}, step {data['metrics'].step:g} s"
            if data["domain"] and data["metrics"].step
            else ""
        ),
        metrics_link=link(data["metrics"].file) if data["metrics"].file else None,
        metrics_label=label(data["metrics"].file) if data["metrics"].file else None,
    )


def write(incident: Incident, dest: Path | None = None) -> Path:
    """Write the report (default: ``report.html`` in the record) and return its path.

    Called at the end of ``respond``: a page that cannot be rendered becomes a short page that
    says why, rather than a failed response. A destination that cannot be written is bad input.
    """
    path = Path(dest).absolute() if dest else incident.path / REPORT_NAME
    if path.is_dir():
        path = path / REPORT_NAME
    try:
        page = render(incident, path.parent)
    except Exception as exc:  # a bug or a record no part of which could be read: say so on the page
        page = _fallback_page(incident, exc)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise BadInput(f"cannot write the report to {path}: {exc.strerror or exc}") from None
    return path


def _fallback_page(incident: Incident, exc: Exception) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
        f"<title>{_e(incident.path.name)} - incident report</title></head><body>"
        f"<h1>{_e(incident.path.name)}</h1><p>The report could not be rendered: {_e(type(exc).__name__)}: {_e(exc)}."
        " The record's files are complete; <code>incidentctl show</code> and <code>timeline</code> read them.</p>"
        "</body></html>\n"
    )


def open_in_browser(path: Path) -> bool:
    """Open the page where a graphical browser can be; False where there is none (a server, ssh)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False  # webbrowser would fall back to a console browser and take over the terminal
    try:
        return webbrowser.open(path.as_uri())
    except webbrowser.Error:
        return False


__all__ = ["REPORT_NAME", "open_in_browser", "prepare", "render", "write"]
