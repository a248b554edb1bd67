"""Helpers shared by the test suite."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_CLAIMS: list = []  # open lock files: a claim lasts as long as the test process


def lab_port_base() -> int:
    """This test run's port base (claimed once per process)."""
    if not _BASE:
        _BASE.append(claim_port_base())
    return _BASE[0]


_BASE: list[int] = []


def claim_port_base(first: int = 10000, last: int = 22000, step: int = 2000) -> int:
    """A port range of 2000 ports for this test run, not used by any other test run on the machine.

    Several checkouts (CI, worktrees) may run the suite at once; each claims a range with a
    lock file held for the life of the process. The lab uses base+0..999, the lifecycle
    tests base+1000..1999. INCIDENTLAB_TEST_PORT_BASE forces a base. The ranges stay below
    Linux's ephemeral ports (32768-60999): with the cluster's pods and probes, thousands of
    client sockets (many in TIME-WAIT) would otherwise take some of a second lab's ports.
    """
    import fcntl
    import os
    import socket

    forced = os.environ.get("INCIDENTLAB_TEST_PORT_BASE")
    if forced:
        return int(forced)
    lock_dir = "/tmp/incidentlab-test-ports"
    os.makedirs(lock_dir, exist_ok=True)
    for base in range(first, last + 1, step):
        fh = open(f"{lock_dir}/{base}.lock", "w")  # noqa: SIM115 - held open on purpose
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            continue
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", base + 306))
            except OSError:
                fh.close()
                continue
        _CLAIMS.append(fh)
        return base
    raise RuntimeError(f"no free port range for the test lab between {first} and {last + step}")


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll until ``check`` returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # the condition may raise while the system settles
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else "")
    )


def incidentctl(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real command line, as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "incidentctl", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def db(lab, name: str, role: str = "app", database: str | None = "shop"):
    """A TCP login to one lab database as one of the lab's accounts."""
    import pymysql

    from incidentlab.config import DB_USERS, HOST

    return pymysql.connect(
        host=HOST,
        port=lab.cfg.ports[name],
        user=DB_USERS[role],
        password=lab.secrets()[role],
        database=database,
        autocommit=True,
        connect_timeout=2,
    )


def scalar(conn, sql: str, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]


# Collections that are no dependency of the project (kubernetes.core, community.mysql) are taken from the PyPI
# `ansible` bundle whose ansible-core matches ours (ansible 12 = ansible-core 2.19), once, into a cache outside the
# checkout (so that no linter of the project reads it): ~/.cache/incident-response-tests, or INCIDENT_TEST_CACHE.
ANSIBLE_BUNDLE = "ansible==12.3.0"


def bundled_collections(*names: str):
    """A collections path holding these collections (``kubernetes.core``, ``community.mysql``) of the bundle:
    `pip download --no-deps` of it (about 3 s) when one is missing, each extracted once, kept for later runs."""
    import fcntl
    import os
    import shutil
    import tempfile
    import zipfile
    from pathlib import Path

    base = os.environ.get("INCIDENT_TEST_CACHE") or Path.home() / ".cache" / "incident-response-tests"
    cache = Path(base) / ANSIBLE_BUNDLE.replace("==", "-")
    root = cache / "ansible_collections"
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs download it once
        missing = [n for n in names if not (root / n.replace(".", "/") / "MANIFEST.json").exists()]
        if not missing:
            return cache
        with tempfile.TemporaryDirectory(dir=cache.parent) as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", ANSIBLE_BUNDLE, "-d", tmp],
                check=True,
                capture_output=True,
                timeout=600,
            )
            wheel = next(Path(tmp).glob("ansible-*.whl"))
            staging = Path(tmp) / "collections"
            with zipfile.ZipFile(wheel) as z:
                for name in missing:
                    prefix = f"ansible_collections/{name.replace('.', '/')}/"
                    z.extractall(staging, [n for n in z.namelist() if n.startswith(prefix)])
                    target = root / name.replace(".", "/")
                    shutil.rmtree(target, ignore_errors=True)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    (staging / prefix).rename(target)  # the collection appears whole or not at all
    return cache


PROJECT_ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
COLLECTIONS_PATH = PROJECT_ROOT / "collection"


def ansible_env() -> dict[str, str]:
    """The environment incidentctl gives Ansible (incidentctl.project.ansible_env, the one builder):
    the module, playbook and molecule tiers run the strategy operators run (mitogen's when installed)."""
    from incidentctl.project import ansible_env as project_ansible_env

    return project_ansible_env(PROJECT_ROOT)


