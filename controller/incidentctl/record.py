"""The incident record: one directory per incident, written as things happen.

  incident.json      id, status, severity and reasons, times, inventory, operator (atomic rewrites)
  timeline.jsonl     one JSON line per event: the controller's own steps and every task that ran
  triage/            the triage findings and classification
  runs/NN-<name>/    ansible-runner's private data dir and artifacts of each playbook run
  snapshots/ logs/ metrics/   what the playbooks collected (they get the incident dir as a variable)
  postmortem.md      the rendered postmortem draft

The timeline is append-only and flushed per line, so a killed controller leaves a
readable record up to that point; readers skip a torn last line.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .errors import BadInput, Refused

ENV_INCIDENTS_DIR = "INCIDENTCTL_INCIDENTS_DIR"

STATUSES = ("open", "mitigated", "resolved", "closed")


def now() -> float:
    return time.time()


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None


def incidents_root(path: Path | None = None) -> Path:
    return Path(path or os.environ.get(ENV_INCIDENTS_DIR) or Path.cwd() / "incidents").absolute()


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
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


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
        }
        _write_json(tmp / "incident.json", data)
        (tmp / "timeline.jsonl").touch()
        tmp.rename(root / incident_id)
        inc = cls(root / incident_id, data)
        inc.log("opened", f"incident opened by {data['operator']} with inventory {inventory}", check_mode=check)
        return inc

    @classmethod
    def open(cls, root: Path, incident_id: str) -> Incident:
        path = root / incident_id
        try:
            data = json.loads((path / "incident.json").read_text())
        except FileNotFoundError:
            raise BadInput(f"no incident {incident_id!r} in {root}; `incidentctl incidents` lists them") from None
        except ValueError:
            raise BadInput(f"incident {incident_id} has an unreadable incident.json in {path}") from None
        return cls(path, data)

    @classmethod
    def all(cls, root: Path) -> list[Incident]:
        if not root.is_dir():
            return []
        out = []
        for p in sorted(root.iterdir()):
            if p.is_dir() and not p.name.startswith(".") and (p / "incident.json").exists():
                with contextlib.suppress(BadInput):
                    out.append(cls.open(root, p.name))
        return out

    # -- state ------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.data["id"]

    def update(self, **changes) -> None:
        self.data.update(changes)
        _write_json(self.path / "incident.json", self.data)

    def log(self, kind: str, message: str, **fields) -> dict:
        """A controller entry in the timeline."""
        return self.append({"ts": now(), "source": "controller", "kind": kind, "message": message, **fields})

    def append(self, entry: dict) -> dict:
        with open(self.path / "timeline.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, default=str) + "\n")
            fh.flush()
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

    def subdir(self, *parts: str) -> Path:
        p = self.path.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def next_run_dir(self, name: str) -> Path:
        runs = self.path / "runs"
        runs.mkdir(exist_ok=True)
        n = len([p for p in runs.iterdir() if p.is_dir()]) + 1
        path = runs / f"{n:02d}-{name}"
        path.mkdir()
        return path

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One controller at a time works on an incident."""
        with open(self.path / ".lock", "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise Refused(f"incident {self.id} is being worked on by {holder}; wait for it to finish") from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"incidentctl pid {os.getpid()}")
            fh.flush()
            try:
                yield
            finally:
                fh.seek(0)
                fh.truncate()


def _operator() -> str:
    try:
        return os.environ.get("INCIDENTCTL_OPERATOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
