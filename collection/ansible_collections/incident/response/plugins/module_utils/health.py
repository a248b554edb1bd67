# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health-check engine: the runbook's quick health check (1.2) for many targets at once.

Used by ``service_health`` and by ``traffic_failover``'s pre-check. Every check returns a
dict with the same keys whatever its kind (``http``, ``sql``, ``tcp``), so a severity
policy can read them without caring how they were made. A check never raises: what went
wrong is its ``error``.
"""

from __future__ import annotations

import json
import re
import socket
import time

from ansible_collections.incident.response.plugins.module_utils import mysql
from ansible_collections.incident.response.plugins.module_utils.common import (
    Deadline,
    ModuleFailure,
    bounded_map,
    cap,
    check_deadline,
    timed_out_text,
)
from ansible_collections.incident.response.plugins.module_utils.web import HttpError, request

UP = "UP"
DOWN = "DOWN"
SLOW = "SLOW"  # answered as expected, but slower than its objective (max_latency_ms)

HTTP_DEFAULTS = dict(
    method="GET",
    expected_status=[200],
    timeout=5.0,
    retries=1,
    retry_delay=0.5,
    parse="auto",
    headers=None,
    region=None,
    max_latency_ms=None,
)
DB_DEFAULTS = dict(check="sql", login_port=3306, connect_timeout=5.0, retries=1, retry_delay=0.5, region=None)

FAIL_ON = ("any", "quorum", "required", "never")


def redact_url(url):
    """The URL without user:password@, so a result never carries credentials."""
    return re.sub(r"(://)[^/@]*@", r"\1***@", url or "")


def _excerpt(text, size=120):
    text = (text or "").strip().replace("\n", " ")
    return text[:size] + ("..." if len(text) > size else "")


def _new_result(name, kind, target, region):
    return dict(
        name=name,
        kind=kind,
        target=target,
        region=region,
        status=DOWN,
        http_status=None,
        latency_ms=None,
        attempts=0,
        health=None,
        components={},
        failing_components=[],
        error=None,
        timed_out=False,
        slow=False,
    )


# -- Spring Boot actuator ---------------------------------------------------------------
def flatten_components(components, prefix=""):
    """``{"db": {"status": "DOWN", "details": {...}}}`` -> ``{"db": ("DOWN", "error text")}``.

    Nested groups (``db.primary``) are reported by their leaves.
    """
    flat = {}
    if not isinstance(components, dict):
        return flat
    for name, comp in components.items():
        if not isinstance(comp, dict):
            continue
        path = f"{prefix}{name}"
        if isinstance(comp.get("components"), dict) and comp["components"]:
            flat.update(flatten_components(comp["components"], path + "."))
            continue
        details = comp.get("details") if isinstance(comp.get("details"), dict) else {}
        error = details.get("error") or details.get("reason")
        flat[path] = (str(comp.get("status", "UNKNOWN")), str(error) if error else None)
    return flat


def read_actuator(data):
    """(overall status, {component: status}, [failing components], [component errors]) of an actuator body."""
    overall = str(data.get("status")).upper()
    flat = flatten_components(data.get("components") or data.get("details") or {})
    components = {path: entry[0] for path, entry in flat.items()}
    failing = sorted(path for path, entry in flat.items() if entry[0].upper() not in (UP, "UNKNOWN"))
    errors = [f"{path} {flat[path][0]}" + (f": {flat[path][1]}" if flat[path][1] else "") for path in failing]
    return overall, components, failing, errors


# -- one HTTP endpoint ------------------------------------------------------------------
def _http_attempt(res, ep, validate_certs, timeout):
    """One try within ``timeout`` seconds; fills ``res`` and returns True when the endpoint is UP, False when it
    is not, None when it is not and must not be asked again (it took the request and stayed silent)."""
    res.update(
        http_status=None, health=None, components={}, failing_components=[], error=None, timed_out=False, slow=False
    )
    start = time.monotonic()
    try:
        resp = request(
            ep["url"],
            method=ep["method"],
            headers=ep.get("headers") or {},
            timeout=timeout,
            validate_certs=validate_certs,
        )
    except HttpError as exc:
        res["latency_ms"] = round((time.monotonic() - start) * 1000, 1)
        # The message names the URL; the result already has it without credentials.
        res["error"] = str(exc).replace(ep["url"], res["target"])
        res["timed_out"] = exc.timed_out
        return None if exc.silent else False
    res["latency_ms"] = round(resp.elapsed * 1000, 1)
    res["http_status"] = resp.status
    expected = resp.status in ep["expected_status"]
    problems = [] if expected else [f"HTTP {resp.status} (expected {', '.join(map(str, ep['expected_status']))})"]

    parse = "none" if ep["method"] == "HEAD" else ep["parse"]  # a HEAD answer has no body to read
    is_json = "json" in resp.header("Content-Type").lower()
    if parse == "actuator" or (parse == "auto" and is_json):
        try:
            data = json.loads(resp.body)
        except ValueError:
            res["error"] = "; ".join(
                [*problems, f"answered HTTP {resp.status} with a body that is not JSON: {_excerpt(resp.body)!r}"]
            )
            return False
        if isinstance(data, dict) and "status" in data:
            overall, components, failing, errors = read_actuator(data)
            res.update(health=overall, components=components, failing_components=failing)
            if overall != UP:
                problems.append(f"health {overall}")
                problems.extend(errors)
        elif parse == "actuator":
            problems.append("the JSON body has no 'status' field: not a Spring Boot actuator health endpoint")
    if problems:
        res["error"] = "; ".join(problems)
        return False
    if ep.get("max_latency_ms") and res["latency_ms"] > ep["max_latency_ms"]:
        res["error"] = (
            f"{res['target']} answered in {res['latency_ms']:.0f} ms, over its objective of "
            f"{ep['max_latency_ms']} ms: slow"
        )
        res["slow"] = True
        return False
    return True


def check_http(ep, validate_certs=True, deadline=None):
    """Check one endpoint (``name``, ``url`` and the keys of HTTP_DEFAULTS), with retries, within ``deadline``."""
    ep = {**HTTP_DEFAULTS, **{k: v for k, v in ep.items() if v is not None}}
    res = _new_result(ep["name"], "http", redact_url(ep["url"]), ep.get("region"))
    what = f"{ep['method']} {res['target']}"
    return _attempts(res, ep, ep["timeout"], deadline, what, lambda t: _http_attempt(res, ep, validate_certs, t))


def _attempts(res, spec, timeout, deadline, what, attempt):
    """Up to 1 + retries calls of ``attempt(timeout)``, each cut to what is left of the step's ``deadline``.

    A retry follows a failure that may pass (refused, reset, an error status, a connect that timed out: a lost
    packet), not one that will not: a slow answer, or a request the server took and did not answer within its
    timeout (``attempt`` returns None): a frozen or overloaded server would cost the timeout again. A check
    whose answer did not come in time says ``timed_out`` and how long it waited, once the attempts or the
    deadline are spent: a frozen target costs its timeout once, never more than the deadline.
    """
    start = time.monotonic()
    retries = int(spec["retries"])
    for n in range(1, retries + 2):
        if deadline is not None and deadline.spent:
            if n == 1:  # queued behind other checks until the step's time was up
                res.update(error=f"{what}: not checked: the step's deadline was spent", timed_out=True)
                return res
            break
        res["attempts"] = n
        answer = attempt(cap(deadline, timeout))
        if answer:
            res["status"] = UP
            return res
        res["status"] = SLOW if res.get("slow") else DOWN
        if res.get("slow") or answer is None:
            break  # it answered slowly, or took the request and stayed silent: the finding, not a packet lost
        if n <= retries:
            time.sleep(cap(deadline, spec["retry_delay"]))
    if res["timed_out"]:
        tries = f"{res['attempts']} attempts" if res["attempts"] > 1 else None
        res["error"] = f"{what}: {timed_out_text(time.monotonic() - start, tries)}"
    return res


# -- one database ---------------------------------------------------------------------
def _sql_attempt(res, db, timeout):
    """Log in and ``SELECT 1``, all of it (connect, greeting, login, query) within ``timeout`` seconds."""
    res.update(error=None, timed_out=False)
    if not mysql.HAS_PYMYSQL:
        res["error"] = "PyMySQL is not installed on the host that runs the check: install it (pip install PyMySQL)"
        return False
    start = time.monotonic()
    budget = Deadline(timeout)
    try:
        conn = mysql.connect(db, timeout=timeout, deadline=budget)  # its reads: what is left of the budget
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 AS ok")
                cur.fetchall()
        finally:
            conn.close()
    except mysql.ConnectFailure as exc:
        res.update(error=exc.msg, timed_out=exc.timed_out)
        return False
    except ModuleFailure as exc:
        res["error"] = exc.msg
        return False
    except mysql.pymysql.MySQLError as exc:
        res.update(error=mysql.explain(exc, db), timed_out=mysql.is_timeout(exc))
        return False
    finally:
        res["latency_ms"] = round((time.monotonic() - start) * 1000, 1)
    return True


def _tcp_attempt(res, db, timeout):
    res.update(error=None, timed_out=False)
    start = time.monotonic()
    try:
        with socket.create_connection((db["login_host"], db["login_port"]), timeout=timeout):
            pass
    except TimeoutError:
        res.update(error=f"{res['target']}: no answer to the TCP connect within {timeout:g} s", timed_out=True)
        return False
    except OSError as exc:
        res["error"] = f"{res['target']}: cannot connect ({exc.strerror or exc})"
        return False
    finally:
        res["latency_ms"] = round((time.monotonic() - start) * 1000, 1)
    return True


def check_database(db, deadline=None):
    """``SELECT 1`` (check=sql) or a TCP connect (check=tcp) against one database, with retries, within ``deadline``."""
    db = {**DB_DEFAULTS, **{k: v for k, v in db.items() if v is not None}}
    db.setdefault("login_host", "127.0.0.1")
    if db.get("login_unix_socket"):
        target = f"socket {db['login_unix_socket']}"
    else:
        target = f"{db['login_host']}:{db['login_port']}"
    res = _new_result(db["name"], db["check"], target, db.get("region"))
    attempt_fn = _sql_attempt if db["check"] == "sql" else _tcp_attempt
    return _attempts(res, db, db["connect_timeout"], deadline, target, lambda t: attempt_fn(res, db, t))


# -- many checks at once --------------------------------------------------------------------
def run_checks(endpoints=(), databases=(), concurrency=200, validate_certs=True, deadline=None):
    """Every check concurrently (at most ``concurrency`` at once), results in input order.

    ``deadline`` (a common.Deadline) bounds the whole step: every attempt of every check, and the
    wait of checks queued behind others, ends by then.
    """
    jobs = [("http", ep) for ep in endpoints] + [("db", db) for db in databases]

    def one(job):
        kind, spec = job
        return check_http(spec, validate_certs, deadline) if kind == "http" else check_database(spec, deadline)

    return bounded_map(one, jobs, concurrency)


def summarize(checks):
    """Counts and names for a severity policy; ``regions`` only for checks with a region label."""
    down = [c["name"] for c in checks if c["status"] != UP]
    timed_out = [c["name"] for c in checks if c["status"] != UP and c.get("timed_out")]
    regions = {}
    for c in checks:
        if not c.get("region"):
            continue
        r = regions.setdefault(c["region"], dict(total=0, up=0, down=0, down_names=[]))
        r["total"] += 1
        if c["status"] == UP:
            r["up"] += 1
        else:
            r["down"] += 1
            r["down_names"].append(c["name"])
    return dict(
        total=len(checks),
        up=len(checks) - len(down),
        down=len(down),
        all_up=not down,
        up_names=[c["name"] for c in checks if c["status"] == UP],
        down_names=down,
        timed_out=len(timed_out),
        timed_out_names=timed_out,
        slow_names=[c["name"] for c in checks if c["status"] == SLOW],
        regions=regions,
    )


def describe(check):
    return f"{check['name']} ({check['error'] or check['status']})"


def verdict(checks, summary, fail_on="any", quorum=None, required=None):
    """None when the policy holds, else a message that says what is DOWN and what to do."""
    down = [c for c in checks if c["status"] != UP]
    hint = "investigate the DOWN checks (see checks[].error), or set fail_on=never to only report"
    if fail_on == "never":
        return None
    if fail_on == "any":
        if not down:
            return None
        return (
            f"{len(down)} of {len(checks)} health checks DOWN: "
            + "; ".join(map(describe, down))
            + f". To go on: {hint}"
        )
    if fail_on == "quorum":
        need = quorum if quorum is not None else len(checks) // 2 + 1
        if summary["up"] >= need:
            return None
        return (
            f"only {summary['up']} of {len(checks)} health checks UP, the quorum is {need}; DOWN: "
            + "; ".join(map(describe, down))
            + f". To go on: {hint}"
        )
    names = set(required or ())
    bad = [c for c in down if c["name"] in names]
    if not bad:
        return None
    return "required health checks DOWN: " + "; ".join(map(describe, bad)) + f". To go on: {hint}"


def validate_policy(checks, fail_on, quorum, required):
    """Input errors of the failure policy, as one message (or None)."""
    names = [c["name"] for c in checks]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        return f"check names must be unique, these repeat: {', '.join(dup)}"
    if fail_on == "required":
        if not required:
            return "fail_on=required needs the names of the checks that must be UP in 'required'"
        unknown = sorted(set(required) - set(names))
        if unknown:
            return f"'required' names checks that are not given: {', '.join(unknown)} (known: {', '.join(names)})"
    if fail_on == "quorum" and quorum is not None and not 1 <= quorum <= len(names):
        return f"quorum must be between 1 and the number of checks ({len(names)}), got {quorum}"
    return None


# -- the service_health step -----------------------------------------------------------------
def argument_spec():
    """The options of service_health."""
    endpoint = dict(
        name=dict(type="str", required=True),
        url=dict(type="str", required=True),
        region=dict(type="str"),
        expected_status=dict(type="list", elements="int"),
        timeout=dict(type="float"),
        retries=dict(type="int"),
        method=dict(type="str", choices=["GET", "HEAD"], default="GET"),
        headers=dict(type="dict"),
        parse=dict(type="str", choices=["auto", "actuator", "none"]),
        max_latency_ms=dict(type="int"),
    )
    database = dict(
        name=dict(type="str", required=True),
        check=dict(type="str", choices=["sql", "tcp"], default="sql"),
        login_host=dict(type="str", default="127.0.0.1"),
        login_port=dict(type="int", default=3306),
        login_unix_socket=dict(type="path"),
        login_user=dict(type="str"),
        login_password=dict(type="str", no_log=True),
        connect_timeout=dict(type="float"),
        retries=dict(type="int"),
        region=dict(type="str"),
    )
    return dict(
        endpoints=dict(type="list", elements="dict", default=[], options=endpoint),
        databases=dict(type="list", elements="dict", default=[], options=database),
        login_user=dict(type="str"),
        login_password=dict(type="str", no_log=True),
        timeout=dict(type="float", default=5.0),
        deadline=dict(type="float"),
        retries=dict(type="int", default=1),
        retry_delay=dict(type="float", default=0.5),
        expected_status=dict(type="list", elements="int", default=[200]),
        parse=dict(type="str", choices=["auto", "actuator", "none"], default="auto"),
        concurrency=dict(type="int", default=200),
        validate_certs=dict(type="bool", default=True),
        fail_on=dict(type="str", choices=list(FAIL_ON), default="any"),
        quorum=dict(type="int"),
        required=dict(type="list", elements="str", default=[]),
    )


def build_checks(p):
    """Endpoint and database specs with the module-level defaults filled in."""
    shared = dict(timeout=p["timeout"], retries=p["retries"], retry_delay=p["retry_delay"])
    endpoints = []
    for ep in p["endpoints"]:
        spec = {**shared, "expected_status": p["expected_status"], "parse": p["parse"]}
        spec.update({k: v for k, v in ep.items() if v is not None})
        if not spec["expected_status"]:
            raise ModuleFailure(f"endpoint {spec['name']}: expected_status must name at least one HTTP status")
        endpoints.append(spec)
    databases = []
    for db in p["databases"]:
        spec = {"connect_timeout": p["timeout"], "retries": p["retries"], "retry_delay": p["retry_delay"]}
        spec.update({k: v for k, v in db.items() if v is not None})
        spec.setdefault("login_user", p["login_user"])
        spec.setdefault("login_password", p["login_password"] or "")
        if spec["check"] == "sql" and not spec.get("login_user"):
            raise ModuleFailure(
                f"database {spec['name']}: a sql check needs login_user (on the database or at module level), "
                "or use check=tcp to only test the connection"
            )
        databases.append(spec)
    return endpoints, databases


def attempts_bound(checks):
    """The longest one check may take with all its attempts and delays, plus a second for the work around
    them: the step's deadline when none is given, so that each check keeps the time its options give it."""
    return 1.0 + max(
        float(c["timeout"] if "timeout" in c else c["connect_timeout"]) * (1 + int(c["retries"]))
        + float(c["retry_delay"]) * int(c["retries"])
        for c in checks
    )


