"""One region's emulator process: API server, controllers, kubelet and load-balancer sync.

Run as ``python -m incidentlab.kube serve --region primary``; the database settings for
the region's services come from INCIDENTLAB_DB_HOST/PORT/NAME/USER/PASSWORD (the password
only through the environment, never argv).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
import threading
import time

from ..config import HOST, LabConfig, read_json, write_json
from ..errors import LabError, LabInputError
from . import faults as faults_mod
from . import manifests
from .api import ApiServer
from .auth import Authorizer
from .controllers import ControllerManager, pod_ready
from .errors import ApiError
from .events import Recorder
from .lb import RegionalSync
from .manifests import DbParams
from .metrics import TargetsWriter, node_metrics, pod_metrics, state_metrics
from .pods import Kubelet
from .resources import BY_KIND, res
from .store import Store, now_iso

# Every region the lab can run, in the order `lab up --regions N` takes them; the default lab has two.
ALL_REGIONS = ("primary", "secondary", "tertiary")
DEFAULT_REGION_COUNT = 2
REGIONS = ALL_REGIONS[:DEFAULT_REGION_COUNT]


def region_names(count: int | None) -> tuple[str, ...]:
    """The regions of a lab with ``count`` of them (None: the default), or a clear refusal."""
    if count is None:
        return REGIONS
    if not DEFAULT_REGION_COUNT <= count <= len(ALL_REGIONS):
        raise LabInputError(
            f"the lab runs {DEFAULT_REGION_COUNT} to {len(ALL_REGIONS)} regions ({', '.join(ALL_REGIONS)}), "
            f"not {count}: use --regions {DEFAULT_REGION_COUNT} or --regions {len(ALL_REGIONS)}"
        )
    return ALL_REGIONS[:count]


def lab_regions(cfg: LabConfig) -> tuple[str, ...]:
    """The regions of the lab in ``cfg`` as its lab.json records them (a lab without the record has the default)."""
    names = (read_json(cfg.state_file) or {}).get("regions")
    return tuple(n for n in names if n in ALL_REGIONS) if names else REGIONS


def pod_port_range(cfg: LabConfig, region: str) -> tuple[int, int]:
    """Each region takes its own share of the lab's pod port range, so two emulators never race for a port."""
    lo, hi = cfg.pod_port_range
    regions = lab_regions(cfg)
    share = (hi - lo) // len(regions)
    i = regions.index(region) if region in regions else 0
    return lo + i * share, lo + (i + 1) * share


