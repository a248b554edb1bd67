"""The incident record: one directory per incident, written as things happen.

  incident.json      id, status, severity and reasons, times, inventory, operator, the current run
                     (rewritten atomically, under a lock, merging with what is on disk)
  timeline.jsonl     one JSON line per event: the controller's own steps and every task that ran
  triage/            the triage findings and classification
  runs/NN-<name>/    ansible-runner's private data dir and artifacts of each playbook run
  snapshots/ logs/ metrics/   what the playbooks collected (they get the incident dir as a variable)
  postmortem.md      the rendered postmortem draft
  .lock              held (flock) by the controller working on the incident; says who and since when

The timeline is append-only and flushed per line, so a killed controller leaves a
readable record up to that point; readers skip a torn last line. A run whose owner is gone
(its lock is free, its state still ``running``) is marked ``interrupted``, with the last step
it reached, by the next command that touches the incident.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from .errors import BadInput, Refused

ENV_INCIDENTS_DIR = "INCIDENTCTL_INCIDENTS_DIR"

STATUSES = ("open", "mitigated", "resolved", "closed")
# What the controller is doing with an incident (incident.json "run.state").
RUN_STATES = ("running", "finished", "interrupted", "waiting")
ID_PATTERN = re.compile(r"^INC-\d{8}-\d{6}-[0-9a-f]{4}$")
ID_HELP = "INC-YYYYMMDD-HHMMSS-xxxx (`incidentctl incidents` lists them)"
HEARTBEAT_SECONDS = 2.0
_REQUIRED = {"id": str, "status": str, "opened_at": (int, float), "inventory": str, "operator": str}


def now() -> float:
    return time.time()


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None


def incidents_root(path: Path | None = None) -> Path:
    return Path(path or os.environ.get(ENV_INCIDENTS_DIR) or Path.cwd() / "incidents").absolute()


def check_id(value: str) -> str:
    """An incident id as `create` makes it; anything else (a path, 5,000 characters) is bad input."""
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise BadInput(f"{shown!r} is not an incident id: ids look like {ID_HELP}")
    return value


def ensure_writable(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise BadInput(
            f"incidents directory {root} is not writable ({exc.strerror}); "
            f"choose another with --incidents-dir or {ENV_INCIDENTS_DIR}"
        ) from None


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _owner(command: str, **extra) -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "since": now(), **extra}


def _try_flock(fh) -> bool:
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class _Heartbeat:
    """Rewrites the holder line of a lock file every few seconds while a run is alive."""

    def __init__(self, fh, holder: dict):
        self.fh, self.holder = fh, holder
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="incidentctl-heartbeat", daemon=True)

    def write(self) -> None:
        self.holder["heartbeat_at"] = now()
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(json.dumps(self.holder))
        self.fh.flush()

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(OSError, ValueError):
                self.write()

    def __enter__(self):
        self.write()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=HEARTBEAT_SECONDS)
        with contextlib.suppress(OSError, ValueError):
            self.fh.seek(0)
            self.fh.truncate()


def read_holder(path: Path) -> dict | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text:
        return None
    try:
        holder = json.loads(text)
    except ValueError:
        return {"description": text}
    return holder if isinstance(holder, dict) else None


def describe_holder(holder: dict | None) -> str:
    if not holder:
        return "another process"
    if "pid" not in holder:
        return str(holder.get("description") or "another process")
    what = f"incidentctl {holder.get('command', '?')} (pid {holder['pid']} on {holder.get('host', '?')}"
    return what + (f", since {iso(holder['since'])})" if holder.get("since") else ")")


def flock_held(path: Path, pid: int | None = None) -> bool | None:
    """Whether a process holds a flock on ``path``, as the kernel lists it in /proc/locks: nothing is
    taken and nothing written (a reader that tried the lock would hold it for an instant, and a
    controller taking the incident over at that instant would be refused). None where the kernel
    does not say (no /proc/locks), and for a lock taken on another host over a network filesystem.

    A line is ``1: FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> 0 EOF`` (``->`` marks a
    waiter, not a holder). Where stat's device is not the kernel's (btrfs subvolumes), the inode
    held by ``pid`` still matches.
    """
    try:
        st = path.stat()
        table = Path("/proc/locks").read_text()
    except FileNotFoundError:
        return False if not path.exists() else None
    except OSError:
        return None
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        held_pid, where = fields[4], fields[5]
        if where == dev or (pid is not None and held_pid == str(pid) and where.endswith(f":{st.st_ino}")):
            return True
    return False


class PlatformLock:
    """One procedure at a time per platform (inventory) among the controllers sharing an incidents directory."""

    def __init__(self, root: Path, inventory: str):
        self.inventory = inventory
        key = hashlib.sha256(inventory.encode()).hexdigest()[:16]
        self.path = root / ".platform-locks" / f"{key}.lock"

    @contextlib.contextmanager
    def held(self, command: str, incident_id: str | None = None) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+") as fh:
            if not _try_flock(fh):
                holder = read_holder(self.path) or {}
                inc = f" for incident {holder['incident']}" if holder.get("incident") else ""
                follow = f"; follow it with `incidentctl follow {holder['incident']}`" if holder.get("incident") else ""
                raise Refused(
                    f"a procedure is already running on this platform{inc}: {describe_holder(holder)}{follow}"
                ) from None
            with _Heartbeat(fh, _owner(command, incident=incident_id, inventory=self.inventory)) as beat:
                self.beat = beat
                yield

    def set_incident(self, incident_id: str) -> None:
        self.beat.holder["incident"] = incident_id
        self.beat.write()


class Incident:
    def __init__(self, path: Path, data: dict):
        self.path = path
        self.data = data

    # -- creation and lookup -----------------------------------------------------
    @classmethod
    def create(cls, root: Path, *, inventory: str, check: bool = False, operator: str | None = None) -> Incident:
        ensure_writable(root)
        opened = now()
        stamp = datetime.fromtimestamp(opened, UTC).strftime("%Y%m%d-%H%M%S")
        incident_id = f"INC-{stamp}-{secrets.token_hex(2)}"
        # Build the directory under a temporary name, then rename: never a half-made incident.
        tmp = root / f".{incident_id}.new"
        tmp.mkdir()
        data = {
            "id": incident_id,
            "status": "open",
            "severity": None,
            "severity_source": None,
            "reasons": [],
            "opened_at": opened,
            "first_action_at": None,
            "mitigated_at": None,
            "resolved_at": None,
            "closed_at": None,
            "inventory": inventory,
            "operator": operator or _operator(),
            "check_mode": check,
            "services": [],
            "runs": [],
            "run": None,
            "gaps": [],
        }
        _write_json(tmp / "incident.json", data)
        (tmp / "timeline.jsonl").touch()
        tmp.rename(root / incident_id)
        inc = cls(root / incident_id, data)
        inc.log("opened", f"incident opened by {data['operator']} with inventory {inventory}", check_mode=check)
        return inc

    @classmethod
    def open(cls, root: Path, incident_id: str) -> Incident:
        check_id(incident_id)
        path = root / incident_id
        try:
            data = json.loads((path / "incident.json").read_text())
        except (FileNotFoundError, NotADirectoryError):
            raise BadInput(f"no incident {incident_id!r} in {root}; `incidentctl incidents` lists them") from None
        except (ValueError, OSError):
            raise BadInput(f"incident {incident_id} has an unreadable incident.json in {path}") from None
        problem = _invalid(data, incident_id)
        if problem:
            raise BadInput(f"incident {incident_id} has an invalid incident.json in {path}: {problem}")
        return cls(path, data)

    @classmethod
    def all(cls, root: Path) -> list[Incident]:
        if not root.is_dir():
            return []
        out = []
        for p in sorted(root.iterdir()):
            if p.is_dir() and ID_PATTERN.match(p.name) and (p / "incident.json").exists():
                with contextlib.suppress(BadInput):
                    out.append(cls.open(root, p.name))
        return out

    @classmethod
    def open_for(cls, root: Path, inventory: str) -> Incident | None:
        """The newest incident still open on this inventory (check runs are plans, not incidents to join)."""
        found = [
            i
            for i in cls.all(root)
            if i.data["status"] == "open" and i.data.get("inventory") == inventory and not i.data.get("check_mode")
        ]
        return max(found, key=lambda i: i.data["opened_at"]) if found else None

    # -- state ------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.data["id"]

    @contextlib.contextmanager
    def _json_lock(self) -> Iterator[None]:
        with open(self.path / ".incident.json.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def mutate(self, change: Callable[[dict], None]) -> None:
        """Change incident.json from what is on disk now: another process (a read-only run) may have
        written it since this one read it."""
        with self._json_lock():
            with contextlib.suppress(OSError, ValueError):
                self.data = json.loads((self.path / "incident.json").read_text())
            change(self.data)
            _write_json(self.path / "incident.json", self.data)

    def refresh(self) -> Incident:
        """incident.json as it is on disk now (another process may have changed it)."""
        with contextlib.suppress(OSError, ValueError):
            self.data = json.loads((self.path / "incident.json").read_text())
        return self

    def update(self, **changes) -> None:
        self.mutate(lambda d: d.update(changes))

    def add_run(self, entry: dict) -> None:
        self.mutate(lambda d: d.setdefault("runs", []).append(entry))

    def log(self, kind: str, message: str, **fields) -> dict:
        """A controller entry in the timeline."""
        return self.append({"ts": now(), "source": "controller", "kind": kind, "message": message, **fields})

    def append(self, entry: dict) -> dict:
        # one write of one line with O_APPEND: lines of concurrent writers never interleave
        line = (json.dumps(entry, default=str) + "\n").encode()
        fd = os.open(self.path / "timeline.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return entry

    def timeline(self) -> list[dict]:
        entries = []
        try:
            lines = (self.path / "timeline.jsonl").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        for line in lines:
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
        return entries

    def last_step(self) -> str | None:
        """The last thing the timeline says happened, for 'interrupted after ...'."""
        for e in reversed(self.timeline()):
            if e.get("source") == "ansible":
                return f"{e.get('run', '')}: {e.get('task', '')} ({e.get('outcome', '')})"
            if e.get("kind") not in ("interrupted", "lock taken over", "run lost"):
                return e.get("message") or e.get("kind")
        return None

    def subdir(self, *parts: str) -> Path:
        p = self.path.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def next_run_dir(self, name: str) -> Path:
        runs = self.path / "runs"
        runs.mkdir(exist_ok=True)
        n = len([p for p in runs.iterdir() if p.is_dir() and p.name[:2].isdigit()]) + 1
        while True:  # another process may take a number meanwhile: mkdir is the claim
            path = runs / f"{n:02d}-{name}"
            try:
                path.mkdir()
                return path
            except FileExistsError:
                n += 1

    # -- who works on it -----------------------------------------------------------
    def run_owner_alive(self) -> bool:
        """Read-only liveness of the run incident.json calls ``running`` (for followers, which must not
        write the record nor take its lock): its lock is held, in /proc/locks; where the kernel cannot
        say (another host, no /proc), its heartbeat is fresh. Read the state again after a False: the
        owner writes ``finished`` before it lets go of the lock, so a run still ``running`` then is gone.
        """
        run = self.data.get("run") or {}
        if run.get("host") == socket.gethostname():
            held = flock_held(self.path / ".lock", run.get("pid"))
            if held is not None:
                return held
        holder = read_holder(self.path / ".lock") or {}
        beat = holder.get("heartbeat_at")
        # An empty lock file: the owner is finishing (it clears the file, then writes its state).
        return not isinstance(beat, (int, float)) or now() - beat < 5 * HEARTBEAT_SECONDS

    def mark_if_interrupted(self) -> bool:
        """Mark a run whose owner is gone as interrupted (once); True when it was.

        The state is read again while holding the lock: a run that finished between a first look and
        the lock is not taken for a dead one.
        """
        if (self.refresh().data.get("run") or {}).get("state") != "running":
            return False
        try:
            with open(self.path / ".lock", "a+") as fh:
                if not _try_flock(fh):
                    return False  # its owner holds it: alive
                run = self.refresh().data.get("run") or {}
                if run.get("state") != "running":
                    return False
                self._interrupted(run, "its process is gone")
                return True  # closing the file releases the lock
        except OSError:
            return False

    def _interrupted(self, run: dict, why: str) -> None:
        last = self.last_step()
        who = describe_holder(run)
        message = f"{who} stopped before it finished ({why}); last step: {last or 'none'}"
        self.log("interrupted", message, last_step=last)
        self.update(run={**run, "state": "interrupted", "ended_at": now(), "last_step": last})

    @contextlib.contextmanager
    def working(self, command: str) -> Iterator[dict]:
        """Exclusive work on the incident: a live holder refuses (exit 3), a dead one is taken over.

        While it is held, incident.json's ``run`` says who works and since when, and the lock file
        carries a heartbeat. Leaving normally sets ``finished`` (or what the caller set); an
        interruption (Ctrl-C, SIGTERM) sets ``interrupted`` with the last step reached.
        """
        with open(self.path / ".lock", "a+") as fh:
            if not _try_flock(fh):
                holder = read_holder(self.path / ".lock")
                raise Refused(
                    f"incident {self.id} is being worked on by {describe_holder(holder)}; wait for it to finish "
                    f"or follow it with `incidentctl follow {self.id}`"
                ) from None
            previous = self.refresh().data.get("run") or {}
            if previous.get("state") == "running":
                self._interrupted(previous, "its process is gone")
            if previous.get("state") in ("running", "interrupted"):
                taker = f"pid {os.getpid()} on {socket.gethostname()}"
                self.log("lock taken over", f"the lock of {describe_holder(previous)} was taken over by {taker}")
            run = {**_owner(command), "state": "running"}
            self.update(run=run)
            outcome = {"state": "finished"}
            try:
                with _Heartbeat(fh, dict(run)):
                    yield outcome
            except (KeyboardInterrupt, SystemExit) as exc:
                if isinstance(exc, SystemExit) and exc.code in (0, None):
                    self.update(run={**run, "state": outcome["state"], "ended_at": now()})
                else:
                    self._interrupted(run, "interrupted by a signal")
                raise
            except BaseException as exc:
                if getattr(exc, "interrupts_run", False):  # e.g. the execution node was lost mid-run
                    self._interrupted(run, str(exc))
                else:
                    self.update(run={**run, "state": outcome["state"], "ended_at": now()})
                raise
            self.update(run={**run, "state": outcome["state"], "ended_at": now()})

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Compatibility name: exclusive work without a command name."""
        with self.working("run"):
            yield


def _invalid(data: object, incident_id: str) -> str | None:
    if not isinstance(data, dict):
        return "not a JSON object"
    for key, kind in _REQUIRED.items():
        if not isinstance(data.get(key), kind):
            return f"{key!r} is missing or not a {getattr(kind, '__name__', 'number')}"
    if data["id"] != incident_id:
        return f"it names incident {data['id']!r}"
    if data["status"] not in STATUSES:
        return f"unknown status {data['status']!r}"
    return None


def _operator() -> str:
    try:
        return os.environ.get("INCIDENTCTL_OPERATOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
