# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster snapshot step (cluster_snapshot): every read of every cluster at once, within a deadline.

Shared by cluster_snapshot and triage_probe. A cluster that cannot be read keeps what could be
read, its ``error``, and whether it timed out.
"""

from __future__ import annotations

import json
import time

from ansible_collections.incident.response.plugins.module_utils import files, k8s
from ansible_collections.incident.response.plugins.module_utils import k8s_views as views
from ansible_collections.incident.response.plugins.module_utils.common import (
    Deadline,
    ModuleFailure,
    bounded_map,
    check_deadline,
)


def argument_spec():
    """The options of cluster_snapshot."""
    return dict(
        namespaces=dict(type="list", elements="str", default=[]),
        include=dict(type="list", elements="str", choices=list(views.KINDS), default=list(views.DEFAULT_KINDS)),
        events_since=dict(type="int", default=3600),
        max_events=dict(type="int", default=50),
        dest=dict(type="path"),
        text_dest=dict(type="path"),
        concurrency=dict(type="int", default=16),
        deadline=dict(type="float", default=60.0),
        fail_on_error=dict(type="bool", default=True),
        **k8s.auth_argument_spec(),
        **k8s.clusters_argument_spec(),
    )


def _job(job):
    """(name, kind, value, error, unreachable, timed out after) of one read, never raising: the other reads go on.

    ``timed out after`` is None, or the seconds of the step spent when the read gave up.
    """
    name, clients, kind, namespaces, timeout = job
    try:
        if kind == "namespaces":
            return name, kind, views.missing_namespaces(clients, namespaces, timeout), None, False, None
        return name, kind, views.fetch(clients, kind, namespaces, timeout), None, False, None
    except ModuleFailure as exc:
        late = round(timeout.deadline.elapsed(), 1) if getattr(exc, "timed_out", False) else None
        return name, kind, None, exc.msg, getattr(exc, "unreachable", False), late


def _write(module, p, path, data):
    info = dict(path=path, written=not module.check_mode, bytes=len(data))
    if not module.check_mode:
        files.write_atomic(module, path, data)
        file_args = module.load_file_common_arguments(p, path=path)
        module.set_fs_attributes_if_different(file_args, True)
    return info


def step(module, p, deadline=None):
    """cluster_snapshot with params ``p`` (validated) -> its result; ModuleFailure with the result when a
    cluster could not be read (unless fail_on_error=false). ``module`` writes the files (check mode,
    attributes) and warns; ``deadline`` (a Deadline) defaults to p's."""
    if p["events_since"] < 0 or p["max_events"] < 0 or p["concurrency"] < 1:
        raise ModuleFailure("events_since and max_events must be >= 0, concurrency >= 1")
    check_deadline(p["deadline"])
    deadline = deadline or Deadline(p["deadline"])  # loading the kubeconfigs is part of the step
    for path in (p["dest"], p["text_dest"]):
        if path:
            files.check_writable(path)
    auths = k8s.cluster_auths(p)
    clients = {a["name"]: k8s.get_clients(a) for a in auths}  # an unknown context fails here, before any request
    namespaces = list(dict.fromkeys(p["namespaces"]))
    kinds = [k for k in views.KINDS if k in p["include"]]
    timeout = k8s.Budget(p["request_timeout"], deadline)

    jobs = [(name, c, kind, namespaces, timeout) for name, c in clients.items() for kind in kinds]
    if namespaces:
        jobs += [(name, c, "namespaces", namespaces, timeout) for name, c in clients.items()]
    now = time.time()
    answers = bounded_map(_job, jobs, p["concurrency"])

    raw = {name: {} for name in clients}
    errors = {name: [] for name in clients}
    unreachable, timed_out, missing = set(), {}, {}
    for name, kind, value, error, no_answer, late in answers:
        if error:
            errors[name].append(error)
            if no_answer:
                unreachable.add(name)
            if late is not None:
                timed_out[name] = max(late, timed_out.get(name, 0.0))
        elif kind == "namespaces":
            if value:
                missing[name] = value
        else:
            raw[name][kind] = value

    snaps = []
    for name, c in clients.items():
        snap = views.build_snapshot(
            name, c.api_client.configuration.host, raw[name], now, p["events_since"], p["max_events"]
        )
        snap["timed_out"] = name in timed_out
        snap["timed_out_after"] = timed_out.get(name)
        if errors[name]:
            snap["error"] = "; ".join(dict.fromkeys(errors[name]))
            snap["reachable"] = name not in unreachable
        snaps.append(snap)

    result = dict(
        changed=False,
        taken_at=views.iso(now),
        clusters={s["name"]: s for s in snaps},
        health={s["name"]: s["summary"] for s in snaps},
        crashlooping_pods=[f"{s['name']}/{pod}" for s in snaps for pod in s["summary"]["crashlooping"]],
        timed_out_clusters=[s["name"] for s in snaps if s["timed_out"]],
        healthy=all(s["summary"]["healthy"] and not s["error"] for s in snaps),
        degraded=False,
        file=None,
        text_file=None,
    )
    msg = " | ".join(s["summary"]["line"] if not s["error"] else f"{s['name']}: NOT READ: {s['error']}" for s in snaps)

    if missing:
        where = "; ".join(f"{name}: {', '.join(ns)}" for name, ns in missing.items())
        raise ModuleFailure(f"namespace(s) not found ({where}): check the names in namespaces", **result)

    # The record is written even when a cluster failed: what could be read is evidence too.
    if p["dest"]:
        record = {k: result[k] for k in ("taken_at", "health", "crashlooping_pods", "healthy", "clusters")}
        result["file"] = _write(module, p, p["dest"], (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    if p["text_dest"]:
        result["text_file"] = _write(module, p, p["text_dest"], views.snapshot_text(snaps, now).encode())
    result["changed"] = bool(p["dest"] or p["text_dest"])

    failed = [s for s in snaps if s["error"]]
    if failed:
        reasons = "; ".join(s["error"] for s in failed)
        if p["fail_on_error"]:
            raise ModuleFailure(
                f"{reasons}. The other data is in the result; set fail_on_error=false to go on without it",
                **result,
            )
        result["degraded"] = True
        module.warn(f"snapshot without some data (fail_on_error=false): {reasons}")
    return dict(result, msg=msg)
