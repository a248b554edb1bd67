"""Who may act without a person: the one place that decides for responses an alert started.

The policy is inventory data (``auto_execution``, beside ``severity_policy`` in inventories/common/runbook.yml,
overridable per inventory):

  rules           which findings run their procedure's destructive steps automatically: each rule names a check
                  of the severity policy (``check``, one or a list), optionally a ``severity``, and the kind of
                  ``failover`` it leads to (``database`` or ``traffic``), which the block period watches
  block_seconds   after an automatic failover of a kind, no second automatic one of that kind for this long
                  (orchestrator's RecoveryPeriodBlockSeconds)
  max_per_hour    automatic procedures per platform and hour, whatever they are
  settle_seconds  how long a mitigated incident with alerts still firing takes new alerts (see alerts.py)

Anything the policy does not let run (no matching rule, the block period, the hourly bound, the pause switch)
is refused with the reason and the command a person runs; the incident waits, and the on-call is paged with the
plan. What ran automatically is kept per platform in ``<incidents>/.auto-executions/<platform>.jsonl``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadInput, Refused
from .record import Incident, iso, now

FAILOVER_KINDS = ("database", "traffic")
DEFAULTS = {"rules": [], "block_seconds": 3600, "max_per_hour": 3, "settle_seconds": 600}
PAUSE_FILE = ".watch-paused"
HOUR = 3600.0


class Waiting(Refused):
    """Refused by the policy: the incident waits for a person, who is told why and what to run."""

    def __init__(self, message: str, waiting_for: str):
        super().__init__(message)
        self.waiting_for = waiting_for


@dataclass(frozen=True)
class Policy:
    rules: list[dict] = field(default_factory=list)
    block_seconds: float = DEFAULTS["block_seconds"]
    max_per_hour: int = DEFAULTS["max_per_hour"]
    settle_seconds: float = DEFAULTS["settle_seconds"]

    @classmethod
    def from_vars(cls, value: object, where: str = "auto_execution") -> Policy:
        """From the inventory's ``auto_execution`` (plain data); one clear line when it is malformed."""
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise BadInput(f"{where} must be a mapping (rules, block_seconds, max_per_hour, settle_seconds)")
        unknown = sorted(set(value) - set(DEFAULTS))
        if unknown:
            raise BadInput(f"{where} has unknown key(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
        numbers = {}
        for key in ("block_seconds", "max_per_hour", "settle_seconds"):
            raw = value.get(key, DEFAULTS[key])
            try:
                numbers[key] = float(raw)
            except (TypeError, ValueError):
                raise BadInput(f"{where}.{key} must be a number of {key.split('_')[-1]}, not {raw!r}") from None
            if numbers[key] < 0:
                raise BadInput(f"{where}.{key} must not be negative")
        rules = value.get("rules")
        rules = [] if rules is None else rules
        if not isinstance(rules, list):
            raise BadInput(f"{where}.rules must be a list")
        for i, rule in enumerate(rules):
            if not isinstance(rule, dict) or not rule.get("check"):
                raise BadInput(f"{where}.rules[{i}] must be a mapping with a check (a severity_policy check)")
            bad = sorted(set(rule) - {"check", "severity", "failover", "reason"})
            if bad:
                raise BadInput(f"{where}.rules[{i}] has unknown key(s) {', '.join(bad)}")
            if rule.get("failover") not in (None, *FAILOVER_KINDS):
                raise BadInput(f"{where}.rules[{i}].failover must be one of {', '.join(FAILOVER_KINDS)}")
        return cls(
            rules=[dict(r) for r in rules],
            block_seconds=numbers["block_seconds"],
            max_per_hour=int(numbers["max_per_hour"]),
            settle_seconds=numbers["settle_seconds"],
        )


def _listed(value: object) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def matching_rules(policy: Policy, classification: dict) -> list[tuple[dict, dict]]:
    """(rule, finding) pairs: a finding of triage (``classification.matched``) that a rule lets run."""
    out = []
    for finding in classification.get("matched") or []:
        for rule in policy.rules:
            if finding.get("check") not in _listed(rule.get("check")):
                continue
            severities = _listed(rule.get("severity"))
            if severities and finding.get("severity") not in severities:
                continue
            out.append((rule, finding))
    return out


@dataclass(frozen=True)
class Decision:
    run: bool
    reason: str
    failovers: tuple[str, ...] = ()
    blocked: bool = False  # a rule matched, but the block period or the hourly bound said no


def decide(
    policy: Policy, classification: dict, history: list[dict], at: float | None = None, destructive: bool = True
) -> Decision:
    """Run the procedure without a person, or wait (and why). ``history``: this platform's entries. A procedure
    without destructive steps (P3: record and notify) needs no rule, but counts against the hourly bound."""
    at = now() if at is None else at
    matches = matching_rules(policy, classification)
    if not destructive:
        matches = matches or [({}, {"check": "no destructive step", "severity": classification.get("severity")})]
    if not matches:
        findings = "; ".join(m.get("reason", m.get("check", "")) for m in classification.get("matched") or [])
        return Decision(
            False,
            "the auto-execution policy lets none of these findings act without a person"
            + (f" ({findings})" if findings else ""),
        )
    kinds = tuple(sorted({r["failover"] for r, _ in matches if r.get("failover")}))
    recent = [h for h in history if h.get("type") == "procedure" and at - float(h.get("ts", 0)) < HOUR]
    if len(recent) >= policy.max_per_hour:
        return Decision(
            False,
            f"{len(recent)} automatic procedure(s) ran on this platform in the last hour "
            f"(max_per_hour {policy.max_per_hour}): the next one waits for a person",
            kinds,
            True,
        )
    for kind in kinds:
        done = [h for h in history if h.get("type") == "failover" and h.get("kind") == kind]
        if not done:
            continue
        last = max(done, key=lambda h: float(h["ts"]))
        ago = at - float(last["ts"])
        if ago < policy.block_seconds:
            return Decision(
                False,
                f"an automatic {kind} failover ran {ago:.0f}s ago (incident {last.get('incident')}); no second "
                f"automatic {kind} failover within the block period of {policy.block_seconds:.0f}s "
                f"(until {iso(float(last['ts']) + policy.block_seconds)})",
                kinds,
                True,
            )
    rule, finding = matches[0]
    if not destructive:
        return Decision(True, "the procedure has no destructive step", kinds)
    return Decision(
        True,
        f"the auto-execution policy runs {finding.get('check')} ({finding.get('severity')}) without a person"
        + (f": {rule['reason']}" if rule.get("reason") else ""),
        kinds,
    )


# -- what ran automatically, per platform -------------------------------------------------------
def history_path(root: Path, inventory: str) -> Path:
    return root / ".auto-executions" / f"{hashlib.sha256(inventory.encode()).hexdigest()[:16]}.jsonl"


def read_history(root: Path, inventory: str) -> list[dict]:
    out = []
    with contextlib.suppress(OSError):
        for line in history_path(root, inventory).read_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    out.append(entry)
    return out


def add_history(root: Path, inventory: str, **entry) -> None:
    path = history_path(root, inventory)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps({"ts": now(), "inventory": inventory, **entry}) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


FAILOVER_MODULES = {"database": "incident.response.mysql_promote", "traffic": "incident.response.traffic_failover"}


def failovers_done(changes: list[dict]) -> list[str]:
    """The kinds of failover a procedure made: its task results that changed (RunResult.changes) by module."""
    made = {c.get("module") for c in changes if c.get("changed")}
    return [kind for kind, module in FAILOVER_MODULES.items() if module in made]


# -- the pause switch ---------------------------------------------------------------------------
def pause_path(root: Path) -> Path:
    return root / PAUSE_FILE


def paused(root: Path) -> dict | None:
    """Who paused automatic responses and when, or None."""
    try:
        text = pause_path(root).read_text()
    except OSError:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    return doc if isinstance(doc, dict) else {"note": text.strip()}


def pause(root: Path, by: str, note: str = "") -> dict:
    root.mkdir(parents=True, exist_ok=True)
    doc = {"by": by, "at": now(), "note": note}
    tmp = pause_path(root).with_name(f".{PAUSE_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps(doc) + "\n")
    tmp.replace(pause_path(root))
    return doc


def resume(root: Path) -> bool:
    try:
        pause_path(root).unlink()
        return True
    except FileNotFoundError:
        return False


def describe_pause(doc: dict) -> str:
    when = f" since {iso(doc['at'])}" if isinstance(doc.get("at"), int | float) else ""
    who = f" by {doc['by']}" if doc.get("by") else ""
    note = f" ({doc['note']})" if doc.get("note") else ""
    return f"automatic responses are paused{who}{when}{note}"


def pager(ctx):
    """Page the people of the incident's severity with the plan (playbooks/page_plan.yml, once per incident)."""

    def page(inc: Incident, note: str) -> None:
        from .runner import run_playbook

        res = run_playbook(
            ctx.project, inc, "page_plan", ctx.inventory, extravars={"page_note": note}, progress=ctx.progress
        )
        inc.log("on-call paged" if res.ok else "page failed", f"the plan sent to the on-call: {note}", ok=res.ok)

    return page


# -- the gate of a response an alert started ---------------------------------------------------------
class AutoStart:
    """What ``respond --from-alert`` asks before the destructive steps, and tells after the procedure."""

    def __init__(self, root: Path, inventory: str, policy: Policy, page=None, evidence=None):
        self.root, self.inventory, self.policy = root, inventory, policy
        self.page = page  # called with (incident, note) to page the on-call with the plan when it waits
        self.evidence = evidence  # called with (incident) after the page: the read-only investigation
        self.decision: Decision | None = None

    def waiting(self, inc: Incident, reason: str, steps: list[str]) -> Waiting:
        command = f"incidentctl respond --incident {inc.id} --yes"
        inc.log(
            "auto-execution refused",
            f"nothing destructive ran automatically: {reason}; a person runs `{command}`",
            steps=steps,
            command=command,
        )
        plan = "; ".join(steps) if steps else "no destructive step"
        if self.page is not None:
            self.page(inc, f"Automatic response waits for a person: {reason}. Plan: {plan}. To run it: {command}")
        if self.evidence is not None:  # the person who comes finds the logs and metrics of the outage already kept
            self.evidence(inc)
        return Waiting(f"{reason}; run `{command}` to confirm {len(steps)} destructive step(s)", f"{reason}: {command}")

    def confirm(self, ctx, inc: Incident, steps: list[str], check: bool) -> None:
        """Set ``ctx`` to run the steps without a person, or raise Waiting (logged, paged)."""
        reason = self.refusal(ctx, inc, steps, check)
        if reason is not None:
            raise self.waiting(inc, reason, steps)

    def refusal(self, ctx, inc: Incident, steps: list[str], check: bool, classification: dict | None = None):
        """Why the steps may not run without a person (logged; the caller pages, see ``waiting``), or None: then
        ``ctx`` is set to run them. ``classification``: triage's, else the one in the incident's findings."""
        if check:
            return None
        pause_doc = paused(self.root)
        if pause_doc is not None:
            return describe_pause(pause_doc) + " (`incidentctl watch resume`)"
        if classification is None:
            classification = {}
            with contextlib.suppress(OSError, ValueError):
                findings = json.loads((inc.path / "triage" / "findings.json").read_text())
                classification = findings.get("classification") or {}
        decision = decide(self.policy, classification, read_history(self.root, self.inventory), destructive=bool(steps))
        self.decision = decision
        inc.log(
            "auto-execution decided",
            ("run: " if decision.run else "wait: ") + decision.reason,
            run=decision.run,
            blocked=decision.blocked,
            failovers=list(decision.failovers),
        )
        if not decision.run:
            return decision.reason
        add_history(self.root, self.inventory, type="procedure", incident=inc.id, steps=len(steps))
        ctx.assume_yes = True
        ctx.confirmed_by = f"destructive steps confirmed by the auto-execution policy: {decision.reason}"
        return None

    def blocked_start(self, inc: Incident, message: str) -> None:
        """Another procedure holds the platform: the alert stays in this incident, which says so and waits."""
        command = f"incidentctl respond --incident {inc.id}"
        inc.log("start blocked", f"{message}; once it is done, a person runs `{command}`", command=command)
        inc.update(
            run={"state": "waiting", "command": "respond --from-alert", "pid": os.getpid(), "since": now()},
            waiting_for=f"the platform was busy when the alert came ({message}): {command}",
        )

    def finished(self, inc: Incident, changes: list[dict]) -> None:
        """Keep the failovers an automatic procedure made: they start the block period of their kind."""
        if self.decision is None or not self.decision.run:
            return
        for kind in failovers_done(changes):
            add_history(self.root, self.inventory, type="failover", kind=kind, incident=inc.id)
            inc.log(
                "automatic failover recorded",
                f"automatic {kind} failover: no second automatic {kind} failover on this platform for "
                f"{self.policy.block_seconds:.0f}s (until {iso(now() + self.policy.block_seconds)})",
                failover=kind,
            )
