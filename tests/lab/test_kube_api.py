"""The Kubernetes REST API as the official client uses it: discovery, CRUD with the real error
codes, the three patch types, selectors, watches, cascading deletes, subresources, metrics."""

from __future__ import annotations

import json
import threading
import urllib.request

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from kubeutil import NS, REGIONS, api, demo_deployment, wait_deployment_available
from support import wait_for

pytestmark = pytest.mark.lab


def _status(exc: ApiException) -> tuple[int, str]:
    return exc.status, json.loads(exc.body)["reason"]


@pytest.mark.parametrize("region", REGIONS)
def test_discovery_lists_every_resource_with_its_group_version(lab, region):
    c = api(lab, region)
    assert client.VersionApi(c).get_code().git_version.startswith("v1.32")
    core = {r.name for r in client.CoreV1Api(c).get_api_resources().resources}
    assert {
        "namespaces",
        "nodes",
        "pods",
        "pods/log",
        "services",
        "endpoints",
        "configmaps",
        "secrets",
        "events",
    } <= core
    groups = {g.name: g for g in client.ApisApi(c).get_api_versions().groups}
    assert groups["apps"].preferred_version.group_version == "apps/v1"
    assert groups["autoscaling"].preferred_version.group_version == "autoscaling/v2"
    assert groups["metrics.k8s.io"].preferred_version.group_version == "metrics.k8s.io/v1beta1"
    apps = client.AppsV1Api(c).get_api_resources()
    assert apps.group_version == "apps/v1"
    scale = next(r for r in apps.resources if r.name == "deployments/scale")
    assert (scale.group, scale.version, scale.kind) == ("autoscaling", "v1", "Scale")


def test_configmap_lifecycle_and_error_codes(lab, scratch):
    core = client.CoreV1Api(api(lab, "primary"))
    created = core.create_namespaced_config_map(scratch, {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    assert created.metadata.uid and created.metadata.creation_timestamp and created.metadata.namespace == scratch
    rv1 = int(created.metadata.resource_version)

    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(scratch, {"metadata": {"name": "cfg"}, "data": {}})
    assert _status(exc.value) == (409, "AlreadyExists")

    fresh = core.read_namespaced_config_map("cfg", scratch)
    fresh.data = {"a": "2"}
    replaced = core.replace_namespaced_config_map("cfg", scratch, fresh)
    assert int(replaced.metadata.resource_version) > rv1 and replaced.metadata.uid == created.metadata.uid

    fresh.data = {"a": "3"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("cfg", scratch, fresh)
    assert _status(exc.value) == (409, "Conflict")

    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(scratch, {"metadata": {"name": "Not_Valid"}, "data": {}})
    assert _status(exc.value) == (422, "Invalid")
    assert json.loads(exc.value.body)["details"]["causes"][0]["field"] == "metadata.name"

    base = lab.cfg.url("kube-primary", f"/api/v1/namespaces/{scratch}/configmaps")
    req = urllib.request.Request(base, data=b"{not json", method="POST", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(req, timeout=5)
    assert bad.value.code == 400 and json.loads(bad.value.read())["reason"] == "BadRequest"
    req = urllib.request.Request(f"{base}/cfg", data=b"{}", method="POST", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as not_allowed:
        urllib.request.urlopen(req, timeout=5)
    assert not_allowed.value.code == 405

    deleted = api(lab, "primary").sanitize_for_serialization(core.delete_namespaced_config_map("cfg", scratch))
    assert deleted["kind"] == "Status" and deleted["status"] == "Success"
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("cfg", scratch)
    assert _status(exc.value) == (404, "NotFound")


def test_three_patch_types_and_generation(lab, scratch):
    apps = client.AppsV1Api(api(lab, "primary"))
    dep = demo_deployment("patched", scratch, replicas=1, env={"A": "1", "B": "2"})
    apps.create_namespaced_deployment(scratch, dep)
    assert apps.read_namespaced_deployment("patched", scratch).metadata.generation == 1

    # Strategic merge: containers merge by name, env by name; $patch: delete removes one element.
    smp = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "env": [{"name": "C", "value": "3"}, {"name": "A", "$patch": "delete"}]}
                    ]
                }
            }
        }
    }
    d = apps.patch_namespaced_deployment("patched", scratch, smp)
    env = {e.name: e.value for e in d.spec.template.spec.containers[0].env}
    assert env == {"SERVICE_NAME": "user-service", "B": "2", "C": "3"}
    assert d.spec.template.spec.containers[0].image == "incidentlab/demo-service:1.0"
    assert d.metadata.generation == 2

    # JSON merge patch on metadata: no spec change, no new generation; null deletes a key.
    merged = apps.patch_namespaced_deployment(
        "patched",
        scratch,
        {"metadata": {"labels": {"team": "shop", "app": None}}},
        _content_type="application/merge-patch+json",
    )
    merged = api(lab, "primary").sanitize_for_serialization(merged)
    assert merged["metadata"]["labels"] == {"team": "shop"} and merged["metadata"]["generation"] == 2

    # JSON patch (RFC 6902), and a failing test operation is a 422.
    ops = [
        {"op": "replace", "path": "/spec/replicas", "value": 2},
        {"op": "add", "path": "/metadata/labels/tier", "value": "web"},
    ]
    d = apps.patch_namespaced_deployment("patched", scratch, ops)
    assert d.spec.replicas == 2 and d.metadata.labels["tier"] == "web" and d.metadata.generation == 3
    with pytest.raises(ApiException) as exc:
        apps.patch_namespaced_deployment("patched", scratch, [{"op": "test", "path": "/spec/replicas", "value": 9}])
    assert exc.value.status == 422

    # Invalid result: a selector that no longer matches the template.
    with pytest.raises(ApiException) as exc:
        apps.patch_namespaced_deployment(
            "patched", scratch, {"spec": {"template": {"metadata": {"labels": {"app": "other"}}}}}
        )
    assert _status(exc.value) == (422, "Invalid")
    apps.delete_namespaced_deployment("patched", scratch)


