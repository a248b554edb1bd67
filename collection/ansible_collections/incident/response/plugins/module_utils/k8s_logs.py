# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pod logs through the official client: one container's log as bytes, a fast scan for line
counts and error-looking lines, and the last lines of a few pods for failure reports.

``tail_pods`` is the piece other modules use (``workload_restart`` shows the failing pods'
last lines): it never raises for one pod, every pod gets its lines or the reason it has none.
"""

from __future__ import annotations

import json
import re

from ansible_collections.incident.response.plugins.module_utils import k8s
from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure, bounded_map

DEFAULT_ERROR_PATTERN = r"(?i)\b(error|exception|fatal|panic|traceback|critical|severe)\b"


class LogUnavailable(Exception):
    """The server has no such log (container not started yet, no previous instance): a fact, not a failure."""


def read_log(
    clients,
    namespace,
    pod,
    container=None,
    previous=False,
    tail_lines=None,
    since_seconds=None,
    timestamps=False,
    limit_bytes=None,
    timeout=None,
):
    """One container's log as bytes (``kubectl logs``). LogUnavailable for 400/404, ModuleFailure for the rest."""
    kwargs = dict(_request_timeout=timeout, _preload_content=False)
    for key, value in (
        ("container", container),
        ("previous", previous or None),
        ("tail_lines", tail_lines),
        ("since_seconds", since_seconds),
        ("timestamps", timestamps or None),
        ("limit_bytes", limit_bytes),
    ):
        if value is not None:
            kwargs[key] = value
    what = f"read the {'previous ' if previous else ''}log of pod {namespace}/{pod}" + (
        f" container {container}" if container else ""
    )
    try:
        resp = clients.core.read_namespaced_pod_log(pod, namespace, **kwargs)
        try:
            return resp.read()
        finally:
            resp.release_conn()
    except k8s.api_failures() as exc:
        if isinstance(exc, k8s.ApiException) and exc.status in (400, 404):
            raise LogUnavailable(_message(exc)) from None
        raise ModuleFailure(k8s.explain(exc, clients, what), cluster=clients.label) from None


def _message(exc):
    try:
        return json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason)


def compile_pattern(pattern):
    """The error pattern as a bytes regex (logs are scanned as bytes, without decoding every line)."""
    try:
        return re.compile((pattern or DEFAULT_ERROR_PATTERN).encode())
    except re.error as exc:
        raise ModuleFailure(f"error_pattern {pattern!r} is not a valid regular expression: {exc}") from None


def count_lines(data):
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def scan(data, pattern, samples=5):
    """(lines, error lines, up to ``samples`` error lines as text) of one log, at C speed.

    The regex runs over the whole buffer; each match is widened to its line and the search
    goes on after that line, so a line counts once however many words match.
    """
    errors, found, pos = 0, [], 0
    while True:
        m = pattern.search(data, pos)
        if m is None:
            break
        start = data.rfind(b"\n", 0, m.start()) + 1
        end = data.find(b"\n", m.end())
        end = len(data) if end < 0 else end
        errors += 1
        if len(found) < samples:
            found.append(data[start:end].decode("utf-8", "replace"))
        pos = end + 1
        if pos >= len(data):
            break
    return count_lines(data), errors, found


def last_lines(data, n):
    """The last ``n`` lines of a log as text."""
    if n <= 0 or not data:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-n:]


def tail_pods(clients, pods, lines=20, previous=False, concurrency=8, timeout=10.0):
    """The last lines of each (namespace, pod[, container]) for a report: {"ns/pod": {lines, error}}.

    For a pod whose container restarted, ``previous=True`` also gives the last lines of the instance
    that died (often the one that says why). Never raises for one pod: its ``error`` says why it has no lines.
    """

    def one(item):
        item = tuple(item)
        ns, name, container = item[0], item[1], item[2] if len(item) > 2 else None
        out = dict(lines=[], previous_lines=None, error=None)
        try:
            out["lines"] = last_lines(read_log(clients, ns, name, container, tail_lines=lines, timeout=timeout), lines)
            if previous:
                try:
                    data = read_log(clients, ns, name, container, previous=True, tail_lines=lines, timeout=timeout)
                    out["previous_lines"] = last_lines(data, lines)
                except LogUnavailable:
                    pass
        except LogUnavailable as exc:
            out["error"] = f"no log: {exc}"
        except ModuleFailure as exc:
            out["error"] = exc.msg
        return f"{ns}/{name}" + (f"/{container}" if container else ""), out

    return dict(bounded_map(one, pods, concurrency))
