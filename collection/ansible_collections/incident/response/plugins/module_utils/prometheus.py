# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus and Alertmanager HTTP APIs, as triage reads them (runbook 3.1 and Metrics Analysis).

Errors come in two kinds: :class:`Unavailable` (no answer, or a 5xx from the server or a
proxy in front of it), which a caller may accept and go on without metrics, and
:class:`ModuleFailure` for everything that is a mistake to fix (credentials, a wrong URL,
a query Prometheus rejects).
"""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime

from ansible.module_utils.six.moves.urllib.parse import urlencode

from ansible_collections.incident.response.plugins.module_utils import files
from ansible_collections.incident.response.plugins.module_utils.common import (
    Deadline,
    ModuleFailure,
    bounded_map,
    cap,
    check_deadline,
)
from ansible_collections.incident.response.plugins.module_utils.web import (
    HttpError,
    auth_argument_spec,
    auth_headers,
    request,
)

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")


class Unavailable(Exception):
    """The server did not answer, or answered that it cannot serve right now (5xx).
    ``timed_out``: no answer came in time (as opposed to refused, or a 5xx)."""

    def __init__(self, msg, timed_out=False):
        super().__init__(msg)
        self.timed_out = timed_out


def parse_duration(text):
    """Seconds of a Prometheus duration (``1h30m``, ``90s``) or of a plain number of seconds."""
    text = str(text).strip()
    try:
        value = float(text)
    except ValueError:
        pos, value = 0, 0.0
        for m in _DURATION.finditer(text):
            if m.start() != pos:
                break
            value += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text) or not text:
            raise ValueError(
                f"{text!r} is not a duration: use seconds or Prometheus units like 90s, 5m, 1h30m"
            ) from None
    if value <= 0 or math.isinf(value) or math.isnan(value):
        raise ValueError(f"duration {text!r} must be positive")
    return value


def parse_time(value, now):
    """Unix seconds of ``now``, ``now-1h``, a Unix timestamp or an RFC 3339 date; ``now`` when empty."""
    if value is None or str(value).strip() in ("", "now"):
        return now
    text = str(value).strip()
    if text.startswith("now-"):
        return now - parse_duration(text[4:])
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use now, now-<duration>, Unix seconds or RFC 3339 (2026-01-31T12:00:00Z)"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def iso(ts):
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def plan(spec, now):
    """(API path, parameters, description) of one query spec (name, query, range, step, start, end, time)."""
    name = spec["name"]
    try:
        if spec.get("range") or spec.get("start"):
            end = parse_time(spec.get("end"), now)
            start = parse_time(spec["start"], now) if spec.get("start") else end - parse_duration(spec["range"])
            step = parse_duration(spec.get("step") or 60)
            if start >= end:
                raise ValueError(f"start ({iso(start)}) must be before end ({iso(end)})")
            params = dict(query=spec["query"], start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}")
            return "/api/v1/query_range", params, dict(type="range", start=iso(start), end=iso(end), step=step)
        if spec.get("end") or spec.get("step"):
            raise ValueError("end and step only apply to a range query: give range (for example 1h) or start")
        at = parse_time(spec.get("time"), now)
        return "/api/v1/query", dict(query=spec["query"], time=f"{at:.3f}"), dict(type="instant", time=iso(at))
    except ValueError as exc:
        raise ModuleFailure(f"query {name}: {exc}") from None


def _number(text):
    """A sample value as a float; NaN and infinities stay strings so the result remains plain JSON."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return value if math.isfinite(value) else text


def normalize(data):
    """Prometheus ``data`` -> result_type plus series with float values."""
    rtype = data.get("resultType")
    raw = data.get("result")
    if rtype == "vector":
        series = [dict(metric=s.get("metric", {}), timestamp=s["value"][0], value=_number(s["value"][1])) for s in raw]
        return dict(result_type=rtype, series=series, series_count=len(series))
    if rtype == "matrix":
        series = [
            dict(metric=s.get("metric", {}), values=[[t, _number(v)] for t, v in s.get("values", [])]) for s in raw
        ]
        return dict(result_type=rtype, series=series, series_count=len(series))
    if rtype in ("scalar", "string"):
        return dict(
            result_type=rtype, series=[], series_count=0, value=_number(raw[1]) if rtype == "scalar" else raw[1]
        )
    return dict(result_type=rtype, series=[], series_count=0)