def test_label_and_field_selectors(lab):
    core = client.CoreV1Api(api(lab, "primary"))

    def names(**kw) -> set[str]:
        return {p.metadata.labels.get("app") for p in core.list_namespaced_pod(NS, **kw).items}

    assert names(label_selector="app in (user-service, order-service)") == {"user-service", "order-service"}
    assert "user-service" not in names(label_selector="app!=user-service")
    assert names(label_selector="app notin (user-service),app") == names() - {"user-service"}
    assert names(label_selector="!app") == set()
    assert names(label_selector="app==payment-service,!nonexistent") == {"payment-service"}
    running = core.list_pod_for_all_namespaces(field_selector="status.phase=Running").items
    on_node = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=primary-worker-1").items
    assert running and on_node and all(p.spec.node_name == "primary-worker-1" for p in on_node)
    one = running[0].metadata
    found = core.list_pod_for_all_namespaces(
        field_selector=f"metadata.name={one.name},metadata.namespace={one.namespace}"
    )
    assert [p.metadata.uid for p in found.items] == [one.uid]


def test_watch_streams_changes_and_resumes_from_a_resource_version(lab, scratch):
    core = client.CoreV1Api(api(lab, "primary"))
    start_rv = core.list_namespaced_config_map(scratch).metadata.resource_version
    seen: list[tuple[str, str, int]] = []
    added = threading.Event()

    def watch_live():
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_config_map, scratch, resource_version=start_rv, timeout_seconds=30):
            seen.append((ev["type"], ev["object"].metadata.name, int(ev["object"].metadata.resource_version)))
            added.set()
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=watch_live)
    t.start()
    core.create_namespaced_config_map(scratch, {"metadata": {"name": "watched"}, "data": {"v": "1"}})
    # Once the watch has delivered the creation it is streaming: the next changes reach it live.
    assert added.wait(20), "the watch delivered nothing"
    core.patch_namespaced_config_map("watched", scratch, {"data": {"v": "2"}})
    core.delete_namespaced_config_map("watched", scratch)
    t.join(20)
    assert not t.is_alive(), "the watch did not see the deletion"
    assert [(ty, n) for ty, n, _ in seen] == [("ADDED", "watched"), ("MODIFIED", "watched"), ("DELETED", "watched")]
    assert [rv for *_, rv in seen] == sorted({rv for *_, rv in seen})

    # The same history, replayed afterwards from the resourceVersion (watch=1 spelling, raw HTTP).
    url = lab.cfg.url(
        "kube-primary",
        f"/api/v1/namespaces/{scratch}/configmaps?watch=1&resourceVersion={start_rv}"
        "&timeoutSeconds=1&allowWatchBookmarks=true",
    )
    with urllib.request.urlopen(url, timeout=5) as r:
        events = [json.loads(line) for line in r.read().splitlines() if line.strip()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events if e["type"] != "BOOKMARK"] == [
        ("ADDED", "watched"),
        ("MODIFIED", "watched"),
        ("DELETED", "watched"),
    ]


@pytest.mark.parametrize(("policy", "rs_left"), [("Foreground", False), ("Background", False), ("Orphan", True)])
def test_delete_propagation(lab, scratch, policy, rs_left):
    c = api(lab, "primary")
    apps, core = client.AppsV1Api(c), client.CoreV1Api(c)
    name = f"cascade-{policy.lower()}"
    apps.create_namespaced_deployment(scratch, demo_deployment(name, scratch, replicas=1))
    wait_for(lambda: core.list_namespaced_pod(scratch, label_selector=f"app={name}").items, 30, "its pod")
    apps.delete_namespaced_deployment(name, scratch, propagation_policy=policy)
    wait_for(
        lambda: name not in {d.metadata.name for d in apps.list_namespaced_deployment(scratch).items},
        60,
        "the deployment to be gone",
    )
    rss = apps.list_namespaced_replica_set(scratch, label_selector=f"app={name}").items
    if rs_left:
        assert len(rss) == 1 and not rss[0].metadata.owner_references
        apps.delete_namespaced_replica_set(rss[0].metadata.name, scratch)
    else:
        wait_for(
            lambda: not apps.list_namespaced_replica_set(scratch, label_selector=f"app={name}").items,
            60,
            "the replica set to be deleted with its owner",
        )
    wait_for(
        lambda: not core.list_namespaced_pod(scratch, label_selector=f"app={name}").items,
        60,
        "the pods to be deleted with their owner",
    )


