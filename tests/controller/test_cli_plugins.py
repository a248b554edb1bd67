"""The lab's command group is loaded only when the command line may name it: a response does not pay for it."""

import subprocess
import sys

PROBE = """
import sys
from incidentctl import cli
cli._add_plugins(sys.argv[1:])
names = {g.name for g in cli.app.registered_groups}
print("lab" in names, "incidentlab" in sys.modules)
"""


def plugins_after(*argv: str) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_a_core_command_does_not_import_the_lab():
    assert plugins_after("triage", "--help") == "False False"
    assert plugins_after("respond", "-i", "lab", "--yes") == "False False"


def test_the_lab_group_is_there_for_its_own_command_and_for_help():
    assert plugins_after("lab", "status") == "True True"
    assert plugins_after("--help") == "True True"
