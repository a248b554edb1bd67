"""What outside clients found missing in the emulator, proved with the unmodified kubectl and the official client:
evictions and PodDisruptionBudgets (kubectl drain), cordoned nodes, paused rollouts, kubectl auth can-i/whoami,
Status details (kubectl debug), Jobs, autoscaling/v1 (kubectl autoscale), Leases, and kubectl's protobuf bodies."""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from kubeutil import (
    NS,
    api,
    controllers_settled,
    demo_deployment,
    http,
    kubectl,
    nodes_restored,
    ready,
    viewer_token,
    wait_deployment_available,
)
from support import wait_for

pytestmark = pytest.mark.lab

NODES = ("primary-worker-1", "primary-worker-2", "primary-worker-3")
REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."


def _pods(core, ns: str, app: str) -> list:
    return [
        p for p in core.list_namespaced_pod(ns, label_selector=f"app={app}").items if not p.metadata.deletion_timestamp
    ]


def _pdb_status(policy, name: str, ns: str, **want) -> bool:
    st = policy.read_namespaced_pod_disruption_budget(name, ns).status
    return all(getattr(st, k) == v for k, v in want.items())


class ReadyWatch(threading.Thread):
    """Watches an app's pods and keeps the lowest number of ready, not terminating pods seen at any moment."""

    def __init__(self, core, ns: str, app: str):
        super().__init__(daemon=True)
        listed = core.list_namespaced_pod(ns, label_selector=f"app={app}")
        self.ready = {p.metadata.name: ready(p) for p in listed.items if not p.metadata.deletion_timestamp}
        self.lowest = sum(self.ready.values())
        self.rv = listed.metadata.resource_version
        self.list, self.ns, self.selector = core.list_namespaced_pod, ns, f"app={app}"
        self.stopped = threading.Event()

    def run(self) -> None:
        # Short watches one after the other, so that stop() ends it within a second or two.
        while not self.stopped.is_set():
            for ev in watch.Watch().stream(
                self.list, self.ns, label_selector=self.selector, resource_version=self.rv, timeout_seconds=1
            ):
                pod = ev["object"]
                self.rv = pod.metadata.resource_version
                if ev["type"] == "DELETED" or pod.metadata.deletion_timestamp:
                    self.ready.pop(pod.metadata.name, None)
                else:
                    self.ready[pod.metadata.name] = ready(pod)
                self.lowest = min(self.lowest, sum(self.ready.values()))

    def stop(self) -> None:
        self.stopped.set()
        self.join(30)
        assert not self.is_alive(), "the pod watch did not stop"


def test_drain_evicts_within_the_budget_and_leaves_daemonset_pods(lab, scratch):
    c = api(lab, "primary")
    core, apps, policy = client.CoreV1Api(c), client.AppsV1Api(c), client.PolicyV1Api(c)
    with nodes_restored(lab, ("primary",)):
        # Every pod of the app on one node: worker-2 and -3 cordoned while it starts.
        kubectl(lab, "primary", "cordon", NODES[1], NODES[2])
        apps.create_namespaced_deployment(scratch, demo_deployment("web", scratch, replicas=3))
        wait_deployment_available(apps, "web", scratch)
        assert {p.spec.node_name for p in _pods(core, scratch, "web")} == {NODES[0]}
        kubectl(lab, "primary", "uncordon", NODES[1], NODES[2])
        # kubectl create pdb sends protobuf.
        kubectl(lab, "primary", "-n", scratch, "create", "pdb", "web", "--selector=app=web", "--min-available=2")
        wait_for(
            lambda: _pdb_status(
                policy, "web", scratch, expected_pods=3, current_healthy=3, desired_healthy=2, disruptions_allowed=1
            ),
            30,
            "the budget's status",
        )
        proxy = [
            p.metadata.name
            for p in core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-proxy").items
            if p.spec.node_name == NODES[0]
        ]
        assert len(proxy) == 1

        seen = ReadyWatch(core, scratch, "web")
        seen.start()
        res = kubectl(
            lab, "primary", "drain", NODES[0], "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=120s"
        )
        out = res.stdout + res.stderr
        assert f"node/{NODES[0]} cordoned" in out and f"node/{NODES[0]} drained" in out
        assert f"Warning: ignoring DaemonSet-managed Pods: kube-system/{proxy[0]}" in out
        # All three evictions are sent at once: the budget lets one through, the others wait for replacements.
        assert f"(will retry after 5s): {REFUSED}" in out
        # The replica set recreated the pods on the other nodes; the budget held all along.
        wait_deployment_available(apps, "web", scratch)
        web = _pods(core, scratch, "web")
        assert len(web) == 3 and all(ready(p) for p in web)
        assert {p.spec.node_name for p in web} <= set(NODES[1:])
        seen.stop()
        assert seen.lowest >= 2, f"only {seen.lowest} web pod(s) were ready at one moment of the drain"
        # Nothing but daemonset pods is left on the drained node, which is cordoned.
        left = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={NODES[0]}").items
        assert [p.metadata.name for p in left if not p.metadata.deletion_timestamp] == proxy
        assert core.read_node(NODES[0]).spec.unschedulable is True
        assert "Ready,SchedulingDisabled" in kubectl(lab, "primary", "get", "node", NODES[0]).stdout
    apps.delete_namespaced_deployment("web", scratch)
    policy.delete_namespaced_pod_disruption_budget("web", scratch)


