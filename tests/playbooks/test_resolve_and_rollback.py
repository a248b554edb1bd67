"""resolve_config.yml changes the configuration and restarts its consumers, keeping the values it
replaced; rollback.yml puts back what an incident's procedures recorded (configuration values,
replica counts and HPA bounds, the traffic switch), and leaves the database keys of a database
failover to a human."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from kubernetes import client

from incidentctl.record import Incident
from kubeutil import NS, REGIONS, SERVICES, api, http
from support import PROJECT_ROOT, incidentctl, run_module, run_playbook

pytestmark = pytest.mark.lab

CONFIGMAP = "microservice-config"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def _config(lab, region: str) -> dict:
    return client.CoreV1Api(api(lab, region)).read_namespaced_config_map(CONFIGMAP, NS).data


def _restarted_at(lab, region: str) -> dict[str, str | None]:
    apps = client.AppsV1Api(api(lab, region))
    out = {}
    for name in SERVICES:
        ann = apps.read_namespaced_deployment(name, NS).spec.template.metadata.annotations or {}
        out[name] = ann.get(RESTARTED_AT)
    return out


def _ctl(lab, incidents: Path, *args: str):
    env = {**os.environ, "INCIDENTLAB_DIR": str(lab.cfg.lab_dir), "INCIDENTCTL_PROJECT_DIR": str(PROJECT_ROOT)}
    return incidentctl(*args, "--incidents-dir", str(incidents), "--json", env=env, timeout=600)


def test_config_update_restarts_its_consumers_and_rollback_puts_the_values_back(lab, restored, tmp_path):
    incidents = tmp_path / "incidents"
    inc = Incident.create(incidents, inventory="inventories/lab")
    before = {r: _config(lab, r) for r in REGIONS}
    restarts0 = {r: _restarted_at(lab, r) for r in REGIONS}
    # db.host is read by every service (an env configMapKeyRef); "localhost" reaches the same database
    patch = {"db.host": "localhost", "updated.config": "new-value"}

    res = _ctl(
        lab,
        incidents,
        "run",
        "resolve_config",
        "--incident",
        inc.id,
        "--yes",
        "-e",
        f"config_patch={json.dumps(patch)}",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    for region in REGIONS:
        assert _config(lab, region) == {**before[region], **patch}
        restarted = _restarted_at(lab, region)
        assert all(restarted[s] and restarted[s] != restarts0[region][s] for s in SERVICES), restarted
    (outcome_file,) = (inc.path / "outcomes").glob("*resolve_config.json")
    outcome = json.loads(outcome_file.read_text())
    assert outcome["verified"] is True, outcome
    assert "previous" not in outcome  # what changed has one place: changes/
    (changes_file,) = (inc.path / "changes").glob("*-resolve_config.json")
    recorded = {e["cluster"]: e["data"] for e in json.loads(changes_file.read_text())["configmap"]}
    assert recorded == {r: {"db.host": before[r]["db.host"], "updated.config": None} for r in REGIONS}
    assert json.loads((inc.path / "configmap.previous.json").read_text())

    restarts1 = {r: _restarted_at(lab, r) for r in REGIONS}
    res = _ctl(lab, incidents, "run", "rollback", "--incident", inc.id, "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    for region in REGIONS:
        assert _config(lab, region) == before[region], "values back, the added key removed"
        restarted = _restarted_at(lab, region)
        assert all(restarted[s] != restarts1[region][s] for s in SERVICES), "consumers restarted on the old values"
    (rollback_file,) = (inc.path / "outcomes").glob("*rollback.json")
    rolled = json.loads(rollback_file.read_text())
    assert rolled["verified"] is True and len(rolled["actions"]) == 1, rolled

    again = _ctl(lab, incidents, "run", "rollback", "--incident", inc.id, "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    latest = sorted((inc.path / "outcomes").glob("*rollback.json"))[-1]
    assert json.loads(latest.read_text())["actions"] == [], "a second rollback changes nothing"


def test_rollback_restores_replicas_and_hpa_bounds_and_switches_traffic_back(lab, restored, tmp_path):
    clusters = [{"name": r, "kubeconfig": str(lab.cfg.path("kubeconfig")), "context": r} for r in REGIONS]
    scaled = run_module(
        "workload_scale", {"clusters": clusters, "namespace": NS, "name": ["user-service"], "replicas": 3}
    )
    assert not scaled["failed"], scaled.get("msg")
    glob = lab.cfg.path("nginx", "global")
    regions = {
        r: {
            "servers": [f"127.0.0.1:{lab.cfg.ports['lb-' + r]}"],
            "health_url": lab.cfg.url("lb-" + r, "/actuator/health"),
        }
        for r in REGIONS
    }
    moved = run_module(
        "traffic_failover",
        {
            "provider": "nginx",
            "to_region": "secondary",
            "regions": regions,
            "upstream_file": str(glob / "upstream.conf"),
            "upstream_name": "active_region",
            "nginx_config": str(glob / "nginx.conf"),
            "nginx_prefix": str(glob),
            "pid_file": str(glob / "nginx.pid"),
            "backup_file": str(tmp_path / "global-upstream.previous"),
            "confirm": True,
        },
    )
    try:
        assert not moved["failed"], moved.get("msg")
        # what P1 and P0 would have recorded
        (tmp_path / "changes").mkdir()
        record = {"procedure": "p1_high", "recorded_at": 1.0, "scale": scaled["previous"], "traffic": "primary"}
        record |= {"configmap": None, "database": None}
        (tmp_path / "changes" / "19700101T000001-p1_high.json").write_text(json.dumps(record))

        run = run_playbook("rollback", lab, {"incident_dir": str(tmp_path), "confirm_destructive": True})
        assert run.ok, run.stdout[-3000:]
        assert run.outcome["verified"] is True, run.outcome
        for region in REGIONS:
            apps = client.AppsV1Api(api(lab, region))
            hpa = client.AutoscalingV2Api(api(lab, region)).read_namespaced_horizontal_pod_autoscaler(
                "user-service", NS
            )
            assert apps.read_namespaced_deployment("user-service", NS).spec.replicas == 2
            assert hpa.spec.min_replicas == 2
        status, _, headers = http(lab.cfg.url("lb-global", "/user-service/actuator/health"))
        assert status == 200 and headers.get("X-Lab-Region") == "primary"
    finally:
        if http(lab.cfg.url("lb-global", "/actuator/health"))[2].get("X-Lab-Region") != "primary":
            run_module(
                "traffic_failover", {**moved.get("invocation", {}).get("module_args", {}), "to_region": "primary"}
            )


def test_rollback_leaves_the_database_keys_of_a_database_failover_to_a_human(lab, tmp_path):
    (tmp_path / "changes").mkdir()
    record = {
        "procedure": "p0_critical",
        "recorded_at": 2.0,
        "traffic": None,
        "scale": None,
        "configmap": [
            {"cluster": r, "namespace": NS, "name": CONFIGMAP, "data": {"db.host": "10.9.9.9", "log.level": "DEBUG"}}
            for r in REGIONS
        ],
        "database": {"promoted": "db-replica", "old_primary": "db-primary"},
    }
    (tmp_path / "changes" / "19700101T000002-p0_critical.json").write_text(json.dumps(record))

    run = run_playbook("rollback", lab, {"incident_dir": str(tmp_path), "confirm_destructive": True}, check=True)
    assert run.ok, run.stdout[-3000:]
    planned = run.outcome["rolled_back"]["configmap"]
    assert [e["data"] for e in planned] == [{"log.level": "DEBUG"}] * 2, "only the non-database key"
    assert any("db.host" in n and "db-primary" in n for n in run.outcome["needs_human"]), run.outcome["needs_human"]
    assert all(_config(lab, r)["log.level"] == "INFO" for r in REGIONS), "check mode changed nothing"


def test_rollback_needs_the_incident_record(lab):
    run = run_playbook("rollback", lab, {"confirm_destructive": True})
    assert not run.ok
    assert "incident_dir" in run.result("Check that the platform")["res"]["msg"]


def test_a_changes_file_that_breaks_its_contract_stops_the_rollback_naming_it(lab, tmp_path):
    """rollback.yml reads changes/ by its written contract: a record it cannot trust is refused, not guessed at."""
    (tmp_path / "changes").mkdir()
    bad = tmp_path / "changes" / "19700101T000001-p1_high.json"
    bad.write_text(json.dumps({"procedure": "p1_high", "recorded_at": 1.0, "scale": "three replicas"}))
    run = run_playbook("rollback", lab, {"incident_dir": str(tmp_path), "confirm_destructive": True})
    assert not run.ok
    failed = next(r for r in run.results if r["status"] == "failed")
    items = [i.get("msg", "") for i in failed["res"].get("results") or []] or [failed["res"]["msg"]]
    assert any(f"{bad} does not fit its contract (changes)" in m for m in items), failed["res"]
