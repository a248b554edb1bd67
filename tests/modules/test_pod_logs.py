"""pod_logs against the lab's two regions, cross-checked with the unmodified kubectl logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.incident.response.plugins.module_utils import k8s, k8s_logs
from incidentlab.kube.cluster import region_ready
from kubeutil import NS, REGIONS, SERVICES, blackhole, kubeconfig, kubectl, viewer_token
from support import run_module, wait_for

pytestmark = pytest.mark.lab


def both_regions(lab, **extra):
    return {"kubeconfig": kubeconfig(lab), "clusters": [{"name": r, "context": r} for r in REGIONS], **extra}


def kget(lab, region, *what):
    return json.loads(kubectl(lab, region, "get", *what, "-o", "json").stdout)["items"]


@pytest.fixture(scope="module")
def settled(lab):
    for region in REGIONS:
        wait_for(lambda r=region: region_ready(lab.cfg, r)[0], 90, f"the {region} region to be ready")
    return lab


def test_every_pod_of_both_regions_is_collected_as_kubectl_logs_shows_it(settled, tmp_path):
    lab = settled
    res = run_module(
        "pod_logs",
        both_regions(lab, selectors=[{"namespace": NS}, {"namespace": "kube-system"}], dest=str(tmp_path)),
    )
    assert not res["failed"], res["msg"]
    entries = {(e["cluster"], e["namespace"], e["pod"]): e for e in res["logs"]}
    for region in REGIONS:
        pods = [p for ns in (NS, "kube-system") for p in kget(lab, region, "pods", "-n", ns)]
        assert {(region, p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods} == {
            k for k in entries if k[0] == region
        }
        for p in pods:
            ns, name = p["metadata"]["namespace"], p["metadata"]["name"]
            e = entries[(region, ns, name)]
            path = Path(e["file"])
            assert path == tmp_path / region / ns / f"{name}.log"
            mine = path.read_text()
            # Logs only grow: what kubectl shows a moment later starts with what the module wrote.
            theirs = kubectl(lab, region, "logs", "-n", ns, name).stdout
            assert mine and theirs.startswith(mine), f"{region} {ns}/{name}"
            assert e["lines"] == len(mine.splitlines()) and e["bytes"] == len(mine.encode())
            assert e["error"] is None and e["note"] is None
    summary = res["summary"]
    previous = [e for e in res["logs"] if e["previous"]]  # pods that restarted in earlier tests' faults
    assert summary["previous_logs"] == len(previous) and all(e["restarts"] for e in previous)
    assert (
        summary["files"] == len(res["files"]) == len(entries) + len(previous) == summary["containers"] + len(previous)
    )
    assert summary["lines"] == sum(e["lines"] + (e["previous"] or {}).get("lines", 0) for e in res["logs"])
    assert summary["failed"] == 0
    for region in REGIONS:
        for service in SERVICES:
            assert summary["by_service"][f"{region}/{NS}/{service}"]["pods"] == 2
    assert f"from 2 cluster(s): {summary['lines']} lines" in res["msg"] and str(tmp_path) in res["msg"]


def test_previous_logs_of_a_crashed_pod_are_collected(healed, tmp_path):
    lab = healed

    def restarts():
        pods = kget(lab, "primary", "pods", "-l", "app=payment-service")
        return {p["metadata"]["name"]: p["status"]["containerStatuses"][0]["restartCount"] for p in pods}

    before = restarts()  # earlier tests' faults may have restarted these pods already
    lab.break_fault("service-down", "payment-service")

    def restarted():
        # The fault kills the healthy instance (restart 1), whose successor crashes at start (restart 2).
        now = restarts()
        if now.keys() != before.keys() or not all(now[n] >= before[n] + 2 for n in now):
            return None
        # A crashed instance's last lines reach its log a moment after it exits: wait for them too.
        previous = [kubectl(lab, "primary", "logs", "-n", NS, n, "--previous", check=False).stdout for n in now]
        return now if all("LAB_FAIL_ON_START" in text for text in previous) else None

    wait_for(restarted, 60, "payment-service's pods to have crashed after the fault, with their crash logged")
    res = run_module(
        "pod_logs",
        {
            "kubeconfig": kubeconfig(lab),
            "context": "primary",
            "selectors": [{"namespace": NS, "label_selector": "app=payment-service"}],
            "dest": str(tmp_path),
            "inline_lines": 5,
        },
    )
    assert not res["failed"], res["msg"]
    assert len(res["logs"]) == 2 and res["summary"]["previous_logs"] == 2
    for e in res["logs"]:
        prev = e["previous"]
        assert e["restarts"] >= 2 and prev["file"] == str(tmp_path / "primary" / NS / f"{e['pod']}.previous.log")
        text = Path(prev["file"]).read_text()
        assert "LAB_FAIL_ON_START" in text and prev["error_lines"] >= 1
        assert any("fatal" in line for line in prev["error_samples"])
        assert prev["last_lines"] == text.splitlines()[-5:]
        theirs = kubectl(lab, "primary", "logs", "-n", NS, e["pod"], "--previous", check=False)
        if theirs.returncode == 0 and "LAB_FAIL_ON_START" in theirs.stdout:
            # Each crashed instance writes the same kind of lines; the newest previous one is what kubectl shows.
            assert {json.loads(line)["msg"] for line in theirs.stdout.splitlines()} == {
                json.loads(line)["msg"] for line in text.splitlines()
            }


def test_one_file_per_service_in_check_mode_writes_nothing(settled, tmp_path):
    lab = settled
    args = {
        "kubeconfig": kubeconfig(lab),
        "context": "secondary",
        "selectors": [{"namespace": NS, "label_selector": "app in (user-service, order-service)"}],
        "group_by": "service",
        "tail_lines": 3,
        "dest": str(tmp_path / "logs"),
    }
    res = run_module("pod_logs", args, check=True)
    assert not res["failed"], res["msg"]
    assert res["files"] == [
        str(tmp_path / "logs" / "secondary" / NS / f"{s}.log") for s in ("order-service", "user-service")
    ]
    assert not (tmp_path / "logs").exists() and "would write 2 files" in res["msg"]

    res = run_module("pod_logs", args)
    assert not res["failed"], res["msg"] and res["changed"]
    text = (tmp_path / "logs" / "secondary" / NS / "user-service.log").read_text().splitlines()
    pods = sorted(p["metadata"]["name"] for p in kget(lab, "secondary", "pods", "-n", NS, "-l", "app=user-service"))
    assert len(text) == 6 and {line.split("] ", 1)[0] for line in text} == {f"[pod/{p}/user-service" for p in pods}
    assert all(e["lines"] == 3 for e in res["logs"])


def test_tail_pods_gives_a_failure_report_its_last_lines(settled):
    lab = settled
    clients = k8s.get_clients({"kubeconfig": kubeconfig(lab), "context": "primary", "name": "primary"})
    pod = kget(lab, "primary", "pods", "-n", NS, "-l", "app=order-service")[0]["metadata"]["name"]
    out = k8s_logs.tail_pods(clients, [(NS, pod), (NS, "no-such-pod")], lines=4, previous=True)
    assert len(out[f"{NS}/{pod}"]["lines"]) == 4 and out[f"{NS}/{pod}"]["error"] is None
    assert out[f"{NS}/{pod}"]["previous_lines"] is None  # it never restarted
    assert out[f"{NS}/no-such-pod"]["lines"] == [] and "not found" in out[f"{NS}/no-such-pod"]["error"]


def test_failures_are_clear(settled, tmp_path):
    lab = settled
    res = run_module("pod_logs", {"kubeconfig": kubeconfig(lab), "context": "nope", "selectors": [{"namespace": NS}]})
    assert res["failed"] and "has no context 'nope'" in res["msg"]

    res = run_module("pod_logs", both_regions(lab, selectors=[{"namespace": "no-such-namespace"}]))
    assert res["failed"]
    assert "namespace(s) not found (primary: no-such-namespace; secondary: no-such-namespace)" in res["msg"]

    with viewer_token(lab) as token:
        res = run_module(
            "pod_logs",
            {"host": lab.cfg.url("kube-primary"), "api_key": token, "selectors": [{"namespace": "kube-system"}]},
        )
        assert res["failed"] and "default: forbidden to list pods in namespace kube-system" in res["msg"]
        assert token not in json.dumps(res)

    with blackhole() as frozen:
        res = run_module(
            "pod_logs",
            {
                "kubeconfig": kubeconfig(lab),
                "clusters": [{"name": "primary", "context": "primary"}, {"name": "frozen", "host": frozen}],
                "selectors": [{"namespace": NS, "label_selector": "app=user-service"}],
                "request_timeout": 1,
                "dest": str(tmp_path),
            },
        )
    assert res["failed"]
    assert f"frozen: the API server {frozen} did not answer within the request timeout" in res["msg"]
    assert "The logs that could be read are in the result and written" in res["msg"]
    assert len(res["logs"]) == 2 and all(Path(e["file"]).read_text() for e in res["logs"])
    assert res["selectors"][0]["matched"] == {"primary": 2, "frozen": 0}
