"""`incidentctl follow`: watch an incident as whoever works on it writes its record.

A follower only reads: timeline.jsonl from the byte it reached, incident.json, and the task each
playbook run is at (``.current/<run>.json``, published by runner.EventRecorder). It takes no
lock and writes nothing, so any number of followers watch a run without slowing it, and stopping
one (Ctrl-C, a kill) does nothing to the run. Whatever writes the record can be followed:
`respond`, `run`, or a watcher that calls the controller.

The run ends for a follower when incident.json no longer says ``running`` (the owner writes its
final state after its last timeline line) and nothing new has come for a moment. A run whose
process died says ``running`` forever: the follower sees its lock free without touching it
(Incident.run_owner_alive) and says it was interrupted. It does not mark the record (that is
mark_if_interrupted's job, in the next command that works on the incident): marking writes, and
it tries the lock, which for that instant would refuse a controller taking the incident over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from .errors import BadInput
from .flow import run_kind
from .progress import finished_line, result_line, running_line, started_line
from .record import Incident, check_id, describe_holder, iso
from .runner import CURRENT_DIR

POLL_SECONDS = 0.1  # a stat of the timeline per poll: nothing the run would notice
LIVENESS_SECONDS = 1.0  # how often a follower looks whether a "running" run's process is still there
QUIET_SECONDS = 1.0  # after the run ends, lines its process writes a moment later still count
RUN_INTERRUPTED = 6  # exit code: the run followed died before it finished (documented in README)
SUMMARY_KINDS = ("procedure", "rollback")  # runs whose outcome the summary reports (as respond's does)


def pick(root: Path, incident_id: str | None) -> Incident:
    """The incident asked for; by default the newest one running now, else the newest one open."""
    if incident_id is not None:
        return Incident.open(root, check_id(incident_id))
    items = Incident.all(root)
    running = [i for i in items if (i.data.get("run") or {}).get("state") == "running" and i.run_owner_alive()]
    still_open = [i for i in items if i.data["status"] == "open" and not i.data.get("check_mode")]
    for group in (running, still_open):
        if group:
            return max(group, key=lambda i: i.data["opened_at"])
    raise BadInput(f"no running or open incident in {root}: `incidentctl follow ID` follows any incident")


class Tail:
    """New complete lines of an append-only JSON-lines file, from the byte reached so far."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def read(self, final: bool = False) -> list[dict]:
        try:
            if os.stat(self.path).st_size <= self.offset:
                return []
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return []
        # A line being written shows up whole a moment later; a torn last line of a killed writer
        # is skipped, as Incident.timeline skips it.
        end = len(data) if final else data.rfind(b"\n") + 1
        self.offset += end
        entries = []
        for line in data[:end].splitlines():
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
        return entries


@dataclass
class RecordedRun:
    """One playbook run as the timeline tells it; what the summary needs of a runner.RunResult."""

    name: str
    started: dict
    finished: dict | None = None
    results: list[dict] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.finished.get("status", "?") if self.finished else "unfinished"

    @property
    def ok(self) -> bool:
        return bool(self.finished) and self.status == "successful" and self.finished.get("rc") == 0

    @property
    def changes(self) -> list[dict]:
        return [e for e in self.results if e.get("changed")]

    @property
    def failures(self) -> list[dict]:
        failed = [e for e in self.results if e.get("failed") and not e.get("ignored")]
        if self.finished and not self.results and not self.ok:
            # Ansible failed before any task (runner.run_playbook says so the same way)
            failed.append({"task": "(start)", "host": "", "summary": self.finished.get("message", "")})
        return failed


@dataclass
class Ending:
    """How the followed run ended, and what the summary is built from."""

    state: str | None  # run.state at the end: finished, waiting, interrupted (None: never worked on)
    gone: bool  # its process died without saying so (still "running" in the record)
    run: dict
    procedure: RecordedRun | None
    duration: float
    evidence: Path | None
    triage_failed: bool

    @property
    def interrupted(self) -> bool:
        return self.gone or self.state == "interrupted"


