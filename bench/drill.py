"""Time to mitigation: the P0 drills, phase by phase, by incidentctl and by the runbook's own commands.

Each run starts a fresh lab, injects the fault and starts the response; beside it a writer posts to
the application through the global entry point every 50 ms and a watcher reads the services'
ConfigMap, so the phases are measured from the outside, not from the automation's own account:

  db-primary-down: triage done, promotion, ConfigMap patched, first accepted write, verified, summary
  region-down:     triage done, traffic switched, global entry answers from the secondary, verified, summary

Times are seconds from the start of the response (the fault comes just before). ``--by-hand`` runs
the runbook's commands as a script instead (mysql STOP SLAVE/RESET SLAVE ALL, kubectl patch
configmap, kubectl rollout restart, curl; for a region, the global entry's upstream rewritten and
nginx reloaded), timed the same way.

With ``--compare DIR`` each run also responds with another checkout of the project (its controller,
playbooks and collection: ``git worktree add DIR <commit>``), alternating which goes first, so a
before/after comparison sees the same load of the machine.

  .venv/bin/python bench/drill.py [--runs 5] [--fault db-primary-down|region-down] [--by-hand] [--compare DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from incidentlab.lab import Lab  # noqa: E402
from support import claim_port_base  # noqa: E402

SERVICES = ["user-service", "order-service", "payment-service", "inventory-service", "notification-service"]
POLL = 0.05


class Probe(threading.Thread):
    """Starts a check every 50 ms and keeps the earliest start, after ``since``, of a check that held.

    With ``overlap`` each check runs in a thread of its own: a request that hangs (sent to a frozen region) does
    not hold back the next ones, so the switch is seen within one poll, not after the hanging request's timeout.
    """

    def __init__(self, check, overlap=True):
        super().__init__(daemon=True)
        self.check = check
        self.overlap = overlap
        self.stop = threading.Event()
        self.since = None
        self.first = None
        self.lock = threading.Lock()

    def _one(self, t):
        try:
            ok = self.check()
        except Exception:  # the platform is broken on purpose: an error is "not yet"
            ok = False
        if ok and self.since is not None and t >= self.since:
            with self.lock:
                if self.first is None or t < self.first:
                    self.first = t

    def run(self):
        while not self.stop.is_set():
            if self.overlap:
                threading.Thread(target=self._one, args=(time.monotonic(),), daemon=True).start()
            else:
                self._one(time.monotonic())
            time.sleep(POLL)


def http(url: str, method: str = "GET", body: bytes | None = None, timeout: float = 1.0):
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers or {})


def configmap_port(lab: Lab, region: str) -> str | None:
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(lab.cfg.path("kubeconfig")), "--context", region, "-n", "microservices",
         "get", "configmap", "microservice-config", "-o", "jsonpath={.data.db\\.port}"],
        capture_output=True, text=True, timeout=2,
    )  # fmt: skip
    return out.stdout.strip() or None


def respond(lab: Lab, incidents: Path, project: str | None = None) -> tuple[subprocess.Popen, list]:
    """incidentctl respond (this checkout's, or ``project``'s), with the time each output line appeared."""
    env = {**os.environ, "INCIDENTLAB_DIR": str(lab.cfg.lab_dir), "INCIDENTCTL_INCIDENTS_DIR": str(incidents),
           "COLUMNS": "200"}  # fmt: skip
    if project:
        env.update(INCIDENTCTL_PROJECT_DIR=project, PYTHONPATH=str(Path(project) / "controller"))
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("incidentctl")), "respond", "-i", "lab", "--yes"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list = []

    def read():
        for line in proc.stdout:
            lines.append((time.monotonic(), line.rstrip()))

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def by_hand(lab: Lab, fault: str) -> None:
    """The runbook's commands, one after another, as an operator would paste them."""
    kube = ["kubectl", "--kubeconfig", str(lab.cfg.path("kubeconfig")), "-n", "microservices"]
    if fault == "region-down":
        upstream = lab.cfg.path("nginx", "global", "upstream.conf")
        upstream.write_text(f"upstream active_region {{\n    server 127.0.0.1:{lab.cfg.ports['lb-secondary']};\n}}\n")
        prefix = lab.cfg.path("nginx", "global")
        subprocess.run(["nginx", "-s", "reload", "-p", str(prefix), "-c", str(prefix / "nginx.conf")], check=True)
        return
    secrets = lab.secrets()
    mysql = ["mysql", "-h", "127.0.0.1", "-P", str(lab.cfg.ports["db-replica"]), "-u", "incident_admin",
             f"-p{secrets['admin']}"]  # fmt: skip
    subprocess.run([*mysql, "-e", "SHOW SLAVE STATUS"], capture_output=True, check=True)
    # The runbook's STOP SLAVE; RESET SLAVE ALL leaves read_only on: nothing could write. An operator adds it.
    subprocess.run([*mysql, "-e", "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF"], check=True)
    port = str(lab.cfg.ports["db-replica"])
    for region in ("primary", "secondary"):
        patch = json.dumps({"data": {"db.host": "127.0.0.1", "db.port": port}})
        subprocess.run([*kube, "--context", region, "patch", "configmap", "microservice-config", "-p", patch],
                       check=True, capture_output=True)  # fmt: skip
        for service in SERVICES:
            subprocess.run([*kube, "--context", region, "rollout", "restart", f"deployment/{service}"],
                           check=True, capture_output=True)  # fmt: skip
    for region in ("primary", "secondary"):
        for service in SERVICES:
            subprocess.run([*kube, "--context", region, "rollout", "status", f"deployment/{service}", "--timeout=120s"],
                           check=True, capture_output=True)  # fmt: skip