def test_cordoned_nodes_take_no_new_pods(lab, scratch):
    core = client.CoreV1Api(api(lab, "primary"))
    with nodes_restored(lab, ("primary",)):
        kubectl(lab, "primary", "cordon", *NODES)
        pod = demo_deployment("lonely", scratch)["spec"]["template"]
        core.create_namespaced_pod(
            scratch, {"metadata": {"name": "lonely", "labels": {"app": "lonely"}}, "spec": pod["spec"]}
        )

        def unschedulable():
            conds = core.read_namespaced_pod("lonely", scratch).status.conditions or []
            return next((c for c in conds if c.type == "PodScheduled" and c.reason == "Unschedulable"), None)

        cond = wait_for(unschedulable, 30, "the pod to be found unschedulable")
        assert cond.message.startswith("0/3 nodes are available: 3 node(s) were unschedulable.")
        assert core.read_namespaced_pod("lonely", scratch).spec.node_name is None
        kubectl(lab, "primary", "uncordon", NODES[2])
        wait_for(
            lambda: core.read_namespaced_pod("lonely", scratch).spec.node_name == NODES[2], 30, "the pod scheduled"
        )
    core.delete_namespaced_pod("lonely", scratch, grace_period_seconds=0)


def test_eviction_api_honours_the_budget_with_the_real_answers(lab, scratch):
    c = api(lab, "primary")
    core, apps, policy = client.CoreV1Api(c), client.AppsV1Api(c), client.PolicyV1Api(c)
    apps.create_namespaced_deployment(scratch, demo_deployment("guarded", scratch, replicas=2))
    wait_deployment_available(apps, "guarded", scratch)
    budget = {
        "metadata": {"name": "guarded"},
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "guarded"}}},
    }
    policy.create_namespaced_pod_disruption_budget(scratch, budget)
    wait_for(
        lambda: _pdb_status(policy, "guarded", scratch, current_healthy=2, desired_healthy=2, expected_pods=2),
        30,
        "status",
    )

    def evict(name: str):
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=scratch))
        return core.create_namespaced_pod_eviction(name, scratch, body)

    victim, other = (p.metadata.name for p in _pods(core, scratch, "guarded"))
    with pytest.raises(ApiException) as refused:
        evict(victim)
    body = json.loads(refused.value.body)
    assert refused.value.status == 429 and body["reason"] == "TooManyRequests" and body["message"] == REFUSED
    assert body["details"]["causes"] == [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget guarded needs 2 healthy pods and has 2 currently",
        }
    ]
    st = policy.read_namespaced_pod_disruption_budget("guarded", scratch).status
    assert st.disruptions_allowed == 0 and [(x.type, x.status, x.reason) for x in st.conditions] == [
        ("DisruptionAllowed", "False", "InsufficientPods")
    ]
    assert victim in {p.metadata.name for p in _pods(core, scratch, "guarded")}

    # One disruption allowed: the first eviction goes through and takes it, the next one is refused.
    policy.patch_namespaced_pod_disruption_budget("guarded", scratch, {"spec": {"maxUnavailable": 1}})
    wait_for(
        lambda: _pdb_status(policy, "guarded", scratch, disruptions_allowed=1, observed_generation=2), 30, "one allowed"
    )
    with nodes_restored(lab, ("primary",)):
        # As kubectl drain does: cordoned first, so the replacement stays Pending and cannot give the
        # budget back before the second eviction (a ready replacement would, here as on a cluster). The
        # second one targets the other running pod: a Pending pod is deleted without asking the budget.
        kubectl(lab, "primary", "cordon", *NODES)
        evict(victim)
        # Taken: the eviction counted the pod as disrupted (until the controller sees it terminating, same count).
        assert policy.read_namespaced_pod_disruption_budget("guarded", scratch).status.disruptions_allowed == 0
        with pytest.raises(ApiException) as again:
            evict(other)
        assert again.value.status == 429
    # Uncordoned: the evicted pod is gone and replaced; the budget allows one disruption again.
    wait_deployment_available(apps, "guarded", scratch)
    wait_for(lambda: _pdb_status(policy, "guarded", scratch, disruptions_allowed=1, current_healthy=2), 30, "recovered")
    assert victim not in {p.metadata.name for p in _pods(core, scratch, "guarded")}
    with pytest.raises(ApiException) as missing:
        evict("no-such-pod")
    assert missing.value.status == 404
    assert json.loads(missing.value.body)["details"] == {"name": "no-such-pod", "kind": "pods"}
    apps.delete_namespaced_deployment("guarded", scratch)
    policy.delete_namespaced_pod_disruption_budget("guarded", scratch)