class Follower:
    """Replays an incident's timeline, then streams it and the running tasks until its run ends."""

    def __init__(self, incident: Incident, console: Console, as_json: bool = False, poll: float = POLL_SECONDS):
        self.inc = incident
        self.console = console
        self.as_json = as_json
        self.poll = poll
        self.tail = Tail(incident.path / "timeline.jsonl")
        self.runs: dict[str, RecordedRun] = {}
        self.entries: list[dict] = []
        self.current: list[dict] = []
        self.spinner = Spinner("dots")
        self.host = socket.gethostname()

    # -- the stream ------------------------------------------------------------------------
    def follow(self) -> Ending:
        live = None
        if not self.as_json and self.console.is_terminal:
            live = Live(self, console=self.console, refresh_per_second=8, transient=True)
        with live or contextlib.nullcontext():
            return self._loop()

    def _loop(self) -> Ending:
        quiet_since = None
        checked_at = 0.0
        alive = True
        while True:
            # The state first, the lines after: the owner writes its final state after its last line.
            run = dict(self.inc.refresh().data.get("run") or {})
            running = run.get("state") == "running"
            if running and time.monotonic() - checked_at >= LIVENESS_SECONDS:
                checked_at = time.monotonic()
                alive = self.inc.run_owner_alive()
            self.current = self._current()
            busy = (running and alive) or bool(self.current)
            if self._emit(self.tail.read()):
                quiet_since = None
            if running and not alive:
                again = self.inc.refresh().data.get("run") or {}
                if again.get("state") == "running" and again.get("since") == run.get("since"):
                    self._emit(self.tail.read(final=True))
                    return self._ending(run, gone=True)
                checked_at = 0.0  # it ended or changed hands meanwhile: look again at once
            elif busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_SECONDS:
                self._emit(self.tail.read(final=True))
                return self._ending(run, gone=False)
            time.sleep(self.poll)

    def _current(self) -> list[dict]:
        """The tasks running now: the last line of each run's .current file whose process is alive."""
        found = []
        try:
            paths = sorted((self.inc.path / CURRENT_DIR).glob("*.jsonl"))
        except OSError:
            return []
        for p in paths:
            doc = last_line(p)
            if doc and doc.get("host") == self.host and process_alive(doc.get("pid"), doc.get("since")):
                found.append(doc)
        return found

    def _emit(self, entries: list[dict]) -> bool:
        for e in entries:
            self._note(e)
            if self.as_json:
                self.console.file.write(json.dumps(e, default=str) + "\n")
                self.console.file.flush()
            else:
                self.console.print(self.render(e), highlight=False)
        return bool(entries)

    def _note(self, e: dict) -> None:
        self.entries.append(e)
        if e.get("source") == "controller" and e.get("kind") == "run started" and e.get("run"):
            self.runs[e["run"]] = RecordedRun(e["run"], e)
        elif e.get("source") == "controller" and e.get("kind") == "run finished" and e.get("run") in self.runs:
            self.runs[e["run"]].finished = e
        elif e.get("source") == "ansible" and e.get("run") in self.runs:
            self.runs[e["run"]].results.append(e)

    def render(self, e: dict):
        """An entry as the live progress prints it: ▶ and ■ for a run, one line per task result."""
        run = self.runs.get(e.get("run", ""))
        if e.get("source") == "ansible":
            start = run.started["ts"] if run else e.get("ts", 0)
            return result_line(e, e.get("ts", 0) - start)
        if e.get("kind") == "run started" and run:
            return started_line(stem(run.name), bool(e.get("check_mode")))
        if e.get("kind") == "run finished" and run:
            return finished_line(
                run.name,
                run.status,
                run.ok,
                e.get("ts", 0) - run.started.get("ts", 0),
                len(run.results),
                len(run.changes),
                len(run.failures),
            )
        line = Text(f"{(iso(e.get('ts')) or '')[11:19]} ", style="dim")
        line.append(f"{e.get('kind', '')}:", style="bold")
        line.append(f" {e.get('message', '')}")
        return line

    def __rich__(self):
        """The spinner lines of the running tasks (the run's name too when several run at once)."""
        lines = []
        for doc in self.current:
            if doc.get("task"):
                task = doc["task"] + (f"  ({doc.get('run')})" if len(self.current) > 1 else "")
                lines.append(running_line(self.spinner, task, time.time() - float(doc.get("started_at") or 0)))
        return Group(*lines)

    # -- the end ---------------------------------------------------------------------------
    def _ending(self, run: dict, gone: bool) -> Ending:
        """What the summary reports: the followed run's last procedure, its duration, its evidence."""
        since = run.get("since") or 0
        window = [e for e in self.entries if e.get("ts", 0) >= since]
        procedures = [r for r in self.runs.values() if r.started.get("ts", 0) >= since and is_procedure(r.name)]
        evidence = next((e.get("dir") for e in reversed(window) if e.get("kind") == "evidence collected"), None)
        end = run.get("ended_at") or time.time()
        return Ending(
            state=run.get("state"),
            gone=gone,
            run=run,
            procedure=procedures[-1] if procedures else None,
            duration=end - since if since else 0.0,
            evidence=Path(evidence) if evidence else None,
            triage_failed=any(e.get("kind") == "triage failed" for e in window),
        )


