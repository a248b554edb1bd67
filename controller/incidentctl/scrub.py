"""Keep secrets out of the incident record: a safety net, not the defence.

The defence is elsewhere: modules mark secret options ``no_log``, playbooks never register or
print a secret, and the controller passes no secret in extra vars or the environment. This
module knows nothing of any particular platform (or of the lab): it scrubs only what the
controller itself can know to be secret, so the end-to-end tests, which run with it, prove that
the defence holds and not that the scrubber knew the test's passwords.

* ansible-runner writes the whole process environment into ``artifacts/<ident>/command``:
  that copy keeps only harmless variables;
* values of environment variables named like secrets (PASSWORD, TOKEN, KEY, ...),
* values of extra variables named like secrets (ansible-runner's ``env/extravars`` and command line),
* string values of the JSON/YAML files listed in ``INCIDENTCTL_SECRET_FILES`` (colon-separated),

are replaced wherever they appear in a run's text files and in the timeline's summaries.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
from pathlib import Path

import yaml

REDACTED = "********"
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|WEBHOOK|PRIVATE|AUTH|COOKIE|SESSION", re.I)
ENV_KEEP = re.compile(r"^(ANSIBLE_[A-Z_]+|PATH|HOME|LANG|LC_[A-Z]+|PWD|USER|LOGNAME|SHELL|TERM|TZ|VIRTUAL_ENV)$")
ENV_SECRET_FILES = "INCIDENTCTL_SECRET_FILES"
MIN_SECRET_LEN = 6  # shorter values would redact ordinary words


def _leaves(obj) -> list[str]:
    if isinstance(obj, dict):
        return [v for x in obj.values() for v in _leaves(x)]
    if isinstance(obj, list):
        return [v for x in obj for v in _leaves(x)]
    return [obj] if isinstance(obj, str) else []


def secret_named_values(obj, secret: bool = False) -> list[str]:
    """String values under keys named like secrets, at any depth (``{"db": {"password": "x"}}``)."""
    if isinstance(obj, dict):
        return [v for k, x in obj.items() for v in secret_named_values(x, secret or bool(SECRET_NAME.search(str(k))))]
    if isinstance(obj, list):
        return [v for x in obj for v in secret_named_values(x, secret)]
    return [obj] if secret and isinstance(obj, str) else []


def secret_values(environ: dict[str, str] | None = None) -> set[str]:
    """What the controller can know to be secret: its environment's secret-named variables and the
    files the operator lists in INCIDENTCTL_SECRET_FILES."""
    environ = os.environ if environ is None else environ
    values = {v for k, v in environ.items() if SECRET_NAME.search(k) and not k.startswith("ANSIBLE_")}
    for f in (Path(p) for p in environ.get(ENV_SECRET_FILES, "").split(":") if p):
        try:
            values.update(_leaves(yaml.safe_load(f.read_text())))
        except (OSError, yaml.YAMLError):
            continue
    return {v for v in values if len(v) >= MIN_SECRET_LEN}


def extravars_in(command: list) -> list[dict]:
    """The extra variables ansible-runner put on a command line (``-e '{"k": ...}'``)."""
    out = []
    for flag, value in itertools.pairwise(command):
        if flag in ("-e", "--extra-vars") and isinstance(value, str) and value.startswith("{"):
            try:
                data = json.loads(value)
            except ValueError:
                continue
            if isinstance(data, dict):
                out.append(data)
    return out


class Scrubber:
    """``rewrites`` maps paths of an execution node to this machine's (its copy of the incident record)."""

    def __init__(self, run_dir: Path, values: set[str] | None = None, rewrites: dict[str, str] | None = None):
        self.run_dir = run_dir
        self._values = set(values if values is not None else secret_values())
        self._sorted = self._order()
        self.rewrites = rewrites or {}

    def _order(self) -> list[str]:
        return sorted((v for v in self._values if len(v) >= MIN_SECRET_LEN), key=len, reverse=True)

    @property
    def values(self) -> list[str]:
        return self._sorted

    def learn(self, values) -> None:
        self._values.update(values)
        self._sorted = self._order()

    def scrub_text(self, text: str) -> str:
        for old, new in self.rewrites.items():
            text = text.replace(old, new)
        for v in self._sorted:
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
        """Right after ansible-runner prepared the run: learn the secret-named extra variables (from
        ``env/extravars`` and the command line) and clean the artifacts' copy of the environment."""
        with contextlib.suppress(OSError, yaml.YAMLError):
            self.learn(secret_named_values(yaml.safe_load((self.run_dir / "env" / "extravars").read_text())))
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

    def _clean_command(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        env = data.get("env") or {}
        self.learn(secret_values(env))
        for extravars in extravars_in(data.get("command") or []):
            self.learn(secret_named_values(extravars))
        data["env"] = {k: (v if ENV_KEEP.match(k) and not SECRET_NAME.search(k) else REDACTED) for k, v in env.items()}
        data["command"] = [self.scrub_text(a) if isinstance(a, str) else a for a in data.get("command") or []]
        path.write_text(json.dumps(data))
