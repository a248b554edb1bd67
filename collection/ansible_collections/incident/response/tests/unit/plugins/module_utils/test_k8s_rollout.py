"""Rollout status as kubectl judges it, on objects recorded from the lab's API (trimmed to what matters)."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.incident.response.plugins.module_utils import k8s_rollout as rollout

# kubectl -n scratch get deploy fragile -o json, after a restart whose new pod crash-loops
# (progressDeadlineSeconds: 6): the old pods still serve, the new replica set timed out.
TIMED_OUT = {
    "kind": "Deployment",
    "metadata": {"name": "fragile", "namespace": "scratch", "generation": 2},
    "spec": {"replicas": 2, "progressDeadlineSeconds": 6, "selector": {"matchLabels": {"app": "fragile"}}},
    "status": {
        "availableReplicas": 2,
        "conditions": [
            {
                "message": "Deployment has minimum availability.",
                "reason": "MinimumReplicasAvailable",
                "status": "True",
                "type": "Available",
            },
            {
                "message": 'ReplicaSet "fragile-flnvbltpzp" has timed out progressing.',
                "reason": "ProgressDeadlineExceeded",
                "status": "False",
                "type": "Progressing",
            },
        ],
        "observedGeneration": 2,
        "readyReplicas": 2,
        "replicas": 3,
        "unavailableReplicas": 1,
        "updatedReplicas": 1,
    },
}


def deployment(generation, observed, replicas, updated, total, available, reason="ReplicaSetUpdated"):
    return {
        "kind": "Deployment",
        "metadata": {"name": "web", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "replicas": total,
            "readyReplicas": available,
            "availableReplicas": available,
            "conditions": [{"type": "Progressing", "status": "True", "reason": reason}],
        },
    }


def test_progress_deadline_exceeded_is_an_error_not_a_wait():
    st = rollout.rollout_status(TIMED_OUT)
    assert st["error"] == 'deployment "fragile" exceeded its progress deadline'
    assert not st["done"] and (st["desired"], st["updated"], st["available"]) == (2, 1, 2)


def test_a_stale_deadline_condition_is_not_read_before_the_new_generation_is_observed():
    obj = copy.deepcopy(TIMED_OUT)
    obj["metadata"]["generation"] = 3  # restarted again: the controller has not seen it yet
    st = rollout.rollout_status(obj)
    assert st["error"] is None and st["message"] == "Waiting for deployment spec update to be observed..."


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            deployment(2, 2, 3, 1, 3, 3),
            'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...',
        ),
        (
            deployment(2, 2, 3, 3, 4, 3),
            'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...',
        ),
        (
            deployment(2, 2, 3, 3, 3, 2),
            'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...',
        ),
        (deployment(2, 1, 3, 3, 3, 3), "Waiting for deployment spec update to be observed..."),
    ],
)
def test_deployment_waits_say_what_kubectl_says(obj, message):
    st = rollout.rollout_status(obj)
    assert (st["done"], st["error"], st["message"]) == (False, None, message)


def test_deployment_done_when_all_updated_available_and_no_old_replicas():
    st = rollout.rollout_status(deployment(2, 2, 3, 3, 3, 3, reason="NewReplicaSetAvailable"))
    assert st["done"] and st["message"] == 'deployment "web" successfully rolled out'


def test_scaled_to_zero_is_rolled_out():
    assert rollout.rollout_status(deployment(4, 4, 0, 0, 0, 0))["done"]


# kubectl -n scratch get sts web -o json during `kubectl rollout restart sts/web` (2 replicas).
STS = {
    "kind": "StatefulSet",
    "metadata": {"name": "web", "generation": 3},
    "spec": {"replicas": 2, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}},
    "status": {
        "availableReplicas": 1,
        "currentReplicas": 1,
        "currentRevision": "web-hcrqrc5dk8",
        "observedGeneration": 3,
        "readyReplicas": 1,
        "replicas": 2,
        "updateRevision": "web-tqqn6p82mc",
        "updatedReplicas": 1,
    },
}


def test_statefulset_waits_for_ready_pods_then_the_partition():
    assert rollout.rollout_status(STS)["message"] == "Waiting for 1 pods to be ready..."
    obj = copy.deepcopy(STS)
    obj["status"].update(readyReplicas=2, availableReplicas=2)
    st = rollout.rollout_status(obj)
    assert not st["done"]
    assert st["message"] == "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated..."
    obj["status"].update(updatedReplicas=2, currentReplicas=2, currentRevision="web-tqqn6p82mc")
    st = rollout.rollout_status(obj)
    assert st["done"] and st["message"] == "partitioned roll out complete: 2 new pods have been updated..."


def test_statefulset_without_partition_compares_revisions_and_waits_for_scale_down():
    obj = copy.deepcopy(STS)
    obj["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
    obj["status"].update(readyReplicas=2, updatedReplicas=2)
    st = rollout.rollout_status(obj)
    assert st["message"] == "waiting for statefulset rolling update to complete 2 pods at revision web-tqqn6p82mc..."
    obj["status"].update(currentRevision="web-tqqn6p82mc", currentReplicas=2)
    assert rollout.rollout_status(obj)["done"]
    obj["spec"]["replicas"], obj["status"]["replicas"] = 1, 2  # scaled down, pod web-1 still terminating
    st = rollout.rollout_status(obj)
    assert not st["done"] and st["message"] == "Waiting for 1 pods to be terminated..."


def test_on_delete_strategy_cannot_be_waited_for_nor_restarted():
    obj = copy.deepcopy(STS)
    obj["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert rollout.rollout_status(obj)["error"] == "rollout status is only available for RollingUpdate strategy type"
    assert "OnDelete" in rollout.restart_blocker(obj) and "delete_pods" in rollout.restart_blocker(obj)


# kubectl -n scratch get ds agent -o json during a restart (3 nodes).
DS = {
    "kind": "DaemonSet",
    "metadata": {"name": "agent", "generation": 3},
    "spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}},
    "status": {
        "currentNumberScheduled": 3,
        "desiredNumberScheduled": 3,
        "numberAvailable": 2,
        "numberMisscheduled": 0,
        "numberReady": 2,
        "numberUnavailable": 1,
        "observedGeneration": 3,
        "updatedNumberScheduled": 2,
    },
}


def test_daemonset_waits_for_updated_then_available_pods():
    assert rollout.rollout_status(DS)["message"] == (
        'Waiting for daemon set "agent" rollout to finish: 2 out of 3 new pods have been updated...'
    )
    obj = copy.deepcopy(DS)
    obj["status"]["updatedNumberScheduled"] = 3
    assert rollout.rollout_status(obj)["message"] == (
        'Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...'
    )
    obj["status"]["numberAvailable"] = 3
    st = rollout.rollout_status(obj)
    assert st["done"] and st["message"] == 'daemon set "agent" successfully rolled out'


def test_paused_deployment_is_not_restarted():
    obj = deployment(1, 1, 2, 2, 2, 2)
    obj["spec"]["paused"] = True
    assert "paused" in rollout.restart_blocker(obj)
    assert rollout.restart_blocker(deployment(1, 1, 2, 2, 2, 2)) is None


def test_restart_patch_is_kubectls():
    assert rollout.restart_body("2026-03-01T10:00:00Z") == {
        "spec": {
            "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-03-01T10:00:00Z"}}}
        }
    }


def test_selector_string_covers_match_expressions():
    sel = {
        "matchLabels": {"app": "web", "tier": "front"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "stage"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "NotIn", "values": ["a"]},
            {"key": "team", "operator": "Exists"},
        ],
    }
    assert rollout.selector_string(sel) == "app=web,tier=front,env in (prod,stage),!canary,zone notin (a),team"


# A pod of the crash-looping replica set, as the lab's API returned it.
CRASHING_POD = {
    "metadata": {"name": "fragile-flnvbltpzp-5kmxc"},
    "spec": {"nodeName": "primary-worker-1"},
    "status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        "containerStatuses": [
            {
                "name": "app",
                "ready": False,
                "restartCount": 1,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            }
        ],
    },
}


def test_pod_summary_says_why_a_pod_is_not_ready():
    s = rollout.pod_summary(CRASHING_POD)
    assert s == {
        "name": "fragile-flnvbltpzp-5kmxc",
        "phase": "Running",
        "ready": False,
        "node": "primary-worker-1",
        "container": "app",
        "restarts": 1,
        "reason": "CrashLoopBackOff",
        "message": "back-off 10s restarting failed",
        "last_exit_code": 1,
    }
    pods = [dict(s, log_tail=["ERROR fatal: cannot initialise application context"])]
    assert rollout.describe_pods(pods) == (
        "fragile-flnvbltpzp-5kmxc (CrashLoopBackOff, 1 restarts): ERROR fatal: cannot initialise application context"
    )


def test_rollout_failure_names_each_workload_and_its_pods():
    results = [
        {"cluster": "primary", "namespace": "ns", "kind": "Deployment", "name": "a", "status": "rolled_out"},
        {
            "cluster": "secondary",
            "namespace": "ns",
            "kind": "Deployment",
            "name": "b",
            "status": "failed",
            "message": 'deployment "b" exceeded its progress deadline',
            "unready_pods": [],
        },
    ]
    assert rollout.rollout_failure(results[:1]) is None
    assert rollout.rollout_failure(results) == (
        '1 of 2 rollout(s) did not complete: secondary/ns/deployment/b: deployment "b" exceeded its progress '
        "deadline [no unready pods found]"
    )


class FakeCluster:
    """Answers list calls (by the resource's plural) from recorded JSON, as k8s.Cluster.get does."""

    name = "primary"

    def __init__(self, **answers):
        self.answers = answers
        self.paths = []

    def get(self, what, path, missing_ok=False, **query):
        self.paths.append(path)
        return self.answers[path.rsplit("/", 1)[-1]]


def test_a_ready_pod_is_served_once_every_selecting_service_lists_it():
    pod = {"metadata": {"name": "web-new", "uid": "u-new", "labels": {"app": "web", "pod-template-hash": "x"}}}
    services = {
        "items": [
            {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}}},
            {"metadata": {"name": "other"}, "spec": {"selector": {"app": "other"}}},
            {"metadata": {"name": "headless-external"}, "spec": {}},
        ]
    }

    def endpoints(*uids):
        addresses = [{"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "uid": u}} for u in uids]
        return {"items": [{"metadata": {"name": "web"}, "subsets": [{"addresses": addresses}]}]}

    waiting = FakeCluster(services=services, endpoints=endpoints("u-old"))
    assert rollout.unserved_pods(waiting, "ns", [pod]) == ["web-new"]
    assert waiting.paths == ["/api/v1/namespaces/ns/services", "/api/v1/namespaces/ns/endpoints"]
    served = FakeCluster(services=services, endpoints=endpoints("u-old", "u-new"))
    assert rollout.unserved_pods(served, "ns", [pod]) == []
    no_service = FakeCluster(services={"items": []})
    assert rollout.unserved_pods(no_service, "ns", [pod]) == []
