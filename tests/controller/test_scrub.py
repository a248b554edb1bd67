"""The scrubber is a platform-agnostic safety net: it knows only what the controller can know is secret."""

from __future__ import annotations

import json

from incidentctl.scrub import REDACTED, Scrubber, secret_named_values, secret_values
from incidentlab.config import LabConfig


def test_the_scrubber_knows_nothing_of_the_lab(tmp_path, monkeypatch):
    """A lab's passwords are not scrubbed: the end-to-end secrets test proves no_log, not the scrubber."""
    cfg = LabConfig(tmp_path / "lab")
    cfg.ensure_dir()
    lab_secrets = cfg.load_secrets(create=True)
    monkeypatch.setenv("INCIDENTLAB_DIR", str(cfg.lab_dir))
    monkeypatch.delenv("INCIDENTCTL_SECRET_FILES", raising=False)
    assert not set(lab_secrets.values()) & secret_values()


def test_secret_named_values_at_any_depth():
    extravars = {"incident_id": "INC-1", "db": {"password": "pw-123456", "host": "db1"}, "api_tokens": ["t-abcdef"]}
    assert sorted(secret_named_values(extravars)) == ["pw-123456", "t-abcdef"]


def test_a_run_loses_its_secret_env_extravars_and_listed_files(tmp_path, monkeypatch):
    listed = tmp_path / "vault.yml"
    listed.write_text("db:\n  admin: from-a-file-1234\n")
    monkeypatch.setenv("INCIDENTCTL_SECRET_FILES", str(listed))
    monkeypatch.setenv("FAKE_API_TOKEN", "from-the-env-5678")
    run = tmp_path / "runs" / "01-x"
    (run / "artifacts" / "artifacts").mkdir(parents=True)
    command = {
        "command": ["ansible-playbook", "-e", json.dumps({"incident_id": "INC-1", "db_password": "extra-var-9012"})],
        "env": {"PATH": "/usr/bin", "FAKE_API_TOKEN": "from-the-env-5678", "OTHER": "x"},
    }
    (run / "artifacts" / "artifacts" / "command").write_text(json.dumps(command))
    (run / "env").mkdir()
    (run / "env" / "extravars").write_text(json.dumps({"incident_id": "INC-1", "db": {"password": "nested-3456"}}))
    stdout = run / "artifacts" / "artifacts" / "stdout"
    stdout.write_text("from-a-file-1234 from-the-env-5678 extra-var-9012 nested-3456 INC-1\n")

    scrubber = Scrubber(run)
    scrubber.scrub_run_dir()

    assert stdout.read_text() == f"{REDACTED} {REDACTED} {REDACTED} {REDACTED} INC-1\n"
    assert json.loads((run / "env" / "extravars").read_text()) == {"incident_id": "INC-1", "db": {"password": REDACTED}}
    cleaned = json.loads((run / "artifacts" / "artifacts" / "command").read_text())
    assert cleaned["env"] == {"PATH": "/usr/bin", "FAKE_API_TOKEN": REDACTED, "OTHER": REDACTED}
    assert json.loads(cleaned["command"][2]) == {"incident_id": "INC-1", "db_password": REDACTED}
    assert scrubber.scrub_text("summary: extra-var-9012") == f"summary: {REDACTED}"
