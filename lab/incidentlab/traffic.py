"""Steady synthetic traffic, so request-rate, error-rate and latency metrics exist.

Every service gets about one request per second through the global entry point (the
active region) and one through the secondary region's load balancer (so both regions have
a baseline); one request in five is a POST that writes a row. A slow or failing service
delays or fails only its own loop. Usage: ``python -m incidentlab.traffic --lab-dir DIR``.
A summary line (requests per status) goes to stdout every 30 seconds.
"""

from __future__ import annotations

import argparse
import collections
import random
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

from .config import LabConfig

SERVICES = ("user-service", "order-service", "payment-service", "inventory-service", "notification-service")
ENTRY_POINTS = ("lb-global", "lb-secondary")
INTERVAL = 1.0
TIMEOUT = 5.0
POST_SHARE = 0.2


class Traffic:
    def __init__(self, cfg: LabConfig, rate: float = 1.0):
        self.cfg = cfg
        self.interval = INTERVAL / rate
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts: collections.Counter = collections.Counter()

    def one(self, entry: str, service: str) -> str:
        post = random.random() < POST_SHARE
        url = self.cfg.url(entry, f"/{service}/api/records" + ("" if post else "?limit=5"))
        req = urllib.request.Request(
            url,
            data=b"{}" if post else None,
            method="POST" if post else "GET",
            headers={"Content-Type": "application/json", "User-Agent": "incidentlab-traffic"},
        )
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
                r.read()
                return str(r.status)
        except urllib.error.HTTPError as exc:
            return str(exc.code)
        except (OSError, ValueError):
            return "timeout/refused"

    def loop(self, entry: str, service: str) -> None:
        # Spread the loops over the interval so the load is even.
        self.stop.wait(random.uniform(0, self.interval))
        while not self.stop.is_set():
            started = time.monotonic()
            outcome = self.one(entry, service)
            with self.lock:
                self.counts[(entry, outcome)] += 1
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def run(self, report_every: float = 30.0) -> None:
        for entry in ENTRY_POINTS:
            for service in SERVICES:
                threading.Thread(target=self.loop, args=(entry, service), daemon=True).start()
        print(
            f"traffic: {len(ENTRY_POINTS) * len(SERVICES)} loops, one request every {self.interval:g}s each, "
            f"through {', '.join(ENTRY_POINTS)}",
            flush=True,
        )
        while not self.stop.wait(report_every):
            with self.lock:
                counts, self.counts = self.counts, collections.Counter()
            summary = ", ".join(f"{e} {o}: {n}" for (e, o), n in sorted(counts.items()))
            print(f"traffic: last {report_every:g}s: {summary or 'nothing sent'}", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m incidentlab.traffic")
    ap.add_argument("--lab-dir", default=None)
    ap.add_argument("--rate", type=float, default=1.0, help="requests per second per service and entry point")
    args = ap.parse_args(argv)
    traffic = Traffic(LabConfig.resolve(args.lab_dir), args.rate)
    signal.signal(signal.SIGTERM, lambda *_: traffic.stop.set())
    signal.signal(signal.SIGINT, lambda *_: traffic.stop.set())
    traffic.run()
    sys.exit(0)


if __name__ == "__main__":
    main()
