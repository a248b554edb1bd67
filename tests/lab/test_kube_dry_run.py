"""The emulator honours server-side dry run (dryRun=All) for every verb of the resources the collection's
write modules change, as kube-apiserver does: the request is validated and answered with the object that
would be stored, and nothing is stored. The modules' check mode relies on it."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubeutil import api, demo_deployment, kubectl, pods_of, wait_deployment_available

pytestmark = pytest.mark.lab

DRY = "All"


@pytest.fixture(scope="module")
def apis(lab):
    c = api(lab, "primary")
    return client.CoreV1Api(c), client.AppsV1Api(c), client.AutoscalingV2Api(c)


@pytest.fixture(scope="module")
def web(lab, scratch, apis):
    """A deployment of two ready pods, its HPA and a ConfigMap, in the scratch namespace."""
    core, apps, auto = apis
    apps.create_namespaced_deployment(scratch, demo_deployment("web", scratch))
    auto.create_namespaced_horizontal_pod_autoscaler(
        scratch,
        {
            "metadata": {"name": "web"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 2,  # holds web at 2 pods (new pods without metrics would make it scale up)
            },
        },
    )
    core.create_namespaced_config_map(scratch, {"metadata": {"name": "web-config"}, "data": {"mode": "a"}})
    wait_deployment_available(apps, "web", scratch)
    return scratch


def rv(obj) -> str:
    return obj.metadata.resource_version


def test_create_and_delete_of_a_configmap(apis, web):
    core, _, _ = apis
    body = {"metadata": {"name": "dry-config"}, "data": {"k": "v"}}
    answer = core.create_namespaced_config_map(web, body, dry_run=DRY)
    assert answer.metadata.name == "dry-config" and answer.data == {"k": "v"} and answer.metadata.uid
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("dry-config", web)
    assert missing.value.status == 404

    before = core.read_namespaced_config_map("web-config", web)
    core.delete_namespaced_config_map("web-config", web, dry_run=DRY)
    after = core.read_namespaced_config_map("web-config", web)
    assert (after.metadata.uid, rv(after)) == (before.metadata.uid, rv(before))


def test_patch_and_replace_of_a_configmap_answer_the_result_and_store_nothing(apis, web):
    core, _, _ = apis
    before = core.read_namespaced_config_map("web-config", web)
    answer = core.patch_namespaced_config_map("web-config", web, {"data": {"mode": "b", "new": "x"}}, dry_run=DRY)
    assert answer.data == {"mode": "b", "new": "x"}
    before.data = {"mode": "c"}
    replaced = core.replace_namespaced_config_map("web-config", web, before, dry_run=DRY)
    assert replaced.data == {"mode": "c"}
    now = core.read_namespaced_config_map("web-config", web)
    assert now.data == {"mode": "a"} and rv(now) == rv(before)


def test_an_invalid_patch_is_refused_in_a_dry_run_as_for_real(apis, web):
    core, _, auto = apis
    with pytest.raises(ApiException) as bad_key:
        core.patch_namespaced_config_map("web-config", web, {"data": {"not a key!": "x"}}, dry_run=DRY)
    assert bad_key.value.status == 422 and "a valid config key" in json.loads(bad_key.value.body)["message"]
    with pytest.raises(ApiException) as bounds:
        auto.patch_namespaced_horizontal_pod_autoscaler("web", web, {"spec": {"minReplicas": 9}}, dry_run=DRY)
    assert bounds.value.status == 422 and "minReplicas" in json.loads(bounds.value.body)["message"]


def test_scale_and_hpa_patches(lab, apis, web):
    _, apps, auto = apis
    before = apps.read_namespaced_deployment("web", web)
    scale = apps.patch_namespaced_deployment_scale("web", web, {"spec": {"replicas": 4}}, dry_run=DRY)
    assert scale.spec.replicas == 4
    hpa = auto.patch_namespaced_horizontal_pod_autoscaler("web", web, {"spec": {"maxReplicas": 4}}, dry_run=DRY)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (2, 4)
    # kubectl's own server-side dry run, as an operator would try it.
    out = kubectl(lab, "primary", "scale", "deployment", "web", "-n", web, "--replicas=3", "--dry-run=server")
    assert "(server dry run)" in out.stdout
    after = apps.read_namespaced_deployment("web", web)
    assert (after.spec.replicas, rv(after)) == (2, rv(before))
    assert auto.read_namespaced_horizontal_pod_autoscaler("web", web).spec.max_replicas == 2
    with pytest.raises(ApiException) as negative:
        apps.patch_namespaced_deployment_scale("web", web, {"spec": {"replicas": -1}}, dry_run=DRY)
    assert negative.value.status == 422


def test_a_restart_patch_answers_the_new_template_and_rolls_nothing_out(apis, web):
    _, apps, _ = apis
    before = apps.read_namespaced_deployment("web", web)
    body = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01"}}}}}
    answer = apps.patch_namespaced_deployment("web", web, body, dry_run=DRY)
    assert answer.spec.template.metadata.annotations == {"kubectl.kubernetes.io/restartedAt": "2026-01-01"}
    assert answer.metadata.generation == before.metadata.generation + 1
    after = apps.read_namespaced_deployment("web", web)
    assert (after.metadata.generation, rv(after)) == (before.metadata.generation, rv(before))
    assert not (after.spec.template.metadata.annotations or {})


def test_pod_deletions_answer_the_terminating_pods_and_the_pods_stay(lab, apis, web):
    core, _, _ = apis
    pods = pods_of(core, "web", web)
    uids = sorted(p.metadata.uid for p in pods)
    pod = pods[0]
    answer = core.delete_namespaced_pod(
        pod.metadata.name, web, dry_run=DRY, body=client.V1DeleteOptions(preconditions={"uid": pod.metadata.uid})
    )
    assert answer.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as wrong_uid:
        core.delete_namespaced_pod(
            pod.metadata.name, web, dry_run=DRY, body=client.V1DeleteOptions(preconditions={"uid": "other"})
        )
    assert wrong_uid.value.status == 409
    out = kubectl(lab, "primary", "delete", "pods", "-l", "app=web", "-n", web, "--dry-run=server")
    assert out.stdout.count("(server dry run)") == 2
    # A real deletion marks the pod at once (graceful deletion): both are there, unmarked.
    now = {p.metadata.uid: p for p in core.list_namespaced_pod(web, label_selector="app=web").items}
    assert set(uids) <= set(now)
    assert all(now[uid].metadata.deletion_timestamp is None for uid in uids)