class Api:
    """One Prometheus-compatible server (Prometheus or Alertmanager) with its credentials.

    Each request waits at most ``timeout`` seconds, cut to what is left of ``deadline`` (a
    common.Deadline for the whole step, or None).
    """

    def __init__(self, base_url, what, headers=None, timeout=10.0, validate_certs=True, deadline=None):
        self.base_url = base_url.rstrip("/")
        self.what = what
        self.headers = headers or {}
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.deadline = deadline

    def get(self, path, params=None):
        url = self.base_url + path + ("?" + urlencode(params) if params else "")
        if self.deadline is not None and self.deadline.spent:
            raise Unavailable(f"{self.what} at {self.base_url}: not asked: the step's deadline was spent", True)
        try:
            resp = request(
                url,
                headers=self.headers,
                timeout=cap(self.deadline, self.timeout),
                validate_certs=self.validate_certs,
            )
        except HttpError as exc:
            reason = str(exc).replace(f"GET {url}: ", "")
            raise Unavailable(f"{self.what} at {self.base_url}: {reason}", exc.timed_out) from None
        if resp.status in (401, 403):
            raise ModuleFailure(
                f"{self.what} at {self.base_url} refused the credentials (HTTP {resp.status}): "
                "check bearer_token, or url_username and url_password"
            )
        if resp.status >= 500:
            raise Unavailable(f"{self.what} at {self.base_url} answered HTTP {resp.status}: {resp.body[:200].strip()}")
        if resp.status == 404:
            raise ModuleFailure(
                f"{self.what} at {self.base_url} has no {path} (HTTP 404): give the server's base URL, "
                "without /api/v1, including any path prefix it is served under"
            )
        try:
            body = resp.json()
        except ValueError as exc:
            raise ModuleFailure(f"{exc}; is {self.base_url} really a {self.what} URL?") from None
        return resp.status, body


def query(api, spec, now):
    """Run one query spec; the normalised result, or ModuleFailure/Unavailable."""
    path, params, info = plan(spec, now)
    status, body = api.get(path, params)
    if not isinstance(body, dict) or "status" not in body:
        raise ModuleFailure(f"query {spec['name']}: {api.base_url}{path} did not answer a Prometheus API response")
    if body["status"] != "success":
        raise ModuleFailure(
            f"query {spec['name']} rejected by Prometheus (HTTP {status}, {body.get('errorType', 'error')}): "
            f"{body.get('error', 'no reason given')}. The query was: {spec['query']}"
        )
    return dict(name=spec["name"], query=spec["query"], **info, **normalize(body.get("data") or {}), error=None)


def prometheus_alerts(api, state="firing"):
    """Alerts from ``/api/v1/alerts`` (state firing, pending or all)."""
    status, body = api.get("/api/v1/alerts")
    if not isinstance(body, dict) or body.get("status") != "success":
        raise ModuleFailure(f"{api.base_url}/api/v1/alerts did not answer a Prometheus API response (HTTP {status})")
    out = []
    for a in body.get("data", {}).get("alerts", []):
        if state != "all" and a.get("state") != state:
            continue
        labels = a.get("labels", {})
        out.append(
            dict(
                name=labels.get("alertname"),
                state=a.get("state"),
                severity=labels.get("severity"),
                labels=labels,
                annotations=a.get("annotations", {}),
                active_at=a.get("activeAt"),
                value=_number(a.get("value")),
            )
        )
    return sorted(out, key=lambda a: (a["name"] or "", sorted(a["labels"].items())))


def alertmanager_alerts(api):
    """Active, unsilenced, uninhibited alerts from Alertmanager's ``/api/v2/alerts``."""
    params = dict(active="true", silenced="false", inhibited="false")
    status, body = api.get("/api/v2/alerts", params)
    if not isinstance(body, list):
        raise ModuleFailure(f"{api.base_url}/api/v2/alerts did not answer a list of alerts (HTTP {status})")
    out = []
    for a in body:
        labels = a.get("labels", {})
        out.append(
            dict(
                name=labels.get("alertname"),
                state=(a.get("status") or {}).get("state"),
                severity=labels.get("severity"),
                labels=labels,
                annotations=a.get("annotations", {}),
                starts_at=a.get("startsAt"),
                fingerprint=a.get("fingerprint"),
                receivers=[r.get("name") for r in a.get("receivers", [])],
            )
        )
    return sorted(out, key=lambda a: (a["name"] or "", sorted(a["labels"].items())))


def now():
    return time.time()


# -- the prometheus_query step ---------------------------------------------------------------
def argument_spec():
    """The options of prometheus_query."""
    query = dict(
        name=dict(type="str", required=True),
        query=dict(type="str", required=True),
        range=dict(type="str"),
        step=dict(type="str"),
        start=dict(type="str"),
        end=dict(type="str"),
        time=dict(type="str"),
    )
    return dict(
        url=dict(type="str", required=True),
        queries=dict(type="list", elements="dict", default=[], options=query),
        alerts=dict(type="bool", default=False),
        alert_state=dict(type="str", choices=["firing", "pending", "all"], default="firing"),
        alertmanager_url=dict(type="str"),
        timeout=dict(type="float", default=10.0),
        deadline=dict(type="float", default=30.0),
        fail_on_unreachable=dict(type="bool", default=True),
        dest=dict(type="path"),
        **auth_argument_spec(),
    )


def _jobs(p, prom, am, now):
    """(kind, name, callable) for everything to ask, validated before anything is sent."""
    jobs = []
    for q in p["queries"]:
        plan(q, now)  # input errors fail here, before any request
        jobs.append(("query", q, lambda q=q: query(prom, q, now)))
    if p["alerts"]:
        jobs.append(("alerts", "alerts", lambda: prometheus_alerts(prom, p["alert_state"])))
    if am:
        jobs.append(("alertmanager", "alertmanager", lambda: alertmanager_alerts(am)))
    return jobs


