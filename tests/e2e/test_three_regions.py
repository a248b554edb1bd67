"""More than two regions: a region-down on a three-region lab sends the traffic to the first healthy region
by the inventory's preference (primary, secondary, tertiary)."""

from __future__ import annotations

import pytest
from kubernetes import client

from kubeutil import NS, api, http
from response_support import respond
from support import wait_for

pytestmark = pytest.mark.regions(3)


def _served_by(lab) -> str:
    """The region that answers a request through the global entry point (its load balancer's X-Lab-Region)."""
    code, _, headers = http(lab.cfg.url("lb-global", "/user-service/actuator/health"))
    assert code == 200, (code, headers)
    return headers.get("X-Lab-Region", "")


def _upstream(lab) -> str:
    return lab.cfg.path("nginx", "global", "upstream.conf").read_text()


def _switch(inc) -> dict:
    return next(e for e in inc.timeline() if e.get("module") == "incident.response.traffic_failover" and e["changed"])


def test_three_region_lab_runs_every_region_and_starts_on_the_primary(own_lab):
    assert own_lab.regions == ("primary", "secondary", "tertiary")
    names = {c.name: c for c in own_lab.status()}
    assert names["kube-tertiary"].healthy and names["lb-tertiary"].healthy
    assert own_lab.cfg.ports["lb-tertiary"] == own_lab.cfg.port_base + 83
    assert _served_by(own_lab) == "primary"


def test_region_down_moves_traffic_to_the_secondary_first_by_preference(own_lab, ctl_env):
    own_lab.break_fault("region-down")
    doc, inc = respond(ctl_env, "--yes")
    assert doc["severity"] == "P0" and doc["status"] == "mitigated" and doc["verified"] is True
    assert f"127.0.0.1:{own_lab.cfg.ports['lb-secondary']};" in _upstream(own_lab)
    wait_for(lambda: _served_by(own_lab) == "secondary", 10, "the global entry to answer from secondary")
    assert "to secondary" in _switch(inc)["summary"]


def test_region_down_skips_an_unhealthy_secondary_for_the_tertiary(own_lab, ctl_env):
    """The secondary's load balancer answers but says DOWN (one of its services has no endpoint): the next region
    by preference, tertiary, takes the traffic."""
    apps = client.AppsV1Api(api(own_lab, "secondary"))
    apps.patch_namespaced_deployment_scale("user-service", NS, {"spec": {"replicas": 0}})
    health = own_lab.cfg.url("lb-secondary", "/actuator/health")
    wait_for(lambda: http(health)[0] == 503, 30, "the secondary's load balancer to say DOWN")
    own_lab.break_fault("region-down")
    doc, inc = respond(ctl_env, "--yes")
    assert doc["severity"] == "P0" and doc["verified"] is True
    assert f"127.0.0.1:{own_lab.cfg.ports['lb-tertiary']};" in _upstream(own_lab)
    wait_for(lambda: _served_by(own_lab) == "tertiary", 10, "the global entry to answer from tertiary")
    assert "to tertiary" in _switch(inc)["summary"]
