"""Run playbooks through ansible-runner and learn what happened only from its events.

Every task result becomes a timeline entry as it arrives; the ``set_stats`` data of a
run (triage findings, a procedure's outcome) comes from the final stats event, and, for a caller
that acts while the run goes on (respond.yml's triage), from the set_stats task's own result.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import ansible_runner

from . import cache, supervise
from .errors import BadInput
from .executor import Executor, NodeLost, never_cancel  # noqa: F401 - flow imports never_cancel from here
from .project import Project
from .record import Incident
from .scrub import Scrubber

# incidentctl follow shows the task each run is at: the last line of <incident>/.current/<run>.jsonl,
# appended at every task start (one O_APPEND write, as the timeline: replacing a small file by rename
# costs ~1 ms on ext4, which flushes it) and removed when the run ends. Not part of the record.
CURRENT_DIR = ".current"

RESULT_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
}


@dataclass
class RunResult:
    name: str
    status: str
    rc: int
    duration: float
    data: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    changes: list[dict] = field(default_factory=list)
    tasks: int = 0
    dir: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0


def summarize(res: dict) -> str:
    """A short, human line for one task result (for a loop, its items' lines)."""
    items = [r for r in res.get("results") or [] if isinstance(r, dict) and r.get("msg")]
    if items:
        return "; ".join(str(r["msg"]).splitlines()[0] for r in items)[:300]
    if res.get("msg"):
        return str(res["msg"]).splitlines()[0][:300]
    if "skip_reason" in res:
        return str(res["skip_reason"])[:300]
    return ""


class EventRecorder:
    """ansible-runner event handler: timeline entries, live progress, run data."""

    def __init__(self, incident: Incident, run_name: str, progress, scrubber: Scrubber, on_published=None):
        self.incident = incident
        self.on_published = on_published
        self.hook_error: BaseException | None = None
        self.run_name = run_name
        self.progress = progress
        self.scrubber = scrubber
        self.play = ""
        self.data: dict = {}
        self.stats: dict = {}
        self.failures: list[dict] = []
        self.changes: list[dict] = []
        self.tasks = 0
        self.first_event = True
        self.current = incident.path / CURRENT_DIR / f"{run_name}.jsonl"
        self.owner = {"run": run_name, "pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        self.current_fd: int | None = None
        with contextlib.suppress(OSError):
            self.current.parent.mkdir(exist_ok=True)
            self.current_fd = os.open(self.current, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.publish("")

    def publish(self, task: str) -> None:
        """The run's current task for followers: one line, one write (a few microseconds per task start).
        A failure here costs followers a line, not the run."""
        if self.current_fd is None:
            return
        doc = {**self.owner, "play": self.play, "task": task, "started_at": time.time()}
        with contextlib.suppress(OSError):
            os.write(self.current_fd, (json.dumps(doc) + "\n").encode())

    def close(self) -> None:
        """The run is over: nothing is running in it any more."""
        with contextlib.suppress(OSError):
            self.current.unlink()
        if self.current_fd is not None:
            os.close(self.current_fd)
            self.current_fd = None

    def __call__(self, event: dict) -> bool:
        if self.first_event:
            # ansible-runner has just written the environment into its artifacts: clean it at once.
            self.first_event = False
            self.scrubber.scrub_run_dir_soon()
        kind = event.get("event", "")
        ed = event.get("event_data") or {}
        if kind == "playbook_on_play_start":
            self.play = ed.get("play", "")
        elif kind == "playbook_on_task_start":
            self.publish(ed.get("task", ""))
            self.progress.task_started(self.play, ed.get("task", ""))
        elif kind in RESULT_EVENTS:
            self._result(RESULT_EVENTS[kind], ed)
        elif kind == "playbook_on_stats":
            self.data = ed.get("artifact_data") or {}
            self.stats = {k: ed.get(k) or {} for k in ("ok", "changed", "failures", "dark", "skipped", "rescued")}
        return True  # ansible-runner keeps the event only if the handler says so

    def _result(self, outcome: str, ed: dict) -> None:
        res = self.scrubber.rewrite_data(ed.get("res") or {})  # the node's paths made local before any cut
        entry = {
            "ts": time.time(),
            "source": "ansible",
            "run": self.run_name,
            "play": self.play,
            "task": ed.get("task", ""),
            "host": ed.get("host", ""),
            "module": ed.get("resolved_action") or ed.get("task_action", ""),
            "outcome": outcome,
            "changed": bool(res.get("changed")),
            "failed": outcome in ("failed", "unreachable"),
            "ignored": bool(ed.get("ignore_errors")),
            "duration": round(float(ed.get("duration") or 0), 3),
            "summary": self.scrubber.scrub_text(summarize(res)),
        }
        self.tasks += 1
        self.incident.append(entry)
        if entry["failed"] and not entry["ignored"]:
            self.failures.append(entry)
        if entry["changed"]:
            self.changes.append(entry)
        self.progress.task_result(entry)
        stats = res.get("ansible_stats")
        if self.on_published and outcome == "ok" and isinstance(stats, dict) and isinstance(stats.get("data"), dict):
            self._published(stats["data"])

    def _published(self, data: dict) -> None:
        """A set_stats task's data, scrubbed as the final data is, for the caller while the run goes on.
        An error of the caller's is raised after the run (an exception here would stop reading events)."""
        if self.hook_error is not None:
            return
        try:
            self.on_published(self.run_name, json.loads(self.scrubber.scrub_text(json.dumps(data, default=str))))
        except Exception as exc:  # kept, and raised by run_playbook once the run is over
            self.hook_error = exc


def run_playbook(
    project: Project,
    incident: Incident,
    playbook: str,
    inventory: Path,
    *,
    extravars: dict | None = None,
    check: bool = False,
    tags: list[str] | None = None,
    progress=None,
    executor: Executor | None = None,
    on_published=None,
) -> RunResult:
    """Run one playbook inside an incident's record, here or on an execution node (see executor).

    ``on_published(run_name, data)`` is called with the data of each set_stats task as it succeeds."""
    from . import contracts
    from .progress import QuietProgress

    contracts.warm()  # what the run publishes is checked against its contract
    progress = progress or QuietProgress()
    executor = executor or Executor()
    path = project.playbook(playbook)
    run_dir = incident.next_run_dir(path.stem)
    job = executor.job(incident.path, run_dir)
    scrubber = Scrubber(run_dir, rewrites=job.rewrites)
    recorder = EventRecorder(incident, run_dir.name, progress, scrubber, on_published)
    flags = []
    if check:
        flags += ["--check", "--diff"]
    if tags:
        flags += ["--tags", ",".join(tags)]
    try:
        extravars = {"incident_id": incident.id, "incident_dir": job.incident_dir, **(extravars or {})}
        where = {"executor": executor.url} if executor.remote else {}
        incident.log(
            "run started",
            f"{path.name} started" + (f" on {executor.url}" if executor.remote else ""),
            run=run_dir.name,
            check_mode=check,
            tags=tags or [],
            **where,
        )
        progress.run_started(path.stem, check)
        start = time.monotonic()
        try:
            with supervise.stopping_children():
                status, rc = job.run(
                    project=project,
                    playbook=path.name,
                    inventory=inventory,
                    extravars=extravars,
                    cmdline=" ".join(flags) or None,
                    recorder=recorder,
                )
            job.finish()
        except NodeLost as exc:
            scrubber.scrub_run_dir()
            incident.log("run lost", str(exc), run=run_dir.name, **where)
            incident.add_run({"name": run_dir.name, "status": "lost", "check_mode": check, **where})
            raise
        finally:
            job.cleanup()
        scrubber.scrub_run_dir()
        result = RunResult(
            name=run_dir.name,
            status=status,
            rc=rc,
            duration=time.monotonic() - start,
            # set_stats data becomes triage/ and outcomes/ files: a node's paths made local, secrets scrubbed
            data=json.loads(scrubber.scrub_text(json.dumps(scrubber.rewrite_data(recorder.data), default=str))),
            stats=recorder.stats,
            failures=recorder.failures,
            changes=recorder.changes,
            tasks=recorder.tasks,
            dir=run_dir,
        )
        if recorder.tasks == 0 and not result.ok:
            # Ansible failed before any task: a syntax error, an unusable inventory. Say what it said.
            result.failures.append({"task": "(start)", "host": "", "summary": _last_error(run_dir)})
        incident.log(
            "run finished",
            f"{path.name} {result.status} in {result.duration:.1f}s ({recorder.tasks} task results, "
            f"{len(result.changes)} changed, {len(result.failures)} failed)",
            run=run_dir.name,
            status=result.status,
            rc=result.rc,
        )
        incident.add_run({"name": run_dir.name, "status": result.status, "check_mode": check, **where})
        progress.run_finished(result)
        if recorder.hook_error is not None:
            raise recorder.hook_error
        return result
    finally:
        recorder.close()


def _last_error(run_dir: Path) -> str:
    stdout = run_dir / "artifacts" / "artifacts" / "stdout"
    candidates = list(run_dir.glob("artifacts/*/stdout"))
    try:
        text = (stdout if stdout.exists() else candidates[0]).read_text(errors="replace")
    except (IndexError, OSError):
        return "ansible-playbook failed before running any task"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("ERROR", "[ERROR]", "fatal"))]
    return (errors or lines or ["ansible-playbook failed before running any task"])[-1][:400]


def check_inventory(project: Project, inventory: Path) -> dict:
    """Parse the inventory with ansible-inventory; a broken one is bad input, said in one line.

    ansible-inventory shows the variables as written (it templates nothing), so the answer depends only on
    the inventory's files: an unchanged inventory is not parsed again (an Ansible start less per command).
    Only settings written in those files are read from it: a state file's variable (the state_file source)
    is kept as it was when parsed.
    """
    key = cache.content_key([inventory], str(inventory))
    return cache.cached("inventory", key, lambda: _parse_inventory(project, inventory), _has_hosts)


def _has_hosts(data) -> bool:
    return isinstance(data, dict) and bool(data.get("_meta", {}).get("hostvars"))


def _parse_inventory(project: Project, inventory: Path) -> dict:
    out, err = ansible_runner.get_inventory(
        action="list",
        inventories=[str(inventory)],
        response_format="json",
        envvars=project.envvars(),
        quiet=True,
    )
    if not out:
        first = next((ln for ln in (err or "").splitlines() if ln.strip()), "no output from ansible-inventory")
        raise BadInput(f"inventory {inventory} cannot be parsed: {first.strip()}")
    data = out if isinstance(out, dict) else json.loads(out)
    if not data.get("_meta", {}).get("hostvars"):
        raise BadInput(f"inventory {inventory} defines no hosts")
    return data
