"""workload_restart against the lab: pods are real processes, rollouts are the cluster's, the LB is nginx."""

from __future__ import annotations

import re
import time

import pytest
from kubernetes import client

from kubeutil import (
    NS,
    REGIONS,
    LbProbe,
    api,
    controllers_settled,
    demo_deployment,
    kubectl,
    module_clusters,
    pod_processes,
    pods_of,
    read_only,
)
from support import run_module, wait_for

pytestmark = pytest.mark.lab


def generation(lab, region, name, ns=NS):
    """A deployment's generation: any write to its spec (a restart) raises it at once."""
    return client.AppsV1Api(api(lab, region)).read_namespaced_deployment(name, ns).metadata.generation


def test_restart_replaces_every_pod_in_both_regions_and_waits_until_ready(restored):
    lab = restored
    before = {
        r: {
            p.metadata.name: pod_processes(p.metadata.name)
            for p in pods_of(client.CoreV1Api(api(lab, r)), "payment-service")
        }
        for r in REGIONS
    }
    assert all(len(pods) == 2 and all(pids for pids in pods.values()) for pods in before.values())

    res = run_module("workload_restart", {**module_clusters(lab), "namespace": NS, "name": "payment-service"})
    assert not res["failed"], res["msg"]
    assert res["changed"] is True
    assert res["msg"] == (
        "restarted 2 workload(s) in 2 cluster(s), all rolled out: primary/microservices/deployment/payment-service "
        "(2 pod(s) replaced); secondary/microservices/deployment/payment-service (2 pod(s) replaced)"
    )
    for w in res["workloads"]:
        region = w["cluster"]
        assert w["status"] == "restarted" and w["restarted_at"].endswith("Z")
        assert w["rollout"]["status"] == "rolled_out"
        assert w["rollout"]["message"] == 'deployment "payment-service" successfully rolled out'
        assert sorted(w["pods_before"]) == sorted(before[region])
        assert len(w["pods_after"]) == 2 and not set(w["pods_after"]) & set(w["pods_before"])
        # New processes, the old ones gone; every new pod ready.
        core = client.CoreV1Api(api(lab, region))
        now = {p.metadata.name: p for p in pods_of(core, "payment-service")}
        assert set(now) == set(w["pods_after"])
        assert all(pod_processes(name) for name in now)
        old_pids = {pid for pids in before[region].values() for pid in pids}
        assert not old_pids & {pid for name in now for pid in pod_processes(name)}
        assert all(any(c.type == "Ready" and c.status == "True" for c in p.status.conditions) for p in now.values())
        # The unmodified kubectl agrees that the rollout is complete, with the annotation kubectl would set.
        status = kubectl(lab, region, "rollout", "status", "deployment/payment-service", "-n", NS, "--timeout=2s")
        assert 'deployment "payment-service" successfully rolled out' in status.stdout
        annotation = kubectl(
            lab,
            region,
            "get",
            "deployment/payment-service",
            "-n",
            NS,
            "-o",
            "jsonpath={.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}",
        ).stdout
        assert annotation == w["restarted_at"]

    # A re-run with restarted_since skips what this run restarted.
    since = res["workloads"][0]["restarted_at"]
    again = run_module(
        "workload_restart",
        {**module_clusters(lab), "namespace": NS, "name": "payment-service", "restarted_since": since},
    )
    assert not again["failed"] and again["changed"] is False
    assert again["msg"] == f"nothing to restart; 2 already restarted since {since}"
    assert {w["status"] for w in again["workloads"]} == {"skipped"}


