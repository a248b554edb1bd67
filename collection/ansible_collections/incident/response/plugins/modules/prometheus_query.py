#!/usr/bin/python
# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: prometheus_query
short_description: Run Prometheus queries and read firing alerts for triage
description:
  - The runbook's metrics steps (3.1 and Metrics Analysis) in one task. Runs several named instant or range
    queries at once, reads the alerts Prometheus has (C(/api/v1/alerts)) and, optionally, the active alerts
    of Alertmanager (C(/api/v2/alerts)).
  - Returns the results as data (sample values as numbers) and, with O(dest), also writes them to a JSON
    file for the incident record. The file is replaced atomically.
  - A Prometheus that does not answer (or answers 5xx) fails the task with a clear message, or, with
    O(fail_on_unreachable=false), gives a degraded result (RV(degraded)) so triage can go on without it.
    Refused credentials, a wrong URL and a query Prometheus rejects always fail.
  - Every request ends by O(deadline), the whole task's budget; a server that did not answer in time is
    reported with C(timed_out=true) in RV(prometheus) or RV(alertmanager), apart from one that refused.
version_added: 0.1.0
author:
  - Incident Response Engineering (@incident-response)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.files
  - incident.response.http_auth
attributes:
  check_mode:
    support: full
    details: Queries run (they only read); the file in O(dest) is not written, RV(file) says what would be.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  url:
    description: Base URL of Prometheus, for example C(http://prometheus:9090), without C(/api/v1).
    type: str
    required: true
  queries:
    description:
      - Named PromQL queries. Without O(queries[].range) and O(queries[].start) a query is an instant query.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the query; the key of its result in RV(query_results).
        type: str
        required: true
      query:
        description: The PromQL expression.
        type: str
        required: true
      range:
        description: Makes a range query over this duration up to O(queries[].end), for example V(1h) or V(30m).
        type: str
      step:
        description: Resolution of a range query, as seconds or a duration. Default 60 seconds.
        type: str
      start:
        description: Start of a range query (V(now-1h), Unix seconds or RFC 3339). Overrides O(queries[].range).
        type: str
      end:
        description: End of a range query (V(now), V(now-<duration>), Unix seconds or RFC 3339). Default now.
        type: str
      time:
        description: Evaluation time of an instant query, same formats as O(queries[].end).
        type: str
  alerts:
    description: Also read Prometheus' alerts (C(/api/v1/alerts)) into RV(alerts).
    type: bool
    default: false
  alert_state:
    description: Which of Prometheus' alerts to return.
    type: str
    choices: [firing, pending, all]
    default: firing
  alertmanager_url:
    description:
      - Base URL of Alertmanager. When given, its active (not silenced, not inhibited) alerts are returned in
        RV(alertmanager_alerts). The same credentials are sent to it.
    type: str
  timeout:
    description: Seconds to wait for each answer, cut to what is left of O(deadline).
    type: float
    default: 10.0
  deadline:
    description:
      - Seconds for the whole task, every request included. A request still unanswered then is given up,
        and its server reported as not answering (C(timed_out=true)).
    type: float
    default: 30.0
  fail_on_unreachable:
    description:
      - Fail when Prometheus or Alertmanager does not answer or answers 5xx.
      - With V(false) the task succeeds with RV(degraded=true), a warning, and the error of every query.
    type: bool
    default: true
  dest:
    description:
      - Also write the results as JSON to this file (replaced atomically). Its directory must exist.
    type: path
seealso:
  - module: incident.response.service_health
"""

EXAMPLES = r"""
- name: Error rate now and over the last hour (runbook 3.1 and Metrics Analysis)
  incident.response.prometheus_query:
    url: "{{ prometheus_url }}"
    queries:
      - name: request_rate
        query: rate(http_server_requests_seconds_count[5m])
      - name: request_rate_1h
        query: rate(http_server_requests_seconds_count[5m])
        range: 1h
        step: 60
      - name: databases_up
        query: mysql_up
    alerts: true
    alertmanager_url: "{{ alertmanager_url }}"
    dest: "{{ incident_dir }}/metrics.json"
    mode: "0640"
  register: metrics

- name: Triage goes on when Prometheus itself is down
  incident.response.prometheus_query:
    url: https://prometheus.example.com
    bearer_token: "{{ prometheus_token }}"
    alerts: true
    fail_on_unreachable: false
  register: alerts

- name: Page only for critical alerts
  ansible.builtin.debug:
    msg: "{{ alerts.alerts | selectattr('severity', 'equalto', 'critical') | map(attribute='name') | list }}"
  when: not alerts.degraded
"""

RETURN = r"""
msg:
  description: One line for the incident timeline.
  returned: success
  type: str
  sample: "2 queries, alerts: DatabaseDown, ReplicationBroken"
query_results:
  description: One entry per query, keyed by its name.
  returned: always
  type: dict
  sample:
    databases_up:
      name: databases_up
      query: mysql_up
      type: instant
      time: "2026-01-31T12:00:00.000000Z"
      result_type: vector
      series_count: 2
      series:
        - {metric: {__name__: mysql_up, db: db-primary}, timestamp: 1769860800.0, value: 1.0}
        - {metric: {__name__: mysql_up, db: db-replica}, timestamp: 1769860800.0, value: 1.0}
      error: null
  contains:
    type:
      description: V(instant) or V(range); a range query also has C(start), C(end) and C(step).
      type: str
    result_type:
      description: Prometheus' result type (V(vector), V(matrix), V(scalar), V(string)), null on error.
      type: str
    series:
      description:
        - Instant vector, C(metric) labels, C(timestamp) and C(value).
        - Range, C(metric) and C(values) as C([timestamp, value]) pairs.
        - Values are numbers; NaN and infinities stay strings.
      type: list
      elements: dict
    series_count:
      description: Number of series.
      type: int
    error:
      description: Why the query has no result (degraded mode only), else null.
      type: str
alerts:
  description: Prometheus' alerts in O(alert_state) (empty unless O(alerts=true)).
  returned: always
  type: list
  elements: dict
  sample:
    - name: DatabaseDown
      state: firing
      severity: critical
      labels: {alertname: DatabaseDown, db: db-primary, severity: critical}
      annotations: {summary: database db-primary is down}
      active_at: "2026-01-31T12:00:00Z"
      value: 0.0
alert_names:
  description: Sorted unique names of the alerts in RV(alerts).
  returned: always
  type: list
  elements: str
  sample: [DatabaseDown, ReplicationBroken]
alertmanager_alerts:
  description: Alertmanager's active alerts (empty without O(alertmanager_url)).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: DatabaseDown, state: active, severity: critical, labels: {alertname: DatabaseDown},
       annotations: {}, starts_at: "2026-01-31T12:00:00Z", fingerprint: 4e1b2c, receivers: [pager]}
