"""Chaos: the response under interruptions and failing components, each on a lab of its own.

In every case the exit code says what happened, nothing waits past its deadline (a test that hung
would time out its incidentctl call), and the record names what could not be done.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from incidentctl.record import Incident
from incidentctl.supervise import descendants
from kubeutil import NS, SERVICES, api
from response_support import app_can_write, configmap_ports, db_state, respond
from support import incidentctl, wait_for

pytestmark = pytest.mark.lab


def start_respond(env, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "incidentctl", "respond", "-i", "lab", "--yes", "--json", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def only_incident(env) -> Incident:
    items = Incident.all(Path(env["INCIDENTCTL_INCIDENTS_DIR"]))
    assert len(items) == 1, [i.id for i in items]
    return items[0]


def first_incident(env) -> Incident:
    return wait_for(lambda: Incident.all(Path(env["INCIDENTCTL_INCIDENTS_DIR"]))[:1], 300, "an incident")[0]


def promotions(inc: Incident) -> list[dict]:
    return [e for e in inc.timeline() if e.get("module") == "incident.response.mysql_promote" and e.get("changed")]


def gone(pids) -> bool:
    return not [p for p in pids if Path(f"/proc/{p}").exists() and "State:\tZ" not in _status(p)]


def _status(pid) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ""


def kill_controller(proc: subprocess.Popen) -> None:
    """SIGKILL of the controller alone; its playbook's processes must follow within seconds."""
    tree = descendants(proc.pid)
    proc.kill()
    proc.communicate()
    wait_for(lambda: gone(tree), 60, "the playbook's processes to end with the controller")


def resumed_and_complete(lab, env) -> tuple[dict, Incident]:
    """A plain respond continues the interrupted incident: one incident, one promotion, writes accepted."""
    doc, inc = respond(env, "--yes")
    assert [i.id for i in Incident.all(Path(env["INCIDENTCTL_INCIDENTS_DIR"]))] == [inc.id]
    assert doc["status"] == "mitigated" and doc["verified"] is True, doc
    assert len(promotions(inc)) == 1
    kinds = [e.get("kind") for e in inc.timeline()]
    assert kinds.count("opened") == 1 and "interrupted" in kinds and "lock taken over" in kinds and "joined" in kinds
    assert set(configmap_ports(lab).values()) == {str(lab.cfg.ports["db-replica"])}
    assert app_can_write(lab, "db-replica")
    for part in ("postmortem.md", "report.html", "triage/findings.json"):
        assert (inc.path / part).exists(), part
    sent = json.loads((inc.path / "notifications.json").read_text())
    assert sorted(sent) == ["p0-mitigated", "p0-started"]
    announced = [e for e in inc.timeline() if e.get("task", "").startswith("Notify stakeholders") and e["changed"]]
    assert len(announced) == 1  # the start was announced once, across both runs
    return doc, inc


@pytest.mark.parametrize("when", ["during triage", "right after the promotion", "during the restarts"])
def test_a_controller_killed_then_resumed_ends_in_one_incident_and_one_promotion(own_lab, ctl_env, when):
    own_lab.break_fault("db-primary-down")
    proc = start_respond(ctl_env)
    inc = first_incident(ctl_env)
    replica_port = str(own_lab.cfg.ports["db-replica"])
    if when == "during triage":
        wait_for(
            lambda: any(e.get("play") == "Triage the platform" for e in inc.timeline()), 300, "triage's first task"
        )
    elif when == "right after the promotion":
        wait_for(lambda: promotions(inc), 300, "the promotion")
    else:
        wait_for(lambda: replica_port in configmap_ports(own_lab).values(), 300, "the ConfigMap patch")
    kill_controller(proc)
    assert Incident.open(inc.path.parent, inc.id).data["run"]["state"] == "running"  # until someone looks
    resumed_and_complete(own_lab, ctl_env)


