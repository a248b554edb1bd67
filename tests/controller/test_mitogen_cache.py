"""incidentctl's mitogen strategy keeps what mitogen computes about shipped modules between runs, and computes it
again when a source changes (strategy/incident_mitogen_linear.py)."""

from __future__ import annotations

import importlib
import json
import sys

import ansible.executor.module_common
import pytest

from incidentctl.project import ansible_env, mitogen_env

pytest.importorskip("ansible_mitogen", reason="mitogen is a declared dependency; without it there is no cache")
cache = importlib.import_module("incidentctl.strategy.incident_mitogen_linear")


def refuse(*_args, **_kwargs):
    raise AssertionError("computed again instead of read from the cache")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "incidentctl"


def entries(cache_dir, kind):
    return sorted(cache_dir.glob(f"mitogen-{kind}-*.json"))


def test_the_module_utils_of_a_module_are_kept_and_scanned_again_when_a_file_changes(tmp_path, cache_dir, monkeypatch):
    module = tmp_path / "probe_module.py"
    module.write_text("from ansible.module_utils.common.text.converters import to_text\n")
    args = (
        "ansible_collections.x.y.plugins.modules.probe_module",
        str(module),
        (ansible.executor.module_common._MODULE_UTILS_PATH,),
    )

    first = cache.cached_scan(*args)
    assert "ansible.module_utils.common.text.converters" in [name for name, _path, _pkg in first]
    assert len(entries(cache_dir, "scan")) == 1

    monkeypatch.setattr(cache, "_scan", refuse)
    assert cache.cached_scan(*args) == first  # from the cache: the scan was not run

    module.write_text("from ansible.module_utils.common.validation import check_type_int\n")
    with pytest.raises(AssertionError, match="computed again"):
        cache.cached_scan(*args)  # the module changed: its entry no longer holds


def test_a_module_payload_is_kept_and_built_again_when_its_source_changes(tmp_path, cache_dir, monkeypatch):
    import mitogen.master

    package = tmp_path / "cachedpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("cachedpkg.mod")
    broker = mitogen.master.Broker()
    try:
        first = mitogen.master.Router(broker).responder._build_tuple("cachedpkg.mod")
        assert first[0] == "cachedpkg.mod" and len(entries(cache_dir, "payload")) == 1

        monkeypatch.setattr(cache, "_build_tuple", refuse)
        again = mitogen.master.Router(broker).responder._build_tuple("cachedpkg.mod")  # a new run's responder
        assert again == first and bytes(again[3]) == bytes(first[3])

        (package / "mod.py").write_text("VALUE = 2\n")
        with pytest.raises(AssertionError, match="computed again"):
            mitogen.master.Router(broker).responder._build_tuple("cachedpkg.mod")

        # A package's payload names its submodules: one more submodule is a new entry, not the old answer.
        monkeypatch.undo()
        monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir.parent))
        monkeypatch.syspath_prepend(str(tmp_path))
        before = mitogen.master.Router(broker).responder._build_tuple("cachedpkg")
        (package / "other.py").write_text("")
        after = mitogen.master.Router(broker).responder._build_tuple("cachedpkg")
        assert "other" not in before[1] and "other" in after[1]
    finally:
        broker.shutdown()
        broker.join()
        sys.modules.pop("cachedpkg.mod", None)
        sys.modules.pop("cachedpkg", None)


def test_mitogen_core_minified_for_new_connections_is_kept(cache_dir, monkeypatch):
    import inspect

    import mitogen.core
    import mitogen.minify
    import mitogen.parent

    assert mitogen.parent._get_core_source is cache.cached_core_source  # what every new connection boots from
    first = cache.cached_core_source()
    # mitogen's core, its compiles of received modules through the code cache (see the test below)
    assert first == mitogen.minify.minimize_source(cache.core_with_code_cache(inspect.getsource(mitogen.core)))
    assert "class Router" in first and "_incidentctl_compile(source, origin)" in first
    assert len(list(cache_dir.glob("mitogen-core-*.json"))) == 1
    monkeypatch.setattr(cache, "_core_source", refuse)
    monkeypatch.setattr(mitogen.minify, "minimize_source", refuse)
    assert cache.cached_core_source() == first  # read, not minified again


