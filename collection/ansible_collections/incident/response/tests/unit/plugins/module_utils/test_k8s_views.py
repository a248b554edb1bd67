"""The read views of Kubernetes objects: kubectl's columns, the health summary, the text tables."""

from __future__ import annotations

import time

import pytest

from ansible_collections.incident.response.plugins.module_utils import k8s_views as v

NOW = 1_800_000_000.0


def ts(seconds_ago):
    return v.iso(NOW - seconds_ago)


def pod(name="web-1", ns="shop", phase="Running", statuses=None, ready=True, **extra):
    statuses = statuses if statuses is not None else [running("app")]
    p = {
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": ts(300), "labels": {"app": "web"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": s["name"], "image": "img"} for s in statuses]},
        "status": {
            "phase": phase,
            "podIP": "10.0.0.5",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": statuses,
        },
    }
    for key, value in extra.items():
        p[key].update(value)
    return p


def running(name, ready=True, restarts=0, last=None):
    st = {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": ts(60)}}}
    if last:
        st["lastState"] = {"terminated": last}
    return st


def waiting(name, reason, restarts=0, last=None):
    st = {"name": name, "ready": False, "restartCount": restarts, "state": {"waiting": {"reason": reason}}}
    if last:
        st["lastState"] = {"terminated": last}
    return st


@pytest.mark.parametrize(
    "seconds,text",
    [
        (5, "5s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 600, "3h10m"),
        (50 * 3600, "2d2h"),
    ],
)
def test_human_duration_is_kubectls(seconds, text):
    assert v.human_duration(seconds) == text


def test_quantities():
    assert v.millicores("100m") == 100 and v.millicores("4") == 4000 and v.millicores("0.5") == 500
    assert v.mem_bytes("64Mi") == 64 * 2**20 and v.mem_bytes("16374584Ki") == 16374584 * 1024
    assert v.mem_bytes("1G") == 10**9 and v.parse_quantity("12Zz") is None and v.parse_quantity(None) is None


def test_parse_time_handles_fractions_and_offsets():
    assert v.parse_time("2027-01-15T08:00:00Z") == v.parse_time("2027-01-15T09:00:00+01:00")
    assert v.parse_time("2027-01-15T08:00:00.250000Z") - v.parse_time("2027-01-15T08:00:00Z") == pytest.approx(0.25)
    assert v.parse_time("yesterday") is None


def test_running_pod_cells():
    assert v.pod_cells(pod())[:3] == ("1/1", "Running", 0)


def test_crashlooping_pod_cells_and_view():
    last = {"exitCode": 1, "reason": "Error", "finishedAt": ts(4)}
    p = pod(statuses=[waiting("app", "CrashLoopBackOff", restarts=3, last=last)], ready=False)
    ready, status, restarts, last_restart = v.pod_cells(p)
    assert (ready, status, restarts) == ("0/1", "CrashLoopBackOff", 3)
    assert last_restart == pytest.approx(NOW - 4)
    view = v.pod_view(p)
    assert view["crashlooping"] and view["waiting_reasons"] == ["CrashLoopBackOff"] and not view["ready"]
    assert view["containers"][0]["last_terminated"]["exit_code"] == 1
    table = v.pods_table([view], NOW)
    assert "3 (4s ago)" in table and "CrashLoopBackOff" in table


def test_terminating_and_completed_pods():
    p = pod(metadata={"deletionTimestamp": ts(1)})
    assert v.pod_cells(p)[1] == "Terminating"
    done = {"name": "job", "ready": False, "restartCount": 0, "state": {"terminated": {"reason": "Completed"}}}
    assert v.pod_cells(pod(phase="Succeeded", statuses=[done], ready=False))[1] == "Completed"
    # a pod with one container done and one still running reads Running (kubectl's rule)
    both = pod(statuses=[done, running("app")])
    assert v.pod_cells(both)[:2] == ("1/2", "Running")


def test_init_container_status():
    p = pod(statuses=[waiting("app", "PodInitializing")], ready=False)
    p["spec"]["initContainers"] = [{"name": "migrate"}]
    p["status"]["initContainerStatuses"] = [waiting("migrate", "CrashLoopBackOff", restarts=2)]
    assert v.pod_cells(p)[1:3] == ("Init:CrashLoopBackOff", 2)
    assert v.pod_view(p)["crashlooping"]


def deployment(name="web", desired=2, available=2, reason="NewReplicaSetAvailable"):
    return {
        "metadata": {"name": name, "namespace": "shop", "generation": 3, "creationTimestamp": ts(60)},
        "spec": {
            "replicas": desired,
            "selector": {"matchLabels": {"app": name, "tier": "web"}},
            "template": {"spec": {"containers": [{"name": "app", "image": "img:1"}]}},
        },
        "status": {
            "observedGeneration": 3,
            "replicas": desired,
            "updatedReplicas": desired,
            "readyReplicas": available,
            "availableReplicas": available,
            "conditions": [{"type": "Progressing", "status": "True", "reason": reason}],
        },
    }


def test_deployment_view():
    d = v.deployment_view(deployment())
    assert d["fully_available"] and d["rolled_out"] and d["selector"] == "app=web,tier=web"
    bad = v.deployment_view(deployment(available=0, reason="ProgressDeadlineExceeded"))
    assert not bad["fully_available"] and bad["progress_deadline_exceeded"]


def test_hpa_view_targets_and_at_max():
    hpa = {
        "metadata": {"name": "web", "namespace": "shop", "creationTimestamp": ts(60)},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                },
                {
                    "type": "Resource",
                    "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "200Mi"}},
                },
            ],
        },
        "status": {
            "currentReplicas": 5,
            "desiredReplicas": 5,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 93}}}
            ],
        },
    }
    view = v.hpa_view(hpa)
    assert view["targets"] == "cpu: 93%/70%, memory: <unknown>/200Mi"
    assert view["at_max"] and view["reference"] == "Deployment/web"
    assert "hpa shop/web is at its maximum of 5 replicas" in v.health_summary({"hpas": [view]})["problems"]


