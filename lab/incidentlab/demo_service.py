"""The demo microservice: one program that runs as any of the runbook's five services.

Configuration comes only from the environment, as it would in a pod:

  SERVICE_NAME   user-service | order-service | payment-service | inventory-service | notification-service
  PORT           HTTP port (default 8080); HOST the bind address (default 127.0.0.1)
  DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD   the shop database
  POD_NAME, REGION                                   shown in logs and health
  LAB_RESPONSE_DELAY_MS   fault knob: every /api response is delayed (a slow service) and says so
                          in its header X-Lab-Delay-Ms
  LAB_FAIL_ON_START       fault knob: exit with an error at start (a crash loop)

It serves a Spring-Boot-style ``/actuator/health`` and ``/actuator/prometheus``, and
``/api/records`` (GET reads, POST writes a row in the service's table). Logs are JSON
lines on stdout.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pymysql

SERVICES = ("user-service", "order-service", "payment-service", "inventory-service", "notification-service")

# The table each service owns and how it makes a believable new row.
TABLES: dict[str, tuple[str, str, callable]] = {
    "user-service": (
        "users",
        "INSERT INTO users (name, email) VALUES (%s, %s)",
        lambda: (f"user{random.randint(1000, 9999)}", f"user{random.randint(1000, 9999)}@example.com"),
    ),
    "order-service": (
        "orders",
        "INSERT INTO orders (user_id, total, status) VALUES (%s, %s, %s)",
        lambda: (random.randint(1, 5), round(random.uniform(5, 500), 2), "NEW"),
    ),
    "payment-service": (
        "payments",
        "INSERT INTO payments (order_id, amount, status) VALUES (%s, %s, %s)",
        lambda: (random.randint(1, 5), round(random.uniform(5, 500), 2), "CAPTURED"),
    ),
    "inventory-service": (
        "inventory",
        "INSERT INTO inventory (sku, quantity) VALUES (%s, %s)",
        lambda: (f"SKU-{random.randint(10000, 99999)}", random.randint(0, 100)),
    ),
    "notification-service": (
        "notifications",
        "INSERT INTO notifications (user_id, channel, message) VALUES (%s, %s, %s)",
        lambda: (random.randint(1, 5), "email", "Your order has shipped"),
    ),
}

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HEALTH_CACHE_SECONDS = 1.0
DISK_THRESHOLD = 10 * 1024 * 1024


CONFIG: dict = {}


def log(level: str, msg: str, **fields) -> None:
    rec = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
        "level": level,
        "service": CONFIG.get("service", "?"),
        "pod": CONFIG.get("pod", ""),
        "msg": msg,
    }
    rec.update(fields)
    sys.stdout.write(json.dumps(rec) + "\n")
    sys.stdout.flush()


def load_config(env: dict[str, str]) -> dict:
    service = env.get("SERVICE_NAME", "")
    if service not in SERVICES:
        raise SystemExit(f"SERVICE_NAME must be one of {', '.join(SERVICES)} (got {service!r})")
    return {
        "service": service,
        "host": env.get("HOST", "127.0.0.1"),
        "port": int(env.get("PORT", "8080")),
        "pod": env.get("POD_NAME", env.get("HOSTNAME", "")),
        "region": env.get("REGION", ""),
        "db_host": env.get("DB_HOST", "127.0.0.1"),
        "db_port": int(env.get("DB_PORT", "3306")),
        "db_name": env.get("DB_NAME", "shop"),
        "db_user": env.get("DB_USER", ""),
        "db_password": env.get("DB_PASSWORD", ""),
        "delay": int(env.get("LAB_RESPONSE_DELAY_MS", "0") or 0) / 1000.0,
        "fail_on_start": env.get("LAB_FAIL_ON_START", "") not in ("", "0", "false"),
    }


def connect() -> pymysql.connections.Connection:
    return pymysql.connect(
        host=CONFIG["db_host"],
        port=CONFIG["db_port"],
        user=CONFIG["db_user"],
        password=CONFIG["db_password"],
        database=CONFIG["db_name"],
        connect_timeout=1,
        read_timeout=3,
        write_timeout=3,
        autocommit=True,
        # Loopback only; without this pymysql builds an SSL context (loading the CA store) on every
        # connect, ~35 ms of CPU each, which is most of what 20 pods cost the 2-core lab machine.
        ssl_disabled=True,
    )


class Metrics:
    """http_server_requests_seconds as a Prometheus histogram, labelled like Spring Boot's."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.series: dict[tuple, list] = {}

    def observe(self, method: str, uri: str, status: int, seconds: float) -> None:
        outcome = "SUCCESS" if status < 400 else ("CLIENT_ERROR" if status < 500 else "SERVER_ERROR")
        key = (method, uri, str(status), outcome)
        with self.lock:
            s = self.series.setdefault(key, [0, 0.0, [0] * len(BUCKETS)])
            s[0] += 1
            s[1] += seconds
            for i, le in enumerate(BUCKETS):
                if seconds <= le:
                    s[2][i] += 1

    def render(self) -> str:
        app = CONFIG["service"]
        lines = [
            "# HELP http_server_requests_seconds Duration of HTTP server request handling",
            "# TYPE http_server_requests_seconds histogram",
        ]
        with self.lock:
            items = sorted(self.series.items())
            for (method, uri, status, outcome), (count, total, buckets) in items:
                labels = f'application="{app}",method="{method}",uri="{uri}",status="{status}",outcome="{outcome}"'
                for le, n in zip(BUCKETS, buckets, strict=True):
                    lines.append(f'http_server_requests_seconds_bucket{{{labels},le="{le}"}} {n}')
                lines.append(f'http_server_requests_seconds_bucket{{{labels},le="+Inf"}} {count}')
                lines.append(f"http_server_requests_seconds_count{{{labels}}} {count}")
                lines.append(f"http_server_requests_seconds_sum{{{labels}}} {total:.6f}")
        lines += [
            "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds",
            "# TYPE process_start_time_seconds gauge",
            f"process_start_time_seconds {STARTED:.3f}",
        ]
        return "\n".join(lines) + "\n"


