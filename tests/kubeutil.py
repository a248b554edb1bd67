"""Helpers for the cluster tests: the unmodified kubectl, the official client, and what
the processes on this machine say (pod processes found by their environment)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from kubernetes import client, config

from support import wait_for

REGIONS = ("primary", "secondary")
NS = "microservices"
SERVICES = ("user-service", "order-service", "payment-service", "inventory-service", "notification-service")


def kubeconfig(lab) -> str:
    return str(lab.cfg.path("kubeconfig"))


def kubectl(lab, context: str, *args: str, check: bool = True, timeout: float = 90) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBECONFIG": kubeconfig(lab), "KUBECACHEDIR": str(lab.cfg.path("kubecache"))}
    res = subprocess.run(
        ["kubectl", "--context", context, *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    if check:
        assert res.returncode == 0, f"kubectl {' '.join(args)} failed ({res.returncode}): {res.stderr}"
    return res


def api(lab, context: str) -> client.ApiClient:
    return config.new_client_from_config(config_file=kubeconfig(lab), context=context)


def http(url: str, method: str = "GET", timeout: float = 5.0) -> tuple[int, dict, dict]:
    """(status, JSON body, headers) of one request; status 0 when nothing answered."""
    req = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            try:
                return r.status, json.loads(raw or b"{}"), dict(r.headers)
            except ValueError:
                return r.status, {"text": raw.decode(errors="replace")}, dict(r.headers)
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body or b"{}"), dict(exc.headers)
        except ValueError:
            return exc.code, {}, dict(exc.headers)
    except (OSError, ValueError):
        return 0, {}, {}


def pod_processes(pod_name: str) -> list[int]:
    """Pids of live processes whose environment says they are this pod (POD_NAME=...)."""
    needle = f"POD_NAME={pod_name}".encode()
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            env = Path(f"/proc/{entry.name}/environ").read_bytes()
            state = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in env.split(b"\0") and state not in ("Z", "X"):
            out.append(int(entry.name))
    return out


def children(pid: int) -> list[tuple[int, int, str]]:
    """(pid, process group, state) of each child of ``pid``."""
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            state, ppid, pgid = stat[stat.rindex(")") + 2 :].split()[:3]
            if int(ppid) == pid:
                out.append((int(entry.name), int(pgid), state))
    return out


def lb_settled(lab, region: str) -> bool:
    """The region's nginx runs one generation of workers: no reload is half done.

    After a reload nginx starts new workers and tells the old ones to stop only 100 ms later
    (longer on a loaded machine); until they stop, some connections still get the previous
    upstreams. Once a new-config answer has been seen, one worker left means every answer is new.
    """
    master = lab.procs.get(f"lb-{region}").pid
    return len([c for c in children(master) if c[2] not in ("Z", "X")]) == 1


def pods_of(core: client.CoreV1Api, app: str, ns: str = NS) -> list:
    return [
        p for p in core.list_namespaced_pod(ns, label_selector=f"app={app}").items if not p.metadata.deletion_timestamp
    ]


def ready(pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def wait_deployment_available(apps: client.AppsV1Api, name: str, ns: str = NS, timeout: float = 60) -> None:
    def done():
        d = apps.read_namespaced_deployment(name, ns)
        st = d.status
        return (
            (st.observed_generation or 0) >= d.metadata.generation
            and st.updated_replicas == d.spec.replicas
            and st.replicas == d.spec.replicas
            and st.available_replicas == d.spec.replicas
        )

    wait_for(done, timeout, f"deployment {ns}/{name} to be fully rolled out and available", interval=0.2)


def lb_upstreams(lab, region: str, service: str, tries: int = 30) -> set[str]:
    """The pods (ip:port) that answered health through the region's load balancer."""
    seen = set()
    for _ in range(tries):
        code, body, headers = http(lab.cfg.url(f"lb-{region}", f"/{service}/actuator/health"))
        if code == 200 and body.get("status") == "UP":
            seen.add(headers.get("X-Lab-Upstream", ""))
    return seen - {""}


def demo_deployment(name: str, ns: str, replicas: int = 2, env: dict | None = None, **spec) -> dict:
    """A deployment of the demo service whose readiness does not depend on the database."""
    container = {
        "name": "app",
        "image": "incidentlab/demo-service:1.0",
        "env": [{"name": "SERVICE_NAME", "value": "user-service"}]
        + [{"name": k, "value": v} for k, v in (env or {}).items()],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/actuator/prometheus", "port": "http"}, "periodSeconds": 1},
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 5},
            },
            **spec,
        },
    }


