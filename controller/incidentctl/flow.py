"""What the controller does in an incident: triage, decide, plan, confirm, run, verify, write up.

The playbooks do the work and publish their conclusions with ``set_stats``:

* ``triage.yml`` publishes ``triage``: ``findings``, ``classification`` (severity, reasons,
  from the collection's severity policy), ``severity_levels`` (the runbook's table from
  the inventory) and ``services_affected``.
* a procedure publishes ``outcome``: ``verified`` (bool), ``healthy``, ``unhealthy``,
  ``needs_human`` (lists of strings) and ``actions`` (what it did).

Destructive or cross-region tasks carry the tag ``destructive`` and run only when the
variable ``confirm_destructive`` is true; the controller lists them as the plan.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ansible_runner

from . import cache, contracts
from .errors import BadInput, ProcedureFailed, Refused
from .executor import Executor
from .project import Project
from .record import Incident, now
from .runner import RunResult, check_inventory, never_cancel, run_playbook

PROCEDURES = {"P0": "p0_critical", "P1": "p1_high", "P2": "p2_medium", "P3": "p3_low"}
SEVERITIES = ("auto", *PROCEDURES)
# What the timeline calls a run of each playbook; any other playbook is a procedure.
RUN_KINDS = {
    "triage": "triage",
    "investigate": "evidence",
    "postmortem": "postmortem",
    "rollback": "rollback",
    "communicate": "communication",
}
# Variables incidentctl sets itself: an operator's -e may not shadow them.
RESERVED_VARS = ("incident_dir", "incident_id", "confirm_destructive", "affected_services", "incident_gate_file")
VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


def run_kind(playbook: str) -> str:
    return RUN_KINDS.get(Path(playbook).stem, "procedure")


@dataclass(frozen=True)
class Platform:
    """An inventory that parsed, and the variables of its controller host (as written, not templated)."""

    inventory: Path
    hostvars: dict

    @property
    def services(self) -> list[str] | None:
        services = self.hostvars.get("platform_services")
        return [str(s) for s in services] if isinstance(services, list) else None


@dataclass
class Context:
    project: Project
    inventory: Path
    progress: object
    confirm: Callable[[list[str]], bool] | None = None  # asks the operator; None when nobody can answer
    assume_yes: bool = False
    extravars: dict = field(default_factory=dict)
    executor: Executor = field(default_factory=Executor)  # where playbooks run: here, or an execution node
    confirmed_by: str = ""  # who confirmed when not the operator's --yes (the auto-execution policy)
    auto: object | None = None  # autoexec.AutoStart when an alert started the response


def prepare(project: Project, inventory: str | None) -> Platform:
    """Check tools and inventory before anything is written."""
    project.require_tools()
    inv = project.inventory(inventory)
    data = check_inventory(project, inv)
    hosts = (data.get("incident_controller") or {}).get("hosts") or []
    if not hosts:
        raise BadInput(
            f"inventory {inv} has no host in group incident_controller (the machine the procedures run on); "
            "see inventories/example/hosts.yml"
        )
    return Platform(inv, data["_meta"]["hostvars"].get(hosts[0]) or {})


def check_services(platform: Platform, services: list[str] | None) -> list[str]:
    """Services named by the operator must be the platform's: checked before anything is opened or sent."""
    services = [s.strip() for s in services or [] if s.strip()]
    known = platform.services
    unknown = [s for s in services if known is not None and s not in known]
    if unknown:
        raise BadInput(
            f"unknown service(s) {', '.join(repr(s) for s in unknown)} on inventory {platform.inventory}: "
            f"the platform's services are {', '.join(known or [])}"
        )
    return services


def check_extravars(extravars: dict) -> dict:
    for key in extravars:
        if not VAR_NAME.match(key):
            raise BadInput(f"extra var name {key[:60]!r} is not a variable name (letters, digits and _)")
        if key in RESERVED_VARS:
            raise BadInput(f"extra var {key!r} is set by incidentctl itself; use its option instead (see --help)")
    return extravars


def triage(ctx: Context, incident: Incident) -> dict:
    incident.log("triage started", "triage started", kind_of_run="triage")
    res = run_playbook(
        ctx.project,
        incident,
        "triage",
        ctx.inventory,
        progress=ctx.progress,
        extravars=ctx.extravars,
        executor=ctx.executor,
    )
    data = res.data.get("triage")
    if not res.ok or not isinstance(data, dict):
        _triage_failed(incident, res)
    return triage_found(ctx, incident, data, res.name)


