"""The runbook's kubectl commands, run with the unmodified kubectl against both regions of the lab."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from kubernetes import client

from kubeutil import (
    NS,
    REGIONS,
    SERVICES,
    api,
    demo_deployment,
    http,
    kubectl,
    lb_upstreams,
    pod_processes,
    pods_of,
    ready,
)
from support import wait_for

pytestmark = pytest.mark.lab


def _rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines()[1:]]


def _columns(out: str) -> list[dict[str, str]]:
    """kubectl's table by header positions: a cell may contain spaces (RESTARTS says '1 (5s ago)')."""
    header, *lines = out.rstrip().splitlines()
    cols = list(re.finditer(r"\S+(?: \S+)*", header))  # headers are 2+ spaces apart; some have one space inside
    names, starts = [c.group() for c in cols], [c.start() for c in cols]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return [{n: line[a:b].strip() for n, (a, b) in zip(names, bounds, strict=True)} for line in lines]


@pytest.mark.parametrize("region", REGIONS)
def test_get_nodes_pods_endpoints_and_hpa(lab, region):
    nodes = _rows(kubectl(lab, region, "get", "nodes").stdout)
    assert [(n[0], n[1]) for n in nodes] == [(f"{region}-worker-{i}", "Ready") for i in (1, 2, 3)]

    pods = _columns(kubectl(lab, region, "get", "pods", "-A", "-o", "wide").stdout)
    by_ns = {}
    for row in pods:
        by_ns.setdefault(row["NAMESPACE"], []).append((row["NAME"], row["READY"], row["STATUS"]))
    assert {"kube-system", NS} <= set(by_ns)
    assert any(n.startswith("coredns-") for n, _, _ in by_ns["kube-system"])
    assert len(by_ns[NS]) == 10 and all(r == "1/1" and s == "Running" for _, r, s in by_ns[NS])
    assert all(row["IP"] == "127.0.0.1" and row["NODE"].startswith(f"{region}-worker-") for row in pods), pods

    endpoints = {row[0]: row[1] for row in _rows(kubectl(lab, region, "get", "endpoints").stdout)}
    assert set(endpoints) == set(SERVICES)
    for addrs in endpoints.values():
        assert len(addrs.split(",")) == 2 and all(a.startswith("127.0.0.1:") for a in addrs.split(","))

    hpas = _rows(kubectl(lab, region, "get", "hpa").stdout)
    assert {h[0] for h in hpas} == set(SERVICES)
    assert all(h[1] == f"Deployment/{h[0]}" and h[3].endswith("/70%") and h[4:6] == ["2", "5"] for h in hpas)


@pytest.mark.parametrize("region", REGIONS)
def test_output_formats(lab, region):
    doc = json.loads(kubectl(lab, region, "get", "deployment", "user-service", "-o", "json").stdout)
    assert doc["kind"] == "Deployment" and doc["metadata"]["namespace"] == NS
    assert doc["status"]["conditions"][0]["type"] == "Available"
    cm = yaml.safe_load(kubectl(lab, region, "get", "configmap", "microservice-config", "-o", "yaml").stdout)
    assert cm["data"]["db.name"] == "shop"
    names = kubectl(
        lab, region, "get", "pods", "-l", "app=order-service", "-o", "jsonpath={.items[*].metadata.name}"
    ).stdout.split()
    assert len(names) == 2 and all(n.startswith("order-service-") for n in names)
    sel = kubectl(
        lab,
        region,
        "get",
        "pods",
        "-A",
        "--field-selector",
        "status.phase=Running,metadata.namespace!=kube-system",
        "-o",
        "name",
    ).stdout.split()
    assert len(sel) == 10


@pytest.mark.parametrize("region", REGIONS)
def test_scale_up_and_three_pods_answer_through_the_load_balancer(restored, region):
    lab = restored
    # An HPA scales a deployment inside its range back at its next sync (5 s here) when its recent
    # recommendations are lower, as on a real cluster: raise its floor first, as workload_scale does.
    out = kubectl(lab, region, "patch", "hpa", "user-service", "--type=merge", "-p", '{"spec":{"minReplicas":3}}')
    assert "horizontalpodautoscaler.autoscaling/user-service patched" in out.stdout
    out = kubectl(lab, region, "scale", "deployment", "user-service", "--replicas=3").stdout
    assert "deployment.apps/user-service scaled" in out
    core = client.CoreV1Api(api(lab, region))

    def three_ready():
        pods = [p for p in pods_of(core, "user-service") if ready(p)]
        return pods if len(pods) == 3 else None

    pods = wait_for(three_ready, 60, "three ready user-service pods")
    ports = {f"127.0.0.1:{p.metadata.annotations['incidentlab.io/port']}" for p in pods}
    wait_for(
        lambda: lb_upstreams(lab, region, "user-service") == ports,
        30,
        "every user-service pod answering health through the load balancer",
    )


