"""What each region of the lab runs: nodes, kube-system add-ons and the five services.

The services' database settings come from the ConfigMap ``microservice-config``
(db.host, db.port, db.name) and the Secret ``db-credentials`` (username, password), so a
failover is a ConfigMap patch plus a rolling restart, as in the runbook. In the lab's
``clusters`` topology payment-service reads its host and port from keys of its own
(payments.db.host, payments.db.port) in the same ConfigMap.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path

SERVICES = ("user-service", "order-service", "payment-service", "inventory-service", "notification-service")
NAMESPACE = "microservices"
CONFIGMAP = "microservice-config"
SECRET = "db-credentials"
DEMO_IMAGE = "incidentlab/demo-service:1.0"
NODES_PER_REGION = 3
ZONES = ("a", "b", "c")
KUBELET_VERSION = "v1.32.4"


@dataclass
class DbParams:
    host: str
    port: int
    name: str
    user: str
    password: str
    # Database clusters beside the default one (lab topology "clusters"): name -> {host, port,
    # keys: {host, port} (their ConfigMap keys), services: [the services that use it]}.
    clusters: dict = field(default_factory=dict)

    def keys_of(self, service: str) -> dict:
        """The ConfigMap keys that tell a service its database's host and port."""
        for cluster in self.clusters.values():
            if service in cluster["services"]:
                return cluster["keys"]
        return {"host": "db.host", "port": "db.port"}


def node_names(region: str) -> list[str]:
    return [f"{region}-worker-{i + 1}" for i in range(NODES_PER_REGION)]


def _os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "Linux"


def nodes(region: str) -> list[dict]:
    out = []
    for i, name in enumerate(node_names(region)):
        ts = None  # filled by the store
        conds = [
            ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ]
        out.append(
            {
                "metadata": {
                    "name": name,
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "beta.kubernetes.io/os": "linux",
                        "beta.kubernetes.io/arch": "amd64",
                        "node.kubernetes.io/instance-type": "m5.xlarge",
                        "topology.kubernetes.io/region": region,
                        "topology.kubernetes.io/zone": f"{region}-{ZONES[i % len(ZONES)]}",
                    },
                    "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
                },
                "spec": {"podCIDR": f"10.244.{i}.0/24", "podCIDRs": [f"10.244.{i}.0/24"]},
                "status": {
                    "capacity": {"cpu": "4", "memory": "16374584Ki", "pods": "110", "ephemeral-storage": "104845292Ki"},
                    "allocatable": {
                        "cpu": "3920m",
                        "memory": "15335224Ki",
                        "pods": "110",
                        "ephemeral-storage": "96625420948",
                    },
                    "conditions": [
                        {
                            "type": t,
                            "status": s,
                            "reason": r,
                            "message": m,
                            "lastHeartbeatTime": ts,
                            "lastTransitionTime": ts,
                        }
                        for t, s, r, m in conds
                    ],
                    "addresses": [
                        {"type": "InternalIP", "address": "127.0.0.1"},
                        {"type": "Hostname", "address": name},
                    ],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                    "nodeInfo": {
                        "machineID": f"{i + 1:032x}",
                        "systemUUID": f"ec2{i + 1:05d}-0000-0000-0000-000000000000",
                        "bootID": f"{i + 7:08x}-0000-4000-8000-000000000000",
                        "kernelVersion": platform.release(),
                        "osImage": _os_image(),
                        "containerRuntimeVersion": "containerd://1.7.24",
                        "kubeletVersion": KUBELET_VERSION,
                        "kubeProxyVersion": KUBELET_VERSION,
                        "operatingSystem": "linux",
                        "architecture": "amd64",
                    },
                },
            }
        )
    return out


NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", NAMESPACE)


def _deployment(name: str, ns: str, labels: dict, container: dict, replicas: int, **spec) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [container], **spec.pop("pod", {})},
            },
            **spec,
        },
    }


