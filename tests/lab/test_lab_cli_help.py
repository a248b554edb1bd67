"""`incidentctl lab ... --help` prints each paragraph of a command's help as one paragraph that the terminal
wraps, not cut at the line breaks of the source."""

from __future__ import annotations

import os

import pytest
import typer

from incidentlab.cli import app as lab_app
from support import incidentctl


def _commands(group, path: tuple[str, ...] = ()) -> list[tuple]:
    out = []
    for name, cmd in group.commands.items():
        out.append(((*path, name), cmd))
        if hasattr(cmd, "commands"):
            out += _commands(cmd, (*path, name))
    return out


LAB = typer.main.get_command(lab_app)  # the lab's distribution adds it to incidentctl as `lab`
COMMANDS = _commands(LAB)


def test_every_lab_command_is_covered():
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {
        "up",
        "down",
        "status",
        "break",
        "heal",
        "faults",
        "traffic pause",
        "traffic resume",
        "traffic status",
    } <= names


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_help_paragraphs_are_whole_lines_on_a_wide_terminal(path, cmd):
    res = incidentctl("lab", *path, "--help", env={**os.environ, "COLUMNS": "400", "TERM": "dumb"})
    assert res.returncode == 0, res.stderr
    lines = [" ".join(line.strip(" │").split()) for line in res.stdout.splitlines()]
    for para in (cmd.help or "").split("\n\n"):
        want = " ".join(para.split()).replace("`", "")  # incidentctl renders help as markdown: `code` loses its ticks
        assert want in lines, f"{' '.join(path)}: {want!r} is not one line of:\n{res.stdout}"
