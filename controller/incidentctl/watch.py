"""``incidentctl watch``: ansible-rulebook receives Alertmanager's alerts, incidentctl responds.

The rulebook (the collection's ``extensions/eda/rulebooks/alertmanager.yml``) runs under ansible-rulebook with
the collection's ``alertmanager`` event source; its rules decide which alerts are the platform's. Each rule's
action is reported on ansible-rulebook's websocket (``--websocket-url``, what EDA controller receives from an
activation), and this process is the server at the other end: it routes the rule's alert in the record at once
(alerts.route: attach it to the incident of its problem, or open one) and, for a new incident, starts
``incidentctl respond --from-alert --incident ID`` as its child. No Ansible process is started per alert.

One response at a time: a new incident while a response runs is queued, never started beside it. Ctrl-C or
SIGTERM stops ansible-rulebook (with its JVM, through the supervising shim) and the responses (which mark
their incidents interrupted, as `respond` does on a signal), and returns once they are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import alerts as alert_routing
from . import autoexec, supervise
from .errors import ControllerError
from .project import Project
from .record import now

RULEBOOK = "incident.response.alertmanager"
RULE_HAND_OVER = "Hand a platform alert to incidentctl"
RULE_IGNORE = "Ignore an alert the platform has no procedure for"
DEFAULT_ALERTNAMES = ["ServiceDown", "HighErrorRate", "HighLatency", "DatabaseDown", "ReplicationBroken"]
JAVA_HOMES = ("/usr/lib/jvm/java-17-openjdk-amd64", "/usr/lib/jvm/java-17-openjdk-arm64")
READY_TIMEOUT = 60.0
STOP_GRACE = supervise.GRACE + 5.0


def rulebook_path(project: Project) -> Path:
    return project.root / "collection/ansible_collections/incident/response/extensions/eda/rulebooks/alertmanager.yml"


def java_home() -> str:
    """JAVA_HOME for ansible-rulebook's Drools engine (Java 17); a clear error when there is none."""
    candidates = [os.environ.get("JAVA_HOME") or "", *JAVA_HOMES]
    for home in candidates:
        if home and Path(home, "bin", "java").exists():
            return home
    raise ControllerError(
        "ansible-rulebook needs Java 17 and none was found (JAVA_HOME, /usr/lib/jvm/java-17-openjdk-*): "
        "run ./scripts/bootstrap or apt-get install openjdk-17-jre-headless"
    )


