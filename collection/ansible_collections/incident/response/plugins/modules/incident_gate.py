#!/usr/bin/python
# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: incident_gate
short_description: Wait for the decision incidentctl takes on triage's findings, within the same run
version_added: 0.1.0
description:
  - The gate between triage and the procedure when both run in one Ansible run (C(respond.yml)) and the
    confirmation of the destructive steps is decided outside the playbook, by incidentctl's auto-execution
    policy (an alert started the response). Triage publishes its findings, incidentctl decides (the policy, its
    block period and hourly bound, the pause switch) and writes its decision to O(path); this task waits for it.
  - 'The decision is a JSON object such as C({"severity": "P0", "run": true, "reason": "..."}). With C(run=false)
    the playbook runs no procedure (the incident waits for a person).'
  - Fails closed. No decision within O(timeout), or a file that is not a JSON object with a boolean C(run),
    fails the task, so nothing destructive runs on a guess.
  - Reads only; the same in check mode.
author:
  - Incident Response Engineering (@incident-response)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Waits and reads the same way.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  path:
    description: The file incidentctl writes its decision to (in the incident's directory).
    type: path
    required: true
  timeout:
    description: Seconds to wait for the decision before failing.
    type: float
    default: 60
  interval:
    description: Seconds between two looks at O(path).
    type: float
    default: 0.02
seealso:
  - module: incident.response.triage_probe
"""

EXAMPLES = r"""
# playbooks/chosen_procedure.yml: incidentctl passes incident_gate_file when its policy decides
- name: Wait for incidentctl's decision on triage's findings
  incident.response.incident_gate:
    path: "{{ incident_gate_file }}"
  register: incident_gate
  when: incident_gate_file | default('') | length > 0
"""

RETURN = r"""
decision:
  description: The decision as incidentctl wrote it.
  returned: success
  type: dict
  sample: {"severity": "P0", "run": true, "reason": "database_down (P0) may fail over the database"}
waited:
  description: Seconds the task waited for the decision.
  returned: success
  type: float
  sample: 0.04
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure, run


def read_decision(path):
    """The decision in ``path``: None while it is not written (whole) yet, ModuleFailure when it is malformed."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ModuleFailure(f"cannot read the decision in {path}: {exc.strerror}") from None
    try:
        decision = json.loads(text)
    except ValueError:
        raise ModuleFailure(f"the decision in {path} is not JSON: the procedure does not run") from None
    if not isinstance(decision, dict) or not isinstance(decision.get("run"), bool):
        raise ModuleFailure(f"the decision in {path} has no boolean 'run': the procedure does not run")
    return decision


def incident_gate(module):
    p = module.params
    for name in ("timeout", "interval"):
        if not p[name] > 0:
            raise ModuleFailure(f"{name} must be a positive number of seconds, got {p[name]}")
    start = time.monotonic()
    while True:
        decision = read_decision(p["path"])
        if decision is not None:
            waited = round(time.monotonic() - start, 3)
            verdict = "run" if decision["run"] else "no procedure"
            return dict(changed=False, decision=decision, waited=waited, msg=f"decided after {waited}s: {verdict}")
        if time.monotonic() - start >= p["timeout"]:
            raise ModuleFailure(
                f"no decision in {p['path']} after {p['timeout']:g}s (is incidentctl still running?): "
                "the procedure does not run"
            )
        time.sleep(p["interval"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            timeout=dict(type="float", default=60.0),
            interval=dict(type="float", default=0.02),
        ),
        supports_check_mode=True,
    )
    run(module, incident_gate)


if __name__ == "__main__":
    main()
