"""The incidentctl command line."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

# alerts, report and watch are imported by the commands that use them: respond and triage start faster.
from . import autoexec, flow
from . import executor as executors
from . import follow as following
from .errors import (
    ENVIRONMENT,
    MITIGATED_WITH_GAPS,
    OK,
    PROCEDURE_FAILED,
    REFUSED,
    BadInput,
    ControllerError,
    Refused,
)
from .progress import ConsoleProgress
from .project import Project
from .record import (
    ENV_INCIDENTS_DIR,
    ID_HELP,
    Incident,
    PlatformLock,
    check_id,
    ensure_writable,
    incidents_root,
    iso,
    now,
)

app = typer.Typer(
    help="Incident response for the multi-region platform: triage, severity procedures run through Ansible, "
    "and an incident record (timeline, artifacts, postmortem). Exit codes: 0 ok, 1 procedure failed or platform "
    "still unhealthy, 2 bad input, 3 refused (confirmation or lock), 4 environment (missing tool), 5 mitigated "
    "with gaps a person must close (listed in the summary).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # paragraphs of the docstrings are reflowed, not cut where the source wraps
)
PLUGINS = "incidentctl.commands"  # entry points: more command groups (the lab's distribution adds `lab`)
LAB_MISSING = (
    "the lab is not installed here (it is a separate distribution, never needed in production): "
    "pip install incident-response-lab, or ./scripts/bootstrap in a checkout"
)


def _add_plugins(argv: list[str]) -> None:
    """Command groups from other distributions; `incidentctl lab` says how to get the lab when it is absent.

    Not for a core command (respond, triage, ...): importing the lab costs ~0.1 s of every response's start."""
    first = next((a for a in argv if not a.startswith("-")), None)
    core = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands if c.callback}
    core |= {g.name for g in app.registered_groups}
    if first in core:
        return
    import importlib.metadata  # ~20 ms: not on a core command's way

    found = {ep.name: ep for ep in importlib.metadata.entry_points(group=PLUGINS)}
    for name, ep in sorted(found.items()):
        app.add_typer(ep.load(), name=name)
    if "lab" not in found:

        @app.command(
            "lab",
            help="The local lab (not installed here).",
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
            add_help_option=False,
        )
        def lab_missing(ctx: typer.Context) -> None:
            err.print(f"[red]error:[/red] {LAB_MISSING}", highlight=False, soft_wrap=True)
            raise typer.Exit(ENVIRONMENT)


executor_app = typer.Typer(help="Execution nodes: machines that run the playbooks close to a region, over SSH.")
app.add_typer(executor_app, name="executor")


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
ExecutorUrl = Annotated[
    str | None,
    typer.Option(
        "--executor",
        help="Where the playbooks run: local, or an execution node ssh://[user@]host[:port][/bin dir of its Python]. "
        "Default: the inventory's incident_executors entry for --region, else local.",
    ),
]
Region = Annotated[
    str | None,
    typer.Option(
        "--region", help="Run on this region's execution node (incident_executors; default: the primary region)."
    ),
]


