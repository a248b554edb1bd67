"""The incidentctl command line."""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from incidentlab.cli import app as lab_app
from incidentlab.errors import LabError

from . import flow
from . import report as reports
from .errors import OK, PROCEDURE_FAILED, ControllerError
from .progress import ConsoleProgress
from .project import Project
from .record import ENV_INCIDENTS_DIR, Incident, incidents_root, iso, now

app = typer.Typer(
    help="Incident response for the multi-region platform: triage, severity procedures run through Ansible, "
    "and an incident record (timeline, artifacts, postmortem). Exit codes: 0 ok, 1 procedure failed or platform "
    "still unhealthy, 2 bad input, 3 refused (confirmation or lock), 4 environment (missing tool).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(lab_app, name="lab")


def _console(stderr: bool = False) -> Console:
    """Long lines stay whole (the terminal wraps them); piped into a log, tables get room, not 80 columns."""
    console = Console(stderr=stderr, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160
    return console


out = _console()
err = _console(stderr=True)


Inventory = Annotated[
    str | None,
    typer.Option("-i", "--inventory", help="Inventory path, or a name under inventories/ (default: lab)."),
]
IncidentsDir = Annotated[
    Path | None,
    typer.Option(
        "--incidents-dir", envvar=ENV_INCIDENTS_DIR, help="Where incident records live (default: ./incidents)."
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Confirm destructive steps without asking.")]
Check = Annotated[bool, typer.Option("--check", help="Dry run: show what would change, change nothing.")]


def expected_errors(fn):
    """Expected failures: one line on stderr and the documented exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ControllerError, LabError) as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted: the record keeps everything up to this point")
            raise typer.Exit(130) from None

    return wrapper


def _context(project: Project, inventory: Path, yes: bool, as_json: bool, extravars: dict | None = None):
    interactive = sys.stdin.isatty() and not as_json

    def ask(steps: list[str]) -> bool:
        err.print("[bold yellow]These steps change the platform:[/bold yellow]")
        for s in steps:
            err.print(f"  - {s}", highlight=False)
        return typer.confirm("Run them?", default=False, err=True)

    return flow.Context(
        project=project,
        inventory=inventory,
        progress=ConsoleProgress(err),
        confirm=ask if interactive else None,
        assume_yes=yes,
        extravars=extravars or {},
    )


def _emit(doc: dict, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


# -- triage ------------------------------------------------------------------------------
@app.command()
@expected_errors
def triage(inventory: Inventory = None, as_json: Json = False) -> None:
    """Assess the platform (alerts, health, databases, cluster) and say which severity the policy gives.

    Changes nothing on the platform. The triage run's artifacts are kept only inside incidents
    (`incidentctl respond`); here they go to a temporary directory.
    """
    project = Project.locate()
    inv = flow.prepare(project, inventory)
    scratch = Path(tempfile.mkdtemp(prefix="incidentctl-triage-"))
    try:
        inc = Incident.create(scratch, inventory=str(inv))
        data = flow.triage(_context(project, inv, False, as_json), inc)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if as_json:
        _emit(data, True)
        return
    _print_triage(data)


def _print_triage(data: dict) -> None:
    findings = data.get("findings") or {}
    table = Table(title="findings", title_justify="left")
    for col in ("area", "target", "state", "detail"):
        table.add_column(col, overflow="fold")
    for region, lb in sorted((findings.get("load_balancers") or {}).items()):
        table.add_row("load balancer", region, _state(lb.get("up"), lb.get("healthy")), lb.get("error") or "")
    services = findings.get("services") or []
    for s in services:
        if not s.get("up"):
            table.add_row("service", f"{s.get('name')}@{s.get('region', '')}", _state(False), s.get("error") or "")
    up = [s for s in services if s.get("up")]
    if up:
        table.add_row(
            "services", f"{len(up)} of {len(services)}", _state(True), "answer UP through their load balancer"
        )
    for name, db in sorted((findings.get("databases") or {}).items()):
        rep = db.get("replication") or {}
        detail = db.get("error") or (f"role {db.get('role')}" + (f", replication: {rep.get('summary')}" if rep else ""))
        healthy = db.get("reachable") and not (rep and not rep.get("healthy"))
        table.add_row("database", name, _state(db.get("reachable"), healthy), detail)
    for a in findings.get("alerts") or []:
        table.add_row("alert", a.get("alertname", ""), "[red]firing[/red]", a.get("summary") or "")
    for region, c in sorted((findings.get("clusters") or {}).items()):
        table.add_row("cluster", region, _state(c.get("reachable"), c.get("healthy")), c.get("summary") or "")
    out.print(table)
    cls = data.get("classification") or {}
    sev = cls.get("severity")
    out.print(f"[bold]severity:[/bold] {sev or 'no incident'}")
    for r in cls.get("reasons", []):
        out.print(f"  - {r}", highlight=False)


def _state(up, healthy=None) -> str:
    if up is None:
        return "?"
    if not up:
        return "[red]down[/red]"
    return "[yellow]degraded[/yellow]" if healthy is False else "[green]up[/green]"


# -- respond -----------------------------------------------------------------------------
@app.command()
@expected_errors
def respond(
    inventory: Inventory = None,
    severity: Annotated[
        str, typer.Option("--severity", "-s", help="P0, P1, P2, P3, or auto: the severity policy decides.")
    ] = "auto",
    check: Check = False,
    yes: Yes = False,
    service: Annotated[
        list[str] | None, typer.Option("--service", help="Affected service (repeatable; default: what triage found).")
    ] = None,
    incidents_dir: IncidentsDir = None,
    as_json: Json = False,
) -> None:
    """Open an incident, triage, run the severity procedure, verify, collect evidence, write the postmortem draft.

    Destructive steps (failover, promotion, restarts, scaling, config changes) are shown first and
    run only after confirmation: interactively, or with --yes. Without a terminal and without
    --yes they are refused (exit 3) rather than waiting for an answer.

    After the procedure, the runbook's investigation (logs of every service, the last hour of
    metrics, network checks) is kept in the record; it only reads.
    """
    severity = flow.check_severity(severity)
    project = Project.locate()
    inv = flow.prepare(project, inventory)
    root = incidents_root(incidents_dir)
    extravars = {"affected_services": service} if service else {}
    ctx = _context(project, inv, yes, as_json, extravars)
    inc = Incident.create(root, inventory=str(inv), check=check)
    err.print(f"[bold]incident {inc.id}[/bold] opened: {inc.path}", highlight=False)
    started = time.monotonic()
    with inc.locked():
        data = flow.triage(ctx, inc)
        sev = flow.decide(inc, data, severity)
        if sev is None:
            inc.update(status="closed", closed_at=now(), resolution="triage found no incident")
            inc.log("closed", "no incident: nothing to do")
            _summary(inc, None, started, as_json)
            return
        playbook = flow.PROCEDURES[sev]
        steps = flow.destructive_steps(ctx, playbook)
        _print_plan(inc, playbook, steps, check)
        confirmed = flow.confirm_steps(ctx, inc, steps, check)
        res = flow.run_procedure(ctx, inc, playbook, check=check, confirmed=confirmed)
        evidence = flow.collect_evidence(ctx, inc)
        pm = flow.render_postmortem(ctx, inc)
        if pm:
            inc.log("postmortem rendered", f"postmortem draft: {pm}")
        inc.log("report written", f"report: {reports.write(inc)}")
    code = _summary(inc, res, started, as_json, evidence)
    if code != OK:
        raise typer.Exit(code)


def _print_plan(inc: Incident, playbook: str, steps: list[str], check: bool) -> None:
    d = inc.data
    err.print(f"[bold]severity {d['severity']}[/bold] ({d['severity_source']}): " + "; ".join(d["reasons"]))
    err.print(f"procedure: {playbook}" + (" in check mode" if check else ""))
    if steps:
        err.print("destructive steps:")
        for s in steps:
            err.print(f"  - {s}", highlight=False)
    else:
        err.print("no destructive steps")


def _summary(inc: Incident, res, started: float, as_json: bool, evidence: Path | None = None) -> int:
    outcome = {}
    if res is not None:
        outcome = json.loads((inc.path / "outcomes" / f"{res.name}.json").read_text())
    doc = {
        "incident": inc.id,
        "record": str(inc.path),
        "severity": inc.data["severity"],
        "reasons": inc.data["reasons"],
        "status": inc.data["status"],
        "check_mode": inc.data["check_mode"],
        "duration_seconds": round(time.monotonic() - started, 1),
        "procedure": None if res is None else {"run": res.name, "status": res.status, "ok": res.ok},
        "actions": [f"{c['task']} [{c['host']}]: {c['summary']}" for c in (res.changes if res else [])],
        "failures": [f"{f['task']} [{f['host']}]: {f['summary']}" for f in (res.failures if res else [])],
        "healthy": outcome.get("healthy", []),
        "unhealthy": outcome.get("unhealthy", []),
        "needs_human": outcome.get("needs_human", []),
        "verified": outcome.get("verified"),
        "response_times": flow.response_times(inc.data),
        "evidence": str(evidence) if evidence else None,
        "postmortem": str(inc.path / "postmortem.md") if (inc.path / "postmortem.md").exists() else None,
        "report": str(inc.path / reports.REPORT_NAME) if (inc.path / reports.REPORT_NAME).exists() else None,
    }
    code = OK
    if res is not None and not (res.ok and (outcome.get("verified") or inc.data["check_mode"])):
        code = PROCEDURE_FAILED
    if as_json:
        _emit(doc, True)
        return code
    out.rule(f"incident {inc.id}")
    out.print(
        f"severity: {doc['severity'] or 'no incident'}   status: {doc['status']}   took {doc['duration_seconds']}s"
    )
    for title, key, style in (
        ("done", "actions", ""),
        ("failed", "failures", "red"),
        ("healthy now", "healthy", "green"),
        ("still unhealthy", "unhealthy", "red"),
        ("needs a human", "needs_human", "yellow"),
    ):
        if doc[key]:
            out.print(f"[bold]{title}:[/bold]")
            for item in doc[key]:
                out.print(f"  - {item}", style=style, highlight=False)
    out.print(f"record: {doc['record']}", highlight=False)
    if doc["evidence"]:
        out.print(f"evidence (logs, metrics, network): {doc['evidence']}", highlight=False)
    if doc["postmortem"]:
        out.print(f"postmortem draft: {doc['postmortem']}", highlight=False)
    if doc["report"]:
        out.print(f"report: {doc['report']}", highlight=False)
    return code


# -- run -------------------------------------------------------------------------------------
@app.command()
@expected_errors
def run(
    playbook: Annotated[str, typer.Argument(help="Playbook name under playbooks/, e.g. investigate, communicate.")],
    inventory: Inventory = None,
    incident: Annotated[str | None, typer.Option("--incident", help="Incident id (default: open a new one).")] = None,
    extra: Annotated[
        list[str] | None, typer.Option("-e", "--extra-var", help="key=value passed to the playbook (repeatable).")
    ] = None,
    check: Check = False,
    yes: Yes = False,
    incidents_dir: IncidentsDir = None,
    as_json: Json = False,
) -> None:
    """Run any procedure (investigate, communicate, resolve_config, rollback, postmortem...) inside an incident."""
    project = Project.locate()
    project.playbook(playbook)  # unknown playbook: bad input before anything is written
    extravars = _parse_extra(extra or [])
    inv = flow.prepare(project, inventory)
    root = incidents_root(incidents_dir)
    inc = Incident.open(root, incident) if incident else Incident.create(root, inventory=str(inv), check=check)
    ctx = _context(project, inv, yes, as_json, extravars)
    with inc.locked():
        steps = flow.destructive_steps(ctx, playbook)
        confirmed = flow.confirm_steps(ctx, inc, steps, check)
        res = flow.run_procedure(ctx, inc, playbook, check=check, confirmed=confirmed)
    doc = {"incident": inc.id, "record": str(inc.path), "run": res.name, "status": res.status, "data": res.data}
    if as_json:
        _emit(doc, True)
    else:
        out.print(f"{playbook}: {res.status} (incident {inc.id}, record {inc.path})", highlight=False)
    if not res.ok:
        raise typer.Exit(PROCEDURE_FAILED)


def _parse_extra(items: list[str]) -> dict:
    from .errors import BadInput

    extravars = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"extra var {item!r} is not key=value")
        try:
            extravars[key.strip()] = json.loads(value)
        except ValueError:
            extravars[key.strip()] = value
    return extravars


# -- the record ----------------------------------------------------------------------------
def _duration(d: dict) -> str:
    end = d.get("resolved_at") or d.get("closed_at") or now()
    minutes = (end - d["opened_at"]) / 60
    return f"{minutes:.1f} min"


@app.command()
@expected_errors
def incidents(incidents_dir: IncidentsDir = None, as_json: Json = False) -> None:
    """List incidents: id, severity, status, opened, duration."""
    items = Incident.all(incidents_root(incidents_dir))
    rows = [
        {
            "id": i.id,
            "severity": i.data.get("severity"),
            "status": i.data.get("status"),
            "opened": iso(i.data.get("opened_at")),
            "duration": _duration(i.data),
        }
        for i in items
    ]
    if as_json:
        _emit({"incidents": rows}, True)
        return
    # ids and times are copied into other commands: never cut, whatever the width
    table = Table(
        Column("id", no_wrap=True),
        "severity",
        "status",
        Column("opened", no_wrap=True),
        "duration",
    )
    for r in rows:
        table.add_row(r["id"], r["severity"] or "-", r["status"], r["opened"], r["duration"])
    out.print(table)


@app.command()
@expected_errors
def show(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    incidents_dir: IncidentsDir = None,
    as_json: Json = False,
) -> None:
    """Summary, response times against the severity's target, and the timeline of one incident."""
    inc = Incident.open(incidents_root(incidents_dir), incident_id)
    d = inc.data
    times = flow.response_times(d)
    if as_json:
        _emit({"incident": d, "response_times": times, "timeline": inc.timeline()}, True)
        return
    out.rule(f"incident {inc.id}")
    out.print(f"severity {d.get('severity') or '-'} ({d.get('severity_source') or '-'}), status {d['status']}")
    for r in d.get("reasons", []):
        out.print(f"  - {r}", highlight=False)
    out.print(f"opened {iso(d['opened_at'])} by {d['operator']}, inventory {d['inventory']}", highlight=False)
    target = times["response_target_minutes"]
    for key in ("first_action", "mitigation"):
        t = times[f"time_to_{key}_minutes"]
        verdict = times[f"{key}_within_target"]
        mark = "" if verdict is None else (" [green]within target[/green]" if verdict else " [red]over target[/red]")
        out.print(
            f"time to {key.replace('_', ' ')}: {'-' if t is None else f'{t} min'}"
            + (f" (target {target} min){mark}" if target else "")
        )
    _print_timeline(inc.timeline(), compact=True)
    page = inc.path / reports.REPORT_NAME
    out.print(f"report: {page}" + ("" if page.exists() else f" (incidentctl report {inc.id})"), highlight=False)


def _print_timeline(entries: list[dict], compact: bool) -> None:
    table = Table("time", "source", "what", "host", "result")
    for e in entries:
        t = iso(e["ts"])[11:19]
        if e.get("source") == "controller":
            table.add_row(t, "controller", f"[bold]{e['kind']}[/bold]: {e['message']}", "", "")
        else:
            if compact and e.get("outcome") == "skipped":
                continue
            result = "changed" if e.get("changed") and not e.get("failed") else e.get("outcome", "")
            table.add_row(t, e.get("run", ""), e.get("task", ""), e.get("host", ""), result)
    out.print(table)


@app.command()
@expected_errors
def timeline(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    incidents_dir: IncidentsDir = None,
    as_json: Json = False,
) -> None:
    """Every timeline entry of an incident: the controller's steps and every task that ran."""
    inc = Incident.open(incidents_root(incidents_dir), incident_id)
    if as_json:
        _emit({"incident": inc.id, "timeline": inc.timeline()}, True)
        return
    _print_timeline(inc.timeline(), compact=False)


@app.command()
@expected_errors
def postmortem(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    inventory: Inventory = None,
    incidents_dir: IncidentsDir = None,
) -> None:
    """(Re)render the postmortem draft of an incident from its record and print it."""
    project = Project.locate()
    inc = Incident.open(incidents_root(incidents_dir), incident_id)
    inv = flow.prepare(project, inventory or inc.data.get("inventory"))
    ctx = _context(project, inv, False, False)
    with inc.locked():
        path = flow.render_postmortem(ctx, inc)
    if path is None:
        raise typer.Exit(PROCEDURE_FAILED)
    out.print(path.read_text(), highlight=False, markup=False)


@app.command()
@expected_errors
def close(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    note: Annotated[str, typer.Option("--note", help="Why it is closed (goes into the timeline).")] = "",
    incidents_dir: IncidentsDir = None,
) -> None:
    """Close an incident: it is resolved and its record is final."""
    inc = Incident.open(incidents_root(incidents_dir), incident_id)
    with inc.locked():
        if inc.data["status"] == "closed":
            out.print(f"incident {inc.id} is already closed")
            return
        t = now()
        inc.update(status="closed", closed_at=t, resolved_at=inc.data.get("resolved_at") or t)
        inc.log("closed", note or "closed by the operator")
    out.print(f"incident {inc.id} closed")


@app.command()
@expected_errors
def report(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the page there (default: report.html in the record).")
    ] = None,
    open_page: Annotated[
        bool, typer.Option("--open", help="Open it in a browser where there is one; else print its file:// URL.")
    ] = False,
    incidents_dir: IncidentsDir = None,
) -> None:
    """Write the incident's report: one self-contained page (metrics with every alert and change, topology
    before and after, safety gates, rollback data, timeline, evidence, postmortem) that needs no network."""
    inc = Incident.open(incidents_root(incidents_dir), incident_id)
    path = reports.write(inc, output)
    out.print(f"report: {path}", highlight=False)
    if open_page and not reports.open_in_browser(path):
        out.print(f"no browser here: open {path.as_uri()}", highlight=False)


def main() -> None:
    app()