@contextlib.contextmanager
def viewer_token(lab, namespaces: tuple[str, ...] = (NS,), user: str = "incident-viewer"):
    """A bearer token that may only read in ``namespaces`` (the emulator's static tokens + ABAC policy).

    Requests with it get the API's real 401/403 answers; kubectl sends no token over plain http,
    so cross-check with :func:`http` and an Authorization header.
    """
    kube_dir = lab.cfg.path("kube")
    kube_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    (kube_dir / "tokens.csv").write_text(f"{token},{user},{user}-uid\n")
    lines = [{"user": user, "nonResourcePath": "*", "readonly": True}]
    lines += [{"user": user, "namespace": ns, "resource": "*", "apiGroup": "*", "readonly": True} for ns in namespaces]
    policy = "".join(
        json.dumps({"apiVersion": "abac.authorization.kubernetes.io/v1beta1", "kind": "Policy", "spec": s}) + "\n"
        for s in lines
    )
    (kube_dir / "abac-policy.jsonl").write_text(policy)
    try:
        yield token
    finally:
        for name in ("tokens.csv", "abac-policy.jsonl"):
            (kube_dir / name).unlink(missing_ok=True)


@contextlib.contextmanager
def blackhole():
    """A listening TCP port that never answers (a frozen API server): connections open, requests time out."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def closed_port() -> int:
    """A local port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def module_clusters(lab, regions: tuple[str, ...] = REGIONS) -> dict:
    """The module options that name the lab's regions as clusters (one kubeconfig, a context each)."""
    return {"kubeconfig": kubeconfig(lab), "clusters": [{"name": r, "context": r} for r in regions]}


class LbProbe:
    """Requests a service through a region's load balancer in a thread, for as long as the block runs;
    ``codes`` counts the answers (0: no answer), ``upstreams`` the pods that answered."""

    def __init__(self, lab, region: str, service: str, interval: float = 0.05):
        import threading

        self.url = lab.cfg.url(f"lb-{region}", f"/{service}/actuator/health")
        self.interval = interval
        self.codes: dict[int, int] = {}
        self.upstreams: set[str] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            code, _, headers = http(self.url, timeout=5)
            self.codes[code] = self.codes.get(code, 0) + 1
            if headers.get("X-Lab-Upstream"):
                self.upstreams.add(headers["X-Lab-Upstream"])
            self.stop.wait(self.interval)

    def __enter__(self) -> LbProbe:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)

    @property
    def failures(self) -> int:
        return sum(n for code, n in self.codes.items() if code != 200)


@contextlib.contextmanager
def read_only(lab, namespaces: tuple[str, ...] = (NS,), region: str = "primary"):
    """Module options (host + bearer token, no kubeconfig) for a user who may only read in ``namespaces``."""
    with viewer_token(lab, namespaces) as token:
        yield {"host": lab.cfg.url(f"kube-{region}"), "api_key": token}


def _lab_status(lab, region: str) -> dict:
    code, body, _ = http(lab.cfg.url(f"kube-{region}", "/_lab/status"))
    assert code == 200, f"kube-{region} status answered {code}"
    return body


def controller_passes(lab, region: str = "primary") -> int:
    """How many reconcile passes the region's controllers have done (the emulator's /_lab/status)."""
    return _lab_status(lab, region)["controllerPasses"]


def autoscaler_passes(lab, region: str = "primary") -> int:
    """How many times the region's HPA controller has synced every HPA."""
    return _lab_status(lab, region)["autoscalerPasses"]


def controllers_settled(lab, region: str = "primary", passes: int = 2) -> None:
    """Return once the controllers have done ``passes`` full reconcile passes from now: whatever they were
    going to do about the objects as they are now, they have done (or decided not to)."""
    start = controller_passes(lab, region)
    wait_for(lambda: controller_passes(lab, region) >= start + passes, 30, f"{passes} controller passes in {region}")


@contextlib.contextmanager
def nodes_restored(lab, regions: tuple[str, ...] = REGIONS):
    """For tests that cordon or drain nodes: every node schedulable again afterwards, and every deployment
    of the region (kube-system's too) available again on the nodes that are left."""
    from kubernetes import client as k8s

    try:
        yield
    finally:
        for region in regions:
            core, apps = k8s.CoreV1Api(api(lab, region)), k8s.AppsV1Api(api(lab, region))
            for node in core.list_node().items:
                if node.spec.unschedulable:
                    core.patch_node(node.metadata.name, {"spec": {"unschedulable": False}})
            for ns in ("kube-system", NS):
                for d in apps.list_namespaced_deployment(ns).items:
                    wait_deployment_available(apps, d.metadata.name, ns, timeout=90)


def kubernetes_core_path() -> Path:
    """A collections path holding kubernetes.core from the PyPI `ansible` bundle (support.bundled_collections)."""
    from support import bundled_collections

    return bundled_collections("kubernetes.core")
