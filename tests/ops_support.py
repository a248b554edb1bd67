"""Helpers for the tests of the operations modules: tiny local HTTP servers and demo service processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from support import wait_for

HOST = "127.0.0.1"

# handler(method, path, body) -> (status, content_type, body)
Handler = Callable[[str, str, bytes], tuple[int, str, str]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class TinyServer:
    """A threaded HTTP server in this process; counts requests in flight (``peak``) and records paths."""

    def __init__(self, handler: Handler, delay: float = 0.0, port: int | None = None):
        self.handler = handler
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.paths: list[str] = []
        outer = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _do(self):
                with outer.lock:
                    outer.in_flight += 1
                    outer.peak = max(outer.peak, outer.in_flight)
                    outer.paths.append(self.path)
                try:
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    if outer.delay:
                        time.sleep(outer.delay)
                    status, ctype, text = outer.handler(self.command, self.path, body)
                    data = text.encode()
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1

            do_GET = do_POST = do_PUT = do_PATCH = do_HEAD = _do

        class _Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024  # many clients connect at once

        self.server = _Server((HOST, port or 0), _H)
        self.port = self.server.server_address[1]
        self.url = f"http://{HOST}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> TinyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def actuator(status: str = "UP", **components: str) -> tuple[int, str, str]:
    """A Spring-Boot-style health answer."""
    body = {"status": status, "components": {k: {"status": v} for k, v in components.items()}}
    return (200 if status == "UP" else 503), "application/vnd.spring-boot.actuator.v3+json", json.dumps(body)


class DemoServices:
    """Demo service processes started directly against a lab database (as in tests/lab/test_demo_service.py)."""

    def __init__(self, lab):
        self.lab = lab
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, db_node: str = "db-primary", region: str = "primary") -> tuple[str, subprocess.Popen]:
        from incidentlab.config import DB_USERS

        port = free_port()
        env = {
            **os.environ,
            "SERVICE_NAME": name,
            "PORT": str(port),
            "POD_NAME": f"{name}-ops-test",
            "REGION": region,
            "DB_HOST": HOST,
            "DB_PORT": str(self.lab.cfg.ports[db_node]),
            "DB_USER": DB_USERS["app"],
            "DB_PASSWORD": self.lab.secrets()["app"],
        }
        proc = subprocess.Popen([sys.executable, "-m", "incidentlab.demo_service"], env=env, stdout=subprocess.DEVNULL)
        self.procs.append(proc)
        base = f"http://{HOST}:{port}"
        wait_for(lambda: get(base + "/actuator/health")[0] in (200, 503), 30, f"{name} answering")
        return base, proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(5)
