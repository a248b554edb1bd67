#!/usr/bin/python
# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: incident_notify
short_description: Send one incident message to many channels, routed by severity
description:
  - The runbook's Communication Procedures and its escalation by severity in one task. One message goes,
    concurrently, to every channel the severity is routed to, Slack-compatible incoming webhook, generic
    JSON webhook, SMTP mail, PagerDuty Events API v2 and a Statuspage.io-compatible status page.
  - Routing is inventory data. O(contacts) names people and groups with their addresses, O(escalation) says,
    per severity, which contacts are escalated to and which channels are used (the runbook, P0 to DevOps
    Lead and Management, P1 to the DevOps team, P2 to the on-call engineer, P3 to the development team).
    Mail goes to the escalated contacts' addresses plus the channel's own O(channels[].to).
  - PagerDuty events trigger, acknowledge and resolve one incident by its dedup key. The status page
    incident is created on trigger and updated with O(statuspage_incident_id) (returned by the trigger).
  - Secrets (webhook URLs, header values, routing keys, API keys, SMTP passwords) are never logged and never
    returned, channels are reported by name.
  - Fails when any routed channel fails, unless O(fail_on_error=false), every channel is still tried.
version_added: 0.1.0
author:
  - Incident Response Engineering (@incident-response)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Nothing is sent; every routed channel reports V(would_send) with the payload it would send.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  severity:
    description: Severity of the incident; selects the escalation.
    type: str
    required: true
    choices: [P0, P1, P2, P3]
  title:
    description: One-line summary (Slack headline, mail subject, PagerDuty summary, status page incident name).
    type: str
    required: true
  body:
    description: The message itself, below the O(title).
    type: str
    default: ''
  details:
    description: Extra facts shown with the message (region, service, runbook step...).
    type: dict
    default: {}
  incident_id:
    description: The incident's identifier, shown in every message and the default O(dedup_key).
    type: str
  action:
    description:
      - V(trigger) announces the incident, V(acknowledge) says it is being worked on, V(resolve) that it is over.
      - For PagerDuty this is the event action; for the status page it sets the default O(statuspage_status).
    type: str
    choices: [trigger, acknowledge, resolve]
    default: trigger
  dedup_key:
    description:
      - PagerDuty deduplication key, so acknowledge and resolve reach the triggered incident.
      - Default O(incident_id) (on trigger without either, a generated key, returned in RV(dedup_key)).
    type: str
  statuspage_incident_id:
    description:
      - Status page incident to update (the RV(statuspage_incident_id) of the trigger).
      - Without it a new incident is created (or, with O(sent_log), the one an earlier message of the log created).
    type: str
  once_key:
    description:
      - Send this message once per key. With O(sent_log), a channel that already took a message with this key
        is not sent to again (status V(already_sent)), so a procedure run again after an interruption does not page
        everyone a second time. A channel that failed is tried again.
    type: str
  sent_log:
    description:
      - JSON file of the messages sent, per O(once_key) and channel (time, status page incident id), for example
        in the incident record. Written atomically after sending; its directory must exist.
    type: path
  statuspage_status:
    description: Status page incident status. Default from O(action), V(investigating), V(identified) or V(resolved).
    type: str
    choices: [investigating, identified, monitoring, resolved]
  source:
    description: PagerDuty C(payload.source), the system the incident is about.
    type: str
    default: incident-response
  channels:
    description: The channels, usually inventory data. Options that do not apply to a channel's type are ignored.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the channel, used by O(escalation) and in the result.
        type: str
        required: true
      type:
        description: Kind of channel.
        type: str
        required: true
        choices: [slack, webhook, email, pagerduty, statuspage]
      url:
        description:
          - V(slack) and V(webhook), the webhook URL (a secret, never returned).
          - V(pagerduty), the Events API URL, default U(https://events.pagerduty.com/v2/enqueue).
          - V(statuspage), the API base URL, default U(https://api.statuspage.io).
        type: str
      method:
        description: HTTP method of a V(webhook).
        type: str
        choices: [POST, PUT]
        default: POST
      headers:
        description: Extra headers of a V(webhook), for example a token. Values are secrets, never returned.
        type: dict
      routing_key:
        description: V(pagerduty) integration (routing) key. Never returned.
        type: str
      api_key:
        description: V(statuspage) API key, sent as C(Authorization) C(OAuth <key>). Never returned.
        type: str
      page_id:
        description: V(statuspage) page id.
        type: str
      smtp_host:
        description: V(email) SMTP server.
        type: str
      smtp_port:
        description: V(email) SMTP port.
        type: int
        default: 25
      smtp_security:
        description: V(email) transport security, V(starttls), V(ssl) (implicit TLS) or V(none) for a plain relay.
        type: str
        choices: [starttls, ssl, none]
        default: starttls
      smtp_user:
        description: V(email) login user; without it no login is made.
        type: str
      smtp_password:
        description: V(email) login password. Never returned.
        type: str
      mail_from:
        description: V(email) sender address.
        type: str
        default: incident-response@localhost
      to:
        description: V(email) addresses that always get the mail, besides the routed contacts.
        type: list
        elements: str
        default: []
  contacts:
    description:
      - People and groups by key, each V({name, email}) with C(email) one address or a list, or just an address list.
    type: dict
    default: {}
  escalation:
    description:
      - Per severity (V(P0)...V(P3)), V({contacts, channels}), the O(contacts) keys escalated to and the
        O(channels) names used. Channels not listed for the severity are skipped.
      - Without it every channel is used and only O(channels[].to) and O(also_notify) get mail.
    type: dict
    default: {}
  also_notify:
    description: More O(contacts) keys for this message, for example V(database_admin) for a database incident.
    type: list
    elements: str
    default: []
  fail_on_error:
    description: Fail when a routed channel could not be sent. Every channel is tried either way.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each channel.
    type: float
    default: 10.0
  validate_certs:
    description: Verify TLS certificates (HTTPS and SMTP TLS).
    type: bool
    default: true
notes:
  - Notifications are not idempotent, a second run sends again, unless O(once_key) and O(sent_log) are given.
  - PagerDuty folds events with the same dedup key into one incident.
seealso:
  - module: incident.response.service_health
"""

EXAMPLES = r"""
# inventory (group_vars/all/notify.yml), secrets from a vault
# incident_contacts:
#   devops_lead: {name: DevOps Lead, email: devops-lead@company.com}
#   management: {name: Management, email: [cto@company.com, vp-engineering@company.com]}
#   devops_team: {name: DevOps Team, email: [devops-lead@company.com, oncall@company.com]}
#   oncall: {name: On-Call Engineer, email: oncall@company.com}
#   development_team: {name: Development Team, email: dev-team@company.com}
#   database_admin: {name: Database Admin, email: db-admin@company.com}
#   security: {name: Security Team, email: security@company.com}
# incident_escalation:
#   P0: {contacts: [devops_lead, management], channels: [slack, pagerduty, mail, status-page]}
#   P1: {contacts: [devops_team], channels: [slack, pagerduty, mail]}
#   P2: {contacts: [oncall], channels: [slack, mail]}
#   P3: {contacts: [development_team], channels: [mail]}
# notify_channels:
#   - {name: slack, type: slack, url: "{{ vault_slack_webhook }}"}
#   - {name: pagerduty, type: pagerduty, routing_key: "{{ vault_pd_routing_key }}"}
#   - {name: mail, type: email, smtp_host: smtp.company.com, smtp_port: 587,
#      smtp_user: notifier, smtp_password: "{{ vault_smtp_password }}", mail_from: incidents@company.com}
#   - {name: status-page, type: statuspage, page_id: abc123, api_key: "{{ vault_statuspage_key }}"}

- name: Notify stakeholders of a P0 (runbook 2.1 step 1)
  incident.response.incident_notify:
    severity: P0
    incident_id: "{{ incident_id }}"
    title: Primary region is down
    body: Every service in region primary fails its health check; failing over to secondary.
    details:
      region: primary
      runbook: "2.1 Immediate Actions"
    channels: "{{ notify_channels }}"
    contacts: "{{ incident_contacts }}"
    escalation: "{{ incident_escalation }}"
    also_notify: [database_admin]
  register: notified

- name: Resolve the PagerDuty incident and the status page incident
  incident.response.incident_notify:
    severity: P0
    action: resolve
    incident_id: "{{ incident_id }}"
    statuspage_incident_id: "{{ notified.statuspage_incident_id }}"
    title: Primary region is down
    body: Traffic is served from secondary; primary recovered.
    channels: "{{ notify_channels }}"
    contacts: "{{ incident_contacts }}"
    escalation: "{{ incident_escalation }}"
"""

RETURN = r"""
msg:
  description: One line for the incident timeline, the channels sent to (and those that failed).
  returned: always
  type: str
  sample: "trigger sent to slack, pagerduty, mail, status-page"
channels:
  description: One entry per channel, keyed by its name.
  returned: always
  type: dict
  sample:
    slack: {name: slack, type: slack, status: sent, http_status: 200, error: null, elapsed_ms: 35.1}
    mail: {name: mail, type: email, status: failed, http_status: null,
           error: "cannot reach SMTP server smtp.company.com:587 (Connection refused)",
           recipients: [devops-lead@company.com, cto@company.com]}
    pagerduty: {name: pagerduty, type: pagerduty, status: sent, http_status: 202, dedup_key: INC-42}
    status-page: {name: status-page, type: statuspage, status: sent, http_status: 201, incident_id: p0k9zq1c2v}
  contains:
    status:
      description:
        - V(sent), V(failed), V(skipped) (not routed for the severity), V(would_send) (check mode) or
          V(already_sent) (with O(once_key), sent by an earlier run).
      type: str
    error:
      description: Why the channel failed or was skipped, null when sent.
      type: str
    http_status:
      description: HTTP status of the API's answer, null for mail or without an answer.
      type: int
    recipients:
      description: Mail recipients (V(email) channels).
      type: list
      elements: str
    dedup_key:
      description: PagerDuty dedup key of the incident (V(pagerduty) channels).
      type: str
    incident_id:
      description: Status page incident id (V(statuspage) channels).
      type: str
    payload:
      description: In check mode only, what would be sent (without secrets).
      type: dict
channels_sent:
  description: Names of the channels sent (in check mode, that would be sent).
  returned: always
  type: list
  elements: str
  sample: [slack, pagerduty, status-page]
channels_failed:
  description: Names of the channels that failed.
  returned: always
  type: list
  elements: str
  sample: [mail]
channels_skipped:
  description: Names of the channels not routed for this severity, or (with O(once_key)) already sent to.
  returned: always
  type: list
  elements: str
  sample: []
routing:
  description: What the escalation decided for this severity.
  returned: always
  type: dict
  sample:
    severity: P0
    contacts: [devops_lead, management]
    contact_names: [DevOps Lead, Management]
    recipients: [devops-lead@company.com, cto@company.com, vp-engineering@company.com]
    channels: [slack, pagerduty, mail, status-page]
dedup_key:
  description: The PagerDuty dedup key used; pass it to acknowledge and resolve.
  returned: always
  type: str
  sample: INC-42
statuspage_incident_id:
  description: Id of the status page incident created or updated (the first V(statuspage) channel's), else null.
  returned: always
  type: str
  sample: p0k9zq1c2v
"""

import json
import uuid

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.response.plugins.module_utils import notify
from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure, bounded_map, run
from ansible_collections.incident.response.plugins.module_utils.files import read_bytes, write_atomic


def argument_spec():
    channel = dict(
        name=dict(type="str", required=True),
        type=dict(type="str", required=True, choices=list(notify.TYPES)),
        url=dict(type="str", no_log=True),
        method=dict(type="str", choices=["POST", "PUT"], default="POST"),
        headers=dict(type="dict", no_log=True),
        routing_key=dict(type="str", no_log=True),
        api_key=dict(type="str", no_log=True),
        page_id=dict(type="str"),
        smtp_host=dict(type="str"),
        smtp_port=dict(type="int", default=25),
        smtp_security=dict(type="str", choices=["starttls", "ssl", "none"], default="starttls"),
        smtp_user=dict(type="str"),
        smtp_password=dict(type="str", no_log=True),
        mail_from=dict(type="str", default="incident-response@localhost"),
        to=dict(type="list", elements="str", default=[]),
    )
    return dict(
        severity=dict(type="str", required=True, choices=list(notify.SEVERITIES)),
        title=dict(type="str", required=True),
        body=dict(type="str", default=""),
        details=dict(type="dict", default={}),
        incident_id=dict(type="str"),
        action=dict(type="str", choices=list(notify.ACTIONS), default="trigger"),
        dedup_key=dict(type="str", no_log=False),
        statuspage_incident_id=dict(type="str"),
        once_key=dict(type="str", no_log=False),
        sent_log=dict(type="path"),
        statuspage_status=dict(type="str", choices=["investigating", "identified", "monitoring", "resolved"]),
        source=dict(type="str", default="incident-response"),
        channels=dict(type="list", elements="dict", required=True, options=channel),
        contacts=dict(type="dict", default={}),
        escalation=dict(type="dict", default={}),
        also_notify=dict(type="list", elements="str", default=[]),
        fail_on_error=dict(type="bool", default=True),
        timeout=dict(type="float", default=10.0),
        validate_certs=dict(type="bool", default=True),
    )


def incident_notify(module):
    p = module.params
    names = [ch["name"] for ch in p["channels"]]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ModuleFailure(f"channel names must be unique, these repeat: {', '.join(dup)}")
    if not p["title"].strip():
        raise ModuleFailure("title is empty: say in one line what is wrong")
    routing = notify.resolve_routing(p["severity"], p["contacts"], p["escalation"], p["also_notify"], names)
    if bool(p["once_key"]) != bool(p["sent_log"]):
        raise ModuleFailure("once_key and sent_log go together: the log is where the key is remembered")
    log = read_sent_log(p["sent_log"]) if p["sent_log"] else {}
    earlier = log.get(p["once_key"]) or {} if p["once_key"] else {}
    if p["statuspage_incident_id"] is None:
        p["statuspage_incident_id"] = next(
            (e.get("statuspage_incident_id") for e in log.values() if e.get("statuspage_incident_id")), None
        )
    dedup_key = p["dedup_key"] or p["incident_id"]
    if not dedup_key and p["action"] == "trigger":
        dedup_key = f"incident-{uuid.uuid4().hex[:12]}"
    ctx = dict(
        severity=p["severity"],
        title=p["title"],
        message=p["body"],
        details=p["details"],
        incident_id=p["incident_id"],
        action=p["action"],
        dedup_key=dedup_key,
        statuspage_incident_id=p["statuspage_incident_id"],
        statuspage_status=p["statuspage_status"],
        source=p["source"],
        routing=routing,
        timeout=p["timeout"],
        validate_certs=p["validate_certs"],
        check_mode=module.check_mode,
        sent_at=notify.now_iso(),
    )
    to_send = [ch for ch in p["channels"] if ch["name"] not in earlier.get("channels", {})]
    results = bounded_map(lambda ch: notify.deliver(ch, ctx), to_send, max_workers=8)
    results += [
        dict(name=ch["name"], type=ch["type"], status="already_sent", error=None, http_status=None)
        for ch in p["channels"]
        if ch["name"] in earlier.get("channels", {})
    ]
    by_status = {
        s: [r["name"] for r in results if r["status"] == s]
        for s in ("sent", "would_send", "failed", "skipped", "already_sent")
    }
    statuspage_id = next(
        (r.get("incident_id") for r in results if r["type"] == "statuspage" and r.get("incident_id")),
        p["statuspage_incident_id"],
    )
    result = dict(
        changed=bool(by_status["sent"] or by_status["would_send"]),
        channels={r["name"]: r for r in results},
        # not "failed"/"skipped": Ansible reads those keys as the task's own outcome
        channels_sent=by_status["sent"] + by_status["would_send"],
        channels_failed=by_status["failed"],
        channels_skipped=by_status["skipped"] + by_status["already_sent"],
        routing=routing,
        dedup_key=dedup_key,
        statuspage_incident_id=statuspage_id,
    )
    if p["once_key"] and by_status["sent"] and not module.check_mode:
        entry = log.setdefault(p["once_key"], {"channels": {}})
        entry["channels"].update({name: ctx["sent_at"] for name in by_status["sent"]})
        if statuspage_id:
            entry["statuspage_incident_id"] = statuspage_id
        write_atomic(module, p["sent_log"], (json.dumps(log, indent=2, sort_keys=True) + "\n").encode())
    if by_status["failed"]:
        reasons = "; ".join(f"{r['name']} ({r['type']}): {r['error']}" for r in results if r["status"] == "failed")
        msg = f"{len(by_status['failed'])} of {len(routing['channels'])} routed channels failed: {reasons}"
        if p["fail_on_error"]:
            raise ModuleFailure(msg + ". Sent: " + (", ".join(result["channels_sent"]) or "none"), **result)
        module.warn(msg)
    if not routing["channels"]:
        module.warn(f"escalation routes {p['severity']} to no channel: nothing was sent")
    verb = "would send" if module.check_mode else "sent"
    result["msg"] = (
        f"{p['action']} {verb} to {', '.join(result['channels_sent']) or 'no channel'}"
        + (f"; already sent to {', '.join(by_status['already_sent'])}" if by_status["already_sent"] else "")
        + (f"; failed: {', '.join(by_status['failed'])}" if by_status["failed"] else "")
    )
    return result


def read_sent_log(path):
    raw = read_bytes(path)
    if raw is None:
        return {}
    try:
        log = json.loads(raw)
    except ValueError:
        raise ModuleFailure(f"sent_log {path} is not JSON: move it away, or give another file") from None
    if not isinstance(log, dict):
        raise ModuleFailure(f"sent_log {path} is not a log of sent messages")
    return log


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run(module, incident_notify)


if __name__ == "__main__":
    main()
