# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network checks of the runbook's Network Analysis (``nslookup $DB_HOST``, ``ping $DB_HOST``):
name resolution and TCP reachability with latency, from the controller or from inside a pod.

From the controller the checks are plain sockets. Inside a pod they are a POSIX ``sh``
script run through the API's ``exec`` (the official client's websocket stream): ``getent``
or ``nslookup`` to resolve, ``nc -z`` or bash's ``/dev/tcp`` to connect, ``date +%s%N``
for timings. A cluster that does not allow exec (RBAC, policy, an API without it) is
reported as such (:class:`ExecUnavailable`), so the caller can fall back or fail clearly.
ICMP ping needs privileges neither side has; the TCP connect time is the latency.
"""

from __future__ import annotations

import re
import shlex
import socket
import threading
import time

from ansible_collections.incident.response.plugins.module_utils import k8s
from ansible_collections.incident.response.plugins.module_utils.common import cap

try:
    from kubernetes import client as kclient
    from kubernetes.stream import stream as kstream
except ImportError:  # k8s.require_kubernetes() says what is missing
    kclient = kstream = None


class ExecUnavailable(Exception):
    """The cluster does not let us exec into the pod; the message says why. ``timed_out``: it did not answer."""

    def __init__(self, msg, timed_out=False):
        super().__init__(msg)
        self.timed_out = timed_out


def _in_thread(fn, timeout):
    """(value, error) of ``fn()`` within ``timeout`` seconds; (None, TimeoutError) when it takes longer.

    getaddrinfo and the websocket connect have no timeout of their own; the thread is left behind.
    """
    box = {}

    def target():
        try:
            box["value"] = fn()
        except Exception as exc:  # handed to the caller
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        return None, TimeoutError(f"no answer within {timeout:g}s")
    return box.get("value"), box.get("error")


def _ms(seconds):
    return round(seconds * 1000, 2)


def check(target, timeout, deadline=None):
    """Resolve ``target['host']`` and, with a port, connect to it, from this machine, within ``timeout``
    seconds cut to what is left of ``deadline`` (a common.Deadline for the whole step, or None)."""
    host, port = target["host"], target.get("port")
    out = check_template(target)
    out["tool"] = "socket"
    if deadline is not None and deadline.spent:
        out.update(error=f"{host}: not checked: the step's deadline was spent", timed_out=True)
        if port:
            out["reachable"] = False
        return out
    timeout = cap(deadline, timeout)
    start = time.monotonic()
    infos, err = _in_thread(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    out["resolve_ms"] = _ms(time.monotonic() - start)
    if err is not None:
        out["error"] = f"cannot resolve {host}: " + (
            err.strerror if isinstance(err, socket.gaierror) and err.strerror else str(err)
        )
        out["timed_out"] = isinstance(err, TimeoutError)
        if port:
            out["reachable"] = False
        return out
    out["resolved"] = True
    out["addresses"] = list(dict.fromkeys(info[4][0] for info in infos))
    if not port:
        out["latency_ms"] = out["resolve_ms"]
        return out
    remaining = max(0.05, timeout - (time.monotonic() - start))
    failures = []
    for family, socktype, proto, _canonname, addr in infos:
        sock = socket.socket(family, socktype, proto)
        sock.settimeout(remaining)
        t0 = time.monotonic()
        try:
            sock.connect(addr)
            out.update(reachable=True, connect_ms=_ms(time.monotonic() - t0), address=addr[0])
            break
        except TimeoutError:
            failures.append((addr[0], f"no answer within {remaining:g}s"))
            out["timed_out"] = True
        except OSError as exc:
            failures.append((addr[0], exc.strerror or str(exc)))
        finally:
            sock.close()
    if not out["reachable"]:
        reasons = "; ".join(r if len(failures) == 1 and a == host else f"{a}: {r}" for a, r in failures)
        out.update(reachable=False, error=f"cannot connect to {host}:{port}: {reasons}")
    else:
        out.update(timed_out=False, latency_ms=round(out["resolve_ms"] + out["connect_ms"], 2))
    return out


# -- from inside a pod -------------------------------------------------------------------

# Every target in its own subshell, at once. One line per result (a short write, so lines do not mix):
# R|index|addresses|start ns|end ns   and   C|index|exit code|start ns|end ns|tool
POD_SCRIPT = r"""
now() { d=$(date +%s%N 2>/dev/null); case "$d" in *N*|'') echo '';; *) echo "$d";; esac; }
resolve() {
  if command -v getent >/dev/null 2>&1; then
    getent ahosts "$1" 2>/dev/null | awk '{print $1}' | sort -u | tr '\n' ' '
  elif command -v nslookup >/dev/null 2>&1; then
    nslookup "$1" 2>/dev/null \
      | awk '/^Name:/{n=1;next} n && /^Address/{sub(/^Address[ 0-9]*:[ ]*/,""); print $1}' | tr '\n' ' '
  fi
}
probe() {
  if command -v nc >/dev/null 2>&1; then echo nc; nc -z -w "$3" "$1" "$2" >/dev/null 2>&1; return $?; fi
  if command -v bash >/dev/null 2>&1; then echo bash
    if command -v timeout >/dev/null 2>&1; then
      timeout "$3" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; return $?
    fi
    bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; return $?
  fi
  echo none; return 127
}
i=0
while [ $# -ge 2 ]; do
  h=$1; p=$2; shift 2
  (
    s=$(now); a=$(resolve "$h"); e=$(now)
    echo "R|$i|$a|$s|$e"
    if [ "$p" != "-" ] && [ -n "$a" ]; then
      s=$(now); tool=$(probe "$h" "$p" "$T"); rc=$?; e=$(now)
      echo "C|$i|$rc|$s|$e|$tool"
    fi
  ) &
  i=$((i+1))
done
wait
"""


def pod_command(targets, timeout):
    """argv for the exec: ``sh -c SCRIPT probe host port ...`` (``-`` for no port), timeout in $T."""
    args = []
    for t in targets:
        args += [t["host"], str(t["port"]) if t.get("port") else "-"]
    seconds = max(1, round(timeout))
    return ["sh", "-c", f"T={seconds}; export T; " + POD_SCRIPT, "probe", *args]


def parse_pod_output(text, targets, cluster, pod):
    """The checks from the script's output lines, in the order of ``targets``."""
    results = []
    for t in targets:
        r = check_template(t)
        r.update(source="pod", cluster=cluster, pod=pod, tool=None)
        results.append(r)
    for line in (text or "").splitlines():
        parts = line.strip().split("|")
        if len(parts) < 5 or parts[0] not in ("R", "C") or not parts[1].isdigit() or int(parts[1]) >= len(results):
            continue
        r = results[int(parts[1])]
        ms = _elapsed_ms(parts[3], parts[4])
        if parts[0] == "R":
            addrs = parts[2].split()
            r.update(resolved=bool(addrs), addresses=addrs, resolve_ms=ms)
            if not addrs:
                r["error"] = f"cannot resolve {r['host']} inside the pod"
                if r["port"]:
                    r["reachable"] = False
            elif not r["port"]:
                r["latency_ms"] = ms
        else:
            code = int(parts[2]) if parts[2].lstrip("-").isdigit() else 1
            r["tool"] = parts[5] if len(parts) > 5 else None
            r["connect_ms"] = ms
            r["reachable"] = code == 0
            if code == 0:
                r["address"] = r["addresses"][0] if r["addresses"] else None
                r["latency_ms"] = round((r["resolve_ms"] or 0) + (ms or 0), 2) if ms is not None else None
            elif code == 127 or r["tool"] == "none":
                r["reachable"] = None
                r["error"] = "the pod has neither nc nor bash to test a TCP connection"
            elif code == 124:
                r["error"] = f"cannot connect to {r['host']}:{r['port']} from the pod: no answer in time"
                r["timed_out"] = True
            else:
                r["error"] = f"cannot connect to {r['host']}:{r['port']} from the pod ({r['tool']} exit code {code})"
    for r in results:
        if r["resolve_ms"] is None and not r["error"]:
            r["error"] = "no result from the pod for this target"
    return results


def check_template(target):
    host, port = target["host"], target.get("port")
    return dict(
        name=target.get("name") or (f"{host}:{port}" if port else host),
        host=host,
        port=port,
        source="controller",
        cluster=None,
        pod=None,
        fallback=False,
        resolved=False,
        addresses=[],
        resolve_ms=None,
        reachable=None,
        connect_ms=None,
        latency_ms=None,
        error=None,
        timed_out=False,
        address=None,
        tool=None,
    )


def _elapsed_ms(start, end):
    try:
        return round((int(end) - int(start)) / 1e6, 2)
    except ValueError:
        return None


def exec_in_pod(clients, namespace, pod, command, container=None, timeout=30.0, deadline=None):
    """(stdout, stderr, exit code) of ``command`` in the pod, or ExecUnavailable saying why it cannot run.

    The stream temporarily rewires the API client it is given, so it gets a client of its own;
    the cached one stays safe for the other threads. Waits ``timeout`` seconds plus a grace to connect,
    all of it cut to what is left of ``deadline`` (a common.Deadline, or None).
    """
    api = kclient.CoreV1Api(kclient.ApiClient(clients.api_client.configuration))
    kwargs = dict(command=command, stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    if container:
        kwargs["container"] = container

    def run():
        ws = kstream(api.connect_get_namespaced_pod_exec, pod, namespace, **kwargs)
        try:
            ws.run_forever(timeout=timeout)
            return ws.read_stdout(), ws.read_stderr(), ws.returncode
        finally:
            ws.close()

    wait = cap(deadline, timeout + 5)
    value, err = _in_thread(run, wait)
    where = f"exec into pod {namespace}/{pod} in {clients.label}"
    if isinstance(err, TimeoutError):
        raise ExecUnavailable(f"{where} did not answer within {wait:g}s", timed_out=True)
    if err is not None:
        raise ExecUnavailable(f"{where} is not available: {describe_exec_error(err)}")
    return value


def describe_exec_error(exc):
    """Why the API refused an exec (the websocket handshake's status and the server's message)."""
    text = str(getattr(exc, "reason", None) or exc)
    m = re.search(r"Handshake status (\d+)", text)
    if not m:
        return text if len(text) < 300 else text[:300] + "..."
    status = int(m.group(1))
    msg = re.search(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
    detail = msg.group(1).replace('\\"', '"') if msg else text.split("-+-+-", maxsplit=1)[0].strip()
    if status == 403:
        return f"forbidden: the credentials may not create pods/exec (HTTP 403: {detail})"
    if status == 401:
        return f"the credentials were rejected (HTTP 401: {detail})"
    return f"the API server refused the exec request (HTTP {status}: {detail})"


def describe_target(t):
    return f"{t['host']}:{t['port']}" if t.get("port") else t["host"]


def shell_line(targets):
    """For messages: what the pod would run, roughly (``nslookup``/``nc -z``)."""
    return "; ".join(
        ("nc -z " + shlex.quote(t["host"]) + f" {t['port']}")
        if t.get("port")
        else ("nslookup " + shlex.quote(t["host"]))
        for t in targets
    )


def pick_pod(clients, selector, timeout):
    """The pod to exec into: by name, or the first running and ready pod matching the label selector."""
    ns = selector["namespace"]
    if selector.get("name"):
        what = f"read pod {ns}/{selector['name']}"
        return k8s.get_json(clients, what, f"/api/v1/namespaces/{ns}/pods/{selector['name']}", timeout=timeout)
    query = dict(labelSelector=selector.get("label_selector") or None)
    path = f"/api/v1/namespaces/{ns}/pods"
    items = k8s.get_json(clients, f"list pods in namespace {ns}", path, query, timeout).get("items") or []
    ready = [
        p
        for p in items
        if (p.get("status") or {}).get("phase") == "Running"
        and not p["metadata"].get("deletionTimestamp")
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (p.get("status") or {}).get("conditions") or []
        )
    ]
    chosen = sorted(ready or items, key=lambda p: p["metadata"]["name"])
    return chosen[0] if chosen else None
