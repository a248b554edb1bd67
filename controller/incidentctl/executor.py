"""Where a playbook runs: on this machine, or on an execution node reached over SSH.

A region's APIs and databases are often reachable only from inside it, so a procedure may have
to run on a machine there. That machine is an *execution node*: it runs ``ansible-runner worker``,
the same protocol AWX's execution nodes run under receptor. The controller streams the job to it
(``ansible-runner transmit``: the private data dir, the project and its arguments), reads the
node's events back (``ansible-runner process``) into the same EventRecorder as a local run, and
gets the runner's artifacts back into the run's directory. One run path, two executors:

* ``local``: ansible-runner starts ansible-playbook here, behind the supervising shim;
* ``ssh://[user@]host[:port][/bin/dir]``: the job goes through ``ssh``; on the node, supervise.py's
  leash runs ``<bin/dir>/ansible-runner worker`` (PATH when no directory is given) and stops the
  run's whole tree when the SSH channel closes.

What travels to the node with each run: the playbooks with the ``incident.response`` collection
beside them (``project/collection``, the controller's very version: no drift between what the
controller lists as destructive and what the node runs), the inventory, and a copy of the
incident record without its run artifacts (``incident_dir`` points at it there: the playbooks read
triage findings and changes from it and write snapshots, evidence and the postmortem into it).
What comes back: the events, the runner's artifacts, and the record's copy, whose new or changed
files are merged into the local record with the node's paths replaced by the local ones. The node
needs Python with ansible-runner, ansible-core and the collection's requirements.txt
(``incidentctl executor check`` says what it lacks), and SSH trust for the controller's key.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import ansible_runner
import pexpect

from . import supervise
from .errors import BadInput, ControllerError

ENV_SSH_CONFIG = "INCIDENTCTL_SSH_CONFIG"  # an ssh_config(5) file for the nodes (keys, known hosts, ports)
ENV_FORWARD = "INCIDENTCTL_FORWARD_ENV"  # more environment variables to pass to the node (comma-separated)
FORWARD_PREFIXES = ("INCIDENT_", "INCIDENTLAB_")  # the inventories' env lookups (secrets, the lab's directory)
CONNECT_TIMEOUT = 5  # seconds for an unreachable node to be named
NODE_WORKDIR = "/tmp"  # where the worker unpacks a job on the node (a fresh, unguessable directory per run)
RECORD_SKIP = {"runs", ".lock", ".lock.tmp", "report.html"}  # not shipped: big, or the controller's alone
COLLECTION_SKIP = shutil.ignore_patterns("output", "__pycache__", "*.pyc", ".git", "*.tar.gz")
IDENT = "artifacts"  # ansible-runner's ident: artifacts/artifacts/ in the run dir, as for a local run

# Run on the node with its Python: what it has, as one JSON line (standard library only).
CHECK_SOURCE = r"""
import json, os, shutil, sys
from importlib import metadata
out = {"python": sys.version.split()[0], "executable": sys.executable, "packages": {}}
for dist in sys.argv[3:]:
    try:
        out["packages"][dist] = metadata.version(dist)
    except metadata.PackageNotFoundError:
        out["packages"][dist] = None
out["runner"] = shutil.which("ansible-runner", path=sys.argv[2] or os.environ.get("PATH", ""))
out["workdir_writable"] = os.access(sys.argv[1], os.W_OK)
try:
    import ansible_mitogen  # noqa: F401
    out["mitogen"] = True
except ImportError:
    out["mitogen"] = False
