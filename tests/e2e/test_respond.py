"""incidentctl respond against the lab: real faults, the policy's choice, the procedure, the record."""

from __future__ import annotations

import json
import os
from pathlib import Path

from kubernetes import client

from incidentctl.record import Incident
from incidentlab import mariadb
from incidentlab.config import LabConfig
from incidentlab.monitoring import http_json
from kubeutil import NS, REGIONS, SERVICES, api
from response_support import db_state, platform_state, respond
from support import PROJECT_ROOT, incidentctl, run_playbook, secret_leaks, wait_for

TEST_DOUBLES = PROJECT_ROOT / "tests" / "controller" / "project"  # playbooks that make mistakes on purpose


def test_healthy_lab_is_no_incident_and_nothing_changes(own_lab, ctl_env):
    before = platform_state(own_lab)
    doc, inc = respond(ctl_env)
    assert doc["severity"] is None and doc["status"] == "closed"
    assert [p.name for p in (inc.path / "runs").iterdir()] == ["01-triage"]
    assert platform_state(own_lab) == before


def test_db_primary_down_is_p0_and_every_service_moves_to_the_promoted_replica(own_lab, ctl_env):
    own_lab.break_fault("db-primary-down")
    doc, inc = respond(ctl_env, "--yes")

    # The policy chose P0 by itself, and the procedure mitigated it.
    assert doc["severity"] == "P0" and inc.data["severity_source"] == "policy"
    assert any("primary database down" in r for r in doc["reasons"])
    assert doc["status"] == "mitigated" and doc["verified"] is True
    assert sorted(doc["healthy"]) == sorted(SERVICES)

    # The real components say so.
    assert db_state(own_lab, "db-replica") == {"read_only": False, "replica": False}
    replica_port = str(own_lab.cfg.ports["db-replica"])
    for region in REGIONS:
        core = client.CoreV1Api(api(own_lab, region))
        assert core.read_namespaced_config_map("microservice-config", NS).data["db.port"] == replica_port

    # Confirmed up front (--yes): triage and P0 in one Ansible run, then the evidence and the postmortem.
    assert sorted(p.name for p in (inc.path / "runs").iterdir()) == ["01-respond", "02-investigate", "03-postmortem"]

    # A complete record: timeline with the procedure's steps, the initial state, the postmortem.
    tasks = [e for e in inc.timeline() if e["source"] == "ansible"]
    promote = next(e for e in tasks if e["module"] == "incident.response.mysql_promote")
    assert promote["changed"] and "promoted" in promote["summary"]
    # P0 decided on the read triage made a moment before in the same run: it did not read the platform again.
    (probe,) = [e for e in tasks if e["module"] == "incident.response.triage_probe" and e["play"].startswith("P0")]
    assert probe["outcome"] == "skipped"
    assert (inc.path / "snapshots" / "initial-state.json").exists()
    assert (inc.path / "snapshots" / "initial-state.txt").read_text().strip()
    assert json.loads((inc.path / "triage" / "findings.json").read_text())["classification"]["severity"] == "P0"
    evidence = Path(doc["evidence"])
    for region in REGIONS:
        for service in SERVICES:
            assert (evidence / "logs" / region / NS / f"{service}.log").stat().st_size > 0
    metrics = json.loads((evidence / "metrics.json").read_text())
    results = metrics["query_results"]
    assert {"request_rate", "databases_up"} <= set(results), sorted(results)
    assert all(q["error"] is None and q["result_type"] == "matrix" for q in results.values())
    assert any(s["values"] for s in results["databases_up"]["series"])
    postmortem = (inc.path / "postmortem.md").read_text()
    assert "- **Severity**: P0 (policy)" in postmortem
    assert "Promote the replica" in postmortem and "| time to mitigation |" in postmortem
    assert f"- {evidence.relative_to(inc.path)}/: logs of every service" in postmortem
    assert inc.data["first_action_at"] and inc.data["mitigated_at"]


def test_check_mode_shows_the_plan_and_changes_nothing(own_lab, ctl_env):
    own_lab.break_fault("db-primary-down")
    before = platform_state(own_lab)
    doc, inc = respond(ctl_env, "--check")
    assert doc["severity"] == "P0" and doc["check_mode"] is True and doc["status"] == "open"
    assert platform_state(own_lab) == before
    plan = [e for e in inc.timeline() if e.get("run", "").endswith("p0_critical") and e.get("module")]
    promote = next(e for e in plan if e["module"] == "incident.response.mysql_promote")
    assert promote["changed"]  # in check mode: what would change
    # Nothing was repaired, so the verification looks once and says so instead of waiting for the services.
    verify = [
        json.loads(p.read_text())["event_data"]["res"]
        for p in inc.path.glob("runs/*-p0_critical/artifacts/*/job_events/*.json")
        if '"Verify - every service answers through the global entry point"' in p.read_text()
        and json.loads(p.read_text())["event"] == "runner_on_ok"
    ]
    assert len(verify) == 1 and verify[0]["summary"]["up"] == 0
    assert {c["attempts"] for c in verify[0]["checks"]} == {1}


