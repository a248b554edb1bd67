"""incidentctl watch on the lab's real Prometheus and Alertmanager: alerts start the response, behind the guards
(one incident per problem, the auto-execution policy, the block period, one response at a time, the pause)."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from incidentctl import autoexec
from incidentctl.record import Incident
from incidentlab import monitoring, sinks
from incidentlab.lab import Lab
from response_support import db_state
from support import PROJECT_ROOT, incidentctl, lab_port_base, wait_for
from watch_support import Watch, alert_path, alertmanager_delivery, alive, global_write, make_alert

TOKEN = "watch-test-token"


def promotions(inc: Incident) -> list[dict]:
    return [
        e
        for e in inc.timeline()
        if e.get("module") == "incident.response.mysql_promote" and e.get("changed") and not e.get("failed")
    ]


def runs(inc: Incident) -> list[str]:
    return sorted(p.name.split("-", 1)[1] for p in (inc.path / "runs").iterdir())


def pages_naming(lab, text: str) -> list[dict]:
    return [r for r in sinks.read_requests(lab.cfg) if text in json.dumps(r)]


def restart_alertmanager_without_its_state(lab) -> None:
    """As after a crash and a new node: Alertmanager forgets what it notified, Prometheus sends it all again."""
    lab.procs.stop("alertmanager")
    shutil.rmtree(lab.cfg.data_root / "alertmanager", ignore_errors=True)
    monitoring.start_alertmanager(lab.cfg, lab.procs)
    monitoring.wait_ready(lab.cfg, lab.procs)


def test_db_primary_down_is_one_incident_one_promotion_and_a_second_one_inside_the_block_period_waits(
    own_lab, tmp_path
):
    lab = own_lab
    with Watch(lab, tmp_path / "incidents", token=TOKEN) as watch:
        lab.break_fault("db-primary-down")

        # One incident, whose response an alert started and the lab's policy let run.
        opened = wait_for(lambda: watch.journal("opened"), 120, "an alert to open an incident")
        first = Incident.open(watch.root, opened[0]["incident"])
        done = wait_for(lambda: watch.finished(first.id), 600, "the response to finish")
        assert done["rc"] in (0, 5), watch.text()
        first.refresh()
        assert first.data["started_by"]["by"] == "alert" and first.data["severity"] == "P0"
        assert first.data["status"] == "mitigated"
        assert len(promotions(first)) == 1
        assert global_write(lab) == 201  # the application writes again, through the global entry point
        assert db_state(lab, "db-replica") == {"read_only": False, "replica": False}

        # The record is the one `respond` keeps, and it names the alerts. Triage and P0 went in one run: the
        # policy decided inside it (the playbook waited at its gate for the decision).
        assert runs(first) == ["investigate", "postmortem", "respond"]
        for part in ("incident.json", "timeline.jsonl", "postmortem.md", "report.html", "triage/findings.json"):
            assert (first.path / part).exists(), part
        gate = json.loads((first.path / "gate.json").read_text())
        assert gate["run"] is True and gate["severity"] == "P0" and "auto-execution policy" in gate["reason"]
        assert list((first.path / "outcomes").glob("*respond.json"))
        assert list((first.path / "investigation").iterdir())
        kinds = [e.get("kind") for e in first.timeline()]
        assert "auto-execution decided" in kinds and "automatic failover recorded" in kinds
        confirmation = next(e for e in first.timeline() if e.get("kind") == "confirmation given")
        assert "auto-execution policy" in confirmation["message"]
        postmortem = (first.path / "postmortem.md").read_text()
        assert "### How it started" in postmortem and "Alert DatabaseDown" in postmortem and "### Alerts" in postmortem

        # Every alert of the outage (and every re-send) went to that one incident, one timeline line each.
        alerts = first.data["alerts"]
        assert len(alerts) >= 5, sorted(alerts)
        firing_lines = [e for e in first.timeline() if e.get("kind") == "alert firing"]
        assert len(firing_lines) == len(alerts)
        assert len(watch.incidents()) == 1
        notified = [e for e in first.timeline() if e.get("task", "").startswith("Notify stakeholders")]
        assert len([e for e in notified if e.get("changed")]) == 1

        # Alertmanager restarts and forgets: it sends every firing alert again; still one incident. (Once the
        # outage is steady, DatabaseDown alone firing: a resolution during the restart would be lost, as it is
        # with a real Alertmanager that comes back without its notification log.)
        db_key = next(k for k, a in alerts.items() if a["alertname"] == "DatabaseDown")
        wait_for(
            lambda: [k for k, a in first.refresh().data["alerts"].items() if a["status"] == "firing"] == [db_key],
            180,
            "the outage to be steady: DatabaseDown the only alert firing",
        )
        alerts = first.data["alerts"]
        before = alerts[db_key]["deliveries"]
        restart_alertmanager_without_its_state(lab)
        wait_for(
            lambda: first.refresh().data["alerts"][db_key]["deliveries"] > before,
            120,
            "the restarted Alertmanager to send DatabaseDown again",
        )
        assert len(watch.incidents()) == 1

        # Healed: the resolved alerts come later, into the same incident's timeline.
        lab.heal()
        wait_for(
            lambda: all(a["status"] == "resolved" for a in first.refresh().data["alerts"].values()),
            180,
            "every alert of the incident to resolve",
        )
        resolved = [e for e in first.timeline() if e.get("kind") == "alert resolved"]
        assert len(resolved) == len(first.data["alerts"])

        # A second outage inside the block period: an incident that says why nothing failed over, and what to run.
        lab.break_fault("db-primary-down")
        second_id = wait_for(
            lambda: next((e["incident"] for e in watch.journal("opened") if e["incident"] != first.id), None),
            120,
            "a second incident",
        )
        waited = wait_for(lambda: watch.finished(second_id), 300, "the second response to stop and wait")
        assert waited["rc"] == 3, watch.text()
        second = Incident.open(watch.root, second_id)
        assert second.data["run"]["state"] == "waiting"
        command = f"incidentctl respond --incident {second_id} --yes"
        assert "block period" in second.data["waiting_for"] and command in second.data["waiting_for"]
        refusal = next(e for e in second.timeline() if e.get("kind") == "auto-execution refused")
        assert "automatic database failover ran" in refusal["message"] and command in refusal["message"]
        assert runs(second) == ["investigate", "page_plan", "respond"] and not promotions(second)
        assert json.loads((second.path / "gate.json").read_text())["run"] is False  # its run started no procedure
        assert pages_naming(lab, command), "the on-call was not paged with the plan"
        assert "block period" in incidentctl("show", second_id, env=watch.env).stdout

        # The person decides: the same incident continues and is mitigated.
        res = incidentctl("respond", "--incident", second_id, "--yes", "--json", env=watch.env, timeout=600)
        assert res.returncode in (0, 5), res.stdout[-2000:] + res.stderr[-2000:]
        assert json.loads(res.stdout)["status"] == "mitigated"
        assert global_write(lab) == 201

        # Stopped like a service: ansible-rulebook, its JVM and every response go with the watcher.
        tree = watch.stop()
        assert tree and not [pid for pid in tree if alive(pid)]
        assert watch.proc.returncode == 0


@pytest.fixture(scope="module")
def watch_lab(tmp_path_factory):
    lab = Lab.open(tmp_path_factory.mktemp("watch-lab"), lab_port_base() + 1000)
    lab.up()
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture
def shared_lab(watch_lab):
    """One lab for the tests below, which change nothing for good: no promotion, every fault healed, also after
    a test that failed half-way (a fault left active would fail the next test for no fault of its own)."""
    yield watch_lab
    if watch_lab.active_faults():
        watch_lab.heal()


def test_malformed_deliveries_get_a_4xx_or_a_logged_ignore_and_the_watcher_keeps_serving(shared_lab, tmp_path):
    with Watch(shared_lab, tmp_path / "incidents", token=TOKEN, route_lab=False) as watch:
        assert watch.post(b"not json", TOKEN)[0] == 400
        assert watch.post(alertmanager_delivery(make_alert("ServiceDown")), "wrong")[0] == 401
        bad_version = json.loads(alertmanager_delivery(make_alert("ServiceDown")))
        bad_version["version"] = "2"
        assert watch.post(json.dumps(bad_version).encode(), TOKEN)[0] == 400
        no_status = make_alert("ServiceDown")
        del no_status["status"]
        assert watch.post(alertmanager_delivery(no_status), TOKEN)[0] == 400
        assert watch.post(b"[" + b'"x",' * 400_000 + b'"x"]', TOKEN)[0] == 413
        # accepted by the source, then ignored with a reason: an unknown alert name, a resolution of nothing
        assert watch.post(alertmanager_delivery(make_alert("DiskFull", fingerprint="f1")), TOKEN)[0] == 202
        assert watch.post(alertmanager_delivery(make_alert("ServiceDown", "resolved", "f2")), TOKEN)[0] == 202
        ignored = wait_for(lambda: len(watch.journal("ignored")) >= 2 and watch.journal("ignored"), 60, "ignores")
        assert {e["why"] for e in ignored} == {"not a platform alert", "a resolved alert of no incident"}
        log = (watch.root / ".watch" / "rulebook.log").read_text()
        assert log.count("refused a delivery") == 5 and TOKEN not in log
        assert watch.incidents() == []
        assert watch.proc.poll() is None and watch.post(b"{}", TOKEN)[0] == 400  # still serving


def test_the_example_policy_opens_the_incident_pages_the_plan_and_runs_nothing_destructive(shared_lab, tmp_path):
    """The example inventory's (the common) auto_execution, on the lab: the lab inventory without its override."""
    lab = shared_lab
    inventory = tmp_path / "inventory"
    shutil.copytree(PROJECT_ROOT / "inventories" / "lab", inventory)  # symlinks copied as files
    (inventory / "group_vars" / "all" / "watch.yml").unlink()
    # the example inventory takes the common policy as it is: nobody acts without a person
    example = PROJECT_ROOT / "inventories" / "example" / "group_vars" / "all"
    assert (example / "runbook.yml").resolve() == (PROJECT_ROOT / "inventories/common/runbook.yml").resolve()
    assert not (example / "watch.yml").exists()
    common = yaml.safe_load((PROJECT_ROOT / "inventories/common/runbook.yml").read_text())["auto_execution"]
    assert autoexec.Policy.from_vars(common).rules == []
    with Watch(lab, tmp_path / "incidents", inventory=str(inventory)) as watch:
        lab.break_fault("db-primary-down")
        try:
            opened = wait_for(lambda: watch.journal("opened"), 120, "an incident")
            inc_id = opened[0]["incident"]
            waited = wait_for(lambda: watch.finished(inc_id), 300, "the response to wait for a person")
            assert waited["rc"] == 3, watch.text()
            inc = Incident.open(watch.root, inc_id)
            command = f"incidentctl respond --incident {inc_id} --yes"
            assert inc.data["run"]["state"] == "waiting" and command in inc.data["waiting_for"]
            assert "none of these findings" in inc.data["waiting_for"]
            # triage (its run stopped at the gate), the page, the evidence: nothing that changes the platform
            assert runs(inc) == ["investigate", "page_plan", "respond"]
            changes = [e for e in inc.timeline() if e.get("source") == "ansible" and e.get("changed")]
            assert [e["run"] for e in changes] == ["02-page_plan"]  # the page is the one thing it sent
            assert db_state(lab, "db-replica") == {"read_only": True, "replica": True}
            assert pages_naming(lab, command)
            assert len(watch.incidents()) == 1
        finally:
            lab.heal()


