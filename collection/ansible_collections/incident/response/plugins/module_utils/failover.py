# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Region failover helpers: regions as inventory data, the nginx upstream file, nginx reloads.

A region is ``{servers: ["host:port", ...], health_url: url or [urls]}`` (or just the list
of servers). The nginx provider owns one include file holding one ``upstream`` block and
marks it with the region it points at; a file written by hand is recognised by its servers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import string
import time

from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure

MARKER = "# Managed by incident.response.traffic_failover: region="
_UNSAFE = re.compile(r"[;{}\n\r#]")


def normalize_regions(regions):
    """``{name: {servers: [...], health_urls: [...]}}`` from the inventory's shape, or ModuleFailure."""
    if not regions:
        raise ModuleFailure("regions is empty: describe each region (servers and health_url)")
    out = {}
    for name, spec in regions.items():
        if isinstance(spec, (list, tuple)):
            spec = {"servers": list(spec)}
        if not isinstance(spec, dict):
            raise ModuleFailure(f"regions.{name} must be a dict with servers and health_url, or a list of servers")
        servers = spec.get("servers") or []
        if isinstance(servers, str):
            servers = [servers]
        urls = spec.get("health_url") or []
        if isinstance(urls, str):
            urls = [urls]
        for server in servers:
            if not str(server).strip() or _UNSAFE.search(str(server)):
                raise ModuleFailure(
                    f"regions.{name}.servers has {server!r}: give 'host:port' with optional nginx server "
                    "parameters, without ; {{ }} # or line breaks"
                )
        out[str(name)] = dict(servers=[str(s).strip() for s in servers], health_urls=[str(u) for u in urls])
    return out


def region_of(regions, name, what):
    if name not in regions:
        raise ModuleFailure(f"{what} {name!r} is not among the regions: {', '.join(sorted(regions))}")
    return regions[name]


# -- the nginx upstream file ----------------------------------------------------------------
def render_upstream(upstream_name, region, servers, directives=(), backup_file=None):
    if not servers:
        raise ModuleFailure(f"region {region} has no servers: the nginx provider needs regions.{region}.servers")
    for line in directives:
        if _UNSAFE.search(line.rstrip(";")):
            raise ModuleFailure(f"upstream_directives entry {line!r} must be one directive without braces or #")
    lines = [f"{MARKER}{region}"]
    if backup_file:
        lines.append(f"# Written by the module; the file it replaced is kept in {backup_file} for rollback.")
    lines.append(f"upstream {upstream_name} {{")
    lines += [f"    server {server};" for server in servers]
    lines += [f"    {line.rstrip(';')};" for line in directives]
    lines.append("}")
    return "\n".join(lines) + "\n"


def same_upstream(a, b):
    """Whether two upstream files configure the same thing: comments (the marker, where the backup is) aside."""
    if a is None or b is None:
        return a is b

    def significant(text):
        return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]

    return significant(a) == significant(b)


def upstream_servers(text, upstream_name):
    """The server addresses of ``upstream <name> { ... }`` in ``text`` (empty when absent)."""
    m = re.search(r"upstream\s+" + re.escape(upstream_name) + r"\s*\{(.*?)\}", text or "", re.S)
    if not m:
        return []
    body = re.sub(r"#[^\n]*", "", m.group(1))
    return [s.split()[0] for s in re.findall(r"(?:^|;|\s)server\s+([^;]+);", body)]


def current_region(text, upstream_name, regions):
    """The region the file points at: its marker, else the region whose servers it lists, else None."""
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith(MARKER):
            name = line[len(MARKER) :].strip()
            return name or None
    found = sorted(upstream_servers(text, upstream_name))
    for name, spec in regions.items():
        if found and found == sorted(s.split()[0] for s in spec["servers"]):
            return name
    return None


@contextlib.contextmanager
def exclusive(path):
    """One failover at a time per upstream file (a lock file beside it, never matched by a *.conf include)."""
    lock_path = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.lock")
    try:
        fh = open(lock_path, "a")  # noqa: SIM115  # pylint: disable=consider-using-with
    except OSError as exc:
        raise ModuleFailure(f"cannot create the lock file {lock_path}: {exc.strerror}") from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ModuleFailure(
                f"another traffic_failover is changing {path} right now: wait for it, then retry"
            ) from None
        yield


# -- nginx -----------------------------------------------------------------------------------
def nginx_cmd(p, *args):
    """The nginx command line for the module's options (nginx_binary, nginx_prefix, nginx_config, nginx_error_log)."""
    cmd = [p["nginx_binary"]]
    for flag, key in (("-p", "nginx_prefix"), ("-c", "nginx_config"), ("-e", "nginx_error_log")):
        if p.get(key):
            cmd += [flag, p[key]]
    return cmd + list(args)


def run_nginx(module, *args):
    """(rc, combined output) of one nginx command."""
    rc, out, err = module.run_command(nginx_cmd(module.params, *args))
    return rc, "\n".join(t.strip() for t in (out, err) if t.strip())


def read_pid(pid_file):
    try:
        with open(pid_file) as fh:
            pid = int(fh.read().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def children(pid):
    """Live child processes of ``pid`` (nginx workers of a master)."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            out.add(int(entry))
    return out


def _draining(pid):
    """True for an nginx worker told to quit: it closed its listening sockets (no new connection goes to it) and
    only finishes the requests it has; nginx titles it "worker process is shutting down" at that moment."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"shutting down" in fh.read()
    except OSError:
        return False


def signal_reload(pid_file, timeout):
    """SIGHUP to the master in ``pid_file``; wait until no worker of the old configuration takes new connections:
    each exited, or is shutting down and only finishes its requests in flight (``draining``, such as requests
    to a frozen region, which would otherwise hold the wait until they time out)."""
    pid = read_pid(pid_file)
    if pid is None:
        raise ModuleFailure(
            f"no running nginx master in pid file {pid_file}: start nginx, fix pid_file, "
            "or set reload=false to only write the file"
        )
    old = children(pid)
    start = time.monotonic()
    os.kill(pid, signal.SIGHUP)
    while True:
        left = {p for p in old if _alive(p)}
        accepting = {p for p in left if not _draining(p)}
        waited = round((time.monotonic() - start) * 1000, 1)
        if not accepting:
            return dict(method="signal", pid=pid, complete=True, waited_ms=waited, draining=sorted(left))
        if not _alive(pid):
            raise ModuleFailure(f"the nginx master (pid {pid}) exited during the reload: check nginx's error log")
        if time.monotonic() - start > timeout:
            return dict(method="signal", pid=pid, complete=False, waited_ms=waited, old_workers=sorted(accepting))
        time.sleep(0.02)


# -- the http provider ------------------------------------------------------------------------
def substitute(value, variables):
    """``${to_region}``-style placeholders replaced in every string of a body (dict, list or str)."""
    if isinstance(value, str):
        return string.Template(value).safe_substitute(variables)
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    return value


def dig(data, path):
    """``data["a"]["b"]`` for ``a.b``; None when a key is missing."""
    for key in path.split("."):
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and key.isdigit() and int(key) < len(data):
            data = data[int(key)]
        else:
            return None
    return data