print(json.dumps(out))
"""


class NodeUnavailable(ControllerError):
    """The node cannot run the job: said before anything runs."""


class NodeLost(ControllerError):
    """The node went away during a run: the incident is left interrupted, to be continued."""

    interrupts_run = True


def collection_root(project_root: Path) -> Path:
    return project_root / "collection" / "ansible_collections" / "incident" / "response"


def requirements(project_root: Path) -> list[str]:
    """What the node's Python must have: ansible-runner, ansible-core and the collection's requirements."""
    names = ["ansible-runner", "ansible-core"]
    try:
        lines = (collection_root(project_root) / "requirements.txt").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line.split(";")[0].split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip())
    return names


@dataclass
class Executor:
    """Runs ansible-runner jobs for run_playbook. The base class is the local one."""

    url: str = "local"

    @property
    def remote(self) -> bool:
        return False

    def ensure_ready(self, project_root: Path) -> None:
        """Raise NodeUnavailable when a job cannot run there; nothing to check here."""

    def job(self, incident_path: Path, run_dir: Path) -> Job:
        return LocalJob(self, incident_path, run_dir)


@dataclass
class SshExecutor(Executor):
    user: str | None = None
    host: str = ""
    port: int | None = None
    bin_dir: str = ""  # the node's Python environment, where ansible-runner is; empty: its PATH
    facts: dict = field(default_factory=dict)  # what the last check found on the node

    @property
    def remote(self) -> bool:
        return True

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def python(self) -> str:
        return f"{self.bin_dir}/python3" if self.bin_dir else "python3"

    def ssh_argv(self, command: list[str]) -> list[str]:
        argv = ["ssh", "-T", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}"]
        # A node that vanishes mid-run (power, network) is noticed within 15 s, not at TCP's timeout.
        argv += ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]
        if os.environ.get(ENV_SSH_CONFIG):
            argv += ["-F", os.environ[ENV_SSH_CONFIG]]
        if self.port:
            argv += ["-p", str(self.port)]
        # ssh hands the command to the node's login shell as one string: quote every word.
        return [*argv, "--", self.destination, " ".join(shlex.quote(c) for c in command)]

    def inspect(self, project_root: Path) -> dict:
        """Ask the node what it has. Raises NodeUnavailable when it cannot even be asked."""
        command = [self.python, "-c", CHECK_SOURCE, NODE_WORKDIR, self.bin_dir, *requirements(project_root)]
        try:
            res = subprocess.run(
                self.ssh_argv(command),
                capture_output=True,
                text=True,
                timeout=CONNECT_TIMEOUT + 25,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise NodeUnavailable("ssh is not installed on this machine (Debian: openssh-client)") from None
        except subprocess.TimeoutExpired:
            raise NodeUnavailable(f"execution node {self.url} did not answer within 30 s") from None
        if res.returncode == 255:
            raise NodeUnavailable(f"execution node {self.url} cannot be reached: {_ssh_reason(res.stderr)}")
        if res.returncode == 127:
            raise NodeUnavailable(
                f"execution node {self.url} has no {self.python}: give the bin directory of its Python "
                "environment in the URL (ssh://user@host/opt/venv/bin)"
            )
        try:
            facts = json.loads(res.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            first = (res.stderr.strip().splitlines() or ["no answer"])[-1]
            raise NodeUnavailable(f"execution node {self.url} did not run the check: {first[:200]}") from None
        self.facts = facts
        return facts

    def problems(self, facts: dict) -> list[str]:
        """What the node lacks to run a job, one line each."""
        found = [
            f"{dist} is not installed for {facts.get('executable')}" for dist, v in facts["packages"].items() if not v
        ]
        if not facts.get("runner"):
            found.append(f"no ansible-runner in {self.bin_dir or 'the PATH of a non-interactive login'}")
        if not facts.get("workdir_writable"):
            found.append(f"{NODE_WORKDIR} is not writable for {self.user or 'the login user'}")
        return found

    def ensure_ready(self, project_root: Path) -> None:
        missing = self.problems(self.facts or self.inspect(project_root))
        if missing:
            raise NodeUnavailable(
                f"execution node {self.url} cannot run playbooks: {'; '.join(missing)} "
                f"(incidentctl executor check {self.url})"
            )

    def job(self, incident_path: Path, run_dir: Path) -> Job:
        return SshJob(self, incident_path, run_dir)


def parse(url: str | None) -> Executor:
    """``local`` or ``ssh://[user@]host[:port][/bin/dir]``; anything else is bad input."""
    text = (url or "local").strip()
    if text == "local":
        return Executor()
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        raise BadInput(f"executor {text!r}: the port is not a number") from None
    if parts.scheme != "ssh" or not parts.hostname or parts.query or parts.fragment or parts.password:
        raise BadInput(f"executor {text!r} is not local nor ssh://[user@]host[:port][/bin/dir of its Python]")
    bin_dir = parts.path.rstrip("/")
    return SshExecutor(url=text, user=parts.username, host=parts.hostname, port=port, bin_dir=bin_dir)