def _triage_failed(incident: Incident, res: RunResult):
    why = "; ".join(f"{f['task']}: {f['summary']}" for f in res.failures[:3]) or f"status {res.status}"
    incident.log("triage failed", f"triage failed: {why}")
    raise ProcedureFailed(f"triage failed ({why}); the record is in {incident.path}")


def triage_found(ctx: Context, incident: Incident, data: dict, run_name: str) -> dict:
    """What triage published, checked against the contract the decision reads, in the timeline."""
    # triage.yml owns triage/findings.json; what it published must fit the contract this decision reads
    contracts.check(ctx.project.contracts, "triage", data, f"the triage published by {run_name}")
    cls = data.get("classification") or {}
    incident.log(
        "triage finished",
        f"triage: {cls.get('severity') or 'no incident'}" + (f" ({'; '.join(cls.get('reasons', []))})" if cls else ""),
        severity=cls.get("severity"),
        reasons=cls.get("reasons", []),
    )
    return data


def check_severity(value: str) -> str:
    normal = value.strip()
    normal = normal.upper() if normal.lower() != "auto" else "auto"
    if normal not in SEVERITIES:
        raise BadInput(f"unknown severity {value!r}: use one of {', '.join(SEVERITIES)}")
    return normal


def decide(incident: Incident, triage_data: dict, requested: str, services: list[str] | None = None) -> str | None:
    """The severity of the procedure to run now. An incident keeps the highest severity it had:
    a resumed one whose fresh triage finds less (part of the work was done) is still that incident."""
    requested = check_severity(requested)
    cls = triage_data.get("classification") or {}
    levels = triage_data.get("severity_levels") or {}
    if requested == "auto":
        severity, source, reasons = cls.get("severity"), "policy", cls.get("reasons", [])
    else:
        severity, source = requested, "operator"
        reasons = [f"set by the operator (the policy said {cls.get('severity') or 'no incident'})"]
    recorded = incident.data.get("severity")
    if recorded and (severity is None or recorded < severity):  # "P0" < "P1": P0 is the higher severity
        incident.log(
            "severity decided",
            f"severity stays {recorded}; the procedure now is {severity or 'none'} by {source}",
            severity=severity,
            reasons=reasons,
        )
        return severity
    level = levels.get(severity, {}) if severity else {}
    incident.update(
        severity=severity,
        severity_source=source,
        reasons=reasons,
        response_minutes=level.get("response_minutes"),
        escalation=level.get("escalation"),
        services=services or triage_data.get("services_affected", []),
    )
    incident.log("severity decided", f"severity {severity or 'none'} by {source}", severity=severity, reasons=reasons)
    return severity


def destructive_steps(ctx: Context, playbook: str) -> list[str]:
    """The procedure's tasks tagged ``destructive``, as ansible-playbook --list-tasks shows them.

    Listing costs an Ansible start (1-2 s) on the way to the first change, so the answer is kept in
    a cache keyed by the content of playbooks/ and the Ansible version: the same playbooks give the
    same list, and any edit lists again.
    """
    path = ctx.project.playbook(playbook)
    key = cache.content_key([ctx.project.playbooks], path.name)
    return cache.cached(
        "destructive-steps",
        key,
        lambda: _list_destructive(ctx, path),
        lambda steps: isinstance(steps, list) and all(isinstance(s, str) for s in steps),
    )


def _list_destructive(ctx: Context, path: Path) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="incidentctl-plan-") as pdd:
        runner = ansible_runner.run(
            private_data_dir=pdd,
            project_dir=str(ctx.project.playbooks),
            playbook=path.name,
            inventory=str(ctx.inventory),
            envvars=ctx.project.envvars(),
            cmdline="--list-tasks --tags destructive",
            cancel_callback=never_cancel,
            quiet=True,
        )
        text = runner.stdout.read()
    if runner.rc != 0:
        raise ProcedureFailed(f"cannot list the steps of {path.name}: {text.strip().splitlines()[-1:]}")
    steps = []
    for line in text.splitlines():
        if "TAGS: [" in line and "destructive" in line.split("TAGS: [", 1)[1] and not line.strip().startswith("play #"):
            steps.append(line.split("\tTAGS:")[0].strip())
    return steps