def last_line(path: Path, chunk: int = 4096) -> dict | None:
    """The last complete JSON line of a file; None when there is none or the file is gone (its run is over)."""
    try:
        with open(path, "rb") as fh:
            offset = max(0, fh.seek(0, os.SEEK_END) - chunk)
            fh.seek(offset)
            data = fh.read()
            end = data.rfind(b"\n")
            start = data.rfind(b"\n", 0, max(end, 0)) + 1
            if start == 0 and offset > 0:  # the line is longer than the chunk
                return last_line(path, chunk * 16) if chunk < 1 << 20 else None
    except OSError:
        return None
    try:
        doc = json.loads(data[start:end]) if end >= 0 else None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def stem(run_name: str) -> str:
    """runs/02-p0_critical is a run of p0_critical."""
    return run_name.split("-", 1)[1] if "-" in run_name else run_name


def is_procedure(run_name: str) -> bool:
    return run_kind(stem(run_name)) in SUMMARY_KINDS


def outcome_of(inc: Incident, procedure: RecordedRun | None) -> dict:
    if procedure is None:
        return {}
    try:
        outcome = json.loads((inc.path / "outcomes" / f"{procedure.name}.json").read_text())
    except (OSError, ValueError):
        return {}
    return outcome if isinstance(outcome, dict) else {}


def interrupted_line(inc: Incident, ending: Ending) -> str:
    """The record's words for an interruption it has marked; the same words for one only seen now."""
    marked = [e for e in inc.timeline() if e.get("kind") == "interrupted"]
    if ending.gone or not marked:
        what = f"{describe_holder(ending.run)} stopped before it finished (its process is gone); "
        what += f"last step: {inc.last_step() or 'none'}"
    else:
        what = marked[-1].get("message", "")
    return f"{what}. Continue with `incidentctl respond --incident {inc.id}`"


_BOOT: list[float] = []


def process_alive(pid, since) -> bool:
    """A process of this host is alive, and is the one that started at ``since`` (not a pid reused)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):
            return False  # dead, not yet reaped
        if not _BOOT:
            lines = Path("/proc/stat").read_text().splitlines()
            _BOOT.append(next(float(ln.split()[1]) for ln in lines if ln.startswith("btime ")))
        started = _BOOT[0] + int(fields[19]) / os.sysconf("SC_CLK_TCK")
        return not isinstance(since, (int, float)) or started <= since + 2
    except (OSError, ValueError, IndexError, StopIteration):
        return True  # no /proc: the signal said it is there
