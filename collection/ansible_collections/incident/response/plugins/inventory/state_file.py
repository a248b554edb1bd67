# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory source: a JSON state file as a host variable, read once when the inventory is parsed."""

from __future__ import annotations

DOCUMENTATION = r"""
name: state_file
short_description: A JSON state file as a variable of every host, read once per run
version_added: 0.2.0
description:
  - Reads a JSON document that another tool writes (a lab's addresses and status, a provisioning run's
    outputs) when the inventory is parsed, and sets it as one variable of every host of a group.
  - A variable defined in group_vars as a file lookup is templated again at every reference, and the
    platform variables built from it refer to it many times per task. Set here, it is plain data.
  - It is a host variable, so it takes precedence over the same variable in group_vars, which can keep a
    lookup as the fallback (where only the inventory's hosts file is imported, as AWX does) - and over
    the same variable of another inventory source's groups.
  - The hosts must be known when this source is parsed - an inventory directory's sources are parsed in
    the order of their names, so name this file after the one that defines the hosts.
  - Nothing is set when the file does not exist. A file that cannot be read or decoded fails the source.
  - The inventory source is a YAML file whose name ends in C(state_file.yml) or C(state_file.yaml).
  - The file's content is inventory data - keep secrets out of it (C(ansible-inventory --list) shows it).
options:
  plugin:
    description: The name of this plugin.
    required: true
    type: str
    choices: [incident.response.state_file]
  paths:
    description:
      - Where the state file is, in order of preference. The first entry whose environment variables
        (C($NAME) or C(${NAME})) are all set and not empty is the file, whether it exists or not.
      - A relative path is relative to the directory of this inventory source.
    required: true
    type: list
    elements: str
  variable:
    description: The variable that holds the file's content.
    required: true
    type: str
  group:
    description: The group whose hosts get the variable.
    type: str
    default: all
"""

EXAMPLES = r"""
# inventories/lab/lab.state_file.yml, parsed after hosts.yml: the lab's lab.json as lab_state, which
# group_vars/all/lab.yml defines as a lookup of the same file for where this source is not read.
plugin: incident.response.state_file
paths:
  - ${INCIDENTLAB_DIR}/lab.json
  - ../../.lab/lab.json
variable: lab_state
"""

import json
import os
import re

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

_ENV_REF = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_VAR_NAME = re.compile(r"^[A-Za-z_]\w*$")


def choose_path(paths, base, environ=None):
    """The first candidate whose environment variables are all set (expanded, absolute), else None."""
    environ = os.environ if environ is None else environ
    for candidate in paths:
        names = [a or b for a, b in _ENV_REF.findall(candidate)]
        if all(environ.get(name) for name in names):
            expanded = _ENV_REF.sub(lambda m: environ[m.group(1) or m.group(2)], candidate)
            return os.path.normpath(os.path.join(base, os.path.expanduser(expanded)))
    return None


class InventoryModule(BaseInventoryPlugin):
    NAME = "incident.response.state_file"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("state_file.yml", "state_file.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        variable, group = self.get_option("variable"), self.get_option("group")
        if not _VAR_NAME.match(variable or ""):
            raise AnsibleParserError(f"{path}: variable {variable!r} is not a variable name")
        hosts = self.inventory.groups[group].get_hosts() if group in self.inventory.groups else []
        if not hosts:
            raise AnsibleParserError(
                f"{path}: group {group!r} has no host yet: an inventory directory's sources are parsed in the order"
                " of their names, so name this file after the one that defines the hosts"
            )
        state = choose_path(self.get_option("paths"), os.path.dirname(os.path.abspath(path)))
        if state is None or not os.path.exists(state):
            return  # the group_vars' fallback decides
        try:
            with open(state, encoding="utf-8") as fh:
                value = json.load(fh)
        except (OSError, ValueError) as exc:
            raise AnsibleParserError(f"{path}: cannot read the state file {state}: {exc}") from exc
        for host in hosts:
            self.inventory.set_variable(host.name, variable, value)
