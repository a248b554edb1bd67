"""Who may act without a person (incidentctl.autoexec) and which incident an alert joins (incidentctl.alerts):
the policy as data, the block period, the hourly bound, the pause switch, and 'the same problem'."""

from __future__ import annotations

import threading

import pytest

from incidentctl import alerts, autoexec
from incidentctl.errors import BadInput
from incidentctl.record import Incident

LAB_POLICY = autoexec.Policy.from_vars(
    {
        "rules": [
            {"check": "database_down", "severity": "P0", "failover": "database"},
            {"check": "lb_down", "severity": "P0", "failover": "traffic"},
        ],
        "block_seconds": 600,
        "max_per_hour": 3,
    }
)
DB_DOWN = {
    "severity": "P0",
    "matched": [{"severity": "P0", "check": "database_down", "reason": "primary database down: db-primary"}],
}
LAGGING = {"severity": "P3", "matched": [{"severity": "P3", "check": "replica_lagging", "reason": "replica lagging"}]}


# -- the policy ------------------------------------------------------------------------------------
def test_a_matching_rule_runs_without_a_person_and_names_its_failover():
    d = autoexec.decide(LAB_POLICY, DB_DOWN, [], at=1000.0)
    assert d.run and not d.blocked and d.failovers == ("database",)
    assert "database_down (P0)" in d.reason


def test_no_rule_means_the_incident_waits():
    d = autoexec.decide(autoexec.Policy(), DB_DOWN, [], at=1000.0)
    assert not d.run and not d.blocked
    assert "none of these findings" in d.reason and "primary database down" in d.reason
    assert not autoexec.decide(LAB_POLICY, LAGGING, [], at=1000.0).run


def test_a_rule_for_another_severity_does_not_match():
    policy = autoexec.Policy.from_vars({"rules": [{"check": "database_down", "severity": "P1"}]})
    assert not autoexec.decide(policy, DB_DOWN, [], at=1000.0).run


def test_a_second_automatic_failover_of_a_kind_waits_for_the_block_period():
    history = [{"type": "failover", "kind": "database", "ts": 1000.0, "incident": "INC-A"}]
    blocked = autoexec.decide(LAB_POLICY, DB_DOWN, history, at=1000.0 + 599)
    assert not blocked.run and blocked.blocked
    assert "automatic database failover ran 599s ago (incident INC-A)" in blocked.reason
    assert "block period of 600s" in blocked.reason
    assert autoexec.decide(LAB_POLICY, DB_DOWN, history, at=1000.0 + 601).run
    # a failover of the other kind does not block this one
    traffic = [{"type": "failover", "kind": "traffic", "ts": 1000.0}]
    assert autoexec.decide(LAB_POLICY, DB_DOWN, traffic, at=1001.0).run


def test_the_hourly_bound_counts_automatic_procedures_of_every_kind():
    history = [{"type": "procedure", "ts": 1000.0 + i} for i in range(3)]
    d = autoexec.decide(LAB_POLICY, DB_DOWN, history, at=1100.0)
    assert not d.run and d.blocked and "3 automatic procedure(s)" in d.reason and "max_per_hour 3" in d.reason
    assert autoexec.decide(LAB_POLICY, DB_DOWN, history, at=1000.0 + 3601).run  # an hour later
    # a procedure without destructive steps needs no rule, but the bound holds for it too
    assert autoexec.decide(autoexec.Policy(), LAGGING, [], at=1.0, destructive=False).run
    assert not autoexec.decide(LAB_POLICY, LAGGING, history, at=1100.0, destructive=False).run


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ([], "must be a mapping"),
        ({"rules": {}}, "rules must be a list"),
        ({"rules": [{"severity": "P0"}]}, "rules[0] must be a mapping with a check"),
        ({"rules": [{"check": "database_down", "failover": "dns"}]}, "failover must be one of database, traffic"),
        ({"rules": [{"check": "x", "when": 1}]}, "rules[0] has unknown key(s) when"),
        ({"block_seconds": "soon"}, "block_seconds must be a number"),
        ({"max_per_hour": -1}, "must not be negative"),
        ({"blocked_seconds": 1}, "unknown key(s) blocked_seconds"),
    ],
)
def test_a_malformed_policy_is_bad_input_in_one_line(value, says):
    with pytest.raises(BadInput) as err:
        autoexec.Policy.from_vars(value)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_the_failovers_a_procedure_made_come_from_the_tasks_that_changed():
    promote = {"module": "incident.response.mysql_promote", "changed": True}
    switch = {"module": "incident.response.traffic_failover", "changed": True}
    restart = {"module": "incident.response.workload_restart", "changed": True}
    assert autoexec.failovers_done([promote, restart, switch]) == ["database", "traffic"]
    assert autoexec.failovers_done([restart, {**promote, "changed": False}]) == []
    assert autoexec.failovers_done([]) == []