def expected_errors(fn):
    """Expected failures: one line on stderr and the documented exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ControllerError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted: the record keeps everything up to this point")
            raise typer.Exit(130) from None

    return wrapper


def _context(
    project: Project,
    inventory: Path,
    yes: bool,
    as_json: bool,
    extravars: dict | None = None,
    executor: executors.Executor | None = None,
):
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
        executor=executor or executors.Executor(),
    )


def _executor(project: Project, platform: flow.Platform, url: str | None, region: str | None):
    """The executor of this command, checked (reachable, able to run playbooks) before anything is opened."""
    chosen = executors.for_platform(platform.hostvars, url, region)
    chosen.ensure_ready(project.root)
    if chosen.remote:
        err.print(f"playbooks run on execution node {chosen.url}", highlight=False)
    return chosen


def _emit(doc: dict, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


# -- triage ------------------------------------------------------------------------------
@app.command()
@expected_errors
def triage(
    inventory: Inventory = None, executor: ExecutorUrl = None, region: Region = None, as_json: Json = False
) -> None:
    """Assess the platform (alerts, health, databases, cluster) and say which severity the policy gives.

    Changes nothing on the platform. The triage run's artifacts are kept only inside incidents
    (`incidentctl respond`); here they go to a temporary directory.
    """
    project = Project.locate()
    platform = flow.prepare(project, inventory)
    node = _executor(project, platform, executor, region)
    scratch = Path(tempfile.mkdtemp(prefix="incidentctl-triage-"))
    try:
        inc = Incident.create(scratch, inventory=str(platform.inventory))
        data = flow.triage(_context(project, platform.inventory, False, as_json, executor=node), inc)
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
IncidentId = Annotated[
    str | None,
    typer.Option(
        "--incident",
        help=f"Continue this incident ({ID_HELP}): a fresh triage, the same record. "
        "Its inventory is the default for -i.",
    ),
]
New = Annotated[
    bool,
    typer.Option("--new", help="Open a new incident even when one is open on this inventory (default: join it)."),
]
FromAlert = Annotated[
    str | None,
    typer.Option(
        "--from-alert",
        help="An alert started this response: a file with the rulebook's event(s) (- for stdin). The alert joins "
        "the incident of its problem (then nothing else runs) or opens one, and the inventory's auto_execution "
        "policy, not a person, confirms the destructive steps; otherwise the incident waits, the on-call is paged "
        "with the plan, and `respond --incident ID --yes` continues it. `incidentctl watch` uses this.",
    ),
]


def _existing(root: Path, incident: str | None, new: bool) -> Incident | None:
    if incident is None:
        return None
    if new:
        raise BadInput("--incident and --new exclude each other: continue an incident, or open a new one")
    inc = Incident.open(root, check_id(incident))
    inc.mark_if_interrupted()
    if inc.data["status"] == "closed":
        raise BadInput(f"incident {inc.id} is closed; open a new one (without --incident)")
    return inc


def _platform(project: Project, inventory: str | None, existing: Incident | None) -> flow.Platform:
    """The platform to work on; continuing an incident, its own inventory (another one is bad input)."""
    platform = flow.prepare(project, inventory if inventory is not None else (existing and existing.data["inventory"]))
    if existing and inventory is not None and platform.inventory != project.inventory(existing.data["inventory"]):
        raise BadInput(
            f"incident {existing.id} is on inventory {existing.data['inventory']}, not {platform.inventory}: "
            "leave -i out to continue it"
        )
    return platform


def _join_or_open(root: Path, existing: Incident | None, platform: flow.Platform, new: bool, check: bool):
    """The incident to work in: the one asked for, else the one open on this inventory, else a new one."""
    inventory = str(platform.inventory)
    if existing:
        return existing, "resumed"
    joined = None if (new or check) else Incident.open_for(root, inventory)
    if joined:
        joined.mark_if_interrupted()
        return joined, "joined"
    return Incident.create(root, inventory=inventory, check=check), "opened"


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
    incident: IncidentId = None,
    new: New = False,
    executor: ExecutorUrl = None,
    region: Region = None,
    from_alert: FromAlert = None,
    spare: Annotated[bool, typer.Option("--spare", hidden=True)] = False,
    incidents_dir: IncidentsDir = None,
    as_json: Json = False,
) -> None:
    """Open an incident (or join the one open on this inventory), triage, run the severity procedure, verify,
    collect evidence, write the postmortem draft.

    Destructive steps (failover, promotion, restarts, scaling, config changes) are shown first and run only
    after confirmation: interactively, or with --yes. Without a terminal and without --yes they are refused
    (exit 3) and the incident waits for a person, rather than for an answer nobody can give.

    One procedure runs per platform at a time: a second `respond` on the same inventory joins the open incident
    and is refused (exit 3) while another controller works on it. An incident whose controller was killed is
    marked interrupted; `respond --incident ID` (or a plain `respond`) continues it with a fresh triage, and the
    procedures are safe to run again.

    After the procedure, the runbook's investigation (logs of every service, the last hour of metrics, network
    checks) is kept in the record; it only reads.
    """
    from . import alerts as alert_routing

    # Everything the operator typed is checked before anything is opened, sent or changed.
    severity = flow.check_severity(severity)
    project = Project.locate()
    root = incidents_root(incidents_dir)
    alert_batch = alert_routing.load(from_alert) if from_alert is not None else None
    existing = _existing(root, incident, new)
    platform = _platform(project, inventory, existing)
    services = flow.check_services(platform, service)
    ensure_writable(root)
    node = _executor(project, platform, executor, region)
    extravars = {"affected_services": services} if services else {}
    ctx = _context(project, platform.inventory, yes, as_json, extravars, executor=node)
    if spare:  # started ahead by `incidentctl watch`: all of the above is done before the alert comes
        existing, alert_batch = _spare_start(root, platform)
    if alert_batch is not None:
        existing = _alert_start(ctx, root, platform, alert_batch, existing, check, yes)
        if existing is None:
            return
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        lock = None
        if not check:  # a check run changes nothing: it needs no platform lock
            lock = PlatformLock(root, str(platform.inventory))
            try:
                stack.enter_context(lock.held("respond", existing.id if existing else None))
            except Refused as exc:
                if ctx.auto is not None and existing is not None:  # the alert stays recorded, with the reason
                    ctx.auto.blocked_start(existing, str(exc))
                raise
        inc, how = _join_or_open(root, existing, platform, new, check)
        if ctx.auto is not None and not inc.data.get("runs"):
            how = "opened"  # by the alert (alerts.route): this is the incident's first response
        if lock:
            lock.set_incident(inc.id)
        err.print(f"[bold]incident {inc.id}[/bold] {how}: {inc.path}", highlight=False)
        work = stack.enter_context(inc.working("respond"))
        if how != "opened":
            inc.log(how, f"incident {how} by {inc.data['run']['command']} (pid {os.getpid()}): fresh triage")
        res = _respond(ctx, inc, severity, services, check, work)
        if as_json:  # one document with everything, evidence included
            code = _summary(inc, res, started, True, _evidence(ctx, inc) if res else None)
        else:
            # The mitigation is what counts: its summary comes first, the evidence after it.
            code = _summary(inc, res, started, False, pending=res is not None)
            if res is not None:
                _print_evidence(inc, _evidence(ctx, inc))
    if code != OK:
        raise typer.Exit(code)


def _respond(ctx: flow.Context, inc: Incident, severity: str, services: list[str], check: bool, work: dict):
    if flow.one_run(ctx, check):  # confirmed up front, or by the policy in the run: one Ansible run
        with _waits(inc, work):
            sev, res = flow.triage_and_procedure(
                ctx, inc, severity, services, lambda sev, playbook, steps: _print_plan(inc, sev, playbook, steps, check)
            )
        if sev is None:
            _nothing_to_do(inc, check)
        elif ctx.auto is not None:
            ctx.auto.finished(inc, res.changes)
        return res
    data = flow.triage(ctx, inc)
    sev = flow.decide(inc, data, severity, services)
    if sev is None:
        _nothing_to_do(inc, check)
        return None
    playbook = flow.PROCEDURES[sev]
    steps = flow.destructive_steps(ctx, playbook)
    _print_plan(inc, sev, playbook, steps, check)
    with _waits(inc, work, steps, ControllerError):
        if ctx.auto is not None:  # an alert started it: the auto-execution policy confirms, or it waits
            ctx.auto.confirm(ctx, inc, steps, check)
        confirmed = flow.confirm_steps(ctx, inc, steps, check)
    res = flow.run_procedure(ctx, inc, playbook, check=check, confirmed=confirmed)
    if ctx.auto is not None:
        ctx.auto.finished(inc, res.changes)
    return res


@contextlib.contextmanager
def _waits(inc: Incident, work: dict, steps: list[str] | None = None, stops=Refused):
    """A refusal to confirm (nobody to ask, declined, the policy) leaves the incident waiting, saying for what;
    ``stops``: the errors that count as that refusal (before a procedure starts, every one does)."""
    try:
        yield
    except stops as exc:
        work["state"] = "waiting"
        count = f"{len(steps)} " if steps is not None else ""
        waiting = getattr(exc, "waiting_for", None) or (
            f"confirmation of {count}destructive step(s): incidentctl respond --incident {inc.id} --yes"
        )
        inc.update(waiting_for=waiting)
        raise


def _nothing_to_do(inc: Incident, check: bool) -> None:
    """Triage found nothing to do: the work before an interruption holds, or there was no incident."""
    if inc.data.get("severity") and inc.data["status"] == "open" and not check:
        inc.update(status="mitigated", mitigated_at=now())
        inc.log("mitigated", "triage finds nothing left to do: the work before the interruption holds")
    elif not inc.data.get("severity"):
        inc.update(status="closed", closed_at=now(), resolution="triage found no incident")
        inc.log("closed", "no incident: nothing to do")


def _spare_start(root: Path, platform: flow.Platform):
    """A spare responder waits for one line on stdin from the watcher: the incident it opened and its alert."""
    from . import alerts as alert_routing

    line = sys.stdin.readline()
    if not line.strip():
        raise typer.Exit(0)  # the watcher stopped: nothing to do
    try:
        start = json.loads(line)
        incident, alert_file = start["incident"], start["alert_file"]
    except (ValueError, KeyError, TypeError):
        raise BadInput(f"a spare responder expects {{incident, alert_file}} on stdin, not {line[:80]!r}") from None
    existing = _existing(root, incident, False)
    if existing.data["inventory"] != str(platform.inventory):
        raise BadInput(f"incident {incident} is on inventory {existing.data['inventory']}, not {platform.inventory}")
    return existing, alert_routing.load(alert_file)


def _alert_start(ctx, root: Path, platform: flow.Platform, batch, existing, check: bool, yes: bool):
    """respond --from-alert: the alerts go to the incident of their problem; the incident to respond in, or None
    when they all joined an incident (or were ignored) and nothing else is to run."""
    from . import alerts as alert_routing

    policy = autoexec.Policy.from_vars(platform.hostvars.get("auto_execution"))
    ctx.auto = autoexec.AutoStart(
        root,
        str(platform.inventory),
        policy,
        page=autoexec.pager(ctx),
        evidence=lambda inc: flow.collect_evidence(ctx, inc),
    )
    ctx.confirm = None  # nobody is asked: the policy decides (or --yes, a person's)
    if yes:
        ctx.auto = None
    inventory = str(platform.inventory)
    if existing is not None:  # the watcher routed the alert and opened this incident
        for alert in batch:
            alert_routing.attach(existing, alert)
        return existing
    opened = None
    for alert in batch:
        routed = alert_routing.route(root, inventory, alert, check=check, settle_seconds=policy.settle_seconds)
        where = routed.incident.id if routed.incident else "no incident"
        err.print(f"{alert.describe()}: {routed.outcome} ({where}: {routed.why})", highlight=False)
        if routed.outcome == "opened" and opened is None:
            opened = routed.incident
    pause = autoexec.paused(root)
    if opened is not None and pause is not None:
        why = autoexec.describe_pause(pause)
        opened.log("auto-execution refused", f"nothing runs: {why}")
        opened.update(waiting_for=f"{why}: incidentctl respond --incident {opened.id}")
        raise Refused(f"{why}: incident {opened.id} is recorded, nothing runs (incidentctl watch resume)")
    return opened


def _evidence(ctx: flow.Context, inc: Incident) -> Path | None:
    """The runbook's investigation, the postmortem draft and the report, after the mitigation."""
    from . import report as reports

    evidence = flow.collect_evidence(ctx, inc)
    pm = flow.render_postmortem(ctx, inc)
    if pm:
        inc.log("postmortem rendered", f"postmortem draft: {pm}")
    inc.log("report written", f"report: {reports.write(inc)}")
    return evidence


