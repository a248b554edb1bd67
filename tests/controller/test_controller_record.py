"""The controller's machinery on test-double playbooks: the incident record, gates, exit codes, secrets.

The playbooks in tests/controller/project only publish what the real procedures would; the
controller, ansible-runner and Ansible are real.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from incidentctl.record import Incident
from incidentctl.scrub import REDACTED
from support import incidentctl, secret_leaks, wait_for

PROJECT = Path(__file__).parent / "project"
INVENTORY = PROJECT / "inventories" / "fake"


@pytest.fixture
def ctl(tmp_path):
    """incidentctl against the test-double project, with its own incidents directory."""
    incidents = tmp_path / "incidents"
    env = {**os.environ, "INCIDENTCTL_PROJECT_DIR": str(PROJECT), "INCIDENTCTL_INCIDENTS_DIR": str(incidents)}

    def run(*args: str, extra_env: dict | None = None, **kw):
        return incidentctl(*args, env={**env, **(extra_env or {})}, **kw)

    run.incidents = incidents
    run.env = env
    return run


def _only_incident(root: Path) -> Incident:
    items = Incident.all(root)
    assert len(items) == 1, [i.id for i in items]
    return items[0]


def _one_line_error(res, code: int, needle: str, alone: bool = True) -> None:
    """One `error:` line with the reason; ``alone`` when nothing ran before the error (no progress output)."""
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert [ln for ln in lines if ln.startswith("error:")] == [lines[-1]], res.stderr
    assert needle in lines[-1]
    if alone:
        assert len(lines) == 1, res.stderr


def test_respond_runs_the_policy_procedure_and_keeps_a_complete_record(ctl):
    res = ctl("respond", "-i", str(INVENTORY), "--yes", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["severity"] == "P0" and doc["status"] == "mitigated" and doc["verified"] is True
    inc = _only_incident(ctl.incidents)
    assert inc.data["severity_source"] == "policy"
    assert inc.data["reasons"] == ["fake reason for P0"]
    kinds = [e["kind"] for e in inc.timeline() if e["source"] == "controller"]
    for kind in (
        "opened",
        "triage finished",
        "severity decided",
        "confirmation given",
        "procedure started",
        "mitigated",
    ):
        assert kind in kinds
    tasks = [e for e in inc.timeline() if e["source"] == "ansible"]
    assert {"Publish the classification", "Change the platform"} <= {t["task"] for t in tasks}
    change = next(t for t in tasks if t["task"] == "Change the platform")
    assert change["changed"] and change["module"] == "ansible.builtin.command" and change["host"] == "controller"
    assert (inc.path / "triage" / "findings.json").exists()  # written by triage.yml, its owner
    assert (inc.path / "postmortem.md").read_text().startswith(f"# Postmortem {inc.id}")
    # Confirmed up front (--yes): triage and the procedure in one Ansible run, the decision recorded within it,
    # after triage published and before the procedure's first task.
    runs = sorted(p.name for p in (inc.path / "runs").iterdir())
    assert runs == ["01-respond", "02-investigate", "03-postmortem"]
    assert list((inc.path / "runs" / "01-respond").glob("artifacts/*/job_events/*.json"))
    order = [e.get("kind") or e.get("task") for e in inc.timeline()]
    assert order.index("Publish the classification") < order.index("severity decided")
    assert order.index("severity decided") < order.index("procedure started") < order.index("Inspect")
    assert json.loads((inc.path / "outcomes" / "01-respond.json").read_text())["verified"] is True
    assert doc["evidence"] == str(inc.path / "investigation")
    assert (inc.path / "investigation" / "app.log").read_text() == "a log line\n"
    assert "evidence collected" in kinds
    times = doc["response_times"]
    assert times["response_target_minutes"] == 15 and times["mitigation_within_target"] is True


def test_evidence_that_cannot_be_collected_is_noted_and_the_response_still_counts(ctl, tmp_path):
    inv = tmp_path / "no-evidence.yml"
    inv.write_text((INVENTORY / "hosts.yml").read_text() + "    fake_investigate_fails: true\n")
    res = ctl("respond", "-i", str(inv), "--yes", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["status"] == "mitigated" and doc["evidence"] is None
    inc = _only_incident(ctl.incidents)
    noted = next(e for e in inc.timeline() if e.get("kind") == "evidence incomplete")
    assert "02-investigate" in noted["message"]
    assert (inc.path / "postmortem.md").exists()


def test_without_yes_and_without_a_terminal_destructive_steps_are_refused(ctl):
    res = ctl("respond", "-i", str(INVENTORY))
    _one_line_error(res, 3, "re-run with --yes", alone=False)
    inc = _only_incident(ctl.incidents)
    assert inc.data["status"] == "open"
    assert any(e.get("kind") == "confirmation refused" for e in inc.timeline())
    assert not any("p0_critical" in p.name for p in (inc.path / "runs").iterdir())


def test_check_mode_runs_the_procedure_without_confirmation_and_mitigates_nothing(ctl):
    res = ctl("respond", "-i", str(INVENTORY), "--check", "--json")
    assert res.returncode == 0, res.stderr
    inc = _only_incident(ctl.incidents)
    assert inc.data["check_mode"] is True and inc.data["status"] == "open"
    change = next(e for e in inc.timeline() if e.get("task") == "Change the platform")
    assert change["outcome"] == "skipped"  # the command module does not run in check mode


def test_operator_override_of_the_severity_is_recorded(ctl):
    res = ctl("respond", "-i", str(INVENTORY), "--severity", "p2", "--yes", "--json")
    assert res.returncode == 0, res.stderr
    inc = _only_incident(ctl.incidents)
    assert inc.data["severity"] == "P2" and inc.data["severity_source"] == "operator"
    started = next(e for e in inc.timeline() if e.get("kind") == "procedure started")
    assert started["message"] == "p2_medium started"
    assert any(e.get("run") == "01-respond" and e.get("play") == "p2_medium (test double)" for e in inc.timeline())


def test_failed_verification_exits_1_and_leaves_the_incident_open(ctl, tmp_path):
    inv = tmp_path / "unverified.yml"
    inv.write_text((INVENTORY / "hosts.yml").read_text().replace("fake_verified: true", "fake_verified: false"))
    res = ctl("respond", "-i", str(inv), "--yes")
    assert res.returncode == 1
    inc = _only_incident(ctl.incidents)
    assert inc.data["status"] == "open" and inc.data["mitigated_at"] is None


def test_no_incident_closes_the_record_and_changes_nothing(ctl, tmp_path):
    inv = tmp_path / "healthy.yml"
    inv.write_text((INVENTORY / "hosts.yml").read_text().replace("fake_severity: P0", "fake_severity: null"))
    res = ctl("respond", "-i", str(inv), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["severity"] is None
    inc = _only_incident(ctl.incidents)
    assert inc.data["status"] == "closed"
    assert [p.name for p in (inc.path / "runs").iterdir()] == ["01-triage"]


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["respond", "--severity", "P7"], 2, "unknown severity 'P7'"),
        (["respond", "-i", "/nonexistent/inventory"], 2, "inventory /nonexistent/inventory does not exist"),
        (["show", "INC-nope"], 2, "'INC-nope' is not an incident id"),
        (["show", "INC-20260101-000000-abcd"], 2, "no incident 'INC-20260101-000000-abcd'"),
        (["show", "INC-" + "x" * 5000], 2, "is not an incident id"),
        (["show", "/tmp"], 2, "'/tmp' is not an incident id"),
        (["run", "slow", "--incident", "../bad/evil"], 2, "'../bad/evil' is not an incident id"),
        (["respond", "--incident", "../../etc"], 2, "is not an incident id"),
        (["respond", "--incident", "INC-20260101-000000-abcd", "--new"], 2, "--incident and --new exclude"),
        (["respond", "-i", ""], 2, "the inventory is empty"),
        (["respond", "-i", str(INVENTORY), "--service", "no-such-service"], 2, "unknown service(s) 'no-such-service'"),
        (["run", "no-such-playbook"], 2, "no playbook 'no-such-playbook'"),
        (["run", "../../tests/controller/project/playbooks/slow"], 2, "no playbook '../../tests"),
        (["run", "slow", "-e", "novalue"], 2, "is not key=value"),
        (["run", "slow", "-i", str(INVENTORY), "-e", "bad key=1"], 2, "is not a variable name"),
        (["run", "slow", "-i", str(INVENTORY), "-e", "incident_dir=/tmp"], 2, "is set by incidentctl itself"),
    ],
)
def test_bad_input_is_one_clear_line(ctl, args, code, needle, tmp_path):
    _one_line_error(ctl(*args), code, needle)
    assert Incident.all(ctl.incidents) == []  # nothing half-written
    assert not (tmp_path / "bad").exists() and not (ctl.incidents.parent / "bad").exists()  # nothing outside
    assert not ctl.incidents.exists() or [p.name for p in ctl.incidents.iterdir() if not p.name.startswith(".")] == []


def test_an_unknown_service_is_refused_before_anyone_is_notified(ctl, tmp_path):
    """Input is checked before side effects: no incident, no triage, no notification."""
    marker = tmp_path / "notified"
    res = ctl(
        "respond",
        "-i",
        str(INVENTORY),
        "--severity",
        "P2",
        "--service",
        "no-such-service",
        "--yes",
        extra_env={"FAKE_NOTIFY_MARKER": str(marker)},
    )
    _one_line_error(res, 2, "unknown service(s) 'no-such-service'")
    assert not marker.exists() and Incident.all(ctl.incidents) == []


def test_a_planted_directory_is_not_an_incident(ctl):
    """A directory named like an incident whose incident.json lacks what a record has: bad input, not a traceback."""
    planted = ctl.incidents / "INC-20260101-000000-beef"
    planted.mkdir(parents=True)
    (planted / "incident.json").write_text(json.dumps({"id": "INC-20260101-000000-beef"}))
    _one_line_error(ctl("show", planted.name), 2, "invalid incident.json")
    assert json.loads(ctl("incidents", "--json").stdout)["incidents"] == []


def test_malformed_inventory_is_bad_input(ctl, tmp_path):
    bad = tmp_path / "broken.yml"
    bad.write_text("all: [this is: not, an inventory\n")
    _one_line_error(ctl("respond", "-i", str(bad)), 2, "cannot be parsed")
    assert Incident.all(ctl.incidents) == []


def test_unwritable_incidents_directory_is_bad_input(ctl, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = ctl("respond", "-i", str(INVENTORY), extra_env={"INCIDENTCTL_INCIDENTS_DIR": str(blocker / "incidents")})
    _one_line_error(res, 2, "not writable")


def test_missing_ansible_playbook_is_an_environment_error(ctl, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    res = ctl(
        "respond", "-i", str(INVENTORY), extra_env={"INCIDENTCTL_ANSIBLE_BIN": str(empty), "PATH": "/nonexistent"}
    )
    _one_line_error(res, 4, "ansible-playbook is not installed")


def test_a_second_controller_on_the_same_incident_is_refused(ctl):
    ctl.incidents.mkdir(parents=True)
    inc = Incident.create(ctl.incidents, inventory=str(INVENTORY))
    with inc.locked():
        res = ctl("run", "p3_low", "-i", str(INVENTORY), "--incident", inc.id, "--yes")
    _one_line_error(res, 3, f"incident {inc.id} is being worked on")


def test_a_killed_controller_leaves_a_readable_record(ctl):
    proc = subprocess.Popen(
        [sys.executable, "-m", "incidentctl", "run", "slow", "-i", str(INVENTORY)],
        env=ctl.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    inc = wait_for(lambda: Incident.all(ctl.incidents) and Incident.all(ctl.incidents)[0], 300, "incident opened")
    wait_for(lambda: any(e.get("task") == "First step" for e in inc.timeline()), 300, "first task in the timeline")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    res = ctl("show", inc.id, "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["incident"]["status"] == "open"
    assert any(e.get("task") == "First step" for e in doc["timeline"])


def test_no_secret_from_the_environment_reaches_the_record(ctl):
    secret = "s3cr3t-Value-0042"
    res = ctl("run", "leaky", "-i", str(INVENTORY), extra_env={"FAKE_DB_PASSWORD": secret})
    assert res.returncode == 0, res.stderr
    inc = _only_incident(ctl.incidents)
    assert secret_leaks(inc.path, [secret]) == []
    assert any("password is ********" in e.get("summary", "") for e in inc.timeline())


def test_an_extra_variable_named_like_a_secret_is_kept_out_of_the_record(ctl):
    """ansible-runner keeps extra variables in the run's env/extravars (part of the record): a variable
    named like a secret is scrubbed there and wherever it shows."""
    secret = "xv-S3cret-0043"
    res = ctl("run", "leaky", "-i", str(INVENTORY), "-e", f"fake_db_password={secret}")
    assert res.returncode == 0, res.stderr
    inc = _only_incident(ctl.incidents)
    assert secret_leaks(inc.path, [secret]) == []
    extravars = json.loads((inc.path / "runs" / "01-leaky" / "env" / "extravars").read_text())
    assert extravars["fake_db_password"] == REDACTED and extravars["incident_id"] == inc.id
    assert any("password is ********" in e.get("summary", "") for e in inc.timeline())


def test_incidents_show_timeline_and_close(ctl):
    assert ctl("respond", "-i", str(INVENTORY), "--yes").returncode == 0
    listed = json.loads(ctl("incidents", "--json").stdout)["incidents"]
    assert len(listed) == 1 and listed[0]["severity"] == "P0" and listed[0]["status"] == "mitigated"
    inc_id = listed[0]["id"]
    shown = ctl("show", inc_id)
    assert shown.returncode == 0 and "time to mitigation" in shown.stdout and "within target" in shown.stdout
    timeline = json.loads(ctl("timeline", inc_id, "--json").stdout)["timeline"]
    assert timeline[0]["kind"] == "opened"
    assert ctl("close", inc_id, "--note", "root cause fixed").returncode == 0
    closed = Incident.open(ctl.incidents, inc_id)
    assert closed.data["status"] == "closed" and closed.timeline()[-1]["message"] == "root cause fixed"


@pytest.mark.parametrize(("answer", "code"), [("n", 3), ("y", 0)])
def test_on_a_terminal_the_operator_is_asked_before_destructive_steps(ctl, answer, code):
    import pexpect

    child = pexpect.spawn(
        sys.executable,
        ["-m", "incidentctl", "respond", "-i", str(INVENTORY)],
        env=ctl.env,
        encoding="utf-8",
        timeout=120,
    )
    child.expect("Change the platform")  # the plan names the destructive steps before the question
    child.expect(r"Run them\? \[y/N\]")
    child.sendline(answer)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == code, child.before
    inc = _only_incident(ctl.incidents)
    kinds = [e.get("kind") for e in inc.timeline()]
    assert ("confirmation given" if answer == "y" else "confirmation refused") in kinds
    assert inc.data["status"] == ("mitigated" if answer == "y" else "open")


# -- resilience: the controller may die, be stopped, or meet another controller ------------------


def _start(ctl, *args: str, extra_env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "incidentctl", *args],
        env={**ctl.env, **(extra_env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _holding(ctl, tmp_path):
    """A fake P0 that holds (after its change) until the test removes the hold file."""
    hold = tmp_path / "hold"
    hold.write_text("")
    return hold, {"FAKE_HOLD_FILE": str(hold)}


def _wait_for_task(ctl, task: str) -> Incident:
    # generous ceilings: on a loaded machine an Ansible start can take tens of seconds
    inc = wait_for(lambda: Incident.all(ctl.incidents) and Incident.all(ctl.incidents)[0], 300, "incident opened")
    wait_for(lambda: any(e.get("task") == task for e in inc.timeline()), 300, f"{task!r} in the timeline")
    return inc


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_a_killed_controller_takes_its_playbook_with_it(ctl, tmp_path):
    """SIGKILL of incidentctl alone (not its process group): ansible-playbook, its workers and the
    module it runs stop within seconds, and the incident is marked interrupted by the next command."""
    from incidentctl.supervise import descendants

    _hold, env = _holding(ctl, tmp_path)
    proc = _start(ctl, "respond", "-i", str(INVENTORY), "--yes", extra_env=env)
    inc = _wait_for_task(ctl, "Change the platform")
    tree = wait_for(lambda: descendants(proc.pid) or None, 120, "the playbook's processes")
    proc.kill()
    proc.wait()
    wait_for(lambda: not [p for p in tree if _alive(p)], 60, "every process of the playbook to be gone")
    shown = json.loads(ctl("show", inc.id, "--json").stdout)
    assert shown["incident"]["run"]["state"] == "interrupted"
    assert "Change the platform" in shown["incident"]["run"]["last_step"]
    assert [e["kind"] for e in shown["timeline"] if e.get("kind") == "interrupted"] == ["interrupted"]
    assert not any(e.get("task") == "Publish the outcome" for e in shown["timeline"])  # nothing ran on
    listed = json.loads(ctl("incidents", "--json").stdout)["incidents"]
    assert "interrupted" in listed[0]["activity"] and f"--incident {inc.id}" in listed[0]["activity"]


def test_sigterm_stops_the_run_within_seconds_and_says_so(ctl, tmp_path):
    _hold, env = _holding(ctl, tmp_path)
    proc = _start(ctl, "respond", "-i", str(INVENTORY), "--yes", extra_env=env)
    inc = _wait_for_task(ctl, "Change the platform")
    proc.terminate()
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    inc.refresh()
    assert inc.data["run"]["state"] == "interrupted" and inc.data["status"] == "open"


def test_an_interrupted_incident_is_resumed_not_opened_again(ctl, tmp_path):
    """After a kill, a plain respond joins the open incident (one incident per problem), takes the
    stale lock over with a timeline line, triages afresh, runs the procedure and mitigates it."""
    hold, env = _holding(ctl, tmp_path)
    proc = _start(ctl, "respond", "-i", str(INVENTORY), "--yes", extra_env=env)
    inc = _wait_for_task(ctl, "Change the platform")
    proc.kill()
    proc.wait()
    hold.unlink()
    res = ctl("respond", "-i", str(INVENTORY), "--yes", "--json")
    assert res.returncode == 0, res.stderr
    assert f"incident {inc.id} joined" in res.stderr
    assert [i.id for i in Incident.all(ctl.incidents)] == [inc.id]
    inc.refresh()
    assert inc.data["status"] == "mitigated" and inc.data["run"]["state"] == "finished"
    kinds = [e.get("kind") for e in inc.timeline()]
    assert kinds.count("opened") == 1 and "interrupted" in kinds and "lock taken over" in kinds
    assert "joined" in kinds and kinds.count("triage started") == 2
    runs = sorted(p.name for p in (inc.path / "runs").iterdir())
    assert [r.split("-", 1)[1] for r in runs] == ["respond", "respond", "investigate", "postmortem"]

    # --incident continues it explicitly; --new opens another one.
    again = ctl("respond", "--incident", inc.id, "--yes", "--json")
    assert again.returncode == 0 and f"incident {inc.id} resumed" in again.stderr, again.stderr
    other = ctl("respond", "-i", str(INVENTORY), "--yes", "--new", "--json")
    assert other.returncode == 0 and json.loads(other.stdout)["incident"] != inc.id


def test_two_responses_at_once_one_acts_the_other_is_refused(ctl, tmp_path):
    hold, env = _holding(ctl, tmp_path)
    first = _start(ctl, "respond", "-i", str(INVENTORY), "--yes", extra_env=env)
    inc = _wait_for_task(ctl, "Change the platform")
    for args in (["respond", "-i", str(INVENTORY), "--yes"], ["respond", "-i", str(INVENTORY), "--yes", "--new"]):
        second = ctl(*args)
        _one_line_error(second, 3, "a procedure is already running on this platform", alone=False)
        assert inc.id in second.stderr.strip().splitlines()[-1]
    hold.unlink()
    first.communicate(timeout=120)
    assert first.returncode == 0
    assert [i.id for i in Incident.all(ctl.incidents)] == [inc.id]
    procedures = [e for e in inc.timeline() if e.get("kind") == "procedure started"]
    assert len(procedures) == 1


def test_a_read_only_run_works_beside_a_running_response(ctl, tmp_path):
    hold, env = _holding(ctl, tmp_path)
    first = _start(ctl, "respond", "-i", str(INVENTORY), "--yes", extra_env=env)
    inc = _wait_for_task(ctl, "Change the platform")
    res = ctl("run", "investigate", "-i", str(INVENTORY), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["incident"] == inc.id  # joined, not a second incident
    hold.unlink()
    first.communicate(timeout=120)
    assert first.returncode == 0
    inc.refresh()
    names = [r["name"] for r in inc.data["runs"]]
    assert len(names) == len(set(names)) and sum(n.endswith("-investigate") for n in names) == 2


def test_without_a_person_to_confirm_the_incident_waits_for_one(ctl):
    res = ctl("respond", "-i", str(INVENTORY))
    assert res.returncode == 3
    inc = _only_incident(ctl.incidents)
    assert inc.data["run"]["state"] == "waiting"
    assert f"respond --incident {inc.id} --yes" in inc.data["waiting_for"]
    listed = json.loads(ctl("incidents", "--json").stdout)["incidents"]
    assert listed[0]["activity"].startswith("waits for a person")
    done = ctl("respond", "--incident", inc.id, "--yes")
    assert done.returncode == 0, done.stderr
    assert inc.refresh().data["status"] == "mitigated"


def test_gaps_make_a_documented_exit_code_and_are_listed(ctl):
    res = ctl(
        "respond", "-i", str(INVENTORY), "--yes", "--json", extra_env={"FAKE_GAPS": "notification to slack failed"}
    )
    assert res.returncode == 5, res.stderr
    doc = json.loads(res.stdout)
    assert doc["outcome"] == "mitigated with gaps" and doc["gaps"] == ["notification to slack failed"]
    assert doc["status"] == "mitigated"
    plain = ctl("show", doc["incident"])
    assert "gap: notification to slack failed" in plain.stdout


def test_an_outcome_that_breaks_its_contract_is_named_not_read_wrong(ctl):
    """What a playbook publishes is checked against playbooks/contracts/ where incidentctl reads it."""
    res = ctl("run", "bad_outcome", "-i", str(INVENTORY))
    _one_line_error(res, 1, "does not fit the outcome contract (playbooks/contracts/outcome.schema.json)", alone=False)
    assert "'yes, probably' is not of type 'boolean'" in res.stderr or "is a required property" in res.stderr