def test_paused_deployment_rolls_out_only_when_resumed(lab, scratch):
    c = api(lab, "primary")
    apps = client.AppsV1Api(c)
    apps.create_namespaced_deployment(scratch, demo_deployment("held", scratch, replicas=2))
    wait_deployment_available(apps, "held", scratch)

    def replica_sets():
        return {
            r.metadata.name: r.spec.replicas
            for r in apps.list_namespaced_replica_set(scratch, label_selector="app=held").items
        }

    first = replica_sets()
    assert len(first) == 1
    kubectl(lab, "primary", "-n", scratch, "rollout", "pause", "deployment/held")
    kubectl(lab, "primary", "-n", scratch, "set", "env", "deployment/held", "CHANGED=1")
    controllers_settled(lab)
    assert replica_sets() == first  # no new replica set, no pod replaced
    d = apps.read_namespaced_deployment("held", scratch)
    progressing = next(x for x in d.status.conditions if x.type == "Progressing")
    assert (progressing.status, progressing.reason, progressing.message) == (
        "Unknown",
        "DeploymentPaused",
        "Deployment is paused",
    )
    assert d.status.updated_replicas in (0, None)
    # Scaling still works while paused, on the replica set that exists.
    kubectl(lab, "primary", "-n", scratch, "scale", "deployment/held", "--replicas=3")
    wait_for(lambda: replica_sets() == {name: 3 for name in first}, 30, "the paused deployment scaled")

    kubectl(lab, "primary", "-n", scratch, "rollout", "resume", "deployment/held")
    status = kubectl(lab, "primary", "-n", scratch, "rollout", "status", "deployment/held", "--timeout=90s")
    assert 'deployment "held" successfully rolled out' in status.stdout
    now = replica_sets()
    assert len(now) == 2 and [n for n, r in now.items() if r == 3] != list(first)
    d = apps.read_namespaced_deployment("held", scratch)
    env = {e.name: e.value for e in d.spec.template.spec.containers[0].env}
    assert env["CHANGED"] == "1" and d.status.updated_replicas == 3
    progressing = next(x for x in d.status.conditions if x.type == "Progressing")
    assert (progressing.status, progressing.reason) == ("True", "NewReplicaSetAvailable")
    apps.delete_namespaced_deployment("held", scratch)


def _token_client(lab, token: str) -> client.ApiClient:
    cfg = client.Configuration(host=lab.cfg.url("kube-primary"), api_key={"authorization": f"Bearer {token}"})
    return client.ApiClient(cfg)


