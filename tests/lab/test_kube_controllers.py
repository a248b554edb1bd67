"""Controllers and pods behave like a cluster's: rolling updates, crash loops, the HPA, and
the cluster's faults (what they change is what the real components report)."""

from __future__ import annotations

import time

import pytest
import yaml
from kubernetes import client

from incidentlab.errors import LabInputError
from kubeutil import NS, api, children, demo_deployment, http, lb_settled, pods_of, ready, wait_deployment_available
from support import wait_for

pytestmark = pytest.mark.lab


def test_rolling_update_makes_a_new_replicaset_and_completes(lab, scratch):
    c = api(lab, "primary")
    apps, core = client.AppsV1Api(c), client.CoreV1Api(c)
    apps.create_namespaced_deployment(scratch, demo_deployment("rolling", scratch, replicas=2))
    wait_deployment_available(apps, "rolling", scratch, timeout=60)
    first = apps.list_namespaced_replica_set(scratch, label_selector="app=rolling").items
    assert len(first) == 1 and first[0].metadata.name.endswith(first[0].metadata.labels["pod-template-hash"])
    old_pods = {p.metadata.name for p in core.list_namespaced_pod(scratch, label_selector="app=rolling").items}

    apps.patch_namespaced_deployment(
        "rolling",
        scratch,
        {
            "spec": {
                "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}
            }
        },
    )
    wait_deployment_available(apps, "rolling", scratch, timeout=60)
    d = apps.read_namespaced_deployment("rolling", scratch)
    assert d.status.observed_generation == d.metadata.generation == 2
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    conds = {cd.type: cd for cd in d.status.conditions}
    assert conds["Available"].status == "True" and conds["Progressing"].reason == "NewReplicaSetAvailable"
    rss = {
        r.metadata.name: r.spec.replicas
        for r in apps.list_namespaced_replica_set(scratch, label_selector="app=rolling").items
    }
    assert rss[first[0].metadata.name] == 0 and sorted(rss.values()) == [0, 2]
    wait_for(
        lambda: (
            not old_pods
            & {p.metadata.name for p in core.list_namespaced_pod(scratch, label_selector="app=rolling").items}
        ),
        20,
        "the old pods to be gone",
    )
    apps.delete_namespaced_deployment("rolling", scratch)


def test_crashing_container_goes_into_crash_loop_back_off(lab, scratch):
    c = api(lab, "primary")
    apps, core = client.AppsV1Api(c), client.CoreV1Api(c)
    apps.create_namespaced_deployment(
        scratch, demo_deployment("crasher", scratch, replicas=1, env={"LAB_FAIL_ON_START": "1"})
    )

    def backing_off():
        for p in core.list_namespaced_pod(scratch, label_selector="app=crasher").items:
            cs = (p.status.container_statuses or [None])[0]
            if cs and cs.state.waiting and cs.state.waiting.reason == "CrashLoopBackOff":
                return p
        return None

    pod = wait_for(backing_off, 30, "the pod to be in CrashLoopBackOff")
    cs = pod.status.container_statuses[0]
    assert cs.restart_count >= 1 and not cs.ready
    assert cs.last_state.terminated.exit_code == 1 and cs.last_state.terminated.reason == "Error"
    assert "back-off 10s restarting failed container" in cs.state.waiting.message
    assert pod.status.phase == "Running"
    # The log of the container that just exited is copied from its pipe a moment after the exit.
    wait_for(
        lambda: "LAB_FAIL_ON_START" in core.read_namespaced_pod_log(pod.metadata.name, scratch, previous=True),
        30,
        "the previous container's log",
    )
    events = core.list_namespaced_event(scratch, field_selector=f"involvedObject.name={pod.metadata.name}").items
    assert "BackOff" in {e.reason for e in events}
    apps.delete_namespaced_deployment("crasher", scratch)


def test_hpa_enforces_min_and_max_and_reports_status(restored):
    lab = restored
    c = api(lab, "primary")
    apps, auto = client.AppsV1Api(c), client.AutoscalingV2Api(c)
    hpa = wait_for(
        lambda: (h := auto.read_namespaced_horizontal_pod_autoscaler("order-service", NS)).status.current_metrics and h,
        30,
        "the HPA to report metrics",
    )
    assert hpa.status.current_replicas == 2 and hpa.status.desired_replicas == 2
    assert hpa.status.current_metrics[0].resource.current.average_utilization >= 0
    assert {cd.type for cd in hpa.status.conditions} == {"AbleToScale", "ScalingActive", "ScalingLimited"}

    # What workload_scale does before scaling: raise minReplicas, and the HPA scales the target up.
    auto.patch_namespaced_horizontal_pod_autoscaler("order-service", NS, {"spec": {"minReplicas": 3}})
    wait_for(
        lambda: apps.read_namespaced_deployment("order-service", NS).spec.replicas == 3,
        40,
        "the HPA to raise order-service to its new minimum",
    )
    hpa = auto.read_namespaced_horizontal_pod_autoscaler("order-service", NS)
    assert hpa.status.last_scale_time is not None

    # Above maxReplicas the HPA brings it back down.
    apps.patch_namespaced_deployment_scale("order-service", NS, {"spec": {"replicas": 7}})
    wait_for(
        lambda: apps.read_namespaced_deployment("order-service", NS).spec.replicas == 5,
        40,
        "the HPA to cap order-service at maxReplicas",
    )