def _attempt(job):
    kind, spec, fn = job
    try:
        return kind, spec, "ok", fn()
    except Unavailable as exc:
        return kind, spec, "timed_out" if exc.timed_out else "unavailable", str(exc)
    except ModuleFailure as exc:
        return kind, spec, "failed", exc.msg


def step(module, p, deadline=None):
    """prometheus_query with params ``p`` (validated) -> its result; ModuleFailure with the result when
    something failed. ``module`` writes the file (check mode, attributes) and warns; ``deadline``
    (a Deadline) defaults to p's."""
    names = [q["name"] for q in p["queries"]]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ModuleFailure(f"query names must be unique, these repeat: {', '.join(dup)}")
    if not (p["queries"] or p["alerts"] or p["alertmanager_url"]):
        raise ModuleFailure("nothing to ask: give queries, alerts=true and/or alertmanager_url")
    if p["dest"]:
        files.check_writable(p["dest"])
    check_deadline(p["deadline"])

    headers = auth_headers(p)
    deadline = deadline or Deadline(p["deadline"])
    opts = dict(headers=headers, timeout=p["timeout"], validate_certs=p["validate_certs"], deadline=deadline)
    prom = Api(p["url"], "Prometheus", **opts)
    am = Api(p["alertmanager_url"], "Alertmanager", **opts) if p["alertmanager_url"] else None
    at = now()
    answers = bounded_map(_attempt, _jobs(p, prom, am, at), max_workers=8)

    result = dict(
        changed=False,
        query_results={},
        alerts=[],
        alert_names=[],
        alertmanager_alerts=[],
        prometheus=dict(url=prom.base_url, reachable=True, timed_out=False, error=None),
        alertmanager=dict(url=am.base_url, reachable=True, timed_out=False, error=None) if am else None,
        timed_out=[],
        degraded=False,
        file=None,
    )
    failures, unavailable = [], []
    for kind, spec, outcome, value in answers:
        server = result["alertmanager"] if kind == "alertmanager" else result["prometheus"]
        if outcome in ("unavailable", "timed_out"):
            unavailable.append(value)
            server.update(reachable=False, error=server["error"] or value)
            server["timed_out"] = server["timed_out"] or outcome == "timed_out"
        elif outcome == "failed":
            failures.append(value)
        if kind == "query":
            name = spec["name"]
            if outcome == "ok":
                result["query_results"][name] = value
            else:
                result["query_results"][name] = dict(
                    name=name, query=spec["query"], result_type=None, series=[], series_count=0, error=value
                )
        elif kind == "alerts" and outcome == "ok":
            result["alerts"] = value
            result["alert_names"] = sorted({a["name"] for a in value if a["name"]})
        elif kind == "alertmanager" and outcome == "ok":
            result["alertmanager_alerts"] = value

    result["timed_out"] = [k for k in ("prometheus", "alertmanager") if (result[k] or {}).get("timed_out")]
    if failures:
        raise ModuleFailure("; ".join(dict.fromkeys(failures)), **result)
    if unavailable:
        servers = (result["prometheus"], result["alertmanager"] or {})
        reasons = "; ".join(s["error"] for s in servers if s.get("error"))
        if p["fail_on_unreachable"]:
            raise ModuleFailure(
                f"{reasons}. Check that it runs and that url is right; set fail_on_unreachable=false to go on "
                "without it (the result is then marked degraded)",
                **result,
            )
        result["degraded"] = True
        module.warn(f"going on without metrics (fail_on_unreachable=false): {reasons}")

    if p["dest"]:
        record = dict(
            generated_at=iso(at),
            prometheus=result["prometheus"],
            alertmanager=result["alertmanager"],
            degraded=result["degraded"],
            query_results=result["query_results"],
            alerts=result["alerts"],
            alertmanager_alerts=result["alertmanager_alerts"],
        )
        data = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
        result["file"] = dict(path=p["dest"], written=not module.check_mode, bytes=len(data))
        if not module.check_mode:
            files.write_atomic(module, p["dest"], data)
        result["changed"] = True
        file_args = module.load_file_common_arguments(p, path=p["dest"])
        if not module.check_mode:
            result["changed"] = module.set_fs_attributes_if_different(file_args, True)
    names = result.get("alert_names") or []
    result["msg"] = (
        f"{len(result['query_results'])} quer{'y' if len(result['query_results']) == 1 else 'ies'}, "
        + (f"alerts: {', '.join(names)}" if names else "no alert")
        + (
            " (degraded: "
            + ", ".join(
                k + " not answering" + (" in time" if result[k]["timed_out"] else "")
                for k in ("prometheus", "alertmanager")
                if (result.get(k) or {}).get("reachable") is False
            )
            + ")"
            if result["degraded"]
            else ""
        )
    )
    return result