prometheus:
  description:
    - Whether Prometheus answered (C(url), C(reachable), C(error)), and C(timed_out), true when it did not
      answer in time (as opposed to refused or a 5xx).
  returned: always
  type: dict
  sample: {url: "http://prometheus:9090", reachable: true, timed_out: false, error: null}
alertmanager:
  description: Whether Alertmanager answered, as RV(prometheus); null without O(alertmanager_url).
  returned: always
  type: dict
  sample: {url: "http://alertmanager:9093", reachable: false, timed_out: true, error: "..."}
timed_out:
  description: The servers (V(prometheus), V(alertmanager)) that did not answer in time.
  returned: always
  type: list
  elements: str
  sample: [alertmanager]
degraded:
  description: True when O(fail_on_unreachable=false) let the task succeed without some answers.
  returned: always
  type: bool
  sample: false
file:
  description: What was (or in check mode would be) written to O(dest), null without O(dest).
  returned: always
  type: dict
  sample: {path: /srv/incidents/INC-42/metrics.json, written: true, bytes: 5120}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.response.plugins.module_utils import prometheus, web
from ansible_collections.incident.response.plugins.module_utils.common import run


def main():
    module = AnsibleModule(
        argument_spec=prometheus.argument_spec(),
        supports_check_mode=True,
        add_file_common_args=True,
        mutually_exclusive=web.AUTH_MUTUALLY_EXCLUSIVE,
        required_together=web.AUTH_REQUIRED_TOGETHER,
    )
    run(module, lambda m: prometheus.step(m, m.params))


if __name__ == "__main__":
    main()