def step(p, deadline=None):
    """The quick health check of service_health: its params (validated) -> its result; ModuleFailure with
    the result when the failure policy does not hold. ``deadline`` (a Deadline) defaults to p's."""
    if p["concurrency"] < 1:
        raise ModuleFailure(f"concurrency must be at least 1, got {p['concurrency']}")
    check_deadline(p["deadline"])
    endpoints, databases = build_checks(p)
    if not endpoints and not databases:
        raise ModuleFailure("nothing to check: give endpoints and/or databases")
    problem = validate_policy(endpoints + databases, p["fail_on"], p["quorum"], p["required"])
    if problem:
        raise ModuleFailure(problem)
    start = time.monotonic()
    deadline = deadline or Deadline(p["deadline"] or attempts_bound(endpoints + databases))
    checks = run_checks(endpoints, databases, p["concurrency"], p["validate_certs"], deadline)
    summary = summarize(checks)
    result = dict(changed=False, checks=checks, summary=summary, elapsed_ms=round((time.monotonic() - start) * 1000, 1))
    msg = verdict(checks, summary, p["fail_on"], p["quorum"], p["required"])
    if msg:
        raise ModuleFailure(msg, **result)
    down = summary["down_names"]
    late = summary["timed_out_names"]
    result["msg"] = (
        f"{summary['up']} of {summary['total']} checks UP"
        + (f"; DOWN: {', '.join(down)}" if down else "")
        + (f"; timed out: {', '.join(late)}" if late else "")
    )
    return result