def _print_evidence(inc: Incident, evidence: Path | None) -> None:
    from . import report as reports

    if evidence:
        out.print(f"evidence (logs, metrics, network): {evidence}", highlight=False)
    for label, name in (("postmortem draft", "postmortem.md"), ("report", reports.REPORT_NAME)):
        if (inc.path / name).exists():
            out.print(f"{label}: {inc.path / name}", highlight=False)


def _print_plan(inc: Incident, severity: str, playbook: str, steps: list[str], check: bool) -> None:
    d = inc.data
    err.print(f"[bold]severity {d['severity']}[/bold] ({d['severity_source']}): " + "; ".join(d["reasons"]))
    if severity != d["severity"]:
        err.print(f"the procedure for what triage finds now: {severity}")
    err.print(f"procedure: {playbook}" + (" in check mode" if check else ""))
    if steps:
        err.print("destructive steps:")
        for s in steps:
            err.print(f"  - {s}", highlight=False)
    else:
        err.print("no destructive steps")


def _summary(
    inc: Incident, res, started: float, as_json: bool, evidence: Path | None = None, pending: bool = False
) -> int:
    doc, code = _summary_doc(inc, res, time.monotonic() - started, evidence)
    if as_json:
        _emit(doc, True)
        return code
    _print_summary(inc, doc, code, evidence, pending)
    return code


