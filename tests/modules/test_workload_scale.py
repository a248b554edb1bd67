"""workload_scale against the lab's two regions: real pods behind real load balancers, the HPA running."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from incidentlab.kube.cluster import HPA_PERIOD
from kubeutil import (
    NS,
    REGIONS,
    api,
    autoscaler_passes,
    demo_deployment,
    kubectl,
    lb_upstreams,
    module_clusters,
    read_only,
)
from support import run_module, wait_for

pytestmark = pytest.mark.lab


def state(lab, region, name="user-service"):
    """(spec replicas, ready replicas, HPA min, HPA max) as the unmodified kubectl reports them."""
    out = kubectl(
        lab,
        region,
        "get",
        f"deployment/{name}",
        f"hpa/{name}",
        "-n",
        NS,
        "-o",
        "jsonpath={.items[0].spec.replicas} {.items[0].status.readyReplicas} "
        "{.items[1].spec.minReplicas} {.items[1].spec.maxReplicas}",
    ).stdout.split()
    return tuple(int(x) for x in out)


def pod_ports(lab, region, app="user-service"):
    pods = client.CoreV1Api(api(lab, region)).list_namespaced_pod(NS, label_selector=f"app={app}").items
    return {
        f"127.0.0.1:{p.metadata.annotations['incidentlab.io/port']}"
        for p in pods
        if not p.metadata.deletion_timestamp and p.metadata.annotations
    }


def test_scale_to_3_in_both_regions_holds_against_the_hpa_and_restores(restored):
    lab = restored
    res = run_module("workload_scale", {**module_clusters(lab), "namespace": NS, "name": "user-service", "replicas": 3})
    assert not res["failed"], res["msg"]
    assert res["changed"] is True
    assert res["msg"].startswith("scaled 2 workload(s) in 2 cluster(s), all ready: primary/microservices/deployment/")
    assert "HPA user-service min 2->3" in res["msg"]
    for w in res["workloads"]:
        assert (w["replicas_before"], w["replicas"], w["status"], w["ready_replicas"]) == (2, 3, "scaled", 3)
        assert w["rollout"]["status"] == "rolled_out" and w["hpa"]["action"] == "adjusted"
    assert sorted(p["cluster"] for p in res["previous"]) == list(REGIONS)
    assert res["previous"][0] == {
        "cluster": "primary",
        "namespace": NS,
        "kind": "Deployment",
        "name": "user-service",
        "replicas": 2,
        "hpa": {"name": "user-service", "min_replicas": 2, "max_replicas": 5},
    }

    # Three ready pods, all answering through each region's load balancer.
    for region in REGIONS:
        assert state(lab, region) == (3, 3, 3, 5)
        ports = pod_ports(lab, region)
        assert len(ports) == 3
        wait_for(
            lambda r=region, p=ports: lb_upstreams(lab, r, "user-service", 40) == p, 30, f"3 pods behind lb-{region}"
        )

    # Once every new pod has metrics (like metrics-server, 10 s after it starts), two HPA syncs later the count
    # holds: the HPA's minimum is 3. The syncs are counted by the emulator, not waited for by the clock.
    for region in REGIONS:
        metrics = client.CustomObjectsApi(api(lab, region))

        def measured(m=metrics) -> bool:
            items = m.list_namespaced_custom_object(
                "metrics.k8s.io", "v1beta1", NS, "pods", label_selector="app=user-service"
            )
            return len(items["items"]) == 3

        wait_for(measured, 60, f"the metrics of the 3 user-service pods in {region}")
        start = autoscaler_passes(lab, region)
        wait_for(lambda r=region, s=start: autoscaler_passes(lab, r) >= s + 2, 4 * HPA_PERIOD + 30, "two HPA syncs")
        assert state(lab, region)[0] == 3
        hpa = client.AutoscalingV2Api(api(lab, region)).read_namespaced_horizontal_pod_autoscaler("user-service", NS)
        assert hpa.status.desired_replicas == 3 and hpa.status.current_metrics

    # The same task again changes nothing.
    again = run_module(
        "workload_scale", {**module_clusters(lab), "namespace": NS, "name": "user-service", "replicas": 3}
    )
    assert not again["failed"] and again["changed"] is False and again["previous"] == []
    assert again["msg"] == "nothing to change: 2 workload(s) in 2 cluster(s) already as asked, all ready"

    # A rollback puts back the replicas and the HPA bounds.
    back = run_module("workload_scale", {**module_clusters(lab), "state": "restore", "previous": res["previous"]})
    assert not back["failed"], back["msg"]
    assert back["changed"] is True and back["msg"].startswith("restored 2 workload(s)")
    assert "HPA user-service back to 2..5" in back["msg"]
    for region in REGIONS:
        assert state(lab, region)[0] == 2 and state(lab, region)[2:] == (2, 5)
    # ...and returns what it replaced, so the rollback itself can be undone.
    assert {(p["replicas"], p["hpa"]["min_replicas"]) for p in back["previous"]} == {(3, 3)}


def test_check_mode_reports_current_and_planned_counts_and_changes_nothing(lab):
    before = {r: state(lab, r) for r in REGIONS}
    res = run_module(
        "workload_scale",
        {**module_clusters(lab), "namespace": NS, "name": ["user-service", "order-service"], "factor": 3, "cap": 5},
        check=True,
        diff=True,
    )
    assert not res["failed"] and res["changed"] is True
    assert res["msg"].startswith("would scale 4 workload(s): primary/microservices/deployment/user-service 2->5")
    assert {(w["replicas_before"], w["replicas"], w["limited"], w["status"]) for w in res["workloads"]} == {
        (2, 5, "capped at 5", "planned")
    }
    assert "primary/microservices/deployment/user-service: replicas=2 hpa(user-service)=2..5" in res["diff"]["before"]
    assert "primary/microservices/deployment/user-service: replicas=5 hpa(user-service)=5..5" in res["diff"]["after"]
    assert len(res["previous"]) == 4
    assert {r: state(lab, r) for r in REGIONS} == before


def spec_of(lab, region, name="user-service"):
    """(deployment generation, spec replicas, HPA min, HPA max): a stored scale or HPA change moves one of them
    at once (resourceVersions move with every status update of the running cluster, generations do not)."""
    c = api(lab, region)
    dep = client.AppsV1Api(c).read_namespaced_deployment(name, NS)
    hpa = client.AutoscalingV2Api(c).read_namespaced_horizontal_pod_autoscaler(name, NS)
    return dep.metadata.generation, dep.spec.replicas, hpa.spec.min_replicas, hpa.spec.max_replicas


def test_check_mode_is_the_servers_dry_run_of_the_same_writes(lab):
    """The planned counts and HPA bounds are the server's answers to the real HPA and scale patches sent
    with dryRun=All; nothing is stored; and what the server refuses fails check mode as it fails the run."""
    base = {"namespace": NS, "name": "user-service", "replicas": 4}
    before = {r: spec_of(lab, r) for r in REGIONS}
    res = run_module("workload_scale", {**module_clusters(lab), **base}, check=True, diff=True)
    assert not res["failed"], res["msg"]
    assert [(w["cluster"], w["replicas"], w["status"]) for w in res["workloads"]] == [
        ("primary", 4, "planned"),
        ("secondary", 4, "planned"),
    ]
    assert {(w["hpa"]["new_min_replicas"], w["hpa"]["new_max_replicas"]) for w in res["workloads"]} == {(4, 5)}
    assert {r: spec_of(lab, r) for r in REGIONS} == before

    with read_only(lab) as viewer:
        check = run_module("workload_scale", {**viewer, **base}, check=True)
        real = run_module("workload_scale", {**viewer, **base})
    for got in (check, real):
        assert got["failed"]
        assert 'User "incident-viewer" cannot patch resource "horizontalpodautoscalers"' in got["msg"], got["msg"]
    assert check["msg"].startswith("1 of 1 workload(s) could not be changed (the server refused the dry run): ")
    assert "forbidden to patch HPA microservices/user-service (dry run)" in check["msg"]
    assert check["msg"].endswith("; nothing was changed")
    assert {r: spec_of(lab, r) for r in REGIONS} == before


def test_hpa_policy_fail_refuses_and_nothing_changes(lab):
    res = run_module(
        "workload_scale",
        {**module_clusters(lab), "namespace": NS, "name": "payment-service", "delta": 1, "hpa_policy": "fail"},
    )
    assert res["failed"]
    assert res["msg"].startswith("nothing was changed: primary/microservices/deployment/payment-service: HPA ")
    assert "scales this workload and would undo a scale to 3" in res["msg"]
    assert all(state(lab, r, "payment-service") == (2, 2, 2, 5) for r in REGIONS)


def test_precondition_mismatch_fails_instead_of_scaling(lab):
    res = run_module(
        "workload_scale",
        {**module_clusters(lab), "namespace": NS, "name": "order-service", "replicas": 4, "current_replicas": 3},
    )
    assert res["failed"] and "has 2 replicas, not the expected 3 (current_replicas)" in res["msg"]
    assert all(state(lab, r, "order-service")[0] == 2 for r in REGIONS)


def test_statefulset_with_an_hpa(lab, scratch):
    """A statefulset scales through its scale subresource; its HPA (autoscaling/v2) is raised like a deployment's."""
    c = api(lab, "primary")
    apps, auto = client.AppsV1Api(c), client.AutoscalingV2Api(c)
    sts = demo_deployment("ledger", scratch, replicas=1)
    sts.update(kind="StatefulSet")
    sts["spec"]["serviceName"] = "ledger"
    apps.create_namespaced_stateful_set(scratch, sts)
    auto.create_namespaced_horizontal_pod_autoscaler(
        scratch,
        {
            "metadata": {"name": "ledger"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "ledger"},
                "minReplicas": 1,
                "maxReplicas": 2,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 90}},
                    }
                ],
            },
        },
    )
    args = {"kubeconfig": lab.cfg.path("kubeconfig").as_posix(), "context": "primary", "namespace": scratch}
    res = run_module(
        "workload_scale", {**args, "kind": "StatefulSet", "name": "ledger", "delta": 2, "wait_timeout": 90}
    )
    assert not res["failed"], res["msg"]
    w = res["workloads"][0]
    assert (w["cluster"], w["replicas_before"], w["replicas"], w["ready_replicas"]) == ("primary", 1, 3, 3)
    assert w["hpa"]["note"] == "HPA ledger min 1->3, max 2->3 so that it keeps 3 replicas"
    assert w["rollout"]["message"] == "partitioned roll out complete: 3 new pods have been updated..."
    pods = kubectl(lab, "primary", "get", "pods", "-n", scratch, "-l", "app=ledger", "-o", "name").stdout.split()
    assert pods == ["pod/ledger-0", "pod/ledger-1", "pod/ledger-2"]
    assert (
        kubectl(lab, "primary", "rollout", "status", "statefulset/ledger", "-n", scratch, "--timeout=5s").returncode
        == 0
    )
    hpa = auto.read_namespaced_horizontal_pod_autoscaler("ledger", scratch)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (3, 3)
    apps.delete_namespaced_stateful_set("ledger", scratch)


