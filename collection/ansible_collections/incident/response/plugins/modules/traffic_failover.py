#!/usr/bin/python
# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: traffic_failover
short_description: Move traffic from one region to another, and back
description:
  - The runbook's region failover (2.1, C(region-failover.sh)) as one safe step.
  - Provider V(nginx) rewrites an include file holding one C(upstream) block so that it lists the target
    region's servers. The file is replaced atomically, the previous one is kept in O(backup_file), the whole
    configuration is validated with C(nginx -t) (a rejected file is put back at once), and nginx is reloaded,
    by SIGHUP to the master in O(pid_file), waiting until no worker of the old configuration takes new
    connections (each exited, or is shutting down and only finishes its requests in flight), or by
    C(nginx -s reload). O(state=rollback) restores O(backup_file) the same way.
  - Provider V(http) calls a traffic manager's API (O(api_method), O(api_url), O(api_body) with
    C(${to_region}) and C(${from_region}) placeholders) and checks the answer's status. With O(status_url) it
    reads the active region first (idempotence) and again after the switch (verification).
  - Before traffic moves, the target region's O(regions) C(health_url) endpoints are checked; an unhealthy
    (or unchecked) region is refused unless O(force=true).
  - Moving traffic is a cross-region change. It needs O(confirm=true) (check mode does not).
    Already pointing at the target region is V(changed=false) and needs no confirmation.
version_added: 0.1.0
author:
  - Incident Response Engineering (@incident-response)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - incident.response.http_auth
attributes:
  check_mode:
    support: full
    details: Runs the pre-check and reports the change (and the diff of the upstream file) without making it.
  diff_mode:
    support: full
    details: Provider V(nginx) returns the upstream file before and after.
  platform:
    platforms: posix
    details: The V(nginx) provider reads C(/proc) to wait for the reload (Linux).
options:
  provider:
    description: How traffic is steered.
    type: str
    required: true
    choices: [nginx, http]
  state:
    description:
      - V(active) points traffic at O(to_region).
      - V(rollback) restores the upstream file saved by the last switch (provider V(nginx) only; with V(http),
        switch back with O(to_region) set to the RV(previous_region) of the switch).
    type: str
    choices: [active, rollback]
    default: active
  to_region:
    description: Region to move traffic to. Required with O(state=active).
    type: str
  from_region:
    description:
      - Region traffic is expected to come from. When given, the switch is refused if traffic currently goes
        anywhere else (or that cannot be told), because the state is not what the operator thinks it is.
    type: str
  regions:
    description:
      - The regions by name, usually inventory data. Each is a dict with C(servers) (list of C(host:port), with
        optional nginx server parameters such as C(max_fails=3); needed by V(nginx)) and C(health_url) (a URL or
        a list of URLs for the pre-check). A plain list is taken as C(servers).
    type: dict
    required: true
  confirm:
    description:
      - Confirms the cross-region change. Without it a change fails (check mode and no-change runs do not need it).
    type: bool
    default: false
  force:
    description: Move traffic even when the target region's health check fails or the region has no C(health_url).
    type: bool
    default: false
  health_timeout:
    description: Seconds for each pre-check request.
    type: float
    default: 5.0
  upstream_file:
    description: V(nginx) include file holding the C(upstream) block. Required with V(nginx).
    type: path
  upstream_name:
    description: V(nginx) name of the C(upstream) block that the proxy uses.
    type: str
    default: backend
  upstream_directives:
    description: V(nginx) extra directives of the block, for example V(keepalive 16).
    type: list
    elements: str
    default: []
  backup_file:
    description:
      - V(nginx) where the replaced file is kept for rollback. Default O(upstream_file) plus C(.previous).
      - It must not match an C(include) glob of the nginx configuration.
    type: path
  nginx_config:
    description: V(nginx) main configuration file, for C(nginx -t -c) and C(nginx -s reload -c). Default nginx's own.
    type: path
  nginx_prefix:
    description: V(nginx) prefix path (C(nginx -p)), when the configuration uses relative paths.
    type: path
  nginx_error_log:
    description: V(nginx) error log for nginx's own start-up messages (C(nginx -e)), when the default is not writable.
    type: path
  nginx_binary:
    description: V(nginx) the nginx program.
    type: path
    default: nginx
  pid_file:
    description:
      - V(nginx) pid file of the master. When given, the reload is a SIGHUP and the module waits until the old
        workers take no new connections (exited, or shutting down with requests in flight), so traffic has moved
        when the task ends. Without it, C(nginx -s reload) is used.
    type: path
  reload:
    description: V(nginx) reload nginx after writing the file. V(false) only writes and validates it.
    type: bool
    default: true
  reload_timeout:
    description:
      - V(nginx) seconds to wait for the old workers to stop taking new connections. A worker with long requests
        in flight (to a frozen region, say) stops taking new ones at once and is not waited for.
    type: float
    default: 10.0
  api_url:
    description: V(http) URL of the traffic manager's switch call. Required with V(http).
    type: str
  api_method:
    description: V(http) method of the switch call.
    type: str
    choices: [POST, PUT, PATCH]
    default: POST
  api_body:
    description:
      - V(http) body of the switch call, a dict (sent as JSON) or a string. C(${to_region}) and C(${from_region})
        in any string are replaced.
    type: raw
  api_headers:
    description: V(http) extra headers of the calls. Values are secrets, never returned.
    type: dict
  api_expected_status:
    description: V(http) statuses that mean the switch was accepted.
    type: list
    elements: int
    default: [200, 201, 202, 204]
  status_url:
    description: V(http) URL that answers JSON naming the active region (see O(status_key)).
    type: str
  status_key:
    description: V(http) dotted path of the active region in the O(status_url) answer, for example V(active.region).
    type: str
    default: region
  timeout:
    description: V(http) seconds for each call to the traffic manager.
    type: float
    default: 10.0
