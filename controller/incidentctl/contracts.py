"""The incident record's contracts: what each playbook publishes, checked where incidentctl reads it.

The contracts are JSON Schemas in playbooks/contracts/ (triage, outcome, changes, investigation, incident),
shared with the playbooks, which check what they read with the collection's ``conforms`` filter.
"""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ProcedureFailed

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator


def warm() -> None:
    """Import the validator in the background (~50 ms): called as a playbook starts, while the controller waits."""
    threading.Thread(target=lambda: __import__("jsonschema"), name="import-jsonschema", daemon=True).start()


@functools.cache
def _validator(directory: Path, name: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads((directory / f"{name}.schema.json").read_text()))


def check(directory: Path, name: str, data: object, what: str) -> object:
    """``data`` when it fits contract ``name``; ProcedureFailed naming the first place that does not."""
    errors = sorted(_validator(directory, name).iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "the top"
        raise ProcedureFailed(
            f"{what} does not fit the {name} contract (playbooks/contracts/{name}.schema.json): at {where}: "
            f"{errors[0].message}"
        )
    return data
