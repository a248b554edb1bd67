"""The shim that keeps ansible-playbook on a leash runs a Python tool of its own interpreter in a fork of itself:
the tool's output, exit handlers, threads and exit status are those of a normal run, and a tool of another
interpreter still runs as a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from incidentctl import supervise

# A tool as pip installs it (a script with its interpreter's shebang) that leaves work for the end of the run: a
# line not yet flushed, an exit handler, a thread that is still running.
TOOL_BODY = """
import atexit, sys, threading, time
out = sys.argv[1]
def at_exit():
    with open(out, "a") as fh:
        fh.write("exit handler ran\\n")
atexit.register(at_exit)
def late():
    time.sleep(0.2)
    with open(out, "a") as fh:
        fh.write("thread finished\\n")
threading.Thread(target=late).start()
with open(out, "a") as fh:
    fh.write(f"argv {sys.argv[1:]} in the shim's process: {'incidentctl.supervise' in sys.modules}, "
             f"routing cached: {'incidentctl.playbook_process' in sys.modules}\\n")
sys.stdout.write("no newline, not flushed")
sys.exit(int(sys.argv[2]))
"""


def tool(tmp_path: Path, interpreter: str) -> Path:
    path = tmp_path / "bin" / supervise.TOOL
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!{interpreter}\n" + textwrap.dedent(TOOL_BODY))
    path.chmod(0o755)
    return path


def run_shim(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    shim = supervise.install(tmp_path / "shim")
    env = {
        **os.environ,
        "PATH": f"{shim}{os.pathsep}{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        supervise.ENV_SHIM_DIR: str(shim),
        supervise.ENV_PARENT: str(os.getpid()),
    }
    return subprocess.run(
        [str(shim / supervise.TOOL), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_tool_of_the_shim_s_interpreter_runs_in_its_fork_with_a_normal_end(tmp_path):
    path = tool(tmp_path, sys.executable)
    assert supervise.runs_here(str(path))
    out = tmp_path / "out.txt"
    done = run_shim(tmp_path, str(out), "3")
    assert done.returncode == 3, done.stderr
    assert done.stdout == "no newline, not flushed"
    lines = out.read_text().splitlines()
    assert lines[0] == f"argv ['{out}', '3'] in the shim's process: True, routing cached: True"
    # the thread was waited for before the exit handlers ran, as at the end of any interpreter
    assert lines[1:] == ["thread finished", "exit handler ran"]


def test_a_tool_of_another_interpreter_runs_as_a_process_of_its_own(tmp_path):
    other = tmp_path / "python-elsewhere"
    other.symlink_to(sys.executable)  # the same binary under another name: another installation
    path = tool(tmp_path, str(other))
    assert not supervise.runs_here(str(path))
    out = tmp_path / "out.txt"
    done = run_shim(tmp_path, str(out), "0")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "no newline, not flushed"
    lines = out.read_text().splitlines()
    assert lines == [
        f"argv ['{out}', '0'] in the shim's process: False, routing cached: False",
        "thread finished",
        "exit handler ran",
    ]


def test_a_script_run_with_arguments_of_its_interpreter_is_not_run_here(tmp_path):
    path = tmp_path / "tool"
    path.write_text(f"#!{sys.executable} -E\nprint('hi')\n")
    assert not supervise.runs_here(str(path))
    assert not supervise.runs_here(str(tmp_path / "missing"))
