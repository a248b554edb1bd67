#!/usr/bin/python
# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mysql_replication_info
short_description: Replication state of MySQL/MariaDB servers, normalised across flavours
version_added: 0.1.0
description:
  - Reports what the runbook's C(SHOW MASTER STATUS), C(SHOW SLAVE STATUS) and C(SHOW PROCESSLIST) show,
    with the same keys on MariaDB 10.5+ and MySQL 5.7, 8.0 and 8.4, whatever each version calls its
    statements and columns (C(SHOW REPLICA STATUS), C(SHOW BINARY LOG STATUS), C(Seconds_Behind_Source)...).
  - The role (V(primary), V(replica) or V(standalone)), read_only (and super_read_only where the server
    has it), the binary log position and GTID state, the replica's threads, last errors and lag, whether
    the relay log has been applied, and the replicas connected to a primary.
  - Lag that the server cannot tell (C(Seconds_Behind_Source) is NULL, for example when the SQL thread is
    stopped or the source is down) is returned as V(null), never as V(0).
  - With O(servers), reports on several servers in one task, concurrently (the runbook checks the primary
    and the secondary together).
  - The whole task ends by O(deadline). The connection (TCP, greeting, login) and every statement wait at
    most what is left of it, so a hung server (frozen, or behind a partition) costs the deadline once. Such
    a server is reported with RV(timed_out=true), apart from one that refused the connection.
author:
  - Incident Response Engineering (@incident-response)
