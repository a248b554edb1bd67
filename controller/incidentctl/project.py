"""Where the playbooks, the collection and the Ansible configuration are, and how Ansible is invoked."""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import BadInput, ControllerError
from .supervise import mitogen_env

ENV_PROJECT_DIR = "INCIDENTCTL_PROJECT_DIR"
PLAYBOOK_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")  # a file in playbooks/, never a path
ENV_ANSIBLE_BIN = "INCIDENTCTL_ANSIBLE_BIN"  # where ansible-playbook lives (default: beside this Python)


@dataclass(frozen=True)
class Project:
    root: Path

    @classmethod
    def locate(cls) -> Project:
        env = os.environ.get(ENV_PROJECT_DIR)
        root = Path(env) if env else Path(__file__).resolve().parents[2]
        if not (root / "playbooks").is_dir():
            raise ControllerError(f"no playbooks/ in {root}: set {ENV_PROJECT_DIR} to the project checkout")
        return cls(root)

    @property
    def playbooks(self) -> Path:
        return self.root / "playbooks"

    @property
    def contracts(self) -> Path:
        """The record's contracts (JSON Schemas), shared by the playbooks and incidentctl."""
        return self.playbooks / "contracts"

    def playbook(self, name: str) -> Path:
        path = self.playbooks / (name if name.endswith((".yml", ".yaml")) else f"{name}.yml")
        if not PLAYBOOK_NAME.match(name) or not path.is_file():
            known = ", ".join(sorted(p.stem for p in self.playbooks.glob("*.yml")))
            shown = name if len(name) <= 60 else name[:57] + "..."
            raise BadInput(f"no playbook {shown!r} in {self.playbooks}; known: {known}")
        return path

    def inventory(self, value: str | Path | None) -> Path:
        """An inventory given by path or by name under inventories/ (default: the lab)."""
        if value is None:
            value = "lab"
        if not str(value).strip():
            raise BadInput("the inventory is empty: give a path, or a name under inventories/ such as lab")
        path = Path(value)
        named = self.root / "inventories" / str(value)
        if "/" not in str(value) and named.exists():  # a bare name is one of ours, even if ./<name> exists
            path = named
        if not path.exists():
            raise BadInput(f"inventory {value} does not exist; give a path or a name under {self.root / 'inventories'}")
        return path.absolute()

    def envvars(self) -> dict[str, str]:
        return ansible_env(self.root)

    def require_tools(self) -> None:
        path = self.envvars()["PATH"]
        for tool in ("ansible-playbook", "ansible-inventory"):
            if shutil.which(tool, path=path) is None:
                raise ControllerError(
                    f"{tool} is not installed (looked in {path.split(os.pathsep)[0]} and PATH): "
                    "run ./scripts/bootstrap or install ansible-core"
                )
        # ansible-runner looks the tools up on this process's PATH.
        os.environ["PATH"] = path


def ansible_settings() -> dict[str, str]:
    """How every run's Ansible behaves, wherever it runs (here or on an execution node)."""
    return {
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
    }


def ansible_env(root: Path) -> dict[str, str]:
    """The environment every Ansible run of the project gets: incidentctl's, the tests' (module,
    playbook, controller and end-to-end tiers) and molecule's. One builder, so that what the tests
    prove holds for what operators run: the project's collection and ansible.cfg, the venv's tools
    first on PATH, and mitogen's strategy when it is installed."""
    bin_dir = os.environ.get(ENV_ANSIBLE_BIN) or os.path.dirname(sys.executable)
    env = {
        **ansible_settings(),
        "ANSIBLE_COLLECTIONS_PATH": str(root / "collection"),
        "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.update(mitogen_env())
    return env
