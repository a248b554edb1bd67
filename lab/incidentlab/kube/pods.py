"""The kubelet: pods of this region are real processes on this machine.

Each container of a scheduled pod runs the program its image maps to, as a child of the
emulator (same process group, so killing the group kills the pods), with the environment
resolved from the pod spec (env, valueFrom, envFrom) plus PORT, HOST, POD_NAME, REGION
and the lab marker. The kubelet keeps what a real one reports: container states with
restart counts, CrashLoopBackOff with exponential back-off, lastState.terminated,
readiness from HTTP probes, graceful termination (SIGTERM, then SIGKILL after the grace
period), logs in CRI format (one file per container instance) and CPU and memory from
/proc for the metrics API.

One deviation from a real cluster: every pod has IP 127.0.0.1 and listens on its own
port from the lab's pod port range; the port is in the Endpoints and in the pod
annotation ``incidentlab.io/port``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import HOST, port_free
from ..procs import MARKER_ENV
from .errors import ApiError, bad_request
from .events import Recorder
from .resources import res
from .store import Store, now_iso, parse_time

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

PORT_ANNOTATION = "incidentlab.io/port"
BACKOFF_BASE = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET = 600.0  # a container that ran this long starts its back-off afresh
METRICS_WINDOW = 10.0
# Like metrics-server, which needs two scrapes of a new container, usage is known after this long.
METRICS_DELAY = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
KEEP_INSTANCES = 2  # log files kept per container: the current and the previous instance


def _program(image: str) -> list[str] | None:
    """The command an image stands for, or None (an image this lab cannot pull)."""
    repo = re.sub(r"^docker\.io/", "", image.split("@")[0])
    repo = repo.rsplit(":", 1)[0] if ":" in repo.rsplit("/", 1)[-1] else repo
    py = [sys.executable, "-m"]
    if repo == "incidentlab/demo-service":
        return [*py, "incidentlab.demo_service"]
    if repo == "incidentlab/log-generator":
        return [*py, "incidentlab.kube.loggen"]
    if repo == "incidentlab/task":
        return [*py, "incidentlab.kube.task"]
    for component in ("coredns", "kube-proxy", "metrics-server"):
        if repo.endswith("/" + component) or repo == component:
            return [*py, "incidentlab.kube.systemlogs", component]
    return None


def _pythonpath() -> str:
    pkg_parent = str(Path(__file__).resolve().parents[2])
    extra = os.environ.get("PYTHONPATH")
    return f"{pkg_parent}:{extra}" if extra else pkg_parent


class EnvError(Exception):
    """A container cannot be created: its configuration refers to something missing."""


class Container:
    def __init__(self, spec: dict):
        self.name = spec["name"]
        self.image = spec.get("image", "")
        self.spec = spec
        self.proc: subprocess.Popen | None = None
        self.started_at: str | None = None
        self.started_mono = 0.0
        self.instance = -1  # restart count of the running (or last) instance
        self.restarts = 0
        self.crashes = 0  # consecutive failures, for the back-off
        self.backoff_until = 0.0
        self.waiting = ("ContainerCreating", "")
        self.terminated: dict | None = None  # current state when terminated and not restarting
        self.last_terminated: dict | None = None
        self.container_id = ""
        self.ready = False
        self.probe_ok = 0
        self.probe_fail = 0
        self.probe_next = 0.0
        self.probe_busy = False
        self.probe_failed_msg = ""
        self.restart_now = False  # an intentional restart: no back-off, no crash count
        self.cpu: deque[tuple[float, float]] = deque(maxlen=16)
        self.rss = 0


class PodRuntime:
    def __init__(self, pod: dict, port: int | None, log_dir: Path):
        meta = pod["metadata"]
        self.uid = meta["uid"]
        self.ns = meta["namespace"]
        self.name = meta["name"]
        self.port = port
        self.log_dir = log_dir
        self.containers = {c["name"]: Container(c) for c in pod["spec"]["containers"]}
        self.start_time = now_iso()
        self.kill_at: float | None = None
        self.terminating = False


class LogPump(threading.Thread):
    """Copies every container's stdout and stderr to its CRI-format log file, line by line,
    with a timestamp per line (what ``sinceSeconds`` and ``--timestamps`` need)."""

    def __init__(self) -> None:
        super().__init__(name="log-pump", daemon=True)
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        self.sel.register(self.r, selectors.EVENT_READ, None)

    def add(self, fileobj, stream: str, path: Path) -> None:
        fd = fileobj.fileno()
        os.set_blocking(fd, False)
        out = open(path, "ab", buffering=0)  # noqa: SIM115 - closed at EOF by the pump
        with self.lock:
            self.sel.register(fd, selectors.EVENT_READ, [fileobj, stream, out, b""])
        os.write(self.w, b"x")

    def _write(self, state: list, data: bytes, final: bool) -> None:
        buf = state[3] + data
        lines = buf.split(b"\n")
        state[3] = b"" if final else lines.pop()
        if final and lines and lines[-1] == b"":
            lines.pop()
        if not lines:
            return
        ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
        prefix = f"{ts} {state[1]} F ".encode()
        state[2].write(b"".join(prefix + line + b"\n" for line in lines))

    def run(self) -> None:
        while True:
            with self.lock:
                pass  # let add() register between selects
            for key, _ in self.sel.select(timeout=1.0):
                if key.data is None:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.r, 4096)
                    continue
                try:
                    data = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    self._write(key.data, data, False)
                    continue
                self._write(key.data, b"", True)
                with self.lock:
                    self.sel.unregister(key.fd)
                key.data[0].close()
                key.data[2].close()


def _ts_of(line: str) -> float | None:
    ts = line.split(" ", 1)[0]
    try:
        base, frac = ts.rstrip("Z").split(".", 1) if "." in ts else (ts.rstrip("Z"), "0")
        return datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp() + float(f"0.{frac}")
    except ValueError:
        return None


def _format(line: str, timestamps: bool) -> str:
    parts = line.rstrip("\n").split(" ", 3)
    if len(parts) < 4:
        return line.rstrip("\n")
    return f"{parts[0]} {parts[3]}" if timestamps else parts[3]


class Kubelet:
    """Runs the pods bound to this region's nodes."""

    def __init__(
        self,
        store: Store,
        recorder: Recorder,
        region: str,
        nodes: list[str],
        log_root: Path,
        port_range: tuple[int, int],
        lab_id: str,
    ):
        self.store = store
        self.events = recorder
        self.region = region
        self.nodes = set(nodes)
        self.log_root = log_root
        self.port_lo, self.port_hi = port_range
        self.port_next = self.port_lo
        self.ports_used: set[int] = set()
        self.lab_id = lab_id
        self.pods: dict[str, PodRuntime] = {}
        self.lock = threading.RLock()
        self.wake = threading.Event()
        self.pump = LogPump()
        self.probes = ThreadPoolExecutor(max_workers=6, thread_name_prefix="probe")
        # Faults (see faults.py): pods that fail at start, services answering slowly.
        self.poisoned: set[str] = set()
        self.slow: dict[tuple[str, str], int] = {}
        self.on_change: list[Callable[[], None]] = []
        self.stopping = False
        store.listeners.append(lambda ev: ev.key == "pods" and self.wake.set())

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        self.pump.start()
        threading.Thread(target=self._loop, name="kubelet", daemon=True).start()

    def _loop(self) -> None:
        last_sample = 0.0
        while not self.stopping:
            self.wake.wait(0.5)
            self.wake.clear()
            try:
                self.sync()
                if time.monotonic() - last_sample >= 2.0:
                    last_sample = time.monotonic()
                    self.sample()
            except Exception:
                import traceback

                traceback.print_exc()

    def shutdown(self, grace: float = 3.0) -> None:
        """Stop every pod process (emulator exit): SIGTERM, then SIGKILL."""
        self.stopping = True
        with self.lock:
            procs = [c.proc for p in self.pods.values() for c in p.containers.values() if c.proc]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.wait(max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(1)

    # -- ports -------------------------------------------------------------------
    def _allocate_port(self) -> int:
        span = self.port_hi - self.port_lo
        for _ in range(span):
            port = self.port_next
            self.port_next = self.port_lo + (self.port_next - self.port_lo + 1) % span
            if port not in self.ports_used and port_free(port):
                self.ports_used.add(port)
                return port
        raise RuntimeError(f"no free pod port left in {self.port_lo}-{self.port_hi - 1}")

    # -- the sync loop -------------------------------------------------------------
    def sync(self) -> None:
        pods = {
            p["metadata"]["uid"]: p
            for p in self.store.items(res("pods"))
            if (p.get("spec") or {}).get("nodeName") in self.nodes
        }
        with self.lock:
            for uid in list(self.pods):
                if uid not in pods:  # removed behind our back (force delete): stop at once
                    self._kill_all(self.pods[uid], signal.SIGKILL)
                    self._forget(self.pods.pop(uid))
            for uid, pod in pods.items():
                rt = self.pods.get(uid)
                if rt is None:
                    if pod["metadata"].get("deletionTimestamp"):
                        self.store.remove(res("pods"), pod["metadata"]["namespace"], pod["metadata"]["name"])
                        continue
                    rt = self._admit(pod)
                    if rt is None:
                        continue
                if pod["metadata"].get("deletionTimestamp"):
                    if self._terminate(rt, pod):
                        continue
                else:
                    for c in rt.containers.values():
                        self._sync_container(rt, c, pod)
                self._write_status(rt, pod)
        for fn in self.on_change:
            fn()

    def _admit(self, pod: dict) -> PodRuntime | None:
        meta = pod["metadata"]
        port = None
        ann = (meta.get("annotations") or {}).get(PORT_ANNOTATION)
        if ann and ann.isdigit():
            port = int(ann)
            self.ports_used.add(port)
        else:
            port = self._allocate_port()

            def annotate(p: dict) -> None:
                p["metadata"].setdefault("annotations", {})[PORT_ANNOTATION] = str(port)

            with contextlib.suppress(ApiError):
                self.store.mutate(res("pods"), meta["namespace"], meta["name"], annotate)
        log_dir = self.log_root / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
        rt = PodRuntime(pod, port, log_dir)
        self.pods[rt.uid] = rt
        return rt

    def _forget(self, rt: PodRuntime) -> None:
        if rt.port:
            self.ports_used.discard(rt.port)
        self.poisoned.discard(rt.uid)
        shutil.rmtree(rt.log_dir, ignore_errors=True)

    def _kill_all(self, rt: PodRuntime, sig: int) -> None:
        for c in rt.containers.values():
            if c.proc and c.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    c.proc.send_signal(sig)

    def _terminate(self, rt: PodRuntime, pod: dict) -> bool:
        """Graceful deletion; True once the pod is gone."""
        now = time.monotonic()
        if not rt.terminating:
            rt.terminating = True
            grace = pod["metadata"].get("deletionGracePeriodSeconds", 30)
            rt.kill_at = now + max(0, grace)
            for c in rt.containers.values():
                c.backoff_until = float("inf")
                if c.proc and c.proc.poll() is None:
                    self.events.record(
                        pod,
                        "Normal",
                        "Killing",
                        f"Stopping container {c.name}",
                        "kubelet",
                        pod["spec"].get("nodeName"),
                        f"spec.containers{{{c.name}}}",
                    )
            self._kill_all(rt, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        elif rt.kill_at is not None and now >= rt.kill_at:
            self._kill_all(rt, signal.SIGKILL)
            rt.kill_at = None
        for c in rt.containers.values():
            if c.proc and c.proc.poll() is not None:
                self._exited(rt, c, pod, restart=False)
        if any(c.proc for c in rt.containers.values()):
            return False
        self.store.remove(res("pods"), rt.ns, rt.name)
        self._forget(self.pods.pop(rt.uid))
        return True

    def _sync_container(self, rt: PodRuntime, c: Container, pod: dict) -> None:
        now = time.monotonic()
        if c.proc is not None:
            if c.proc.poll() is None:
                self._maybe_probe(rt, c, pod)
                return
            self._exited(rt, c, pod, restart=True)
        if c.terminated is not None or now < c.backoff_until:
            return
        self._start(rt, c, pod)

    def _exited(self, rt: PodRuntime, c: Container, pod: dict, restart: bool) -> None:
        code = c.proc.returncode
        c.proc = None
        c.ready = False
        c.probe_ok = c.probe_fail = 0
        term = {
            "exitCode": 128 - code if code < 0 else code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": c.started_at,
            "finishedAt": now_iso(),
            "containerID": c.container_id,
        }
        if code < 0:
            term["signal"] = -code
            term["exitCode"] = 128 - code
        policy = pod["spec"].get("restartPolicy", "Always")
        if not restart or policy == "Never" or (policy == "OnFailure" and code == 0):
            c.terminated = term
            return
        c.last_terminated = term
        ran = time.monotonic() - c.started_mono
        if c.restart_now:
            c.restart_now = False
            c.backoff_until = 0.0
            c.waiting = ("ContainerCreating", "")
            return
        if ran >= BACKOFF_RESET:
            c.crashes = 0
        c.crashes += 1
        # The first restart is immediate; then 10s, 20s, 40s ... up to 5 minutes, as the kubelet does.
        delay = 0.0 if c.crashes == 1 else min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (c.crashes - 2))
        c.backoff_until = time.monotonic() + delay
        if delay:
            c.waiting = (
                "CrashLoopBackOff",
                f"back-off {int(delay)}s restarting failed container={c.name} pod={rt.name}_{rt.ns}({rt.uid})",
            )
            self.events.record(
                pod,
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {c.name} in pod {rt.name}_{rt.ns}({rt.uid})",
                "kubelet",
                pod["spec"].get("nodeName"),
                f"spec.containers{{{c.name}}}",
            )
        else:
            c.waiting = ("ContainerCreating", "")

    def _start(self, rt: PodRuntime, c: Container, pod: dict) -> None:
        node = pod["spec"].get("nodeName")
        field = f"spec.containers{{{c.name}}}"
        argv = _program(c.image)
        if argv is None:
            c.crashes += 1
            c.backoff_until = time.monotonic() + min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, c.crashes - 1))
            reason = "ErrImagePull" if c.crashes == 1 else "ImagePullBackOff"
            msg = (
                f'Failed to pull image "{c.image}": rpc error: code = NotFound desc = failed to pull and unpack '
                f'image "{c.image}": not found'
            )
            c.waiting = (reason, msg if reason == "ErrImagePull" else f'Back-off pulling image "{c.image}"')
            self.events.record(pod, "Warning", "Failed", msg, "kubelet", node, field)
            return
        try:
            env = self._environment(rt, c, pod)
        except EnvError as exc:
            c.waiting = ("CreateContainerConfigError", str(exc))
            c.backoff_until = time.monotonic() + 2.0
            self.events.record(pod, "Warning", "Failed", f"Error: {exc}", "kubelet", node, field)
            return
        rt.log_dir.joinpath(c.name).mkdir(parents=True, exist_ok=True)
        instance = c.restarts if c.instance < 0 else c.restarts + 1
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=str(rt.log_dir),
                close_fds=True,
            )
        except OSError as exc:
            c.waiting = ("RunContainerError", str(exc))
            c.backoff_until = time.monotonic() + BACKOFF_BASE
            return
        log = rt.log_dir / c.name / f"{instance}.log"
        self.pump.add(proc.stdout, "stdout", log)
        self.pump.add(proc.stderr, "stderr", log)
        for old in sorted(rt.log_dir.joinpath(c.name).glob("*.log"), key=lambda p: int(p.stem))[:-KEEP_INSTANCES]:
            old.unlink(missing_ok=True)
        if c.instance >= 0:
            c.restarts += 1
        c.instance = instance
        c.proc = proc
        c.started_at = now_iso()
        c.started_mono = time.monotonic()
        c.waiting = None
        c.terminated = None
        c.container_id = "containerd://" + secrets.token_hex(32)
        c.cpu.clear()
        probe = c.spec.get("readinessProbe")
        c.probe_next = time.monotonic() + (probe or {}).get("initialDelaySeconds", 0)
        if instance == 0:
            self.events.record(
                pod,
                "Normal",
                "Pulled",
                f'Container image "{c.image}" already present on machine',
                "kubelet",
                node,
                field,
            )
        self.events.record(pod, "Normal", "Created", f"Created container: {c.name}", "kubelet", node, field)
        self.events.record(pod, "Normal", "Started", f"Started container {c.name}", "kubelet", node, field)

    # -- environment ----------------------------------------------------------------
    def _lookup(self, kind: str, ns: str, name: str, key: str | None, optional: bool) -> dict | str | None:
        obj = self.store.find(res(kind), ns, name)
        what = "configmap" if kind == "configmaps" else "secret"
        if obj is None:
            if optional:
                return None
            raise EnvError(f'{what} "{name}" not found')
        data = dict(obj.get("data") or {})
        if kind == "secrets":
            data = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
        if key is None:
            return data
        if key not in data:
            if optional:
                return None
            label = "ConfigMap" if kind == "configmaps" else "Secret"
            raise EnvError(f"couldn't find key {key} in {label} {ns}/{name}")
        return data[key]

    def _environment(self, rt: PodRuntime, c: Container, pod: dict) -> dict[str, str]:
        ns = rt.ns
        env: dict[str, str] = {}
        for src in c.spec.get("envFrom") or []:
            prefix = src.get("prefix", "")
            for kind, ref in (("configmaps", src.get("configMapRef")), ("secrets", src.get("secretRef"))):
                if ref:
                    data = self._lookup(kind, ns, ref.get("name", ""), None, bool(ref.get("optional")))
                    env.update({prefix + k: v for k, v in (data or {}).items()})
        for e in c.spec.get("env") or []:
            name = e.get("name")
            if "value" in e or "valueFrom" not in e:
                value = re.sub(
                    r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                    lambda m: env.get(m.group(1), m.group(0)),
                    str(e.get("value", "")),
                )
                env[name] = value
                continue
            vf = e["valueFrom"]
            value = None
            if vf.get("configMapKeyRef"):
                r = vf["configMapKeyRef"]
                value = self._lookup("configmaps", ns, r.get("name", ""), r.get("key"), bool(r.get("optional")))
            elif vf.get("secretKeyRef"):
                r = vf["secretKeyRef"]
                value = self._lookup("secrets", ns, r.get("name", ""), r.get("key"), bool(r.get("optional")))
            elif vf.get("fieldRef"):
                path = vf["fieldRef"].get("fieldPath", "")
                value = self._field(pod, path)
            if value is not None:
                env[name] = str(value)
        base = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": "/tmp",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": _pythonpath(),
            "HOSTNAME": rt.name,
        }
        lab = {
            "HOST": HOST,
            "POD_NAME": rt.name,
            "POD_NAMESPACE": ns,
            "REGION": self.region,
            MARKER_ENV: self.lab_id,
        }
        if rt.port:
            lab["PORT"] = str(rt.port)
        app = (pod["metadata"].get("labels") or {}).get("app", "")
        if rt.uid in self.poisoned:
            lab["LAB_FAIL_ON_START"] = "1"
        if (ns, app) in self.slow:
            lab["LAB_RESPONSE_DELAY_MS"] = str(self.slow[(ns, app)])
        return {**base, **env, **lab}

    @staticmethod
    def _field(pod: dict, path: str) -> str:
        m = re.match(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if m:
            return (pod["metadata"].get(m.group(1)) or {}).get(m.group(2), "")
        return {
            "metadata.name": pod["metadata"]["name"],
            "metadata.namespace": pod["metadata"]["namespace"],
            "metadata.uid": pod["metadata"]["uid"],
            "spec.nodeName": pod["spec"].get("nodeName", ""),
            "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
            "status.podIP": HOST,
            "status.hostIP": HOST,
        }.get(path, "")

    # -- probes ---------------------------------------------------------------------
    def _maybe_probe(self, rt: PodRuntime, c: Container, pod: dict) -> None:
        probe = c.spec.get("readinessProbe")
        if not probe:
            c.ready = True
            return
        now = time.monotonic()
        if c.probe_busy or now < c.probe_next:
            return
        c.probe_busy = True
        c.probe_next = now + probe.get("periodSeconds", 10)
        self.probes.submit(self._probe, rt, c, pod, probe, c.instance)

    def _probe(self, rt: PodRuntime, c: Container, pod: dict, probe: dict, instance: int) -> None:
        ok, msg = False, ""
        try:
            http = probe.get("httpGet")
            if http is not None:
                url = f"http://{HOST}:{rt.port}{http.get('path', '/')}"
                try:
                    with urllib.request.urlopen(url, timeout=probe.get("timeoutSeconds", 1)) as r:
                        ok = 200 <= r.status < 400
                except urllib.error.HTTPError as exc:
                    msg = f"HTTP probe failed with statuscode: {exc.code}"
                except (OSError, ValueError) as exc:
                    reason = getattr(exc, "reason", exc)
                    msg = f'Get "{url}": {reason}'
            elif probe.get("tcpSocket") is not None:
                import socket

                try:
                    socket.create_connection((HOST, rt.port), timeout=probe.get("timeoutSeconds", 1)).close()
                    ok = True
                except OSError as exc:
                    msg = f"dial tcp {HOST}:{rt.port}: {exc.strerror or exc}"
            else:
                ok = True
        except Exception as exc:
            msg = f"probe error: {exc}"
        self._probe_result(c, pod, probe, instance, ok, msg)

    def _probe_result(self, c: Container, pod: dict, probe: dict, instance: int, ok: bool, msg: str) -> None:
        with self.lock:
            c.probe_busy = False
            if c.instance != instance or c.proc is None:
                return
            before = c.ready
            if ok:
                c.probe_ok, c.probe_fail = c.probe_ok + 1, 0
                if c.probe_ok >= probe.get("successThreshold", 1):
                    c.ready = True
            else:
                c.probe_ok, c.probe_fail = 0, c.probe_fail + 1
                if c.probe_fail >= probe.get("failureThreshold", 3) or not c.ready:
                    c.ready = False
                self.events.record(
                    pod,
                    "Warning",
                    "Unhealthy",
                    f"Readiness probe failed: {msg}",
                    "kubelet",
                    pod["spec"].get("nodeName"),
                    f"spec.containers{{{c.name}}}",
                )
        if c.ready != before:
            self.wake.set()

    # -- status ---------------------------------------------------------------------
    def _container_status(self, c: Container) -> dict:
        if c.proc is not None:
            state = {"running": {"startedAt": c.started_at}}
        elif c.terminated is not None:
            state = {"terminated": c.terminated}
        else:
            reason, msg = c.waiting or ("ContainerCreating", "")
            state = {"waiting": {"reason": reason, **({"message": msg} if msg else {})}}
        repo = c.image.split(":")[0] if ":" in c.image.rsplit("/", 1)[-1] else c.image
        st = {
            "name": c.name,
            "state": state,
            "lastState": {"terminated": c.last_terminated} if c.last_terminated else {},
            "ready": c.ready and c.proc is not None,
            "restartCount": c.restarts,
            "image": c.image,
            "imageID": f"docker.io/{repo}@sha256:{hashlib.sha256(repo.encode()).hexdigest()}"
            if c.instance >= 0
            else "",
            "started": c.proc is not None,
        }
        if c.container_id:
            st["containerID"] = c.container_id
        return st

    def _write_status(self, rt: PodRuntime, pod: dict) -> None:
        statuses = [self._container_status(c) for c in rt.containers.values()]
        ever_started = all(c.instance >= 0 for c in rt.containers.values())
        all_ready = all(s["ready"] for s in statuses)
        policy = pod["spec"].get("restartPolicy", "Always")
        if all(c.terminated is not None for c in rt.containers.values()):
            phase = "Succeeded" if all(c.terminated["exitCode"] == 0 for c in rt.containers.values()) else "Failed"
        elif ever_started:
            phase = "Running"
        else:
            phase = "Pending"
        if policy == "Always" and phase in ("Succeeded", "Failed") and not rt.terminating:
            phase = "Running"
        old = pod.get("status") or {}
        old_conds = {c["type"]: c for c in old.get("conditions") or []}

        def cond(ctype: str, ok: bool, reason: str | None = None) -> dict:
            status = "True" if ok else "False"
            prev = old_conds.get(ctype)
            c = {
                "type": ctype,
                "status": status,
                "lastProbeTime": None,
                "lastTransitionTime": prev["lastTransitionTime"] if prev and prev["status"] == status else now_iso(),
            }
            if not ok and reason:
                c["reason"] = reason
                if reason == "ContainersNotReady":
                    names = [s["name"] for s in statuses if not s["ready"]]
                    c["message"] = f"containers with unready status: [{' '.join(names)}]"
            return c

        conditions = [
            cond("PodReadyToStartContainers", True),
            cond("Initialized", True),
            cond("Ready", all_ready and phase == "Running", "ContainersNotReady"),
            cond("ContainersReady", all_ready and phase == "Running", "ContainersNotReady"),
            old_conds.get("PodScheduled") or cond("PodScheduled", True),
        ]
        status = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": HOST,
            "hostIPs": [{"ip": HOST}],
            "podIP": HOST,
            "podIPs": [{"ip": HOST}],
            "startTime": old.get("startTime") or rt.start_time,
            "containerStatuses": statuses,
            "qosClass": old.get("qosClass", "BestEffort"),
        }
        if status != old:
            self.store.mutate(res("pods"), rt.ns, rt.name, lambda p: p.__setitem__("status", status), sub="status")

    # -- faults -----------------------------------------------------------------------
    def restart_containers(self, uids: set[str], crash: bool = False) -> int:
        """Restart the containers of these pods now (a fault or its heal); returns how many."""
        n = 0
        with self.lock:
            for uid in uids:
                rt = self.pods.get(uid)
                if rt is None or rt.terminating:
                    continue
                for c in rt.containers.values():
                    c.crashes = 0 if not crash else c.crashes
                    c.backoff_until = 0.0
                    if c.proc and c.proc.poll() is None:
                        c.restart_now = not crash
                        c.proc.send_signal(signal.SIGKILL if crash else signal.SIGTERM)
                        n += 1
        self.wake.set()
        return n

    def pod_uids(self, ns: str, app: str) -> set[str]:
        return {
            p["metadata"]["uid"]
            for p in self.store.items(res("pods"), ns)
            if (p["metadata"].get("labels") or {}).get("app") == app and not p["metadata"].get("deletionTimestamp")
        }

    # -- logs -----------------------------------------------------------------------
    def _log_files(self, pod: dict, container: str) -> tuple[Container, list[Path]]:
        uid = pod["metadata"]["uid"]
        names = [c["name"] for c in pod["spec"]["containers"]]
        if not container:
            if len(names) > 1:
                raise bad_request(
                    f"a container name must be specified for pod {pod['metadata']['name']}, choose "
                    f"one of: [{' '.join(names)}]"
                )
            container = names[0]
        if container not in names:
            raise bad_request(f"container {container} is not valid for pod {pod['metadata']['name']}")
        with self.lock:
            rt = self.pods.get(uid)
        if rt is None:
            raise bad_request(
                f'container "{container}" in pod "{pod["metadata"]["name"]}" is waiting to start: ContainerCreating'
            )
        c = rt.containers[container]
        files = sorted(rt.log_dir.joinpath(container).glob("*.log"), key=lambda p: int(p.stem))
        return c, files

    def _pick(self, pod: dict, container: str, previous: bool) -> tuple[Container, Path]:
        c, files = self._log_files(pod, container)
        name = pod["metadata"]["name"]
        if previous:
            if len(files) < 2 or c.restarts == 0:
                raise bad_request(f'previous terminated container "{c.name}" in pod "{name}" not found')
            return c, files[-2]
        if not files:
            reason = (c.waiting or ("ContainerCreating", ""))[0]
            raise bad_request(f'container "{c.name}" in pod "{name}" is waiting to start: {reason}')
        return c, files[-1]

    @staticmethod
    def _select(
        lines: list[str],
        tail: int | None,
        since: int | None,
        since_time: str,
        timestamps: bool,
        limit_bytes: int | None,
    ) -> str:
        cutoff = None
        if since:
            cutoff = time.time() - since
        elif since_time:
            cutoff = parse_time(since_time)
        if cutoff is not None:
            lines = [ln for ln in lines if (_ts_of(ln) or 0) >= cutoff]
        if tail is not None and tail >= 0:
            lines = lines[-tail:] if tail else []
        text = "".join(_format(ln, timestamps) + "\n" for ln in lines)
        if limit_bytes:
            text = text.encode()[:limit_bytes].decode(errors="ignore")
        return text

    def read_log(
        self,
        pod: dict,
        container: str = "",
        previous: bool = False,
        tail: int | None = None,
        since: int | None = None,
        since_time: str = "",
        timestamps: bool = False,
        limit_bytes: int | None = None,
    ) -> str:
        _, path = self._pick(pod, container, previous)
        try:
            lines = path.read_text(errors="replace").splitlines(keepends=True)
        except FileNotFoundError:
            lines = []
        return self._select(lines, tail, since, since_time, timestamps, limit_bytes)

    def follow_log(
        self,
        pod: dict,
        gone: Callable[[], bool],
        container: str = "",
        previous: bool = False,
        tail: int | None = None,
        since: int | None = None,
        since_time: str = "",
        timestamps: bool = False,
        limit_bytes: int | None = None,
    ) -> Iterator[str]:
        c, path = self._pick(pod, container, previous)
        instance = c.instance
        with open(path, errors="replace") as fh:
            yield self._select(fh.readlines(), tail, since, since_time, timestamps, limit_bytes)
            if previous:
                return
            partial = ""
            idle_after_exit = 0
            while not gone():
                chunk = fh.read()
                if chunk:
                    partial += chunk
                    *lines, partial = partial.split("\n")
                    yield "".join(_format(ln, timestamps) + "\n" for ln in lines)
                    continue
                if c.instance != instance or c.proc is None:
                    idle_after_exit += 1
                    if idle_after_exit > 3:
                        return
                time.sleep(0.3)

    # -- metrics --------------------------------------------------------------------
    def sample(self) -> None:
        now = time.monotonic()
        with self.lock:
            containers = [c for rt in self.pods.values() for c in rt.containers.values() if c.proc]
        for c in containers:
            pid = c.proc.pid if c.proc else None
            if pid is None:
                continue
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
                rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
            except (OSError, ValueError, IndexError):
                continue
            c.cpu.append((now, cpu))
            c.rss = rss

    def usage(self, uid: str) -> dict[str, tuple[float, int]] | None:
        """Per container (cpu cores, memory bytes) over the metrics window, or None if not known yet."""
        with self.lock:
            rt = self.pods.get(uid)
            if rt is None:
                return None
            out = {}
            for c in rt.containers.values():
                samples = list(c.cpu)
                if c.proc is None or len(samples) < 2 or time.monotonic() - c.started_mono < METRICS_DELAY:
                    return None
                newest = samples[-1]
                oldest = next((s for s in samples if newest[0] - s[0] <= METRICS_WINDOW), samples[0])
                if oldest is newest:
                    oldest = samples[-2]
                dt = newest[0] - oldest[0]
                out[c.name] = ((newest[1] - oldest[1]) / dt if dt > 0 else 0.0, c.rss)
            return out

    def running_ports(self) -> dict[str, int]:
        """uid -> port of every pod whose containers are all running."""
        with self.lock:
            return {
                uid: rt.port
                for uid, rt in self.pods.items()
                if rt.port and not rt.terminating and all(c.proc for c in rt.containers.values())
            }