def test_service_down_crash_loops_current_pods_and_a_rolling_restart_heals_it(restored, healed):
    lab = restored
    c = api(lab, "primary")
    core, apps = client.CoreV1Api(c), client.AppsV1Api(c)
    before = {p.metadata.name for p in pods_of(core, "inventory-service")}
    lab.break_fault("service-down", "inventory-service")

    service = lab.cfg.url("lb-primary", "/inventory-service/actuator/health")

    def down():
        ep = core.read_namespaced_endpoints("inventory-service", NS)
        ready_addrs = [a for s in ep.subsets or [] for a in s.addresses or []]
        code, body, _ = http(service)
        return not ready_addrs and code == 503 and "no ready endpoints" in body.get("error", "")

    # Until the endpoints drop the killed pods nginx answers 502 (every upstream refuses), as a real
    # one does; then the LB reloads, and for ~100 ms its old worker still answers with the old upstreams.
    wait_for(down, 30, "inventory-service to lose its ready endpoints and the LB to answer 503 for it")
    wait_for(lambda: lb_settled(lab, "primary"), 15, "lb-primary's reload to complete")
    for _ in range(10):  # from then on every answer says the same
        code, body, _ = http(service)
        assert code == 503 and "no ready endpoints" in body["error"]
        assert http(lab.cfg.url("lb-primary", "/actuator/health"))[0] == 503
    assert http(lab.cfg.url("lb-secondary", "/inventory-service/actuator/health"))[0] == 200  # one region only
    wait_for(
        lambda: any(
            cs.restart_count >= 1
            for p in pods_of(core, "inventory-service")
            for cs in p.status.container_statuses or []
        ),
        30,
        "the poisoned pods to restart",
    )

    # The runbook's P2 fix: a rolling restart makes new pods, which are healthy.
    apps.patch_namespaced_deployment(
        "inventory-service",
        NS,
        {
            "spec": {
                "template": {
                    "metadata": {
                        "annotations": {
                            "kubectl.kubernetes.io/restartedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                        }
                    }
                }
            }
        },
    )
    wait_deployment_available(apps, "inventory-service", timeout=60)
    after = {p.metadata.name for p in pods_of(core, "inventory-service") if ready(p)}
    assert len(after) == 2 and not after & before
    wait_for(lambda: http(lab.cfg.url("lb-primary", "/actuator/health"))[0] == 200, 30, "the region to be UP again")


def test_bad_config_breaks_the_service_with_a_visible_wrong_host(restored, healed):
    lab = restored
    core = client.CoreV1Api(api(lab, "primary"))
    lab.break_fault("bad-config", "payment-service")
    assert core.read_namespaced_config_map("microservice-config", NS).data["db.host"] == "127.0.0.2"

    def broken():
        """Health of each pod once all are unready and the LB says 503: unready alone may only mean
        that the restarted containers are not listening yet (seconds on a loaded machine)."""
        pods = pods_of(core, "payment-service")
        if not pods or any(ready(p) for p in pods):
            return None
        if http(lab.cfg.url("lb-primary", "/payment-service/actuator/health"))[0] != 503:
            return None
        bodies = [
            http(f"http://127.0.0.1:{p.metadata.annotations['incidentlab.io/port']}/actuator/health")[1] for p in pods
        ]
        return bodies if all(b.get("status") == "DOWN" for b in bodies) else None

    bodies = wait_for(broken, 30, "payment-service's pods to be unready and answer health DOWN")
    assert all(b["components"]["db"]["details"]["host"] == "127.0.0.2" for b in bodies), bodies
    lab.heal("bad-config", "payment-service")
    assert core.read_namespaced_config_map("microservice-config", NS).data["db.host"] == "127.0.0.1"
    wait_for(
        lambda: http(lab.cfg.url("lb-primary", "/payment-service/actuator/health"))[0] == 200,
        30,
        "payment-service to be healthy again",
    )


def test_service_slow_delays_the_api_but_not_health(restored, healed):
    lab = restored
    lab.break_fault("service-slow", "notification-service")
    url = lab.cfg.url("lb-primary", "/notification-service/api/records?limit=1")

    def delayed() -> set[str]:
        """The delays the pods say they applied, over a few answers through the LB ("0": none)."""
        seen = set()
        for _ in range(4):
            t = time.monotonic()
            code, _, headers = http(url, timeout=10)
            assert code == 200, code
            seen.add(headers.get("X-Lab-Delay-Ms", "0"))
            if headers.get("X-Lab-Delay-Ms"):  # a lower bound, which no load can break
                assert time.monotonic() - t >= 2.5
        return seen

    # Both pods delay /api once the restarted containers answer.
    wait_for(lambda: delayed() == {"2500"}, 60, "notification-service's /api to answer slowly", interval=0.5)
    code, _, headers = http(lab.cfg.url("lb-primary", "/notification-service/actuator/health"))
    assert code == 200 and "X-Lab-Delay-Ms" not in headers  # health is not delayed
    assert headers.get("X-Lab-Upstream")  # answered by one of the slow pods
    lab.heal("service-slow", "notification-service")
    wait_for(lambda: delayed() == {"0"}, 60, "notification-service to answer without delay again", interval=0.5)


def test_region_down_freezes_the_primary_region_only(lab, healed):
    assert http(lab.cfg.url("kube-primary", "/healthz"))[0] == 200
    lab.break_fault("region-down")
    assert http(lab.cfg.url("kube-primary", "/healthz"), timeout=1)[0] == 0
    assert http(lab.cfg.url("lb-primary", "/actuator/health"), timeout=1)[0] == 0
    assert http(lab.cfg.url("lb-secondary", "/actuator/health"))[0] == 200
    assert http(lab.cfg.url("kube-secondary", "/healthz"))[0] == 200
    lab.heal("region-down")
    wait_for(lambda: http(lab.cfg.url("lb-primary", "/actuator/health"))[0] == 200, 30, "the primary LB to answer")
    assert http(lab.cfg.url("kube-primary", "/healthz"))[0] == 200


def test_region_down_takes_the_region_to_freeze_and_refuses_one_the_lab_lacks(lab, healed):
    with pytest.raises(LabInputError, match="no region 'tertiary'; its regions: primary, secondary"):
        lab.break_fault("region-down", "tertiary")
    assert not lab.active_faults()
    assert "region secondary frozen" in lab.break_fault("region-down", "secondary")
    assert http(lab.cfg.url("lb-secondary", "/actuator/health"), timeout=1)[0] == 0
    assert http(lab.cfg.url("kube-secondary", "/healthz"), timeout=1)[0] == 0
    assert http(lab.cfg.url("lb-primary", "/actuator/health"))[0] == 200
    # left out, the region is the primary: both forms are one fault, and healing without a region thaws every one
    lab.break_fault("region-down")
    assert "already active" in lab.break_fault("region-down", "primary")
    assert [(f["name"], f["arg"]) for f in lab.active_faults()] == [
        ("region-down", "secondary"),
        ("region-down", "primary"),
    ]
    assert sorted(lab.heal("region-down")) == [
        "region primary thawed: its API, pods and load balancer answer again",
        "region secondary thawed: its API, pods and load balancer answer again",
    ]
    for region in ("primary", "secondary"):
        url = lab.cfg.url(f"lb-{region}", "/actuator/health")
        wait_for(lambda url=url: http(url)[0] == 200, 30, f"the {region} load balancer to answer")


def test_pods_are_children_of_the_emulator_in_its_group_and_reaped(lab):
    for region in ("primary", "secondary"):
        rec = lab.procs.get(f"kube-{region}")
        kids = children(rec.pid)
        assert len(kids) >= 16  # 10 services' pods and 6 kube-system pods
        assert {pgid for _, pgid, _ in kids} == {rec.pgid}
        # A pod that just exited may be a zombie until the kubelet's next pass (every 0.5 s).
        wait_for(lambda r=rec: all(state != "Z" for *_, state in children(r.pid)), 10, "no zombie pod process")


def test_lab_status_lists_the_cluster(lab):
    comps = {c.name: c for c in lab.status()}
    for name in ("kube-primary", "kube-secondary", "lb-primary", "lb-secondary", "lb-global", "traffic"):
        assert comps[name].running and comps[name].healthy, (name, comps[name].detail)
    assert "via primary" in comps["lb-global"].detail
    upstream = lab.cfg.path("nginx", "global", "upstream.conf").read_text()
    assert f"server 127.0.0.1:{lab.cfg.ports['lb-primary']};" in upstream
    code, body, headers = http(lab.cfg.url("lb-global", "/actuator/health"))
    assert code == 200 and body["region"] == "primary" and headers["X-Lab-Region"] == "primary"
    kubeconfig = yaml.safe_load(lab.cfg.path("kubeconfig").read_text())
    contexts = {c["name"]: c["context"] for c in kubeconfig["contexts"]}
    assert set(contexts) == {"primary", "secondary"} and contexts["secondary"]["namespace"] == NS
