"""cluster_snapshot against the lab's two regions, cross-checked with the unmodified kubectl."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from ansible_collections.incident.response.plugins.filter.classify_severity import classify_severity
from incidentlab.kube.cluster import region_ready
from kubeutil import NS, REGIONS, blackhole, closed_port, kubeconfig, kubectl, viewer_token
from support import PROJECT_ROOT, run_module, wait_for

pytestmark = pytest.mark.lab


def both_regions(lab, **extra):
    return {"kubeconfig": kubeconfig(lab), "clusters": [{"name": r, "context": r} for r in REGIONS], **extra}


def kget(lab, region, *what):
    return json.loads(kubectl(lab, region, "get", *what, "-o", "json").stdout)["items"]


def ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def cells(line):
    return re.split(r"\s{2,}", line.strip())


def section(text, cluster, title):
    """The lines of one table of one cluster in the text snapshot."""
    block = text.split(f"## Cluster {cluster} ", 1)[1].split("\n## Cluster ", 1)[0]
    body = block.split(f"### {title}\n", 1)[1]
    return body.split("\n\n", 1)[0].splitlines()


@pytest.fixture(scope="module")
def settled(lab):
    for region in REGIONS:
        wait_for(lambda r=region: region_ready(lab.cfg, r)[0], 90, f"the {region} region to be ready")
    return lab


def test_snapshot_of_both_regions_matches_kubectl(settled, tmp_path):
    lab = settled
    dest, text_dest = tmp_path / "state.json", tmp_path / "incident-state.txt"
    res = run_module("cluster_snapshot", both_regions(lab, dest=str(dest), text_dest=str(text_dest)))
    assert not res["failed"], res["msg"]
    assert res["changed"] and res["healthy"] and res["crashlooping_pods"] == []

    for region in REGIONS:
        snap = res["clusters"][region]
        assert snap["reachable"] and snap["error"] is None

        pods = kget(lab, region, "pods", "--all-namespaces")
        assert {(p["metadata"]["namespace"], p["metadata"]["name"]): ready(p) for p in pods} == {
            (p["namespace"], p["name"]): p["ready"] for p in snap["pods"]
        }
        by_name = {p["metadata"]["name"]: p for p in pods}
        for view in snap["pods"]:
            pod = by_name[view["name"]]
            assert (view["node"], view["ip"], view["phase"]) == (
                pod["spec"]["nodeName"],
                pod["status"]["podIP"],
                pod["status"]["phase"],
            )
            assert view["restarts"] == sum(c["restartCount"] for c in pod["status"]["containerStatuses"])

        deps = kget(lab, region, "deployments", "--all-namespaces")
        assert {
            d["metadata"]["name"]: (
                d["spec"]["replicas"],
                d["status"].get("updatedReplicas"),
                d["status"].get("availableReplicas"),
            )
            for d in deps
        } == {d["name"]: (d["desired"], d["updated"], d["available"]) for d in snap["deployments"]}

        hpas = kget(lab, region, "hpa", "--all-namespaces")
        assert {
            h["metadata"]["name"]: (h["spec"]["minReplicas"], h["spec"]["maxReplicas"], h["status"]["currentReplicas"])
            for h in hpas
        } == {h["name"]: (h["min_replicas"], h["max_replicas"], h["current_replicas"]) for h in snap["hpas"]}

        nodes = kget(lab, region, "nodes")
        assert {n["metadata"]["name"]: n["status"]["capacity"]["cpu"] for n in nodes} == {
            n["name"]: n["capacity"]["cpu"] for n in snap["nodes"]
        }
        assert all(n["ready"] for n in snap["nodes"])

        eps = kget(lab, region, "endpoints", "--all-namespaces")
        assert {
            e["metadata"]["name"]: sum(
                len(s.get("addresses") or []) * len(s.get("ports") or [1]) for s in e.get("subsets") or []
            )
            for e in eps
        } == {e["name"]: e["ready"] for e in snap["endpoints"]}

        health = res["health"][region]
        assert (health["pods"], health["deployments"], health["hpas"], health["nodes"]) == (
            len(pods),
            len(deps),
            len(hpas),
            len(nodes),
        )
        assert health["healthy"] and health["metrics_available"] and snap["metrics"]["nodes"]
        assert health["line"] in res["msg"]

    # The record: the same data as JSON, and the text tables line up like kubectl's.
    assert json.loads(dest.read_text())["clusters"] == json.loads(json.dumps(res["clusters"]))
    text = text_dest.read_text()
    mine = section(text, "primary", "kubectl get pods --all-namespaces -o wide")
    theirs = kubectl(lab, "primary", "get", "pods", "--all-namespaces", "-o", "wide").stdout.splitlines()
    assert cells(mine[0]) == cells(theirs[0])
    for column in ("NAME", "READY", "STATUS", "RESTARTS", "AGE"):
        assert mine[0].index(column) == theirs[0].index(column), column

    def comparable(row):  # AGE, and the "(5s ago)" of RESTARTS, move on between the two reads
        c = cells(row)
        return [*c[:4], c[4].split()[0], *c[6:]]

    assert sorted(comparable(r) for r in mine[1:]) == sorted(comparable(r) for r in theirs[1:])
    nodes_mine = section(text, "secondary", "kubectl get nodes -o wide")
    nodes_theirs = kubectl(lab, "secondary", "get", "nodes", "-o", "wide").stdout.splitlines()
    assert [cells(r)[:3] + cells(r)[4:] for r in nodes_mine] == [cells(r)[:3] + cells(r)[4:] for r in nodes_theirs]


def test_check_mode_reads_but_writes_nothing(settled, tmp_path):
    dest = tmp_path / "state.json"
    res = run_module(
        "cluster_snapshot",
        {"kubeconfig": kubeconfig(settled), "context": "secondary", "dest": str(dest), "include": ["pods"]},
        check=True,
    )
    assert not res["failed"], res["msg"]
    assert res["file"]["path"] == str(dest) and res["file"]["written"] is False and res["file"]["bytes"] > 0
    assert not dest.exists()
    assert res["clusters"]["secondary"]["nodes"] is None and res["clusters"]["secondary"]["pods"]
    assert res["msg"] == res["health"]["secondary"]["line"] and "nodes" not in res["msg"]


def test_crash_looping_pods_feed_the_severity_policy(healed, tmp_path):
    lab = healed
    lab.break_fault("service-down", "payment-service")

    def crash_looping():
        pods = kget(lab, "primary", "pods", "-l", "app=payment-service")
        waiting = {
            p["metadata"]["name"]
            for p in pods
            if any(
                (c["state"].get("waiting") or {}).get("reason") == "CrashLoopBackOff"
                for c in p["status"]["containerStatuses"]
            )
        }
        return waiting if len(waiting) == len(pods) == 2 else None

    names = wait_for(crash_looping, 60, "payment-service's pods to crash-loop")
    res = run_module(
        "cluster_snapshot",
        {"kubeconfig": kubeconfig(lab), "context": "primary", "namespaces": [NS], "text_dest": str(tmp_path / "s.txt")},
    )
    assert not res["failed"], res["msg"]
    assert set(res["crashlooping_pods"]) == {f"primary/{NS}/{n}" for n in names}
    health = res["health"]["primary"]
    assert f"{NS}/payment-service" in health["deployments_not_available"]
    assert f"{NS}/payment-service" in health["endpoints_without_ready"]
    assert not res["healthy"] and not health["healthy"]
    assert any(p.startswith(f"pod {NS}/payment-service-") and "CrashLoopBackOff" in p for p in health["problems"])
    assert "2 crash-looping" in res["msg"]
    assert "CrashLoopBackOff" in (tmp_path / "s.txt").read_text()

    policy = yaml.safe_load((PROJECT_ROOT / "inventories/lab/group_vars/all/runbook.yml").read_text())[
        "severity_policy"
    ]
    verdict = classify_severity({"crashlooping_pods": res["crashlooping_pods"]}, policy)
    assert verdict["severity"] == "P2"
    assert any("2 pod(s) crash-looping" in r for r in verdict["reasons"])


def test_a_cluster_without_metrics_api_gets_a_note(settled, tmp_path):
    lab = settled

    def top_fails():
        res = kubectl(lab, "secondary", "top", "nodes", check=False)
        return res.returncode != 0 and "ServiceUnavailable" in res.stderr

    kubectl(lab, "secondary", "-n", "kube-system", "scale", "deployment", "metrics-server", "--replicas=0")
    try:
        wait_for(top_fails, 30, "kubectl top to fail without metrics-server")
        res = run_module(
            "cluster_snapshot",
            {"kubeconfig": kubeconfig(lab), "context": "secondary", "text_dest": str(tmp_path / "s.txt")},
        )
        assert not res["failed"], res["msg"]
        metrics = res["clusters"]["secondary"]["metrics"]
        assert metrics["available"] is False and metrics["nodes"] == []
        assert "metrics API (metrics.k8s.io) is registered but not available: HTTP 503" in metrics["note"]
        assert res["health"]["secondary"]["metrics_available"] is False and "no metrics API" in res["msg"]
        assert f"NOTE: {metrics['note']}" in (tmp_path / "s.txt").read_text()
    finally:
        kubectl(lab, "secondary", "-n", "kube-system", "scale", "deployment", "metrics-server", "--replicas=1")
        wait_for(lambda: kubectl(lab, "secondary", "top", "nodes", check=False).returncode == 0, 60, "metrics back")


def test_unknown_context_fails_before_any_request(lab):
    res = run_module("cluster_snapshot", {"kubeconfig": kubeconfig(lab), "context": "tertiary"})
    assert res["failed"]
    assert "has no context 'tertiary'; it has: primary, secondary" in res["msg"]


def test_unreachable_api_server_is_said_so(lab):
    url = f"http://127.0.0.1:{closed_port()}"
    res = run_module("cluster_snapshot", {"host": url, "include": ["nodes", "pods"]})
    assert res["failed"]
    assert f"cannot reach the API server {url} to list nodes" in res["msg"]
    assert res["clusters"]["default"]["reachable"] is False
    assert res["clusters"]["default"]["timed_out"] is False and res["timed_out_clusters"] == []  # refused


def test_a_frozen_region_times_out_with_the_other_regions_data(settled, tmp_path):
    lab = settled
    with blackhole() as frozen:
        args = {
            "kubeconfig": kubeconfig(lab),
            "clusters": [{"name": "primary", "context": "primary"}, {"name": "frozen", "host": frozen}],
            "request_timeout": 1,
            "dest": str(tmp_path / "state.json"),
        }
        res = run_module("cluster_snapshot", args)
        assert res["failed"]
        assert f"frozen: the API server {frozen} did not answer within the request timeout" in res["msg"]
        assert "fail_on_error=false" in res["msg"]
        assert res["clusters"]["primary"]["pods"] and res["health"]["primary"]["healthy"]
        assert res["clusters"]["frozen"]["reachable"] is False and res["clusters"]["frozen"]["pods"] is None
        assert res["clusters"]["frozen"]["timed_out"] is True and res["clusters"]["primary"]["timed_out"] is False
        assert res["timed_out_clusters"] == ["frozen"]
        written = json.loads(Path(res["file"]["path"]).read_text())  # the partial record is kept too
        assert written["clusters"]["primary"]["pods"] and written["clusters"]["frozen"]["error"]

        res = run_module("cluster_snapshot", dict(args, fail_on_error=False))
        assert not res["failed"] and res["degraded"] and not res["healthy"]
        assert any("fail_on_error=false" in w for w in res.get("warnings", []))
        assert "frozen: NOT READ" in res["msg"]


def test_the_deadline_ends_every_request_of_a_frozen_cluster(settled):
    """Each of the frozen cluster's reads would wait 30 s (its request timeout); the task's deadline
    ends them all, the cluster says it timed out, and the healthy cluster is read in full."""
    lab = settled
    with blackhole() as frozen:
        res = run_module(
            "cluster_snapshot",
            {
                "kubeconfig": kubeconfig(lab),
                "clusters": [{"name": "primary", "context": "primary"}, {"name": "frozen", "host": frozen}],
                "request_timeout": 30,
                "deadline": 3,
                "fail_on_error": False,
            },
        )
    assert not res["failed"] and res["degraded"]
    assert res["timed_out_clusters"] == ["frozen"]
    assert res["clusters"]["frozen"]["timed_out"] and res["clusters"]["frozen"]["timed_out_after"] > 0
    assert res["clusters"]["primary"]["error"] is None and res["health"]["primary"]["healthy"]
    assert res["clusters"]["primary"]["timed_out_after"] is None


def test_missing_namespace_fails(settled):
    res = run_module("cluster_snapshot", both_regions(settled, namespaces=[NS, "no-such-namespace"], include=["pods"]))
    assert res["failed"]
    assert "namespace(s) not found (primary: no-such-namespace; secondary: no-such-namespace)" in res["msg"]


def test_forbidden_is_a_clear_failure_and_a_namespace_viewer_can_snapshot_its_namespace(settled):
    lab = settled
    url = lab.cfg.url("kube-primary")
    with viewer_token(lab) as token:
        # What the server says to this token (kubectl does not send tokens to a plain-http server).
        req = urllib.request.Request(url + "/api/v1/nodes", headers={"Authorization": f"Bearer {token}"})
        with pytest.raises(urllib.error.HTTPError) as raw:
            urllib.request.urlopen(req, timeout=5)
        assert raw.value.code == 403

        res = run_module("cluster_snapshot", {"host": url, "api_key": token, "namespaces": [NS]})
        assert res["failed"]
        assert "default: forbidden to list nodes: the credentials lack RBAC permission" in res["msg"]
        assert 'User "incident-viewer" cannot list resource "nodes"' in res["msg"]
        assert token not in json.dumps(res)
        snap = res["clusters"]["default"]
        assert snap["pods"] and {p["namespace"] for p in snap["pods"]} == {NS}
        assert snap["metrics"]["available"] is False and "forbidden" in snap["metrics"]["note"]

        res = run_module(
            "cluster_snapshot",
            {
                "host": url,
                "api_key": token,
                "namespaces": [NS],
                "include": ["pods", "deployments", "hpas", "endpoints"],
            },
        )
        assert not res["failed"], res["msg"]
        assert res["health"]["default"]["deployments"] == 5

        res = run_module("cluster_snapshot", {"host": url, "api_key": "not-a-token", "include": ["pods"]})
        assert res["failed"] and "unauthorized to list pods: the credentials were rejected" in res["msg"]