def _primary_region(hostvars: dict) -> str | None:
    """The region that normally takes the traffic: ``primary_region``, or the first of ``region_preference`` when
    primary_region is derived from it (ansible-inventory leaves templates unrendered)."""
    primary = hostvars.get("primary_region")
    if isinstance(primary, str) and "{{" not in primary:
        return primary
    preference = hostvars.get("region_preference")
    if isinstance(preference, list) and preference and isinstance(preference[0], str) and "{{" not in preference[0]:
        return preference[0]
    return None


def for_platform(hostvars: dict, explicit: str | None, region: str | None) -> Executor:
    """The executor of a command: ``--executor``, else the inventory's ``incident_executors`` entry for
    ``--region`` (default: the platform's primary region), else local."""
    if explicit:
        return parse(explicit)
    table = hostvars.get("incident_executors") or {}
    if not isinstance(table, dict):
        raise BadInput("incident_executors in the inventory must map regions to executors (local or ssh://...)")
    wanted = region or _primary_region(hostvars)
    if table and not wanted:
        # Running locally what the inventory sends to a node would be a guess, and maybe the wrong side of a partition.
        raise BadInput(
            "incident_executors is set but the primary region cannot be read from the inventory without templating:"
            " make primary_region (or region_preference's first entry) a literal, or give --region"
        )
    if region and region not in table:
        known = ", ".join(sorted(table)) or "none"
        raise BadInput(f"no executor for region {region!r} in the inventory's incident_executors (known: {known})")
    url = table.get(wanted) if wanted else None
    if url is not None and (not isinstance(url, str) or "{{" in url):
        raise BadInput(f"incident_executors.{wanted} must be a plain string: local or ssh://[user@]host[:port][/bin]")
    return parse(url)


def _ssh_reason(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("Warning: Permanently")]
    text = lines[-1] if lines else "ssh failed"
    if "Permission denied" in text:
        return f"{text}: the node does not trust this controller's SSH key (add it to the login's authorized_keys)"
    if "Host key verification failed" in text or "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
        return f"{text}: its host key is not in known_hosts, or has changed"
    return text[:300]


# -- jobs: one playbook run on one executor -------------------------------------------------------


class Job:
    """One run. ``incident_dir`` is the record as the playbook sees it; ``rewrites`` map its paths back."""

    incident_dir: str
    rewrites: dict[str, str]

    def run(self, **kwargs) -> tuple[str, int]:
        raise NotImplementedError

    def finish(self) -> None:
        """Bring what the run wrote into the incident record."""

    def cleanup(self) -> None:
        """Remove what the job left on this machine."""


class LocalJob(Job):
    def __init__(self, executor: Executor, incident_path: Path, run_dir: Path):
        self.run_dir = run_dir
        self.incident_dir = str(incident_path)
        self.rewrites = {}

    def run(self, *, project, playbook, inventory, extravars, cmdline, recorder) -> tuple[str, int]:
        runner = ansible_runner.run(
            private_data_dir=str(self.run_dir),
            project_dir=str(project.playbooks),
            playbook=playbook,
            inventory=str(inventory),
            extravars=extravars,
            envvars=supervised_env(project.envvars(), self.run_dir.parents[2] / ".bin"),
            cmdline=cmdline,
            event_handler=recorder,
            # Our own callback keeps ansible-runner from taking SIGTERM/SIGINT over (it would SIGKILL the
            # shim and orphan the playbook's workers): they raise KeyboardInterrupt here instead.
            cancel_callback=never_cancel,
            quiet=True,
            ident=IDENT,
            rotate_artifacts=0,
        )
        return runner.status, runner.rc if runner.rc is not None else -1