def system_objects(region: str) -> list[dict]:
    dns_labels = {"k8s-app": "kube-dns"}
    coredns = _deployment(
        "coredns",
        "kube-system",
        dns_labels,
        {
            "name": "coredns",
            "image": "registry.k8s.io/coredns/coredns:v1.11.3",
            "args": ["-conf", "/etc/coredns/Corefile"],
            "ports": [
                {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
            ],
            "resources": {"requests": {"cpu": "100m", "memory": "70Mi"}, "limits": {"memory": "170Mi"}},
        },
        2,
        pod={"priorityClassName": "system-cluster-critical", "terminationGracePeriodSeconds": 5},
    )
    metrics = _deployment(
        "metrics-server",
        "kube-system",
        {"k8s-app": "metrics-server"},
        {
            "name": "metrics-server",
            "image": "registry.k8s.io/metrics-server/metrics-server:v0.7.2",
            "args": ["--kubelet-preferred-address-types=InternalIP", "--metric-resolution=15s"],
            "ports": [{"name": "https", "containerPort": 10250, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "100m", "memory": "200Mi"}},
        },
        1,
        pod={"priorityClassName": "system-cluster-critical", "terminationGracePeriodSeconds": 5},
    )
    dns_svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "labels": {**dns_labels, "kubernetes.io/name": "CoreDNS"},
        },
        "spec": {
            "selector": dns_labels,
            "clusterIP": "10.96.0.10",
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            ],
        },
    }
    # kube-proxy runs as a DaemonSet, as kubeadm installs it: one pod per node, left alone by a drain.
    proxy_labels = {"k8s-app": "kube-proxy"}
    proxy = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": dict(proxy_labels)},
        "spec": {
            "selector": {"matchLabels": dict(proxy_labels)},
            "template": {
                "metadata": {"labels": dict(proxy_labels)},
                "spec": {
                    "priorityClassName": "system-node-critical",
                    "terminationGracePeriodSeconds": 5,
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [
                        {
                            "name": "kube-proxy",
                            "image": f"registry.k8s.io/kube-proxy:{KUBELET_VERSION}",
                            "command": ["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf"],
                            "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                            "resources": {"requests": {"cpu": "100m"}},
                        }
                    ],
                },
            },
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
        },
    }
    return [coredns, dns_svc, metrics, proxy]


def _cluster_data(cluster: dict) -> dict:
    return {cluster["keys"]["host"]: cluster["host"], cluster["keys"]["port"]: str(cluster["port"])}


def service_objects(db: DbParams, progress_deadline: int = 30) -> list[dict]:
    objs: list[dict] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "shop"}},
            "data": {
                "db.host": db.host,
                "db.port": str(db.port),
                "db.name": db.name,
                "log.level": "INFO",
                **{k: v for c in db.clusters.values() for k, v in _cluster_data(c).items()},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "shop"}},
            "type": "Opaque",
            "stringData": {"username": db.user, "password": db.password},
        },
    ]
    for name in SERVICES:
        labels = {"app": name}

        def cm(key: str) -> dict:
            return {"configMapKeyRef": {"name": CONFIGMAP, "key": key}}

        def sec(key: str) -> dict:
            return {"secretKeyRef": {"name": SECRET, "key": key}}

        container = {
            "name": name,
            "image": DEMO_IMAGE,
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "env": [
                {"name": "SERVICE_NAME", "value": name},
                {"name": "DB_HOST", "valueFrom": cm(db.keys_of(name)["host"])},
                {"name": "DB_PORT", "valueFrom": cm(db.keys_of(name)["port"])},
                {"name": "DB_NAME", "valueFrom": cm("db.name")},
                {"name": "DB_USER", "valueFrom": sec("username")},
                {"name": "DB_PASSWORD", "valueFrom": sec("password")},
            ],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
            "readinessProbe": {
                "httpGet": {"path": "/actuator/health", "port": "http"},
                "periodSeconds": 1,
                "timeoutSeconds": 5,
                "failureThreshold": 3,
            },
        }
        dep = _deployment(
            name,
            NAMESPACE,
            labels,
            container,
            2,
            progressDeadlineSeconds=progress_deadline,
            strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": 0}},
            pod={"terminationGracePeriodSeconds": 10},
        )
        dep["metadata"]["labels"]["app.kubernetes.io/part-of"] = "shop"
        svc = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": dict(labels)},
            "spec": {"selector": dict(labels), "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": dict(labels)},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": 2,
                "maxReplicas": 5,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                    }
                ],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
            },
        }
        objs += [dep, svc, hpa]
    return objs