def test_node_view():
    node = {
        "metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": ""}, "creationTimestamp": ts(9)},
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "KubeletNotReady"},
                {"type": "DiskPressure", "status": "True", "reason": "KubeletHasDiskPressure"},
                {"type": "MemoryPressure", "status": "False"},
            ],
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "addresses": [{"type": "InternalIP", "address": "10.1.0.4"}],
        },
    }
    view = v.node_view(node)
    assert view["status"] == "NotReady,SchedulingDisabled" and not view["ready"]
    assert view["roles"] == ["control-plane"] and view["internal_ip"] == "10.1.0.4"
    assert {p["type"] for p in view["problems"]} == {"Ready", "DiskPressure"}


def test_endpoints_view_and_column():
    ep = {
        "metadata": {"name": "web", "namespace": "shop"},
        "subsets": [
            {
                "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}],
                "notReadyAddresses": [{"ip": "10.0.0.9"}],
                "ports": [{"port": 8080}],
            }
        ],
    }
    view = v.endpoints_view(ep)
    assert (view["ready"], view["not_ready"]) == (4, 1)
    assert v.endpoints_text(view["ready_addresses"]) == "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 1 more..."
    assert v.endpoints_text([]) == "<none>"


def test_format_table_pads_like_kubectls_tabwriter():
    text = v.format_table(["NAME", "AGE", "IP"], [["a", "5s", "10.0.0.1"], ["longer-name", "10m", "<none>"]])
    assert text.splitlines() == [
        "NAME          AGE   IP",
        "a             5s    10.0.0.1",
        "longer-name   10m   <none>",
    ]


def test_build_snapshot_keeps_recent_warning_events_newest_first_and_counts_all():
    def event(reason, seconds_ago, count=1):
        return {
            "metadata": {"name": reason, "namespace": "shop", "creationTimestamp": ts(seconds_ago)},
            "involvedObject": {"kind": "Pod", "name": "web-1"},
            "type": "Warning",
            "reason": reason,
            "count": count,
            "lastTimestamp": ts(seconds_ago),
        }

    raw = {"events": [event("Old", 7200), event("BackOff", 10, count=4), event("Unhealthy", 5)], "pods": [pod()]}
    snap = v.build_snapshot("primary", "https://k8s", raw, NOW, events_since=3600, max_events=1)
    assert [e["reason"] for e in snap["events"]] == ["Unhealthy"]
    assert snap["warning_events_total"] == 5 and snap["summary"]["warning_events"] == 5
    assert snap["nodes"] is None and snap["metrics"] is None
    assert snap["summary"]["line"] == "primary: 1/1 pods ready, 5 warning events"


def test_health_summary_names_what_is_wrong():
    crash = pod("pay-1", statuses=[waiting("app", "CrashLoopBackOff", restarts=5)], ready=False)
    pending = pod("pay-2", phase="Pending", statuses=[waiting("app", "ContainerCreating")], ready=False)
    raw = {
        "pods": [pod(), crash, pending],
        "deployments": [deployment(), deployment("pay", available=0, reason="ProgressDeadlineExceeded")],
        "metrics": (None, None, "primary: the metrics API (metrics.k8s.io) is not served"),
    }
    s = v.build_snapshot("primary", "https://k8s", raw, NOW, 3600, 50)["summary"]
    assert s["crashlooping"] == ["shop/pay-1"]
    assert s["pods_not_ready"] == ["shop/pay-1", "shop/pay-2"] and s["pods_pending"] == ["shop/pay-2"]
    assert s["deployments_not_available"] == ["shop/pay"] and s["restarts"] == 5
    assert s["metrics_available"] is False and not s["healthy"]
    assert "deployment shop/pay: 0/2 available (ProgressDeadlineExceeded)" in s["problems"]
    assert "pod shop/pay-1: CrashLoopBackOff, 5 restarts" in s["problems"]
    assert "1 crash-looping (shop/pay-1)" in s["line"] and "no metrics API" in s["line"]


def test_snapshot_text_has_kubectl_tables_and_the_metrics_note():
    raw = {"pods": [pod()], "metrics": (None, None, "the metrics API is not served")}
    snap = v.build_snapshot("secondary", "https://k8s", raw, NOW, 3600, 50)
    text = v.snapshot_text([snap], NOW)
    assert "## Cluster secondary (https://k8s)" in text
    assert "NAMESPACE   NAME    READY   STATUS    RESTARTS   AGE   IP         NODE     NOMINATED NODE" in text
    assert "NOTE: the metrics API is not served" in text


def test_top_views_use_allocatable():
    nm = {"metadata": {"name": "n1"}, "usage": {"cpu": "392m", "memory": "1Gi"}}
    view = v.node_usage_view(nm, {"n1": {"cpu": "3920m", "memory": "4Gi"}})
    assert (view["cpu_millicores"], view["cpu_percent"], view["memory_percent"]) == (392, 10, 25)
    pm = {"metadata": {"name": "p", "namespace": "ns"}, "containers": [{"usage": {"cpu": "1500000n", "memory": "2Mi"}}]}
    assert v.pod_usage_view(pm)["cpu_millicores"] == 2 and "2Mi" in v.top_pods_table([v.pod_usage_view(pm)])


def test_iso_roundtrip():
    t = time.time() // 1
    assert v.parse_time(v.iso(t)) == t
