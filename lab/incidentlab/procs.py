"""Start, track and stop the lab's processes so that nothing is left behind.

Every process the lab starts gets its own session (so a group signal reaches its
children: nginx workers, pod processes) and carries a marker in its environment.
The marker makes cleanup independent of our own bookkeeping: after a crashed or
killed controller, ``sweep`` still finds every lab process by scanning /proc.
Records keep pid, process group and kernel start time, so a recycled pid is never
mistaken for ours.

nginx is the exception: it writes its process title over its environment, marker
included. Its master keeps its command line in the title, so ``sweep`` knows it by
its prefix (``-p <lab>/nginx/...``); its workers go with the master, and a master
that has to be killed takes its process group (the workers) along.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MARKER_ENV = "INCIDENTLAB_ID"


def lab_id_for(lab_dir: Path) -> str:
    return hashlib.sha256(str(lab_dir.resolve()).encode()).hexdigest()[:12]


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, pgid, starttime) of a process, or None when it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def running(pid: int, starttime: int | None = None) -> bool:
    """True when the process exists, is not a zombie, and (if given) started when recorded."""
    st = _stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return starttime is None or st[2] == starttime


def _reap(pid: int) -> None:
    # Only possible when we are the parent; elsewhere init owns the zombie.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


@dataclass
class ProcRecord:
    name: str
    pid: int
    pgid: int
    starttime: int
    argv: list[str]
    log: str

    @property
    def running(self) -> bool:
        return running(self.pid, self.starttime)


class ProcessTable:
    """The lab's processes, one JSON record per component under ``run_dir``."""

    def __init__(self, run_dir: Path, lab_id: str):
        self.run_dir = run_dir
        self.lab_id = lab_id
        # What an nginx master of this lab shows as its title (``run_dir`` is ``<lab>/run``).
        self._nginx_prefix = f" -p {run_dir.absolute().parent / 'nginx'}/".encode()

    def _path(self, name: str) -> Path:
        return self.run_dir / f"{name}.proc.json"

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ProcRecord:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ if env is None else env)
        full_env[MARKER_ENV] = self.lab_id
        with open(log_path, "ab") as log:
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=full_env,
                    cwd=cwd,
                    start_new_session=True,
                    close_fds=True,
                )
            except FileNotFoundError as exc:
                from .errors import LabError

                raise LabError(f"cannot start {name}: {argv[0]} is not installed ({exc.strerror})") from None
        st = _stat(proc.pid)
        rec = ProcRecord(name, proc.pid, proc.pid, st[2] if st else 0, argv, str(log_path))
        tmp = self._path(name).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(rec)))
        tmp.replace(self._path(name))
        return rec

    def get(self, name: str) -> ProcRecord | None:
        try:
            return ProcRecord(**json.loads(self._path(name).read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def records(self) -> list[ProcRecord]:
        if not self.run_dir.is_dir():
            return []
        out = []
        for p in sorted(self.run_dir.glob("*.proc.json")):
            rec = self.get(p.name[: -len(".proc.json")])
            if rec:
                out.append(rec)
        return out

    def forget(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> bool:
        """Signal the component's main process only (fault injection). True if it was running."""
        rec = self.get(name)
        if not rec or not rec.running:
            return False
        os.kill(rec.pid, sig)
        if sig == signal.SIGKILL:
            _wait_gone([rec.pid], 5.0)
        return True

    def stop(self, name: str, timeout: float = 5.0) -> None:
        """Stop a component and everything in its process group."""
        rec = self.get(name)
        if rec:
            pids = [p for p in _pids_in_group(rec.pgid) if self._is_ours(p)]
            if rec.running:
                pids.append(rec.pid)
            _terminate(set(pids), timeout)
            self.forget(name)

    def sweep(self) -> list[int]:
        """Pids of every live process that carries this lab's marker, and of this lab's nginx masters."""
        found = []
        me = os.getpid()
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if pid != me and self._is_ours(pid) and running(pid):
                found.append(pid)
        return found

    def _is_ours(self, pid: int) -> bool:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return False
        if f"{MARKER_ENV}={self.lab_id}".encode() in env.split(b"\0"):
            return True
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return title.startswith(b"nginx: master process ") and self._nginx_prefix in title.replace(b"\0", b" ")

    def stop_all(self, timeout: float = 5.0) -> int:
        """Stop every recorded component and any stray process with our marker. Returns how many were stopped."""
        pids = set(self.sweep())
        for rec in self.records():
            if rec.running:
                pids.add(rec.pid)
        _terminate(pids, timeout)
        # A component being stopped can start a process after the sweep (a pod its kubelet was starting); they
        # are all gone now, so a second sweep finds the last ones (a CI run found such a pod left running).
        late = set(self.sweep()) - pids
        _terminate(late, timeout)
        for rec in self.records():
            self.forget(rec.name)
        return len(pids | late)


def _pids_in_group(pgid: int) -> list[int]:
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st and st[1] == pgid and st[0] not in ("Z", "X"):
                out.append(int(entry.name))
    return out


def _wait_gone(pids: list[int] | set[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left:
        for pid in left:
            _reap(pid)
        left = [p for p in left if running(p)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return left


def _terminate(pids: set[int], timeout: float) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
            # A stopped process (the region-down fault freezes some) acts on SIGTERM only once continued.
            os.kill(pid, signal.SIGCONT)
    left = _wait_gone(pids, timeout)
    for pid in left:
        st = _stat(pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if st and st[1] == pid:
                # A group leader takes its group along: nginx workers outlive a killed master otherwise.
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
    _wait_gone(left, 3.0)