class SshJob(Job):
    def __init__(self, executor: SshExecutor, incident_path: Path, run_dir: Path):
        self.node = executor
        self.incident_path = incident_path
        self.run_dir = run_dir
        name = f"incidentctl-{incident_path.name}-{run_dir.name}-{secrets.token_hex(6)}"
        self.remote_dir = f"{NODE_WORKDIR}/{name}"
        self.incident_dir = f"{self.remote_dir}/artifacts/{IDENT}/incident"
        self.rewrites = {self.incident_dir: str(incident_path)}
        self.staging = Path(tempfile.mkdtemp(prefix=f"incidentctl-transmit-{incident_path.name}-{run_dir.name}-"))

    def _stage(self, project, inventory: Path) -> Path:
        """The private data dir to transmit: project (playbooks, ansible.cfg, collection), inventory, record."""
        proj = self.staging / "project"
        shutil.copytree(project.playbooks, proj, ignore=shutil.ignore_patterns("__pycache__"))
        if (project.root / "ansible.cfg").is_file():
            shutil.copy2(project.root / "ansible.cfg", proj / "ansible.cfg")
        if collection_root(project.root).is_dir():  # else the node has it installed (ANSIBLE_COLLECTIONS_PATH)
            shutil.copytree(
                collection_root(project.root),
                proj / "collection" / "ansible_collections" / "incident" / "response",
                ignore=COLLECTION_SKIP,
            )
        inv = self.staging / "inventory" / inventory.name
        if inventory.is_dir():
            shutil.copytree(inventory, inv, symlinks=False)  # links outside the inventory would dangle there
        else:
            inv.parent.mkdir(parents=True)
            shutil.copy2(inventory, inv)
        shutil.copytree(
            self.incident_path,
            self.staging / "artifacts" / IDENT / "incident",
            ignore=lambda d, names: [n for n in names if Path(d) == self.incident_path and n in RECORD_SKIP],
        )
        return inv

    def _env(self) -> dict[str, str]:
        proj = f"{self.remote_dir}/project"
        from .project import ansible_settings

        env = {
            **ansible_settings(),
            "ANSIBLE_CONFIG": f"{proj}/ansible.cfg",
            # the shipped collection first; one installed on the node is found when none is shipped
            "ANSIBLE_COLLECTIONS_PATH": f"{proj}/collection:~/.ansible/collections:/usr/share/ansible/collections",
        }
        extra = {n.strip() for n in os.environ.get(ENV_FORWARD, "").split(",") if n.strip()}
        for key, value in os.environ.items():
            if key.startswith(FORWARD_PREFIXES) or key in extra:
                env.setdefault(key, value)
        return env

    def run(self, *, project, playbook, inventory, extravars, cmdline, recorder) -> tuple[str, int]:
        inv = self._stage(project, inventory)
        stream = self.staging.parent / f"{self.staging.name}.stream"
        try:
            with open(stream, "wb") as out:
                ansible_runner.run(
                    streamer="transmit",
                    _output=out,
                    private_data_dir=str(self.staging),
                    playbook=playbook,
                    inventory=str(inv),
                    extravars=extravars,
                    envvars=self._env(),
                    cmdline=cmdline,
                    ident=IDENT,
                    rotate_artifacts=0,
                    quiet=True,
                )
            runner = self.node.facts.get("runner") or "ansible-runner"
            command = [self.node.python, "-c", _leash_source(), supervise.NODE_FLAG, self.remote_dir, runner]
            if supervise.mitogen_env():  # the node uses mitogen when the controller does and it has it
                command.append("--mitogen")
            # The job (and the secrets in its env/) now lives only in the open stream: nothing of it is left
            # on this disk if the controller is killed from here on.
            shutil.rmtree(self.staging, ignore_errors=True)
            with open(stream, "rb") as job_in, tempfile.TemporaryFile() as ssh_err:
                stream.unlink()
                proc = subprocess.Popen(
                    self.node.ssh_argv(command),
                    stdin=job_in,
                    stdout=subprocess.PIPE,
                    stderr=ssh_err,
                    preexec_fn=supervise.die_with_parent,
                )
                reader = _StreamReader(proc.stdout)
                processor = None
                try:
                    processor = ansible_runner.run(
                        streamer="process",
                        _input=reader,
                        private_data_dir=str(self.run_dir),
                        ident=IDENT,
                        event_handler=recorder,
                        cancel_callback=never_cancel,
                        quiet=True,
                    )
                except Exception:
                    if not reader.cut:  # a torn artifacts archive is a lost node; anything else is a bug
                        raise
                finally:
                    proc.stdout.close()
                    rc_ssh = proc.wait()
                ssh_err.seek(0)
                err = ssh_err.read().decode(errors="replace")
        finally:
            stream.unlink(missing_ok=True)
        if reader.cut or processor is None:
            why = _ssh_reason(err) if rc_ssh == 255 else f"the node's worker ended with {rc_ssh}"
            raise NodeLost(f"execution node {self.node.url} was lost during {playbook}: {why}")
        rc_file = self.run_dir / "artifacts" / IDENT / "rc"
        try:
            rc = int(rc_file.read_text().strip())
        except (OSError, ValueError):
            rc = -1
        # `process` says "successful" when the stream ended well; the playbook's own rc says whether it was.
        status = processor.status if rc == 0 or processor.status != "successful" else "failed"
        return status, rc

    def finish(self) -> None:
        """Merge the record's copy that came back: new or changed files, the node's paths made local."""
        copy = self.run_dir / "artifacts" / IDENT / "incident"
        if not copy.is_dir():
            return
        for src in sorted(p for p in copy.rglob("*") if p.is_file() and not p.is_symlink()):
            rel = src.relative_to(copy)
            if rel.parts[0] in RECORD_SKIP or rel.as_posix() in ("incident.json", "timeline.jsonl"):
                continue  # the controller writes these itself, all the time
            data = src.read_bytes()
            for remote, local in self.rewrites.items():
                data = data.replace(remote.encode(), local.encode())
            dest = self.incident_path / rel
            if dest.exists() and dest.read_bytes() == data:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.merge")
            tmp.write_bytes(data)
            tmp.replace(dest)
        shutil.rmtree(copy, ignore_errors=True)

    def cleanup(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


class _StreamReader:
    """The node's stream, as ansible-runner's Processor reads it; ``cut`` when it ended before the
    worker's last line (the node or the link died)."""

    def __init__(self, raw):
        self.raw = raw
        self.name = "<ssh>"
        self.cut = False
        self.done = False

    def readline(self, *args):
        line = self.raw.readline(*args)
        if not line and not self.done:
            self.cut = True
        elif line.startswith(b'{"eof"'):
            self.done = True
        return line

    def read(self, *args):
        data = self.raw.read(*args)
        if not data and not self.done:
            self.cut = True
        return data

    def __getattr__(self, name):  # close, closed, flush: Base64IO wants a whole file object
        return getattr(self.raw, name)


def _leash_source() -> str:
    return Path(supervise.__file__).read_text()


def _no_sleep_after_close() -> None:
    """ansible-runner closes ansible-playbook's pty once the process has exited and been reaped (its read loop
    runs while the child is alive), and ptyprocess then sleeps ``delayafterclose``, 0.1 s "to give the kernel
    time to update the process status": 0.1 s at the end of every run, before its result reaches anyone. The
    ptys spawned in this process skip that sleep; a child still alive at close is terminated as before."""
    spawn_pty = pexpect.spawn._spawnpty
    if getattr(spawn_pty, "no_sleep_after_close", False):
        return

    def _spawnpty(self, *args, **kwargs):
        pty = spawn_pty(self, *args, **kwargs)
        pty.delayafterclose = 0.0
        return pty

    _spawnpty.no_sleep_after_close = True
    pexpect.spawn._spawnpty = _spawnpty


_no_sleep_after_close()


def never_cancel() -> bool:
    """Given as every ansible-runner call's cancel_callback, it keeps ansible-runner from installing its
    own SIGTERM/SIGINT handlers (which swallow the signal, then SIGKILL the shim and orphan the playbook's
    workers): the signals raise KeyboardInterrupt in the controller instead, which stops the run."""
    return False


def supervised_env(envvars: dict[str, str], shim_dir: Path) -> dict[str, str]:
    """ansible-playbook started through the supervising shim: it dies with this process (see supervise)."""
    shim = str(supervise.install(shim_dir))
    return {
        **envvars,
        "PATH": f"{shim}{os.pathsep}{envvars.get('PATH', '')}",
        supervise.ENV_SHIM_DIR: shim,
        supervise.ENV_PARENT: str(os.getpid()),
    }
