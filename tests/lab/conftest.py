"""Fixtures of the cluster tests (the lab itself comes from tests/conftest.py)."""

from __future__ import annotations

import pytest
from kubernetes import client

from incidentlab.kube.cluster import region_ready
from kubeutil import NS, REGIONS, SERVICES, api, kubectl
from support import wait_for


@pytest.fixture
def restored(lab):
    """Tests that scale, restart or reconfigure the lab's services leave them as `lab up` made them."""
    yield lab
    for region in REGIONS:
        core, apps = client.CoreV1Api(api(lab, region)), client.AppsV1Api(api(lab, region))
        auto = client.AutoscalingV2Api(api(lab, region))
        for name in SERVICES:
            hpa = auto.read_namespaced_horizontal_pod_autoscaler(name, NS)
            if hpa.spec.min_replicas != 2 or hpa.spec.max_replicas != 5:
                auto.patch_namespaced_horizontal_pod_autoscaler(
                    name, NS, {"spec": {"minReplicas": 2, "maxReplicas": 5}}
                )
        cm = core.read_namespaced_config_map("microservice-config", NS)
        if cm.data["db.host"] != "127.0.0.1":
            core.patch_namespaced_config_map("microservice-config", NS, {"data": {"db.host": "127.0.0.1"}})
            kubectl(lab, region, "rollout", "restart", "deployment", *SERVICES)
        for name in SERVICES:
            if apps.read_namespaced_deployment(name, NS).spec.replicas != 2:
                apps.patch_namespaced_deployment_scale(name, NS, {"spec": {"replicas": 2}})
        wait_for(lambda r=region: region_ready(lab.cfg, r)[0], 60, f"the {region} region to be ready again")
        wait_for(
            lambda c=core: len(c.list_namespaced_pod(NS).items) == 2 * len(SERVICES),
            30,
            f"the {region} region's replaced pods to be gone",
        )


@pytest.fixture(scope="module")
def scratch(lab):
    """A namespace of its own in the primary region, deleted (with everything in it) at the end."""
    api_client = api(lab, "primary")
    core = client.CoreV1Api(api_client)
    name = "scratch"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)
    wait_for(
        lambda: name not in {n.metadata.name for n in core.list_namespace().items},
        30,
        "the scratch namespace to be gone",
    )