def test_auth_can_i_and_whoami_answer_from_the_same_tokens_and_policy(lab):
    assert kubectl(lab, "primary", "auth", "can-i", "delete", "pods").stdout.strip() == "yes"
    me = json.loads(kubectl(lab, "primary", "auth", "whoami", "-o", "json").stdout)
    assert me["kind"] == "SelfSubjectReview" and me["status"]["userInfo"]["username"] == "lab-admin"
    with viewer_token(lab) as token:
        # kubectl sends no token over plain http: it asks as the viewer through impersonation.
        viewer = ("--as", "incident-viewer", "--as-group", "viewers")
        assert kubectl(lab, "primary", "auth", "can-i", "list", "pods", "-n", NS, *viewer).stdout.strip() == "yes"
        no = kubectl(lab, "primary", "auth", "can-i", "delete", "pods", "-n", NS, *viewer, check=False)
        assert no.returncode == 1 and no.stdout.strip() == "no - No policy matched."
        no = kubectl(lab, "primary", "auth", "can-i", "get", "pods", "-n", "kube-system", *viewer, check=False)
        assert no.returncode == 1
        who = json.loads(kubectl(lab, "primary", "auth", "whoami", "-o", "json", *viewer).stdout)
        assert who["status"]["userInfo"] == {
            "username": "incident-viewer",
            "groups": ["viewers", "system:authenticated"],
        }

        # The official client with the viewer's token: the same answers, and the same as the requests themselves.
        tc = _token_client(lab, token)
        authz, authn = client.AuthorizationV1Api(tc), client.AuthenticationV1Api(tc)
        review = authz.create_self_subject_access_review(
            {"spec": {"resourceAttributes": {"namespace": NS, "verb": "delete", "resource": "pods"}}}
        )
        assert review.status.allowed is False and review.status.reason == "No policy matched."
        with pytest.raises(ApiException) as forbidden:
            client.CoreV1Api(tc).delete_namespaced_pod("anything", NS)
        assert forbidden.value.status == 403
        review = authz.create_self_subject_access_review(
            {"spec": {"resourceAttributes": {"namespace": NS, "verb": "list", "resource": "pods"}}}
        )
        assert review.status.allowed is True
        assert authn.create_self_subject_review({}).status.user_info.username == "incident-viewer"
        # The admin asks about someone else.
        sar = client.AuthorizationV1Api(api(lab, "primary")).create_subject_access_review(
            {
                "spec": {
                    "user": "incident-viewer",
                    "resourceAttributes": {"namespace": NS, "verb": "get", "resource": "pods"},
                }
            }
        )
        assert sar.status.allowed is True


def test_status_errors_carry_details_and_kubectl_debug_says_why(lab, scratch):
    code, body, _ = http(lab.cfg.url("kube-primary", "/api/v1/namespaces/default/pods/nope"))
    assert code == 404 and body["details"] == {"name": "nope", "kind": "pods"}
    code, body, _ = http(lab.cfg.url("kube-primary", "/apis/nothing.example.com/v1/things"))
    assert code == 404 and body["details"] == {}
    core = client.CoreV1Api(api(lab, "primary"))
    pod = demo_deployment("debugged", scratch)["spec"]["template"]["spec"]
    core.create_namespaced_pod(scratch, {"metadata": {"name": "debugged"}, "spec": pod})
    res = kubectl(lab, "primary", "-n", scratch, "debug", "debugged", "--image=incidentlab/task:1.0", check=False)
    # A 404 without details made kubectl 1.32 dereference a nil pointer; now it names the cause.
    assert res.returncode == 1 and "panic" not in res.stderr
    assert "ephemeral containers are disabled for this cluster" in res.stderr
    core.delete_namespaced_pod("debugged", scratch, grace_period_seconds=0)


