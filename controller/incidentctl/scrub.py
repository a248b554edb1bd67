"""Keep secrets out of the incident record.

The first line of defence is elsewhere: modules mark secrets ``no_log`` and the
controller passes no secret in extra vars or the environment. ansible-runner, though,
writes the whole process environment into ``artifacts/<ident>/command``: that file
keeps only harmless variables. As a safety net every text file of a run is also
searched for known secret values, which are replaced:

* values of environment variables whose names look secret (PASSWORD, TOKEN, KEY, ...),
* string values of the JSON/YAML files listed in ``INCIDENTCTL_SECRET_FILES`` (colon-separated),
* the lab's generated passwords, when a lab directory exists.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml

REDACTED = "********"
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|WEBHOOK|PRIVATE|AUTH|COOKIE|SESSION", re.I)
ENV_KEEP = re.compile(r"^(ANSIBLE_[A-Z_]+|PATH|HOME|LANG|LC_[A-Z]+|PWD|USER|LOGNAME|SHELL|TERM|TZ|VIRTUAL_ENV)$")
MIN_SECRET_LEN = 6  # shorter values would redact ordinary words


def _leaves(obj) -> list[str]:
    if isinstance(obj, dict):
        return [v for x in obj.values() for v in _leaves(x)]
    if isinstance(obj, list):
        return [v for x in obj for v in _leaves(x)]
    return [obj] if isinstance(obj, str) else []


def secret_values() -> set[str]:
    values = {v for k, v in os.environ.items() if SECRET_NAME.search(k) and not k.startswith("ANSIBLE_")}
    files = [Path(p) for p in os.environ.get("INCIDENTCTL_SECRET_FILES", "").split(":") if p]
    try:
        from incidentlab.config import default_lab_dir

        files.append(default_lab_dir() / "secrets.json")
    except ImportError:  # the lab is optional
        pass
    for f in files:
        try:
            values.update(_leaves(yaml.safe_load(f.read_text())))
        except (OSError, yaml.YAMLError):
            continue
    return {v for v in values if len(v) >= MIN_SECRET_LEN}


class Scrubber:
    """``rewrites`` maps paths of an execution node to this machine's (its copy of the incident record)."""

    def __init__(self, run_dir: Path, values: set[str] | None = None, rewrites: dict[str, str] | None = None):
        self.run_dir = run_dir
        self.values = sorted(values if values is not None else secret_values(), key=len, reverse=True)
        self.rewrites = rewrites or {}

    def scrub_text(self, text: str) -> str:
        for old, new in self.rewrites.items():
            text = text.replace(old, new)
        for v in self.values:
            if v in text:
                text = text.replace(v, REDACTED)
        return text

    def rewrite_data(self, data: dict) -> dict:
        """A run's published data with the node's paths made local (nothing to do for a local run)."""
        if not self.rewrites:
            return data
        text = json.dumps(data)
        for old, new in self.rewrites.items():
            text = text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
        return json.loads(text)

    def scrub_run_dir_soon(self) -> None:
        for command in self.run_dir.glob("artifacts/*/command"):
            self._clean_command(command)

    def scrub_run_dir(self) -> None:
        self.scrub_run_dir_soon()
        for path in self.run_dir.rglob("*"):
            if path.is_file() and path.stat().st_size < 50_000_000:
                try:
                    text = path.read_text(encoding="utf-8")
                except (UnicodeDecodeError, OSError):
                    continue
                clean = self.scrub_text(text)
                if clean != text:
                    path.write_text(clean, encoding="utf-8")

    @staticmethod
    def _clean_command(path: Path) -> None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        env = data.get("env") or {}
        data["env"] = {k: (v if ENV_KEEP.match(k) and not SECRET_NAME.search(k) else REDACTED) for k, v in env.items()}
        path.write_text(json.dumps(data))