seealso:
  - module: incident.response.service_health
"""

EXAMPLES = r"""
# inventory
# regions:
#   primary:
#     servers: ["10.0.1.10:80", "10.0.1.11:80 max_fails=3"]
#     health_url: http://10.0.1.10/actuator/health
#   secondary:
#     servers: ["10.0.2.10:80"]
#     health_url: http://10.0.2.10/actuator/health

- name: See what a failover would change
  incident.response.traffic_failover:
    provider: nginx
    to_region: secondary
    regions: "{{ regions }}"
    upstream_file: /etc/nginx/conf.d/global-upstream.conf
    upstream_name: global_backend
    nginx_config: /etc/nginx/nginx.conf
    pid_file: /run/nginx.pid
  check_mode: true
  diff: true

- name: Primary region is down, fail over (runbook 2.1 step 3)
  incident.response.traffic_failover:
    provider: nginx
    from_region: primary
    to_region: secondary
    regions: "{{ regions }}"
    upstream_file: /etc/nginx/conf.d/global-upstream.conf
    upstream_name: global_backend
    nginx_config: /etc/nginx/nginx.conf
    pid_file: /run/nginx.pid
    confirm: true
  register: failover

- name: Roll back to what the last switch replaced
  incident.response.traffic_failover:
    provider: nginx
    state: rollback
    regions: "{{ regions }}"
    upstream_file: /etc/nginx/conf.d/global-upstream.conf
    upstream_name: global_backend
    nginx_config: /etc/nginx/nginx.conf
    pid_file: /run/nginx.pid
    confirm: true

- name: Through a traffic manager's API
  incident.response.traffic_failover:
    provider: http
    to_region: secondary
    regions: "{{ regions }}"
    api_url: https://traffic.example.com/api/v1/pools/shop/active
    api_method: PUT
    api_body: {region: "${to_region}", reason: "failover from ${from_region}"}
    status_url: https://traffic.example.com/api/v1/pools/shop
    status_key: active.region
    bearer_token: "{{ traffic_api_token }}"
    confirm: true
"""

RETURN = r"""
msg:
  description: One line for the incident timeline.
  returned: always
  type: str
  sample: traffic moved from primary to secondary
region:
  description: Region traffic points at after the task (in check mode, would point at).
  returned: always
  type: str
  sample: secondary
previous_region:
  description: Region traffic pointed at before, null when it could not be told.
  returned: always
  type: str
  sample: primary
precheck:
  description:
    - The target region's health pre-check, C(status) V(UP), V(DOWN), V(forced) or V(not_needed), and its C(checks).
  returned: always
  type: dict
  sample: {region: secondary, status: UP, checks: [{name: secondary-1, status: UP, http_status: 200}]}