def test_jobs_run_pods_to_completion_or_fail_after_the_backoff_limit(lab, scratch):
    batch = client.BatchV1Api(api(lab, "primary"))
    # kubectl create job sends protobuf; the task image exits 0.
    kubectl(lab, "primary", "-n", scratch, "create", "job", "once", "--image=incidentlab/task:1.0")
    kubectl(lab, "primary", "-n", scratch, "wait", "--for=condition=complete", "job/once", "--timeout=60s")
    row = kubectl(lab, "primary", "-n", scratch, "get", "job", "once", "--no-headers").stdout.split()
    assert row[:3] == ["once", "Complete", "1/1"]
    assert "task once-" in kubectl(lab, "primary", "-n", scratch, "logs", "job/once").stdout
    job = batch.read_namespaced_job("once", scratch)
    assert job.status.succeeded == 1 and job.status.completion_time and not job.status.active
    assert [c.type for c in job.status.conditions] == ["SuccessCriteriaMet", "Complete"]

    many = {
        "metadata": {"name": "many"},
        "spec": {
            "completions": 3,
            "parallelism": 2,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "t",
                            "image": "incidentlab/task:1.0",
                            "env": [{"name": "TASK_SECONDS", "value": "0.5"}],
                        }
                    ],
                }
            },
        },
    }
    batch.create_namespaced_job(scratch, many)
    failing = {
        "metadata": {"name": "failing"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "t",
                            "image": "incidentlab/task:1.0",
                            "env": [{"name": "TASK_EXIT_CODE", "value": "3"}],
                        }
                    ],
                }
            },
        },
    }
    batch.create_namespaced_job(scratch, failing)
    kubectl(lab, "primary", "-n", scratch, "wait", "--for=condition=complete", "job/many", "--timeout=60s")
    kubectl(lab, "primary", "-n", scratch, "wait", "--for=condition=failed", "job/failing", "--timeout=60s")
    assert batch.read_namespaced_job("many", scratch).status.succeeded == 3
    pods = client.CoreV1Api(api(lab, "primary")).list_namespaced_pod(scratch, label_selector="job-name=many").items
    assert len(pods) == 3 and {p.status.phase for p in pods} == {"Succeeded"}
    failed = batch.read_namespaced_job("failing", scratch).status
    assert failed.failed == 1 and [(c.type, c.reason) for c in failed.conditions] == [
        ("FailureTarget", "BackoffLimitExceeded"),
        ("Failed", "BackoffLimitExceeded"),
    ]
    for name in ("once", "many", "failing"):
        kubectl(lab, "primary", "-n", scratch, "delete", "job", name)


def test_kubectl_autoscale_makes_an_hpa_served_by_autoscaling_v1_and_v2(lab, scratch):
    c = api(lab, "primary")
    apps = client.AppsV1Api(c)
    apps.create_namespaced_deployment(scratch, demo_deployment("scaled", scratch, replicas=2))
    out = kubectl(
        lab,
        "primary",
        "-n",
        scratch,
        "autoscale",
        "deployment",
        "scaled",
        "--min",
        "2",
        "--max",
        "5",
        "--cpu-percent",
        "70",
    )
    assert "horizontalpodautoscaler.autoscaling/scaled autoscaled" in out.stdout
    v1, v2 = client.AutoscalingV1Api(c), client.AutoscalingV2Api(c)
    h1 = v1.read_namespaced_horizontal_pod_autoscaler("scaled", scratch)
    assert (h1.spec.min_replicas, h1.spec.max_replicas, h1.spec.target_cpu_utilization_percentage) == (2, 5, 70)
    h2 = v2.read_namespaced_horizontal_pod_autoscaler("scaled", scratch)
    assert h2.spec.metrics[0].resource.target.average_utilization == 70 and h2.spec.behavior is not None
    # A change through v1 is the same object in v2; v2's behavior is kept.
    v1.patch_namespaced_horizontal_pod_autoscaler("scaled", scratch, {"spec": {"targetCPUUtilizationPercentage": 50}})
    h2 = v2.read_namespaced_horizontal_pod_autoscaler("scaled", scratch)
    assert h2.spec.metrics[0].resource.target.average_utilization == 50 and h2.spec.behavior is not None
    wait_for(
        lambda: v1.read_namespaced_horizontal_pod_autoscaler("scaled", scratch).status.current_replicas == 2,
        30,
        "synced",
    )
    assert "cpu: " in kubectl(lab, "primary", "-n", scratch, "get", "hpa", "scaled").stdout
    v1.delete_namespaced_horizontal_pod_autoscaler("scaled", scratch)
    apps.delete_namespaced_deployment("scaled", scratch)


def test_discovery_and_openapi_name_the_new_groups(lab):
    c = api(lab, "primary")
    groups = {g.name: g for g in client.ApisApi(c).get_api_versions().groups}
    versions = {n: [v.version for v in g.versions] for n, g in groups.items()}
    assert versions["autoscaling"] == ["v2", "v1"] and groups["autoscaling"].preferred_version.version == "v2"
    for group in ("batch", "policy", "coordination.k8s.io", "authorization.k8s.io", "authentication.k8s.io"):
        assert versions[group] == ["v1"], group
    core = {r.name: r for r in client.CoreV1Api(c).get_api_resources().resources}
    assert (core["pods/eviction"].group, core["pods/eviction"].version, core["pods/eviction"].kind) == (
        "policy",
        "v1",
        "Eviction",
    )
    names = kubectl(lab, "primary", "api-resources", "-o", "name").stdout.split()
    for name in (
        "jobs.batch",
        "poddisruptionbudgets.policy",
        "leases.coordination.k8s.io",
        "selfsubjectaccessreviews.authorization.k8s.io",
        "subjectaccessreviews.authorization.k8s.io",
        "selfsubjectreviews.authentication.k8s.io",
    ):
        assert name in names, name
    code, root, _ = http(lab.cfg.url("kube-primary", "/openapi/v3"))
    assert code == 200 and {
        "apis/batch/v1",
        "apis/policy/v1",
        "apis/autoscaling/v1",
        "apis/coordination.k8s.io/v1",
    } <= set(root["paths"])


