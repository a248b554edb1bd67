"""Steady synthetic traffic, so request-rate, error-rate and latency metrics exist.

Every service gets about one request per second through the global entry point (the
active region) and one through the secondary region's load balancer (so both regions have
a baseline); one request in five is a POST that writes a row. A slow or failing service
delays or fails only its own loop. Usage: ``python -m incidentlab.traffic --lab-dir DIR``.
A summary line (requests per status) goes to stdout every 30 seconds.

Pause and resume (tests that count the primary's transactions need it quiet): the control
file ``run/traffic.pause`` holds a token. While it exists no request starts; once none is in
flight either, the generator writes the token to ``run/traffic.paused``, so whoever paused
it knows the databases get no more writes from it. Deleting the control file resumes it.
``run/traffic.held`` then counts the request loops that have come to the gate and been held
since that pause ("<token> <held> <loops>"): once every loop has been held, each had its turn
to send and did not, which a test can observe instead of waiting for a quiet while.
A file rather than SIGSTOP: a stopped process cannot finish the requests it has sent, so a
pause could never say when the last write has landed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import os
import random
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from .config import LabConfig

SERVICES = ("user-service", "order-service", "payment-service", "inventory-service", "notification-service")
ENTRY_POINTS = ("lb-global", "lb-secondary")
INTERVAL = 1.0
TIMEOUT = 5.0
POST_SHARE = 0.2
CONTROL_POLL = 0.05  # how often the generator looks at the pause file


def pause_file(cfg: LabConfig) -> Path:
    return cfg.path("run", "traffic.pause")


def ack_file(cfg: LabConfig) -> Path:
    return cfg.path("run", "traffic.paused")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def request_pause(cfg: LabConfig) -> str:
    """Ask the generator to pause; returns the token it acknowledges once nothing is in flight."""
    token = f"{os.getpid()}-{time.time_ns()}"
    path = pause_file(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(token)
    tmp.replace(path)
    return token


def pause_acknowledged(cfg: LabConfig, token: str) -> bool:
    return _read(ack_file(cfg)) == token


def held_file(cfg: LabConfig) -> Path:
    return cfg.path("run", "traffic.held")


def loops_held(cfg: LabConfig, token: str) -> tuple[int, int]:
    """(loops held at the gate, loops) since the pause ``token``; (0, 0) before the generator says."""
    parts = (_read(held_file(cfg)) or "").split()
    if len(parts) != 3 or parts[0] != token:
        return 0, 0
    return int(parts[1]), int(parts[2])


def pause_token(cfg: LabConfig) -> str | None:
    return _read(pause_file(cfg))


def pause_requested(cfg: LabConfig) -> bool:
    return pause_file(cfg).exists()


def resume(cfg: LabConfig) -> bool:
    """Let the generator send again; True if it was paused."""
    try:
        pause_file(cfg).unlink()
    except FileNotFoundError:
        return False
    return True


def paused_since(cfg: LabConfig) -> float | None:
    try:
        return pause_file(cfg).stat().st_mtime
    except FileNotFoundError:
        return None


def describe(cfg: LabConfig) -> str:
    since = paused_since(cfg)
    if since is None:
        return "10 requests/s"
    at = time.strftime("%H:%M:%S", time.localtime(since))
    return f"paused since {at} (`incidentctl lab traffic resume` or `lab heal` resumes it)"


def state(cfg: LabConfig, record=None) -> dict:
    """The generator's state for scripts: running, paused (since when), and whether it has acknowledged the pause."""
    since = paused_since(cfg)
    token = _read(pause_file(cfg))
    return {
        "running": bool(record is not None and record.running),
        "paused": since is not None,
        "paused_since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)) if since is not None else None,
        "drained": token is not None and pause_acknowledged(cfg, token),
    }


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


class Traffic:
    def __init__(self, cfg: LabConfig, rate: float = 1.0):
        self.cfg = cfg
        self.interval = INTERVAL / rate
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts: collections.Counter = collections.Counter()
        # The pause gate: no request starts while paused; in_flight counts the ones sent.
        self.gate = threading.Condition()
        self.paused = False
        self.in_flight = 0
        self.held: set[str] = set()  # loops held at the gate since the current pause
        self.loops = 0

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
        except http.client.HTTPException:  # an answer cut short: its service or LB went away while answering
            return "cut short"

    def _enter(self) -> bool:
        """Wait while paused, then count a request as in flight; False when stopping."""
        while True:
            with self.gate:
                if not self.paused:
                    self.in_flight += 1
                    return True
                while self.paused and not self.stop.is_set():
                    self.held.add(threading.current_thread().name)  # again after a new pause cleared it
                    self.gate.wait(0.5)
            # Spread the loops over the interval again, so a resume is no burst.
            if self.stop.wait(random.uniform(0, self.interval)):
                return False

    def _leave(self) -> None:
        with self.gate:
            self.in_flight -= 1
            self.gate.notify_all()

    def loop(self, entry: str, service: str) -> None:
        # Spread the loops over the interval so the load is even.
        self.stop.wait(random.uniform(0, self.interval))
        while not self.stop.is_set():
            if not self._enter():
                break
            started = time.monotonic()
            try:
                outcome = self.one(entry, service)
            except Exception as exc:  # a loop that died would send no more and never be held at a pause
                outcome = f"error {type(exc).__name__}"
            finally:
                self._leave()
            with self.lock:
                self.counts[(entry, outcome)] += 1
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def control(self) -> None:
        """Follow the pause file: pause (and acknowledge once drained) or resume."""
        acked, held_written = None, -1
        while not self.stop.wait(CONTROL_POLL):
            token = _read(pause_file(self.cfg))
            if token is None:
                if self.paused:
                    with self.gate:
                        self.paused = False
                        self.gate.notify_all()
                    for f in (ack_file(self.cfg), held_file(self.cfg)):
                        with contextlib.suppress(FileNotFoundError):
                            f.unlink()
                    print("traffic: resumed", flush=True)
                acked, held_written = None, -1
            elif token != acked:
                with self.gate:
                    self.paused = True
                    self.held.clear()
                    self.gate.notify_all()  # loops already held count themselves for this pause too
                    self.gate.wait_for(lambda: self.in_flight == 0)
                _write(ack_file(self.cfg), token)
                acked, held_written = token, -1
                print("traffic: paused, no request in flight", flush=True)
            if acked is not None and len(self.held) != held_written:
                held_written = len(self.held)
                _write(held_file(self.cfg), f"{acked} {held_written} {self.loops}")

    def run(self, report_every: float = 30.0) -> None:
        self.paused = pause_requested(self.cfg)  # started while a pause is asked for: send nothing
        threading.Thread(target=self.control, daemon=True).start()
        self.loops = len(ENTRY_POINTS) * len(SERVICES)
        for entry in ENTRY_POINTS:
            for service in SERVICES:
                threading.Thread(
                    target=self.loop, args=(entry, service), name=f"{entry}/{service}", daemon=True
                ).start()
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
