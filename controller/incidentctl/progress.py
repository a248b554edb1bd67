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


class _Current:
    """The spinner line: the running task and how long it has been running."""

    def __init__(self) -> None:
        self.task = ""
        self.started = time.monotonic()
        self.spinner = Spinner("dots")

    def __rich__(self):
        if not self.task:
            return Text("")
        line = Text(f" {self.task}  ", style="bold")
        line.append(f"{time.monotonic() - self.started:.0f}s", style="dim")
        return self.spinner.render(time.monotonic()) + line


class ConsoleProgress(QuietProgress):
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.current = _Current()
        self.live: Live | None = None
        self.run_start = 0.0

    def run_started(self, name: str, check: bool) -> None:
        self.run_start = time.monotonic()
        self.console.print(f"[bold]▶ {name}[/bold]" + (" [cyan](check mode: nothing changes)[/cyan]" if check else ""))
        if self.console.is_terminal:
            self.live = Live(self.current, console=self.console, refresh_per_second=8, transient=True)
            self.live.start()

    def task_started(self, play: str, task: str) -> None:
        self.current.task = task
        self.current.started = time.monotonic()

    def task_result(self, entry: dict) -> None:
        outcome = "changed" if entry["outcome"] == "ok" and entry["changed"] else entry["outcome"]
        if entry.get("ignored") and entry["failed"]:
            outcome = "failed (ignored)"
        elapsed = time.monotonic() - self.run_start
        line = Text(f"  {elapsed:6.1f}s ", style="dim")
        line.append(f"{outcome:<8}", style=STYLE.get(entry["outcome"] if outcome != "changed" else "changed", ""))
        line.append(f" {entry['task']}")
        if entry["host"]:
            line.append(f"  [{entry['host']}]", style="dim")
        line.append(f"  {entry['duration']:.1f}s", style="dim")
        if entry["summary"] and (entry["failed"] or entry["changed"]):
            line.append(f"\n           {entry['summary']}", style="red" if entry["failed"] else "")
        self.console.print(line)

    def run_finished(self, result) -> None:
        if self.live:
            self.live.stop()
            self.live = None
        style = "green" if result.ok else "bold red"
        self.console.print(
            f"[{style}]■ {result.name} {result.status}[/{style}] in {result.duration:.1f}s: "
            f"{result.tasks} task results, {len(result.changes)} changed, {len(result.failures)} failed"
        )
