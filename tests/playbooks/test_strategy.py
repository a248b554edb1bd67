"""The tests run Ansible as incidentctl does: one environment builder, the same strategy (mitogen's)."""

from __future__ import annotations

import os

from incidentctl.project import mitogen_env
from support import run_module


def test_mitogen_is_there_to_be_used():
    # A declared dependency (pyproject.toml): without it every test below would prove the default strategy.
    if not os.environ.get("INCIDENTCTL_NO_MITOGEN"):
        assert mitogen_env().get("ANSIBLE_STRATEGY") == "incident_mitogen_linear"


def test_module_tasks_run_under_the_strategy_incidentctl_uses():
    """run_module/run_playbook take incidentctl's environment (incidentctl.project.ansible_env)."""
    res = run_module("ansible.builtin.debug", {"msg": "{{ lookup('ansible.builtin.config', 'DEFAULT_STRATEGY') }}"})
    assert not res["failed"], res
    assert res["msg"] == mitogen_env().get("ANSIBLE_STRATEGY", "linear")
