"""Build an offline wheelhouse from this virtual environment: the wheel of a distribution and of
everything it requires, repacked from what is installed here (no index, no network).

    python scripts/lib/wheelhouse.py DIR [DISTRIBUTION]   (default: incident-response)

An installed distribution is an unpacked wheel: its files are listed in its RECORD and its
dist-info keeps the WHEEL file with the original tags. This packs them again: files under
site-packages as they are, other scripts under ``<name>.data/scripts`` with the ``#!python`` shebang
pip rewrites on install; console-script wrappers are left out (pip writes them again from
entry_points.txt). Editable installs cannot be repacked: build their wheel from the source.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

SKIP_META = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str) -> list[metadata.Distribution]:
    """``root`` and every distribution it requires here (markers evaluated, extras not followed)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [root]
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        dist = metadata.distribution(name)
        seen[name] = dist
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


def _tag(wheel_meta: str) -> str:
    """The wheel's file-name tag (compressed tag set) from its WHEEL file's Tag lines."""
    tags = [line.split(":", 1)[1].strip() for line in wheel_meta.splitlines() if line.startswith("Tag:")]
    parts = [t.split("-") for t in tags]
    return "-".join(".".join(sorted({p[i] for p in parts})) for i in range(3))


def repack(dist: metadata.Distribution, out_dir: Path) -> Path:
    if dist.read_text("direct_url.json") and '"editable": true' in (dist.read_text("direct_url.json") or ""):
        raise SystemExit(f"{dist.metadata['Name']} is an editable install: build its wheel from the source")
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    version = dist.version
    dist_info = f"{name}-{version}.dist-info"
    data_dir = f"{name}-{version}.data"
    wheel_meta = dist.read_text("WHEEL") or ""
    scripts = {ep.name for ep in dist.entry_points if ep.group in ("console_scripts", "gui_scripts")}
    target = out_dir / f"{name}-{version}-{_tag(wheel_meta)}.whl"
    record: list[str] = []
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as zf:
        for f in dist.files or []:
            path = Path(dist.locate_file(f))
            parts = Path(str(f)).parts
            if "__pycache__" in parts or not path.is_file():
                continue
            if parts[0].endswith(".dist-info"):
                if parts[-1] in SKIP_META:
                    continue
                arcname = "/".join((dist_info, *parts[1:]))
                data = path.read_bytes()
            elif parts[0] == "..":  # outside site-packages: a script in the environment's bin/
                if path.parent.name != "bin" or path.name in scripts:
                    continue
                data = path.read_bytes()
                if data.startswith(b"#!"):
                    data = b"#!python" + data[data.index(b"\n") :]
                arcname = f"{data_dir}/scripts/{path.name}"
            else:
                arcname = str(f)
                data = path.read_bytes()
            zf.writestr(arcname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{arcname},sha256={digest},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        zf.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return target


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0])
    root = argv[1] if len(argv) > 1 else "incident-response"
    out_dir.mkdir(parents=True, exist_ok=True)
    for dist in closure(root):
        if _norm(dist.metadata["Name"]) == _norm(root):
            continue  # the root itself is built from its source
        print(repack(dist, out_dir).name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