def test_two_responses_at_once_and_an_investigation_beside_them(own_lab, ctl_env):
    """One procedure per platform: the second respond is refused while the first works (no second page, no
    second promotion); a read-only investigation runs beside it in the same record."""
    own_lab.break_fault("db-primary-down")
    first = start_respond(ctl_env)
    inc = first_incident(ctl_env)
    wait_for(lambda: any(e.get("kind") == "procedure started" for e in inc.timeline()), 300, "P0 to start")
    second = incidentctl("respond", "-i", "lab", "--yes", env=ctl_env, timeout=120)
    assert second.returncode == 3, second.stderr
    assert "a procedure is already running on this platform" in second.stderr and inc.id in second.stderr
    side = incidentctl("run", "investigate", "-i", "lab", "--json", env=ctl_env, timeout=300)
    assert side.returncode == 0, side.stderr[-2000:]
    assert json.loads(side.stdout)["incident"] == inc.id
    _out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-3000:]
    assert only_incident(ctl_env).id == inc.id and len(promotions(inc)) == 1
    starts = [e for e in inc.timeline() if e.get("task", "").startswith("Notify stakeholders") and e.get("changed")]
    assert len(starts) == 1


def test_monitoring_and_every_notification_channel_down(own_lab, ctl_env):
    """Prometheus and Alertmanager stopped, the notification sinks stopped: the database failover still
    happens; triage says the alerts could not be read; the summary and exit code (5) say nobody was told."""
    for name in ("prometheus", "alertmanager", "sinks"):
        assert own_lab.procs.get(name).running
        own_lab.procs.stop(name)
    own_lab.break_fault("db-primary-down")
    doc, inc = respond(ctl_env, "--yes", rc=5)
    assert doc["outcome"] == "mitigated with gaps" and doc["verified"] is True
    assert db_state(own_lab, "db-replica") == {"read_only": False, "replica": False}
    gap = next(g for g in doc["gaps"] if g.startswith("notification to "))
    for channel in ("slack", "pagerduty", "mail", "status-page"):
        assert channel in gap
    findings = json.loads((inc.path / "triage" / "findings.json").read_text())["findings"]
    assert set(findings["monitoring_down"]) == {"prometheus", "alertmanager"}
    assert any(p.startswith("prometheus not answering") for p in findings["problems"])


def test_the_secondary_region_api_frozen_during_a_database_failover(own_lab, ctl_env):
    """The secondary's Kubernetes API does not answer: its services cannot be re-pointed. Users are served
    through the primary region, so the incident is mitigated, with that region named as a gap (exit 5)."""
    kube = own_lab.procs.get("kube-secondary")
    os.kill(kube.pid, signal.SIGSTOP)
    try:
        own_lab.break_fault("db-primary-down")
        doc, _inc = respond(ctl_env, "--yes", rc=5)
    finally:
        os.kill(kube.pid, signal.SIGCONT)
    assert doc["status"] == "mitigated" and doc["verified"] is True
    assert any("services in secondary still use the old database" in g for g in doc["gaps"]), doc["gaps"]
    primary = client.CoreV1Api(api(own_lab, "primary")).read_namespaced_config_map("microservice-config", NS)
    assert primary.data["db.port"] == str(own_lab.cfg.ports["db-replica"])


def test_primary_database_down_with_a_slow_service(own_lab, ctl_env):
    """Two faults: the database failover mitigates the outage; the slow service is not called healthy, it is
    named still degraded, and the exit code says the work is not done."""
    own_lab.break_fault("service-slow", "payment-service")
    own_lab.break_fault("db-primary-down")
    doc, _inc = respond(ctl_env, "--yes", rc=5)
    assert db_state(own_lab, "db-replica") == {"read_only": False, "replica": False}
    assert "payment-service" not in doc["healthy"]
    assert any("payment-service" in g and "slow" in g for g in doc["gaps"]), doc["gaps"]
    assert sorted(s for s in SERVICES if s != "payment-service") == sorted(doc["healthy"])