def rulebook_tool(project: Project) -> str:
    path = project.envvars()["PATH"]
    found = shutil.which("ansible-rulebook", path=path)
    if not found:
        raise ControllerError("ansible-rulebook is not installed: run ./scripts/bootstrap (it is in requirements.lock)")
    return found


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _pdeathsig() -> None:  # runs in the child between fork and exec: it dies with the watcher
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(supervise.PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class Settings:
    inventory: Path
    root: Path
    host: str = "127.0.0.1"
    port: int = 5050
    path: str = "/alerts"
    token: str = ""
    check: bool = False
    alertnames: list[str] = field(default_factory=lambda: list(DEFAULT_ALERTNAMES))
    policy: autoexec.Policy = field(default_factory=autoexec.Policy)


@dataclass
class Response:
    incident: str
    process: subprocess.Popen | None = None
    log: Path | None = None
    started_at: float = 0.0


class Watcher:
    def __init__(self, project: Project, settings: Settings, say: Callable[[str], None]):
        self.project, self.s, self.say = project, settings, say
        self.state_dir = settings.root / ".watch"
        self.pending: deque[Response] = deque()
        self.current: Response | None = None
        self.rulebook: subprocess.Popen | None = None
        self.rulebook_log = self.state_dir / "rulebook.log"
        self.journal = self.state_dir / "journal.jsonl"
        self.stopping = asyncio.Event()
        self.failed: str | None = None
        self.spare: subprocess.Popen | None = None  # a responder started ahead, waiting for its incident

    # -- what arrives --------------------------------------------------------------------------
    def note(self, **entry) -> None:
        """One line per alert and per start in the watch journal (for people and benchmarks)."""
        with open(self.journal, "a") as fh:
            fh.write(json.dumps({"ts": now(), **entry}, default=str) + "\n")

    def receive(self, text: str) -> None:
        """One message of the rulebook's feedback channel. Nothing here may end the channel: the rulebook does
        not send an action again once it was received, so an action that fails is journaled whole (its
        matching_events are what `incidentctl respond --from-alert` takes) and the next one is handled."""
        try:
            message = json.loads(text)
        except ValueError:
            return
        try:
            self.handle(message)
        except ControllerError as exc:  # an unreadable record, say
            self.say(f"error: {exc}")
            self.note(outcome="error", why=str(exc), message=message)
        except Exception as exc:  # a bug, a full disk: said with its traceback, and the watcher goes on
            self.say(f"error: handling a rule action failed: {exc!r}\n{traceback.format_exc()}")
            self.note(outcome="error", why=repr(exc), message=message)

    def handle(self, message: dict) -> None:
        """An action record from ansible-rulebook: route its alert, start a response for a new incident."""
        if message.get("type") != "Action":
            return
        rule = message.get("rule")
        for event in (message.get("matching_events") or {}).values():
            try:
                alert = alert_routing.Alert.from_event(event)
            except ControllerError as exc:
                self.say(f"ignored an event of rule {rule!r}: {exc}")
                self.note(outcome="ignored", rule=rule, why=str(exc))
                continue
            if rule != RULE_HAND_OVER:
                self.say(f"{alert.describe()} -> ignored: {alert.alertname} is not one of the platform's alerts")
                self.note(outcome="ignored", alert=alert.key, name=alert.name, why="not a platform alert")
                continue
            self.route(alert)

    def route(self, alert: alert_routing.Alert) -> None:
        routed = alert_routing.route(
            self.s.root,
            str(self.s.inventory),
            alert,
            check=self.s.check,
            settle_seconds=self.s.policy.settle_seconds,
            operator=f"{_user()} (incidentctl watch)",
        )
        inc = routed.incident
        self.note(
            outcome=routed.outcome,
            alert=alert.key,
            name=alert.name,
            status=alert.status,
            incident=inc.id if inc else None,
            why=routed.why,
            received_at=alert.received_at,
        )
        if routed.outcome == "ignored":
            self.say(f"{alert.describe()} -> ignored: {routed.why}")
            return
        if routed.outcome == "attached":
            if routed.changed:
                self.say(f"{alert.describe()} -> {inc.id} ({routed.why})")
            return
        pause = autoexec.paused(self.s.root)
        if pause is not None:
            why = autoexec.describe_pause(pause)
            inc.log(
                "auto-execution refused",
                f"nothing runs: {why}; respond by hand: incidentctl respond --incident {inc.id}",
            )
            inc.update(
                run={"state": "waiting", "command": "watch", "pid": os.getpid(), "since": now()},
                waiting_for=f"{why} (`incidentctl watch resume`): incidentctl respond --incident {inc.id}",
            )
            self.say(f"{alert.describe()} -> opened {inc.id}; {why}: nothing started")
            return
        self.say(f"{alert.describe()} -> opened {inc.id}: response " + ("queued" if self.current else "starting"))
        self.pending.append(Response(inc.id))
        self.start_next()

    # -- what it starts ---------------------------------------------------------------------------
    def start_next(self) -> None:
        if self.current is not None or not self.pending or self.stopping.is_set():
            return
        resp = self.pending.popleft()
        inc = alert_routing.Incident.open(self.s.root, resp.incident)
        first = next(iter((inc.data.get("alerts") or {}).values()), None)
        alert_file = self.state_dir / f"{resp.incident}.alert.json"
        alert_file.write_text(
            json.dumps({"alert": first, "delivery": {"received_at": (first or {}).get("received_at")}})
        )
        resp.log = self.state_dir / f"{resp.incident}.respond.log"
        spare, self.spare = self.spare, None
        if spare is not None and spare.poll() is None:
            # The spare has imported incidentctl and parsed the inventory already: the response starts now.
            spare.stdin.write(json.dumps({"incident": resp.incident, "alert_file": str(alert_file)}) + "\n")
            spare.stdin.close()
            resp.process, how = spare, "spare"
            with contextlib.suppress(OSError):
                os.replace(self.state_dir / f"spare-{spare.pid}.log", resp.log)
        else:
            cmd = [*self.respond_command(), "--incident", resp.incident, "--from-alert", str(alert_file)]
            with open(resp.log, "ab") as log:
                resp.process = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_pdeathsig, env=os.environ.copy()
                )
            how = "cold"
        resp.started_at = now()
        self.current = resp
        self.note(outcome="started", incident=resp.incident, pid=resp.process.pid, how=how)

    def respond_command(self) -> list[str]:
        cmd = [*_incidentctl(), "respond", "--inventory", str(self.s.inventory), "--incidents-dir", str(self.s.root)]
        return [*cmd, "--check"] if self.s.check else cmd

    def start_spare(self) -> None:
        """A responder that does its start-up (imports, inventory) now, and waits for the next incident."""
        if self.spare is not None or self.current is not None or self.stopping.is_set():
            return
        log_path = self.state_dir / "spare.log"
        with open(log_path, "ab") as log:
            self.spare = subprocess.Popen(
                [*self.respond_command(), "--spare"],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                text=True,
                preexec_fn=_pdeathsig,
                env=os.environ.copy(),
            )
        with contextlib.suppress(OSError):
            os.replace(log_path, self.state_dir / f"spare-{self.spare.pid}.log")

    def reap(self) -> None:
        if self.current is None or self.current.process is None:
            return
        rc = self.current.process.poll()
        if rc is None:
            return
        meaning = {0: "done", 1: "failed", 2: "bad input", 3: "waits for a person", 4: "environment", 5: "gaps"}
        took = now() - self.current.started_at
        self.say(
            f"{self.current.incident}: respond exited {rc} ({meaning.get(rc, 'stopped')}) after {took:.1f}s; "
            f"log {self.current.log}"
        )
        self.note(outcome="finished", incident=self.current.incident, rc=rc, seconds=round(took, 2))
        self.current = None
        self.start_next()
        self.start_spare()

    # -- the rulebook ---------------------------------------------------------------------------------
    def start_rulebook(self, ws_port: int, private: Path) -> None:
        variables = {
            "alertmanager_webhook_host": self.s.host,
            "alertmanager_webhook_port": self.s.port,
            "alertmanager_webhook_path": self.s.path,
            "alertmanager_webhook_token": self.s.token,
            "incident_alertnames": self.s.alertnames,
        }
        vars_file = private / "vars.yml"
        fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the token
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump(variables, fh)
        env = {
            **os.environ,
            **self.project.envvars(),
            "JAVA_HOME": java_home(),
            supervise.ENV_SHIM_DIR: str(private / "bin"),
            supervise.ENV_PARENT: str(os.getpid()),
        }
        shim = supervise.install(private / "bin", "ansible-rulebook")
        env["PATH"] = f"{shim}{os.pathsep}{env['PATH']}"
        cmd = [
            str(shim / "ansible-rulebook"),
            "--rulebook",
            str(rulebook_path(self.project)),
            "--vars",
            str(vars_file),
            "--websocket-url",
            f"ws://127.0.0.1:{ws_port}/api/ws",
            "--id",
            "1",
            "-v",
        ]
        with open(self.rulebook_log, "ab") as log:
            self.rulebook = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, preexec_fn=_pdeathsig
            )

    def rulebook_ready(self) -> bool:
        url = f"http://{'127.0.0.1' if self.s.host in ('0.0.0.0', '') else self.s.host}:{self.s.port}/"
        try:
            with urllib.request.urlopen(url, timeout=0.5) as resp:
                return resp.status == 200
        except OSError:
            return False

    def rulebook_error(self) -> str:
        try:
            lines = [ln for ln in self.rulebook_log.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            lines = []
        errors = [ln for ln in lines if " ERROR " in ln or "Error" in ln or "error" in ln]
        return (errors or lines or ["no output"])[-1].strip()[:300]

    # -- the loop -----------------------------------------------------------------------------------
    async def serve(self) -> int:
        from aiohttp import WSMsgType, web

        async def feedback(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.receive(msg.data)
            return ws

        app = web.Application()
        app.router.add_get("/{tail:.*}", feedback)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ws_port = site._server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        private = Path(tempfile.mkdtemp(prefix="incidentctl-watch-"))
        try:
            self.start_rulebook(ws_port, private)
            deadline = time.monotonic() + READY_TIMEOUT
            while not self.rulebook_ready():
                if self.rulebook.poll() is not None:
                    raise ControllerError(f"ansible-rulebook stopped at start: {self.rulebook_error()}")
                if time.monotonic() > deadline or self.stopping.is_set():
                    raise ControllerError(
                        f"ansible-rulebook did not serve within {READY_TIMEOUT:.0f}s: see {self.rulebook_log}"
                    )
                await asyncio.sleep(0.1)
            where = f"http://{self.s.host}:{self.s.port}{self.s.path}"
            self.say(
                f"watching {where} for inventory {self.s.inventory}"
                + (" in check mode (plans only)" if self.s.check else "")
                + f"; incidents in {self.s.root}; rulebook log {self.rulebook_log}"
            )
            pause = autoexec.paused(self.s.root)
            if pause:
                self.say(autoexec.describe_pause(pause) + ": alerts are recorded, nothing starts")
            self.note(outcome="watching", url=where, pid=os.getpid())
            self.start_spare()
            while not self.stopping.is_set():
                self.reap()
                if self.spare is not None and self.spare.poll() is not None:  # it failed: the next start is cold
                    self.say(f"the spare responder exited ({self.spare.returncode}); see {self.state_dir}")
                    self.spare = None
                if self.rulebook.poll() is not None:
                    self.failed = f"ansible-rulebook exited ({self.rulebook.returncode}): {self.rulebook_error()}"
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), 0.2)
        finally:
            await self.stop()
            await runner.cleanup()
            shutil.rmtree(private, ignore_errors=True)
        if self.failed:
            raise ControllerError(self.failed)
        return 0

    async def stop(self) -> None:
        """The rulebook and the running response get SIGTERM (each takes its tree down), then SIGKILL."""
        current = self.current.process if self.current else None
        procs = [p for p in (self.rulebook, current, self.spare) if p and p.poll() is None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait()
        if self.current is not None:
            inc = self.current.incident
            self.say(f"{inc}: response stopped with the watcher (`incidentctl respond --incident {inc}` continues it)")
        for resp in self.pending:
            self.say(
                f"{resp.incident}: not started (the watcher stopped): incidentctl respond --incident {resp.incident}"
            )
        self.note(outcome="stopped", pid=os.getpid())


def run(project: Project, settings: Settings, say: Callable[[str], None]) -> int:
    """Watch until Ctrl-C or SIGTERM; ControllerError for what keeps it from watching."""
    rulebook_tool(project)
    java_home()
    if not port_free(settings.host, settings.port):
        raise ControllerError(f"port {settings.port} on {settings.host} is in use: give watch another --port")
    (settings.root / ".watch").mkdir(parents=True, exist_ok=True)
    watcher = Watcher(project, settings, say)
    return asyncio.run(watcher.serve())


def _incidentctl() -> list[str]:
    return [sys.executable, "-m", "incidentctl"]


def _user() -> str:
    try:
        import getpass

        return os.environ.get("INCIDENTCTL_OPERATOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
