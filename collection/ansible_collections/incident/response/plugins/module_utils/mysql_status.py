# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The replication status step (mysql_replication_info): every server's state, concurrently, within a deadline.

Shared by mysql_replication_info and triage_probe. A server that does not answer is a finding
(``reachable``, ``timed_out``), not a failure, when the task says so.
"""

from __future__ import annotations

import time

from ansible_collections.incident.response.plugins.module_utils.common import (
    Deadline,
    ModuleFailure,
    bounded_map,
    check_deadline,
)
from ansible_collections.incident.response.plugins.module_utils.mysql import (
    describe_target,
    login_argument_spec,
    login_suboptions,
    merge_login,
)
from ansible_collections.incident.response.plugins.module_utils.mysql_replication import (
    ConnectFailure,
    Server,
    StatementFailure,
)

MAX_WORKERS = 16


def argument_spec():
    """The options of mysql_replication_info."""
    spec = login_argument_spec()
    server = login_suboptions()
    server["name"] = dict(type="str")
    spec.update(
        servers=dict(type="list", elements="dict", options=server),
        processlist=dict(type="bool", default=False),
        deadline=dict(type="float", default=30.0),
        fail_on_unreachable=dict(type="bool", default=True),
    )
    return spec


def report(params, name, processlist, fail_on_unreachable, deadline):
    """State of one server; an unreachable one is a finding unless the task says it is a failure.

    A server that stops answering after the login (frozen between two statements) is as unreachable
    as one that never answered: it timed out.
    """
    start = time.monotonic()
    try:
        server = Server(params, name, deadline=deadline)
    except ConnectFailure as exc:
        if exc.unreachable and not fail_on_unreachable:
            return _unreachable(exc, start)
        raise
    try:
        return dict(reachable=True, timed_out=False, **server.state(processlist=processlist))
    except StatementFailure as exc:
        if exc.timed_out and not fail_on_unreachable:
            return _unreachable(exc, start)
        raise
    finally:
        server.close()


def _unreachable(exc, start):
    """A server that did not answer, and whether (and after how long) it timed out."""
    res = dict(reachable=False, timed_out=exc.timed_out, error=exc.msg)
    if exc.timed_out:
        res["timed_out_after"] = round(time.monotonic() - start, 1)
    return res


def step(params, deadline=None):
    """mysql_replication_info: its params (validated) -> its result; ModuleFailure with the result when a
    server refused (or did not answer, unless fail_on_unreachable=false). ``deadline`` defaults to params'."""
    check_deadline(params["deadline"])
    deadline = deadline or Deadline(params["deadline"])
    if not params["servers"]:
        one = report(params, describe_target(params), params["processlist"], params["fail_on_unreachable"], deadline)
        return dict(changed=False, msg=one.get("summary") or one.get("error"), **one)

    targets = []
    for entry in params["servers"]:
        login = merge_login(params, entry)
        if not login.get("login_unix_socket") and not entry.get("login_host"):
            raise ModuleFailure(
                f"servers entry {entry.get('name') or len(targets)}: set login_host or login_unix_socket"
            )
        targets.append((entry.get("name") or describe_target(login), login))
    names = [target[0] for target in targets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ModuleFailure(f"servers: each name must be unique; used more than once: {', '.join(duplicates)}")

    def one(target):
        name, login = target
        try:
            return report(login, name, params["processlist"], params["fail_on_unreachable"], deadline)
        except ConnectFailure as exc:  # answered and refused (a login problem): a failure, not a finding
            return dict(reachable=not exc.unreachable, timed_out=exc.timed_out, error=exc.msg, failed=True)
        except StatementFailure as exc:
            return dict(reachable=not exc.timed_out, timed_out=exc.timed_out, error=exc.msg, failed=True)
        except ModuleFailure as exc:
            return dict(reachable=True, timed_out=False, error=exc.msg, failed=True)

    results = dict(zip(names, bounded_map(one, targets, MAX_WORKERS), strict=True))
    failures = [named(name, res["error"]) for name, res in results.items() if res.pop("failed", False)]
    summary = dict(
        servers=results,
        primaries=[n for n, r in results.items() if r.get("role") == "primary"],
        replicas=[n for n, r in results.items() if r.get("role") == "replica"],
        # Not "unreachable": Ansible reads a true top-level "unreachable" as "the host is unreachable".
        unreachable_servers=[n for n, r in results.items() if not r["reachable"]],
        timed_out_servers=[n for n, r in results.items() if r["timed_out"]],
    )
    if failures:
        raise ModuleFailure("; ".join(failures), **summary)
    line = " | ".join(named(n, r.get("summary") or r.get("error") or "") for n, r in results.items())
    return dict(changed=False, msg=line, **summary)


def named(name, text):
    """``name: text``, without saying the name twice when the text starts with it (errors name the address)."""
    return text if text.startswith(f"{name}:") else f"{name}: {text}"
