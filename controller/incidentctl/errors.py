"""Expected failures of the controller and the exit codes a script can rely on."""

from __future__ import annotations

OK = 0
PROCEDURE_FAILED = 1  # a playbook ran and failed, or verification found the platform unhealthy
BAD_INPUT = 2  # unknown severity, missing/malformed inventory, unknown incident, unusable directory
REFUSED = 3  # a gate said no: confirmation not given, incident locked by another run
ENVIRONMENT = 4  # a tool is missing or the machine cannot do what was asked
MITIGATED_WITH_GAPS = 5  # verified, users are served, but something the procedure should have done is not done

EXIT_CODES = {
    "ok": OK,
    "procedure failed": PROCEDURE_FAILED,
    "bad input": BAD_INPUT,
    "refused": REFUSED,
    "environment": ENVIRONMENT,
    "mitigated with gaps": MITIGATED_WITH_GAPS,
}


class ControllerError(Exception):
    """One line for the operator: what is wrong and what to do."""

    exit_code = ENVIRONMENT


class BadInput(ControllerError):
    exit_code = BAD_INPUT


class Refused(ControllerError):
    exit_code = REFUSED


class ProcedureFailed(ControllerError):
    exit_code = PROCEDURE_FAILED
