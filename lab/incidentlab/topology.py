"""Which database servers the lab runs, in which clusters, and which services use each cluster.

``incidentctl lab up --topology NAME`` chooses one; ``lab.json`` records it, so every later
command (status, faults, heal, reset, the exporter, the inventory) sees the same servers.

* ``pair`` (default): ``db-primary`` (primary region) replicating to ``db-replica`` (secondary
  region), used by every service. Exactly what the lab always ran.
* ``replicas``: the ``shop`` cluster with three replicas of ``db-primary``: ``db-replica``
  (secondary region), ``db-spare`` (primary region) and ``db-delayed`` (secondary region,
  ``MASTER_DELAY`` of an hour: a copy of the past, for mistakes).
* ``clusters``: the pair as the ``shop`` cluster, and a second cluster ``payments``
  (``payments-primary`` replicating to ``payments-replica``), used by ``payment-service`` alone
  through its own ConfigMap keys (``payments.db.host``, ``payments.db.port``).

Each cluster's servers share a GTID domain of their own (shop 0, payments 1), as clusters that
might one day be joined should.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import LabInputError

DEFAULT_TOPOLOGY = "pair"
DEFAULT_CONFIG_KEYS = {"host": "db.host", "port": "db.port"}


@dataclass(frozen=True)
class DbServer:
    name: str
    cluster: str
    region: str
    server_id: int
    primary: bool = False
    delay: int = 0  # MASTER_DELAY of a replica, in seconds


@dataclass(frozen=True)
class DbCluster:
    name: str
    servers: tuple[DbServer, ...]
    config_keys: dict
    services: tuple[str, ...] | None = None  # None: every service no other cluster claims
    domain_id: int = 0

    @property
    def primary(self) -> DbServer:
        return next(s for s in self.servers if s.primary)


@dataclass(frozen=True)
class Topology:
    name: str
    clusters: tuple[DbCluster, ...]
    summary: str

    @property
    def servers(self) -> tuple[DbServer, ...]:
        return tuple(s for c in self.clusters for s in c.servers)

    @property
    def server_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.servers)

    def server(self, name: str) -> DbServer:
        for s in self.servers:
            if s.name == name:
                return s
        raise LabInputError(
            f"no database server {name!r} in the {self.name} topology; it has {', '.join(self.server_names)}"
        )

    def cluster_of(self, name: str) -> DbCluster:
        server = self.server(name)
        return next(c for c in self.clusters if c.name == server.cluster)

    def service_cluster(self, service: str) -> DbCluster:
        """The cluster whose database a service uses."""
        for c in self.clusters:
            if c.services and service in c.services:
                return c
        return next(c for c in self.clusters if c.services is None)

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_TOPOLOGY


def _shop_pair() -> DbCluster:
    return DbCluster(
        "shop",
        (DbServer("db-primary", "shop", "primary", 1, primary=True), DbServer("db-replica", "shop", "secondary", 2)),
        DEFAULT_CONFIG_KEYS,
    )


TOPOLOGIES: dict[str, Topology] = {
    "pair": Topology("pair", (_shop_pair(),), "db-primary replicating to db-replica, used by every service"),
    "replicas": Topology(
        "replicas",
        (
            DbCluster(
                "shop",
                (
                    DbServer("db-primary", "shop", "primary", 1, primary=True),
                    DbServer("db-replica", "shop", "secondary", 2),
                    DbServer("db-spare", "shop", "primary", 3),
                    DbServer("db-delayed", "shop", "secondary", 4, delay=3600),
                ),
                DEFAULT_CONFIG_KEYS,
            ),
        ),
        "db-primary with three replicas: db-replica (secondary region), db-spare (primary region), "
        "db-delayed (secondary region, an hour behind on purpose)",
    ),
    "clusters": Topology(
        "clusters",
        (
            _shop_pair(),
            DbCluster(
                "payments",
                (
                    DbServer("payments-primary", "payments", "primary", 11, primary=True),
                    DbServer("payments-replica", "payments", "secondary", 12),
                ),
                {"host": "payments.db.host", "port": "payments.db.port"},
                services=("payment-service",),
                domain_id=1,
            ),
        ),
        "the shop pair for every service but payment-service, which uses its own pair "
        "(payments-primary replicating to payments-replica)",
    ),
}


def get(name: str | None) -> Topology:
    topo = TOPOLOGIES.get(name or DEFAULT_TOPOLOGY)
    if topo is None:
        raise LabInputError(f"unknown topology {name!r}: use one of {', '.join(TOPOLOGIES)}")
    return topo


def inventory(topo: Topology, ports: dict[str, int], host: str) -> dict:
    """What the lab inventory reads from lab.json for a topology other than the pair: every server
    (address, region, role in normal operation, cluster) and every cluster's ConfigMap keys and services."""
    databases = {
        s.name: {
            "host": host,
            "port": ports[s.name],
            "region": s.region,
            "expected_role": "primary" if s.primary else "replica",
            "cluster": s.cluster,
        }
        for s in topo.servers
    }
    clusters = {}
    for c in topo.clusters:
        entry: dict = {"config_keys": dict(c.config_keys)}
        if c.services is not None:
            entry["services"] = list(c.services)
        clusters[c.name] = entry
    return {"databases": databases, "database_clusters": clusters}