def test_history_and_pause_live_in_the_incidents_directory(tmp_path):
    autoexec.add_history(tmp_path, "/inv/a", type="failover", kind="database", incident="INC-1")
    autoexec.add_history(tmp_path, "/inv/b", type="procedure", incident="INC-2")
    assert [h["incident"] for h in autoexec.read_history(tmp_path, "/inv/a")] == ["INC-1"]
    assert autoexec.paused(tmp_path) is None
    doc = autoexec.pause(tmp_path, by="alice", note="DB maintenance")
    assert autoexec.paused(tmp_path)["note"] == "DB maintenance"
    assert "paused by alice" in autoexec.describe_pause(doc)
    assert autoexec.resume(tmp_path) and autoexec.paused(tmp_path) is None and not autoexec.resume(tmp_path)
    # a pause file a person wrote by hand counts too
    autoexec.pause_path(tmp_path).write_text("stop it\n")
    assert autoexec.paused(tmp_path) == {"note": "stop it"}


# -- the same problem -----------------------------------------------------------------------------------
INV = "/inventories/lab"


def alert(
    name="DatabaseDown", status="firing", fp=None, starts="2026-01-01T00:00:00Z", at=None, **labels
) -> alerts.Alert:
    event = {
        "alert": {
            "status": status,
            "labels": {"alertname": name, **labels},
            "annotations": {"summary": f"{name} summary"},
            "startsAt": starts,
            "fingerprint": fp or f"fp-{name}-{sorted(labels.items())}",
        },
        "delivery": {"received_at": at} if at else {},
    }
    return alerts.Alert.from_event(event)


def test_a_burst_of_alerts_opens_one_incident_and_each_alert_is_one_timeline_line(tmp_path):
    routed = [alerts.route(tmp_path, INV, alert("ServiceDown", service=f"s{i}")) for i in range(5)]
    assert [r.outcome for r in routed] == ["opened", "attached", "attached", "attached", "attached"]
    inc = Incident.open(tmp_path, routed[0].incident.id)
    assert inc.data["started_by"]["name"].startswith("ServiceDown")
    assert len(inc.data["alerts"]) == 5
    assert len([e for e in inc.timeline() if e.get("kind") == "alert firing"]) == 5
    assert len(Incident.all(tmp_path)) == 1


def test_re_sends_add_nothing_and_a_resolution_adds_one_line(tmp_path):
    first = alerts.route(tmp_path, INV, alert())
    again = alerts.route(tmp_path, INV, alert())  # Alertmanager's re-send, or a restart of Alertmanager
    assert again.outcome == "attached" and not again.changed and again.incident.id == first.incident.id
    done = alerts.route(tmp_path, INV, alert(status="resolved"))
    assert done.outcome == "attached" and done.changed
    late = alerts.route(tmp_path, INV, alert())  # a late re-send of the firing after its resolution
    assert not late.changed
    inc = Incident.open(tmp_path, first.incident.id)
    kinds = [e["kind"] for e in inc.timeline() if e.get("kind", "").startswith("alert ")]
    assert kinds == ["alert firing", "alert resolved"]
    entry = next(iter(inc.data["alerts"].values()))
    assert entry["status"] == "resolved" and entry["deliveries"] == 4


def test_a_resolved_alert_of_no_incident_is_ignored(tmp_path):
    routed = alerts.route(tmp_path, INV, alert(status="resolved"))
    assert routed.outcome == "ignored" and "resolved alert of no incident" in routed.why
    assert Incident.all(tmp_path) == []


def test_a_mitigated_incident_takes_late_alerts_while_it_settles_and_its_alerts_fire(tmp_path):
    first = alerts.route(tmp_path, INV, alert(), settle_seconds=60).incident
    first.update(status="mitigated", mitigated_at=first.data["opened_at"])
    late = alerts.route(tmp_path, INV, alert("HighErrorRate", service="x"), settle_seconds=60)
    assert late.outcome == "attached" and late.incident.id == first.id and "mitigated" in late.why
    # once every alert of it resolved, a new firing is a new problem
    for key in list(Incident.open(tmp_path, first.id).data["alerts"]):
        starts = key.split("@", 1)[1]
        a = next(v for k, v in Incident.open(tmp_path, first.id).data["alerts"].items() if k == key)
        alerts.route(tmp_path, INV, alert(a["alertname"], "resolved", fp=a["fingerprint"], starts=starts))
    second = alerts.route(tmp_path, INV, alert(starts="2026-01-01T00:10:00Z"), settle_seconds=60)
    assert second.outcome == "opened" and second.incident.id != first.id


