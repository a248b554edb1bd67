# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pod logs through the official client: one container's log as bytes, a fast scan for line
counts and error-looking lines, the last lines of a few pods for failure reports, and the
:class:`Collector` that reads many logs of many clusters at once (``pod_logs`` and its benchmark).

``tail_pods`` is the piece other modules use (``workload_restart`` shows the failing pods'
last lines): it never raises for one pod, every pod gets its lines or the reason it has none.
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.incident.response.plugins.module_utils import k8s
from ansible_collections.incident.response.plugins.module_utils import k8s_views as views
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
    query = dict(
        container=container,
        previous="true" if previous else None,
        tailLines=tail_lines,
        sinceSeconds=since_seconds,
        timestamps="true" if timestamps else None,
        limitBytes=limit_bytes,
    )
    what = f"read the {'previous ' if previous else ''}log of pod {namespace}/{pod}" + (
        f" container {container}" if container else ""
    )
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
    try:
        return k8s.get_bytes(clients, path, query, timeout, accept="text/plain, */*")
    except k8s.api_failures() as exc:
        if isinstance(exc, k8s.ApiException) and exc.status in (400, 404):
            raise LogUnavailable(_message(exc)) from None
        failure = ModuleFailure(k8s.explain(exc, clients, what), cluster=clients.label)
        failure.unreachable = not isinstance(exc, k8s.ApiException)
        raise failure from None


def _message(exc):
    try:
        return json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason)


DEFAULT_ERROR_WORDS = (b"error", b"exception", b"fatal", b"panic", b"traceback", b"critical", b"severe")
_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class _Words:
    """The default pattern as whole words in any case, found with ``bytes.find`` on a lowered copy:
    several times faster than the equivalent regex on megabytes of logs (the GIL is shared by all readers)."""

    def __init__(self, words):
        self.words = words

    def line_starts(self, data):
        low = data.lower()
        starts = set()
        for word in self.words:
            i = low.find(word)
            while i >= 0:
                end = i + len(word)
                if (i == 0 or low[i - 1] not in _WORD) and (end >= len(low) or low[end] not in _WORD):
                    starts.add(low.rfind(b"\n", 0, i) + 1)
                i = low.find(word, end)
        return sorted(starts)


class _Regex:
    def __init__(self, regex):
        self.regex = regex

    def line_starts(self, data):
        """Each match is widened to its line and the search goes on after that line."""
        starts, pos = [], 0
        while pos < len(data):
            m = self.regex.search(data, pos)
            if m is None:
                break
            start = data.rfind(b"\n", 0, m.start()) + 1
            starts.append(start)
            end = data.find(b"\n", m.end())
            pos = len(data) if end < 0 else end + 1
        return starts


def compile_pattern(pattern):
    """The matcher of error-looking lines (logs are scanned as bytes, without decoding every line)."""
    if not pattern or pattern == DEFAULT_ERROR_PATTERN:
        return _Words(DEFAULT_ERROR_WORDS)
    try:
        return _Regex(re.compile(pattern.encode()))
    except re.error as exc:
        raise ModuleFailure(f"error_pattern {pattern!r} is not a valid regular expression: {exc}") from None


def count_lines(data):
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def scan(data, matcher, samples=5):
    """(lines, error lines, up to ``samples`` error lines as text) of one log; a line counts once."""
    starts = matcher.line_starts(data)
    found = []
    for start in starts[:samples]:
        end = data.find(b"\n", start)
        found.append(data[start : len(data) if end < 0 else end].decode("utf-8", "replace"))
    return count_lines(data), len(starts), found


def last_lines(data, n):
    """The last ``n`` lines of a log as text (only the tail is decoded)."""
    if n <= 0 or not data:
        return []
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    pos = end
    for _count in range(n):
        pos = data.rfind(b"\n", 0, pos)
        if pos < 0:
            break
    return data[pos + 1 : end].decode("utf-8", "replace").split("\n")


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


# -- collecting many logs at once (the pod_logs module and its benchmark) -------------------


def safe_name(name):
    """A cluster or service name as one path component."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name or "") or "_"


def write_file(path, data):
    """Write a whole file, so a reader never sees half of one (``.part``, then rename)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.part"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