def test_runs_use_the_cached_strategy_and_fill_the_cache(tmp_path):
    """A module task run with incidentctl's environment runs the cached strategy: after it the cache holds the
    payloads of the modules it shipped and the module_utils of the module it ran."""
    from support import PROJECT_ROOT, run_module

    if not mitogen_env():
        pytest.skip("INCIDENTCTL_NO_MITOGEN is set: the default strategy runs")
    assert ansible_env(PROJECT_ROOT)["ANSIBLE_STRATEGY"] == "incident_mitogen_linear"
    res = run_module("ansible.builtin.ping", {"data": "pong"}, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert not res["failed"] and res["ping"] == "pong", res
    names = {json.loads(p.read_text())[0] for p in entries(tmp_path / "cache" / "incidentctl", "payload")}
    assert "ansible.module_utils.basic" in names
    assert entries(tmp_path / "cache" / "incidentctl", "scan")


PRELOAD = """
import json, sys
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader([sys.argv[1]])
import incidentctl.strategy.incident_mitogen_linear as strategy
watched = ["jsonschema", "ansible_collections.incident.response.plugins.filter.conforms",
           "ansible_collections.incident.response.plugins.filter.db_clusters"]
before = [name for name in watched if name in sys.modules]
strategy.preload_jinja_plugins()
print(json.dumps({"before": before, "after": [name for name in watched if name in sys.modules],
                  "builtin": any(name.startswith("ansible.plugins.filter.core") for name in sys.modules)}))
"""


def test_the_jinja_plugins_are_loaded_in_the_controller_before_the_workers_fork():
    """The strategy loads the builtin and the collection's filters (and what they import: jsonschema for conforms)
    in the controller process, so each task's forked worker finds them loaded instead of loading them again."""
    import subprocess

    from support import PROJECT_ROOT

    out = subprocess.run(
        [sys.executable, "-c", PRELOAD, str(PROJECT_ROOT / "collection")], capture_output=True, text=True, check=True
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["before"] == [], loaded  # importing the strategy alone loads nothing
    assert loaded["after"] == [
        "jsonschema",
        "ansible_collections.incident.response.plugins.filter.conforms",
        "ansible_collections.incident.response.plugins.filter.db_clusters",
    ]
    assert loaded["builtin"]


@pytest.mark.parametrize(
    ("script", "signal_name"),
    [
        ("import time; time.sleep(60)", "SIGTERM"),
        ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
         "time.sleep(60)", "SIGKILL"),
    ],
)  # fmt: skip
def test_a_disconnected_context_is_still_ended_by_the_reaper_sigterm_then_sigkill(script, signal_name):
    """The reaper looks sooner than mitogen's own schedule, and still ends what does not end by itself."""
    import signal
    import subprocess
    import time

    import mitogen.master
    import mitogen.parent

    assert mitogen.parent.Reaper._calc_delay is cache.reap_delay
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    if signal_name == "SIGKILL":
        assert proc.stdout.readline() == "ready\n"  # its SIGTERM handler is in place
    broker = mitogen.master.Broker()
    try:
        reaper = mitogen.parent.Reaper(broker, mitogen.parent.PopenProcess(proc, None, None), True, True)
        broker.defer(reaper.reap)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.returncode == -getattr(signal, signal_name)
    finally:
        broker.shutdown()
        broker.join()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()


def test_ansible_core_s_notice_about_this_strategy_is_left_out_and_other_deprecations_are_not(monkeypatch):
    from ansible.utils.display import Display

    display = Display()
    shown = []
    monkeypatch.setattr(type(display), "deprecated", lambda self, msg, *a, **kw: shown.append(msg))
    monkeypatch.delitem(vars(display), "deprecated", raising=False)

    cache.skip_strategy_notice()
    display.deprecated(msg=f"{cache.STRATEGY_NOTICE} and do not carry any backwards compatibility guarantees.")
    display.deprecated(msg="some other feature is going away")
    assert shown == ["some other feature is going away"]

    cache.skip_strategy_notice()
    display.deprecated("another deprecation came first")  # printed, and nothing more is left out after it
    display.deprecated(f"{cache.STRATEGY_NOTICE}.")
    assert shown[1:] == ["another deprecation came first", f"{cache.STRATEGY_NOTICE}."]


def test_a_local_context_keeps_the_modules_it_compiles_and_compiles_an_edited_one_again(tmp_path, monkeypatch):
    """A context started on this machine compiles a module it receives once: the next context (the next run)
    loads the code object from the cache; a module whose source changed is compiled again."""
    import marshal

    import mitogen.master

    package = tmp_path / "served"
    package.mkdir()
    (package / "servedmod.py").write_text("VALUE = 'compiled'\n")
    monkeypatch.syspath_prepend(str(package))  # the parent has it, a new context does not: mitogen sends it
    code_cache = tmp_path / "code"
    code_cache.mkdir()
    monkeypatch.setenv(cache.CODE_CACHE_ENV, str(code_cache))
    assert mitogen.parent._get_core_source is cache.cached_core_source

    def value_in_a_new_context():
        importlib.invalidate_caches()
        broker = mitogen.master.Broker()
        try:
            context = mitogen.master.Router(broker).local(python_path=sys.executable)
            return context.call(eval, "__import__('servedmod').VALUE")
        finally:
            broker.shutdown()
            broker.join()

    assert value_in_a_new_context() == "compiled"
    entries = sorted(code_cache.glob(f"{cache.CODE_CACHE_KIND}-*.bin"))
    assert len(entries) == 1
    # The next context takes the code object from the cache, not the source: give the entry other code.
    entries[0].write_bytes(marshal.dumps(compile("VALUE = 'from the cache'", "servedmod.py", "exec")))
    assert value_in_a_new_context() == "from the cache"

    (package / "servedmod.py").write_text("VALUE = 'edited'\n")
    sys.modules.pop("servedmod", None)
    assert value_in_a_new_context() == "edited"
    assert len(list(code_cache.glob(f"{cache.CODE_CACHE_KIND}-*.bin"))) == 2


def test_contexts_compile_as_usual_when_mitogen_does_not_compile_as_expected():
    source = "def f():\n    return compile(source, origin, 'exec')\n"
    assert cache.core_with_code_cache(source) is None
