"""Session fixtures: one lab for the whole test run, started once and stopped at the end.

The test lab uses its own directory and a port range claimed for this run (see
support.claim_port_base), so it runs beside an operator's lab and beside other test runs.
"""

from __future__ import annotations

import os

import pytest

from incidentlab.lab import Lab
from support import lab_port_base


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Lab:
    lab = Lab.open(tmp_path_factory.mktemp("lab"), lab_port_base())
    lab.up()
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="session")
def secrets(lab) -> dict[str, str]:
    return lab.secrets()


@pytest.fixture
def healed(lab):
    """For tests that inject faults: whatever they break is healed afterwards."""
    yield lab
    lab.heal()


@pytest.fixture
def quiet_traffic(lab):
    """For tests that count the primary's transactions, kill it or rejoin it: the traffic generator's
    writes would make counts inexact and a killed primary diverge. Paused until the test ends."""
    with lab.traffic_paused():
        yield lab


@pytest.fixture
def fresh_databases(lab):
    """For tests that change database roles (promote, fence): the original pair is rebuilt afterwards."""
    yield lab
    lab.reset_databases()


# -- the lab's cluster ------------------------------------------------------------------------


def _lab_config_data(lab) -> dict[str, str]:
    """The data of ConfigMap microservice-config as `lab up` makes it."""
    from incidentlab.kube.cluster import db_params

    db = db_params(lab.cfg, lab.secrets())
    return {"db.host": db.host, "db.port": str(db.port), "db.name": db.name, "log.level": "INFO"}


@pytest.fixture
def restored(lab):
    """Tests that scale, restart or reconfigure the lab's services leave them as `lab up` made them:
    replicas, HPA bounds, the ConfigMap's data (keys added by the test removed, services restarted)."""
    from kubernetes import client

    from incidentlab.kube.cluster import region_ready
    from kubeutil import NS, REGIONS, SERVICES, api, kubectl
    from support import wait_for

    yield lab
    want = _lab_config_data(lab)
    for region in REGIONS:
        core, apps = client.CoreV1Api(api(lab, region)), client.AppsV1Api(api(lab, region))
        auto = client.AutoscalingV2Api(api(lab, region))
        for name in SERVICES:
            hpa = auto.read_namespaced_horizontal_pod_autoscaler(name, NS)
            if hpa.spec.min_replicas != 2 or hpa.spec.max_replicas != 5:
                auto.patch_namespaced_horizontal_pod_autoscaler(
                    name, NS, {"spec": {"minReplicas": 2, "maxReplicas": 5}}
                )
        data = core.read_namespaced_config_map("microservice-config", NS).data or {}
        if data != want:
            patch = {k: want.get(k) for k in set(data) | set(want)}
            core.patch_namespaced_config_map(
                "microservice-config", NS, {"data": patch}, _content_type="application/merge-patch+json"
            )
            kubectl(lab, region, "rollout", "restart", "deployment", *SERVICES)
        for name in SERVICES:
            if apps.read_namespaced_deployment(name, NS).spec.replicas != 2:
                apps.patch_namespaced_deployment_scale(name, NS, {"spec": {"replicas": 2}})
        wait_for(lambda r=region: region_ready(lab.cfg, r)[0], 90, f"the {region} region to be ready again")
        wait_for(
            lambda c=core: len(c.list_namespaced_pod(NS).items) == 2 * len(SERVICES),
            60,
            f"the {region} region's replaced pods to be gone",
        )


@pytest.fixture(scope="module")
def scratch(lab):
    """A namespace of its own in the primary region, deleted (with everything in it) at the end."""
    from kubernetes import client

    from kubeutil import api
    from support import wait_for

    core = client.CoreV1Api(api(lab, "primary"))
    name = "scratch"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)
    wait_for(
        lambda: name not in {n.metadata.name for n in core.list_namespace().items},
        60,
        "the scratch namespace to be gone",
    )


# -- a lab of its own: for tests that promote, fail over or reconfigure anything ----------------------
# (end-to-end and chaos tests: the next test must start from the state `lab up` makes)


@pytest.fixture
def own_lab(tmp_path, request):
    """``@pytest.mark.topology("replicas")`` brings it up with another database topology (`lab up --topology`),
    ``@pytest.mark.regions(3)`` with that many regions (`lab up --regions`)."""
    marker = request.node.get_closest_marker("topology")
    regions = request.node.get_closest_marker("regions")
    lab = Lab.open(tmp_path / "lab", lab_port_base() + 1000)  # the claimed range's second half
    lab.up(topology=marker.args[0] if marker else None, regions=regions.args[0] if regions else None)
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture
def ctl_env(own_lab, tmp_path):
    """Environment for incidentctl against that lab, with an incidents directory of its own."""
    return {
        **os.environ,
        "INCIDENTLAB_DIR": str(own_lab.cfg.lab_dir),
        "INCIDENTCTL_INCIDENTS_DIR": str(tmp_path / "incidents"),
    }
