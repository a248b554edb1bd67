#!/usr/bin/python
# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: triage_probe
short_description: Every probe of triage at once, within one deadline
description:
  - The runbook's Detection and Triage probes in one task, all at the same time - the quick health check
    (1.2, what M(incident.response.service_health) does), the databases' status (2.2,
    M(incident.response.mysql_replication_info)), the alerts and metrics (1.1, M(incident.response.prometheus_query))
    and the state of the clusters (1.2 and 1.3, M(incident.response.cluster_snapshot)).
  - Each probe takes the options of its module as a dict and returns what that module returns, so whatever reads
    those results (the P(incident.response.triage_findings#filter) filter) reads these.
  - The whole task ends by O(deadline), every probe and attempt included. Probes run concurrently, so a frozen
    component (a hung database, a region behind a partition) costs the deadline once, not once per probe or per
    task, and is reported as timed out (C(timed_out)), apart from one that refused or is down.
  - Ansible's cost of a task is paid once instead of once per probe.
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
    details: The probes only read; the record files are not written in check mode (their results say what would be).
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  deadline:
    description:
      - Seconds for the whole task, every probe, request, attempt and retry included. Each probe's own timeouts
        (its C(timeout), C(connect_timeout), C(request_timeout)) are cut to what is left of it.
    type: float
    default: 30.0
  health:
    description:
      - The quick health check, with the options of M(incident.response.service_health) (C(endpoints),
        C(databases), C(timeout), C(retries), C(fail_on)...). Left out, it does not run.
      - Secrets are not taken here (they would be logged); a V(sql) database check takes O(login_password).
    type: dict
  databases:
    description:
      - The databases' status, with the options of M(incident.response.mysql_replication_info) (C(servers),
        C(login_user), C(connect_timeout), C(fail_on_unreachable)...). Left out, it does not run.
      - The password is O(login_password).
    type: dict
  login_password:
    description: Password of the database login of O(health) and O(databases). Never logged or returned.
    type: str
  alerts:
    description:
      - The alerts and metrics, with the options of M(incident.response.prometheus_query) (C(url), C(queries),
        C(alerts), C(alertmanager_url), C(fail_on_unreachable), C(dest)...). Left out, it does not run.
      - Credentials are O(bearer_token), or O(url_username) and O(url_password); O(validate_certs) applies to it.
    type: dict
  cluster:
    description:
      - The state of the clusters, with the options of M(incident.response.cluster_snapshot) (C(clusters),
        C(kubeconfig), C(request_timeout), C(fail_on_error), C(dest), C(text_dest)...). Left out, it does not run.
      - A cluster authenticates through its kubeconfig here (a token is a secret, not taken in this dict).
    type: dict
  classify:
    description:
      - Triage's findings from the probes' results, classified by a severity policy, in this task (what the
        P(incident.response.triage_findings#filter) and P(incident.response.classify_severity#filter) filters do
        with the registered result), returned as RV(findings) and RV(classification), and written to C(dest).
        Left out, the task only probes.
      - The filters and this option share one implementation, so both classify alike; this saves the playbook the
        tasks that would compute, classify and record the findings (Ansible's cost of each) on the way to the
        first change.
    type: dict
    suboptions:
      policy:
        description: The severity policy, rules as P(incident.response.classify_severity#filter) takes them.
        type: list
        elements: dict
        required: true
      inventory:
        description: The inventory's C(databases) map (each server's C(expected_role)), as the filter's C(inventory).
        type: dict
      config:
        description: The services' ConfigMap and its database keys, as the filter's C(config).
        type: dict
      clusters:
        description: >-
          The database clusters (P(incident.response.db_clusters#filter)'s result), as the filter's C(clusters).
        type: dict
      dest:
        description:
          - Where to write the findings, the classification and the raw health and database results (JSON), for
            example the incident record's C(triage/findings.json). The alerts and the cluster state are not copied
            into it, they are named (C(raw.alerts_file), C(raw.cluster_file), relative to its directory).
          - Not written in check mode.
        type: path
  make_dirs:
    description:
      - Create the missing directories of the record files (C(alerts.dest), C(cluster.dest), C(cluster.text_dest),
        C(classify.dest)),
        for example an incident's directories, also in check mode when the task runs with C(check_mode=false).
    type: bool
    default: false
notes:
  - A probe whose module would fail makes this task fail after every probe ran, with every result and each
    failure's message.
seealso:
  - module: incident.response.service_health
  - module: incident.response.mysql_replication_info
  - module: incident.response.prometheus_query
  - module: incident.response.cluster_snapshot
"""

EXAMPLES = r"""
- name: Triage's probes at once, within 3 seconds whatever is frozen
  incident.response.triage_probe:
    deadline: 3
    health:
      endpoints: "{{ health_endpoints }}"
      fail_on: never
    databases:
      servers: [{name: db-primary, login_host: db1.internal}, {name: db-replica, login_host: db2.internal}]
      login_user: incident_admin
      fail_on_unreachable: false
    login_password: "{{ vault_db_admin_password }}"
    alerts:
      url: http://prometheus:9090
      alerts: true
      alertmanager_url: http://alertmanager:9093
      fail_on_unreachable: false
    cluster:
      clusters: [{name: primary, context: primary}, {name: secondary, context: secondary}]
      fail_on_error: false
      dest: "{{ incident_dir }}/snapshots/initial-state.json"
    make_dirs: true
  register: probe

- name: Findings, as from the four modules' results
  ansible.builtin.set_fact:
    findings: >-
      {{ probe.health | incident.response.triage_findings({'result': probe.databases, 'inventory': databases},
         probe.alerts, probe.cluster) }}
"""

RETURN = r"""
msg:
  description: One line per probe that ran (its module's C(msg)), joined with C( | ).
  returned: always
  type: str
  sample: "health: 15 of 15 checks UP | databases: db-primary: primary, read-write ... | alerts: 2 queries, no alert"
health:
  description: What M(incident.response.service_health) returns for O(health); null when it did not run.
  returned: always
  type: dict
databases:
  description: What M(incident.response.mysql_replication_info) returns for O(databases); null when it did not run.
  returned: always
  type: dict
alerts:
  description: What M(incident.response.prometheus_query) returns for O(alerts); null when it did not run.
  returned: always
  type: dict
cluster:
  description: What M(incident.response.cluster_snapshot) returns for O(cluster); null when it did not run.
  returned: always
  type: dict
timed_out:
  description: The probes' targets that did not answer in time, as C(probe target).
  returned: always
  type: list
  elements: str
  sample: ["databases db-primary", "cluster primary"]
failed_probes:
  description: The probes whose module would have failed (their result has C(failed) and C(msg)).
  returned: always
  type: list
  elements: str
  sample: []
findings:
  description: The findings (P(incident.response.triage_findings#filter)'s value), with O(classify).
  returned: when O(classify) is given
  type: dict
classification:
  description: >-
    The severity the policy gives the findings, with its reasons and matched rules
    (P(incident.response.classify_severity#filter)'s value).
  returned: when O(classify) is given
  type: dict
  sample: {"severity": "P0", "reasons": ["primary database down: ..."], "matched": []}
elapsed_ms:
  description: Milliseconds the probes took.
  returned: always
  type: float
  sample: 820.4
read_at:
  description: When the probes started reading the platform (seconds since the epoch), to tell how fresh the read is.
  returned: always
  type: float
  sample: 1796604770.39
"""

import json
import os
import time
import traceback

from ansible.module_utils.basic import FILE_COMMON_ARGUMENTS, AnsibleModule
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError

from ansible_collections.incident.response.plugins.module_utils import (
    health,
    k8s,
    k8s_snapshot,
    mysql,
    mysql_status,
    prometheus,
    triage,
    web,
)
from ansible_collections.incident.response.plugins.module_utils.common import (
    Deadline,
    ModuleFailure,
    bounded_map,
    check_deadline,
    run,
)
from ansible_collections.incident.response.plugins.module_utils.files import write_atomic


def cluster_step(module, p, deadline):
    """The cluster probe, which imports the Kubernetes client itself (0.15-0.25 s, within the task's deadline):
    the other probes do not wait for that import."""
    failure = k8s.kubernetes_failure()
    if failure:
        raise ModuleFailure(failure[0])
    return k8s_snapshot.step(module, p, deadline)


# probe -> (its module's options, its module's step, what it needs before the probes start: "mysql" or None)
PROBES = {
    "health": (health.argument_spec, lambda module, p, deadline: health.step(p, deadline), None),
    "databases": (mysql_status.argument_spec, lambda module, p, deadline: mysql_status.step(p, deadline), "mysql"),
    "alerts": (prometheus.argument_spec, prometheus.step, None),
    "cluster": (k8s_snapshot.argument_spec, cluster_step, None),
}
RECORD_FILES = {"alerts": ("dest",), "cluster": ("dest", "text_dest")}


def argument_spec():
    return dict(
        deadline=dict(type="float", default=30.0),
        health=dict(type="dict"),
        databases=dict(type="dict"),
        login_password=dict(type="str", no_log=True),
        alerts=dict(type="dict"),
        cluster=dict(type="dict"),
        classify=dict(
            type="dict",
            options=dict(
                policy=dict(type="list", elements="dict", required=True),
                inventory=dict(type="dict"),
                config=dict(type="dict"),
                clusters=dict(type="dict"),
                dest=dict(type="path"),
            ),
        ),
        make_dirs=dict(type="bool", default=False),
        **web.auth_argument_spec(),
    )


def _secrets(spec, value, path=""):
    """(path, value) of the no_log options given in ``value`` (nested entries included)."""
    found = []
    for key, opt in spec.items():
        given = (value or {}).get(key)
        if given is None:
            continue
        if opt.get("no_log"):
            found.append((path + key, given))
        for item in given if isinstance(given, list) else [given]:
            if opt.get("options") and isinstance(item, dict):
                found += _secrets(opt["options"], item, f"{path}{key}[].")
    return found


def probe_params(module, name):
    """The validated options of one probe (its module's defaults filled in), or ModuleFailure."""
    spec_fn = PROBES[name][0]
    spec, given = spec_fn(), dict(module.params[name])
    secrets = _secrets(spec, given)
    if secrets:
        module.no_log_values.update(str(secret[1]) for secret in secrets)  # kept out of the failure's result
        paths = ", ".join(secret[0] for secret in secrets)
        where = "login_password" if name in ("health", "databases") else "bearer_token or url_password"
        raise ModuleFailure(
            f"{name}: {paths} is a secret: give it as the task's {where} (no_log), not in {name}"
            if name != "cluster"
            else f"cluster: {paths} is a secret: let the kubeconfig hold the cluster's credentials"
        )
    if "deadline" in given:
        raise ModuleFailure(f"{name}: deadline is the task's (one deadline for every probe), not {name}'s")
    given["deadline"] = module.params["deadline"]
    if name in ("health", "databases"):
        given["login_password"] = module.params["login_password"]
    if name == "alerts":
        given.update({k: module.params[k] for k in web.auth_argument_spec()})
    if name in RECORD_FILES:
        given.update({k: module.params.get(k) for k in FILE_COMMON_ARGUMENTS if k in module.params})
        spec = dict(spec, **{k: dict(type="raw") for k in FILE_COMMON_ARGUMENTS})
    result = ArgumentSpecValidator(spec).validate(given)
    if result.error_messages:
        errors = [
            f"unsupported option {err.msg}" if isinstance(err, UnsupportedError) else err.msg
            for err in result.errors.errors
        ]
        raise ModuleFailure(f"{name}: " + "; ".join(errors))
    return result.validated_parameters


def make_dirs(params, findings_dest=None):
    """The missing directories of the record files (an incident's directories)."""
    paths = [(params.get(name) or {}).get(key) for name, keys in RECORD_FILES.items() for key in keys]
    for path in [*paths, findings_dest]:
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o755, exist_ok=True)


def classify(module, result, params):
    """The findings and the policy's severity, from the probes' results; the record's findings file."""
    c = module.params["classify"]
    databases = {"result": result["databases"], "inventory": c["inventory"], "config": c["config"]}
    if c["clusters"] is not None:
        databases["clusters"] = c["clusters"]
    try:
        findings = triage.findings(result["health"], databases, result["alerts"], result["cluster"])
        classification = triage.classify(findings, c["policy"])
    except ValueError as exc:
        read = {k: v for k, v in result.items() if k != "msg"}  # what the probes read stays in the failure
        raise ModuleFailure(f"classify: {exc}", **read) from None
    if c["dest"] and not module.check_mode:
        here = os.path.dirname(os.path.abspath(c["dest"]))
        files = {
            f"{name}_file": os.path.relpath(os.path.abspath(params[name]["dest"]), here)
            for name in ("alerts", "cluster")
            if (params.get(name) or {}).get("dest")
        }
        raw = dict(health=result["health"], databases=result["databases"], **files)
        doc = {"findings": findings, "classification": classification, "raw": raw}
        write_atomic(module, c["dest"], (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    return findings, classification


def _probe(module, name, params, deadline):
    """(name, result, failure message) of one probe, never raising: the others go on."""
    step = PROBES[name][1]
    try:
        return name, step(module, params, deadline), None
    except ModuleFailure as exc:
        return name, dict(exc.result, failed=True, msg=exc.msg), exc.msg
    except Exception as exc:  # a bug in one probe must not hide the others' results
        msg = f"unexpected error: {type(exc).__name__}: {exc}"
        return name, dict(failed=True, msg=msg, exception=traceback.format_exc()), msg


def _timed_out(name, res, params):
    """The targets of one probe's result that did not answer in time."""
    if not res:
        return []
    if name == "health":
        names = (res.get("summary") or {}).get("timed_out_names") or []
    elif name == "databases" and not params.get("servers"):  # one server: the result is its state
        names = [mysql.describe_target(params)] if res.get("timed_out") else []
    elif name == "databases":
        names = res.get("timed_out_servers") or []
    elif name == "alerts":
        names = res.get("timed_out") or []
    else:
        names = res.get("timed_out_clusters") or []
    return [f"{name} {n}" for n in names if n]


def triage_probe(module):
    p = module.params
    check_deadline(p["deadline"])
    deadline = Deadline(p["deadline"])
    names = [name for name in PROBES if p[name] is not None]
    if not names:
        raise ModuleFailure(f"nothing to probe: give at least one of {', '.join(PROBES)}")
    params = {name: probe_params(module, name) for name in names}
    needs = {PROBES[name][2] for name in names}
    if "mysql" in needs:
        mysql.require_pymysql(module)
    if p["make_dirs"] and not module.check_mode:
        make_dirs(params, (p["classify"] or {}).get("dest"))

    start, read_at = time.monotonic(), time.time()
    answers = bounded_map(lambda name: _probe(module, name, params[name], deadline), names, len(names))
    result = dict(changed=False, health=None, databases=None, alerts=None, cluster=None)
    failures = []
    for name, res, failure in answers:
        result[name] = res
        result["changed"] = result["changed"] or bool(res.get("changed"))
        if failure:
            failures.append(f"{name}: {failure}")
    result.update(
        timed_out=[t for name in names for t in _timed_out(name, result[name], params[name])],
        failed_probes=[name for name in names if result[name].get("failed")],
        elapsed_ms=round((time.monotonic() - start) * 1000, 1),
        read_at=round(read_at, 3),
    )
    if failures:
        raise ModuleFailure("; ".join(failures), **result)
    result["msg"] = " | ".join(f"{name}: {result[name].get('msg')}" for name in names)
    if p["classify"] is not None:
        result["findings"], result["classification"] = classify(module, result, params)
        severity = result["classification"]["severity"]
        result["msg"] += f" | severity: {severity or 'no incident'}"
    return result


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        add_file_common_args=True,
        mutually_exclusive=web.AUTH_MUTUALLY_EXCLUSIVE,
        required_together=web.AUTH_REQUIRED_TOGETHER,
    )
    run(module, triage_probe)


if __name__ == "__main__":
    main()