def fragile(name, ns, deadline=6):
    """A deployment whose new pods crash at start once ConfigMap `knobs` says fail=1 (the old ones keep running)."""
    dep = demo_deployment(name, ns, replicas=2, progressDeadlineSeconds=deadline)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    container["env"].append(
        {"name": "LAB_FAIL_ON_START", "valueFrom": {"configMapKeyRef": {"name": "knobs", "key": "fail"}}}
    )
    dep["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    return dep


def test_a_restart_whose_pods_cannot_become_ready_fails_fast_with_the_reason_and_their_logs(lab, scratch):
    c = api(lab, "primary")
    core, apps = client.CoreV1Api(c), client.AppsV1Api(c)
    core.create_namespaced_config_map(scratch, {"metadata": {"name": "knobs"}, "data": {"fail": "0"}})
    apps.create_namespaced_deployment(scratch, fragile("fragile", scratch))
    kubectl(lab, "primary", "rollout", "status", "deployment/fragile", "-n", scratch, "--timeout=60s")
    core.patch_namespaced_config_map("knobs", scratch, {"data": {"fail": "1"}})

    start = time.monotonic()
    res = run_module(
        "workload_restart",
        {
            "kubeconfig": lab.cfg.path("kubeconfig").as_posix(),
            "context": "primary",
            "namespace": scratch,
            "name": "fragile",
            "wait_timeout": 120,
            "log_lines": 5,
        },
    )
    took = time.monotonic() - start
    assert res["failed"] and res["changed"] is True
    # It stopped at the deployment's progress deadline (6 s), not at the end of its own wait (120 s).
    assert took < 120, f"waited {took:.0f}s: the whole wait_timeout, not the progress deadline"
    assert res["msg"].startswith(
        "restarted 1 workload(s) but 1 of 1 rollout(s) did not complete: primary/scratch/deployment/fragile: "
        'deployment "fragile" exceeded its progress deadline ['
    )
    assert "CrashLoopBackOff" in res["msg"] or "Error" in res["msg"]
    rollout = res["workloads"][0]["rollout"]
    assert rollout["status"] == "failed" and rollout["available"] == 2  # the old pods still serve
    pod = rollout["unready_pods"][0]
    assert pod["name"].startswith("fragile-") and pod["name"] not in res["workloads"][0]["pods_before"]
    assert pod["restarts"] >= 1 or pod["reason"] in ("CrashLoopBackOff", "Error")
    assert any("cannot initialise application context" in line for line in pod["log_tail"])
    assert len(pod["log_tail"]) <= 5
    # The unmodified kubectl reaches the same verdict.
    status = kubectl(
        lab, "primary", "rollout", "status", "deployment/fragile", "-n", scratch, "--timeout=5s", check=False
    )
    assert status.returncode != 0 and 'deployment "fragile" exceeded its progress deadline' in status.stderr
    apps.delete_namespaced_deployment("fragile", scratch)


def test_delete_pods_one_at_a_time_keeps_the_service_answering(restored):
    lab = restored
    core = client.CoreV1Api(api(lab, "primary"))
    before = {p.metadata.name for p in pods_of(core, "user-service")}
    with LbProbe(lab, "primary", "user-service") as probe:
        wait_for(lambda: sum(probe.codes.values()) >= 5, 30, "the probe's first answers")
        at_start = sum(probe.codes.values())
        res = run_module(
            "workload_restart",
            {
                "kubeconfig": lab.cfg.path("kubeconfig").as_posix(),
                "context": "primary",
                "namespace": NS,
                "mode": "delete_pods",
                "pod_selector": "app=user-service",
            },
        )
        at_end = sum(probe.codes.values())
        wait_for(lambda: sum(probe.codes.values()) >= at_end + 5, 30, "the probe's answers after the replacement")
    assert not res["failed"], res["msg"]
    d = res["deletions"][0]
    assert d["status"] == "replaced" and sorted(d["deleted"]) == sorted(before)
    assert res["msg"] == (
        "replaced primary/microservices/app=user-service: 2 pod(s) deleted, 2 of 2 pods ready (one at a time)"
    )
    after = {p.metadata.name for p in pods_of(core, "user-service")}
    assert len(after) == 2 and not after & before and set(d["pods_after"]) == after
    assert at_end > at_start  # it asked while the pods were replaced
    assert probe.failures == 0, f"the service did not answer {probe.failures} time(s): {probe.codes}"
    assert len(probe.upstreams) >= 3  # old and new pods answered


def test_check_mode_lists_what_would_be_replaced_and_changes_nothing(lab):
    """Check mode sends the restart patches (and pod deletions) as server-side dry runs: the restartedAt it
    shows is the server's answer, and nothing is stored (a real patch or deletion shows at once, as a new
    generation or a pod marked for deletion)."""
    core = client.CoreV1Api(api(lab, "primary"))
    before = sorted(p.metadata.name for p in pods_of(core, "order-service"))
    generations = {r: generation(lab, r, "order-service") for r in REGIONS}
    res = run_module(
        "workload_restart",
        {**module_clusters(lab), "namespace": NS, "label_selector": "app=order-service"},
        check=True,
        diff=True,
    )
    assert not res["failed"] and res["changed"] is True
    lines = res["diff"]["before"].splitlines()
    line = next(x for x in lines if x.startswith("primary/microservices/deployment/order-service: restartedAt="))
    assert line.endswith(f" pods={','.join(before)}")
    planned = res["workloads"][0]["restarted_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", planned), planned
    assert {w["status"] for w in res["workloads"]} == {"planned"}
    after = f"primary/microservices/deployment/order-service: restartedAt={planned} pods=(2 new)\n"
    assert after in res["diff"]["after"]
    assert res["msg"].startswith(
        "would restart 2 workload(s): primary/microservices/deployment/order-service (2 pod(s))"
    )
    assert sorted(res["workloads"][0]["pods_before"]) == before
    res = run_module(
        "workload_restart",
        {**module_clusters(lab), "namespace": NS, "mode": "delete_pods", "pod_selector": "app=order-service"},
        check=True,
    )
    assert res["changed"] is True and res["msg"].startswith("would delete primary/microservices/app=order-service: ")
    # A delete would show at once (a deletionTimestamp), a replacement after the controllers' next passes: let them
    # pass, then nothing is terminating and the same pods run.
    controllers_settled(lab, "primary")
    pods = core.list_namespaced_pod(NS, label_selector="app=order-service").items
    assert sorted(p.metadata.name for p in pods) == before and not any(p.metadata.deletion_timestamp for p in pods)
    assert {r: generation(lab, r, "order-service") for r in REGIONS} == generations


def test_check_mode_is_refused_where_the_run_would_be(lab):
    """A user who may read but not patch or delete: the dry runs need the same permissions as the writes."""
    with read_only(lab) as viewer:
        restart = run_module("workload_restart", {**viewer, "namespace": NS, "name": "order-service"}, check=True)
        delete = run_module(
            "workload_restart",
            {**viewer, "namespace": NS, "mode": "delete_pods", "pod_selector": "app=order-service"},
            check=True,
        )
    assert restart["failed"] and restart["msg"].startswith("1 of 1 restart(s) failed (the server refused the dry run")
    assert "forbidden to restart deployment microservices/order-service (dry run)" in restart["msg"]
    assert 'User "incident-viewer" cannot patch resource "deployments"' in restart["msg"]
    assert delete["failed"] and delete["msg"].startswith("1 of 1 pod deletion(s) would fail")
    assert "forbidden to delete pod microservices/order-service-" in delete["msg"]
    assert 'User "incident-viewer" cannot delete resource "pods"' in delete["msg"]


def test_statefulset_and_daemonset(lab, scratch):
    c = api(lab, "primary")
    apps = client.AppsV1Api(c)
    sts = demo_deployment("queue", scratch, replicas=2)
    sts.update(kind="StatefulSet")
    ds = demo_deployment("agent", scratch)
    ds.update(kind="DaemonSet")
    del ds["spec"]["replicas"]
    apps.create_namespaced_stateful_set(scratch, sts)
    apps.create_namespaced_daemon_set(scratch, ds)
    kube = {"kubeconfig": lab.cfg.path("kubeconfig").as_posix(), "context": "primary", "namespace": scratch}
    kubectl(lab, "primary", "rollout", "status", "statefulset/queue", "daemonset/agent", "-n", scratch, "--timeout=90s")
    core = client.CoreV1Api(c)

    res = run_module("workload_restart", {**kube, "kind": "StatefulSet", "name": "queue"})
    assert not res["failed"], res["msg"]
    w = res["workloads"][0]
    assert w["pods_before"] == w["pods_after"] == ["queue-0", "queue-1"]  # same names, new pods
    assert w["rollout"]["status"] == "rolled_out"
    revision = {p.metadata.labels["controller-revision-hash"] for p in pods_of(core, "queue", scratch)}
    sts_now = apps.read_namespaced_stateful_set("queue", scratch)
    assert revision == {sts_now.status.update_revision} == {sts_now.status.current_revision}

    res = run_module("workload_restart", {**kube, "kind": "DaemonSet", "label_selector": "app=agent"})
    assert not res["failed"], res["msg"]
    w = res["workloads"][0]
    assert len(w["pods_before"]) == 3 and len(w["pods_after"]) == 3  # one per node
    assert not set(w["pods_before"]) & set(w["pods_after"])
    assert w["rollout"]["message"] == 'daemon set "agent" successfully rolled out'

    # The blunt mode on a statefulset: its pods come back under the same names, one at a time.
    res = run_module("workload_restart", {**kube, "kind": "StatefulSet", "name": "queue", "mode": "delete_pods"})
    assert not res["failed"], res["msg"]
    assert res["deletions"][0]["deleted"] == ["queue-0", "queue-1"]
    assert res["deletions"][0]["workload"] == "statefulset/queue"

    # OnDelete: a rollout restart would replace nothing, so it is refused.
    apps.patch_namespaced_daemon_set(
        "agent", scratch, {"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": None}}}
    )
    res = run_module("workload_restart", {**kube, "kind": "DaemonSet", "name": "agent"})
    assert res["failed"] and "uses updateStrategy OnDelete" in res["msg"] and "nothing was restarted" in res["msg"]
    apps.delete_namespaced_stateful_set("queue", scratch)
    apps.delete_namespaced_daemon_set("agent", scratch)