METRICS = Metrics()
STARTED = time.time()


class Health:
    """Spring-Boot-style health with a short cache, so probes do not hammer the database."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cached: tuple[float, dict] | None = None
        self.last_status = None

    def db_component(self) -> dict:
        details = {"database": "MariaDB", "host": CONFIG["db_host"], "port": CONFIG["db_port"]}
        try:
            conn = connect()
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT @@global.read_only")
                    read_only = bool(cur.fetchone()[0])
            finally:
                conn.close()
        except pymysql.MySQLError as exc:
            details["error"] = f"{type(exc).__name__}: {exc.args[-1] if exc.args else exc}"
            return {"status": "DOWN", "details": details}
        details["readOnly"] = read_only
        if read_only:
            details["error"] = f"database {CONFIG['db_host']}:{CONFIG['db_port']} is read-only; writes would fail"
            return {"status": "DOWN", "details": details}
        return {"status": "UP", "details": details}

    def disk_component(self) -> dict:
        usage = shutil.disk_usage("/")
        status = "UP" if usage.free > DISK_THRESHOLD else "DOWN"
        return {
            "status": status,
            "details": {"total": usage.total, "free": usage.free, "threshold": DISK_THRESHOLD, "exists": True},
        }

    def get(self) -> dict:
        with self.lock:
            now = time.monotonic()
            if self.cached and now - self.cached[0] < HEALTH_CACHE_SECONDS:
                return self.cached[1]
            components = {"db": self.db_component(), "diskSpace": self.disk_component(), "ping": {"status": "UP"}}
            status = "UP" if all(c["status"] == "UP" for c in components.values()) else "DOWN"
            body = {"status": status, "components": components}
            if status != self.last_status:
                fields = {"from": self.last_status, "to": status}
                if components["db"]["status"] != "UP":
                    fields["reason"] = components["db"]["details"].get("error")
                log("INFO" if status == "UP" else "ERROR", "health changed", **fields)
                self.last_status = status
            self.cached = (now, body)
            return body


HEALTH = Health()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "demo-service/1.0"

    def log_message(self, format, *args):
        pass  # access logs are our own JSON lines

    def _send(self, status: int, body: object, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body, default=str).encode()
        if content_type == "application/json" and self.path.startswith("/actuator"):
            content_type = "application/vnd.spring-boot.actuator.v3+json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if self.delayed_ms:  # the fault's delay was applied to this answer (tests check it, not the clock)
            self.send_header("X-Lab-Delay-Ms", str(self.delayed_ms))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        start = time.perf_counter()
        url = urlsplit(self.path)
        uri = url.path
        self.delayed_ms = 0
        # The body is read before any answer: one left unread on a kept-alive connection (nginx's upstream
        # keepalive) would be taken for the start of the next request, which then fails as "{}POST" (501).
        try:
            self.rfile.read(max(0, int(self.headers.get("Content-Length") or 0)))
        except ValueError:  # no length to trust: this connection cannot carry another request
            self.close_connection = True
        if CONFIG["delay"] and uri.startswith("/api/"):
            # A slow service is slow at its business endpoints; health and metrics stay fast, as
            # when a downstream dependency is slow (and Prometheus can still scrape it).
            time.sleep(CONFIG["delay"])
            self.delayed_ms = int(CONFIG["delay"] * 1000)
        try:
            status = self._route(method, uri, parse_qs(url.query))
        except (BrokenPipeError, ConnectionResetError):
            return
        except Exception as exc:  # a demo service must never die on a request
            log("ERROR", "unhandled error", path=uri, error=repr(exc))
            status = 500
            self._send(500, {"error": "internal error"})
        elapsed = time.perf_counter() - start
        METRICS.observe(method, uri if uri in KNOWN_URIS else "UNKNOWN", status, elapsed)
        if uri.startswith("/api/") or status >= 500:
            log(
                "INFO" if status < 500 else "ERROR",
                "request",
                method=method,
                path=uri,
                status=status,
                ms=round(elapsed * 1000, 1),
            )

    def _route(self, method: str, uri: str, query: dict) -> int:
        if uri == "/actuator/health" and method == "GET":
            body = HEALTH.get()
            status = 200 if body["status"] == "UP" else 503
            self._send(status, body)
            return status
        if uri == "/actuator/prometheus" and method == "GET":
            self._send(200, METRICS.render(), "text/plain; version=0.0.4; charset=utf-8")
            return 200
        if uri == "/api/records":
            return self._records(method, query)
        self._send(404, {"error": f"no route for {method} {uri}"})
        return 404

    def _records(self, method: str, query: dict) -> int:
        table, insert, values = TABLES[CONFIG["service"]]
        try:
            conn = connect()
            try:
                with conn.cursor(pymysql.cursors.DictCursor) as cur:
                    if method == "GET":
                        limit = max(1, min(100, int(query.get("limit", ["10"])[0])))
                        cur.execute(f"SELECT * FROM {table} ORDER BY id DESC LIMIT %s", (limit,))
                        rows = cur.fetchall()
                        self._send(200, {"table": table, "rows": rows}, "application/json")
                        return 200
                    if method == "POST":
                        cur.execute(insert, values())
                        row_id = cur.lastrowid
                        self._send(201, {"table": table, "id": row_id, "db_host": CONFIG["db_host"]})
                        return 201
            finally:
                conn.close()
        except pymysql.MySQLError as exc:
            error = f"{type(exc).__name__}: {exc.args[-1] if exc.args else exc}"
            log("ERROR", "database error", table=table, error=error)
            self._send(503, {"error": error, "db_host": CONFIG["db_host"]})
            return 503
        except ValueError:
            self._send(400, {"error": "limit must be a number"})
            return 400
        self._send(405, {"error": f"{method} not allowed"})
        return 405

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")


KNOWN_URIS = {"/actuator/health", "/actuator/prometheus", "/api/records"}


def main() -> None:
    CONFIG.update(load_config(dict(os.environ)))
    if CONFIG["fail_on_start"]:
        log("ERROR", "fatal: cannot initialise application context", reason="LAB_FAIL_ON_START is set")
        sys.exit(1)
    server = ThreadingHTTPServer((CONFIG["host"], CONFIG["port"]), Handler)
    server.daemon_threads = True

    def stop(signum, frame):
        log("INFO", "shutting down", signal=signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(
        "INFO",
        "started",
        port=CONFIG["port"],
        region=CONFIG["region"],
        db=f"{CONFIG['db_host']}:{CONFIG['db_port']}/{CONFIG['db_name']}",
        delay_ms=int(CONFIG["delay"] * 1000),
    )
    server.serve_forever(poll_interval=0.2)
    server.server_close()


if __name__ == "__main__":
    main()