@pytest.mark.parametrize("region", REGIONS)
def test_rollout_restart_replaces_the_processes(restored, region):
    lab = restored
    core = client.CoreV1Api(api(lab, region))
    old = {p.metadata.name for p in pods_of(core, "payment-service")}
    assert all(pod_processes(n) for n in old)
    kubectl(lab, region, "rollout", "restart", "deployment", "payment-service")
    res = kubectl(lab, region, "rollout", "status", "deployment", "payment-service", "--timeout=60s")
    assert 'deployment "payment-service" successfully rolled out' in res.stdout
    new = {p.metadata.name for p in pods_of(core, "payment-service")}
    assert len(new) == 2 and not new & old
    assert all(pod_processes(n) for n in new)
    wait_for(lambda: not any(pod_processes(n) for n in old), 30, "the old pods' processes to exit")


@pytest.mark.parametrize("region", REGIONS)
def test_deleted_pods_are_replaced(restored, region):
    lab = restored
    core = client.CoreV1Api(api(lab, region))
    old = {p.metadata.name for p in pods_of(core, "user-service")}
    out = kubectl(lab, region, "delete", "pod", "-l", "app=user-service").stdout
    assert sorted(line.split('"')[1] for line in out.splitlines()) == sorted(old)
    assert not any(pod_processes(n) for n in old)  # kubectl waited until they were gone

    def replaced():
        pods = [p for p in pods_of(core, "user-service") if ready(p)]
        return len(pods) == 2 and not {p.metadata.name for p in pods} & old

    wait_for(replaced, 60, "two new ready user-service pods")


@pytest.mark.parametrize("region", REGIONS)
def test_logs_by_label_are_the_pods_stdout(lab, region):
    lines = kubectl(lab, region, "logs", "-l", "app=order-service", "--tail=20").stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert 2 <= len(records) <= 40
    assert {r["service"] for r in records} == {"order-service"}
    assert {r["pod"] for r in records} <= {
        p.metadata.name for p in pods_of(client.CoreV1Api(api(lab, region)), "order-service")
    }
    system = kubectl(lab, region, "logs", "-n", "kube-system", "-l", "k8s-app=kube-dns", "--tail=5").stdout
    assert "CoreDNS" in system or "NOERROR" in system


@pytest.mark.parametrize("region", REGIONS)
def test_top_pods_and_nodes(lab, region):
    def top_pods():
        rows = _rows(kubectl(lab, region, "top", "pods", check=False).stdout)
        return rows if len(rows) >= 10 else None

    rows = wait_for(top_pods, 30, "metrics for every pod", interval=1)
    assert all(r[1].endswith("m") and r[2].endswith("Mi") and int(r[2][:-2]) > 5 for r in rows)
    nodes = _rows(kubectl(lab, region, "top", "nodes").stdout)
    assert [n[0] for n in nodes] == [f"{region}-worker-{i}" for i in (1, 2, 3)]
    assert all(n[1].endswith("m") and n[2].endswith("%") for n in nodes)


@pytest.mark.parametrize("region", REGIONS)
def test_configmap_patch_then_rollout_restart_uses_the_new_db_host(restored, region):
    lab = restored
    patch = json.dumps({"data": {"db.host": "localhost"}})
    out = kubectl(lab, region, "patch", "configmap", "microservice-config", "-p", patch).stdout
    assert "configmap/microservice-config patched" in out
    _, body, _ = http(lab.cfg.url(f"lb-{region}", "/user-service/actuator/health"))
    assert body["components"]["db"]["details"]["host"] == "127.0.0.1"  # running pods keep their environment
    kubectl(lab, region, "rollout", "restart", "deployment", "user-service")
    kubectl(lab, region, "rollout", "status", "deployment", "user-service", "--timeout=60s")

    def new_host():
        hosts = set()
        for _ in range(10):
            _, body, _ = http(lab.cfg.url(f"lb-{region}", "/user-service/actuator/health"))
            hosts.add(body.get("components", {}).get("db", {}).get("details", {}).get("host"))
        return hosts == {"localhost"}

    wait_for(new_host, 30, "user-service health to report db host localhost")


