"""traffic_failover through a real nginx that this fixture starts (the lab's lb-global is not in main yet).

The global entry point proxies to the upstream block of an include file, as lb-global will; two
tiny backends stand in for the regional load balancers and answer with their region's name.
Every switch and rollback is proven by requests through nginx.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from ops_support import HOST, TinyServer, actuator, free_port, get
from support import run_module, wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

MAIN_CONF = """\
daemon off;
master_process on;
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/temp/body;
    proxy_temp_path {d}/temp/proxy;
    fastcgi_temp_path {d}/temp/fastcgi;
    uwsgi_temp_path {d}/temp/uwsgi;
    scgi_temp_path {d}/temp/scgi;
    include {d}/upstream.conf;
    server {{
        listen {host}:{port};
        location / {{
            proxy_pass http://global_backend;
        }}
    }}
}}
"""


class Region:
    """A regional load balancer stand-in: answers its name, and an actuator health that can be made DOWN;
    ``/hang`` answers only once ``release`` is set (a request stuck on a frozen region)."""

    def __init__(self, name: str):
        self.name = name
        self.healthy = True
        self.release = threading.Event()
        self.server = TinyServer(self.handle)

    def handle(self, method, path, body):
        if path.startswith("/actuator/health"):
            return actuator("UP" if self.healthy else "DOWN", db="UP" if self.healthy else "DOWN")
        if path.startswith("/hang"):
            self.release.wait(30)
        return 200, "text/plain", f"{self.name}\n"


class GlobalLB:
    def __init__(self, tmp: Path):
        self.dir = tmp
        (tmp / "temp").mkdir()
        self.port = free_port()
        self.conf = tmp / "nginx.conf"
        self.upstream = tmp / "upstream.conf"
        self.pid_file = tmp / "nginx.pid"
        self.conf.write_text(MAIN_CONF.format(d=tmp, host=HOST, port=self.port))
        self.primary = Region("primary")
        self.secondary = Region("secondary")
        # written by hand, as an operator (or the lab) would: the module recognises it by its servers
        self.upstream.write_text(f"upstream global_backend {{\n    server {HOST}:{self.primary.server.port};\n}}\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> GlobalLB:
        self.primary.server.__enter__()
        self.secondary.server.__enter__()
        self.proc = subprocess.Popen(
            [NGINX, "-c", str(self.conf), "-e", str(self.dir / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_for(lambda: self.pid_file.exists() and self.serving() == "primary", 30, "nginx proxying to primary")
        return self

    def stop_nginx(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def stop(self) -> None:
        self.stop_nginx()
        self.primary.server.__exit__()
        self.secondary.server.__exit__()

    def serving(self) -> str:
        """Which region answers a request through the global entry point."""
        return get(f"http://{HOST}:{self.port}/")[1].strip()

    def regions(self) -> dict:
        return {
            r.name: {
                "servers": [f"{HOST}:{r.server.port}"],
                "health_url": f"{r.server.url}/actuator/health",
            }
            for r in (self.primary, self.secondary)
        }

    def args(self, **extra) -> dict:
        return {
            "provider": "nginx",
            "regions": self.regions(),
            "upstream_file": str(self.upstream),
            "upstream_name": "global_backend",
            "nginx_config": str(self.conf),
            "pid_file": str(self.pid_file),
            "nginx_error_log": str(self.dir / "error.log"),
            **extra,
        }


@pytest.fixture
def lb(tmp_path):
    lb = GlobalLB(tmp_path).start()
    yield lb
    lb.stop()


def test_a_request_stuck_on_the_old_region_does_not_hold_the_switch(lb):
    """An old worker with a request in flight to a frozen region stops taking connections at the reload: the
    module ends once every old worker exited or shuts down (draining), not when the stuck request ends."""
    stuck = threading.Thread(target=lambda: get(f"http://{HOST}:{lb.port}/hang", timeout=40), daemon=True)
    stuck.start()
    wait_for(lambda: any(p.startswith("/hang") for p in lb.primary.server.paths), 10, "a request stuck on primary")
    try:
        res = run_module("traffic_failover", lb.args(to_region="secondary", confirm=True, reload_timeout=20))
        assert not res["failed"], res.get("msg")
        reload = res["reload"]
        assert reload["complete"] is True and len(reload["draining"]) == 1, reload
        assert [lb.serving() for _ in range(5)] == ["secondary"] * 5
        assert stuck.is_alive()  # the module did not wait for it: the old worker still finishes it
    finally:
        lb.primary.release.set()
    stuck.join(30)
    assert not stuck.is_alive()


def test_failover_switches_the_entry_point_and_rollback_switches_it_back(lb):
    original = lb.upstream.read_text()

    planned = run_module("traffic_failover", lb.args(to_region="secondary"), check=True, diff=True)
    assert not planned["failed"] and planned["changed"]
    assert planned["previous_region"] == "primary" and planned["region"] == "secondary"
    assert planned["precheck"]["status"] == "UP"
    assert planned["diff"]["before"] == original
    assert f"server {HOST}:{lb.secondary.server.port};" in planned["diff"]["after"]
    assert lb.upstream.read_text() == original and lb.serving() == "primary"

    refused = run_module("traffic_failover", lb.args(to_region="secondary"))
    assert refused["failed"]
    assert refused["msg"].startswith("moving traffic from region primary to secondary is a cross-region change")
    assert "confirm=true" in refused["msg"]
    assert lb.serving() == "primary"

    res = run_module("traffic_failover", lb.args(to_region="secondary", from_region="primary", confirm=True))
    assert not res["failed"], res.get("msg")
    assert res["changed"] and (res["previous_region"], res["region"]) == ("primary", "secondary")
    assert res["reload"]["method"] == "signal" and res["reload"]["complete"] is True
    # the module waited until the old workers took no new connection: the very next request goes to the new region
    assert [lb.serving() for _ in range(5)] == ["secondary"] * 5
    assert Path(res["backup_file"]).read_text() == original
    leftovers = [f.name for f in lb.dir.glob(".upstream.conf.*") if f.suffix != ".lock"]
    assert not leftovers, "no temporary file left behind"

    again = run_module("traffic_failover", lb.args(to_region="secondary", confirm=True))
    assert not again["failed"] and again["changed"] is False and again["reload"] is None
    # another incident's run (another backup path in the file's comment) finds traffic where it should be too
    other = run_module(
        "traffic_failover",
        lb.args(to_region="secondary", from_region="primary", backup_file=str(lb.dir / "other-incident.previous")),
    )
    assert not other["failed"], other.get("msg")
    assert other["changed"] is False and other["precheck"]["status"] == "not_needed"

    back = run_module("traffic_failover", lb.args(state="rollback", confirm=True), diff=True)
    assert not back["failed"], back.get("msg")
    assert back["changed"] and (back["previous_region"], back["region"]) == ("secondary", "primary")
    assert [lb.serving() for _ in range(5)] == ["primary"] * 5
    assert lb.upstream.read_text() == original
    assert back["diff"]["after"] == original

    twice = run_module("traffic_failover", lb.args(state="rollback", confirm=True))
    assert not twice["failed"] and twice["changed"] is False


def test_precheck_refuses_an_unhealthy_region_unless_forced(lb):
    lb.secondary.healthy = False
    res = run_module("traffic_failover", lb.args(to_region="secondary", confirm=True))
    assert res["failed"]
    assert res["msg"].startswith("refusing to move traffic to region secondary: its health check fails: ")
    assert "health DOWN" in res["msg"] and "set force=true" in res["msg"]
    assert res["precheck"]["status"] == "DOWN"
    assert lb.serving() == "primary"

    res = run_module("traffic_failover", lb.args(to_region="secondary", confirm=True, force=True))
    assert not res["failed"] and res["precheck"]["status"] == "forced"
    assert lb.serving() == "secondary"


def test_a_configuration_nginx_rejects_is_put_back_and_traffic_stays(lb):
    original = lb.upstream.read_text()
    regions = lb.regions()
    regions["secondary"]["servers"] = [f"{HOST}:{lb.secondary.server.port} weight=banana"]
    res = run_module("traffic_failover", lb.args(to_region="secondary", regions=regions, confirm=True))
    assert res["failed"]
    assert "nginx rejected the configuration" in res["msg"] and "weight" in res["msg"]
    assert "The previous file was put back; traffic did not move" in res["msg"]
    assert lb.upstream.read_text() == original and lb.serving() == "primary"


def test_wrong_state_and_bad_input_give_clear_failures(lb):
    res = run_module("traffic_failover", lb.args(to_region="tertiary", confirm=True))
    assert res["failed"] and res["msg"] == "to_region 'tertiary' is not among the regions: primary, secondary"

    res = run_module("traffic_failover", lb.args(to_region="secondary", from_region="secondary", confirm=True))
    assert res["failed"] and res["msg"].startswith("from_region is secondary but traffic currently goes to primary")

    res = run_module("traffic_failover", lb.args(state="rollback", confirm=True))
    assert res["failed"] and "nothing to roll back to" in res["msg"]

    res = run_module("traffic_failover", {**lb.args(to_region="secondary"), "provider": "f5"})
    assert res["failed"] and "provider must be one of: nginx, http, got: f5" in res["msg"]

    # nginx is not running: the file must not stay switched
    lb.stop_nginx()
    original = lb.upstream.read_text()
    res = run_module("traffic_failover", lb.args(to_region="secondary", confirm=True))
    assert res["failed"] and "no running nginx master in pid file" in res["msg"]
    assert "The previous" in res["msg"] and lb.upstream.read_text() == original


@pytest.fixture
def traffic_manager():
    """A traffic manager API: GET /pools/shop answers the active region, PUT /pools/shop/active switches it."""
    state = {"active": "primary", "calls": []}

    def handle(method, path, body):
        state["calls"].append((method, path, body.decode()))
        if method == "GET" and path == "/pools/shop":
            return 200, "application/json", json.dumps({"pool": "shop", "active": {"region": state["active"]}})
        if method == "PUT" and path == "/pools/shop/active":
            state["active"] = json.loads(body)["region"]
            return 200, "application/json", json.dumps({"ok": True})
        return 404, "application/json", "{}"

    with TinyServer(handle) as srv:
        state["url"] = srv.url
        yield state


def test_http_provider_switches_through_the_api_and_is_idempotent(lb, traffic_manager):
    token = "traffic-token-5a1e"
    args = {
        "provider": "http",
        "to_region": "secondary",
        "regions": lb.regions(),
        "api_url": traffic_manager["url"] + "/pools/shop/active",
        "api_method": "PUT",
        "api_body": {"region": "${to_region}", "reason": "failover from ${from_region}"},
        "status_url": traffic_manager["url"] + "/pools/shop",
        "status_key": "active.region",
        "bearer_token": token,
        "confirm": True,
    }
    res = run_module("traffic_failover", args)
    assert not res["failed"], res.get("msg")
    assert res["changed"] and (res["previous_region"], res["region"]) == ("primary", "secondary")
    assert res["request"]["status"] == 200
    put = next(c for c in traffic_manager["calls"] if c[0] == "PUT")
    assert json.loads(put[2]) == {"region": "secondary", "reason": "failover from primary"}
    assert traffic_manager["active"] == "secondary"
    assert token not in json.dumps(res)

    again = run_module("traffic_failover", args)
    assert not again["failed"] and again["changed"] is False
    assert sum(1 for c in traffic_manager["calls"] if c[0] == "PUT") == 1


def test_without_a_pid_file_nginx_is_reloaded_by_its_own_command(lb):
    args = lb.args(to_region="secondary", confirm=True)
    del args["pid_file"]
    res = run_module("traffic_failover", args)
    assert not res["failed"], res.get("msg")
    assert res["reload"] == {"method": "command", "complete": None}
    # `nginx -s reload` returns before the workers changed: poll
    wait_for(lambda: lb.serving() == "secondary", 30, "traffic through nginx to reach secondary")
