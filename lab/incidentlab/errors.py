"""Errors the lab reports to its operator (one line, no traceback)."""

from __future__ import annotations

# Exit codes shared with the controller (incidentctl.exitcodes mirrors them).
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 4


class LabError(Exception):
    """An expected failure: the message says what is wrong and what to do."""

    exit_code = EXIT_ENVIRONMENT


class LabInputError(LabError):
    """The operator asked for something that cannot be done (unknown fault, lab not up, ...)."""

    exit_code = EXIT_BAD_INPUT