def test_scale_subresource(lab, scratch):
    apps = client.AppsV1Api(api(lab, "primary"))
    apps.create_namespaced_deployment(scratch, demo_deployment("scaled", scratch, replicas=1))
    scale = apps.read_namespaced_deployment_scale("scaled", scratch)
    assert (scale.kind, scale.api_version, scale.spec.replicas) == ("Scale", "autoscaling/v1", 1)
    assert scale.status.selector == "app=scaled"
    apps.patch_namespaced_deployment_scale("scaled", scratch, {"spec": {"replicas": 2}})
    d = apps.read_namespaced_deployment("scaled", scratch)
    assert d.spec.replicas == 2 and d.metadata.generation == 2
    wait_deployment_available(apps, "scaled", scratch, timeout=60)
    apps.delete_namespaced_deployment("scaled", scratch)


def test_pod_log_options(lab):
    core = client.CoreV1Api(api(lab, "primary"))
    pod = core.list_namespaced_pod(NS, label_selector="app=order-service").items[0].metadata.name
    wait_for(lambda: len(core.read_namespaced_pod_log(pod, NS).splitlines()) >= 3, 60, "a few log lines")
    two = core.read_namespaced_pod_log(pod, NS, tail_lines=2).splitlines()
    assert len(two) == 2 and all(json.loads(line)["pod"] == pod for line in two)
    stamped = core.read_namespaced_pod_log(pod, NS, tail_lines=1, timestamps=True)
    assert stamped.startswith("20") and "Z {" in stamped
    assert core.read_namespaced_pod_log(pod, NS, since_seconds=1, container="order-service") is not None
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod_log(pod, NS, previous=True)
    assert exc.value.status == 400 and "previous terminated container" in json.loads(exc.value.body)["message"]


def test_metrics_api_and_state_metrics(lab):
    custom = client.CustomObjectsApi(api(lab, "primary"))

    def pod_metrics():
        items = custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", NS, "pods")["items"]
        return items if len(items) >= 10 else None

    items = wait_for(pod_metrics, 30, "metrics of the services' pods", interval=1)
    usage = items[0]["containers"][0]["usage"]
    assert usage["cpu"].endswith("n") and usage["memory"].endswith("Ki") and int(usage["memory"][:-2]) > 5000
    nodes = custom.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")["items"]
    assert len(nodes) == 3
    with urllib.request.urlopen(lab.cfg.url("kube-primary", "/metrics"), timeout=5) as r:
        text = r.read().decode()
    assert 'kube_deployment_spec_replicas{namespace="microservices",deployment="user-service"} 2' in text
    assert 'kube_deployment_status_replicas_available{namespace="microservices",deployment="user-service"} 2' in text
    assert "kube_pod_container_status_restarts_total{" in text and "kube_pod_status_ready{" in text


def test_prometheus_targets_follow_the_pods(lab):
    for region in REGIONS:
        groups = json.loads(lab.cfg.path("prometheus", "targets", f"pods-{region}.json").read_text())
        assert len(groups) == 10
        for g in groups:
            assert g["labels"]["region"] == region and g["labels"]["namespace"] == NS
            with urllib.request.urlopen(f"http://{g['targets'][0]}/actuator/prometheus", timeout=5) as r:
                assert r.status == 200 and b"process_start_time_seconds" in r.read()
        kube = json.loads(lab.cfg.path("prometheus", "targets", f"kube-{region}.json").read_text())
        assert kube[0]["targets"] == [f"127.0.0.1:{lab.cfg.ports[f'kube-{region}']}"]


def test_a_write_refused_before_its_body_is_read_leaves_the_connection_usable(lab):
    """A 403 answers a PATCH before its body is read; the next request on the same keep-alive
    connection must not be parsed from that body (it was: 400 'Bad request syntax')."""
    import http.client
    from urllib.parse import urlsplit

    from kubeutil import viewer_token

    url = urlsplit(lab.cfg.url("kube-primary"))
    with viewer_token(lab) as token:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        auth = {"Authorization": f"Bearer {token}"}
        path = f"/apis/apps/v1/namespaces/{NS}/deployments/user-service"
        body = json.dumps({"spec": {"replicas": 3}})
        conn.request("PATCH", path + "/scale", body, {**auth, "Content-Type": "application/merge-patch+json"})
        first = conn.getresponse()
        assert first.status == 403 and json.loads(first.read())["reason"] == "Forbidden"
        conn.request("GET", path, headers=auth)
        second = conn.getresponse()
        assert second.status == 200 and json.loads(second.read())["spec"]["replicas"] == 2
        conn.close()
