"""An execution node for the tests: another network endpoint, reached only over SSH.

The node is a network namespace of its own (its own interfaces, addresses, routes and loopback)
joined to this machine by a veth pair on a /30 of 10.200.0.0/16 that exists only while the test
runs; Debian's sshd listens inside it on the node's veth address, with a host key and a client
key made for the test. Nothing else enters it: the controller reaches the node only through SSH.

The node must reach the lab, whose services bind 127.0.0.1 of *this* namespace, which the node's
own loopback is not. Two relays carry exactly the lab's ports across the veth link, so the lab's
inventory (every address 127.0.0.1) works on the node unchanged, as it does on the controller:
one in the node listens on the node's 127.0.0.1 and connects to this side's veth address; one
here listens on that veth address only and connects to 127.0.0.1. Every byte between the node
and the lab crosses the veth pair.

What a namespace does not separate: the filesystem and the process table. The node therefore
sees the lab's state directory (ports, generated secrets, kubeconfig, the global nginx's files)
at the same path, as a production node would have its inventory's data and secrets of its own;
the controller's incident record reaches the node only through the SSH stream (see
incidentctl.executor). Setting up namespaces needs root, as the tests already do.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from support import wait_for

LOCK_DIR = Path("/tmp/incidentctl-test-nodes")
RELAY = Path(__file__).with_name("tcp_relay.py")
SSHD = "/usr/sbin/sshd"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _in_ns(ns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


class ExecutionNode:
    """``with ExecutionNode(workdir) as node:`` a namespace, its sshd and relays; gone at exit, even on failure."""

    def __init__(self, workdir: Path, bin_dir: str | None = None):
        self.workdir = workdir
        self.bin_dir = bin_dir or os.path.dirname(sys.executable)  # the node's Python environment
        self.lock = None
        self.index = -1
        self.sshd: subprocess.Popen | None = None
        self.relays: list[subprocess.Popen] = []

    # -- names and addresses ----------------------------------------------------------------------
    @property
    def ns(self) -> str:
        return f"icnode{self.index}"

    @property
    def host_if(self) -> str:
        return f"icn{self.index}h"

    @property
    def node_if(self) -> str:
        return f"icn{self.index}n"

    @property
    def host_addr(self) -> str:
        return f"10.200.{self.index}.1"

    @property
    def addr(self) -> str:
        return f"10.200.{self.index}.2"

    @property
    def url(self) -> str:
        return f"ssh://root@{self.addr}{self.bin_dir}"

    @property
    def ssh_config(self) -> Path:
        return self.workdir / "ssh_config"

    def env(self) -> dict[str, str]:
        """What incidentctl needs to trust the node and be trusted by it (the test's keys)."""
        return {"INCIDENTCTL_SSH_CONFIG": str(self.ssh_config)}

    # -- life cycle ---------------------------------------------------------------------------------
    def __enter__(self) -> ExecutionNode:
        self._claim()
        try:
            self._network()
            self._keys()
            self.start_sshd()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _claim(self) -> None:
        """A /30 no other test run on this machine uses (lock files, like the lab's port ranges)."""
        LOCK_DIR.mkdir(exist_ok=True)
        for index in range(64):
            fh = open(LOCK_DIR / f"{index}.lock", "w")  # noqa: SIM115 - held while the node lives
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                continue
            self.lock, self.index = fh, index
            self._remove_network()  # leftovers of a run that was killed before its teardown
            return
        raise RuntimeError("no free test node slot in /tmp/incidentctl-test-nodes")

    def _network(self) -> None:
        _ip("netns", "add", self.ns)
        _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.node_if)
        _ip("link", "set", self.node_if, "netns", self.ns)
        _ip("addr", "add", f"{self.host_addr}/30", "dev", self.host_if)
        _ip("link", "set", self.host_if, "up")
        _ip("-n", self.ns, "addr", "add", f"{self.addr}/30", "dev", self.node_if)
        _ip("-n", self.ns, "link", "set", self.node_if, "up")
        _ip("-n", self.ns, "link", "set", "lo", "up")

    def _keys(self) -> None:
        w = self.workdir
        w.mkdir(parents=True, exist_ok=True)
        for name in ("host_key", "client_key"):
            if not (w / name).exists():
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"test-{name}", "-f", str(w / name)],
                    check=True,
                )
        (w / "authorized_keys").write_text((w / "client_key.pub").read_text())
        host_pub = " ".join((w / "host_key.pub").read_text().split()[:2])
        (w / "known_hosts").write_text(f"{self.addr} {host_pub}\n")
        (w / "sshd_config").write_text(
            f"ListenAddress {self.addr}\nPort 22\nHostKey {w / 'host_key'}\nPidFile {w / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {w / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "PrintMotd no\nLogLevel ERROR\n"
        )
        self.ssh_config.write_text(
            f"Host {self.addr}\n  User root\n  IdentityFile {w / 'client_key'}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {w / 'known_hosts'}\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n  LogLevel ERROR\n"
        )

    def start_sshd(self) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        log = open(self.workdir / "sshd.log", "a")  # noqa: SIM115 - sshd keeps it
        self.sshd = subprocess.Popen(
            _in_ns(self.ns, SSHD, "-D", "-e", "-f", str(self.workdir / "sshd_config")), stderr=log, stdout=log
        )
        wait_for(lambda: self._port_open(self.addr, 22), 30, f"sshd on {self.addr}:22")

    def stop_sshd(self) -> None:
        """The node's SSH server goes away (the listener; sessions are processes of their own)."""
        if self.sshd and self.sshd.poll() is None:
            self.sshd.terminate()
            self.sshd.wait(timeout=10)
        wait_for(lambda: not self._port_open(self.addr, 22), 30, "sshd to stop listening")

    def relay(self, ports: list[int]) -> None:
        """Carry these TCP ports of this machine's 127.0.0.1 to the node's own 127.0.0.1, across the veth."""
        here = [sys.executable, str(RELAY), self.host_addr, "127.0.0.1", *map(str, ports)]
        there = _in_ns(self.ns, sys.executable, str(RELAY), "127.0.0.1", self.host_addr, *map(str, ports))
        for argv in (here, there):
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.relays.append(proc)
            line = proc.stdout.readline().strip()  # the relay says "ready" once every port listens
            if line != "ready":
                raise RuntimeError(f"relay did not start: {line} {proc.stderr.read()[-500:]}")

    def processes(self) -> list[int]:
        """Every process whose network is the node's (sshd, its sessions, the worker, the playbook)."""
        res = _ip("netns", "pids", self.ns, check=False)
        return [int(p) for p in res.stdout.split()]

    def session_processes(self) -> list[int]:
        """The node's processes besides its sshd listener and the lab relay: what runs a job."""
        keep = {p.pid for p in [self.sshd, *self.relays] if p}
        relay_in_ns = {pid for pid in self.processes() if "tcp_relay.py" in _cmdline(pid)}
        return [p for p in self.processes() if p not in keep and p not in relay_in_ns]

    def kill_everything(self) -> None:
        """The node dies: every process in it, SIGKILL, the relays and the SSH server included."""
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not self.processes(), 30, "every process of the node to be gone")

    def close(self) -> None:
        for proc in [*self.relays, self.sshd]:
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        self.relays = []
        if self.index >= 0:
            deadline = time.monotonic() + 10
            while self.processes() and time.monotonic() < deadline:
                for pid in self.processes():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)
            self._remove_network()
        if self.lock:
            self.lock.close()
            self.lock = None

    def _remove_network(self) -> None:
        if self.ns in _ip("netns", "list", check=False).stdout.split():
            for pid in self.processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _ip("netns", "del", self.ns, check=False)  # the veth pair goes with it
        _ip("link", "del", self.host_if, check=False)

    @staticmethod
    def _port_open(host: str, port: int) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex((host, port)) == 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def netns_exists(name: str) -> bool:
    return name in _ip("netns", "list", check=False).stdout.split()


def link_exists(name: str) -> bool:
    return _ip("link", "show", name, check=False).returncode == 0