def test_timeout_returns_how_far_it_got(restored):
    lab = restored
    res = run_module(
        "workload_scale",
        {
            "kubeconfig": lab.cfg.path("kubeconfig").as_posix(),
            "context": "secondary",
            "namespace": NS,
            "name": "inventory-service",
            "replicas": 4,
            "wait_timeout": 0.3,
        },
    )
    assert res["failed"]
    assert res["msg"].startswith("scaled (secondary/microservices/deployment/inventory-service 2->4 (HPA ")
    assert (
        "1 of 1 rollout(s) did not complete: secondary/microservices/deployment/inventory-service: not rolled "
        in (res["msg"])
    )
    w = res["workloads"][0]
    assert w["status"] == "scaled" and w["rollout"]["status"] == "timed_out" and w["rollout"]["desired"] == 4
    assert "unready_pods" in w["rollout"]
    # The partial result still carries what a rollback needs.
    assert res["previous"] == [
        {
            "cluster": "secondary",
            "namespace": NS,
            "kind": "Deployment",
            "name": "inventory-service",
            "replicas": 2,
            "hpa": {"name": "inventory-service", "min_replicas": 2, "max_replicas": 5},
        }
    ]


def test_clear_failures(lab):
    kube = lab.cfg.path("kubeconfig").as_posix()
    base = {"namespace": NS, "name": "user-service", "replicas": 3}

    res = run_module("workload_scale", {**base, "kubeconfig": kube, "context": "tertiary"})
    assert res["failed"] and "has no context 'tertiary'; it has: primary, secondary" in res["msg"]

    res = run_module("workload_scale", {**base, "host": "http://127.0.0.1:9", "request_timeout": 2})
    assert res["failed"] and "cannot reach the API server http://127.0.0.1:9" in res["msg"]

    res = run_module("workload_scale", {**module_clusters(lab), **base, "namespace": "nowhere"})
    assert res["failed"] and "primary: namespace 'nowhere' does not exist" in res["msg"]
    assert "secondary: namespace 'nowhere' does not exist" in res["msg"]

    res = run_module("workload_scale", {**module_clusters(lab), **base, "name": ["user-service", "ghost-service"]})
    assert res["failed"]
    assert res["msg"].startswith("nothing was changed: primary: deployment ghost-service not found in namespace")

    res = run_module("workload_scale", {**module_clusters(lab), **base, "label_selector": "app=ghost", "name": []})
    assert res["failed"] and "no deployment matches the label selector 'app=ghost' in namespace" in res["msg"]

    # A 403 from the server: the read-only user may look but not scale.
    with read_only(lab) as viewer:
        res = run_module("workload_scale", {**viewer, **base})
    assert res["failed"]
    assert "forbidden to patch HPA microservices/user-service: the credentials lack RBAC permission" in res["msg"]
    assert 'User "incident-viewer" cannot patch resource "horizontalpodautoscalers"' in res["msg"]
    assert state(lab, "primary") == (2, 2, 2, 5)
    assert viewer["api_key"] not in str(res)


def test_a_frozen_region_fails_after_the_request_timeout(lab, healed):
    lab.break_fault("region-down")
    start = time.monotonic()
    res = run_module(
        "workload_scale",
        {**module_clusters(lab), "namespace": NS, "name": "user-service", "replicas": 3, "request_timeout": 2},
    )
    assert res["failed"] and time.monotonic() - start < 30
    assert "primary: the API server " in res["msg"] and "did not answer within the request timeout" in res["msg"]
    assert res["msg"].startswith("nothing was changed")
    assert state(lab, "secondary")[0] == 2  # the healthy region was not changed either
    lab.heal("region-down")
