"""The collection as an artifact (what AWX and an execution environment install) and the execution
environment's build context, made offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from support import PROJECT_ROOT

COLLECTION = PROJECT_ROOT / "collection" / "ansible_collections" / "incident" / "response"
BIN = Path(sys.executable).parent


def _run(*argv: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    res = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})}, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return res


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build")
    _run(str(BIN / "ansible-galaxy"), "collection", "build", str(COLLECTION), "--output-path", str(out), cwd=out)
    version = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())["version"]
    (tar,) = out.glob("*.tar.gz")
    assert tar.name == f"incident-response-{version}.tar.gz"
    return tar


def test_the_artifact_packs_the_collection_without_test_output_or_caches(artifact):
    with tarfile.open(artifact) as tar:
        names = tar.getnames()
    assert {"MANIFEST.json", "FILES.json", "meta/runtime.yml", "requirements.txt", "bindep.txt"} <= set(names)
    assert "meta/execution-environment.yml" in names
    modules = {p.name for p in (COLLECTION / "plugins" / "modules").glob("*.py") if p.name != "__init__.py"}
    assert {f"plugins/modules/{m}" for m in modules} <= set(names)
    assert not [
        n for n in names if n.startswith("tests/output") or "__pycache__" in n or n.endswith((".pyc", ".tar.gz"))
    ]


def test_the_artifact_installs_into_a_clean_path_where_ansible_doc_lists_every_module(artifact, tmp_path):
    path = tmp_path / "collections"
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")  # none of the checkout's settings
    # Only the clean path: with the checkout's collection on the path (scripts/test exports it), galaxy would
    # find incident.response "already installed" and install nothing.
    env = {
        "ANSIBLE_COLLECTIONS_PATH": str(path),
        "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
    }
    _run(
        str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(path), str(artifact),
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert (path / "ansible_collections" / "incident" / "response" / "MANIFEST.json").exists()
    listed = _run(str(BIN / "ansible-doc"), "-l", "incident.response", cwd=tmp_path, env=env).stdout
    modules = {p.stem for p in (COLLECTION / "plugins" / "modules").glob("*.py") if p.name != "__init__.py"}
    assert {ln.split()[0] for ln in listed.splitlines() if ln.strip()} == {f"incident.response.{m}" for m in modules}
    doc = _run(str(BIN / "ansible-doc"), "incident.response.mysql_promote", cwd=tmp_path, env=env).stdout
    assert "incident.response.mysql_promote" in doc and "EXAMPLES" in doc


def test_ansible_builder_makes_the_execution_environment_context_from_the_artifact(artifact, tmp_path):
    """The definition in the checkout, with the artifact where it expects it (build/), made into a build
    context; building the image needs a container engine, which CI does not have."""
    definition = yaml.safe_load((PROJECT_ROOT / "execution-environment.yml").read_text())
    shutil.copy(PROJECT_ROOT / "execution-environment.yml", tmp_path / "execution-environment.yml")
    (tmp_path / "build").mkdir()
    shutil.copy(artifact, tmp_path / "build" / artifact.name)
    assert [f["src"] for f in definition["additional_build_files"]] == [f"build/{artifact.name}"]
    assert definition["dependencies"]["galaxy"]["collections"] == [
        {"name": f"collections/{artifact.name}", "type": "file"}
    ]
    context = tmp_path / "context"
    _run(
        str(BIN / "ansible-builder"),
        "create",
        "--file",
        "execution-environment.yml",
        "--context",
        str(context),
        cwd=tmp_path,
    )
    assert (context / "_build" / "collections" / artifact.name).read_bytes() == artifact.read_bytes()
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert requirements["collections"] == [{"name": f"collections/{artifact.name}", "type": "file"}]
    (recipe,) = [p for p in (context / "Containerfile", context / "Dockerfile") if p.exists()]
    text = recipe.read_text()
    assert "ansible-galaxy collection install" in text and "introspect.py introspect" in text
    assert "ansible-core==" in text and "ansible-runner==" in text
    lock = (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
    for pin in (
        definition["dependencies"]["ansible_core"]["package_pip"],
        definition["dependencies"]["ansible_runner"]["package_pip"],
    ):
        assert pin in lock, f"{pin} is not the version requirements.lock pins"