class Found:
    """What the selectors matched: the containers to read, per selector the pods matched per cluster,
    listing errors, and namespaces that do not exist."""

    def __init__(self, entries, matched, errors, missing):
        self.entries, self.matched, self.errors, self.missing = entries, matched, errors, missing


class Collector:
    """Reads the logs of every selected container of every cluster concurrently, scans them, writes them.

    Files are ``<dest>/<cluster>/<namespace>/<pod>[.<container>][.previous].log``, or with
    ``group_by="service"`` one ``<service>[.previous].log`` per value of ``service_label``.
    """

    def __init__(
        self,
        clients,
        dest=None,
        write=True,
        group_by="pod",
        service_label="app",
        error_pattern=None,
        error_samples=5,
        inline_lines=0,
        previous=True,
        concurrency=16,
        timeout=None,
        **read_options,
    ):
        self.clients = clients
        self.dest = dest
        self.write = bool(dest) and write
        self.group_by = group_by
        self.service_label = service_label
        self.pattern = compile_pattern(error_pattern)
        self.error_samples = error_samples
        self.inline_lines = inline_lines
        self.previous = previous
        self.concurrency = concurrency
        self.timeout = timeout
        self.read_options = read_options  # tail_lines, since_seconds, timestamps, limit_bytes

    # -- which pods -----------------------------------------------------------------------
    def _list(self, job):
        cluster, index, sel = job
        clients = self.clients[cluster]
        query = dict(labelSelector=sel.get("label_selector") or None, fieldSelector=sel.get("field_selector") or None)
        ns = sel.get("namespace")
        where = f"in namespace {ns}" if ns else "in all namespaces"
        try:
            path = views.resource_path("/api/v1", "pods", ns)
            pods = views.list_all(clients, f"list pods {where}", path, self.timeout, **query)
            if sel.get("names"):
                pods = [p for p in pods if p["metadata"]["name"] in set(sel["names"])]
            missing = ns if ns and not pods and views.missing_namespaces(clients, [ns], self.timeout) else None
            return cluster, index, pods, missing, None
        except ModuleFailure as exc:
            return cluster, index, [], None, exc.msg

    def find(self, selectors):
        """Every container the selectors match, in every cluster (listed concurrently), each once."""
        jobs = [(name, i, sel) for name in self.clients for i, sel in enumerate(selectors)]
        matched = [dict(sel, matched={}) for sel in selectors]
        errors, missing, entries, seen = [], {}, [], set()
        for cluster, index, pods, missing_ns, error in bounded_map(self._list, jobs, self.concurrency):
            if error:
                errors.append(error)
            if missing_ns:
                missing.setdefault(cluster, []).append(missing_ns)
            matched[index]["matched"][cluster] = len(pods)
            only = selectors[index].get("container")
            for pod in pods:
                for entry in self._entries(cluster, pod, only):
                    key = (cluster, entry["namespace"], entry["pod"], entry["container"])
                    if key not in seen:
                        seen.add(key)
                        entries.append(entry)
        entries.sort(key=lambda e: (e["cluster"], e["namespace"], e["pod"], e["container"]))
        return Found(entries, matched, errors, missing)

    def _entries(self, cluster, pod, only):
        meta, spec = pod["metadata"], pod.get("spec") or {}
        statuses = {c.get("name"): c for c in (pod.get("status") or {}).get("containerStatuses") or []}
        names = [c["name"] for c in spec.get("containers") or []]
        for container in names:
            if only and container != only:
                continue
            yield dict(
                cluster=cluster,
                namespace=meta["namespace"],
                pod=meta["name"],
                container=container,
                service=(meta.get("labels") or {}).get(self.service_label),
                restarts=(statuses.get(container) or {}).get("restartCount", 0),
                file=None,
                lines=0,
                bytes=0,
                error_lines=0,
                error_samples=[],
                last_lines=[],
                previous=None,
                note=None,
                error=None,
                _single=len(names) == 1,
            )

    # -- reading --------------------------------------------------------------------------
    def path(self, cluster, namespace, stem, previous=False):
        if not self.dest:
            return None
        name = f"{stem}.previous.log" if previous else f"{stem}.log"
        return os.path.join(self.dest, safe_name(cluster), namespace, name)

    def _read(self, entry, previous):
        data = read_log(
            self.clients[entry["cluster"]],
            entry["namespace"],
            entry["pod"],
            entry["container"],
            previous=previous,
            timeout=self.timeout,
            **self.read_options,
        )
        lines, errors, samples = scan(data, self.pattern, self.error_samples)
        out = dict(
            file=None,
            lines=lines,
            bytes=len(data),
            error_lines=errors,
            error_samples=samples,
            last_lines=last_lines(data, self.inline_lines),
        )
        if self.group_by == "service" and entry["service"]:
            out["_data"] = data  # written with the service's other pods
        else:
            stem = entry["pod"] if entry["_single"] else f"{entry['pod']}.{entry['container']}"
            out["file"] = self.path(entry["cluster"], entry["namespace"], stem, previous)
            if self.write:
                write_file(out["file"], data)
        return out

    def collect(self, entry):
        """One container's log (and its previous instance's, if it restarted); never raises."""
        try:
            entry.update(self._read(entry, False))
        except LogUnavailable as exc:
            entry["note"] = f"no log: {exc}"
        except ModuleFailure as exc:
            entry["error"] = exc.msg
            return entry
        if self.previous and entry["restarts"]:
            try:
                entry["previous"] = self._read(entry, True)
            except LogUnavailable:
                pass  # the previous instance's log is gone: nothing to say
            except ModuleFailure as exc:
                entry["error"] = exc.msg
        return entry

    def collect_all(self, entries):
        """(entries, files): every log read concurrently, and the files written (or that would be)."""
        entries = bounded_map(self.collect, entries, self.concurrency)
        files = [f for e in entries for f in (e["file"], (e["previous"] or {}).get("file")) if f]
        if self.group_by == "service":
            files += self._write_services(entries)
        for e in entries:
            e.pop("_single", None)
        return entries, sorted(files)

    def _write_services(self, entries):
        """One file per (cluster, namespace, service), lines prefixed like ``kubectl logs --prefix``."""
        groups = {}
        for e in entries:
            for previous, part in ((False, e), (True, e["previous"])):
                if part is not None and "_data" in part:
                    groups.setdefault((e["cluster"], e["namespace"], e["service"], previous), []).append((e, part))
        written = []
        for (cluster, ns, service, previous), parts in sorted(groups.items()):
            path = self.path(cluster, ns, safe_name(service), previous)
            chunks = []
            for e, part in parts:
                data = part.pop("_data")
                part["file"] = path
                if data:
                    prefix = f"[pod/{e['pod']}/{e['container']}] ".encode()
                    lines = data.split(b"\n")
                    if lines[-1] == b"":
                        lines.pop()
                    chunks.append(b"".join(prefix + line + b"\n" for line in lines))
            if path:
                if self.write:
                    write_file(path, b"".join(chunks))
                written.append(path)
        return written


def summarize(entries, clusters):
    """Totals over every log read, and per service (``cluster/namespace/service``) pods, lines, error lines."""
    by_service = {}
    for e in entries:
        key = f"{e['cluster']}/{e['namespace']}/{e['service'] or e['pod']}"
        s = by_service.setdefault(key, dict(pods=set(), lines=0, error_lines=0))
        s["pods"].add(e["pod"])
        for part in (e, e["previous"] or {}):
            s["lines"] += part.get("lines", 0)
            s["error_lines"] += part.get("error_lines", 0)
    for s in by_service.values():
        s["pods"] = len(s["pods"])
    parts = entries + [e["previous"] for e in entries if e["previous"]]
    return dict(
        clusters=clusters,
        pods=len({(e["cluster"], e["namespace"], e["pod"]) for e in entries}),
        containers=len(entries),
        lines=sum(x["lines"] for x in parts),
        bytes=sum(x["bytes"] for x in parts),
        error_lines=sum(x["error_lines"] for x in parts),
        previous_logs=sum(1 for e in entries if e["previous"]),
        unavailable=sum(1 for e in entries if e["note"]),
        failed=sum(1 for e in entries if e["error"]),
        by_service=by_service,
    )
