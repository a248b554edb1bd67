"""The incidentctl command line."""

from __future__ import annotations

import typer

from incidentlab.cli import app as lab_app

app = typer.Typer(
    help="Incident response for the multi-region platform: triage, severity procedures through Ansible, "
    "and an incident record (timeline, artifacts, postmortem).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(lab_app, name="lab")


def main() -> None:
    app()
