"""incident_gate: the playbook waits for incidentctl's decision, takes it whole, and fails closed."""

from __future__ import annotations

import json
import threading
import time

from support import run_module


def test_takes_the_decision_written_after_the_task_started(tmp_path):
    """Written after the run started (the task may find it at once, or look again until it is there)."""
    gate = tmp_path / "gate.json"
    decision = {"severity": "P0", "run": True, "reason": "database_down (P0)"}

    def write_later():
        time.sleep(1.0)  # the writer of the scenario, not a wait for a result
        tmp = tmp_path / ".gate.json.tmp"
        tmp.write_text(json.dumps(decision))
        tmp.replace(gate)

    writer = threading.Thread(target=write_later)
    writer.start()
    res = run_module("incident_gate", {"path": str(gate), "timeout": 30})
    writer.join()
    assert not res["failed"], res
    assert res["decision"] == decision and res["waited"] >= 0 and "decided after" in res["msg"]


def test_no_decision_in_time_fails_closed(tmp_path):
    res = run_module("incident_gate", {"path": str(tmp_path / "gate.json"), "timeout": 0.3})
    assert res["failed"] and "no decision" in res["msg"] and "does not run" in res["msg"]


def test_a_decision_without_a_boolean_run_fails(tmp_path):
    gate = tmp_path / "gate.json"
    gate.write_text(json.dumps({"severity": "P0", "run": "yes"}))
    res = run_module("incident_gate", {"path": str(gate)})
    assert res["failed"] and "boolean 'run'" in res["msg"]
    gate.write_text("{not json")
    res = run_module("incident_gate", {"path": str(gate)})
    assert res["failed"] and "not JSON" in res["msg"]


def test_a_no_is_a_decision_too(tmp_path):
    gate = tmp_path / "gate.json"
    gate.write_text(json.dumps({"severity": "P0", "run": False, "reason": "paused"}))
    res = run_module("incident_gate", {"path": str(gate)}, check=True)
    assert not res["failed"] and res["decision"]["run"] is False and "no procedure" in res["msg"]