def confirm_steps(ctx: Context, incident: Incident, steps: list[str], check: bool) -> bool:
    """True when destructive steps may run. Check mode needs no confirmation: nothing changes."""
    if not steps:
        return True
    if check:
        incident.log("confirmation not needed", "check mode: destructive steps only report what they would do")
        return True
    if ctx.assume_yes:
        incident.log("confirmation given", ctx.confirmed_by or "destructive steps confirmed with --yes", steps=steps)
        return True
    if ctx.confirm is None:
        incident.log("confirmation refused", "no terminal to confirm destructive steps and no --yes", steps=steps)
        raise Refused(
            f"{len(steps)} destructive step(s) need confirmation and there is no terminal to ask: "
            "re-run with --yes to confirm them"
        )
    if ctx.confirm(steps):
        incident.log("confirmation given", "the operator confirmed the destructive steps", steps=steps)
        return True
    incident.log("confirmation refused", "the operator declined the destructive steps", steps=steps)
    raise Refused("the operator declined the destructive steps; nothing was changed")


def run_procedure(
    ctx: Context, incident: Incident, playbook: str, *, check: bool, confirmed: bool, extravars: dict | None = None
) -> RunResult:
    variables = {**ctx.extravars, **(extravars or {}), "confirm_destructive": confirmed}
    kind = procedure_started(incident, playbook, check)
    res = run_playbook(
        ctx.project,
        incident,
        playbook,
        ctx.inventory,
        extravars=variables,
        check=check,
        progress=ctx.progress,
        executor=ctx.executor,
    )
    return procedure_finished(ctx, incident, playbook, res, check, kind)


def procedure_started(incident: Incident, playbook: str, check: bool) -> str:
    kind = run_kind(playbook)
    incident.log(f"{kind} started", f"{playbook} started", check_mode=check, kind_of_run=kind)
    return kind


def procedure_finished(ctx: Context, incident: Incident, playbook: str, res: RunResult, check: bool, kind: str):
    """What the procedure's run published (its outcome) into the record: mitigated or not, with its gaps."""
    if res.changes and not incident.data.get("first_action_at") and not check:
        incident.update(first_action_at=res.changes[0]["ts"])
    outcome = res.data.get("outcome") or {}
    if outcome:
        contracts.check(ctx.project.contracts, "outcome", outcome, f"the outcome published by {res.name}")
    (incident.subdir("outcomes") / f"{res.name}.json").write_text(json.dumps(outcome, indent=2, default=str) + "\n")
    gaps = [str(g) for g in outcome.get("gaps") or []]
    if outcome and not check:
        incident.update(gaps=gaps)
    if res.ok and outcome.get("verified") and not check and incident.data["status"] == "open":
        incident.update(status="mitigated", mitigated_at=now())
        incident.log(
            "mitigated",
            f"{playbook} finished and verification passed" + (f", with {len(gaps)} gap(s)" if gaps else ""),
            gaps=gaps,
        )
    incident.log(
        f"{kind} finished",
        f"{playbook} {'succeeded' if res.ok else 'failed'}"
        + (f", verification {'passed' if outcome.get('verified') else 'did not pass'}" if outcome else ""),
        ok=res.ok,
        verified=outcome.get("verified"),
        kind_of_run=kind,
    )
    return res


def one_run(ctx: Context, check: bool) -> bool:
    """Triage and the procedure go in one Ansible run (respond.yml) when no person waits between them: the
    destructive steps are confirmed up front (--yes), or an alert started the response and the auto-execution
    policy decides on triage's findings inside the run (the playbook waits at its gate, incident_gate, for the
    decision written to the incident's gate.json; not on an execution node, which cannot read that file). A
    person asked after the plan, and a check run (no hurry), keep two runs."""
    if check:
        return False
    if ctx.auto is not None:
        return not ctx.executor.remote
    return ctx.assume_yes


GATE_FILE = "gate.json"