def test_replica_lag_broken_and_healed_five_times_in_a_minute_promotes_nothing(shared_lab, tmp_path):
    lab = shared_lab

    def journaled(status: str, seen: int, what: str) -> None:
        try:
            # ReplicationLag's own delivery: the resolution of another test's alert is not this cycle's (a CI run
            # took a HighErrorRate resolution for it, broke again while the lag still fired, and waited in vain)
            wait_for(
                lambda: [
                    e
                    for e in watch.journal()[seen:]
                    if e.get("status") == status and str(e.get("name", "")).startswith("ReplicationLag")
                ],
                60,
                what,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{alert_path(lab, watch, 'ReplicationLag')}") from None

    with Watch(lab, tmp_path / "incidents") as watch:
        try:
            for cycle in range(5):
                seen = len(watch.journal())
                lab.break_fault("replica-lag")
                journaled("firing", seen, f"a firing alert of cycle {cycle}")
                seen = len(watch.journal())
                lab.heal("replica-lag")
                # Prometheus saw it heal: the next break is a new firing, not the same one
                journaled("resolved", seen, f"the resolution of cycle {cycle}")
        finally:
            lab.heal()  # the tests after this one share the lab
        for started in watch.journal("started"):
            wait_for(lambda s=started: watch.finished(s["incident"]), 300, "every response to end")
        incidents = watch.incidents()
        assert incidents and not [p for inc in incidents for p in promotions(inc)]
        assert db_state(lab, "db-replica") == {"read_only": True, "replica": True}
        assert db_state(lab, "db-primary")["replica"] is False
        # every flap is in the record; the automatic procedures stay within the hourly bound
        fired = {e["alert"] for e in watch.journal("attached") + watch.journal("opened") if e.get("status") == "firing"}
        recorded = {key for inc in incidents for key in inc.refresh().data.get("alerts", {})}
        assert len(fired) >= 5 and fired <= recorded
        automatic = [
            h
            for h in autoexec.read_history(watch.root, str(PROJECT_ROOT / "inventories" / "lab"))
            if h["type"] == "procedure"
        ]
        assert len(automatic) <= 6  # the lab's max_per_hour


def test_a_pause_set_during_an_outage_keeps_the_alert_and_starts_nothing(shared_lab, tmp_path):
    lab = shared_lab
    with Watch(lab, tmp_path / "incidents") as watch:
        paused = incidentctl("watch", "pause", "--note", "hands off", env=watch.env)
        assert paused.returncode == 0 and "paused" in paused.stdout
        before = db_state(lab, "db-replica")
        lab.break_fault("db-primary-down")
        try:
            opened = wait_for(lambda: watch.journal("opened"), 120, "the alert to open its incident")
            inc = Incident.open(watch.root, opened[0]["incident"])
            assert inc.data["run"]["state"] == "waiting" and "hands off" in inc.data["waiting_for"]
            assert not (inc.path / "runs").exists() and not watch.journal("started")
            assert db_state(lab, "db-replica") == before
            assert "nothing started" in watch.text()
        finally:
            lab.heal()
            incidentctl("watch", "resume", env=watch.env)


def test_check_mode_plans_only_and_a_stopped_watcher_leaves_no_process(shared_lab, tmp_path):
    """watch --check: the response an alert starts is a check run. SIGTERM in the middle of it takes ansible-rulebook,
    its JVM, the response and its playbook down, and the incident says it was interrupted."""
    lab = shared_lab
    with Watch(lab, tmp_path / "incidents", args=["--check"]) as watch:
        before = db_state(lab, "db-replica")
        lab.break_fault("db-primary-down")
        try:
            opened = wait_for(lambda: watch.journal("opened"), 120, "the alert to open its incident")
            inc = Incident.open(watch.root, opened[0]["incident"])
            assert inc.data["check_mode"]
            wait_for(
                lambda: any(e.get("source") == "ansible" for e in inc.timeline()),
                120,
                "the check response to run its first task",
            )
            tree = watch.stop()
            assert watch.proc.returncode == 0
            assert len(tree) >= 3, tree  # the rulebook's shim and its process, the response, its playbook...
            assert not [pid for pid in tree if alive(pid)]
            assert inc.refresh().data["run"]["state"] == "interrupted"
            assert db_state(lab, "db-replica") == before and not promotions(inc)
        finally:
            lab.heal()