def _summary_doc(inc: Incident, res, duration: float, evidence: Path | None = None) -> tuple[dict, int]:
    """The summary of an incident and its procedure, and the exit code it makes. ``res`` is the run in
    hand (a runner.RunResult) or one read back from the record (follow.RecordedRun): name, status, ok,
    changes, failures."""
    from . import report as reports

    outcome = following.outcome_of(inc, res)
    gaps = [str(g) for g in outcome.get("gaps") or []]
    doc = {
        "incident": inc.id,
        "record": str(inc.path),
        "severity": inc.data["severity"],
        "reasons": inc.data["reasons"],
        "status": inc.data["status"],
        "check_mode": inc.data["check_mode"],
        "duration_seconds": round(duration, 1),
        "procedure": None if res is None else {"run": res.name, "status": res.status, "ok": res.ok},
        "actions": [f"{c['task']} [{c['host']}]: {c['summary']}" for c in (res.changes if res else [])],
        "failures": [f"{f['task']} [{f['host']}]: {f['summary']}" for f in (res.failures if res else [])],
        "healthy": outcome.get("healthy", []),
        "unhealthy": outcome.get("unhealthy", []),
        "gaps": gaps,
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
    elif res is not None and gaps and not inc.data["check_mode"]:
        code = MITIGATED_WITH_GAPS
    doc["outcome"] = {OK: "done", PROCEDURE_FAILED: "failed", MITIGATED_WITH_GAPS: "mitigated with gaps"}[code]
    return doc, code


def _print_summary(inc: Incident, doc: dict, code: int, evidence: Path | None, pending: bool = False) -> None:
    out.rule(f"incident {inc.id}")
    out.print(
        f"severity: {doc['severity'] or 'no incident'}   status: {doc['status']}"
        + ("   [yellow]mitigated with gaps[/yellow]" if code == MITIGATED_WITH_GAPS else "")
        + f"   took {doc['duration_seconds']}s"
    )
    for title, key, style in (
        ("done", "actions", ""),
        ("failed", "failures", "red"),
        ("healthy now", "healthy", "green"),
        ("still unhealthy", "unhealthy", "red"),
        ("gaps (not done; close them)", "gaps", "yellow"),
        ("needs a human", "needs_human", "yellow"),
    ):
        if doc[key]:
            out.print(f"[bold]{title}:[/bold]")
            for item in doc[key]:
                # data, not markup: "[controller]" in "task [host]: msg" is a host, not a style
                out.print(f"  - {item}", style=style, highlight=False, markup=False)
    out.print(f"record: {doc['record']}", highlight=False)
    if pending:
        out.print("collecting the evidence (logs, metrics, network), the postmortem draft and the report now...")
    else:
        _print_evidence(inc, evidence)


# -- watch -----------------------------------------------------------------------------------
watch_app = typer.Typer(rich_markup_mode="markdown")  # its help is the callback's docstring
app.add_typer(watch_app, name="watch")


@watch_app.callback(invoke_without_command=True)
@expected_errors
def watch(
    ctx: typer.Context,
    inventory: Inventory = None,
    host: Annotated[str, typer.Option("--host", help="Address the webhook listens on (0.0.0.0: every one).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="Port of the webhook Alertmanager posts to.")] = 5050,
    path: Annotated[str, typer.Option("--path", help="URL path of the webhook.")] = "/alerts",
    token: Annotated[
        str,
        typer.Option(
            "--token",
            envvar="INCIDENTCTL_WATCH_TOKEN",
            help="Bearer token Alertmanager must send (http_config.authorization); never printed.",
            show_default=False,
        ),
    ] = "",
    check: Annotated[
        bool, typer.Option("--check", help="Plans only: every response an alert starts is a check run.")
    ] = (False),
    incidents_dir: IncidentsDir = None,
) -> None:
    """Run the collection's rulebook (incident.response.alertmanager) under ansible-rulebook, and respond to the
    alerts it hands over, until Ctrl-C or SIGTERM.

    Each alert is shown as it arrives with what it did: it joins the incident of its problem (a timeline line per
    alert firing or resolved; re-sends add nothing), or opens a new incident and starts `incidentctl respond
    --from-alert` for it. Whether the procedure's destructive steps run without a person is the inventory's
    `auto_execution` policy (with a block period after an automatic failover and a bound per hour); otherwise
    the incident waits, the on-call is paged with the plan, and `incidentctl respond --incident ID --yes` runs it.
    One response runs at a time. `incidentctl watch pause` stops automatic starts at once (alerts are still
    recorded) until `incidentctl watch resume`.
    """
    from . import watch as watching

    if ctx.invoked_subcommand is not None:
        return
    project = Project.locate()
    platform = flow.prepare(project, inventory)
    root = incidents_root(incidents_dir)
    ensure_writable(root)
    if not path.startswith("/"):
        raise BadInput(f"--path {path!r} must start with /")
    names = platform.hostvars.get("incident_alerts")
    settings = watching.Settings(
        inventory=platform.inventory,
        root=root,
        host=host,
        port=port,
        path=path,
        token=token,
        check=check,
        alertnames=[str(n) for n in names] if isinstance(names, list) and names else list(watching.DEFAULT_ALERTNAMES),
        policy=autoexec.Policy.from_vars(platform.hostvars.get("auto_execution")),
    )

    def say(line: str) -> None:
        out.print(f"{time.strftime('%H:%M:%S')} {line}", highlight=False, markup=False)

    watching.run(project, settings, say)


@watch_app.command("pause")
@expected_errors
def watch_pause(
    note: Annotated[str, typer.Option("--note", help="Why (shown with every alert that starts nothing).")] = "",
    incidents_dir: IncidentsDir = None,
) -> None:
    """Pause automatic responses at once: alerts are still recorded in their incidents, nothing starts."""
    from . import watch as watching

    root = incidents_root(incidents_dir)
    ensure_writable(root)
    doc = autoexec.pause(root, by=f"{watching._user()}", note=note)
    out.print(autoexec.describe_pause(doc) + f" ({autoexec.pause_path(root)}); `incidentctl watch resume` ends it")


@watch_app.command("resume")
@expected_errors
def watch_resume(incidents_dir: IncidentsDir = None) -> None:
    """Let alerts start responses again."""
    root = incidents_root(incidents_dir)
    out.print("automatic responses resumed" if autoexec.resume(root) else "automatic responses were not paused")


# -- run -------------------------------------------------------------------------------------
@app.command()
@expected_errors
def run(
    playbook: Annotated[str, typer.Argument(help="Playbook name under playbooks/, e.g. investigate, communicate.")],
    inventory: Inventory = None,
    incident: Annotated[
        str | None,
        typer.Option("--incident", help="Incident id (default: the incident open on this inventory, else a new one)."),
    ] = None,
    new: New = False,
    extra: Annotated[
        list[str] | None, typer.Option("-e", "--extra-var", help="key=value passed to the playbook (repeatable).")
    ] = None,
    check: Check = False,
    yes: Yes = False,
    executor: ExecutorUrl = None,
    region: Region = None,
    incidents_dir: IncidentsDir = None,
    as_json: Json = False,
) -> None:
    """Run any procedure (investigate, communicate, resolve_config, rollback, postmortem...) inside an incident.

    A playbook with destructive steps takes the platform and the incident for itself (exit 3 while another
    controller works on them); a read-only one (investigate, communicate, postmortem) runs beside a running
    response and writes into the same record.
    """
    project = Project.locate()
    project.playbook(playbook)  # unknown playbook: bad input before anything is written
    extravars = flow.check_extravars(_parse_extra(extra or []))
    root = incidents_root(incidents_dir)
    existing = _existing(root, incident, new)
    platform = _platform(project, inventory, existing)
    ensure_writable(root)
    node = _executor(project, platform, executor, region)
    ctx = _context(project, platform.inventory, yes, as_json, extravars, executor=node)
    steps = flow.destructive_steps(ctx, playbook)
    changing = bool(steps) and not check
    with contextlib.ExitStack() as stack:
        lock = None
        if changing:
            lock = PlatformLock(root, str(platform.inventory))
            stack.enter_context(lock.held(f"run {playbook}", existing.id if existing else None))
        inc, how = _join_or_open(root, existing, platform, new, check)
        if lock:
            lock.set_incident(inc.id)
        if changing:
            stack.enter_context(inc.working(f"run {playbook}"))
        if how != "opened":
            err.print(f"incident {inc.id} {how}: {inc.path}", highlight=False)
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
    extravars = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"extra var {item[:60]!r} is not key=value")
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


def _activity(d: dict) -> str:
    """What the controller is doing with an incident, in a few words."""
    run = d.get("run") or {}
    state = run.get("state")
    if state == "running":
        return f"running: {run.get('command')} pid {run.get('pid')}@{run.get('host')} since {iso(run.get('since'))}"
    if state == "interrupted":
        return f"interrupted {iso(run.get('ended_at'))}: continue with `incidentctl respond --incident {d['id']}`"
    if state == "waiting":
        return f"waits for a person: {d.get('waiting_for') or 'confirmation'}"
    return ""


@app.command()
@expected_errors
def incidents(incidents_dir: IncidentsDir = None, as_json: Json = False) -> None:
    """List incidents: id, severity, status, opened, duration, and which are running, interrupted or waiting."""
    items = Incident.all(incidents_root(incidents_dir))
    for i in items:
        i.mark_if_interrupted()
    rows = [
        {
            "id": i.id,
            "severity": i.data.get("severity"),
            "status": i.data.get("status"),
            "opened": iso(i.data.get("opened_at")),
            "duration": _duration(i.data),
            "run": i.data.get("run"),
            "activity": _activity(i.data),
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
        "now",
    )
    for r in rows:
        table.add_row(r["id"], r["severity"] or "-", r["status"], r["opened"], r["duration"], r["activity"])
    out.print(table)


@app.command()
@expected_errors
def show(
    incident_id: Annotated[str, typer.Argument(help="Incident id.")],
    incidents_dir: IncidentsDir = None,
    as_json: Json = False,
) -> None:
    """Summary, response times against the severity's target, and the timeline of one incident."""
    from . import report as reports

    inc = Incident.open(incidents_root(incidents_dir), incident_id)
    inc.mark_if_interrupted()
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
    if _activity(d):
        out.print(f"now: {_activity(d)}", highlight=False)
    for gap in d.get("gaps") or []:
        out.print(f"  gap: {gap}", style="yellow", highlight=False)
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
def follow(
    incident_id: Annotated[
        str | None,
        typer.Argument(help="Incident id (default: the newest incident running now, else the newest open one)."),
    ] = None,
    incidents_dir: IncidentsDir = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help='JSON lines on stdout: every timeline entry as it is, then {"summary": ...}.'),
    ] = False,
) -> None:
    """Watch an incident as it is worked on: what happened so far, then every timeline entry and the running
    task (with its elapsed time) as they happen, then the summary respond prints, when the run ends.

    Without an ID: the newest incident running now, else the newest open one. Whatever writes the record
    can be followed (`respond`, `run`, a watcher), by any number of followers at once. A follower only
    reads the record (no lock, no write), so it never holds a run up; Ctrl-C stops the follower (exit
    130), not the run.

    Exit codes are those of the run followed: 0 done, 1 failed, 3 it waits for a person to confirm its
    destructive steps, 5 mitigated with gaps, 6 interrupted (its process died before it finished:
    `incidentctl respond --incident ID` continues it); 2 when there is no such incident, or none
    running or open.
    """
    inc = following.pick(incidents_root(incidents_dir), incident_id)
    try:
        if not as_json:
            now_doing = _activity(inc.data) or f"status {inc.data['status']}, nothing running"
            out.print(f"[bold]following incident {inc.id}[/bold]: {escape(now_doing)}", highlight=False)
        ending = following.Follower(inc, out, as_json).follow()
        code = _follow_summary(inc.refresh(), ending, as_json)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None  # the follower stops; the run it watched goes on, unaware
    except BrokenPipeError:  # `follow --json | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(OK) from None
    if code != OK:
        raise typer.Exit(code)


def _follow_summary(inc: Incident, ending: following.Ending, as_json: bool) -> int:
    doc, code = _summary_doc(inc, ending.procedure, ending.duration, ending.evidence)
    note = ""
    if ending.interrupted:
        code, doc["outcome"] = following.RUN_INTERRUPTED, "interrupted"
        note = f"[bold red]interrupted:[/bold red] {escape(following.interrupted_line(inc, ending))}"
    elif ending.state == "waiting":
        code, doc["outcome"] = REFUSED, "waiting for a person"
        note = f"[yellow]waits for a person:[/yellow] {escape(inc.data.get('waiting_for') or 'confirmation')}"
    elif ending.triage_failed and ending.procedure is None:
        code, doc["outcome"] = PROCEDURE_FAILED, "failed"
        note = "[red]triage failed[/red]: see the timeline above"
    doc["run"] = {**ending.run, "process_gone": ending.gone}
    if as_json:
        sys.stdout.write(json.dumps({"summary": doc}, default=str) + "\n")
        return code
    _print_summary(inc, doc, code, ending.evidence)
    if note:
        out.print(note, highlight=False)
    return code


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
    platform = flow.prepare(project, inventory or inc.data.get("inventory"))
    ctx = _context(project, platform.inventory, False, False)
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
    with inc.working("close"):
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
    from . import report as reports

    inc = Incident.open(incidents_root(incidents_dir), incident_id)
    path = reports.write(inc, output)
    out.print(f"report: {path}", highlight=False)
    if open_page and not reports.open_in_browser(path):
        out.print(f"no browser here: open {path.as_uri()}", highlight=False)


# -- execution nodes ---------------------------------------------------------------------------------
@executor_app.command("check")
@expected_errors
def executor_check(
    node: Annotated[str, typer.Argument(help="ssh://[user@]host[:port][/bin dir of its Python], or user@host.")],
    as_json: Json = False,
) -> None:
    """Say what an execution node has and lacks: SSH trust, Python, ansible-runner, ansible-core and the
    collection's Python requirements. Exit 0 when it can run playbooks, 4 when it cannot."""
    url = node if "://" in node or node == "local" else f"ssh://{node}"
    chosen = executors.parse(url)
    if not chosen.remote:
        raise BadInput("local needs no check: give an execution node, ssh://[user@]host")
    project = Project.locate()
    facts = chosen.inspect(project.root)
    missing = chosen.problems(facts)
    if as_json:
        _emit({"executor": chosen.url, "facts": facts, "missing": missing, "ready": not missing}, True)
    else:
        table = Table("what", "found", title=f"execution node {chosen.url}", title_justify="left")
        table.add_row("SSH", "[green]reachable, this controller's key accepted[/green]")
        table.add_row("python", f"{facts.get('python')} ({facts.get('executable')})")
        table.add_row("ansible-runner command", facts.get("runner") or "[red]missing[/red]")
        for dist, version in facts.get("packages", {}).items():
            table.add_row(dist, version or "[red]missing[/red]")
        table.add_row("mitogen (optional, faster)", "yes" if facts.get("mitogen") else "no")
        table.add_row(f"{executors.NODE_WORKDIR} writable", "yes" if facts.get("workdir_writable") else "[red]no[/red]")
        out.print(table)
        for line in missing:
            out.print(f"  missing: {line}", style="red", highlight=False)
        out.print("ready to run playbooks" if not missing else "not ready", highlight=False)
    if missing:
        raise typer.Exit(ENVIRONMENT)


def _terminate(signum, _frame):
    # SIGTERM ends a run like Ctrl-C: the record says it was interrupted, and the playbook's
    # process tree goes with this process (see supervise).
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    _add_plugins(sys.argv[1:])
    code: object = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code
    from .supervise import end_process

    end_process(code)  # the exit handlers and flushes, not the teardown of the heap (45 ms of every command)
