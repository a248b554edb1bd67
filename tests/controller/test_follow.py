"""`incidentctl follow` on a real terminal, against the test-double project (no lab).

A response holds after its change while the test's hold file exists, so the tests decide when a
follower starts (before, during, after the response) and when the response goes on.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import threading

import pexpect
import pytest
import test_controller_record as record_tests
from test_controller_record import INVENTORY, _holding, _one_line_error, _start, _wait_for_task

from incidentctl.record import Incident, flock_held
from support import wait_for

ctl = record_tests.ctl  # incidentctl on the test-double project, with its own incidents directory

HELD_TASK = "Hold while FAKE_HOLD_FILE exists (the tests release it)"
# The spinner line of the held task, with its elapsed seconds (not its result line, which names the host).
HELD_RUNNING = re.compile(re.escape(HELD_TASK) + r"  \d+s")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
INTERRUPTED = 6


class Terminal:
    """incidentctl on a pseudo-terminal, as an operator runs it; its output is read all along (a full
    terminal would stall the command)."""

    def __init__(self, env: dict, *args: str):
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "incidentctl", *args],
            env=env,
            encoding="utf-8",
            dimensions=(50, 250),
            timeout=None,
            # Ctrl-C works as at a terminal even when the tests were started in the background (a background
            # job of a non-interactive shell ignores SIGINT, and Python keeps an ignored SIGINT ignored).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.chunks: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                self.chunks.append(self.child.read_nonblocking(65536, timeout=None))
            except (pexpect.EOF, OSError):
                return

    @property
    def text(self) -> str:
        return ANSI.sub("", "".join(self.chunks))

    @property
    def lines(self) -> list[str]:
        return [ln for ln in re.split(r"\r\n|\r|\n", self.text) if ln.strip()]

    def shows(self, pattern: re.Pattern) -> bool:
        return bool(pattern.search(self.text))

    def wait(self, timeout: float = 180) -> int | None:
        """The exit code (None when a signal ended it)."""
        self.reader.join(timeout)
        assert not self.reader.is_alive(), f"the command did not end:\n{self.text[-3000:]}"
        self.child.wait()
        return self.child.exitstatus


def _needle(e: dict) -> str:
    """What of a timeline entry a follower prints: the live progress's lines for runs and task results."""
    if e["source"] == "ansible":
        return f"{e['task']}  [{e['host']}]"
    if e["kind"] == "run started":
        return f"▶ {e['run'].split('-', 1)[1]}"
    if e["kind"] == "run finished":
        return f"■ {e['run']} {e['status']}"
    return f"{e['kind']}: {e['message']}"


def _assert_shows_record(term: Terminal, timeline: list[dict]) -> None:
    """Every entry of the record on its own line, once, in the record's order."""
    lines = term.lines
    at = -1
    for e in timeline:
        found = [i for i, ln in enumerate(lines) if _needle(e) in ln]
        assert len(found) == 1, (_needle(e), [lines[i] for i in found], term.text[-3000:])
        assert found[0] > at, (_needle(e), "out of order")
        at = found[0]


def test_followers_before_during_and_after_a_response_show_the_record_once_in_order(ctl, tmp_path):
    """Followers started as the incident opens (one on a terminal, one with --json: two at once), one
    started mid-procedure (three at once), one after the end: each shows every entry of the record once,
    in order, the task running now with its elapsed time, then respond's summary and respond's exit code."""
    hold, env = _holding(ctl, tmp_path)
    response = _start(
        ctl, "respond", "-i", str(INVENTORY), "--yes", "--json", extra_env={**env, "FAKE_GAPS": "slack was down"}
    )
    inc = wait_for(lambda: Incident.all(ctl.incidents) and Incident.all(ctl.incidents)[0], 60, "incident opened")
    before = Terminal(ctl.env, "follow")  # no id: the incident running now
    as_json = _start(ctl, "follow", "--json")

    _wait_for_task(ctl, "Change the platform")
    wait_for(lambda: before.shows(HELD_RUNNING), 60, "the held task with its elapsed time")
    during = Terminal(ctl.env, "follow", inc.id)
    wait_for(lambda: during.shows(HELD_RUNNING), 60, "the held task in the follower started during the hold")
    assert before.child.isalive() and as_json.poll() is None  # three followers at once
    assert not any(e.get("task") == HELD_TASK for e in inc.timeline())  # still held: the procedure waits

    hold.unlink()
    out, err = response.communicate(timeout=180)
    assert response.returncode == 5, err  # mitigated with gaps
    respond_doc = json.loads(out)
    json_out, json_err = as_json.communicate(timeout=60)
    codes = {"before": before.wait(), "during": during.wait(), "json": as_json.returncode}
    after = Terminal(ctl.env, "follow", inc.id)
    codes["after"] = after.wait()
    assert codes == dict.fromkeys(codes, 5), (codes, json_err)

    timeline = inc.timeline()
    assert any(e.get("task") == HELD_TASK for e in timeline)
    for term in (before, during, after):
        _assert_shows_record(term, timeline)
        assert "Traceback" not in term.text
        lines = term.lines
        tail = lines[max(i for i, ln in enumerate(lines) if "─" in ln and f"incident {inc.id}" in ln) :]
        assert "mitigated with gaps" in tail[1], tail
        assert "  - slack was down" in tail and any(
            ln.startswith("  - Change the platform [controller]:") for ln in tail
        )
        assert f"record: {inc.path}" in tail and f"report: {inc.path / 'report.html'}" in tail
    assert not after.shows(HELD_RUNNING)  # after the end, nothing is running

    *entries, last = [json.loads(ln) for ln in json_out.splitlines()]
    assert entries == timeline
    summary = last["summary"]
    assert summary["outcome"] == "mitigated with gaps" and summary["run"]["state"] == "finished"
    for key in set(respond_doc) - {"duration_seconds"}:
        assert summary[key] == respond_doc[key], key
    assert list((inc.path / ".current").glob("*.json")) == []  # no run is said to be running


