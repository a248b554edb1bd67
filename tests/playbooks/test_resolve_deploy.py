"""resolve_deploy.yml: ArgoCD sync and terraform plan/apply run only when the inventory names them,
plan before apply, and only with confirmation. There is no ArgoCD or terraform here: stand-ins
with the same command lines (tests/playbooks/fake_tools/) record their argv."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from support import ansible_env, run_playbook

pytestmark = pytest.mark.lab

FAKES = Path(__file__).parent / "fake_tools"
TOOLS = {
    "argocd": {"server": "argocd.example.internal", "app": "springboot-app"},
    "terraform": {"dir": "", "var_file": "production.tfvars"},
}


@pytest.fixture
def tools(tmp_path):
    """PATH with the stand-ins first; their calls are appended to calls.jsonl."""
    bin_dir = tmp_path / "bin"
    shutil.copytree(FAKES, bin_dir)
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    tf_dir = tmp_path / "infra" / "terraform"
    tf_dir.mkdir(parents=True)
    # In front of the PATH incidentctl gives Ansible (the venv's tools first), not the shell's.
    env = {"PATH": f"{bin_dir}:{ansible_env()['PATH']}", "FAKE_TOOLS_LOG": str(calls)}

    def calls_made() -> list[list[str]]:
        return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []

    return {"env": env, "calls": calls_made, "tf_dir": str(tf_dir)}


def _inventory_tools(tools) -> dict:
    return {"argocd": TOOLS["argocd"], "terraform": {**TOOLS["terraform"], "dir": tools["tf_dir"]}}


def test_without_tools_in_the_inventory_both_steps_are_skipped_with_a_message(lab, tools, tmp_path):
    run = run_playbook(
        "resolve_deploy", lab, {"incident_dir": str(tmp_path), "confirm_destructive": True}, env=tools["env"]
    )
    assert run.ok, run.stdout[-3000:]
    assert tools["calls"]() == [], "neither CLI was called"
    assert run.result("ArgoCD is not in the inventory")["res"]["msg"].startswith(
        "skipped: the inventory names no ArgoCD"
    )
    assert run.result("Terraform is not in the inventory")["res"]["msg"].startswith(
        "skipped: the inventory names no terraform"
    )
    assert run.outcome["actions"] == [] and run.outcome["verified"] is True
    assert len(run.outcome["needs_human"]) == 2


def test_confirmed_it_diffs_then_syncs_and_applies_exactly_the_plan_it_made(lab, tools, tmp_path):
    extra = {"incident_dir": str(tmp_path), "confirm_destructive": True, **_inventory_tools(tools)}
    run = run_playbook("resolve_deploy", lab, extra, env={**tools["env"], "FAKE_TERRAFORM_PLAN_EXIT": "2"})
    assert run.ok, run.stdout[-3000:]
    plan = str(tmp_path / "resolve" / "incident.tfplan")
    chdir = f"-chdir={tools['tf_dir']}"
    assert [c["argv"] for c in tools["calls"]()] == [
        ["argocd", "app", "diff", "springboot-app", "--server", "argocd.example.internal"],
        ["argocd", "app", "sync", "springboot-app", "--server", "argocd.example.internal"],
        ["terraform", chdir, "init", "-input=false", "-no-color"],
        [
            "terraform",
            chdir,
            "plan",
            "-input=false",
            "-no-color",
            "-detailed-exitcode",
            f"-out={plan}",
            "-var-file=production.tfvars",
        ],
        ["terraform", chdir, "apply", "-input=false", "-no-color", plan],
    ]
    assert Path(plan).read_text() == "fake plan\n", "the applied plan is the one planned, kept in the record"
    assert "Plan: 1 to add" in (tmp_path / "resolve" / "terraform-plan.txt").read_text()
    assert run.outcome["actions"] == ["argocd app sync springboot-app", f"terraform apply {plan}"]
    assert sorted(run.changed()) == [
        "Apply exactly the reviewed plan (terraform apply <planfile>)",
        "Deploy via ArgoCD (argocd app sync)",
    ]


def test_unconfirmed_or_in_check_mode_only_the_diff_and_the_plan_run(lab, tools, tmp_path):
    extra = {"incident_dir": str(tmp_path), **_inventory_tools(tools)}
    env = {**tools["env"], "FAKE_TERRAFORM_PLAN_EXIT": "2"}
    runs = {}
    for check in (False, True):
        runs[check] = run = run_playbook("resolve_deploy", lab, extra, env=env, check=check)
        assert run.ok, run.stdout[-3000:]
        assert [c["argv"][1:3] for c in tools["calls"]()][-3:] == [
            ["app", "diff"],
            [f"-chdir={tools['tf_dir']}", "init"],
            [f"-chdir={tools['tf_dir']}", "plan"],
        ]
        assert not [c for c in tools["calls"]() if "sync" in c["argv"] or "apply" in c["argv"]]
        assert run.changed() == []
    needs = runs[False].outcome["needs_human"]
    assert any("confirm to sync" in n for n in needs) and any("confirm to apply" in n for n in needs), needs


def test_nothing_to_sync_and_an_empty_plan_change_nothing(lab, tools, tmp_path):
    extra = {"incident_dir": str(tmp_path), "confirm_destructive": True, **_inventory_tools(tools)}
    env = {**tools["env"], "FAKE_TERRAFORM_PLAN_EXIT": "0", "FAKE_ARGOCD_DIFF_EXIT": "0"}
    run = run_playbook("resolve_deploy", lab, extra, env=env)
    assert run.ok, run.stdout[-3000:]
    assert [c["argv"][2] for c in tools["calls"]()] == ["diff", "init", "plan"]
    assert run.changed() == [] and run.outcome["actions"] == []


def test_a_failing_plan_stops_before_anything_is_applied(lab, tools, tmp_path):
    extra = {"incident_dir": str(tmp_path), "confirm_destructive": True, **_inventory_tools(tools)}
    run = run_playbook("resolve_deploy", lab, extra, env={**tools["env"], "FAKE_TERRAFORM_PLAN_EXIT": "1"})
    assert not run.ok
    assert run.result("Plan the infrastructure changes")["status"] == "failed"
    assert not [c for c in tools["calls"]() if "apply" in c["argv"]]
