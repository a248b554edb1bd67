"""Answers that depend only on files' contents, kept between runs: an Ansible start less on the way to a change.

The key is a hash of every file under the given paths (and what else the caller names, such as the
Ansible version), so an edit anywhere computes the answer again. A cache that cannot be read or
written is no error: the answer is computed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ansible.release import __version__ as ansible_version


def directory() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "incidentctl"


def content_key(paths: Iterable[Path], *extra: str) -> str:
    digest = hashlib.sha256("\0".join((ansible_version, *extra)).encode())
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            digest.update(f"\0{f}\0".encode())
            with contextlib.suppress(OSError):
                digest.update(f.read_bytes())
    return digest.hexdigest()[:24]


# An entry not used for this long is removed when another one of its kind is written: every edit of an inventory,
# a playbook or a module makes new entries, and the old ones would otherwise stay for ever.
MAX_UNUSED = 30 * 24 * 3600


def cached(kind: str, key: str, compute: Callable[[], object], valid: Callable[[object], bool]) -> object:
    path = directory() / f"{kind}-{key}.json"
    with contextlib.suppress(OSError, ValueError):
        value = json.loads(path.read_text())
        if valid(value):
            with contextlib.suppress(OSError):
                os.utime(path)  # in use: kept
            return value
    value = compute()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(value))
        tmp.replace(path)
        prune(kind)
    return value


def prune(kind: str, suffix: str = ".json") -> None:
    """Remove the entries of ``kind`` not used for MAX_UNUSED seconds."""
    oldest = time.time() - MAX_UNUSED
    for entry in directory().glob(f"{kind}-*{suffix}"):
        with contextlib.suppress(OSError):
            if entry.stat().st_mtime < oldest:
                entry.unlink()