def test_clear_failures_and_nothing_restarted(lab, scratch):
    c = api(lab, "primary")
    apps = client.AppsV1Api(c)
    apps.create_namespaced_deployment(scratch, demo_deployment("idle", scratch, replicas=1, paused=True))
    kube = {"kubeconfig": lab.cfg.path("kubeconfig").as_posix(), "context": "primary", "namespace": scratch}

    res = run_module("workload_restart", {**kube, "name": "idle"})
    assert res["failed"] and 'deployment "idle" is paused' in res["msg"]

    # The namespace exists in one region only: nothing is restarted anywhere.
    generation = apps.read_namespaced_deployment("idle", scratch).metadata.generation
    apps.patch_namespaced_deployment("idle", scratch, {"spec": {"paused": False}})
    res = run_module("workload_restart", {**module_clusters(lab), "namespace": scratch, "name": "idle"})
    assert res["failed"] and res["msg"] == "nothing was restarted: secondary: namespace 'scratch' does not exist"
    assert apps.read_namespaced_deployment("idle", scratch).metadata.generation == generation + 1  # the unpause only

    res = run_module("workload_restart", {**kube, "name": "ghost"})
    assert res["failed"] and res["msg"].endswith("primary: deployment ghost not found in namespace 'scratch'")

    # A bad option is refused before anything restarts (it once restarted order-service, then failed).
    generation = apps.read_namespaced_deployment("idle", scratch).metadata.generation
    res = run_module("workload_restart", {**kube, "name": "idle", "wait_timeout": -1})
    assert res["failed"] and res["msg"] == "wait_timeout must be 0 or more, got -1.0"
    assert apps.read_namespaced_deployment("idle", scratch).metadata.generation == generation

    res = run_module("workload_restart", {**kube, "mode": "delete_pods", "pod_selector": "app=nothing"})
    assert res["failed"] and "no pod matches 'app=nothing' in namespace 'scratch'" in res["msg"]

    with read_only(lab, (scratch,)) as viewer:
        res = run_module("workload_restart", {**viewer, "namespace": scratch, "name": "idle"})
    assert res["failed"] and "forbidden to restart deployment scratch/idle" in res["msg"]
    apps.delete_namespaced_deployment("idle", scratch)