upstream_file:
  description: V(nginx) the include file.
  returned: when provider is nginx
  type: str
  sample: /etc/nginx/conf.d/global-upstream.conf
backup_file:
  description: V(nginx) where the replaced file is kept, null when there was none.
  returned: when provider is nginx
  type: str
  sample: /etc/nginx/conf.d/global-upstream.conf.previous
reload:
  description:
    - V(nginx) how nginx was reloaded, C(method) V(signal) or V(command), and for a signal C(pid), C(complete) (no
      old worker takes new connections), C(waited_ms) and C(draining) (old workers still finishing requests in
      flight). Null when nothing was reloaded.
  returned: when provider is nginx
  type: dict
  sample: {method: signal, pid: 4242, complete: true, waited_ms: 38.5, draining: []}
diff:
  description: V(nginx) with O(ignore:diff) mode, the upstream file before and after.
  returned: when provider is nginx and diff mode is on
  type: dict
request:
  description: V(http) the switch call (C(method), C(url), C(body), and C(status) unless in check mode).
  returned: when provider is http and traffic moves
  type: dict
  sample:
    method: PUT
    url: https://traffic.example.com/api/v1/pools/shop/active
    body: {region: secondary}
    status: 200
"""

import contextlib
import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.incident.response.plugins.module_utils import failover, files, health, web
from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure, run


def argument_spec():
    return dict(
        provider=dict(type="str", required=True, choices=["nginx", "http"]),
        state=dict(type="str", choices=["active", "rollback"], default="active"),
        to_region=dict(type="str"),
        from_region=dict(type="str"),
        regions=dict(type="dict", required=True),
        confirm=dict(type="bool", default=False),
        force=dict(type="bool", default=False),
        health_timeout=dict(type="float", default=5.0),
        upstream_file=dict(type="path"),
        upstream_name=dict(type="str", default="backend"),
        upstream_directives=dict(type="list", elements="str", default=[]),
        backup_file=dict(type="path"),
        nginx_config=dict(type="path"),
        nginx_prefix=dict(type="path"),
        nginx_error_log=dict(type="path"),
        nginx_binary=dict(type="path", default="nginx"),
        pid_file=dict(type="path"),
        reload=dict(type="bool", default=True),
        reload_timeout=dict(type="float", default=10.0),
        api_url=dict(type="str"),
        api_method=dict(type="str", choices=["POST", "PUT", "PATCH"], default="POST"),
        api_body=dict(type="raw"),
        api_headers=dict(type="dict", no_log=True),
        api_expected_status=dict(type="list", elements="int", default=[200, 201, 202, 204]),
        status_url=dict(type="str"),
        status_key=dict(type="str", default="region", no_log=False),
        timeout=dict(type="float", default=10.0),
        **web.auth_argument_spec(),
    )


# -- shared steps ---------------------------------------------------------------------------------
def precheck(p, regions, target):
    """Refuse an unhealthy or unchecked target region unless forced; the pre-check's result either way."""
    urls = regions[target]["health_urls"] if target in regions else []
    if not urls:
        if p["force"]:
            return dict(region=target, status="forced", checks=[])
        raise ModuleFailure(
            f"region {target} has no health_url, so the pre-check cannot prove it can take the traffic: "
            f"add regions.{target}.health_url, or set force=true to move traffic without it"
        )
    endpoints = [
        dict(name=f"{target}-{i + 1}", url=url, timeout=p["health_timeout"], retries=1, retry_delay=0.3)
        for i, url in enumerate(urls)
    ]
    checks = health.run_checks(endpoints, validate_certs=p["validate_certs"])
    down = [c for c in checks if c["status"] != health.UP]
    if not down:
        return dict(region=target, status=health.UP, checks=checks)
    if p["force"]:
        return dict(region=target, status="forced", checks=checks)
    raise ModuleFailure(
        f"refusing to move traffic to region {target}: its health check fails: "
        + "; ".join(health.describe(c) for c in down)
        + ". Fix the region first, or set force=true to move traffic anyway",
        precheck=dict(region=target, status=health.DOWN, checks=checks),
    )