def write_gate(path: Path, severity: str | None, run: bool, reason: str) -> None:
    """incidentctl's decision for the playbook waiting at its gate; written whole (the gate reads a whole file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"severity": severity, "run": run, "reason": reason}) + "\n")
    tmp.replace(path)


def triage_and_procedure(
    ctx: Context,
    incident: Incident,
    requested: str,
    services: list[str] | None,
    on_plan: Callable[[str, str, list[str]], None],
) -> tuple[str | None, RunResult | None]:
    """Triage, decide and run the procedure in one run of respond.yml: the severity and the procedure, or
    (None, None) when triage finds nothing to do.

    The controller decides as it does between two runs (``decide``), from the triage the run publishes
    while it goes on; the playbook chooses the same procedure by the same rule (the operator's severity,
    else the policy's). The timeline reads as for two runs: triage finished, severity decided, plan
    confirmed, procedure started, within the one run.
    """
    requested = check_severity(requested)
    state: dict = {}
    gate = incident.path / GATE_FILE if ctx.auto is not None else None

    def decided(severity: str | None) -> None:
        """The procedure may start: confirmed (by --yes or the policy), recorded, and the gate told."""
        playbook = PROCEDURES[severity]
        confirm_steps(ctx, incident, state["steps"], False)
        state["kind"] = procedure_started(incident, playbook, False)
        if gate is not None:
            write_gate(gate, severity, True, ctx.confirmed_by)

    def published(run_name: str, data: dict) -> None:
        if "triage" not in data or "triage" in state:
            return
        try:
            state["triage"] = triage_found(ctx, incident, data["triage"], run_name)
            severity = state["severity"] = decide(incident, state["triage"], requested, services)
            if severity is None:
                if gate is not None:
                    write_gate(gate, None, False, "triage found nothing to do")
                return
            playbook = PROCEDURES[severity]
            steps = state["steps"] = destructive_steps(ctx, playbook)
            on_plan(severity, playbook, steps)
            if gate is not None:
                classification = state["triage"].get("classification") or {}
                reason = ctx.auto.refusal(ctx, incident, steps, False, classification)
                if reason is not None:  # paged after the run, which runs no procedure now
                    state["waiting"] = reason
                    write_gate(gate, severity, False, reason)
                    return
            decided(severity)
        except BaseException:
            if gate is not None and not gate.exists():  # the playbook must not wait for a decision never coming
                write_gate(gate, None, False, "incidentctl failed deciding on triage's findings")
            raise

    incident.log("triage started", "triage started", kind_of_run="triage")
    variables = {**ctx.extravars, "incident_severity": requested}
    if gate is None:
        variables["confirm_destructive"] = True
    else:  # the decision comes through the gate, after triage
        gate.unlink(missing_ok=True)  # an earlier run's decision is not this one's
        variables["incident_gate_file"] = str(gate)
    res = run_playbook(
        ctx.project,
        incident,
        "respond",
        ctx.inventory,
        extravars=variables,
        progress=ctx.progress,
        executor=ctx.executor,
        on_published=published,
    )
    if "triage" not in state:
        _triage_failed(incident, res)
    severity = state["severity"]
    if severity is None:
        return None, None
    if "waiting" in state:
        raise ctx.auto.waiting(incident, state["waiting"], state["steps"])
    return severity, procedure_finished(ctx, incident, PROCEDURES[severity], res, False, state["kind"])


def collect_evidence(ctx: Context, incident: Incident) -> Path | None:
    """The runbook's investigation (logs, last hour of metrics, network) into the record.

    Read-only, so it also runs after a check run; a failure here costs evidence, not the
    response, and is logged rather than raised.
    """
    res = run_playbook(
        ctx.project, incident, "investigate", ctx.inventory, progress=ctx.progress, executor=ctx.executor
    )
    info = res.data.get("investigation") or {}
    if info:
        contracts.check(ctx.project.contracts, "investigation", info, f"the investigation published by {res.name}")
    where = info.get("dir")
    if res.ok and where:
        incident.log(
            "evidence collected",
            f"{len(info.get('log_files') or [])} log file(s) and the last hour of metrics in {where}",
            dir=where,  # for summaries built from the record (incidentctl follow)
            regions_not_answering=info.get("regions_not_answering") or [],
        )
        return Path(where)
    incident.log("evidence incomplete", f"investigate {res.status}: see {res.name} in the record's runs/")
    return None


def render_postmortem(ctx: Context, incident: Incident) -> Path | None:
    res = run_playbook(ctx.project, incident, "postmortem", ctx.inventory, progress=ctx.progress, executor=ctx.executor)
    path = incident.path / "postmortem.md"
    return path if res.ok and path.exists() else None


def response_times(data: dict) -> dict:
    """Time to first action and to mitigation against the severity's response time."""
    opened = data.get("opened_at")
    target = data.get("response_minutes")
    out = {"response_target_minutes": target}
    for key, at in (("first_action", data.get("first_action_at")), ("mitigation", data.get("mitigated_at"))):
        if opened and at:
            minutes = (at - opened) / 60
            out[f"time_to_{key}_minutes"] = round(minutes, 2)
            out[f"{key}_within_target"] = None if target is None else minutes <= target
        else:
            out[f"time_to_{key}_minutes"] = None
            out[f"{key}_within_target"] = None
    return out
