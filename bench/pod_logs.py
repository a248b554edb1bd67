#!/usr/bin/env python3
"""Benchmark: the runbook's log collection (Investigation Procedures, Log Analysis) for many pods, four ways.

In a scratch namespace of the lab's primary region it runs ``--pods`` pods (default 50, as
``--services`` deployments of the image ``incidentlab/log-generator``) that each write
``--lines`` log lines (default 10,000), then collects every pod's whole log into files:

* ``pod_logs`` engine: ``k8s_logs.Collector``, every log at once in a bounded pool (what the module runs);
* the ``pod_logs`` module through Ansible: the same plus Ansible's per-task cost (one task for every pod);
* the runbook's loop per service: ``kubectl logs -l app=$service --tail=-1 > logs-$service.log``, one
  service after another (the runbook says ``--tail=1000``; ``-1`` collects the same lines as the others);
* a loop per pod: ``kubectl logs $pod > $pod.log``, one pod after another.

Every way's files are checked to hold every line. It uses the lab in ``--lab-dir`` (default
``$INCIDENTLAB_DIR`` or ``.lab/``) and brings it up if needed (``incidentctl lab up``).

    .venv/bin/python bench/pod_logs.py                    # 50 pods x 10,000 lines, median of 3 runs
    .venv/bin/python bench/pod_logs.py --pods 20 --lines 2000 --repeat 1

A report, not a test: it prints figures and asserts nothing beyond the files being complete.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "collection"))

from common import ansible_task  # noqa: E402

from ansible_collections.incident.response.plugins.module_utils import k8s, k8s_logs  # noqa: E402

NAMESPACE = "bench-logs"
IMAGE = "incidentlab/log-generator:1.0"


def sh(*cmd: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if check and out.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd[:4])} ... failed ({out.returncode}):\n{out.stdout[-1500:]}\n{out.stderr[-1500:]}"
        )
    return out


def deployment(name: str, replicas: int, lines: int) -> dict:
    labels = {"app": name}
    container = {
        "name": "app",
        "image": IMAGE,
        "env": [{"name": "LOG_LINES", "value": str(lines)}, {"name": "SERVICE_NAME", "value": name}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 2},
            },
        },
    }


class Scratch:
    """The scratch namespace with the log-writing pods, created and removed through the official client."""

    def __init__(self, clients, pods: int, services: int, lines: int):
        self.c = clients
        self.lines = lines
        per, extra = divmod(pods, services)
        self.services = {f"logsvc-{i + 1}": per + (1 if i < extra else 0) for i in range(services)}

    def _gone(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while any(n.metadata.name == NAMESPACE for n in self.c.core.list_namespace().items):
            if time.monotonic() > deadline:
                raise SystemExit(f"namespace {NAMESPACE} is still there after {timeout:.0f}s")
            time.sleep(0.3)

    def create(self) -> list[str]:
        if any(n.metadata.name == NAMESPACE for n in self.c.core.list_namespace().items):
            self.delete()
        self.c.core.create_namespace({"metadata": {"name": NAMESPACE}})
        for name, replicas in self.services.items():
            self.c.apps.create_namespaced_deployment(NAMESPACE, deployment(name, replicas, self.lines))
        want = sum(self.services.values())
        deadline = time.monotonic() + 180
        while True:
            pods = self.c.core.list_namespaced_pod(NAMESPACE).items
            running = [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
            if len(running) == want and all(self._complete(p.metadata.name) for p in running):
                return sorted(p.metadata.name for p in running)
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(running)}/{want} pods running with complete logs after 180s")
            time.sleep(1)

    def _complete(self, pod: str) -> bool:
        last = self.c.core.read_namespaced_pod_log(pod, NAMESPACE, tail_lines=1)
        return f" request {self.lines} " in last

    def delete(self) -> None:
        self.c.core.delete_namespace(NAMESPACE)
        self._gone()


def count_lines(paths: list[Path]) -> int:
    return sum(p.read_bytes().count(b"\n") for p in paths)


def time_engine(clients, out: Path, concurrency: int, want_lines: int) -> float:
    collector = k8s_logs.Collector({"primary": clients}, dest=str(out), concurrency=concurrency, timeout=60)
    start = time.perf_counter()
    found = collector.find([{"namespace": NAMESPACE}])
    entries, files = collector.collect_all(found.entries)
    elapsed = time.perf_counter() - start
    failed = [e for e in entries if e["error"] or e["note"]]
    if failed or found.errors:
        raise SystemExit(f"engine: {failed[:1] or found.errors}")
    check(files, want_lines, "engine")
    return elapsed


def time_module(kubeconfig: str, out: Path, concurrency: int, want_lines: int) -> float:
    args = {
        "kubeconfig": kubeconfig,
        "context": "primary",
        "selectors": [{"namespace": NAMESPACE}],
        "dest": str(out),
        "concurrency": concurrency,
        "request_timeout": 60,
    }
    elapsed = ansible_task("pod_logs", args)
    check(sorted(out.rglob("*.log")), want_lines, "module")
    return elapsed


def kubectl_env(kubeconfig: str, lab_dir: Path) -> dict:
    return {**os.environ, "KUBECONFIG": kubeconfig, "KUBECACHEDIR": str(lab_dir / "kubecache")}


def time_service_loop(env: dict, services: list[str], out: Path, max_pods: int, want_lines: int) -> float:
    script = (
        'ns=$1; dir=$2; max=$3; shift 3; for service in "$@"; do '
        "kubectl --context primary logs -l app=$service -n $ns --tail=-1 --max-log-requests=$max "
        '> "$dir/logs-$service.log" || exit 1; done'
    )
    start = time.perf_counter()
    sh("bash", "-c", script, "loop", NAMESPACE, str(out), str(max_pods), *services, env=env)
    elapsed = time.perf_counter() - start
    check(sorted(out.glob("*.log")), want_lines, "kubectl per service")
    return elapsed


def time_pod_loop(env: dict, pods: list[str], out: Path, want_lines: int) -> float:
    script = (
        'ns=$1; dir=$2; shift 2; for pod in "$@"; do '
        'kubectl --context primary logs "$pod" -n $ns > "$dir/$pod.log" || exit 1; done'
    )
    start = time.perf_counter()
    sh("bash", "-c", script, "loop", NAMESPACE, str(out), *pods, env=env)
    elapsed = time.perf_counter() - start
    check(sorted(out.glob("*.log")), want_lines, "kubectl per pod")
    return elapsed


def check(files, want_lines: int, who: str) -> None:
    got = count_lines([Path(f) for f in files])
    if got != want_lines:
        raise SystemExit(f"{who}: {got} lines collected, {want_lines} expected")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab-dir", type=Path, default=Path(os.environ.get("INCIDENTLAB_DIR") or ROOT / ".lab"))
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--services", type=int, default=5, help="deployments the pods are spread over")
    parser.add_argument("--lines", type=int, default=10_000, help="log lines each pod writes")
    parser.add_argument("--concurrency", type=int, default=16, help="the module's concurrency option")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each way; the median is reported")
    parser.add_argument("--skip-ansible", action="store_true", help="skip the run through Ansible")
    parser.add_argument("--skip-kubectl", action="store_true", help="skip the sequential kubectl loops")
    parser.add_argument("--keep", action="store_true", help="leave the scratch namespace and its pods")
    args = parser.parse_args()

    if not shutil.which("kubectl") and not args.skip_kubectl:
        raise SystemExit("kubectl is not installed: use --skip-kubectl")
    incidentctl = str(Path(sys.executable).with_name("incidentctl"))
    sh(incidentctl, "lab", "up", "--lab-dir", str(args.lab_dir))
    kubeconfig = str(args.lab_dir / "kubeconfig")
    clients = k8s.get_clients({"kubeconfig": kubeconfig, "context": "primary", "name": "primary"})
    scratch = Scratch(clients, args.pods, args.services, args.lines)
    t0 = time.perf_counter()
    pods = scratch.create()
    want = args.pods * args.lines
    print(
        f"{args.pods} pods x {args.lines} lines ({want} lines) in namespace {NAMESPACE} of the lab's primary "
        f"region (ready in {time.perf_counter() - t0:.0f} s); median of {args.repeat} run(s); {os.cpu_count()} CPU(s)"
    )
    env = kubectl_env(kubeconfig, args.lab_dir)
    results = {}

    def measure(label: str, fn) -> None:
        times = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
                times.append(fn(Path(tmp)))
        results[label] = statistics.median(times)
        spread = f" ({min(times):.2f}-{max(times):.2f} s)" if len(times) > 1 else ""
        print(f"  {label:<58} {results[label]:7.2f} s{spread}", flush=True)

    try:
        with tempfile.TemporaryDirectory() as warm:
            time_engine(clients, Path(warm), args.concurrency, want)  # warm-up: imports, first connections
        measure(
            f"pod_logs engine (concurrency {args.concurrency})",
            lambda out: time_engine(clients, out, args.concurrency, want),
        )
        if not args.skip_ansible:
            measure(
                "pod_logs module, one Ansible task", lambda out: time_module(kubeconfig, out, args.concurrency, want)
            )
        if not args.skip_kubectl:
            most = max(scratch.services.values())
            measure(
                f"runbook loop: kubectl logs -l app=$service ({args.services} services)",
                lambda out: time_service_loop(env, list(scratch.services), out, most, want),
            )
            measure(
                f"loop: kubectl logs $pod, one pod after another ({args.pods})",
                lambda out: time_pod_loop(env, pods, out, want),
            )
        engine = next(iter(results.values()))
        print(f"  ({want / engine:,.0f} lines/s through the engine; the others take this many times as long:")
        print(
            "   "
            + ", ".join(f"{label.split(',')[0]}: {s / engine:.1f}x" for label, s in list(results.items())[1:])
            + ")"
        )
    finally:
        if not args.keep:
            scratch.delete()


if __name__ == "__main__":
    main()