extends_documentation_fragment:
  - incident.response.mysql
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads only; runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  servers:
    description:
      - Report on these servers instead of the one of O(login_host) and O(login_port), concurrently.
      - Each entry may set its own login options; the ones it leaves out are taken from the task's
        (O(login_user), O(login_password), O(connect_timeout)...).
      - The result then has one entry per server in RV(servers), keyed by O(servers[].name).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Key of this server in RV(servers). Defaults to C(host:port) (or the socket path).
        type: str
      login_host:
        description: Host name or IP address of this server.
        type: str
      login_port:
        description: TCP port of this server.
        type: int
      login_unix_socket:
        description: Unix socket of this server.
        type: path
      login_user:
        description: Account for this server, if not the task's O(login_user).
        type: str
      login_password:
        description: Password for this server, if not the task's O(login_password).
        type: str
      connect_timeout:
        description: Connection timeout for this server, if not the task's O(connect_timeout).
        type: float
  processlist:
    description:
      - Also return the process list (the runbook's C(SHOW PROCESSLIST), full statements). Password
        literals in statements are masked.
    type: bool
    default: false
  deadline:
    description:
      - Seconds for the whole task, every server's connection and statements included.
      - O(connect_timeout) still bounds each connection; the statements of a connected server get what is
        left of the deadline.
    type: float
    default: 30.0
  fail_on_unreachable:
    description:
      - Fail when a server does not answer (refused, timed out, unknown host).
      - When V(false), an unreachable server is reported with RV(reachable=false) and the RV(error) instead,
        which is what a playbook that checks the primary during an outage wants.
      - A server that answers but refuses the login always fails the task.
    type: bool
    default: true
notes:
  - Reports the default replication connection (channel); RV(replication.channels) says how many there are.
seealso:
  - module: incident.response.mysql_promote
  - module: incident.response.mysql_fence
"""

EXAMPLES = r"""
- name: The runbook's database check, primary and secondary in one task
  incident.response.mysql_replication_info:
    login_user: incident_admin
    login_password: "{{ vault_db_admin_password }}"
    fail_on_unreachable: false
    servers:
      - name: primary
        login_host: db-primary.internal
      - name: secondary
        login_host: db-secondary.internal
  register: db

- name: Promote the secondary when the primary is down
  ansible.builtin.debug:
    msg: "primary down ({{ db.servers.primary.error }}); secondary: {{ db.servers.secondary.summary }}"
  when: not db.servers.primary.reachable

- name: One server, with the process list (P1 performance check)
  incident.response.mysql_replication_info:
    login_host: db-secondary.internal
    login_user: incident_admin
    login_password: "{{ vault_db_admin_password }}"
    processlist: true
  register: replica

- name: Lag unknown is not lag zero
  ansible.builtin.assert:
    that:
      - replica.replication.seconds_behind_source is not none
      - replica.replication.seconds_behind_source < 30
"""

RETURN = r"""
msg:
  description: One line for the incident timeline (each server's summary, or why it did not answer).
  returned: success
  type: str
  sample: "db-primary: primary, read-write | db-replica: replica of 10.0.1.5:3306, threads running, 0 s behind"
reachable:
  description: Whether the server answered. V(false) only with O(fail_on_unreachable=false).
  returned: without O(servers)
  type: bool
  sample: true
timed_out:
  description:
    - True when the server did not answer in time (the connection, its greeting or a statement hit
      O(connect_timeout) or O(deadline)), a hung server, as opposed to one that refused the connection.
  returned: without O(servers)
  type: bool
  sample: false
timed_out_after:
  description: Seconds waited for the server before giving up.
  returned: without O(servers), when RV(timed_out=true)
  type: float
  sample: 1.5
error:
  description: Why the server could not be reached.
  returned: without O(servers), when RV(reachable=false)
  type: str
  sample: "127.0.0.1:3306: cannot connect: is the server running and reachable on that address? (2003: ...)"
server:
  description: Which server answered.
  returned: without O(servers), when reachable
  type: dict
  contains:
    address:
      description: Host and port (or socket) the module connected to.
      type: str
      sample: 127.0.0.1:3306
    flavor:
      description: V(mariadb) or V(mysql).
      type: str
      sample: mariadb
    version:
      description: The server's VERSION().
      type: str
      sample: 10.11.18-MariaDB-0+deb12u1-log
    server_id:
      description: The server's server_id.
      type: int
      sample: 2
role:
  description:
    - V(replica) when a replication source is configured; V(primary) when not, and the binary log is on or
      replicas are connected; V(standalone) otherwise.
  returned: without O(servers), when reachable
  type: str
  sample: replica
read_only:
  description: The server's read_only.
  returned: without O(servers), when reachable
  type: bool
  sample: true
super_read_only:
  description: The server's super_read_only; V(null) where it does not exist (MariaDB).
  returned: without O(servers), when reachable
  type: bool
  sample: null
writable:
  description: Neither read_only nor super_read_only is set.
  returned: without O(servers), when reachable
  type: bool
  sample: false
binlog:
  description: Binary log state (SHOW MASTER/BINARY LOG/BINLOG STATUS).
  returned: without O(servers), when reachable
  type: dict
  contains:
    enabled:
      description: log_bin.
      type: bool
    file:
      description: Current binary log file, V(null) when the binary log is off.
      type: str
      sample: mysql-bin.000001
    position:
      description: Position in that file.
      type: int
      sample: 4386
gtid:
  description: GTID state.
  returned: without O(servers), when reachable
  type: dict
  contains:
    enabled:
      description: Whether the server assigns GTIDs (always on MariaDB; gtid_mode=ON on MySQL).
      type: bool
    executed:
      description: Everything this server has (MariaDB gtid_current_pos, MySQL gtid_executed).
      type: str
      sample: 0-1-37
    binlog_pos:
      description: MariaDB gtid_binlog_pos.
      type: str
      returned: on MariaDB
    slave_pos:
      description: MariaDB gtid_slave_pos (what the replica's SQL thread applied).
      type: str
      returned: on MariaDB
    strict_mode:
      description: MariaDB gtid_strict_mode.
      type: bool
      returned: on MariaDB
    mode:
      description: MySQL gtid_mode.
      type: str
      returned: always, V(null) on MariaDB
replication:
  description: The replica side (SHOW SLAVE/REPLICA STATUS), normalised; V(null) on a server that is no replica.
  returned: without O(servers), when reachable
  type: dict
  contains:
    source_host:
      description: Host the replica replicates from.
      type: str
    source_port:
      description: Port of the source.
      type: int
    source_user:
      description: Replication account (its password is never shown).
      type: str
    io_thread:
      description: V(running), V(connecting) (retrying to reach the source) or V(stopped).
      type: str
      sample: connecting
    sql_thread:
      description: V(running) or V(stopped).
      type: str
    io_state:
      description: What the IO thread is doing.
      type: str
    sql_state:
      description: What the SQL thread is doing.
      type: str
    last_io_error:
      description: Last IO thread error as C(errno) and C(message), V(null) when none.
      type: dict
      sample: {errno: 1045, message: "error connecting to master 'repl@127.0.0.1:3306' ... Access denied"}
    last_sql_error:
      description: Last SQL thread error, V(null) when none.
      type: dict
    seconds_behind_source:
      description:
        - Seconds_Behind_Source (Seconds_Behind_Master). V(null) when the server does not know the lag
          (SQL or IO thread stopped, source unreachable), which is unknown, not zero.
      type: int
      sample: null
    sql_delay:
      description: Configured delay of the replica (MASTER_DELAY / SOURCE_DELAY).
      type: int
    using_gtid:
      description: MariaDB Using_Gtid (V(Slave_Pos), V(Current_Pos), V(No)); on MySQL V(auto_position) or V(No).
      type: str
    gtid_received:
      description: GTIDs the IO thread received (MariaDB Gtid_IO_Pos, MySQL Retrieved_Gtid_Set).
      type: str
    gtid_applied:
      description: GTIDs applied (MariaDB gtid_current_pos, MySQL Executed_Gtid_Set).
      type: str
    relay_log_applied:
      description: The SQL thread has applied everything the IO thread received (by GTID, else by binlog coordinates).
      type: bool
    pending_transactions:
      description: Received transactions not applied yet, V(null) when GTIDs do not tell.
      type: int
      sample: 25
    source_log_file:
      description: Source binlog file the IO thread reads.
      type: str
    read_source_log_pos:
      description: Position up to which the IO thread read.
      type: int
    exec_source_log_pos:
      description: Position up to which the SQL thread executed.
      type: int
    channels:
      description: Number of replication channels (connections); only the default one is reported.
      type: int
connected_replicas:
  description: Replicas registered with this server (SHOW SLAVE HOSTS / SHOW REPLICAS).
  returned: without O(servers), when reachable
  type: list
  elements: dict
  sample: [{server_id: 2, host: 127.0.0.1, port: 3307}]
processlist:
  description:
    - Sessions (SHOW FULL PROCESSLIST) with lower-case keys C(id), C(user), C(host), C(db), C(command), C(time),
      C(state), C(info). Password literals in C(info) are masked.
  returned: without O(servers), when O(processlist=true) and reachable
  type: list
  elements: dict
summary:
  description: One line for the operator.
  returned: without O(servers), when reachable
  type: str
  sample: replica of 127.0.0.1:3306, read-only, io=running, sql=running, lag 0s, relay log applied
servers:
  description: With O(servers), the state of each server keyed by its name; each value has the keys above.
  returned: with O(servers)
  type: dict
  sample: {primary: {reachable: false, error: "..."}, secondary: {reachable: true, role: replica}}
primaries:
  description: With O(servers), the names of the servers whose role is primary.
  returned: with O(servers)
  type: list
  elements: str
replicas:
  description: With O(servers), the names of the replicas.
  returned: with O(servers)
  type: list
  elements: str
unreachable_servers:
  description: With O(servers), the names of the servers that did not answer.
  returned: with O(servers)
  type: list
  elements: str
timed_out_servers:
  description:
    - With O(servers), the names of the servers that did not answer in time (among RV(unreachable_servers)).
  returned: with O(servers)
  type: list
  elements: str
  sample: [db-primary]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.response.plugins.module_utils import mysql_status
from ansible_collections.incident.response.plugins.module_utils.common import run
from ansible_collections.incident.response.plugins.module_utils.mysql import require_pymysql


def main():
    module = AnsibleModule(argument_spec=mysql_status.argument_spec(), supports_check_mode=True)
    require_pymysql(module)
    run(module, lambda m: mysql_status.step(m.params))


if __name__ == "__main__":
    main()
