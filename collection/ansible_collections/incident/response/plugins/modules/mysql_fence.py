#!/usr/bin/python
# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mysql_fence
short_description: Fence an old MySQL/MariaDB primary read-only, and re-point it as a replica of the new one
version_added: 0.1.0
description:
  - The split-brain guard of a failover. Sets the server read-only (C(super_read_only) where it exists, which
    also stops privileged accounts; C(read_only) on MariaDB), so that an old primary that comes back cannot take
    writes meant for the new primary.
  - With O(kill_connections), also ends the client sessions that were open before the fence (their open
    transactions roll back); sessions of server threads, of replicas reading the binary log, and of the
    module itself are kept.
  - With O(replicate_from), the heal path. The fenced server replicates from the new primary by GTID
    (C(MASTER_USE_GTID) on MariaDB, C(SOURCE_AUTO_POSITION=1) / C(MASTER_AUTO_POSITION=1) on MySQL), and the
    module waits until both replication threads run. A server that holds transactions the new primary never
    received (it diverged) is refused by the new primary; the module fails and says so, the server stays fenced.
  - Idempotent. A server that is already fenced, replicating from O(replicate_from) with both threads running,
    reports C(changed=false).
  - Check mode and diff mode show the read_only and replication source before and after, the planned statements
    (replication password masked) and the sessions that would be ended.
author:
  - Incident Response Engineering (@incident-response)
extends_documentation_fragment:
  - incident.response.mysql
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Returns the planned statements and the sessions that would be ended; writes nothing.
  diff_mode:
    support: full
    details: read_only, super_read_only and the replication source before and after.
  platform:
    platforms: posix
options:
  kill_connections:
    description:
      - After fencing, end the client sessions that could still write (every session except server threads,
        replicas' binary log readers, this module's own, and those of O(keep_connections_of)).
      - Ending a session rolls back its open transaction; its client reconnects and meets read_only.
    type: bool
    default: false
  keep_connections_of:
    description: Accounts whose sessions O(kill_connections) keeps (monitoring, for example).
    type: list
    elements: str
    default: []
  replicate_from:
    description:
      - Make the fenced server a replica of this source (the new primary), by GTID.
      - Replication starts from everything the server already has (MariaDB C(current_pos) by default).
    type: dict
    suboptions:
      host:
        description: Host of the new primary, as the fenced server reaches it.
        type: str
        required: true
      port:
        description: Port of the new primary.
        type: int
        default: 3306
      user:
        description: Replication account on the new primary.
        type: str
        required: true
      password:
        description: Password of the replication account. Never logged or returned.
        type: str
        default: ''
      use_gtid:
        description:
          - MariaDB only. V(current_pos) starts from everything the server has, its own binary log included (what
            an old primary needs). V(slave_pos) first sets C(gtid_slave_pos) from C(gtid_current_pos), then uses
            C(MASTER_USE_GTID=slave_pos), so later local writes do not move the replication position.
          - MySQL always uses auto-positioning.
        type: str
        choices: [current_pos, slave_pos]
        default: current_pos
      connect_retry:
        description: Seconds between the replica's reconnection attempts.
        type: int
        default: 10
  wait_timeout:
    description:
      - With O(replicate_from), seconds to wait for both replication threads to run. The wait ends as soon as
        they do, or as soon as the IO or SQL thread reports an error.
    type: float
    default: 15
notes:
  - On MariaDB, read_only does not stop accounts with READ ONLY ADMIN (ALL PRIVILEGES includes it, so an
    automation account does bypass it); on MySQL, super_read_only stops SUPER accounts too.
  - Handles the default replication connection (channel).
seealso:
  - module: incident.response.mysql_promote
  - module: incident.response.mysql_replication_info
"""

EXAMPLES = r"""
- name: The old primary came back after a failover - fence it before anything writes to it
  incident.response.mysql_fence:
    login_host: db-primary.internal
    login_user: incident_admin
    login_password: "{{ vault_db_admin_password }}"
    kill_connections: true
    keep_connections_of: [exporter]

- name: Heal - the old primary follows the new one
  incident.response.mysql_fence:
    login_host: db-primary.internal
    login_user: incident_admin
    login_password: "{{ vault_db_admin_password }}"
    replicate_from:
      host: db-secondary.internal
      user: repl
      password: "{{ vault_db_replication_password }}"
  register: rejoined

- name: What would change
  incident.response.mysql_fence:
    login_host: db-primary.internal
    login_user: incident_admin
    login_password: "{{ vault_db_admin_password }}"
  check_mode: true
  diff: true
"""

RETURN = r"""
fenced:
  description: Whether the server is fenced (read_only, or super_read_only where it exists) after the run.
  returned: always
  type: bool
  sample: true
msg:
  description: What happened, in one line.
  returned: always
  type: str
  sample: 127.0.0.1:3306 fenced (read_only) and replicating from 127.0.0.1:3307
statements:
  description: Statements run (in check mode, planned), with the replication password masked.
  returned: always
  type: list
  elements: str
  sample: ["SET GLOBAL read_only = ON", "CHANGE MASTER TO MASTER_HOST='10.0.0.2', ... MASTER_PASSWORD='********', ..."]
killed_connections:
  description: Sessions ended (in check mode, that would be ended), with C(id), C(user), C(host), C(command).
  returned: always
  type: list
  elements: dict
before:
  description: read_only, super_read_only and replication source before the run.
  returned: always
  type: dict
  sample: {read_only: false, super_read_only: null, replication_source: null}
after:
  description: The same after the run (in check mode, as planned).
  returned: always
  type: dict
  sample: {read_only: true, super_read_only: null, replication_source: 127.0.0.1:3307}
