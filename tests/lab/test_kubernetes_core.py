"""The lab through kubernetes.core, the collection operators use beside ours (taken from the PyPI `ansible`
bundle by kubeutil.kubernetes_core_path): k8s_drain evicts for real and stops at a disruption budget;
k8s creates and k8s_info reads the emulator's kinds, idempotently."""

from __future__ import annotations

import os

import pytest
from kubernetes import client

from kubeutil import api, demo_deployment, kubeconfig, kubernetes_core_path, nodes_restored, wait_deployment_available
from support import COLLECTIONS_PATH, run_module, wait_for

pytestmark = pytest.mark.lab

NODES = ("primary-worker-1", "primary-worker-2", "primary-worker-3")
REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."


@pytest.fixture(scope="module")
def core_env() -> dict:
    return {"ANSIBLE_COLLECTIONS_PATH": os.pathsep.join([str(COLLECTIONS_PATH), str(kubernetes_core_path())])}


def _k8s(module: str, args: dict, env: dict, lab) -> dict:
    return run_module(
        f"kubernetes.core.{module}", {"kubeconfig": kubeconfig(lab), "context": "primary", **args}, env=env
    )


def test_k8s_drain_evicts_for_real_and_stops_at_the_disruption_budget(lab, scratch, core_env):
    c = api(lab, "primary")
    core, apps, policy = client.CoreV1Api(c), client.AppsV1Api(c), client.PolicyV1Api(c)
    drain = {
        "state": "drain",
        "name": NODES[0],
        "pod_selectors": ["app=drained"],  # the lab's own pods stay where they are
        "delete_options": {"ignore_daemonsets": True, "wait_timeout": 60, "wait_sleep": 1},
    }
    with nodes_restored(lab, ("primary",)):
        for node in NODES[1:]:
            core.patch_node(node, {"spec": {"unschedulable": True}})
        apps.create_namespaced_deployment(scratch, demo_deployment("drained", scratch, replicas=2))
        wait_deployment_available(apps, "drained", scratch)
        for node in NODES[1:]:
            core.patch_node(node, {"spec": {"unschedulable": False}})
        pods = sorted(p.metadata.name for p in core.list_namespaced_pod(scratch, label_selector="app=drained").items)
        budget = {
            "metadata": {"name": "drained"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "drained"}}},
        }
        policy.create_namespaced_pod_disruption_budget(scratch, budget)
        wait_for(
            lambda: policy.read_namespaced_pod_disruption_budget("drained", scratch).status.current_healthy == 2,
            30,
            "the budget's status",
        )

        # The budget allows no disruption: the eviction is refused and k8s_drain says so (it used to report the
        # pods deleted while the emulator had no eviction API and nothing was evicted).
        res = _k8s("k8s_drain", drain, core_env, lab)
        assert res["failed"] and REFUSED in res["msg"], res
        left = core.list_namespaced_pod(scratch, label_selector="app=drained").items
        assert sorted(p.metadata.name for p in left if not p.metadata.deletion_timestamp) == pods
        assert core.read_node(NODES[0]).spec.unschedulable is True

        policy.patch_namespaced_pod_disruption_budget("drained", scratch, {"spec": {"minAvailable": 0}})
        wait_for(
            lambda: policy.read_namespaced_pod_disruption_budget("drained", scratch).status.disruptions_allowed == 2,
            30,
            "the budget to allow two disruptions",
        )
        res = _k8s("k8s_drain", drain, core_env, lab)
        assert not res["failed"], res
        assert res["result"] == f"node {NODES[0]} already marked unschedulable. 2 Pod(s) deleted from node."
        # Evicted for real: the old pods are gone, their replica set made new ones on the other nodes.
        wait_deployment_available(apps, "drained", scratch)
        now = [p for p in core.list_namespaced_pod(scratch, label_selector="app=drained").items]
        assert not {p.metadata.name for p in now} & set(pods)
        assert {p.spec.node_name for p in now} <= set(NODES[1:])

        res = _k8s("k8s_drain", {"state": "uncordon", "name": NODES[0]}, core_env, lab)
        assert not res["failed"] and core.read_node(NODES[0]).spec.unschedulable in (None, False)
    apps.delete_namespaced_deployment("drained", scratch)
    policy.delete_namespaced_pod_disruption_budget("drained", scratch)


def test_k8s_creates_and_k8s_info_reads_the_new_kinds_idempotently(lab, scratch, core_env):
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "k8s-job", "namespace": scratch},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "t", "image": "incidentlab/task:1.0"}]}
            }
        },
    }
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "k8s-pdb", "namespace": scratch},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "nothing"}}},
    }
    for definition in (job, pdb):
        res = _k8s("k8s", {"state": "present", "definition": definition}, core_env, lab)
        assert not res["failed"] and res["changed"] is True, res
        again = _k8s("k8s", {"state": "present", "definition": definition}, core_env, lab)
        assert not again["failed"] and again["changed"] is False, again

    info = _k8s(
        "k8s_info",
        {
            "api_version": "batch/v1",
            "kind": "Job",
            "namespace": scratch,
            "name": "k8s-job",
            "wait": True,
            "wait_condition": {"type": "Complete", "status": "True"},
            "wait_timeout": 60,
        },
        core_env,
        lab,
    )
    assert not info["failed"], info
    [found] = info["resources"]
    assert found["status"]["succeeded"] == 1
    info = _k8s(
        "k8s_info", {"api_version": "policy/v1", "kind": "PodDisruptionBudget", "namespace": scratch}, core_env, lab
    )
    budgets = {r["metadata"]["name"]: r for r in info["resources"]}
    assert budgets["k8s-pdb"]["status"]["expectedPods"] == 0
    for definition in (job, pdb):
        res = _k8s("k8s", {"state": "absent", "definition": definition}, core_env, lab)
        assert not res["failed"] and res["changed"] is True, res
