# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check data read from the incident record against its written contract (a JSON Schema)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: conforms
short_description: Fail unless data fits its contract (a JSON Schema), naming where it does not
version_added: 0.2.0
description:
  - The incident record's files have one owner each and a contract written as a JSON Schema (the project keeps
    them in C(playbooks/contracts/)). A playbook that reads a file another one wrote checks it with this filter,
    so a change on one side fails loudly on the other instead of being read wrong.
  - Returns the data unchanged when it fits; fails with the first place that does not fit otherwise.
requirements:
  - jsonschema (Python, on the controller)
positional: schema, what
options:
  _input:
    description: The data, as read (for example C(lookup('file', path) | from_json)).
    type: raw
    required: true
  schema:
    description: The JSON Schema (draft 2020-12) as a dict.
    type: dict
    required: true
  what:
    description: What the data is, for the error message (for example the file's path).
    type: str
    default: the data
"""

EXAMPLES = r"""
- name: Read what a procedure changed, as its contract says it is written
  ansible.builtin.set_fact:
    changed_record: >-
      {{ lookup('ansible.builtin.file', path) | from_json
         | incident.response.conforms(lookup('ansible.builtin.file', 'contracts/changes.schema.json') | from_json,
                                      path) }}
"""

RETURN = r"""
_value:
  description: The data, unchanged.
  type: raw
"""

from ansible.errors import AnsibleFilterError

try:
    from jsonschema import Draft202012Validator

    HAS_JSONSCHEMA = True
except ImportError:
    HAS_JSONSCHEMA = False


def conforms(data, schema, what="the data"):
    if not HAS_JSONSCHEMA:
        raise AnsibleFilterError(
            "conforms needs the Python package jsonschema on the controller: pip install jsonschema"
        )
    if not isinstance(schema, dict):
        raise AnsibleFilterError("conforms: the schema must be a dict (a JSON Schema)")
    errors = sorted(Draft202012Validator(schema).iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "the top"
        raise AnsibleFilterError(
            f"{what} does not fit its contract ({schema.get('title', 'schema')}): at {where}: {first.message}"
        )
    return data


class FilterModule:
    def filters(self):
        return {"conforms": conforms}