def one(fault: str, hand: bool, base: int, project: str | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="drill-") as tmp:
        lab = Lab.open(Path(tmp) / "lab", base)
        lab.up()
        try:
            return _drill(lab, Path(tmp) / "incidents", fault, hand, project)
        finally:
            lab.down()


def _drill(lab: Lab, incidents: Path, fault: str, hand: bool, project: str | None = None) -> dict:
    glob = lab.cfg.url("lb-global")
    writer = Probe(lambda: http(f"{glob}/order-service/api/records", "POST", b'{"source":"drill"}')[0] == 201)
    served = Probe(lambda: (r := http(f"{glob}/order-service/actuator/health"))[0] == 200
                   and r[1].get("X-Lab-Region") == "secondary")  # fmt: skip
    replica_port = str(lab.cfg.ports["db-replica"])
    patched = Probe(lambda: configmap_port(lab, "primary") == replica_port, overlap=False)  # a kubectl each
    probes = [writer, patched] if fault == "db-primary-down" else [served]
    for p in probes:
        p.start()
    time.sleep(1.0)  # let the probes settle on the healthy platform before the fault (a benchmark, not a test)
    lab.break_fault(fault)
    start, start_wall = time.monotonic(), time.time()
    for p in probes:
        p.since = start
    phases: dict = {}
    if hand:
        by_hand(lab, fault)
        phases["done"] = time.monotonic() - start
    else:
        proc, lines = respond(lab, incidents, project)
        proc.wait(timeout=600)
        end = time.monotonic()
        phases["summary"] = (
            next((t for t, line in lines if line.startswith("─") and "incident INC-" in line), end) - start
        )
        phases["exit"] = end - start
        inc_dir = next(p for p in incidents.iterdir() if p.name.startswith("INC-"))
        timeline = [json.loads(x) for x in (inc_dir / "timeline.jsonl").read_text().splitlines() if x.strip()]
        for name, pred in (
            ("triage done", lambda e: e.get("kind") == "triage finished"),
            ("promotion", lambda e: e.get("module") == "incident.response.mysql_promote" and e.get("changed")),
            (
                "traffic switched",
                lambda e: e.get("module") == "incident.response.traffic_failover" and e.get("changed"),
            ),
        ):
            hit = next((e for e in timeline if pred(e)), None)
            if hit is not None:
                phases[name] = hit["ts"] - start_wall  # timeline times are wall-clock
        # Verified: the procedure's last verification step ended (a real write through the application path), in
        # a run that ended mitigated; what follows it (the final notification, the record of the changes) is not
        # waited for by users.
        if any(e.get("kind") == "mitigated" for e in timeline):
            checks = [e for e in timeline if str(e.get("task", "")).startswith("Verify - ")]
            if checks:
                phases["verified"] = checks[-1]["ts"] - start_wall
        if proc.returncode != 0:
            phases["rc"] = proc.returncode
    deadline = time.monotonic() + 30
    while any(p.first is None for p in probes) and time.monotonic() < deadline:
        time.sleep(POLL)
    for p in probes:
        p.stop.set()
    time.sleep(1.1)  # checks still in flight (1 s timeout) may have started earlier than the first one that held
    if fault == "db-primary-down":
        phases["ConfigMap patched"] = None if patched.first is None else patched.first - start
        phases["first accepted write"] = None if writer.first is None else writer.first - start
    else:
        phases["served from secondary"] = None if served.first is None else served.first - start
    return phases


ORDER = ["triage done", "promotion", "traffic switched", "ConfigMap patched", "first accepted write",
         "served from secondary", "verified", "summary", "exit", "done"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--fault", choices=["db-primary-down", "region-down"], action="append")
    ap.add_argument("--by-hand", action="store_true", help="the runbook's commands instead of incidentctl")
    ap.add_argument("--compare", default=None, help="also respond with this checkout of the project (before/after)")
    args = ap.parse_args()
    ways = [None, str(Path(args.compare).resolve())] if args.compare else [None]
    base = claim_port_base()
    for fault in args.fault or ["db-primary-down", "region-down"]:
        runs: dict = {way: [] for way in ways}
        for i in range(args.runs):
            for way in ways if i % 2 == 0 else ways[::-1]:
                phases = one(fault, args.by_hand, base, way)
                runs[way].append(phases)
                print(f"# {fault} run {i + 1}{' ' + Path(way).name if way else ''}: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in phases.items() if v is not None),
                      file=sys.stderr, flush=True)  # fmt: skip
        print(f"\n{fault} ({'runbook by hand' if args.by_hand else 'incidentctl respond'}, {args.runs} runs, "
              f"load {os.getloadavg()[0]:.1f})\n")  # fmt: skip
        names = [Path(w).name if w else "this checkout" for w in ways[::-1]]
        print("| phase | " + " | ".join(f"{n}: median (range), s" for n in names) + " |")
        print("|---|" + "---|" * len(ways))
        for name in ORDER:
            cells = []
            for way in ways[::-1]:
                values = [r[name] for r in runs[way] if r.get(name) is not None]
                cells.append(
                    f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})" if values else "-"
                )
            if any(c != "-" for c in cells):
                print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