def test_stopping_followers_leaves_the_response_alone(ctl, tmp_path):
    """A follower killed, another stopped with Ctrl-C (exit 130, quietly): the response finishes as if
    nobody had watched."""
    hold, env = _holding(ctl, tmp_path)
    response = _start(ctl, "respond", "-i", str(INVENTORY), "--yes", "--json", extra_env=env)
    inc = _wait_for_task(ctl, "Change the platform")
    killed = Terminal(ctl.env, "follow", inc.id)
    stopped = Terminal(ctl.env, "follow")
    for term in (killed, stopped):
        wait_for(lambda term=term: term.shows(HELD_RUNNING), 60, "the held task in a follower")

    os.kill(killed.child.pid, signal.SIGKILL)
    assert killed.wait() is None and killed.child.signalstatus == signal.SIGKILL
    shown = len(stopped.text)
    stopped.child.sendintr()
    assert stopped.wait() == 130
    # nothing said: at most the spinner redrawn before the follower went
    said = [ln for ln in re.split(r"\r\n|\r|\n", stopped.text[shown:].replace("^C", "")) if ln.strip()]
    assert all(HELD_RUNNING.search(ln) for ln in said), said

    hold.unlink()
    _out, err = response.communicate(timeout=180)
    assert response.returncode == 0, err
    inc.refresh()
    assert inc.data["status"] == "mitigated" and inc.data["run"]["state"] == "finished"
    assert not any(e.get("kind") == "interrupted" for e in inc.timeline())


def test_a_follower_says_when_the_run_it_follows_is_killed_and_writes_nothing(ctl, tmp_path):
    """`run` (not respond) killed with SIGKILL mid-procedure: its followers end saying it was interrupted
    (exit 6) and how to continue; the record still says running, as only a command that works on the
    incident marks it."""
    _hold, env = _holding(ctl, tmp_path)
    run = _start(ctl, "run", "p0_critical", "-i", str(INVENTORY), "--yes", extra_env=env)
    inc = _wait_for_task(ctl, "Change the platform")
    term = Terminal(ctl.env, "follow")
    as_json = _start(ctl, "follow", inc.id, "--json")
    wait_for(lambda: term.shows(HELD_RUNNING), 60, "the held task in the follower")
    record_before = (inc.path / "incident.json").read_bytes()

    run.kill()
    run.wait()
    assert term.wait() == INTERRUPTED
    json_out, _ = as_json.communicate(timeout=60)
    assert as_json.returncode == INTERRUPTED
    said = term.lines[-1]
    assert said.startswith("interrupted: incidentctl run p0_critical") and "its process is gone" in said, said
    assert f"incidentctl respond --incident {inc.id}" in said and "Change the platform" in said
    summary = json.loads(json_out.splitlines()[-1])["summary"]
    assert summary["outcome"] == "interrupted" and summary["run"]["process_gone"] is True
    assert summary["procedure"] == {"run": "01-p0_critical", "status": "unfinished", "ok": False}

    assert (inc.path / "incident.json").read_bytes() == record_before
    assert not any(e.get("kind") == "interrupted" for e in inc.timeline())
    shown = json.loads(ctl("show", inc.id, "--json").stdout)  # a command of the record marks it
    assert shown["incident"]["run"]["state"] == "interrupted"
    # followed once marked: the record's own words, the same exit code
    again = ctl("follow", inc.id)
    assert again.returncode == INTERRUPTED, again.stderr
    marked = next(e for e in inc.timeline() if e.get("kind") == "interrupted")
    assert again.stdout.strip().splitlines()[-1] == (
        f"interrupted: {marked['message']}. Continue with `incidentctl respond --incident {inc.id}`"
    )


def test_follow_of_an_incident_waiting_for_a_person_says_so(ctl):
    assert ctl("respond", "-i", str(INVENTORY)).returncode == 3  # no terminal, no --yes: it waits
    inc = Incident.all(ctl.incidents)[0]
    res = ctl("follow")  # an open incident is followed when none is running
    assert res.returncode == 3, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith(f"following incident {inc.id}: waits for a person")
    assert lines[-1] == f"waits for a person: {inc.data['waiting_for']}"


def test_follow_on_an_unknown_incident_is_one_clear_line(ctl):
    _one_line_error(ctl("follow", "INC-20260101-000000-abcd"), 2, "no incident 'INC-20260101-000000-abcd'")
    _one_line_error(ctl("follow", "../etc"), 2, "'../etc' is not an incident id")


def test_follow_without_a_running_or_open_incident_says_so(ctl):
    _one_line_error(ctl("follow"), 2, "no running or open incident")
    ctl.incidents.mkdir(parents=True, exist_ok=True)
    Incident.create(ctl.incidents, inventory=str(INVENTORY)).update(status="closed")
    Incident.create(ctl.incidents, inventory=str(INVENTORY), check=True)  # a plan, not an incident to follow
    _one_line_error(ctl("follow"), 2, "no running or open incident")


def test_the_lock_is_seen_held_without_taking_it(tmp_path):
    """Followers tell a live run from a dead one by the kernel's list of locks, never by trying the lock."""
    path = tmp_path / ".lock"
    path.touch()
    assert flock_held(path) is False
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl,sys; f=open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); input()", path],
        stdin=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: flock_held(path, holder.pid), 30, "the lock to be held")
    with open(path) as fh, pytest.raises(BlockingIOError):  # still held: the check did not take it
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    holder.communicate("\n", timeout=30)
    assert flock_held(path) is False
    assert flock_held(tmp_path / "missing") is False
