"""Where the lab lives and which ports it uses.

Everything binds 127.0.0.1. Ports are ``port_base + offset`` so a second lab (the
test suite's, say) runs beside the operator's with another base.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LabError, LabInputError
from .procs import lab_id_for

HOST = "127.0.0.1"
DEFAULT_PORT_BASE = 24000
ENV_LAB_DIR = "INCIDENTLAB_DIR"
ENV_PORT_BASE = "INCIDENTLAB_PORT_BASE"

# Offsets read like the well-known ports they stand in for.
PORT_OFFSETS: dict[str, int] = {
    "lb-global": 0,
    "sink-smtp": 25,
    "sink-http": 80,
    "lb-primary": 81,
    "lb-secondary": 82,
    "lb-tertiary": 83,  # the third region's (`lab up --regions 3`)
    "prometheus": 90,
    "alertmanager": 93,
    "exporter": 104,
    "db-primary": 306,
    "db-replica": 307,
    # Servers of the other topologies (`lab up --topology replicas|clusters`).
    "db-spare": 308,
    "db-delayed": 309,
    "payments-primary": 316,
    "payments-replica": 317,
    "kube-primary": 443,
    "kube-secondary": 444,
    "kube-tertiary": 445,
}
# Pods of the lab cluster take ports from this range (offsets, inclusive start, exclusive end).
POD_PORT_OFFSETS = (500, 1000)

# Database accounts. The automation's admin deliberately lacks READ ONLY ADMIN so that
# read_only (the fence) stops it too, like every other writer.
DB_USERS = {
    "admin": "incident_admin",
    "replication": "repl",
    "app": "shop_app",
    "exporter": "exporter",
}
DB_NAME = "shop"


def project_root() -> Path | None:
    """The source checkout this package runs from, if any (editable install)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def default_lab_dir() -> Path:
    env = os.environ.get(ENV_LAB_DIR)
    if env:
        return Path(env)
    return (project_root() or Path.cwd()) / ".lab"


@dataclass
class LabConfig:
    lab_dir: Path
    port_base: int = DEFAULT_PORT_BASE
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lab_dir = Path(self.lab_dir).absolute()
        if not 1024 <= self.port_base <= 64000:
            raise LabInputError(f"port base {self.port_base} is out of range: use a number between 1024 and 64000")
        if not self.ports:
            self.ports = {name: self.port_base + off for name, off in PORT_OFFSETS.items()}

    # -- paths -------------------------------------------------------------
    @property
    def lab_id(self) -> str:
        return lab_id_for(self.lab_dir)

    @property
    def state_file(self) -> Path:
        return self.lab_dir / "lab.json"

    @property
    def secrets_file(self) -> Path:
        return self.lab_dir / "secrets.json"

    def path(self, *parts: str) -> Path:
        return self.lab_dir.joinpath(*parts)

    @property
    def data_root(self) -> Path:
        """Fast scratch space for database files (tmpfs when the machine has one)."""
        shm = Path("/dev/shm")
        if shm.is_dir() and os.access(shm, os.W_OK):
            return shm / f"incidentlab-{self.lab_id}"
        return self.path("data")

    @property
    def pod_port_range(self) -> tuple[int, int]:
        return self.port_base + POD_PORT_OFFSETS[0], self.port_base + POD_PORT_OFFSETS[1]

    def url(self, component: str, path: str = "") -> str:
        return f"http://{HOST}:{self.ports[component]}{path}"

    # -- persistence -------------------------------------------------------
    @classmethod
    def resolve(cls, lab_dir: Path | None = None, port_base: int | None = None) -> LabConfig:
        """The config of an existing lab (its recorded ports win), or a new one."""
        lab_dir = Path(lab_dir) if lab_dir else default_lab_dir()
        state = read_json(lab_dir / "lab.json")
        if state and "port_base" in state:
            recorded = int(state["port_base"])
            if port_base is not None and port_base != recorded:
                raise LabInputError(
                    f"the lab in {lab_dir} uses port base {recorded}; run `incidentctl lab down` before changing it"
                )
            # Offsets added since that lab was made get their port from its base.
            ports = {name: recorded + off for name, off in PORT_OFFSETS.items()}
            ports.update({k: int(v) for k, v in state.get("ports", {}).items()})
            return cls(lab_dir, recorded, ports)
        if port_base is None:
            port_base = int(os.environ.get(ENV_PORT_BASE, DEFAULT_PORT_BASE))
        return cls(lab_dir, port_base)

    def ensure_dir(self) -> None:
        try:
            self.lab_dir.mkdir(parents=True, exist_ok=True)
            probe = self.lab_dir / ".write-probe"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise LabError(
                f"lab directory {self.lab_dir} is not writable ({exc.strerror}); "
                f"choose another with --lab-dir or {ENV_LAB_DIR}"
            ) from None

    def load_secrets(self, create: bool = False) -> dict[str, str]:
        """Per-lab passwords, kept with mode 0600 and never printed."""
        data = read_json(self.secrets_file)
        if data:
            return data
        if not create:
            raise LabInputError(f"no lab in {self.lab_dir}: run `incidentctl lab up` first")
        data = {role: secrets.token_urlsafe(18) for role in (*DB_USERS, "root")}
        fd = os.open(self.secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
        return data


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None


def write_json(path: Path, data: object, mode: int = 0o644) -> None:
    """Atomic write: readers see the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    tmp.replace(path)


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def port_open(port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False
