"""incidentctl watch's side of the rulebook's feedback channel (Watcher.receive): an action the watcher cannot
route is kept whole in its journal, and the next action is still handled (the rulebook never sends one again)."""

from __future__ import annotations

import json

from incidentctl import watch
from incidentctl.project import Project
from incidentctl.record import Incident


def action(alertname: str, fingerprint: str) -> str:
    alert = {
        "status": "firing",
        "alertname": alertname,
        "labels": {"alertname": alertname, "db": "db-primary"},
        "annotations": {"summary": "from the test"},
        "startsAt": "2026-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    }
    return json.dumps(
        {"type": "Action", "rule": watch.RULE_HAND_OVER, "matching_events": {"m_0": {"alert": alert, "delivery": {}}}}
    )


def journal(root) -> list[dict]:
    return [json.loads(line) for line in (root / ".watch" / "journal.jsonl").read_text().splitlines()]


def test_an_action_that_cannot_be_routed_is_journaled_whole_and_the_next_one_is_handled(tmp_path):
    root = tmp_path / "incidents"
    (root / ".watch").mkdir(parents=True)
    said: list[str] = []
    settings = watch.Settings(inventory=tmp_path / "inventory", root=root)
    watcher = watch.Watcher(Project.locate(), settings, said.append)
    watcher.stopping.set()  # as while it stops: it routes what arrives and starts no response

    (root / ".platform-locks").write_text("")  # a broken state directory: the alert lock cannot be taken
    first = action("DatabaseDown", "f1")
    watcher.receive(first)
    error = [e for e in journal(root) if e["outcome"] == "error"]
    assert len(error) == 1 and "FileExistsError" in error[0]["why"]
    assert error[0]["message"] == json.loads(first)  # whole: what `respond --from-alert` needs is there
    assert any("handling a rule action failed" in s and "Traceback" in s for s in said)

    (root / ".platform-locks").unlink()
    watcher.receive("not json")  # the channel's noise is skipped
    watcher.receive(action("DatabaseDown", "f2"))
    opened = [e for e in journal(root) if e["outcome"] == "opened"]
    assert len(opened) == 1 and opened[0]["status"] == "firing"
    assert [i.id for i in Incident.all(root)] == [opened[0]["incident"]]
