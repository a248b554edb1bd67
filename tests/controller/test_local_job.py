"""A local run's end: ansible-runner's pty of ansible-playbook closed at once, the exit status intact."""

from __future__ import annotations

import pexpect

from incidentctl import executor  # noqa: F401  (closes ptys without pexpect's sleep once imported)


def finished(child: pexpect.spawn) -> pexpect.spawn:
    """As ansible-runner's read loop leaves it: the output read to the end and the process reaped."""
    while child.isalive():
        child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=5)
    child.expect(pexpect.EOF, timeout=5)
    return child


def test_a_finished_run_s_pty_closes_without_sleeping_and_keeps_its_exit_status():
    for argv, rc in ((["true"], 0), (["sh", "-c", "echo done; exit 3"], 3)):
        child = finished(pexpect.spawn(argv[0], argv[1:]))
        assert child.ptyproc.delayafterclose == 0
        child.close()
        assert (child.exitstatus, child.signalstatus) == (rc, None)


def test_a_child_still_running_at_close_is_still_terminated():
    child = pexpect.spawn("sleep", ["60"])
    child.close(force=True)
    assert not child.isalive() and child.signalstatus is not None
