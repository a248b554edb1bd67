"""Live progress of a playbook run on the operator's terminal (stderr, so --json output stays clean)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

STYLE = {"ok": "green", "changed": "yellow", "failed": "bold red", "unreachable": "bold red", "skipped": "dim"}


class QuietProgress:
    def run_started(self, name: str, check: bool) -> None: ...
    def task_started(self, play: str, task: str) -> None: ...
    def task_result(self, entry: dict) -> None: ...
    def run_finished(self, result) -> None: ...


def running_line(spinner: Spinner, task: str, elapsed: float) -> Text:
    """The spinner line of a running task and how long it has been running (also `incidentctl follow`'s)."""
    line = Text(f" {task}  ", style="bold")
    line.append(f"{elapsed:.0f}s", style="dim")
    return spinner.render(time.monotonic()) + line


def result_line(entry: dict, elapsed: float) -> Text:
    """One task result (a timeline entry) at ``elapsed`` seconds into its run: the live progress and
    `incidentctl follow` print the same line."""
    outcome = "changed" if entry["outcome"] == "ok" and entry["changed"] else entry["outcome"]
    if entry.get("ignored") and entry["failed"]:
        outcome = "failed (ignored)"
    line = Text(f"  {elapsed:6.1f}s ", style="dim")
    line.append(f"{outcome:<8}", style=STYLE.get(entry["outcome"] if outcome != "changed" else "changed", ""))
    line.append(f" {entry['task']}")
    if entry["host"]:
        line.append(f"  [{entry['host']}]", style="dim")
    line.append(f"  {entry['duration']:.1f}s", style="dim")
    if entry["summary"] and (entry["failed"] or entry["changed"]):
        line.append(f"\n           {entry['summary']}", style="red" if entry["failed"] else "")
    return line


def started_line(name: str, check: bool) -> str:
    return f"[bold]▶ {name}[/bold]" + (" [cyan](check mode: nothing changes)[/cyan]" if check else "")


def finished_line(name: str, status: str, ok: bool, duration: float, tasks: int, changes: int, failures: int) -> str:
    style = "green" if ok else "bold red"
    return (
        f"[{style}]■ {name} {status}[/{style}] in {duration:.1f}s: "
        f"{tasks} task results, {changes} changed, {failures} failed"
    )


class _Current:
    """The spinner line: the running task and how long it has been running."""

    def __init__(self) -> None:
        self.task = ""
        self.started = time.monotonic()
        self.spinner = Spinner("dots")

    def __rich__(self):
        if not self.task:
            return Text("")
        return running_line(self.spinner, self.task, time.monotonic() - self.started)


class ConsoleProgress(QuietProgress):
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.current = _Current()
        self.live: Live | None = None
        self.run_start = 0.0

    def run_started(self, name: str, check: bool) -> None:
        self.run_start = time.monotonic()
        self.console.print(started_line(name, check))
        if self.console.is_terminal:
            self.live = Live(self.current, console=self.console, refresh_per_second=8, transient=True)
            self.live.start()

    def task_started(self, play: str, task: str) -> None:
        self.current.task = task
        self.current.started = time.monotonic()

    def task_result(self, entry: dict) -> None:
        self.console.print(result_line(entry, time.monotonic() - self.run_start))

    def run_finished(self, result) -> None:
        if self.live:
            self.live.stop()
            self.live = None
        self.console.print(
            finished_line(
                result.name,
                result.status,
                result.ok,
                result.duration,
                result.tasks,
                len(result.changes),
                len(result.failures),
            )
        )
