"""The lab as one object: bring it up, take it down, report its state, break and heal it.

State lives in the lab directory:

  lab.json       ports, status (starting | up | down), active faults
  secrets.json   per-lab passwords (0600)
  run/           one record per process (pid, process group, start time); the traffic pause files
  logs/          one log per component
  mariadb/ prometheus/ alertmanager/ sinks/   configs and what the sinks received
  kubeconfig     one context per Kubernetes region: primary, secondary (and tertiary with --regions 3)
  kube/ nginx/   pod logs of each region; the load balancers' configs and logs
  cache/         the MariaDB datadir template, reused across runs

Database and TSDB files live on tmpfs (``LabConfig.data_root``) and go away with ``down``.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from . import mariadb, monitoring, traffic
from . import topology as topologies
from .config import HOST, LabConfig, port_free, port_open, read_json, write_json
from .errors import LabError, LabInputError
from .kube import cluster
from .kube import server as kube_server
from .procs import ProcessTable

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class ComponentStatus:
    name: str
    kind: str
    address: str
    running: bool
    healthy: bool
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


class Lab:
    def __init__(self, cfg: LabConfig):
        self.cfg = cfg
        self.procs = ProcessTable(cfg.path("run"), cfg.lab_id)

    @classmethod
    def open(cls, lab_dir: Path | None = None, port_base: int | None = None) -> Lab:
        return cls(LabConfig.resolve(lab_dir, port_base))

    # -- state --------------------------------------------------------------
    def state(self) -> dict:
        return read_json(self.cfg.state_file) or {}

    def _save(self, **changes) -> dict:
        st = self.state()
        st.update(changes)
        write_json(self.cfg.state_file, st)
        return st

    @property
    def is_up(self) -> bool:
        return self.state().get("status") == "up"

    def require_up(self) -> None:
        if not self.is_up:
            raise LabInputError(f"the lab in {self.cfg.lab_dir} is not up: run `incidentctl lab up` first")

    def secrets(self) -> dict[str, str]:
        return self.cfg.load_secrets()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One mutating command at a time per lab."""
        self.cfg.ensure_dir()
        with open(self.cfg.path(".lock"), "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LabInputError(f"another incidentctl command is changing the lab in {self.cfg.lab_dir}") from None
            yield

    # -- up / down ------------------------------------------------------------
    def up(
        self,
        progress: Progress = _quiet,
        topology: str | None = None,
        alert_webhook: str | None = None,
        alert_token: str | None = None,
        regions: int | None = None,
    ) -> None:
        """Start the lab; ``topology`` chooses its database servers (topology.py; default the pair), ``regions``
        how many Kubernetes regions it runs (2, the default: primary and secondary; 3 adds tertiary).
        ``alert_webhook``: Alertmanager also posts every alert there (incidentctl watch), with ``alert_token``
        as its bearer token; a lab that is already up takes it too (``set_alert_webhook``)."""
        topo = topologies.get(topology)
        region_names = kube_server.region_names(regions)
        with self.locked():
            st = self.state()
            if st.get("status") == "up":
                running = st.get("topology", topologies.DEFAULT_TOPOLOGY)
                if topology is not None and topo.name != running:
                    raise LabInputError(
                        f"the lab is up with the {running} topology; run `incidentctl lab down` before "
                        f"`lab up --topology {topo.name}`"
                    )
                running_regions = self.regions
                if regions is not None and region_names != running_regions:
                    raise LabInputError(
                        f"the lab is up with {len(running_regions)} regions; run `incidentctl lab down` before "
                        f"`lab up --regions {regions}`"
                    )
                dead = [r.name for r in self.procs.records() if not r.running]
                if not dead:
                    progress("the lab is already up")
                    if alert_webhook is not None:
                        self._alert_webhook(alert_webhook, alert_token, progress)
                    return
                raise LabInputError(
                    f"the lab is up but {', '.join(dead)} is not running (an injected fault?): "
                    "run `incidentctl lab heal` to restore it, or `incidentctl lab down` to start over"
                )
            stale = self.procs.stop_all(timeout=3)
            if stale:
                progress(f"stopped {stale} leftover process(es) of an earlier run")
            shutil.rmtree(self.cfg.data_root, ignore_errors=True)
            traffic.resume(self.cfg)  # a pause left by a crashed run does not outlive it
            self._check_ports()
            secrets = self.cfg.load_secrets(create=True)
            state = dict(
                status="starting",
                port_base=self.cfg.port_base,
                ports=self.cfg.ports,
                data_root=str(self.cfg.data_root),
                started_at=time.time(),
                faults=[],
                topology=topo.name,
                regions=list(region_names),
                alert_webhook=alert_webhook or None,
            )
            # The inventory reads the servers and clusters of any other topology from here (the pair's are
            # written in inventories/lab, as they always were).
            extra = {} if topo.is_default else topologies.inventory(topo, self.cfg.ports, HOST)
            st = {k: v for k, v in self.state().items() if k not in ("databases", "database_clusters")}
            write_json(self.cfg.state_file, {**st, **state, **extra})
            self._webhook = {"url": alert_webhook, "token": alert_token} if alert_webhook else None
            t0 = time.monotonic()
            try:
                self._start_all(secrets, progress, topo)
            except BaseException:
                # Leave nothing half-running: a failed start is cleaned up at once.
                self.procs.stop_all(timeout=3)
                self._save(status="down")
                raise
            self._save(status="up")
            progress(f"lab up in {time.monotonic() - t0:.1f}s")

    @property
    def topology(self) -> topologies.Topology:
        return mariadb.lab_topology(self.cfg)

    @property
    def regions(self) -> tuple[str, ...]:
        """The lab's Kubernetes regions, in order (lab.json ``regions``; the inventory reads them there too)."""
        return kube_server.lab_regions(self.cfg)

    def set_alert_webhook(self, url: str | None, token: str | None = None, progress: Progress = _quiet) -> None:
        """Route every alert to ``url`` too (None: to the HTTP sink only), on the running Alertmanager."""
        with self.locked():
            self.require_up()
            self._alert_webhook(url, token, progress)

    def _alert_webhook(self, url: str | None, token: str | None, progress: Progress) -> None:
        if url and not url.startswith(("http://", "https://")):
            raise LabInputError(f"alert webhook {url!r} is not an http(s) URL")
        monitoring.write_alertmanager_config(self.cfg, {"url": url, "token": token} if url else None)
        monitoring.reload_alertmanager(self.cfg)
        self._save(alert_webhook=url or None)
        progress(f"alertmanager routes every alert to the HTTP sink{' and ' + url if url else ''}")

    def _check_ports(self) -> None:
        for name, port in sorted(self.cfg.ports.items(), key=lambda kv: kv[1]):
            if not port_free(port):
                raise LabError(
                    f"port {port} ({name}) is already in use by another program: stop it, "
                    f"or give the lab another --port-base (now {self.cfg.port_base})"
                )

    def _start_all(self, secrets: dict[str, str], progress: Progress, topo: topologies.Topology) -> None:
        def step(label: str, fn: Callable[[], None]) -> None:
            t = time.monotonic()
            fn()
            progress(f"{label} ({time.monotonic() - t:.1f}s)")

        # Slow starters first, so they warm up while the databases come up.
        step("monitoring started", lambda: monitoring.start(self.cfg, self.procs, getattr(self, "_webhook", None)))
        # The clusters' pods start while the databases come up; they turn ready once the primary answers.
        db = cluster.db_params(self.cfg, secrets)
        step("kubernetes regions and load balancers started", lambda: cluster.start(self.cfg, self.procs, db))
        step("notification sinks started", lambda: self._start_python("sinks"))
        step(
            "databases up, shop seeded, replica in sync"
            if topo.is_default
            else f"{len(topo.servers)} databases up ({topo.name} topology), shop seeded, replicas in sync",
            lambda: mariadb.bootstrap(self.cfg, self.procs, secrets, topo),
        )
        step("database exporter started", lambda: self._start_python("exporter"))
        step("prometheus and alertmanager ready", lambda: monitoring.wait_ready(self.cfg, self.procs))
        step(f"services ready in {len(self.regions)} regions", lambda: cluster.wait_ready(self.cfg, timeout=45))
        step("traffic generator started", lambda: cluster.start_traffic(self.cfg, self.procs))
        step("every component answering", lambda: self._wait_answering(timeout=15))

    def _start_python(self, name: str) -> None:
        """Start one of the lab's own programs (``python -m incidentlab.<name>``)."""
        self.procs.start(
            name,
            [sys.executable, "-m", f"incidentlab.{name}", "--lab-dir", str(self.cfg.lab_dir)],
            log_path=self.cfg.path("logs", f"{name}.log"),
        )

    def _restart(self, name: str) -> str:
        """Start a component that died, keeping its data."""
        from .faults import restore_db

        if name in self.topology.server_names:
            return restore_db(self, name)
        starters = {
            "prometheus": lambda: monitoring.start_prometheus(self.cfg, self.procs),
            "alertmanager": lambda: monitoring.start_alertmanager(self.cfg, self.procs),
            "sinks": lambda: self._start_python("sinks"),
            "exporter": lambda: self._start_python("exporter"),
            **cluster.restarters(self.cfg, self.procs, self.secrets()),
        }
        if name not in starters:
            raise LabError(
                f"{name} is not running and the lab cannot restart it alone: run `incidentctl lab down` and `up`"
            )
        starters[name]()
        return f"{name} restarted"

    def _wait_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            bad = [c for c in self.status() if not c.healthy]
            if not bad:
                return
            if time.monotonic() > deadline:
                raise LabError("not healthy after start: " + "; ".join(f"{c.name}: {c.detail}" for c in bad))
            time.sleep(0.1)

    def down(self, progress: Progress = _quiet) -> int:
        with self.locked():
            stopped = self.procs.stop_all()
            traffic.resume(self.cfg)
            shutil.rmtree(self.cfg.data_root, ignore_errors=True)
            for f in self.cfg.path("prometheus", "targets").glob("*.json"):
                f.unlink()
            if self.cfg.state_file.exists():
                self._save(status="down", faults=[])
            progress(f"stopped {stopped} process(es)")
            return stopped

    def reset_databases(self) -> None:
        """Rebuild the databases as they were after `up` (tests that promote or fence use this).

        The traffic generator is paused meanwhile (its writes would land between the schema and the
        seed rows). The cluster's services keep their database host and port and reconnect; this
        returns once each of their pods answers UP and the regions are ready, as after `up`.
        """
        with self.locked():
            self.require_up()
            topo = self.topology
            with self.traffic_paused():
                for name in topo.server_names:
                    self.procs.stop(name, timeout=2)
                mariadb.bootstrap(self.cfg, self.procs, self.secrets(), topo)
            faults = [f for f in self.active_faults() if not f["name"].startswith(("db-", "repl"))]
            self._save(faults=faults)
            if not faults:  # a cluster fault would keep a region from being ready: nothing to wait for
                cluster.wait_ready(self.cfg, timeout=60, pods_first=True)

    # -- traffic --------------------------------------------------------------
    def pause_traffic(self, timeout: float = 20.0) -> bool:
        """Stop the traffic generator's requests; returns once none is in flight (its writes have landed).

        A generator that is not running, or is started later, sends nothing until `resume_traffic`,
        `heal` (without a fault name), `down` or `up`. False when no generator runs to acknowledge it.
        """
        already = traffic.pause_requested(self.cfg)
        token = traffic.request_pause(self.cfg)
        deadline = time.monotonic() + timeout
        while not traffic.pause_acknowledged(self.cfg, token):
            rec = self.procs.get("traffic")
            if rec is None or not rec.running:
                return False
            if time.monotonic() > deadline:
                if not already:
                    traffic.resume(self.cfg)
                raise LabError(
                    f"the traffic generator did not pause within {timeout:.0f}s; "
                    f"see {self.cfg.path('logs', 'traffic.log')}"
                )
            time.sleep(0.02)
        return True

    def resume_traffic(self) -> bool:
        """Let the traffic generator send again; True if it was paused."""
        return traffic.resume(self.cfg)

    @contextlib.contextmanager
    def traffic_paused(self, timeout: float = 20.0) -> Iterator[None]:
        """``with lab.traffic_paused():`` no generated request reaches the services (and their database)
        inside; a pause that was already on stays on afterwards."""
        already = traffic.pause_requested(self.cfg)
        self.pause_traffic(timeout)
        try:
            yield
        finally:
            if not already:
                self.resume_traffic()

    # -- status -------------------------------------------------------------
    def status(self) -> list[ComponentStatus]:
        cfg = self.cfg
        secrets = read_json(cfg.secrets_file) or {}
        out: list[ComponentStatus] = []

        def add(name: str, kind: str, address: str, proc: str, check: Callable[[], tuple[bool, str]]) -> None:
            rec = self.procs.get(proc)
            running = bool(rec and rec.running)
            healthy, detail = check() if running else (False, "not running")
            out.append(ComponentStatus(name, kind, address, running, healthy, detail))

        for db in mariadb.servers(cfg):

            def check_db(db: str = db) -> tuple[bool, str]:
                info = mariadb.describe(cfg, db, secrets)
                return info["healthy"], info["detail"]

            add(db, "database", f"{HOST}:{cfg.ports[db]}", db, check_db)
        add(
            "exporter",
            "metrics",
            cfg.url("exporter", "/metrics"),
            "exporter",
            lambda: (monitoring.http_ok(cfg.url("exporter", "/metrics"), 2), "replication metrics"),
        )
        add(
            "prometheus",
            "monitoring",
            cfg.url("prometheus"),
            "prometheus",
            lambda: monitoring.prometheus_summary(cfg),
        )
        add(
            "alertmanager",
            "monitoring",
            cfg.url("alertmanager"),
            "alertmanager",
            lambda: monitoring.alertmanager_summary(cfg),
        )
        from . import sinks

        add(
            "sink-http",
            "notifications",
            cfg.url("sink-http"),
            "sinks",
            lambda: (
                monitoring.http_ok(cfg.url("sink-http", "/_sink/health")),
                f"{len(sinks.read_requests(cfg))} request(s) received",
            ),
        )
        add(
            "sink-smtp",
            "notifications",
            f"smtp://{HOST}:{cfg.ports['sink-smtp']}",
            "sinks",
            lambda: (port_open(cfg.ports["sink-smtp"]), f"{len(sinks.read_mails(cfg))} mail(s) received"),
        )
        for component in cluster.components(cfg):
            add(*component)
        return out

    # -- faults ---------------------------------------------------------------
    def active_faults(self) -> list[dict]:
        return list(self.state().get("faults", []))

    def break_fault(self, name: str, arg: str | None = None) -> str:
        from .faults import get_fault

        fault = get_fault(name, arg)
        arg = arg or fault.default_arg  # recorded as meant: `region-down` and `region-down primary` are one fault
        with self.locked():
            self.require_up()
            for active in self.active_faults():
                if active["name"] == name and active.get("arg") == arg:
                    return f"{fault.label(arg)} is already active (since {time.ctime(active['since'])})"
            message = fault.inject(self, arg)
            self._save(faults=[*self.active_faults(), {"name": name, "arg": arg, "since": time.time()}])
            return message

    def heal(self, name: str | None = None, arg: str | None = None) -> list[str]:
        from .faults import get_fault

        if name is not None:
            get_fault(name, arg, require_arg=False)  # validate the name before touching anything
        with self.locked():
            self.require_up()
            active = self.active_faults()
            todo = [f for f in active if name is None or (f["name"] == name and (arg is None or f.get("arg") == arg))]
            messages = []
            for f in reversed(todo):  # undo in the reverse order of injection
                messages.append(get_fault(f["name"], f.get("arg")).heal(self, f.get("arg")))
                active.remove(f)
                self._save(faults=active)
            if name is None:
                if self.resume_traffic():
                    messages.append("traffic generator resumed")
                # Whatever else died (a crash, a kill by hand) is brought back too.
                for rec in self.procs.records():
                    if not rec.running:
                        messages.append(self._restart(rec.name))
            if not messages:
                messages.append("no matching fault is active and every component runs: nothing to heal")
            return messages