def require_confirm(p, before, after):
    if not p["confirm"]:
        raise ModuleFailure(
            f"moving traffic from region {before or '(unknown)'} to {after} is a cross-region change: "
            "set confirm=true to do it (run in check mode with --diff first to see what changes)"
        )


def check_from_region(p, current):
    if p["from_region"] and current != p["from_region"]:
        raise ModuleFailure(
            f"from_region is {p['from_region']} but traffic currently goes to "
            f"{current or 'a region that cannot be told from the configuration'}: check the state before "
            "failing over, or leave from_region out"
        )


# -- nginx --------------------------------------------------------------------------------------------
def _write(module, path, text):
    if text is None:
        if os.path.exists(path):
            os.unlink(path)
        return
    files.write_atomic(module, path, text.encode())


def _apply(module, p, new_text, old_text, result):
    """Put ``new_text`` in place, validate, reload; on any failure put ``old_text`` back and fail."""
    path = p["upstream_file"]
    _write(module, path, new_text)
    rc, out = failover.run_nginx(module, "-t", "-q")
    if rc != 0:
        _write(module, path, old_text)
        raise ModuleFailure(
            f"nginx rejected the configuration with the new {path} (nginx -t): {out or 'no output'}. "
            "The previous file was put back; traffic did not move",
            **result,
        )
    if not p["reload"]:
        return None
    try:
        if p["pid_file"]:
            info = failover.signal_reload(p["pid_file"], p["reload_timeout"])
        else:
            rc, out = failover.run_nginx(module, "-s", "reload")
            if rc != 0:
                raise ModuleFailure(f"nginx -s reload failed: {out or 'no output'}")
            info = dict(method="command", complete=None)
    except ModuleFailure as exc:
        _write(module, path, old_text)
        raise ModuleFailure(f"{exc.msg}. The previous {path} was put back", **result) from None
    if info.get("complete") is False:
        module.warn(
            f"nginx workers of the old configuration still take connections after {p['reload_timeout']}s "
            f"(pids {info['old_workers']}): the reload failed or is slow; check nginx's error log"
        )
    return info


def nginx_failover(module, p, regions):
    path = p["upstream_file"]
    backup = p["backup_file"] or path + ".previous"
    before = files.read_bytes(path)
    before = before.decode() if before is not None else None
    current = failover.current_region(before, p["upstream_name"], regions)
    result = dict(changed=False, upstream_file=path, backup_file=None, reload=None, previous_region=current)

    if p["state"] == "rollback":
        saved = files.read_bytes(backup)
        if saved is None:
            raise ModuleFailure(
                f"no saved upstream file at {backup}: nothing to roll back to "
                "(a rollback restores the file the last switch replaced)"
            )
        after = saved.decode()
        target = failover.current_region(after, p["upstream_name"], regions)
        if target is None:
            target = "(unknown)"
            if not p["force"]:
                raise ModuleFailure(
                    f"cannot tell which region {backup} points at, so it cannot be health-checked: "
                    "set force=true to restore it anyway"
                )
    else:
        target = p["to_region"]
        failover.region_of(regions, target, "to_region")
        after = failover.render_upstream(
            p["upstream_name"], target, regions[target]["servers"], p["upstream_directives"], backup
        )
    result["region"] = target

    # Already pointing there is no change, also when an earlier switch (another incident's) wrote the file
    # with another backup path in its comment.
    if after == before or (p["state"] == "active" and current == target and failover.same_upstream(after, before)):
        result["precheck"] = dict(region=target, status="not_needed", checks=[])
        return result
    if p["state"] == "active":
        check_from_region(p, current)
    result["precheck"] = precheck(p, regions, target)
    result["changed"] = True
    if module._diff:
        result["diff"] = dict(before=before or "", after=after, before_header=path, after_header=path)
    if module.check_mode:
        return result
    require_confirm(p, current, target)

    if p["state"] == "active":
        if before is not None:
            files.write_atomic(module, backup, before.encode())
            result["backup_file"] = backup
        elif os.path.exists(backup):
            os.unlink(backup)  # a stale backup would roll back to something older than this switch
    else:
        result["backup_file"] = backup  # kept: rolling back twice changes nothing the second time
    result["reload"] = _apply(module, p, after, before, result)
    return result


