#!/usr/bin/python
# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mysql_promote
short_description: Promote a MySQL/MariaDB replica to primary, behind a safety gate
version_added: 0.1.0
description:
  - The runbook's C(STOP SLAVE; RESET SLAVE ALL) with the checks an operator should make first, and the
    proof afterwards that the new primary takes writes.
  - "B(Safety gate), run first and returned in RV(gate): the replica's SQL thread runs without error; its
    lag is within O(max_lag_seconds) (a lag the server cannot tell is accepted only when the IO thread is
    not connected, that is, nothing more can arrive); it has applied everything its IO thread received
    (waiting up to O(wait_timeout)); its GTID position is known; and the old primary is either fenced
    (read_only, or super_read_only where it exists), fenced by this task (O(fence_old_primary)), or
    unreachable both from here and from the replica. When the old primary is reachable, the replica must
    also have everything the old primary has (no committed transaction is left behind)."
  - When a check fails the module refuses and names every reason, unless O(force=true); then it promotes
    and RV(gate.overridden) says which checks were overridden. A fence this task set on the old primary is
    lifted again when it refuses, so a refused switchover leaves the old primary as it was.
  - "B(Promotion): C(STOP REPLICA IO_THREAD), wait until the SQL thread applied the rest, C(STOP REPLICA),
    C(RESET REPLICA ALL), C(read_only=OFF) (each spelled as the server's flavour and version needs).
    Then the state is read again to prove the server is a writable primary, and with O(heartbeat) a row is
    written, ideally with a non-privileged login (the admin login bypasses read_only, so its write alone
    proves little)."
  - Idempotent. A server that is already a writable primary (no replication configured) reports
    C(changed=false). A server that is no replica and is read-only (a fenced old primary, a copy) is refused,
    because making it writable could resurrect stale data; O(force=true) makes it writable.
  - In check mode the gate runs (it only reads, and waits) and RV(statements) lists what would run; nothing
    is written on either server.
author:
  - Incident Response Engineering (@incident-response)
extends_documentation_fragment:
  - incident.response.mysql
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Runs the gate, returns the planned statements, writes nothing.
  diff_mode:
    support: full
    details: Role, read_only and replication source of the replica (and of the old primary when fenced).
  platform:
    platforms: posix
options:
  old_primary:
    description:
      - Where to reach the old primary to check (and with O(fence_old_primary), fence) it.
      - Defaults to the replica's replication source (its Master_Host/Source_Host and port) with the task's login.
      - Options left out are taken from the task's login options.
    type: dict
    suboptions:
      login_host:
        description: Host of the old primary.
        type: str
      login_port:
        description: Port of the old primary.
        type: int
      login_unix_socket:
        description: Unix socket of the old primary.
        type: path
      login_user:
        description: Account on the old primary, if not the task's O(login_user).
        type: str
      login_password:
        description: Password on the old primary, if not the task's O(login_password).
        type: str
      connect_timeout:
        description: Connection timeout for the old primary, if not the task's O(connect_timeout).
        type: float
  apply_relay_log:
    description:
      - When the replica's SQL thread was stopped without an error (paused, a lag drill), start it, let it apply
        what the replica received (within O(wait_timeout)), then go on with the gate. RV(applied_first) says how
        many received transactions were applied first. orchestrator does the same before it promotes.
      - A SQL thread stopped on an error is never started; the gate refuses as without this option.
      - In check mode the thread is not started; the gate says what would be applied.
    type: bool
    default: false
  fence_old_primary:
    description:
      - When the old primary is reachable and not fenced, fence it (read_only, super_read_only where it exists)
        before promoting, and wait for the replica to catch up with it (a planned switchover).
      - Without it, a reachable writable old primary makes the module refuse (two writable primaries are a split
        brain).
    type: bool
    default: false
  max_lag_seconds:
    description:
      - Refuse when the replica is further behind its source than this (Seconds_Behind_Source when the gate
        starts). A replica that far behind would not catch up within O(wait_timeout).
    type: int
    default: 60
  wait_timeout:
    description:
      - Seconds to wait for the replica to apply what it received (and, with a reachable old primary, what
        the old primary has). The wait ends as soon as it is done.
    type: float
    default: 30
  force:
    description:
      - Promote even when the safety gate fails. RV(gate.overridden) lists what was overridden. Transactions
        the replica received but did not apply are discarded by C(RESET REPLICA ALL).
    type: bool
    default: false
  heartbeat:
    description:
      - After promotion, write one row to prove the new primary takes writes.
      - Give the login of an ordinary account (one that read_only stops, such as the application's) in
        O(heartbeat.login_user) and O(heartbeat.login_password); its write proves that applications can
        write. Without it the task's login writes and the module also checks that read_only is off.
    type: dict
    suboptions:
      table:
        description: Table to insert into, as C(database.table).
        type: str
        required: true
      column:
        description: Text column that receives the heartbeat's text.
        type: str
        default: source
      login_user:
        description: Account that writes the row (default the task's O(login_user)).
        type: str
      login_password:
        description: Its password.
        type: str
notes:
  - Handles the default replication connection (channel); a replica with several channels is refused.
  - The old primary counts as unreachable only when neither this module nor the replica's IO thread can reach
    it. It may still be reachable from elsewhere (a network partition), so fence it or make sure it is down
    before sending traffic to the new primary.
  - On MariaDB, read_only does not stop accounts with READ ONLY ADMIN (ALL PRIVILEGES includes it); on MySQL
    super_read_only stops them too.
  - Updating the applications' configuration (the runbook's ConfigMap patch) is a separate task.
seealso:
  - module: incident.response.mysql_replication_info
  - module: incident.response.mysql_fence
"""

EXAMPLES = r"""
- name: Failover, the primary is down (runbook 2.2)
  incident.response.mysql_promote:
    login_host: db-secondary.internal
    login_user: incident_admin
    login_password: "{{ vault_db_admin_password }}"
    heartbeat:
      table: shop.heartbeat
      login_user: shop_app
      login_password: "{{ vault_db_app_password }}"
  register: promotion

- name: Planned switchover while the primary is up (fence it, let the replica catch up, promote)
  incident.response.mysql_promote:
    login_host: db-secondary.internal
    login_user: incident_admin
    login_password: "{{ vault_db_admin_password }}"
    fence_old_primary: true

- name: What would happen (gate findings and planned statements, nothing written)
  incident.response.mysql_promote:
    login_host: db-secondary.internal
    login_user: incident_admin
    login_password: "{{ vault_db_admin_password }}"
  check_mode: true
  register: plan

- name: The replica lags but the primary is gone for good - accept the loss, and say so
  incident.response.mysql_promote:
    login_host: db-secondary.internal
    login_user: incident_admin
    login_password: "{{ vault_db_admin_password }}"
    force: true
  register: forced

- name: Record what was overridden
  ansible.builtin.debug:
    msg: "promoted despite: {{ forced.gate.overridden | join(', ') }}"
"""

RETURN = r"""
promoted:
  description: Whether this run made the server a writable primary (in check mode, whether it would).
  returned: always
  type: bool
  sample: true
msg:
  description: What happened, in one line.
  returned: always
  type: str
  sample: 127.0.0.1:3307 promoted to primary
gate:
  description: The safety gate's findings.
  returned: always
  type: dict
  contains:
    passed:
      description: Every check passed.
      type: bool
    checks:
      description:
        - One entry per check with C(name), C(ok) and C(detail). Names are C(sql_thread), C(lag),
          C(relay_log_applied), C(gtid_position), C(old_primary), C(caught_up_with_old_primary).
      type: list
      elements: dict
      sample: [{name: relay_log_applied, ok: true, detail: "everything received is applied (0-1-37)"}]
    overridden:
      description: Names of the failed checks that O(force=true) overrode.
      type: list
      elements: str
    waited_seconds:
      description: How long the gate waited for the replica.
      type: float
applied_first:
  description: With O(apply_relay_log), what was applied before the promotion.
  returned: when O(apply_relay_log) started (or, in check mode, would start) the SQL thread
  type: dict
  contains:
    started_sql_thread:
      description: Whether this run started the SQL thread.
      type: bool
    pending_before:
      description: Received transactions not applied when the gate started (V(null) when the server cannot tell).
      type: int
    applied:
      description: Whether everything received was applied in time.
      type: bool
old_primary:
  description: What the gate found about the old primary.
  returned: when the server was a replica
  type: dict
  contains:
    address:
      description: Where it was looked for.
      type: str
    reachable:
      description: Whether it answered.
      type: bool
    fenced:
      description: Whether it is fenced now (read_only / super_read_only); V(null) when unreachable.
      type: bool
    fenced_by_this_run:
      description: Whether this run fenced it.
      type: bool
    error:
      description: Why it could not be reached.
      type: str
statements:
  description: Statements run (in check mode, planned), per server, with secrets masked.
  returned: always
  type: dict
  sample: {replica: ["STOP REPLICA IO_THREAD", "STOP REPLICA", "RESET REPLICA ALL", "SET GLOBAL read_only = OFF"]}
state:
  description: The server's replication state after the run (keys as in incident.response.mysql_replication_info).
  returned: always
  type: dict
heartbeat:
  description: The write that proves the new primary takes writes.
  returned: when O(heartbeat) is set and the server was promoted (not in check mode)
  type: dict
  contains:
    table:
      description: Table written to.
      type: str
    login_user:
      description: Account that wrote.
      type: str
    value:
      description: Text written.
      type: str
    read_only_after:
      description: read_only read back after the write.
      type: bool
    proves:
      description: What the write proves.
      type: str
"""

import datetime
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.response.plugins.module_utils.common import Deadline, ModuleFailure, run
from ansible_collections.incident.response.plugins.module_utils.mysql import (
    connect,
    explain,
    login_argument_spec,
    login_suboptions,
    merge_login,
    require_pymysql,
)
from ansible_collections.incident.response.plugins.module_utils.mysql_flavors import gtid_missing
from ansible_collections.incident.response.plugins.module_utils.mysql_replication import (
    Server,
    fenced,
    open_server,
    source_of,
    wait_replica,
)

_IDENT = re.compile(r"^[A-Za-z0-9_$]{1,64}$")


def argument_spec():
    spec = login_argument_spec()
    heartbeat = dict(
        table=dict(type="str", required=True),
        column=dict(type="str", default="source"),
        login_user=dict(type="str"),
        login_password=dict(type="str", no_log=True),
    )
    spec.update(
        old_primary=dict(type="dict", options=login_suboptions()),
        apply_relay_log=dict(type="bool", default=False),
        fence_old_primary=dict(type="bool", default=False),
        max_lag_seconds=dict(type="int", default=60),
        wait_timeout=dict(type="float", default=30.0),
        force=dict(type="bool", default=False),
        heartbeat=dict(type="dict", options=heartbeat),
    )
    return spec


def validate(params):
    if params["max_lag_seconds"] < 0:
        raise ModuleFailure(f"max_lag_seconds must be 0 or more (got {params['max_lag_seconds']})")
    if params["wait_timeout"] < 0:
        raise ModuleFailure(f"wait_timeout must be 0 or more (got {params['wait_timeout']})")
    hb = params["heartbeat"]
    if hb:
        parts = hb["table"].split(".")
        if len(parts) != 2 or not all(_IDENT.match(p) for p in parts):
            raise ModuleFailure(
                f"heartbeat.table must be database.table (letters, digits, _ and $), got {hb['table']!r}"
            )
        if not _IDENT.match(hb["column"]):
            raise ModuleFailure(
                f"heartbeat.column must be a column name (letters, digits, _ and $), got {hb['column']!r}"
            )


def brief(state):
    """What the diff shows of a server."""
    return dict(role=state["role"], read_only=state["read_only"], replication_source=source_of(state))


class Gate:
    def __init__(self):
        self.checks = []
        self.waited = 0.0

    def add(self, name, ok, detail):
        self.checks.append(dict(name=name, ok=bool(ok), detail=detail))

    @property
    def failed(self):
        return [c for c in self.checks if not c["ok"]]

    def result(self, overridden=()):
        return dict(passed=not self.failed, checks=self.checks, overridden=list(overridden), waited_seconds=self.waited)


def check_replica(gate, state, max_lag):
    """Checks on the replica alone, before anything waits or changes."""
    rep = state["replication"]
    sql_err = rep["last_sql_error"]
    if rep["sql_thread"] == "running" and not sql_err:
        gate.add("sql_thread", True, "running")
    elif sql_err:
        gate.add("sql_thread", False, f"{rep['sql_thread']}, error {sql_err['errno']}: {sql_err['message']}")
    else:
        gate.add(
            "sql_thread", False, f"{rep['sql_thread']} (no error): start it (START REPLICA SQL_THREAD) and let it apply"
        )

    lag = rep["seconds_behind_source"]
    if lag is not None:
        gate.add("lag", lag <= max_lag, f"{lag}s behind the source (limit {max_lag}s)")
    elif rep["sql_thread"] == "running" and rep["io_thread"] != "running":
        gate.add(
            "lag",
            True,
            f"unknown to the server because the IO thread is {rep['io_thread']}: nothing more can arrive, "
            "so what counts is that everything received is applied",
        )
    else:
        gate.add("lag", False, f"unknown (io={rep['io_thread']}, sql={rep['sql_thread']}): not zero, unknown")

    gtid = state["gtid"]
    if gtid["enabled"] and gtid["executed"]:
        gate.add("gtid_position", True, f"{gtid['executed']}")
    else:
        gate.add(
            "gtid_position", False, "no GTID position (gtid_mode is off or nothing executed): cannot re-point replicas"
        )


def check_old_primary(gate, op, state):
    """The old primary must not take writes: fenced, to be fenced, or unreachable from here and from the replica."""
    rep = state["replication"]
    if not op["reachable"]:
        if op.get("refused"):
            gate.add("old_primary", False, f"{op['address']} answers but cannot be checked: {op['error']}")
        elif rep["io_thread"] == "running":
            gate.add(
                "old_primary",
                False,
                f"{op['address']} is unreachable from here, but the replica's IO thread is connected to it: "
                "it is alive (network partition?); fence or stop it first",
            )
        else:
            io_err = rep["last_io_error"]
            seen = f", error {io_err['errno']}: {io_err['message']}" if io_err else ""
            gate.add(
                "old_primary",
                True,
                f"{op['address']} unreachable from here ({op['error']}) and from the replica "
                f"(io={rep['io_thread']}{seen})",
            )
    elif op["fenced"]:
        gate.add("old_primary", True, f"{op['address']} is fenced ({op['fence_label']})")
    elif op["will_fence"]:
        gate.add("old_primary", True, f"{op['address']} is writable; fence_old_primary fences it first")
    else:
        gate.add(
            "old_primary",
            False,
            f"{op['address']} is reachable and writable: promoting now makes two writable primaries (split brain); "
            "set fence_old_primary: true, or fence it with incident.response.mysql_fence",
        )


def probe_old_primary(params, state):
    """Find the old primary and read its state; never fails the task by itself."""
    rep = state["replication"]
    entry = dict(params["old_primary"] or {})
    if not entry.get("login_host") and not entry.get("login_unix_socket"):
        entry.update(login_host=rep["source_host"], login_port=entry.get("login_port") or rep["source_port"])
    login = merge_login(params, entry)
    server, failure = open_server(login)
    op = dict(address=failure.result.get("target") if failure else server.address, fenced_by_this_run=False)
    if failure:
        op.update(reachable=False, fenced=None, error=failure.msg, refused=not failure.unreachable)
        return op, None, None
    op_state = server.state()
    op.update(
        reachable=True,
        fenced=fenced(op_state),
        fence_label="super_read_only" if op_state["super_read_only"] else "read_only",
        role=op_state["role"],
        gtid_executed=op_state["gtid"]["executed"],
    )
    return op, server, op_state


def write_heartbeat(params, server):
    """Insert one row, then read read_only back. Returns (heartbeat, error message or None)."""
    hb = params["heartbeat"]
    db, table = hb["table"].split(".")
    login = {key: params[key] for key in login_argument_spec()}
    if hb["login_user"]:
        login.update(login_user=hb["login_user"], login_password=hb["login_password"] or "")
    value = f"incident.response.mysql_promote {datetime.datetime.now(datetime.UTC).isoformat()}"
    beat = dict(table=hb["table"], login_user=login["login_user"], value=value, read_only_after=None)
    try:
        conn = connect(login)
    except ModuleFailure as exc:
        return beat, f"the heartbeat login failed: {exc.msg}"
    try:
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO `{db}`.`{table}` (`{hb['column']}`) VALUES (%s)", (value,))
    except Exception as exc:  # any pymysql error is the finding  # pylint: disable=broad-except
        return beat, f"the heartbeat write as {login['login_user']} into {hb['table']} failed: {explain(exc, login)}"
    finally:
        conn.close()
    variables = server.variables()
    beat["read_only_after"] = bool(int(variables["read_only"] or 0) or int(variables["super_read_only"] or 0))
    if beat["read_only_after"]:
        return beat, "read_only reads back as on after the heartbeat"
    if hb["login_user"] and hb["login_user"] != params["login_user"]:
        beat["proves"] = (
            f"{hb['login_user']}, an account that read_only stops unless it holds a bypass privilege, can write"
        )
    else:
        beat["proves"] = (
            "read_only is off (the automation's own write alone would not prove it: its login bypasses read_only)"
        )
    return beat, None


def promote(module):
    params = module.params
    validate(params)
    check = module.check_mode
    deadline = Deadline(params["wait_timeout"])
    replica = Server(params)
    old_server = None
    gate = Gate()
    statements = dict(replica=[], old_primary=[])
    result = dict(changed=False, promoted=False, statements=statements)
    try:
        before = replica.state()
        result["state"] = before

        # -- not a replica: already primary (idempotent), or a read-only copy (refused unless forced)
        if not before["replication"]:
            result["gate"] = gate.result()
            if before["writable"]:
                result["msg"] = (
                    f"{replica.address} is already a writable primary (no replication configured): nothing to do"
                )
                return result
            if not params["force"]:
                raise ModuleFailure(
                    f"{replica.address} is not a replica and is read-only (a fenced old primary or a standalone copy): "
                    "promoting it could make stale data writable. Promote the current replica instead, or set "
                    "force: true if this server really is to become the primary",
                    **result,
                )
            gate.add("replica_configured", False, "not a replica, read-only; made writable because force is set")
            result["gate"] = gate.result(overridden=["replica_configured"])
            return finish(module, params, replica, before, result, statements, ["unfence"], deadline)

        if before["replication"]["channels"] > 1:
            raise ModuleFailure(
                f"{replica.address} replicates through {before['replication']['channels']} channels; "
                "this module promotes single-source replicas only",
                gate=gate.result(),
                **result,
            )

        # -- a SQL thread stopped without an error: start it, so that the gate can wait for the relay log
        rep = before["replication"]
        applying = bool(params["apply_relay_log"] and rep["sql_thread"] != "running" and not rep["last_sql_error"])
        if applying:
            result["applied_first"] = dict(
                started_sql_thread=not check, pending_before=rep["pending_transactions"], applied=None
            )
            if check:
                statements["replica"].append(replica.plan("start_replica_sql"))
                before = dict(before, replication=dict(rep, sql_thread="running"))  # judged as it would be
            else:
                statements["replica"].append(replica.change("start_replica_sql"))
                before = replica.state()
                result["state"] = before
                if not before["replication"]:
                    return already_promoted(replica, before, gate, result)

        # -- gate, part 1: what can be judged without waiting or changing anything
        check_replica(gate, before, params["max_lag_seconds"])
        op, old_server, op_state = probe_old_primary(params, before)
        op["will_fence"] = bool(op["reachable"] and not op["fenced"] and params["fence_old_primary"])
        check_old_primary(gate, op, before)
        result["old_primary"] = {
            k: op.get(k) for k in ("address", "reachable", "fenced", "fenced_by_this_run", "error")
        }
        # Past a failed check only with force. Otherwise nothing is fenced or waited for, but every
        # remaining check is still evaluated once, so the refusal names all the reasons.
        proceed = not gate.failed or params["force"]

        # -- fence the old primary (planned switchover) so it stops taking writes, then let the replica catch up
        if op["will_fence"] and proceed:
            if check:
                statements["old_primary"].append(old_server.plan("fence"))
            else:
                statements["old_primary"].append(old_server.change("fence"))
                op["fenced_by_this_run"] = True
                op_state = old_server.state()
                op["fenced"] = fenced(op_state)
                op["gtid_executed"] = op_state["gtid"]["executed"]
            result["old_primary"].update(fenced=op["fenced"], fenced_by_this_run=op["fenced_by_this_run"])

        target = op.get("gtid_executed") if op["reachable"] else None
        can_wait = proceed and all(c["ok"] for c in gate.checks if c["name"] in ("sql_thread", "lag"))
        if applying and check:
            state = before
            pending = rep["pending_transactions"]
            gate.add(
                "relay_log_applied",
                True,
                f"check mode: the SQL thread would be started and {pending if pending is not None else 'the'} "
                f"received transaction(s) applied first (within {params['wait_timeout']}s)",
            )
        else:
            state, gate.waited, _done = wait_replica(replica, deadline.remaining() if can_wait else 0.0, target)
            if not state["replication"]:  # someone else promoted it while the gate looked (another run, a person)
                result["state"] = state
                return already_promoted(replica, state, gate, result)
            check_relay_log(gate, state["replication"], can_wait, result.get("applied_first"))
        if op["reachable"]:
            missing = gtid_missing(replica.flavor.name, state["gtid"]["executed"], target or "")
            gate.add(
                "caught_up_with_old_primary",
                missing == 0,
                f"has everything the old primary has ({target})"
                if missing == 0
                else f"{missing} transaction(s) of the old primary ({target}) are missing here",
            )
        overridden = [c["name"] for c in gate.failed]
        if overridden and not params["force"]:
            if op["fenced_by_this_run"]:
                statements["old_primary"].append(old_server.change("unfence"))
                op["fenced_by_this_run"] = False
                result["old_primary"].update(fenced=False, fenced_by_this_run=False, fence_lifted=True)
            raise ModuleFailure(refusal(replica, gate), gate=gate.result(), **result)
        result["gate"] = gate.result(overridden)

        diffs = []
        if op["will_fence"]:
            diffs.append(
                dict(
                    before_header=f"{op['address']} (old primary)",
                    after_header=f"{op['address']} (old primary)",
                    before=dict(read_only=False),
                    after=dict(read_only=True),
                )
            )
        result["diff_extra"] = diffs
        plan = ["stop_replica_io", "drain", "stop_replica", "reset_replica_all", "unfence"]
        return finish(module, params, replica, before, result, statements, plan, deadline, force=params["force"])
    finally:
        replica.close()
        if old_server:
            old_server.close()


def check_relay_log(gate, rep, waited_for_it, applied_first):
    """Has the replica applied everything it received (after the gate's wait)?"""
    if applied_first is not None:
        applied_first["applied"] = bool(rep["relay_log_applied"])
    if rep["relay_log_applied"]:
        first = (
            f"; the SQL thread was started and {applied_first['pending_before']} received transaction(s) "
            f"applied first in {gate.waited:.1f}s"
            if applied_first is not None
            else ""
        )
        gate.add(
            "relay_log_applied", True, f"everything received is applied ({rep['gtid_applied'] or 'by position'}){first}"
        )
        return
    pending = rep["pending_transactions"]
    if waited_for_it:
        why = f"after waiting {gate.waited:.1f}s"
    elif rep["sql_thread"] != "running":
        why = "and the SQL thread does not run, so waiting cannot help"
    else:
        why = "(not waited for: other checks failed)"
    gate.add(
        "relay_log_applied",
        False,
        f"{pending if pending is not None else 'some'} received transaction(s) not applied {why}",
    )


def already_promoted(replica, state, gate, result):
    """The server stopped being a replica while this run looked at it: another run promoted it first."""
    result["gate"] = gate.result()
    if state["writable"]:
        result.update(changed=False, promoted=False)
        result["msg"] = (
            f"{replica.address} is already a writable primary (promoted meanwhile by another run): nothing to do"
        )
        return result
    raise ModuleFailure(
        f"{replica.address} stopped replicating while the gate ran and is read-only: someone else is changing it; "
        "find out who before running this again",
        **result,
    )


def refusal(replica, gate):
    reasons = "; ".join(f"{c['name']}: {c['detail']}" for c in gate.failed)
    return f"refusing to promote {replica.address}: {reasons}. Fix these, or set force: true to override them"


def finish(module, params, replica, before, result, statements, plan, deadline, force=False):
    """Run (or plan) the promotion statements, then prove the result."""
    plan = [name for name in plan if name != "unfence" or not before["writable"]]
    result.update(changed=True, promoted=True)
    diffs = [
        dict(
            before_header=replica.address,
            after_header=replica.address,
            before=brief(before),
            after=dict(role="primary", read_only=False, replication_source=None),
        )
    ]
    diffs.extend(result.pop("diff_extra", []))
    if module._diff:
        result["diff"] = diffs
    if module.check_mode:
        statements["replica"].extend(replica.plan(name) for name in plan if name != "drain")
        result["msg"] = f"{replica.address} would be promoted to primary (check mode: nothing was written)"
        return result

    for name in plan:
        if name != "drain":
            statements["replica"].append(replica.change(name))
            continue
        # The IO thread is stopped: nothing new arrives. Let the SQL thread apply what came since the gate.
        applied = wait_replica(replica, max(1.0, deadline.remaining()))[2]
        if not applied and not force:
            statements["replica"].append(replica.change("start_replica"))
            fenced_here = (result.get("old_primary") or {}).get("fenced_by_this_run")
            raise ModuleFailure(
                f"{replica.address}: transactions that arrived after the gate were not applied in time; replication "
                "was started again and the server was not promoted"
                + ("; the old primary stays fenced by this run" if fenced_here else "")
                + ". Run the task again",
                **dict(result, promoted=False),
            )
    state = replica.state()
    result["state"] = state
    if state["replication"] or not state["writable"]:
        raise ModuleFailure(
            f"{replica.address}: the promotion statements ran, but the server reads back as: {state['summary']}",
            **result,
        )
    if params["heartbeat"]:
        result["heartbeat"], error = write_heartbeat(params, replica)
        if error:
            raise ModuleFailure(f"{replica.address} was promoted, but {error}", **result)
    overridden = result["gate"]["overridden"]
    result["msg"] = f"{replica.address} promoted to primary" + (
        f" (forced past: {', '.join(overridden)})" if overridden else ""
    )
    return result


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_pymysql(module)
    run(module, promote)


if __name__ == "__main__":
    main()
