#!/usr/bin/python
# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: service_health
short_description: Check many HTTP health endpoints and databases at once
description:
  - The runbook's quick health check (1.2) in one task, whatever the number of targets.
  - Checks every HTTP endpoint and every database concurrently (at most O(concurrency) at once), so the
    task takes about as long as the slowest check, not the sum of all of them.
  - An HTTP endpoint is UP when it answers one of its expected status codes and, when its body is
    Spring Boot actuator JSON, its overall C(status) is C(UP). Failing actuator components are reported.
  - A database is UP when it accepts a login and answers C(SELECT 1) (O(databases[].check=sql)), or
    accepts a TCP connection (O(databases[].check=tcp)).
  - Fails when a check is DOWN (O(fail_on=any)), when fewer than a quorum are UP, when a named check is
    DOWN, or never (O(fail_on=never)), with the full result in every case.
  - The whole task ends by O(deadline), retries included, whatever hangs. A check that got no answer in
    time (a frozen server accepts the connection and never answers) is DOWN with RV(checks[].timed_out=true),
    which tells it apart from a refused connection or a bad answer.
version_added: 0.1.0
author:
  - Incident Response Engineering (@incident-response)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads; it runs the same checks in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  endpoints:
    description:
      - HTTP endpoints to check, for example each service's C(/actuator/health).
      - Options left out take the module-level value of the same name.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the check, unique among O(endpoints) and O(databases). Results and policies use it.
        type: str
        required: true
      url:
        description: URL to request. User and password in the URL are never returned.
        type: str
        required: true
      region:
        description: Region label; the result summarises checks per region.
        type: str
      expected_status:
        description: HTTP status codes that count as UP. Default O(expected_status).
        type: list
        elements: int
      timeout:
        description: Seconds for one attempt, cut to what is left of O(deadline). Default O(timeout).
        type: float
      retries:
        description:
          - Extra attempts after a DOWN answer, as long as O(deadline) leaves time. Default O(retries).
          - Not after a request the endpoint took and did not answer within O(endpoints[].timeout) (frozen or
            overloaded, another attempt would cost the timeout again), nor after a slow answer.
        type: int
      method:
        description: HTTP method.
        type: str
        choices: [GET, HEAD]
        default: GET
      headers:
        description: Extra request headers, for example C(Host).
        type: dict
      parse:
        description: How to read the body. Default O(parse).
        type: str
        choices: [auto, actuator, none]
      max_latency_ms:
        description:
          - A response-time objective. An answer as expected but slower than this is V(SLOW), not V(UP) (a
            service that answers its health check fast but its business path slowly is degraded, not healthy).
            A slow answer is not retried into an UP one.
        type: int
  databases:
    description:
      - Databases to check like the runbook's C(mysql -e "SELECT 1").
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the check, unique among O(endpoints) and O(databases).
        type: str
        required: true
      check:
        description:
          - V(sql) logs in and runs C(SELECT 1); V(tcp) only opens a TCP connection (no credentials needed).
        type: str
        choices: [sql, tcp]
        default: sql
      login_host:
        description: Host name or IP address of the server.
        type: str
        default: 127.0.0.1
      login_port:
        description: TCP port of the server.
        type: int
        default: 3306
      login_unix_socket:
        description: Unix socket to connect through instead of TCP (V(sql) only).
        type: path
      login_user:
        description: Account to log in with. Default O(login_user).
        type: str
      login_password:
        description: Password of the account. Default O(login_password). Never logged or returned.
        type: str
      connect_timeout:
        description:
          - Seconds for one attempt (connect, the server's greeting, the login and C(SELECT 1)), cut to what
            is left of O(deadline). Default O(timeout).
        type: float
      retries:
        description: Extra attempts after a failure. Default O(retries).
        type: int
      region:
        description: Region label; the result summarises checks per region.
        type: str
  login_user:
    description: Account for the V(sql) database checks that do not name their own.
    type: str
  login_password:
    description: Password for O(login_user). Never logged or returned.
    type: str
  timeout:
    description: Seconds for one attempt of a check, unless the check gives its own.
    type: float
    default: 5.0
  deadline:
    description:
      - Seconds for the whole task, every attempt and retry of every check included. No attempt runs past
        it, each one's timeout is cut to what is left, and a check not answered by then is DOWN with
        RV(checks[].timed_out=true).
      - Default the longest one check may take with its attempts and delays (timeout x (1 + retries) +
        retry_delay x retries), plus one second, so that every check keeps the time its options give it.
    type: float
  retries:
    description:
      - Extra attempts of a check that is DOWN, unless the check gives its own. One retry keeps a single
        lost packet from paging anyone.
      - An HTTP endpoint that took the request (the connection was made) and stayed silent for its timeout is
        not asked again. It is frozen or overloaded, and a retry would cost the timeout once more.
    type: int
    default: 1
  retry_delay:
    description: Seconds between the attempts of one check.
    type: float
    default: 0.5
  expected_status:
    description: HTTP status codes that count as UP, unless the endpoint gives its own.
    type: list
    elements: int
    default: [200]
  parse:
    description:
      - V(auto) reads the body as actuator JSON when the answer says it is JSON (a JSON content type with a
        body that is not JSON is DOWN).
      - V(actuator) requires actuator JSON with a C(status) field.
      - V(none) only looks at the status code.
    type: str
    choices: [auto, actuator, none]
    default: auto
  concurrency:
    description: At most this many checks run at the same time.
    type: int
    default: 200
  validate_certs:
    description: Verify TLS certificates of HTTPS endpoints.
    type: bool
    default: true
  fail_on:
    description:
      - V(any) fails when any check is DOWN.
      - V(quorum) fails when fewer than O(quorum) checks are UP.
      - V(required) fails when a check named in O(required) is DOWN.
      - V(never) only reports; read RV(summary) to decide.
    type: str
    choices: [any, quorum, required, never]
    default: any
  quorum:
    description: Minimum number of checks that must be UP for O(fail_on=quorum). Default a majority.
    type: int
  required:
    description: Names of the checks that must be UP for O(fail_on=required).
    type: list
    elements: str
    default: []
requirements:
  - PyMySQL >= 1.0 for V(sql) database checks.
notes:
  - Secrets in URLs (user:password@) and database passwords never appear in the result.
seealso:
  - module: incident.response.traffic_failover
"""

EXAMPLES = r"""
- name: Quick health check of every service and database (runbook 1.2)
  incident.response.service_health:
    # inventory: health_endpoints: [{name: user-service, url: http://10.0.1.10/user-service/actuator/health}, ...]
    endpoints: "{{ health_endpoints }}"
    databases:
      - name: db-primary
        login_host: "{{ mysql_primary_host }}"
        region: primary
      - name: db-replica
        login_host: "{{ mysql_secondary_host }}"
        region: secondary
    login_user: "{{ db_user }}"
    login_password: "{{ db_password }}"
    fail_on: never
  register: health

- name: Endpoints from inventory data, with a region label and a slower endpoint
  incident.response.service_health:
    endpoints:
      - name: user-service
        url: http://10.0.1.10/user-service/actuator/health
        region: primary
      - name: payment-service
        url: http://10.0.1.10/payment-service/actuator/health
        region: primary
        timeout: 10
      - name: secondary-lb
        url: http://10.0.2.10/actuator/health
        region: secondary
        expected_status: [200, 204]
    fail_on: required
    required: [secondary-lb]

- name: Fail only when fewer than 4 services answer
  incident.response.service_health:
    endpoints: "{{ service_endpoints }}"
    fail_on: quorum
    quorum: 4
"""

RETURN = r"""
msg:
  description: One line for the incident timeline, the checks UP and the names of those DOWN.
  returned: success
  type: str
  sample: "11 of 12 checks UP; DOWN: payment-service@primary"
checks:
  description: One entry per check, in the order given (endpoints first, then databases).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the check.
      type: str
      sample: order-service
    kind:
      description: V(http), V(sql) or V(tcp).
      type: str
      sample: http
    target:
      description: URL (without credentials) or C(host:port) that was checked.
      type: str
      sample: http://10.0.1.10/order-service/actuator/health
    region:
      description: Region label, or null.
      type: str
      sample: primary
    status:
      description: V(UP), V(DOWN), or V(SLOW) (answered as expected, slower than its O(endpoints[].max_latency_ms)).
      type: str
      sample: DOWN
    http_status:
      description: HTTP status of the last attempt, null without an HTTP answer or for databases.
      type: int
      sample: 503
    latency_ms:
      description: Milliseconds the last attempt took.
      type: float
      sample: 12.5
    attempts:
      description: Attempts made (1 + retries used).
      type: int
      sample: 2
    health:
      description: Overall actuator status (V(UP), V(DOWN), V(OUT_OF_SERVICE)...), null without actuator JSON.
      type: str
      sample: DOWN
    components:
      description: Actuator component statuses by name (nested ones as C(group.leaf)).
      type: dict
      sample: {"db": "DOWN", "diskSpace": "UP", "ping": "UP"}
    failing_components:
      description: Components that are not UP.
      type: list
      elements: str
      sample: [db]
    error:
      description: Why the check is DOWN, null when UP.
      type: str
      sample: "HTTP 503 (expected 200); health DOWN; db DOWN: OperationalError: Can't connect to MySQL server"
    timed_out:
      description:
        - True when the check is DOWN because no answer came in time (its attempt's timeout or O(deadline)),
          not because it was refused or answered badly.
      type: bool
      sample: true
summary:
  description: Counts and names, for a severity policy.
  returned: always
  type: dict
  contains:
    total:
      description: Number of checks.
      type: int
      sample: 7
    up:
      description: Checks UP.
      type: int
      sample: 5
    down:
      description: Checks DOWN.
      type: int
      sample: 2
    all_up:
      description: True when every check is UP.
      type: bool
      sample: false
    up_names:
      description: Names of the checks UP.
      type: list
      elements: str
      sample: [user-service, db-replica]
    down_names:
      description: Names of the checks not UP (DOWN or SLOW).
      type: list
      elements: str
      sample: [order-service, db-primary]
    timed_out:
      description: Checks DOWN because they did not answer in time.
      type: int
      sample: 1
    timed_out_names:
      description: Names of the checks DOWN because they did not answer in time.
      type: list
      elements: str
      sample: [db-primary]
    slow_names:
      description: Names of the checks SLOW (over their response-time objective).
      type: list
      elements: str
      sample: [payment-service]
    regions:
      description: Per region label, C(total), C(up), C(down) and C(down_names). Only checks with a region count.
      type: dict
      sample: {"primary": {"total": 3, "up": 1, "down": 2, "down_names": ["order-service", "db-primary"]}}
elapsed_ms:
  description: Milliseconds the whole check took.
  returned: always
  type: float
  sample: 105.2
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.response.plugins.module_utils import health
from ansible_collections.incident.response.plugins.module_utils.common import run


def main():
    module = AnsibleModule(argument_spec=health.argument_spec(), supports_check_mode=True)
    run(module, lambda m: health.step(m.params))


if __name__ == "__main__":
    main()