def run_module(
    module: str, args: dict | None = None, *, check: bool = False, diff: bool = False, env: dict | None = None
) -> dict:
    """Run one module task on localhost through ansible-runner, as a playbook task would, and return its result.

    ``module`` may be short (``service_health``) for ``incident.response.service_health``.
    The result dict carries ``failed`` and ``msg`` when the module failed. ``env`` adds to Ansible's environment.
    """
    import json
    import tempfile

    import ansible_runner

    if "." not in module:
        module = f"incident.response.{module}"
    with tempfile.TemporaryDirectory(prefix="run-module-") as pdd:
        flags = " ".join(f for f, on in (("--check", check), ("--diff", diff)) if on)
        runner = ansible_runner.run(
            private_data_dir=pdd,
            host_pattern="localhost",
            module=module,
            module_args=json.dumps(args or {}),
            inventory=f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}",
            envvars={**ansible_env(), **(env or {})},
            cmdline=flags or None,
            quiet=True,
        )
        for event in runner.events:
            if event["event"] in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
                res = dict(event["event_data"]["res"])
                res.setdefault("failed", event["event"] != "runner_on_ok")
                return res
        raise AssertionError(f"{module} produced no result (status {runner.status}): {runner.stdout.read()[-2000:]}")


class PlaybookRun:
    """What one run of a project playbook did: rc, status, set_stats data, and every task result."""

    def __init__(self, rc: int, status: str, data: dict, results: list[dict], stdout: str):
        self.rc, self.status, self.data, self.results, self.stdout = rc, status, data, results, stdout

    @property
    def ok(self) -> bool:
        return self.rc == 0 and self.status == "successful"

    @property
    def outcome(self) -> dict:
        return self.data.get("outcome") or {}

    def changed(self) -> list[str]:
        """Names of the tasks that reported a change."""
        return [r["task"] for r in self.results if r["changed"]]

    def result(self, task_prefix: str) -> dict:
        """The (last) result of the task whose name starts with ``task_prefix``."""
        found = [r for r in self.results if r["task"].startswith(task_prefix)]
        assert found, f"no task starting with {task_prefix!r} ran: {[r['task'] for r in self.results]}"
        return found[-1]


def run_playbook(
    playbook: str,
    lab=None,
    extravars: dict | None = None,
    *,
    check: bool = False,
    tags: str | None = None,
    skip_tags: str | None = None,
    env: dict | None = None,
    inventory: str = "inventories/lab",
) -> PlaybookRun:
    """Run one of the project's playbooks (playbooks/<playbook>.yml) as incidentctl does, through
    ansible-runner, against the test lab; return what it published and every task result."""
    import tempfile

    import ansible_runner

    envvars = {**ansible_env(), **(env or {})}
    if lab is not None:
        envvars["INCIDENTLAB_DIR"] = str(lab.cfg.lab_dir)
    flags = [f for f, on in (("--check", check), ("--diff", check)) if on]
    flags += [f"--tags {tags}"] if tags else []
    flags += [f"--skip-tags {skip_tags}"] if skip_tags else []
    results: list[dict] = []
    data: dict = {}

    def handler(event: dict) -> bool:
        nonlocal data
        kind, ed = event.get("event", ""), event.get("event_data") or {}
        if kind in ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"):
            res = ed.get("res") or {}
            status = kind[len("runner_on_") :]
            results.append(
                {"task": ed.get("task", ""), "status": status, "changed": bool(res.get("changed")), "res": res}
            )
        elif kind == "playbook_on_stats":
            data = ed.get("artifact_data") or {}
        return True

    with tempfile.TemporaryDirectory(prefix="run-playbook-") as pdd:
        runner = ansible_runner.run(
            private_data_dir=pdd,
            project_dir=str(PROJECT_ROOT / "playbooks"),
            playbook=f"{playbook}.yml",
            inventory=str(PROJECT_ROOT / inventory),
            extravars=extravars or {},
            envvars=envvars,
            cmdline=" ".join(flags) or None,
            event_handler=handler,
            quiet=True,
        )
        stdout = runner.stdout.read()
    return PlaybookRun(runner.rc if runner.rc is not None else -1, runner.status, data, results, stdout)


def secret_leaks(root, secrets) -> list[tuple[str, str]]:
    """Every file under ``root`` that holds one of ``secrets``: (path relative to root, a hint).

    The one scan of the secrets tests: the record of a real response must give an empty list, and
    the record of a playbook that leaks one must not (so the scan is known to catch a leak). Files
    are read as bytes (any file, any encoding); a secret also counts in base64, as a Secret's data
    or a basic-auth header would carry it. The hint shows only the first characters of the secret.
    """
    import base64
    from pathlib import Path

    forms = []
    for s in {s for s in secrets if s}:
        forms.append((s.encode(), f"{s[:4]}..."))
        # The whole groups of its base64 form: found also at the start of a longer encoded value.
        forms.append((base64.b64encode(s.encode())[: len(s.encode()) // 3 * 4], f"{s[:4]}... (base64)"))
    leaks = []
    for path in sorted(Path(root).rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            leaks += [(str(path.relative_to(root)), hint) for form, hint in forms if form in data]
    return leaks
