#!/usr/bin/env python3
"""Benchmark: the runbook's quick health check (1.2) for many endpoints, three ways.

* ``service_health`` engine: every endpoint at once in a bounded pool (what the module does);
* the module through Ansible: the same plus Ansible's per-task cost (one task for every endpoint);
* the runbook's way: ``for service in ...; do curl -f ...; done``, one after the other.

A local server (its own process, so it does not share our GIL) answers every
``/svc-N/actuator/health`` with Spring Boot actuator JSON after a fixed delay.

    .venv/bin/python bench/health_check.py                 # 200 endpoints, 100 ms each
    .venv/bin/python bench/health_check.py -n 50 --delay 0.2 --repeat 5

A report, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "collection"))

from common import ansible_task  # noqa: E402

from ansible_collections.incident.response.plugins.module_utils import health  # noqa: E402

HOST = "127.0.0.1"
BODY = json.dumps({"status": "UP", "components": {"db": {"status": "UP"}, "ping": {"status": "UP"}}}).encode()


def serve(port_queue, delay: float) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.spring-boot.actuator.v3+json")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024

    server = Server((HOST, 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def time_engine(endpoints: list[dict], concurrency: int) -> float:
    start = time.perf_counter()
    checks = health.run_checks(endpoints, concurrency=concurrency)
    elapsed = time.perf_counter() - start
    down = [c for c in checks if c["status"] != "UP"]
    if down:
        raise SystemExit(f"engine: {len(down)} endpoints DOWN, e.g. {down[0]['error']}")
    return elapsed


def time_curl_loop(urls: list[str]) -> float:
    script = 'for url in "$@"; do curl -fsS -o /dev/null "$url" || echo "DOWN $url"; done'
    start = time.perf_counter()
    out = subprocess.run(["bash", "-c", script, "loop", *urls], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    if out.stdout.strip():
        raise SystemExit(f"curl loop: {out.stdout.splitlines()[0]}")
    return elapsed


def time_module(endpoints: list[dict]) -> float:
    """One ansible task (ansible localhost -m ...), as a playbook would run it."""
    return ansible_task("service_health", {"endpoints": endpoints})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--endpoints", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds each endpoint takes to answer")
    parser.add_argument("--concurrency", type=int, default=200, help="the module's concurrency option")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each way; the median is reported")
    parser.add_argument("--skip-curl", action="store_true", help="skip the slow sequential loop")
    parser.add_argument("--skip-ansible", action="store_true", help="skip the run through Ansible")
    args = parser.parse_args()

    ports: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(ports, args.delay), daemon=True)
    server.start()
    port = ports.get(timeout=10)
    urls = [f"http://{HOST}:{port}/svc-{i}/actuator/health" for i in range(args.endpoints)]
    endpoints = [{"name": f"svc-{i}", "url": url} for i, url in enumerate(urls)]
    print(
        f"{args.endpoints} endpoints, each answering after {args.delay * 1000:.0f} ms; "
        f"median of {args.repeat} run(s); {os.cpu_count()} CPU(s)"
    )

    try:
        time_engine(endpoints[:5], args.concurrency)  # warm-up: imports, first connections
        engine = statistics.median(time_engine(endpoints, args.concurrency) for _ in range(args.repeat))
        print(f"  service_health engine (concurrency {args.concurrency}): {engine:8.2f} s")
        if not args.skip_ansible:
            module = statistics.median(time_module(endpoints) for _ in range(args.repeat))
            print(f"  service_health module, one Ansible task:     {module:8.2f} s")
        if not args.skip_curl:
            if not shutil.which("curl"):
                raise SystemExit("curl is not installed: use --skip-curl")
            loop = statistics.median(time_curl_loop(urls) for _ in range(args.repeat))
            print(f"  runbook loop (curl -f, one after another):  {loop:8.2f} s")
            print(f"  engine speed-up over the loop: {loop / engine:.0f}x")
        print(f"  floor (the slowest endpoint): {args.delay:.2f} s")
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
