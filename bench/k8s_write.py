#!/usr/bin/env python3
"""Benchmark: the runbook's Kubernetes write steps on the lab's two regions, module vs kubectl.

* Resolution 3 / 4.1 - restart every service in both regions and wait until rolled out:
  ``workload_restart`` (one Ansible task) against the runbook's ``kubectl rollout restart`` of one
  deployment after another, each followed by ``kubectl rollout status`` (so both end in the same state).
* 3.2 - scale user-service and order-service to 5 in both regions and wait until ready, then back
  to 2: ``workload_scale`` (one task each way) against ``kubectl scale`` + ``rollout status`` per
  deployment. The kubectl way leaves the HPAs' minimum at 2, so the HPA scales back down after a
  while (that is the bug the module avoids); the timing stops at "ready".

It needs a running lab (``incidentctl lab up``; ``--lab-dir`` and ``--port-base`` as for the lab)
and changes its services. A report, not a test: it prints figures and asserts nothing.

    .venv/bin/python bench/k8s_write.py
    .venv/bin/python bench/k8s_write.py --repeat 3 --only restart
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lab"))

from common import ansible_task  # noqa: E402

from incidentlab.config import LabConfig  # noqa: E402
from incidentlab.kube.cluster import wait_ready  # noqa: E402

NS = "microservices"
REGIONS = ("primary", "secondary")
SERVICES = ("user-service", "order-service", "payment-service", "inventory-service", "notification-service")


def kubectl(kubeconfig: str, context: str, *args: str) -> None:
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    out = subprocess.run(["kubectl", "--context", context, "-n", NS, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {out.stderr.strip()}")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab-dir", default=os.environ.get("INCIDENTLAB_DIR"))
    parser.add_argument("--port-base", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each way; the median is reported")
    parser.add_argument("--only", choices=["restart", "scale"], default=None)
    args = parser.parse_args()
    cfg = LabConfig.resolve(args.lab_dir, args.port_base)
    kubeconfig = str(cfg.path("kubeconfig"))
    clusters = {"kubeconfig": kubeconfig, "clusters": [{"name": r, "context": r} for r in REGIONS]}
    wait_ready(cfg, timeout=120)
    print(f"lab {cfg.lab_dir} (port base {cfg.port_base}); {os.cpu_count()} CPU(s); median of {args.repeat} run(s)")

    if args.only in (None, "restart"):

        def runbook_restart() -> None:
            for region in REGIONS:
                for svc in SERVICES:
                    kubectl(kubeconfig, region, "rollout", "restart", f"deployment/{svc}")
                    kubectl(kubeconfig, region, "rollout", "status", f"deployment/{svc}", "--timeout=300s")

        def module_restart() -> None:
            ansible_task("workload_restart", {**clusters, "namespace": NS, "name": list(SERVICES)})

        times = {"module": [], "runbook": []}
        for _ in range(args.repeat):
            times["module"].append(timed(module_restart))
            wait_ready(cfg, timeout=120)
            times["runbook"].append(timed(runbook_restart))
            wait_ready(cfg, timeout=120)
        m, r = statistics.median(times["module"]), statistics.median(times["runbook"])
        print("restart 5 services x 2 regions, until rolled out")
        print(f"  workload_restart, one Ansible task:                     {m:7.1f} s")
        print(f"  kubectl rollout restart + rollout status, one by one:   {r:7.1f} s   ({r / m:.1f}x)")

    if args.only in (None, "scale"):
        hot = ["user-service", "order-service"]

        def runbook_scale(n: int) -> None:
            for region in REGIONS:
                for svc in hot:
                    kubectl(kubeconfig, region, "scale", f"deployment/{svc}", f"--replicas={n}")
                    kubectl(kubeconfig, region, "rollout", "status", f"deployment/{svc}", "--timeout=300s")

        def module_scale(n: int) -> None:
            ansible_task("workload_scale", {**clusters, "namespace": NS, "name": hot, "replicas": n})

        def restore_hpas() -> None:
            for region in REGIONS:
                for svc in hot:
                    kubectl(
                        kubeconfig, region, "patch", f"hpa/{svc}", "-p", '{"spec":{"minReplicas":2,"maxReplicas":5}}'
                    )

        times = {"module": [], "runbook": []}
        for _ in range(args.repeat):
            times["module"].append(timed(lambda: module_scale(5)) + timed(lambda: module_scale(2)))
            restore_hpas()
            wait_ready(cfg, timeout=120)
            times["runbook"].append(timed(lambda: runbook_scale(5)) + timed(lambda: runbook_scale(2)))
            wait_ready(cfg, timeout=120)
        m, r = statistics.median(times["module"]), statistics.median(times["runbook"])
        print("scale 2 services x 2 regions to 5 until ready, then back to 2")
        print(f"  workload_scale, two Ansible tasks (HPA minimum moved):  {m:7.1f} s")
        print(f"  kubectl scale + rollout status, one by one (HPA not):   {r:7.1f} s   ({r / m:.1f}x)")


if __name__ == "__main__":
    main()