state:
  description: Replication state after the run (keys as in incident.response.mysql_replication_info).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure, run
from ansible_collections.incident.response.plugins.module_utils.mysql import login_argument_spec, require_pymysql
from ansible_collections.incident.response.plugins.module_utils.mysql_replication import (
    Server,
    StatementFailure,
    explain_replication,
    fenced,
    replication_matches,
    repoint_plan,
    source_of,
    wait_threads,
)


def argument_spec():
    spec = login_argument_spec()
    spec.update(
        kill_connections=dict(type="bool", default=False),
        keep_connections_of=dict(type="list", elements="str", default=[]),
        replicate_from=dict(
            type="dict",
            options=dict(
                host=dict(type="str", required=True),
                port=dict(type="int", default=3306),
                user=dict(type="str", required=True),
                password=dict(type="str", default="", no_log=True),
                use_gtid=dict(type="str", choices=["current_pos", "slave_pos"], default="current_pos"),
                connect_retry=dict(type="int", default=10),
            ),
        ),
        wait_timeout=dict(type="float", default=15.0),
    )
    return spec


def view(state):
    return dict(
        read_only=state["read_only"],
        super_read_only=state["super_read_only"],
        replication_source=source_of(state),
    )


def refuse_loop(server, state, want):
    """Replicating from one of its own replicas makes a loop: the wrong server was named."""
    for replica in state["connected_replicas"]:
        if replica["host"] == want["host"] and replica["port"] == want["port"]:
            raise ModuleFailure(
                f"{server.address} has {want['host']}:{want['port']} connected as its own replica; replicating from "
                "it would make a replication loop. Promote that server first (incident.response.mysql_promote), or "
                "check login_host and replicate_from",
                state=state,
            )


def fence(module):
    params = module.params
    if params["wait_timeout"] < 0:
        raise ModuleFailure(f"wait_timeout must be 0 or more (got {params['wait_timeout']})")
    want = params["replicate_from"]
    if want and not (0 < want["port"] < 65536):
        raise ModuleFailure(f"replicate_from.port must be a TCP port (got {want['port']})")
    check = module.check_mode
    server = Server(params)
    try:
        before_state = server.state()
        before = view(before_state)
        planned = []  # (name, args, secret, keywords)
        if not fenced(before_state):
            planned.append(("fence", None, (), {}))
        if want:
            refuse_loop(server, before_state, want)
        repoint = bool(want) and not replication_matches(server, before_state, want)
        if repoint:
            planned.extend(repoint_plan(server, before_state, want))

        to_kill = []
        if params["kill_connections"]:
            to_kill = server.client_sessions(exclude_users=set(params["keep_connections_of"]))
        killed = [{k: p[k] for k in ("id", "user", "host", "command")} for p in to_kill]

        after = dict(before)
        label = "super_read_only" if server.flavor.has_super_read_only else "read_only"
        if not fenced(before_state):
            after.update(read_only=True, super_read_only=True if server.flavor.has_super_read_only else None)
        if want:
            after["replication_source"] = f"{want['host']}:{want['port']}"

        changed = bool(planned or killed)
        result = dict(changed=changed, fenced=True, before=before, after=after, killed_connections=killed)
        if module._diff:
            result["diff"] = dict(before_header=server.address, after_header=server.address, before=before, after=after)

        if check:
            # The order the real run uses: fence, end sessions, re-point.
            fence_first = [p for p in planned if p[0] == "fence"]
            rest = [p for p in planned if p[0] != "fence"]
            result["statements"] = [server.plan(name, args, secret, **kw) for name, args, secret, kw in fence_first]
            result["statements"] += [server.plan("kill_connection", dict(id=p["id"])) for p in killed]
            result["statements"] += [server.plan(name, args, secret, **kw) for name, args, secret, kw in rest]
            result["state"] = before_state
            result["msg"] = f"{server.address}: " + (
                "check mode, would run " + str(len(result["statements"])) + " statement(s)"
                if changed
                else "already fenced" + (f" and replicating from {after['replication_source']}" if want else "")
            )
            return result

        result["statements"] = server.done
        # Fence first, then end the sessions (their clients reconnect into read_only), then re-point.
        if planned and planned[0][0] == "fence":
            server.change("fence")
            if params["kill_connections"]:  # sessions opened since the first look are ended too
                to_kill = server.client_sessions(exclude_users=set(params["keep_connections_of"]))
                result["killed_connections"] = [{k: p[k] for k in ("id", "user", "host", "command")} for p in to_kill]
                result["changed"] = True
        for proc in to_kill:
            try:
                server.change("kill_connection", dict(id=proc["id"]))
            except StatementFailure as exc:
                if exc.code != 1094:  # unknown thread id: the session ended by itself meanwhile
                    raise
        for name, args, secret, kw in planned:
            if name != "fence":
                server.change(name, args, secret, **kw)

        state = server.state()
        result["state"] = state
        result["fenced"] = fenced(state)
        if not result["fenced"]:
            raise ModuleFailure(
                f"{server.address}: the fence statement ran, but the server reads back writable", **result
            )
        msg = f"{server.address} fenced ({label})"
        if want:
            state, running = wait_threads(server, params["wait_timeout"]) if repoint else (state, True)
            result["state"] = state
            if not running:
                raise ModuleFailure(
                    f"{server.address} is fenced, but does not replicate from {after['replication_source']}: "
                    f"{explain_replication(state['replication'])}",
                    **result,
                )
            msg += f" and replicating from {after['replication_source']} ({state['summary']})"
        if not result["changed"]:
            msg += ": nothing to change"
        result["msg"] = msg
        return result
    finally:
        server.close()


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_pymysql(module)
    run(module, fence)


if __name__ == "__main__":
    main()
