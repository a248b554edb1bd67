# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mitogen's linear strategy, with what it works out about the modules it ships kept on disk between runs.

Every run of ansible-playbook under mitogen starts with empty caches: before a module's first task, the
controller compiles the module and everything it imports to find what to send (``find_related``), minifies and
compresses each source, and scans the module's module_utils (``module_finder.scan``). That is CPU on the way to
every first task of a module: ~0.4 s of the first connection and ~0.1-0.3 s of each module's first use, paid
again by every run (measured in the README's Speed section). The answers depend only on the sources, so this
strategy keeps them in incidentctl's cache (incidentctl.cache: ``$XDG_CACHE_HOME/incidentctl``, ``mitogen-*``
files), keyed by what they are computed from:

* a module's payload by the digest of its name, path and source (and, for a package, the names of its
  submodules), with mitogen's and Python's versions;
* a module's module_utils by the module's path and search path, and checked on every use against the digest
  of each file it names (the module and every module_utils it resolved), so an edited file is scanned again;
* mitogen's own core, minified for the first connection of every run (~0.1 s), by the digest of its source.

A cache entry that cannot be read or written is ignored: the run computes it as mitogen would. Nothing else in
mitogen's behaviour changes.

It also loads, once in the controller process, the Jinja filter and test plugins the playbooks use (ansible.builtin's
and this collection's), before any task's worker is forked: a worker otherwise loads each plugin it templates anew
(its collection's routing, its module, what the module imports: jsonschema for ``conforms`` alone is ~90 ms), and a
task that refers to the incident record (``incident_ref``) or the database clusters cost 0.1-0.15 s more for it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import inspect
import json
import os
import pkgutil
import sys

import ansible_mitogen.loaders
import ansible_mitogen.module_finder
import ansible_mitogen.strategy
import mitogen
import mitogen.core
import mitogen.master
import mitogen.minify
import mitogen.parent

from incidentctl import cache

VERSION = json.dumps([list(mitogen.__version__), sys.version])


def _key(*parts) -> str:
    h = hashlib.sha256(VERSION.encode())
    for part in parts:
        h.update(b"\0")
        h.update(part if isinstance(part, bytes) else str(part).encode())
    return h.hexdigest()[:32]


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


def _payload_valid(doc) -> bool:
    return isinstance(doc, list) and len(doc) == 5


def cached_build_tuple(self, fullname):
    if fullname in self._cache:
        return self._cache[fullname]
    try:
        key = _payload_key(self, fullname)
    except Exception:  # whatever went wrong, mitogen's own path says it
        key = None
    if key is None:
        return _build_tuple(self, fullname)

    def build():
        name, pkg_present, path, blob, related = _build_tuple(self, fullname)
        return [name, pkg_present, path, base64.b64encode(bytes(blob)).decode(), list(related)]

    name, pkg_present, path, blob, related = cache.cached("mitogen-payload", key, build, _payload_valid)
    tup = (name, pkg_present, path, mitogen.core.Blob(base64.b64decode(blob)), related)
    self._cache[fullname] = tup
    return tup


# -- the module_utils of a module (ansible_mitogen.module_finder.scan) ----------------------------------------

_scan = ansible_mitogen.module_finder.scan


def _scan_valid(doc) -> bool:
    """An entry holds while every file it was computed from (the module, its module_utils) is unchanged."""
    try:
        return all(_digest(path) == digest for path, digest in doc["digests"].items())
    except (AttributeError, KeyError, TypeError):
        return False


def cached_scan(module_name, module_path, search_path):
    def scan():
        result = _scan(module_name, module_path, search_path)
        paths = [module_path] + [entry[1] for entry in result]
        return {"digests": {path: _digest(path) for path in paths}, "result": [list(e) for e in result]}

    key = _key("scan", module_name, module_path, json.dumps(list(search_path)))
    return [tuple(entry) for entry in cache.cached("mitogen-scan", key, scan, _scan_valid)["result"]]


# -- mitogen's own core, minified for each new connection (mitogen.parent._get_core_source) ------------------

_core_source = mitogen.parent._get_core_source

# A context compiles every module it receives (Ansible's module_utils, ansible_mitogen, the collection's): ~0.12 s
# of CPU in each run's first module task for triage's, before its probes start. A context started on this machine
# (a local connection: it inherits this process's environment) keeps the code objects in incidentctl's cache,
# keyed by the source, its file name and the Python version, as Python keeps .pyc files; any other context (over
# SSH) compiles as mitogen does. The function goes into mitogen's core as sent to contexts: keep it valid for
# every Python mitogen supports there (no f-strings).
CODE_CACHE_ENV = "INCIDENTCTL_CONTEXT_CODE_CACHE"
CODE_CACHE_KIND = "mitogen-code"
CODE_CACHE_SOURCE = """

def _incidentctl_compile(source, origin):
    root = os.environ.get('__ENV__')
    if not root:
        return compile(source, origin, 'exec', 0, 1)
    import hashlib
    import marshal
    digest = hashlib.sha256(source if isinstance(source, bytes) else source.encode('utf-8'))
    digest.update(('\\0%s\\0%s' % (origin, sys.version)).encode('utf-8'))
    path = os.path.join(root, '__KIND__-' + digest.hexdigest()[:32] + '.bin')
    try:
        fh = open(path, 'rb')
        try:
            code = marshal.loads(fh.read())
        finally:
            fh.close()
        os.utime(path, None)
        return code
    except Exception:
        pass
    code = compile(source, origin, 'exec', 0, 1)
    try:
        tmp = '%s.%d.tmp' % (path, os.getpid())
        fh = open(tmp, 'wb')
        try:
            fh.write(marshal.dumps(code))
        finally:
            fh.close()
        os.rename(tmp, path)
    except Exception:
        pass
    return code
""".replace("__ENV__", CODE_CACHE_ENV).replace("__KIND__", CODE_CACHE_KIND)
# mitogen's two compile calls of received modules (exec_module, and load_module for Pythons before 3.4)
CODE_CACHE_CALLS = (
    ("compile(source, origin, 'exec', flags=0, dont_inherit=True)", "_incidentctl_compile(source, origin)"),
    ("compile(source, mod.__file__, 'exec', 0, 1)", "_incidentctl_compile(source, mod.__file__)"),
)


def core_with_code_cache(source):
    """mitogen.core's source with its compiles of received modules through the code cache, or None when this
    mitogen does not compile them as expected (its contexts then compile as usual)."""
    for call, cached in CODE_CACHE_CALLS:
        if source.count(call) != 1:
            return None
        source = source.replace(call, cached)
    return source + CODE_CACHE_SOURCE


def cached_core_source():
    """The minified source of mitogen.core every new context boots from (~0.1 s of minify per run), with the
    code cache when it applies."""
    source = inspect.getsource(mitogen.core)
    patched = core_with_code_cache(source)
    key = _key("core", source, patched is not None)

    def build():
        return _core_source() if patched is None else mitogen.minify.minimize_source(patched)

    return cache.cached("mitogen-core", key, build, lambda doc: isinstance(doc, str) and bool(doc))


def enable_code_cache():
    """Let the contexts this run starts on this machine keep their compiled modules (see CODE_CACHE_SOURCE)."""
    os.environ[CODE_CACHE_ENV] = str(cache.directory())
    cache.directory().mkdir(parents=True, exist_ok=True)
    cache.prune(CODE_CACHE_KIND, suffix=".bin")


# -- the end of a run: the multiplexers' reaper (mitogen.parent.Reaper) --------------------------------------


def reap_delay(_reaper, count):
    """Seconds before the reaper's next look at a disconnected context's process.

    At a run's end each multiplexer disconnects its contexts (the Python that ran the modules) and waits for their
    processes: mitogen looks again after 50 ms, sends SIGTERM at that second look and looks next 86 ms later. A
    context with Ansible, the Kubernetes client and PyMySQL loaded takes more than 50 ms to tear its heap down, so
    every run ended ~0.14 s after its last task. A disconnected context has nothing left to deliver: look every
    10 ms at first (SIGTERM at the second look, SIGKILL at the sixth, as mitogen does, 0.2 s in instead of 0.9 s).
    """
    return 0.01 * 1.72**count


mitogen.master.ModuleResponder._build_tuple = cached_build_tuple
ansible_mitogen.module_finder.scan = cached_scan
mitogen.parent._get_core_source = cached_core_source
mitogen.parent.Reaper._calc_delay = reap_delay
with contextlib.suppress(OSError):
    enable_code_cache()
with contextlib.suppress(Exception):  # an optimisation on ansible-core's internals: without them, Ansible as it is
    from incidentctl import jinja_cache

    jinja_cache.install()

# -- the Jinja plugins, loaded before the workers fork ------------------------------------------------------

COLLECTIONS = ("incident.response",)
LOOKUPS = ("ansible.builtin.env", "ansible.builtin.file")


def _jinja_plugin_names(kind):
    """The FQCNs of COLLECTIONS' plugins of ``kind`` (filter, test)."""
    names = []
    for collection in COLLECTIONS:
        try:
            spec = importlib.util.find_spec(f"ansible_collections.{collection}.plugins.{kind}")
        except (ImportError, ValueError):
            continue
        locations = (spec and spec.submodule_search_locations) or []
        names += [f"{collection}.{info.name}" for info in pkgutil.iter_modules(locations)]
    return names


def preload_jinja_plugins():
    """Load every builtin filter and test, those of COLLECTIONS and the LOOKUPS in this (the controller's) process.

    An optimisation only: a plugin that cannot be loaded here is left to the task that uses it, which says why.
    """
    from ansible.plugins.loader import filter_loader, lookup_loader, test_loader

    loads = [lambda: list(filter_loader.all()), lambda: list(test_loader.all())]
    loads += [lambda name=name: lookup_loader.get(name) for name in LOOKUPS]
    loads += [lambda name=name: filter_loader.get(name) for name in _jinja_plugin_names("filter")]
    loads += [lambda name=name: test_loader.get(name) for name in _jinja_plugin_names("test")]
    for load in loads:
        with contextlib.suppress(Exception):
            load()


# -- ansible-core's notice about strategies outside ansible.builtin -----------------------------------------

STRATEGY_NOTICE = "Use of strategy plugins not included in ansible.builtin are deprecated"


def skip_strategy_notice():
    """Leave out ansible-core's deprecation notice for this strategy, the next deprecation it would print.

    ansible-core prints it after loading any strategy outside ansible.builtin, in every run: two warnings in each
    run's output that nobody running a procedure can act on (the project chose mitogen's strategy knowingly, see
    the README's Speed section), and 30-40 ms of a walk of the stack to name who deprecated it. Any other
    deprecation that comes first is printed as usual, and the next ones are not looked at.
    """
    from ansible.utils.display import Display

    display = Display()
    if "deprecated" in vars(display):  # already waiting for it
        return

    def deprecated(msg, *args, **kwargs):
        del display.deprecated
        if not str(msg).startswith(STRATEGY_NOTICE):
            display.deprecated(msg, *args, **kwargs)

    display.deprecated = deprecated


with contextlib.suppress(Exception):
    skip_strategy_notice()

Base = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        preload_jinja_plugins()