# -- http -----------------------------------------------------------------------------------------------
def _call(p, method, url, body=None):
    headers = {**(p["api_headers"] or {}), **web.auth_headers(p)}
    try:
        return web.request(
            url, method=method, body=body, headers=headers, timeout=p["timeout"], validate_certs=p["validate_certs"]
        )
    except web.HttpError as exc:
        raise ModuleFailure(f"the traffic manager is not answering: {exc}") from None


def _active_region(p):
    resp = _call(p, "GET", p["status_url"])
    if resp.status in (401, 403):
        raise ModuleFailure(
            f"the traffic manager refused the credentials (HTTP {resp.status}) at {p['status_url']}: "
            "check bearer_token, url_username/url_password or api_headers"
        )
    if not resp.ok:
        raise ModuleFailure(f"status_url {p['status_url']} answered HTTP {resp.status}: {resp.body[:200].strip()}")
    try:
        data = resp.json()
    except ValueError as exc:
        raise ModuleFailure(str(exc)) from None
    region = failover.dig(data, p["status_key"])
    if region is None:
        raise ModuleFailure(
            f"the answer of {p['status_url']} has no {p['status_key']!r}: "
            "set status_key to the path of the active region"
        )
    return str(region)


def http_failover(module, p, regions):
    if p["state"] == "rollback":
        raise ModuleFailure(
            "state=rollback restores the nginx provider's saved file; with provider=http switch back with "
            "state=active and to_region set to the previous_region the switch returned"
        )
    target = p["to_region"]
    failover.region_of(regions, target, "to_region")
    current = _active_region(p) if p["status_url"] else None
    result = dict(changed=False, region=target, previous_region=current)
    if current == target:
        result["precheck"] = dict(region=target, status="not_needed", checks=[])
        return result
    check_from_region(p, current)
    result["precheck"] = precheck(p, regions, target)
    variables = dict(to_region=target, from_region=current or p["from_region"] or "")
    body = failover.substitute(p["api_body"], variables)
    result.update(changed=True, request=dict(method=p["api_method"], url=p["api_url"], body=body))
    if module.check_mode:
        return result
    require_confirm(p, current or p["from_region"], target)
    resp = _call(p, p["api_method"], p["api_url"], body if body is not None else None)
    result["request"]["status"] = resp.status
    if resp.status not in p["api_expected_status"]:
        hint = " (check the credentials)" if resp.status in (401, 403) else ""
        raise ModuleFailure(
            f"the traffic manager answered HTTP {resp.status} to {p['api_method']} {p['api_url']}{hint}: "
            f"{resp.body[:200].strip()}. Traffic may not have moved",
            **result,
        )
    if p["status_url"]:
        now_active = _active_region(p)
        if now_active != target:
            raise ModuleFailure(
                f"the traffic manager accepted the switch but still reports region {now_active} as active",
                **result,
            )
    return result


def traffic_failover(module):
    result = _failover(module)
    target, previous = result.get("region"), result.get("previous_region")
    if not result.get("changed"):
        result["msg"] = f"traffic already goes to {target}: nothing to change"
    else:
        verb = "would move" if module.check_mode else "moved"
        result["msg"] = f"traffic {verb} from {previous or 'the previous upstream'} to {target}"
    return result


def _failover(module):
    p = module.params
    regions = failover.normalize_regions(p["regions"])
    if p["provider"] == "nginx":
        if p["state"] == "rollback" and p["to_region"]:
            raise ModuleFailure("state=rollback restores the saved file; leave to_region out")
        if module.check_mode:
            return nginx_failover(module, p, regions)
        with failover.exclusive(p["upstream_file"]):
            return nginx_failover(module, p, regions)
    if isinstance(p["api_body"], str):
        with contextlib.suppress(ValueError):  # a non-JSON body is sent as it is
            p["api_body"] = json.loads(p["api_body"])
    return http_failover(module, p, regions)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_if=[
            ("provider", "nginx", ("upstream_file",)),
            ("provider", "http", ("api_url",)),
            ("state", "active", ("to_region",)),
        ],
        mutually_exclusive=web.AUTH_MUTUALLY_EXCLUSIVE,
        required_together=web.AUTH_REQUIRED_TOGETHER,
    )
    run(module, traffic_failover)


if __name__ == "__main__":
    main()
