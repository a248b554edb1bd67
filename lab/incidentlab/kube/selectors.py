"""Label and field selectors, parsed like kube-apiserver parses them.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``.
Field selectors: ``path=value``, ``path==value``, ``path!=value`` on dotted paths
(metadata.name, status.phase, spec.nodeName, involvedObject.uid, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .errors import bad_request

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")

Matcher = Callable[[dict], bool]


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside parentheses (``a in (x,y),b``)."""
    terms, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    terms.append("".join(cur))
    return [t for t in terms if t.strip()]


def parse_labels(text: str | None) -> Matcher:
    """A predicate on a labels dict; raises a 400 for a malformed selector."""
    if not text or not text.strip():
        return lambda labels: True
    reqs: list[Matcher] = []
    for term in _split_terms(text):
        m = _EQ_RE.match(term)
        if m:
            key, op, val = m.groups()
            if op == "!=":
                reqs.append(lambda lb, k=key, v=val: lb.get(k) != v)
            else:
                reqs.append(lambda lb, k=key, v=val: k in lb and lb[k] == v)
            continue
        m = _SET_RE.match(term)
        if not m:
            raise bad_request(f"unable to parse requirement: {term.strip()!r}: found unexpected token")
        neg, key, op, values = m.groups()
        if neg and op:
            raise bad_request(f"unable to parse requirement: {term.strip()!r}")
        if op:
            vals = {v.strip() for v in values.split(",") if v.strip()}
            if op == "in":
                reqs.append(lambda lb, k=key, vs=vals: lb.get(k) in vs)
            else:
                reqs.append(lambda lb, k=key, vs=vals: lb.get(k) not in vs)
        elif neg:
            reqs.append(lambda lb, k=key: k not in lb)
        else:
            reqs.append(lambda lb, k=key: k in lb)
    return lambda labels: all(r(labels or {}) for r in reqs)


def selector_from_match(selector: dict | None) -> Matcher:
    """A predicate from a LabelSelector object (matchLabels + matchExpressions)."""
    if selector is None:
        return lambda labels: False
    reqs: list[Matcher] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        reqs.append(lambda lb, k=k, v=v: lb.get(k) == v)
    for expr in selector.get("matchExpressions") or []:
        key, op, vals = expr.get("key"), expr.get("operator"), set(expr.get("values") or [])
        if op == "In":
            reqs.append(lambda lb, k=key, vs=vals: lb.get(k) in vs)
        elif op == "NotIn":
            reqs.append(lambda lb, k=key, vs=vals: lb.get(k) not in vs)
        elif op == "Exists":
            reqs.append(lambda lb, k=key: k in lb)
        elif op == "DoesNotExist":
            reqs.append(lambda lb, k=key: k not in lb)
    return lambda labels: all(r(labels or {}) for r in reqs)


def selector_to_string(selector: dict) -> str:
    """The label selector string kubectl prints and the scale subresource reports."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key = expr.get("operator"), expr.get("key")
        if op in ("In", "NotIn"):
            parts.append(f"{key} {op.lower()} ({','.join(sorted(expr.get('values') or []))})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def field_value(obj: dict, path: str) -> str:
    cur: object = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_fields(text: str | None) -> Matcher:
    """A predicate on a whole object for a field selector."""
    if not text or not text.strip():
        return lambda obj: True
    reqs: list[Matcher] = []
    for term in _split_terms(text):
        m = _EQ_RE.match(term) or re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not m:
            raise bad_request(f"invalid selector: {text!r}; can't understand {term.strip()!r}")
        path, op, val = m.groups()
        if op == "!=":
            reqs.append(lambda o, p=path, v=val: field_value(o, p) != v)
        else:
            reqs.append(lambda o, p=path, v=val: field_value(o, p) == v)
    return lambda obj: all(r(obj) for r in reqs)
