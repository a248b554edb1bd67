"""Keep ansible-playbook on a leash: it and everything it starts die with the controller.

ansible-runner starts ansible-playbook in a session of its own and ignores SIGHUP for it, and
Ansible's workers and mitogen's contexts call setsid() and ignore SIGTERM: a SIGKILLed
controller used to leave a playbook that went on changing the platform with nobody recording
it. ``incidentctl`` therefore puts a shim named ``ansible-playbook`` first on the run's PATH.
The shim (this module) runs the real ansible-playbook as its child (in a fork of itself when
ansible-playbook is a script of the same Python: one interpreter start less, and no teardown of
Ansible's heap at the end, see run_here) and

* asks the kernel for SIGTERM when the controller dies (``PR_SET_PDEATHSIG``),
* adopts every orphaned descendant (``PR_SET_CHILD_SUBREAPER``), whatever session it moved to,
* on SIGTERM, SIGINT or SIGHUP terminates the whole tree, SIGTERM first, SIGKILL after
  ``GRACE`` seconds, and exits,
* passes the real exit status through otherwise.

Linux only (prctl); elsewhere it simply runs ansible-playbook.

On an execution node (``incidentctl`` streams a run there over SSH, see executor.py) the same
leash holds ``ansible-runner worker``: this file, standard library only, is sent as the remote
command (``python3 -c <this source> --node ...``), so the node needs no incidentctl. There the
controller's death shows as the SSH channel closing: the worker's stdout (shared with this process)
reports a hangup, and the whole tree on the node is stopped and the job's directory removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
GRACE = 3.0  # seconds between SIGTERM and SIGKILL for the tree
ENV_PARENT = "INCIDENTCTL_SUPERVISOR_PARENT"  # the controller's pid: the shim exits if it is already gone
ENV_SHIM_DIR = "INCIDENTCTL_SHIM_DIR"  # the shim's own directory, skipped when looking for the real tool
TOOL = "ansible-playbook"


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent() -> None:
    """preexec_fn for a child that must not outlive this process (the ssh to an execution node)."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: the fields follow the last ')'
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def kill_tree(grace: float = GRACE) -> None:
    """SIGTERM to every descendant, then SIGKILL to what is left after ``grace`` seconds."""
    me = os.getpid()
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        for pid in descendants(me):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap()
            if not descendants(me):
                return
            time.sleep(0.05)


def real_tool(tool: str = TOOL) -> str:
    shim_dir = os.environ.get(ENV_SHIM_DIR, "")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != shim_dir)
    found = shutil.which(tool, path=path)
    if not found:
        sys.stderr.write(f"ERROR! {tool} is not installed (looked in {path})\n")
        sys.exit(127)
    return found


def main(argv: list[str] | None = None, tool: str = TOOL) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [NODE_FLAG]:
        return node_main(argv[1:])
    parent = os.environ.get(ENV_PARENT)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent and os.getppid() != int(parent):
        return 143  # the controller died before the leash was on: run nothing
    _prctl(PR_SET_CHILD_SUBREAPER, 1)

    stopping = []

    def stop(signum, _frame):
        stopping.append(signum)
        kill_tree()
        sys.exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    path = real_tool(tool)
    if tool == TOOL and runs_here(path):
        pid = os.fork()
        if pid == 0:
            run_here(path, argv)  # never returns
        rc = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    else:
        rc = subprocess.Popen([path, *argv]).wait()
    # Whatever the playbook left behind (a worker, a mitogen context) goes with it.
    if descendants(os.getpid()):
        kill_tree(grace=1.0)
    return rc if rc >= 0 else 128 - rc


def runs_here(path: str) -> bool:
    """True when ``path`` is a Python script of this very interpreter (ansible-playbook installed beside
    incidentctl): the shim then runs it in a fork of itself (see run_here) instead of a new interpreter."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(4096)
    except OSError:
        return False
    words = first[2:].split() if first.startswith(b"#!") else []
    return len(words) == 1 and os.path.abspath(os.fsdecode(words[0])) == os.path.abspath(sys.executable)


def run_here(path: str, argv: list[str]) -> None:
    """Run the Python script ``path`` in this (forked) process as its own interpreter would, then end it at once
    (end_process: the interpreter's teardown of Ansible's heap cost each run 0.2 s after its last task)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    sys.argv = [path, *argv]
    with contextlib.suppress(Exception):  # an optimisation only (incidentctl is not on an execution node)
        from incidentctl import playbook_process

        playbook_process.install()
    code: object = 0
    try:
        import runpy

        runpy.run_path(path, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    except BaseException:  # what the interpreter would print and exit 1 for
        import traceback

        traceback.print_exc()
        code = 1
    end_process(code)


def end_process(code: object = 0) -> None:
    """Exit with ``code`` (a SystemExit's) as the interpreter would, without its teardown of the heap.

    Everything a normal exit does that matters runs: the non-daemon threads are joined, the exit handlers run
    (mitogen's waits for its multiplexers, logging's flushes its files), the standard streams are flushed. What
    is skipped is freeing every object one by one: 0.2 s after an Ansible run, 45 ms after an incidentctl command.
    """
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    with contextlib.suppress(Exception):
        getattr(threading, "_shutdown", lambda: None)()
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code & 0xFF)