def test_an_incident_a_response_still_works_on_takes_new_alerts(tmp_path):
    first = alerts.route(tmp_path, INV, alert()).incident
    alerts.route(tmp_path, INV, alert(status="resolved"))
    first.update(status="mitigated", mitigated_at=first.data["opened_at"], run={"state": "running"})
    again = alerts.route(tmp_path, INV, alert(starts="2026-01-01T00:01:00Z"))
    assert again.outcome == "attached" and again.incident.id == first.id and "still working" in again.why
    first.update(run={"state": "finished"})
    assert alerts.route(tmp_path, INV, alert(starts="2026-01-01T00:02:00Z"), settle_seconds=0).outcome == "opened"


def test_after_the_settle_time_a_new_alert_opens_a_new_incident(tmp_path):
    first = alerts.route(tmp_path, INV, alert()).incident
    first.update(status="mitigated", mitigated_at=first.data["opened_at"] - 120)
    second = alerts.route(tmp_path, INV, alert("ServiceDown", service="a"), settle_seconds=60)
    assert second.outcome == "opened"


def test_closed_incidents_other_platforms_and_check_runs_take_no_alert(tmp_path):
    closed = alerts.route(tmp_path, INV, alert()).incident
    closed.update(status="closed")
    other = alerts.route(tmp_path, "/inventories/example", alert("ServiceDown", service="a"))
    check = alerts.route(tmp_path, INV, alert("ServiceDown", service="a"), check=True)
    real = alerts.route(tmp_path, INV, alert("ServiceDown", service="a"))
    assert other.outcome == check.outcome == real.outcome == "opened"
    assert len({closed.id, other.incident.id, check.incident.id, real.incident.id}) == 4
    assert check.incident.data["check_mode"] and not real.incident.data["check_mode"]


def test_concurrent_routers_open_one_incident(tmp_path):
    """Two processes (the watcher, a respond --from-alert) route at once: the platform's alert lock serializes."""
    barrier = threading.Barrier(8)
    results = []

    def go(i):
        barrier.wait()
        results.append(alerts.route(tmp_path, INV, alert("ServiceDown", service=f"s{i}")).outcome)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["attached"] * 7 + ["opened"]
    assert len(Incident.all(tmp_path)) == 1


@pytest.mark.parametrize(
    ("event", "says"),
    [
        ([], "must be a JSON object"),
        ({"alert": "x"}, "not an object"),
        ({"alert": {"status": "pending"}}, "not firing or resolved"),
        ({"alert": {"status": "firing", "labels": {}}}, "no labels.alertname"),
        ({"alert": {"status": "firing", "labels": {"alertname": "A"}, "startsAt": "t"}}, "no fingerprint"),
    ],
)
def test_an_event_that_is_no_alert_is_bad_input(event, says):
    with pytest.raises(BadInput) as err:
        alerts.Alert.from_event(event)
    assert says in str(err.value)


def test_respond_from_alert_while_paused_records_the_alert_and_runs_nothing(tmp_path):
    """The standalone way in (a script, another rulebook's playbook): the alert opens its incident, the pause
    keeps anything from running, and a second alert of the problem joins it without starting anything."""
    import json
    import os

    from support import incidentctl

    env = {**os.environ, "INCIDENTCTL_INCIDENTS_DIR": str(tmp_path), "INCIDENTLAB_DIR": str(tmp_path / "no-lab")}
    assert incidentctl("watch", "pause", "--note", "maintenance", env=env).returncode == 0
    first = tmp_path / "first.json"
    first.write_text(json.dumps({"alert": alert().as_dict()}))
    res = incidentctl("respond", "-i", "lab", "--from-alert", str(first), env=env)
    assert res.returncode == 3, res.stderr
    assert "paused" in res.stderr and "Traceback" not in res.stderr
    (inc,) = Incident.all(tmp_path)
    assert "paused" in inc.data["waiting_for"] and not (inc.path / "runs").exists()
    second = json.dumps([{"alert": alert("ServiceDown", service="a").as_dict()}])
    res = subprocess_run_stdin(["respond", "-i", "lab", "--from-alert", "-"], second, env)
    assert res.returncode == 0, res.stderr
    assert "attached" in res.stderr and len(Incident.all(tmp_path)) == 1
    assert len(Incident.open(tmp_path, inc.id).data["alerts"]) == 2


def subprocess_run_stdin(args: list[str], text: str, env: dict):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "incidentctl", *args], input=text, capture_output=True, text=True, env=env, timeout=120
    )