def test_no_lab_secret_reaches_the_incident_record(own_lab, ctl_env):
    """The scrubber knows nothing of the lab, so this holds only if no module, task or file leaks one
    (test_the_secrets_scan_finds_a_module_that_forgot_no_log proves the scan would see it)."""
    own_lab.break_fault("db-primary-down")
    _, inc = respond(ctl_env, "--yes")
    scanned = {p.relative_to(inc.path).parts[0] for p in inc.path.rglob("*") if p.is_file()}
    every_part = {"incident.json", "timeline.jsonl", "runs", "triage", "snapshots", "outcomes", "changes"}
    assert every_part | {"investigation", "postmortem.md"} <= scanned, sorted(scanned)
    assert list(inc.path.glob("runs/*-respond/artifacts/*/job_events/*.json"))  # triage and P0, one run
    assert secret_leaks(inc.path, own_lab.secrets().values()) == []


def test_the_secrets_scan_finds_a_module_that_forgot_no_log(tmp_path):
    """The proof that the test above can fail: incidentctl (the same runner, recorder and scrubber)
    runs a test-double module whose password option lacks no_log, with the lab inventory's admin
    password, and the same scan finds that password in the record: in the run's events (Ansible returns
    a module's arguments) and in the timeline (a task's message). The lab's own code makes the
    passwords where the inventory reads them; nothing needs to run for that."""
    cfg = LabConfig(tmp_path / "lab")
    cfg.ensure_dir()
    secrets = cfg.load_secrets(create=True)
    incidents = tmp_path / "incidents"
    env = {
        **os.environ,
        "INCIDENTLAB_DIR": str(cfg.lab_dir),
        "INCIDENTCTL_PROJECT_DIR": str(TEST_DOUBLES),
        "INCIDENTCTL_INCIDENTS_DIR": str(incidents),
    }
    res = incidentctl("run", "forgot_no_log", "-i", str(PROJECT_ROOT / "inventories" / "lab"), env=env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    (inc,) = Incident.all(incidents)
    leaks = secret_leaks(inc.path, secrets.values())
    assert {hint for _, hint in leaks} == {secrets["admin"][:4] + "..."}
    where = {path for path, _ in leaks}
    assert "timeline.jsonl" in where
    # The module's own result (its arguments, returned by Ansible), not only the message's task.
    login = [
        str(f.relative_to(inc.path))
        for f in inc.path.glob("runs/01-forgot_no_log/artifacts/*/job_events/*.json")
        if json.loads(f.read_text()).get("event") == "runner_on_ok"
        and json.loads(f.read_text())["event_data"]["task"] == "Log in with a password option that lacks no_log"
    ]
    assert len(login) == 1 and login[0] in where, (login, where)


def test_region_down_is_p0_and_traffic_moves_to_the_secondary_region(own_lab, ctl_env):
    own_lab.break_fault("region-down")
    doc, inc = respond(ctl_env, "--yes")
    assert doc["severity"] == "P0" and any("primary region unreachable" in r for r in doc["reasons"])
    assert doc["status"] == "mitigated" and doc["verified"] is True
    upstream = own_lab.cfg.path("nginx", "global", "upstream.conf").read_text()
    assert f"127.0.0.1:{own_lab.cfg.ports['lb-secondary']}" in upstream
    assert f"127.0.0.1:{own_lab.cfg.ports['lb-primary']}" not in upstream
    switch = next(e for e in inc.timeline() if e.get("module") == "incident.response.traffic_failover")
    assert switch["changed"] and "secondary" in switch["summary"]


def test_slow_service_is_p1_and_is_scaled_up_and_not_called_healthy_while_still_slow(own_lab, ctl_env):
    """P1 scales only the slow service. The lab's fault makes its new pods slow too, so scaling cannot heal it:
    the summary says it is still slow (exit 1), it does not list it as healthy."""
    own_lab.break_fault("service-slow", "payment-service")

    def latency_alert():
        alerts = http_json(own_lab.cfg.url("prometheus", "/api/v1/alerts"))["data"]["alerts"]
        return any(a["labels"]["alertname"] == "HighLatency" and a["state"] == "firing" for a in alerts)

    wait_for(latency_alert, 120, "HighLatency to fire")
    doc, inc = respond(ctl_env, "--yes", rc=1)
    assert doc["severity"] == "P1" and any("HighLatency" in r for r in doc["reasons"])
    assert doc["verified"] is False and doc["status"] == "open"
    assert "payment-service" not in doc["healthy"]
    assert any(u.startswith("still slow: ") and "/payment-service/" in u for u in doc["unhealthy"]), doc["unhealthy"]
    for region in REGIONS:
        apps = client.AppsV1Api(api(own_lab, region))
        assert apps.read_namespaced_deployment("payment-service", NS).spec.replicas > 2
        assert apps.read_namespaced_deployment("user-service", NS).spec.replicas == 2  # only the affected one
    assert any(e.get("module") == "incident.response.workload_scale" and e["changed"] for e in inc.timeline())


def test_crash_looping_service_is_p2_and_a_rolling_restart_heals_it(own_lab, ctl_env):
    own_lab.break_fault("service-down", "payment-service")
    core = client.CoreV1Api(api(own_lab, "primary"))

    def crash_looping():
        pods = core.list_namespaced_pod(NS, label_selector="app=payment-service").items
        return any(
            (cs.state.waiting and cs.state.waiting.reason == "CrashLoopBackOff")
            for p in pods
            for cs in (p.status.container_statuses or [])
        )

    wait_for(crash_looping, 60, "payment-service to crash-loop")
    doc, inc = respond(ctl_env, "--yes")
    assert doc["severity"] == "P2" and doc["status"] == "mitigated" and doc["verified"] is True
    assert "payment-service" in inc.data["services"]
    assert not crash_looping()
    restart = next(e for e in inc.timeline() if e.get("module") == "incident.response.workload_restart")
    assert restart["changed"]


def test_partitioned_primary_is_not_promoted_over(own_lab, tmp_path):
    """The split-brain guard at the procedure's level: a primary that hangs (as behind a network
    partition) while the replica is still connected to it is no dead primary. P0 (run as a
    playbook: triage is not needed to show the gate) must refuse the promotion, say why, and leave
    the databases and the services' configuration as they were."""
    configs_before = platform_state(own_lab)
    with mariadb.admin(own_lab.cfg, "db-replica", own_lab.secrets()) as conn:
        # The replica notices a silent primary after slave_net_timeout (60 s by default); P0 takes
        # 30-40 s here with every service hanging on the frozen primary. A longer timeout keeps the
        # test off that race: the gate sees what it would see in the first minute of a partition.
        mariadb.execute(conn, ["STOP SLAVE IO_THREAD", "SET GLOBAL slave_net_timeout = 600", "START SLAVE IO_THREAD"])
    # Connected again before the freeze: an IO thread still connecting when the primary hangs is not
    # connected to it, and then the gate rightly sees a primary that nobody reaches.
    mariadb.wait_caught_up(own_lab.cfg, own_lab.secrets(), "db-replica", "db-primary")
    own_lab.break_fault("db-primary-partitioned")
    run = run_playbook(
        "p0_critical", own_lab, {"incident_dir": str(tmp_path), "confirm_destructive": True}, skip_tags="notify"
    )
    assert not run.ok
    refused = run.result("Promote the replica")
    assert refused["status"] == "failed" and "network partition" in refused["res"]["msg"]
    assert any("database failover did not happen" in n for n in run.outcome["needs_human"])
    assert run.outcome["verified"] is False
    assert db_state(own_lab, "db-replica") == {"read_only": True, "replica": True}
    for region in REGIONS:  # the services still point at the (hanging) primary
        core = client.CoreV1Api(api(own_lab, region))
        assert core.read_namespaced_config_map("microservice-config", NS).data == configs_before[region]["config"]

    # Healing the partition brings the same topology back: the replica follows the primary again.
    own_lab.heal("db-primary-partitioned")
    assert db_state(own_lab, "db-primary") == {"read_only": False, "replica": False}
    assert db_state(own_lab, "db-replica") == {"read_only": True, "replica": True}

    # Had someone promoted the replica during the partition, the old primary must not come back
    # as a second writer: heal brings it back fenced, as a replica of the promoted one.
    own_lab.break_fault("db-primary-partitioned")
    with mariadb.admin(own_lab.cfg, "db-replica", own_lab.secrets()) as conn:
        mariadb.execute(conn, ["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0"])
    own_lab.heal("db-primary-partitioned")
    assert db_state(own_lab, "db-primary") == {"read_only": True, "replica": True}
    assert db_state(own_lab, "db-replica") == {"read_only": False, "replica": False}


def test_p0_reads_the_platform_itself_when_triage_s_read_is_not_fresh_enough(own_lab, tmp_path):
    """respond.yml (triage and P0 in one run) with the reuse bound at 0: P0 makes its own read before the first
    change instead of deciding on triage's, and still promotes (the default's reuse is in the respond test)."""
    own_lab.break_fault("db-primary-down")
    run = run_playbook(
        "respond",
        own_lab,
        {"incident_dir": str(tmp_path), "confirm_destructive": True, "p0_reuse_triage_seconds": 0},
        skip_tags="notify",
    )
    assert run.ok, run.stdout[-3000:]
    assert run.result("Is it region-wide, which Kubernetes APIs answer")["status"] == "ok"
    assert run.result("Promote the replica")["changed"]
    assert run.outcome["verified"] is True