class Emulator:
    def __init__(
        self, cfg: LabConfig, region: str, db: DbParams | None, hpa_period: float = 15.0, progress_deadline: int = 30
    ):
        self.cfg = cfg
        self.region = region
        self.port = cfg.ports[f"kube-{region}"]
        self.store = Store()
        self.events = Recorder(self.store)
        self.kubelet = Kubelet(
            self.store,
            self.events,
            region,
            manifests.node_names(region),
            cfg.path("kube", region, "pods"),
            pod_port_range(cfg, region),
            cfg.lab_id,
        )
        self.controllers = ControllerManager(self.store, self.events, self.kubelet, hpa_period)
        self.targets = TargetsWriter(cfg.path("prometheus", "targets", f"pods-{region}.json"), region)
        self.lb = RegionalSync(cfg, region, self.store)
        self.kubelet.on_change.append(lambda: self.targets.update(self.store, self.kubelet))
        self.controllers.on_endpoints.append(self.lb.poke)
        self.faults: dict = {}
        self.started = time.time()
        self.db = db
        self.progress_deadline = progress_deadline
        self.httpd: ApiServer | None = None
        self.authorizer = Authorizer(cfg.path("kube", "tokens.csv"), cfg.path("kube", "abac-policy.jsonl"))

    # -- bootstrap ---------------------------------------------------------------------
    def bootstrap(self) -> None:
        for ns in manifests.NAMESPACES:
            self.store.create(res("namespaces"), {"metadata": {"name": ns}})
        ts = now_iso()
        for node in manifests.nodes(self.region):
            for c in node["status"]["conditions"]:
                c["lastHeartbeatTime"] = c["lastTransitionTime"] = ts
            self.store.create(res("nodes"), node)
        objs = manifests.system_objects(self.region)
        if self.db is not None:
            objs += manifests.service_objects(self.db, self.progress_deadline)
        for obj in objs:
            r = BY_KIND[(obj["apiVersion"], obj["kind"])]
            self.store.create(r, obj, obj["metadata"].get("namespace"))

    # -- serving -----------------------------------------------------------------------
    def bind(self) -> None:
        try:
            self.httpd = ApiServer((HOST, self.port), self)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise LabError(
                    f"port {self.port} ({HOST}) for the {self.region} Kubernetes API is taken: stop what "
                    "uses it or choose another --port-base"
                ) from None
            raise LabError(f"cannot listen on {HOST}:{self.port}: {exc.strerror}") from None

    def serve(self) -> None:
        if self.httpd is None:
            self.bind()
        # The lab's Prometheus scrapes /metrics of each region's API (job "kube") from this file.
        write_json(
            self.cfg.path("prometheus", "targets", f"kube-{self.region}.json"),
            [{"targets": [f"{HOST}:{self.port}"], "labels": {"region": self.region}}],
        )
        self.kubelet.start()
        self.controllers.start()
        self.lb.start()
        stop = threading.Event()

        def on_signal(signum, frame):
            stop.set()
            threading.Thread(target=self.httpd.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        print(f"kube-apiserver emulator for region {self.region} listening on http://{HOST}:{self.port}", flush=True)
        try:
            self.httpd.serve_forever(poll_interval=0.5)
        finally:
            self.controllers.stopping = True
            self.kubelet.shutdown()
            self.httpd.server_close()

    # -- what the API handler asks of the cluster ----------------------------------------
    def state_metrics(self) -> str:
        return state_metrics(self.store)

    def metrics_served(self) -> bool:
        """Like the metrics.k8s.io APIService: served while a metrics-server pod in kube-system is ready."""
        return any(
            pod_ready(p)
            for p in self.store.items(res("pods"), "kube-system")
            if (p["metadata"].get("labels") or {}).get("k8s-app") == "metrics-server"
            and not p["metadata"].get("deletionTimestamp")
        )

    def metrics_objects(self, kind: str, ns: str | None) -> list[dict]:
        if kind == "PodMetrics":
            return pod_metrics(self.store, self.kubelet, ns)
        return node_metrics(self.store, self.kubelet)

    def status(self) -> dict:
        deployments = {}
        for d in self.store.items(res("deployments.apps"), manifests.NAMESPACE):
            st = d.get("status") or {}
            deployments[d["metadata"]["name"]] = {
                "replicas": d["spec"].get("replicas", 1),
                "ready": st.get("readyReplicas", 0),
                "available": st.get("availableReplicas", 0),
            }
        pods = self.store.items(res("pods"))
        return {
            "region": self.region,
            "uptime": round(time.time() - self.started, 1),
            "pods": len(pods),
            "podsReady": sum(1 for p in pods if pod_ready(p)),
            "podsRunning": len(self.kubelet.running_ports()),
            "deployments": deployments,
            "lbReloads": self.lb.reloads,
            "controllerPasses": self.controllers.passes,
            "autoscalerPasses": self.controllers.autoscaler_passes,
            "faults": self.faults,
        }

    def admin(self, method: str, path: str, body: object) -> tuple[int, dict]:
        if method == "GET" and path == "status":
            return 200, self.status()
        if method == "GET" and path == "faults":
            return 200, self.faults
        if method == "POST" and path.startswith("faults/"):
            try:
                return 200, faults_mod.apply(self, path.split("/", 1)[1], body if isinstance(body, dict) else {})
            except ValueError as exc:
                return 400, ApiError(400, "BadRequest", str(exc)).status()
        return 404, ApiError(404, "NotFound", f"no admin endpoint {method} /_lab/{path}").status()


def db_from_env(env: dict[str, str] | None = None) -> DbParams | None:
    env = dict(os.environ if env is None else env)
    if not env.get("INCIDENTLAB_DB_HOST"):
        return None
    return DbParams(
        host=env["INCIDENTLAB_DB_HOST"],
        port=int(env.get("INCIDENTLAB_DB_PORT", "3306")),
        name=env.get("INCIDENTLAB_DB_NAME", "shop"),
        user=env.get("INCIDENTLAB_DB_USER", ""),
        password=env.get("INCIDENTLAB_DB_PASSWORD", ""),
        clusters=json.loads(env.get("INCIDENTLAB_DB_CLUSTERS") or "{}"),
    )


def serve_main(cfg: LabConfig, region: str, hpa_period: float, progress_deadline: int) -> None:
    if region not in ALL_REGIONS:
        raise LabError(f"unknown region {region!r}: use one of {', '.join(ALL_REGIONS)}")
    emu = Emulator(cfg, region, db_from_env(), hpa_period, progress_deadline)
    emu.bind()
    emu.bootstrap()
    with contextlib.suppress(KeyboardInterrupt):
        emu.serve()
    sys.stdout.flush()
