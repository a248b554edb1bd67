"""The severity procedures' own logic on the test lab, cheaply: which services P1/P2 act on (the
operator's, else triage's, else the alerts', never all), the confirmation gate, check mode, and
what P3 and communicate send and record (the lab's sinks are the proof)."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from incidentctl.record import Incident
from incidentlab import sinks
from kubeutil import NS, REGIONS, SERVICES, api
from support import run_playbook

pytestmark = pytest.mark.lab


def _replicas(lab) -> dict:
    return {
        (r, d.metadata.name): d.spec.replicas
        for r in REGIONS
        for d in client.AppsV1Api(api(lab, r)).list_namespaced_deployment(NS).items
    }


def _record(tmp_path, services_down: list[str]) -> str:
    (tmp_path / "triage").mkdir(parents=True, exist_ok=True)
    findings = {
        "findings": {
            "services": [{"name": s, "region": r, "up": s not in services_down} for s in SERVICES for r in REGIONS],
            "config_issues": [],
            "databases": {},
            "alerts": [],
            "problems": [f"{s} down" for s in services_down],
        },
        "classification": {"severity": "P1" if services_down else None, "reasons": []},
    }  # as playbooks/contracts/triage.schema.json says triage.yml writes it
    (tmp_path / "triage" / "findings.json").write_text(json.dumps(findings))
    return str(tmp_path)


def test_p1_scales_the_services_triage_found_down_and_only_those(lab, tmp_path):
    before = _replicas(lab)
    run = run_playbook(
        "p1_high", lab, {"incident_dir": _record(tmp_path, ["payment-service"])}, check=True, skip_tags="notify"
    )
    assert run.ok, run.stdout[-3000:]
    assert (run.outcome["services"], run.outcome["services_source"]) == (["payment-service"], "triage")
    planned = run.result("Scale up the affected services")["res"]
    assert {(w["cluster"], w["name"], w["replicas"]) for w in planned["workloads"]} == {
        (r, "payment-service", 5) for r in REGIONS
    }, "to the inventory's scale_up_replicas, in every region"
    assert _replicas(lab) == before, "check mode changed nothing"
    assert (tmp_path / "p1" / "resources.json").exists() and (tmp_path / "p1" / "processlist.json").exists()


def test_p1_takes_the_operators_services_before_triage(lab, tmp_path):
    extra = {"incident_dir": _record(tmp_path, ["payment-service"]), "affected_services": "user-service, order-service"}
    run = run_playbook("p1_high", lab, extra | {"scale_replicas": 3}, check=True, skip_tags="notify")
    assert run.ok, run.stdout[-3000:]
    assert (run.outcome["services"], run.outcome["services_source"]) == (["user-service", "order-service"], "operator")
    assert {w["replicas"] for w in run.result("Scale up the affected services")["res"]["workloads"]} == {3}


def test_p1_never_guesses_all_services(lab, tmp_path):
    """No operator's word, nothing down at triage, no alert (Prometheus unreachable here): nothing is scaled."""
    extra = {"incident_dir": _record(tmp_path, []), "monitoring": {"prometheus_url": "http://127.0.0.1:9"}}
    run = run_playbook("p1_high", lab, extra | {"confirm_destructive": True}, skip_tags="notify")
    assert run.ok, run.stdout[-3000:]
    assert run.outcome["services"] == [] and run.outcome["services_source"] == "none"
    assert run.result("Scale up the affected services")["status"] == "skipped"
    assert run.outcome["verified"] is False
    assert any("no affected service is known" in n for n in run.outcome["needs_human"])


def test_an_unknown_service_is_refused(lab):
    run = run_playbook("p2_medium", lab, {"affected_services": ["payment-servise"]}, skip_tags="notify")
    assert not run.ok
    assert "unknown service(s) payment-servise" in run.result("Refuse services")["res"]["msg"]


def test_p2_without_confirmation_restarts_nothing_and_says_so(lab, tmp_path):
    before = _replicas(lab)
    run = run_playbook("p2_medium", lab, {"affected_services": "payment-service"}, skip_tags="notify")
    assert run.ok, run.stdout[-3000:]
    assert run.result("Restart the affected services")["status"] == "skipped"
    assert run.changed() == []
    assert "destructive steps were not confirmed (-e confirm_destructive=true)" in run.outcome["needs_human"]
    assert _replicas(lab) == before


def test_p2_in_check_mode_shows_the_configuration_patch_and_changes_nothing(lab, tmp_path):
    extra = {
        "incident_dir": str(tmp_path),
        "affected_services": "payment-service",
        "config_patch": {"log.level": "DEBUG"},
    }
    run = run_playbook("p2_medium", lab, extra, check=True, skip_tags="notify")
    assert run.ok, run.stdout[-3000:]
    planned = run.result("Update the configuration")["res"]
    assert planned["changed"] and {c["cluster"] for c in planned["configmaps"]} == set(REGIONS)
    assert all(c["data"]["log.level"] == "DEBUG" for c in planned["configmaps"])
    assert run.result("Restart the affected services")["status"] == "skipped", "the patch's restart replaces it"
    core = client.CoreV1Api(api(lab, "primary"))
    assert core.read_namespaced_config_map("microservice-config", NS).data["log.level"] == "INFO"
    config = json.loads((tmp_path / "p2" / "configuration.json").read_text())
    assert {s["name"] for s in config["secrets"]} >= {"db-credentials"}
    assert all("data" not in s for s in config["secrets"]), "secret names only"


def test_p3_records_the_issue_and_mails_the_development_team(lab, tmp_path):
    inc = Incident.create(tmp_path, inventory="inventories/lab")
    inc.update(severity="P3", reasons=["replica lagging: 4 transactions behind"])
    mark = max((m["seq"] for m in sinks.read_mails(lab.cfg)), default=0)
    run = run_playbook("p3_low", lab, {"incident_dir": str(inc.path)})
    assert run.ok, run.stdout[-3000:]
    assert "replica lagging" in (inc.path / "p3-issue.md").read_text()
    mails = [m for m in sinks.read_mails(lab.cfg, since_seq=mark) if inc.id in m["subject"]]
    assert [m["rcpt_tos"] for m in mails] == [["dev-team@company.com"]]
    assert run.outcome["verified"] is True and run.outcome["actions"] == ["notified mail"]


def test_communicate_updates_stakeholders_and_the_status_page_and_keeps_what_was_sent(lab, tmp_path):
    inc = Incident.create(tmp_path, inventory="inventories/lab")
    inc.update(severity="P1", reasons=["service degraded"], services=["payment-service"])
    mark = max((r["seq"] for r in sinks.read_requests(lab.cfg)), default=0)
    run = run_playbook("communicate", lab, {"incident_dir": str(inc.path)})
    assert run.ok, run.stdout[-3000:]
    paths = [r["path"] for r in sinks.read_requests(lab.cfg, since_seq=mark)]
    assert any(p.startswith("/slack/") for p in paths), paths
    assert any(p.startswith("/v1/pages/lab-page/incidents") for p in paths), paths
    record = json.loads((inc.path / "communications.json").read_text())
    assert record["updates"][-1]["status"] == "investigating"
    assert record["updates"][-1]["status_page"] == ["status-page"] and record["statuspage_incident_id"]