NODE_FLAG = "--node"


def node_main(argv: list[str]) -> int:
    """On an execution node: ``--node PRIVATE_DATA_DIR RUNNER [--mitogen]``. Run ``RUNNER worker`` with this
    process's stdin/stdout (the SSH channel), and stop its whole tree when the channel goes away."""
    pdd, runner = argv[0], argv[1]
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    env = dict(os.environ)
    if os.path.dirname(runner):  # ansible-playbook lives beside ansible-runner, often not on a login's PATH
        env["PATH"] = os.path.dirname(runner) + os.pathsep + env.get("PATH", "")
    if "--mitogen" in argv[2:]:
        env.update(mitogen_env())

    def stop(signum, _frame):
        kill_tree()
        shutil.rmtree(pdd, ignore_errors=True)
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        child = subprocess.Popen([runner, "worker", "--private-data-dir", pdd, "--delete"], env=env)
    except OSError as exc:
        sys.stderr.write(f"cannot start {runner} on this node: {exc}\n")
        return 127
    # POLLERR/POLLHUP are reported whatever is asked for: the reader of our stdout (sshd) is gone.
    watch = select.poll()
    watch.register(sys.stdout.fileno(), 0)
    rc = None
    try:
        while rc is None:
            if watch.poll(250):  # nobody to tell: stderr went with the channel
                kill_tree()
                break
            rc = child.poll()
    finally:
        if descendants(os.getpid()):  # a worker killed alone would leave ansible-playbook running
            kill_tree(grace=1.0)
        shutil.rmtree(pdd, ignore_errors=True)
    rc = child.wait() if rc is None else rc
    return rc if rc >= 0 else 128 - rc


CACHED_STRATEGY = "incident_mitogen_linear"


def mitogen_env() -> dict[str, str]:
    """Use mitogen's strategy when it is installed: it cuts the per-task cost by more than half.

    Where incidentctl is installed (not on an execution node, which runs this file alone) the strategy is
    strategy/incident_mitogen_linear.py: mitogen's linear strategy that keeps what it computes about the
    modules it ships in a cache between runs (~0.4 s less before a run's first task)."""
    if os.environ.get("INCIDENTCTL_NO_MITOGEN"):
        return {}
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or not spec.submodule_search_locations:
        return {}
    strategy = Path(next(iter(spec.submodule_search_locations))) / "plugins" / "strategy"
    if not strategy.is_dir():
        return {}
    ours = Path(globals().get("__file__") or "/nonexistent").with_name("strategy")
    if (ours / f"{CACHED_STRATEGY}.py").is_file():
        return {"ANSIBLE_STRATEGY_PLUGINS": f"{ours}{os.pathsep}{strategy}", "ANSIBLE_STRATEGY": CACHED_STRATEGY}
    return {"ANSIBLE_STRATEGY_PLUGINS": str(strategy), "ANSIBLE_STRATEGY": "mitogen_linear"}


@contextlib.contextmanager
def stopping_children(grace: float = GRACE + 3.0):
    """On Ctrl-C or SIGTERM in the controller, stop the shims it started (each takes its tree down)
    and wait for them before the interruption goes on: a cancelled run stops within seconds."""
    try:
        yield
    except BaseException:
        me = os.getpid()
        kids = [pid for pid in descendants(me) if _ppid(pid) == me]
        for pid in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_running(pid) for pid in kids):
            _reap()
            time.sleep(0.05)
        raise


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _running(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def install(directory: Path, tool: str = TOOL) -> Path:
    """Write the shim for ``tool`` into ``directory`` (once) and return the directory, to go first on PATH.
    ``incidentctl watch`` keeps ansible-rulebook (and its JVM) on the same leash."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / tool
    text = f"#!{sys.executable}\nimport sys\nfrom incidentctl.supervise import main\nsys.exit(main(tool={tool!r}))\n"
    if not shim.exists() or shim.read_text() != text:
        tmp = directory / f".{tool}.tmp"
        tmp.write_text(text)
        tmp.chmod(0o755)
        tmp.replace(shim)
    return directory


if __name__ == "__main__":
    sys.exit(main())
