"""Jinja's compiled templates kept between tasks and between runs, for incidentctl's strategy.

ansible-core 2.19 compiles every template and conditional it evaluates anew (Jinja's parse, code generation and
Python's ``compile``), in the worker it forks for each task, so nothing compiled survives a task. The platform's
variables are templates referring to templates: compiling took 60-70% of a task's time in its worker (0.1 s of the
start notification, 0.2 s of triage's probe task). What Jinja compiles depends only on the template's source, the
environment's syntax settings, the versions of Python, Jinja and Ansible, and how each filter and test it names
takes its arguments (``pass_context`` and the like, decided when the code is generated). So the code object is
kept, keyed by all of those but the last, in memory and in incidentctl's cache (``jinja-*.bin``, marshal), with the
filters and tests it names and how each took its arguments: an entry whose filters changed since is compiled
again. An entry that cannot be read or written is compiled as Ansible would; a template that does not compile
is never kept (its error comes from Jinja as before).

install() patches Ansible's Jinja environment class in the controller, before the workers fork (they inherit it).
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
import threading

import jinja2
from ansible._internal._templating._jinja_bits import AnsibleEnvironment, _TemplateCompileContext
from ansible.release import __version__ as ansible_version
from jinja2 import nodes
from jinja2.environment import TemplateExpression
from jinja2.utils import _PassArg

from . import cache

KIND = "jinja"
VERSION = "\0".join((sys.version, jinja2.__version__, ansible_version, "1"))
_memory: dict[str, object] = {}
_pruned: list[bool] = []
_state = threading.local()  # the key of the expression being compiled (compile_expression -> compile)


def _settings(env) -> str:
    """What of the environment decides the code Jinja generates, besides the filters and tests."""
    ctx = _TemplateCompileContext.current(optional=True)
    fields = [
        type(env).__module__,
        type(env).__qualname__,
        env.code_generator_class.__qualname__,
        env.block_start_string,
        env.block_end_string,
        env.variable_start_string,
        env.variable_end_string,
        env.comment_start_string,
        env.comment_end_string,
        env.line_statement_prefix,
        env.line_comment_prefix,
        env.trim_blocks,
        env.lstrip_blocks,
        env.newline_sequence,
        env.keep_trailing_newline,
        env.optimized,
        env.is_async,
        env.autoescape if isinstance(env.autoescape, bool) else getattr(env.autoescape, "__qualname__", "?"),
        getattr(env.finalize, "__qualname__", None),
        str(_PassArg.from_obj(env.finalize)) if env.finalize else None,
        sorted(env.extensions),
        sorted(getattr(env, "intercepted_binops", ())),
        sorted(getattr(env, "intercepted_unops", ())),
        getattr(ctx, "escape_backslashes", None),
    ]
    return repr(fields)


def _key(env, *parts) -> str:
    h = hashlib.sha256(VERSION.encode())
    for part in (_settings(env), *parts):
        h.update(b"\0")
        h.update(repr(part).encode())
    return h.hexdigest()[:40]


def _pass_arg(env, kind: str, name: str) -> str | None:
    func = (env.filters if kind == "filter" else env.tests).get(name)
    return None if func is None else str(_PassArg.from_obj(func))


def _uses(env, tree: nodes.Node) -> tuple:
    """The filters and tests a template names, with how each takes its arguments now."""
    names = {("filter", n.name) for n in tree.find_all(nodes.Filter)}
    names |= {("test", n.name) for n in tree.find_all(nodes.Test)}
    return tuple((kind, name, _pass_arg(env, kind, name)) for kind, name in sorted(names))


def _path(key: str):
    return cache.directory() / f"{KIND}-{key}.bin"


def _lookup(env, key: str):
    entry = _memory.get(key)
    if entry is None:
        with contextlib.suppress(OSError, ValueError, EOFError, TypeError):
            path = _path(key)
            entry = marshal.loads(path.read_bytes())
            with contextlib.suppress(OSError):
                os.utime(path)  # in use: kept
    if entry is None:
        return None
    try:
        uses, code = entry
        if all(_pass_arg(env, kind, name) == how for kind, name, how in uses):
            _memory[key] = entry
            return code
    except Exception:  # an entry of another shape: compiled again
        pass
    _memory.pop(key, None)
    return None


def _store(key: str, uses: tuple, code) -> None:
    entry = (uses, code)
    _memory[key] = entry
    with contextlib.suppress(OSError, ValueError):
        path = _path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_bytes(marshal.dumps(entry))
        tmp.replace(path)
        if not _pruned:  # once per process: a first run stores hundreds of entries
            _pruned.append(True)
            cache.prune(KIND, suffix=".bin")


_compile = AnsibleEnvironment.compile
_compile_expression = AnsibleEnvironment.compile_expression


def compile(self, source, name=None, filename=None, raw=False, defer_init=False):
    expression_key, _state.key = getattr(_state, "key", None), None
    if raw or self._debuggable_template_source:
        return _compile(self, source, name, filename, raw, defer_init)
    try:
        if isinstance(source, str):
            key = _key(self, "template", str(source), name, filename, defer_init)
        elif expression_key and isinstance(source, nodes.Template):
            key = expression_key
        else:
            key = None
    except Exception:  # what decides the code cannot be told: compiled as always
        key = None
    if key is None:
        return _compile(self, source, name, filename, raw, defer_init)
    code = _lookup(self, key)
    if code is None:
        code = _compile(self, source, name, filename, raw, defer_init)
        with contextlib.suppress(Exception):  # keeping it is an optimisation only
            tree = self.parse(source) if isinstance(source, str) else source
            _store(key, _uses(self, tree), code)
    return code


def compile_expression(self, source, undefined_to_none=True):
    if self._debuggable_template_source or not isinstance(source, str):
        return _compile_expression(self, source, undefined_to_none)
    try:
        key = _key(self, "expression", str(source))
    except Exception:  # what decides the code cannot be told: compiled as always
        return _compile_expression(self, source, undefined_to_none)
    code = _lookup(self, key)
    if code is not None:
        template = self.template_class.from_code(self, code, self.make_globals(None), None)
        return TemplateExpression(template, undefined_to_none)
    _state.key = key  # the Template node Jinja builds from the expression reaches compile() under this key
    try:
        return _compile_expression(self, source, undefined_to_none)
    finally:
        _state.key = None


# Entries read into memory by install(), in the controller: the workers it forks find them there, not on disk.
PRELOAD_MAX = 3000


def _preload() -> None:
    with contextlib.suppress(OSError):
        paths = list(cache.directory().glob(f"{KIND}-*.bin"))
        if len(paths) > PRELOAD_MAX:
            return
        for path in paths:
            with contextlib.suppress(OSError, ValueError, EOFError, TypeError):
                _memory[path.name[len(KIND) + 1 : -len(".bin")]] = marshal.loads(path.read_bytes())


def install() -> None:
    if AnsibleEnvironment.compile is not compile:
        AnsibleEnvironment.compile = compile
        AnsibleEnvironment.compile_expression = compile_expression
        _preload()