def test_apply_creates_then_configures(lab):
    # Several documents in one file, as manifests usually are. (A `kind: List` wrapper makes kubectl
    # look for /openapi/v2, which the emulator does not serve: see the README's deviations.)
    manifest = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apply-test"}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "apply-test"},
            "data": {"mode": "a"},
        },
    ]
    path = lab.cfg.path("apply-test.yaml")
    path.write_text(yaml.safe_dump_all(manifest))
    try:
        first = kubectl(lab, "primary", "apply", "-f", str(path)).stdout
        assert "namespace/apply-test created" in first and "configmap/settings created" in first
        manifest[1]["data"] = {"mode": "b", "extra": "1"}
        path.write_text(yaml.safe_dump_all(manifest))
        second = kubectl(lab, "primary", "apply", "-f", str(path)).stdout
        assert "namespace/apply-test unchanged" in second and "configmap/settings configured" in second
        data = json.loads(kubectl(lab, "primary", "get", "cm", "settings", "-n", "apply-test", "-o", "json").stdout)
        assert data["data"] == {"mode": "b", "extra": "1"}
        assert "kubectl.kubernetes.io/last-applied-configuration" in data["metadata"]["annotations"]
    finally:
        kubectl(lab, "primary", "delete", "namespace", "apply-test", "--wait=true", check=False)


def test_rollout_status_fails_when_the_progress_deadline_passes(lab):
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "never-ready", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 4,
            "selector": {"matchLabels": {"app": "never-ready"}},
            "template": {
                "metadata": {"labels": {"app": "never-ready"}},
                "spec": {"containers": [{"name": "app", "image": "registry.example/never-ready:1.0"}]},
            },
        },
    }
    path = lab.cfg.path("never-ready.yaml")
    path.write_text(yaml.safe_dump(deploy))
    try:
        kubectl(lab, "primary", "apply", "-f", str(path))
        res = kubectl(
            lab, "primary", "rollout", "status", "deployment/never-ready", "-n", "default", "--timeout=40s", check=False
        )
        assert res.returncode != 0
        assert 'deployment "never-ready" exceeded its progress deadline' in res.stderr
        pod = kubectl(lab, "primary", "get", "pods", "-n", "default", "-l", "app=never-ready").stdout
        assert "ErrImagePull" in pod or "ImagePullBackOff" in pod
    finally:
        kubectl(lab, "primary", "delete", "-f", str(path), check=False)


def test_statefulset_and_daemonset_rollouts_as_kubectl_sees_them(lab, scratch):
    """Ordinal pods, scale down from the highest ordinal, rolling restarts: what `kubectl rollout status` reads."""
    apps = client.AppsV1Api(api(lab, "primary"))
    sts = demo_deployment("db", scratch, replicas=2)
    sts.update(kind="StatefulSet")
    ds = demo_deployment("node-agent", scratch)
    ds.update(kind="DaemonSet")
    del ds["spec"]["replicas"]
    apps.create_namespaced_stateful_set(scratch, sts)
    apps.create_namespaced_daemon_set(scratch, ds)
    out = kubectl(lab, "primary", "rollout", "status", "statefulset/db", "-n", scratch, "--timeout=90s").stdout
    assert out.strip().endswith("partitioned roll out complete: 2 new pods have been updated...")
    out = kubectl(lab, "primary", "rollout", "status", "daemonset/node-agent", "-n", scratch, "--timeout=90s").stdout
    assert 'daemon set "node-agent" successfully rolled out' in out
    rows = _columns(kubectl(lab, "primary", "get", "pods", "-n", scratch, "-o", "wide").stdout)
    assert sorted(r["NAME"] for r in rows if r["NAME"].startswith("db-")) == ["db-0", "db-1"]
    nodes = sorted(r["NODE"] for r in rows if r["NAME"].startswith("node-agent-"))
    assert nodes == [f"primary-worker-{i}" for i in (1, 2, 3)]
    assert _rows(kubectl(lab, "primary", "get", "statefulsets", "-n", scratch).stdout)[0][:2] == ["db", "2/2"]

    kubectl(lab, "primary", "rollout", "restart", "statefulset/db", "daemonset/node-agent", "-n", scratch)
    kubectl(lab, "primary", "rollout", "status", "statefulset/db", "-n", scratch, "--timeout=90s")
    kubectl(lab, "primary", "rollout", "status", "daemonset/node-agent", "-n", scratch, "--timeout=90s")
    st = apps.read_namespaced_stateful_set("db", scratch).status
    assert st.current_revision == st.update_revision and st.updated_replicas == st.ready_replicas == 2

    kubectl(lab, "primary", "scale", "statefulset/db", "--replicas=1", "-n", scratch)
    wait_for(
        lambda: [p.metadata.name for p in pods_of(client.CoreV1Api(api(lab, "primary")), "db", scratch)] == ["db-0"],
        60,
        "the highest ordinal to be removed",
    )
    apps.delete_namespaced_stateful_set("db", scratch)
    apps.delete_namespaced_daemon_set("node-agent", scratch)
