# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mitogen's linear strategy, with what it works out about the modules it ships kept on disk between runs.

Every run of ansible-playbook under mitogen starts with empty caches: before a module's first task, the
controller compiles the module and everything it imports to find what to send (``find_related``), minifies and
compresses each source, and scans the module's module_utils (``module_finder.scan``). That is CPU on the way to
every first task of a module: ~0.4 s of the first connection and ~0.1-0.3 s of each module's first use, paid
again by every run (measured in the README's Speed section). The answers depend only on the sources, so this
strategy keeps them in a cache directory (``INCIDENTCTL_MITOGEN_CACHE``, default
``$XDG_CACHE_HOME/incidentctl/mitogen``; ``off`` turns it off), keyed by what they are computed from:

* a module's payload by the digest of its name, path and source (and, for a package, the names of its
  submodules), with mitogen's and Python's versions;
* a module's module_utils by the module's path and search path, and checked on every use against the digest
  of each file it names (the module and every module_utils it resolved), so an edited file is scanned again.

A cache entry that cannot be read or written is ignored: the run computes it as mitogen would. Nothing else in
mitogen's behaviour changes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import tempfile

import ansible_mitogen.loaders
import ansible_mitogen.module_finder
import ansible_mitogen.strategy
import mitogen
import mitogen.core
import mitogen.master

VERSION = json.dumps([1, list(mitogen.__version__), sys.version])


def cache_dir() -> str | None:
    configured = os.environ.get("INCIDENTCTL_MITOGEN_CACHE", "")
    if configured.lower() in ("off", "0", "no", "false"):
        return None
    if configured:
        return configured
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "incidentctl", "mitogen")


def _key(*parts) -> str:
    h = hashlib.sha256(VERSION.encode())
    for part in parts:
        h.update(b"\0")
        h.update(part if isinstance(part, bytes) else str(part).encode())
    return h.hexdigest()


def _load(kind: str, key: str):
    where = cache_dir()
    if where is None:
        return None
    try:
        with open(os.path.join(where, kind, key), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _store(kind: str, key: str, doc) -> None:
    where = cache_dir()
    if where is None:
        return
    folder = os.path.join(where, kind)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        os.replace(tmp, os.path.join(folder, key))  # readers see the whole entry or none
    except (OSError, TypeError, ValueError):
        return


def _digest(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None


# -- the payload of a module (mitogen.master.ModuleResponder._build_tuple) ------------------------------------

_build_tuple = mitogen.master.ModuleResponder._build_tuple


def _payload_key(responder, fullname):
    """The cache key of a module's payload, or None for what mitogen answers without work (or refuses)."""
    if fullname == "__main__" or responder.policy.denied(fullname):
        return None
    path, source, is_pkg = responder._finder.get_module_source(fullname)
    if not path or source is None or mitogen.master.is_stdlib_path(path):
        return None
    children = mitogen.master.get_child_modules(path, fullname) if is_pkg else None
    return _key("payload", fullname, path, source, json.dumps(children))


def cached_build_tuple(self, fullname):
    if fullname in self._cache:
        return self._cache[fullname]
    try:
        key = _payload_key(self, fullname)
    except Exception:  # whatever went wrong, mitogen's own path says it
        key = None
    if key is None:
        return _build_tuple(self, fullname)
    doc = _load("payload", key)
    if doc is not None:
        name, pkg_present, path, blob, related = doc
        tup = (name, pkg_present, path, mitogen.core.Blob(base64.b64decode(blob)), related)
        self._cache[fullname] = tup
        return tup
    tup = _build_tuple(self, fullname)
    name, pkg_present, path, blob, related = tup
    _store("payload", key, [name, pkg_present, path, base64.b64encode(bytes(blob)).decode(), list(related)])
    return tup


# -- the module_utils of a module (ansible_mitogen.module_finder.scan) ----------------------------------------

_scan = ansible_mitogen.module_finder.scan


def cached_scan(module_name, module_path, search_path):
    key = _key("scan", module_name, module_path, json.dumps(list(search_path)))
    doc = _load("scan", key)
    if doc is not None and all(_digest(path) == digest for path, digest in doc["digests"].items()):
        return [tuple(entry) for entry in doc["result"]]
    result = _scan(module_name, module_path, search_path)
    paths = [module_path] + [entry[1] for entry in result]
    _store("scan", key, {"digests": {path: _digest(path) for path in paths}, "result": [list(e) for e in result]})
    return result


mitogen.master.ModuleResponder._build_tuple = cached_build_tuple
ansible_mitogen.module_finder.scan = cached_scan

Base = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):
    pass
