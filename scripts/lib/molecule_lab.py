"""Run molecule with a lab of its own: a port range and a directory that nothing else uses.

The scenarios (molecule/<name>/) bring their lab up and down with the lab CLI. This wrapper
claims a port range the way the test suite does (tests/support.claim_port_base: one lock file
per range in /tmp/incidentlab-test-ports, held while molecule runs, and a probe that the range
is free), so molecule never clashes with pytest, another checkout's run or the operator's lab
in .lab/. It gives the scenarios INCIDENTLAB_PORT_BASE and MOLECULE_LAB_ROOT (a new directory
under /tmp; each scenario's lab is MOLECULE_LAB_ROOT/<scenario>), and whatever happens, brings
every lab under that root down at the end and removes it. Molecule's Ansible runs get the
environment incidentctl gives Ansible (incidentctl.project.ansible_env): the strategy operators run.

With `test`, each scenario runs as its own `molecule test -s <name>` and its time is printed.

To go step by step (converge, look around, verify, destroy) over several invocations, choose
the root and the ports yourself: with MOLECULE_LAB_ROOT and INCIDENTLAB_PORT_BASE both set,
nothing is claimed and nothing is brought down at the end (`destroy` does that).

    python scripts/lib/molecule_lab.py test [--all | -s NAME ...]
    MOLECULE_LAB_ROOT=/tmp/mylabs INCIDENTLAB_PORT_BASE=26000 \
        python scripts/lib/molecule_lab.py converge -s NAME     (any molecule command)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from incidentctl.project import ansible_env  # noqa: E402 - the one builder of Ansible's environment
from support import claim_port_base  # noqa: E402 - the test suite's claim, shared on purpose


def scenarios() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))


def _split_test_args(args: list[str]) -> tuple[list[str], list[str]] | None:
    """For `test`: the scenarios asked for and the other arguments; None to run molecule as is."""
    if not args or args[0] != "test":
        return None
    names, rest, it = [], [], iter(args[1:])
    for arg in it:
        if arg == "--all":
            names = scenarios()
        elif arg in ("-s", "--scenario-name"):
            names.append(next(it))
        elif arg.startswith("--scenario-name="):
            names.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return (names or ["default"]), rest


def _labs_down(lab_root: Path) -> None:
    cli = Path(sys.executable).parent / "incidentctl"
    for lab_dir in sorted(lab_root.glob("*")):
        if lab_dir.is_dir():
            subprocess.run([str(cli), "lab", "down", "--lab-dir", str(lab_dir)], capture_output=True, check=False)


def main(args: list[str]) -> int:
    chosen = bool(os.environ.get("MOLECULE_LAB_ROOT") and os.environ.get("INCIDENTLAB_PORT_BASE"))
    if chosen:
        base, lab_root = int(os.environ["INCIDENTLAB_PORT_BASE"]), Path(os.environ["MOLECULE_LAB_ROOT"]).resolve()
        lab_root.mkdir(parents=True, exist_ok=True)
    else:
        base, lab_root = claim_port_base(), Path(tempfile.mkdtemp(prefix="incidentlab-molecule-"))
    # Molecule passes its environment on to ansible-playbook: the scenarios run with the environment
    # incidentctl gives Ansible (mitogen's strategy when installed, the project's collection, the venv's
    # tools first on PATH). Only ANSIBLE_CONFIG is molecule's own: it writes one from .config/molecule.
    project_env = {k: v for k, v in ansible_env(ROOT).items() if k != "ANSIBLE_CONFIG"}
    env = {
        **os.environ,
        **project_env,
        "INCIDENTLAB_PORT_BASE": str(base),
        "MOLECULE_LAB_ROOT": str(lab_root),
    }
    env.pop("INCIDENTLAB_DIR", None)  # set per scenario by .config/molecule/config.yml
    if not sys.stdout.isatty():
        env.setdefault("NO_COLOR", "1")
    print(f"molecule: lab ports {base}..{base + 999}, labs under {lab_root}", file=sys.stderr, flush=True)
    molecule = str(Path(sys.executable).parent / "molecule")
    try:
        split = _split_test_args(args)
        if split is None:
            return subprocess.run([molecule, *args], cwd=ROOT, env=env, check=False).returncode
        names, rest = split
        times, failed = [], []
        for name in names:
            start = time.monotonic()
            # molecule's default ephemeral directory is named after the checkout's directory name only:
            # two clones of the same name would share it. This run's own, under the claimed root.
            scenario_env = {**env, "MOLECULE_EPHEMERAL_DIRECTORY": str(lab_root / ".molecule" / name)}
            rc = subprocess.run(
                [molecule, "test", "-s", name, *rest], cwd=ROOT, env=scenario_env, check=False
            ).returncode
            times.append((name, time.monotonic() - start, rc))
            if rc != 0:
                failed.append(name)
        print("\nmolecule scenarios:", file=sys.stderr)
        for name, seconds, rc in times:
            print(f"  {name:<28} {seconds:7.1f} s  {'ok' if rc == 0 else 'FAILED'}", file=sys.stderr)
        print(f"  {'total':<28} {sum(t for _, t, _ in times):7.1f} s", file=sys.stderr, flush=True)
        return 1 if failed else 0
    finally:
        if not chosen:
            _labs_down(lab_root)
            shutil.rmtree(lab_root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