def test_kubectl_apply_validates_the_new_kinds_on_the_server(lab, scratch, tmp_path):
    manifest = tmp_path / "batch.yaml"
    manifest.write_text(
        f"""apiVersion: batch/v1
kind: Job
metadata: {{name: applied, namespace: {scratch}}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: t, image: incidentlab/task:1.0}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: applied, namespace: {scratch}}}
spec: {{minAvailable: 1, selector: {{matchLabels: {{app: applied}}}}}}
"""
    )
    out = kubectl(lab, "primary", "apply", "-f", str(manifest)).stdout
    assert "job.batch/applied created" in out and "poddisruptionbudget.policy/applied created" in out
    # kubectl leaves field validation to the server (OpenAPI v3 says it takes fieldValidation): Strict refuses.
    manifest.write_text(manifest.read_text().replace("spec: {minAvailable", "bogus: 1\nspec: {minAvailable"))
    res = kubectl(lab, "primary", "apply", "-f", str(manifest), check=False)
    assert res.returncode != 0 and 'strict decoding error: unknown field "bogus"' in res.stderr
    bad = {"metadata": {"name": "both"}, "spec": {"minAvailable": 1, "maxUnavailable": 1, "selector": {}}}
    with pytest.raises(ApiException) as invalid:
        client.PolicyV1Api(api(lab, "primary")).create_namespaced_pod_disruption_budget(scratch, bad)
    assert invalid.value.status == 422 and "minAvailable and maxUnavailable cannot be both set" in invalid.value.body
    kubectl(lab, "primary", "-n", scratch, "delete", "job,pdb", "applied")


def test_node_leases_are_renewed(lab):
    coord = client.CoordinationV1Api(api(lab, "primary"))
    leases = {lease.metadata.name: lease for lease in coord.list_namespaced_lease("kube-node-lease").items}
    assert set(leases) == set(NODES)
    assert all(lease.spec.holder_identity == name for name, lease in leases.items())
    row = kubectl(lab, "primary", "-n", "kube-node-lease", "get", "lease", NODES[0], "--no-headers").stdout.split()
    assert row[:2] == [NODES[0], NODES[0]]
    before = leases[NODES[0]].spec.renew_time
    wait_for(lambda: coord.read_namespaced_lease(NODES[0], "kube-node-lease").spec.renew_time > before, 40, "a renewal")


def test_imperative_kubectl_create_sends_protobuf_and_works(lab, scratch):
    kubectl(lab, "primary", "-n", scratch, "create", "configmap", "made", "--from-literal=a=b")
    kubectl(lab, "primary", "-n", scratch, "create", "secret", "generic", "kept", "--from-literal=password=s3cret")
    kubectl(
        lab,
        "primary",
        "-n",
        scratch,
        "create",
        "deployment",
        "imperative",
        "--image=incidentlab/demo-service:1.0",
        "--replicas=0",
    )
    core = client.CoreV1Api(api(lab, "primary"))
    assert core.read_namespaced_config_map("made", scratch).data == {"a": "b"}
    assert core.read_namespaced_secret("kept", scratch).data == {"password": "czNjcmV0"}
    d = client.AppsV1Api(api(lab, "primary")).read_namespaced_deployment("imperative", scratch)
    assert d.spec.replicas == 0 and d.spec.template.spec.containers[0].image == "incidentlab/demo-service:1.0"
    # A protobuf body with a field the lab does not read is refused, not half applied.
    res = kubectl(lab, "primary", "-n", scratch, "create", "service", "clusterip", "svc", "--tcp=80:8080", check=False)
    assert res.returncode != 0 and "the body of the request was in an unknown format" in res.stderr
    for kind, name in (("configmap", "made"), ("secret", "kept"), ("deployment", "imperative")):
        kubectl(lab, "primary", "-n", scratch, "delete", kind, name)
