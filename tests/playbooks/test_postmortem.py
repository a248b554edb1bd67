"""postmortem.yml renders the runbook's template from an incident record."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from incidentctl.record import Incident
from support import PROJECT_ROOT, ansible_env


def test_postmortem_fills_the_facts_and_keeps_the_human_sections(tmp_path):
    inc = Incident.create(tmp_path, inventory="inventories/lab")
    t0 = inc.data["opened_at"]
    inc.update(
        severity="P0",
        severity_source="policy",
        reasons=["the primary database db-primary is unreachable"],
        services=["user-service", "order-service"],
        response_minutes=15,
        first_action_at=t0 + 60,
        mitigated_at=t0 + 300,
        status="mitigated",
    )
    inc.append(
        {
            "ts": t0 + 60,
            "source": "ansible",
            "run": "02-p0_critical",
            "task": "Promote db-replica",
            "host": "controller",
            "module": "incident.response.mysql_promote",
            "outcome": "ok",
            "changed": True,
            "failed": False,
            "ignored": False,
            "duration": 1.2,
            "summary": "db-replica promoted",
        }
    )
    inc.log("procedure finished", "p0_critical succeeded")
    res = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            "inventories/lab",
            "playbooks/postmortem.yml",
            "-e",
            json.dumps({"incident_dir": str(inc.path)}),
        ],
        cwd=PROJECT_ROOT,
        env={**ansible_env(), "INCIDENTLAB_DIR": str(tmp_path / "no-lab")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    text = (inc.path / "postmortem.md").read_text()
    assert text.startswith(f"# Postmortem: {inc.id}")
    assert "- **Severity**: P0 (policy)" in text
    assert "- **Duration**: 5.0 min" in text
    assert "user-service, order-service" in text
    assert "| time to mitigation | 5.0 | met |" in text
    assert "Promote db-replica (controller): db-replica promoted" in text
    assert "[Describe root cause]" in text and "[Document lessons learned]" in text
    assert time.strftime("%Y-%m-%d", time.gmtime(t0)) in text
