# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Workloads the write modules act on: finding them (by name or label, failing on anything
missing), the replica arithmetic and HPA decisions of ``workload_scale``, and the ConfigMap
logic of ``config_patch`` (what changes, what it replaces, who consumes it).

The planning functions are pure (plain dicts in, plain values out) and raise ``ValueError``
with the message a module fails with; the unit tests drive them directly.
"""

from __future__ import annotations

import json
import math

from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure
from ansible_collections.incident.response.plugins.module_utils.k8s import api_path
from ansible_collections.incident.response.plugins.module_utils.k8s_rollout import KINDS

HPA_POLICIES = ("adjust_hpa", "fail", "scale_anyway")


# -- reading ---------------------------------------------------------------------------------


def missing(cluster, namespace, what):
    """The message for an object that is not there: says when the namespace itself is missing."""
    if not namespace_exists(cluster, namespace):
        return f"{cluster.name}: namespace {namespace!r} does not exist"
    return f"{cluster.name}: {what} not found in namespace {namespace!r}"


def namespace_exists(cluster, namespace):
    path = api_path("v1", "namespaces", None, namespace)
    return cluster.get(f"read namespace {namespace}", path, missing_ok=True) is not None


def find_workloads(cluster, namespace, kind_name, names=(), label_selector=None):
    """The workloads of one kind named in ``names`` plus those matching ``label_selector``.

    Every name must exist and a selector must match something: a step that was meant for
    a workload and finds none fails instead of doing nothing.
    """
    kind = KINDS[kind_name]
    found, absent = {}, []
    for name in names:
        obj = cluster.get(f"read {kind.singular} {namespace}/{name}", kind.path(namespace, name), missing_ok=True)
        if obj is None:
            absent.append(name)
        else:
            found[name] = obj
    if absent:
        raise ModuleFailure(missing(cluster, namespace, f"{kind.singular} {', '.join(absent)}"), cluster=cluster.name)
    if label_selector:
        listed = cluster.get(
            f"list {kind.plural} in {namespace} matching {label_selector}",
            kind.path(namespace),
            labelSelector=label_selector,
        ).get("items", [])
        if not listed:
            raise ModuleFailure(_no_match(cluster, namespace, kind, label_selector), cluster=cluster.name)
        for obj in sorted(listed, key=lambda o: o["metadata"]["name"]):
            obj.setdefault("kind", kind.name)  # list items carry no kind
            obj.setdefault("apiVersion", "apps/v1")
            found.setdefault(obj["metadata"]["name"], obj)
    return list(found.values())


def _no_match(cluster, namespace, kind, selector):
    return no_match(cluster, namespace, f"no {kind.singular} matches the label selector {selector!r}")


def no_match(cluster, namespace, what):
    """The message for a selector that matched nothing: says when the namespace itself is missing."""
    if not namespace_exists(cluster, namespace):
        return f"{cluster.name}: namespace {namespace!r} does not exist"
    return f"{cluster.name}: {what} in namespace {namespace!r}"


# -- scaling ---------------------------------------------------------------------------------


def plan_replicas(current, replicas=None, delta=None, factor=None, floor=None, cap=None):
    """The replica count to scale to: ``replicas``, or ``current`` plus ``delta``, or ``current``
    times ``factor`` (rounded up), then held within ``floor`` and ``cap``.

    Returns ``(target, limited)``: ``limited`` says which limit changed the count, or None.
    A delta or factor that would leave no replica at all is refused (only an explicit
    ``replicas: 0`` stops a workload).
    """
    given = [x is not None for x in (replicas, delta, factor)]
    if sum(given) != 1:
        raise ValueError("give exactly one of replicas, delta or factor")
    if floor is not None and floor < 0:
        raise ValueError(f"floor must be 0 or more, got {floor}")
    if cap is not None and cap < 0:
        raise ValueError(f"cap must be 0 or more, got {cap}")
    if floor is not None and cap is not None and floor > cap:
        raise ValueError(f"floor ({floor}) is above cap ({cap})")
    if replicas is not None:
        if replicas < 0:
            raise ValueError(f"replicas must be 0 or more, got {replicas}")
        target = replicas
    elif delta is not None:
        target = current + delta
    else:
        if factor <= 0:
            raise ValueError(f"factor must be above 0, got {factor}")
        target = math.ceil(round(current * factor, 9))
    limited = None
    if cap is not None and target > cap:
        target, limited = cap, f"capped at {cap}"
    if floor is not None and target < floor:
        target, limited = floor, f"raised to the floor {floor}"
    if replicas is None and target < 1:
        how = f"delta {delta:+d}" if delta is not None else f"factor {factor:g}"
        raise ValueError(
            f"{how} on {current} replicas gives {target}: refusing to scale to zero by arithmetic "
            "(give replicas: 0 to stop the workload on purpose, or a floor of at least 1)"
        )
    return target, limited


def hpas_targeting(hpas, kind, name):
    """The HPAs (autoscaling/v2 JSON) whose scaleTargetRef is this apps/v1 workload."""
    out = []
    for hpa in hpas:
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        api_version = ref.get("apiVersion") or "apps/v1"
        group = api_version.split("/")[0] if "/" in api_version else ""
        if ref.get("kind") == kind and ref.get("name") == name and group in ("apps", "extensions"):
            out.append(hpa)
    return out


def plan_hpa(policy, hpas, target, current):
    """What to do with the HPA of a workload being scaled from ``current`` to ``target``.

    Returns None without an HPA, else a dict: ``name``, ``min_replicas``/``max_replicas``
    (before), ``new_min_replicas``/``new_max_replicas`` (after), ``action`` (V(adjusted),
    V(unchanged), V(ignored) or V(inactive)) and ``note`` (said in the result and the summary).
    """
    if policy not in HPA_POLICIES:
        raise ValueError(f"unknown hpa_policy {policy!r}: use one of {', '.join(HPA_POLICIES)}")
    if not hpas:
        return None
    if len(hpas) > 1:
        names = ", ".join(sorted(h["metadata"]["name"] for h in hpas))
        raise ValueError(f"several HPAs ({names}) target the workload: resolve that ambiguity before scaling it")
    hpa = hpas[0]
    name = hpa["metadata"]["name"]
    lo, hi = int(hpa["spec"].get("minReplicas", 1)), int(hpa["spec"]["maxReplicas"])
    out = dict(name=name, min_replicas=lo, max_replicas=hi, new_min_replicas=lo, new_max_replicas=hi)
    if target == 0:
        return dict(out, action="inactive", note=f"HPA {name} does not act on a workload scaled to 0")
    if target == current and lo <= target <= hi and policy != "adjust_hpa":
        return dict(out, action="unchanged", note=f"HPA {name} ({lo}..{hi}) left as it is")
    if policy == "fail":
        raise ValueError(
            f"HPA {name} (min {lo}, max {hi}) scales this workload and would undo a scale to {target}; "
            "use hpa_policy adjust_hpa to move its bounds, or scale_anyway"
        )
    if policy == "scale_anyway":
        undo = (
            "will bring it back within its bounds at its next sync"
            if not lo <= target <= hi
            else "may change it at its next sync"
        )
        return dict(out, action="ignored", note=f"HPA {name} ({lo}..{hi}) left as it is and {undo}")
    new_lo, new_hi = target, max(hi, target)
    out.update(new_min_replicas=new_lo, new_max_replicas=new_hi)
    if (new_lo, new_hi) == (lo, hi):
        return dict(out, action="unchanged", note=f"HPA {name} already holds {target} ({lo}..{hi})")
    change = f"min {lo}->{new_lo}" + (f", max {hi}->{new_hi}" if new_hi != hi else "")
    return dict(out, action="adjusted", note=f"HPA {name} {change} so that it keeps {target} replicas")


# -- ConfigMaps ------------------------------------------------------------------------------


def normalize_data(data, what="data"):
    """ConfigMap values as strings (ints are written out); None stays None (remove the key)."""
    out = {}
    for key, value in (data or {}).items():
        if value is None or isinstance(value, str):
            out[str(key)] = value
        elif isinstance(value, int) and not isinstance(value, bool):
            out[str(key)] = str(value)
        else:
            raise ValueError(
                f"{what}: the value of {key!r} is a {type(value).__name__} ({value!r}); ConfigMap values are "
                "strings: quote it"
            )
    return out


def check_expected(current, expected):
    """Mismatches between the ConfigMap's data and the values it is expected to have (None: absent)."""
    problems = []
    for key, want in (expected or {}).items():
        have = current.get(key)
        if have != want:
            show = "absent" if have is None else repr(have)
            problems.append(f"{key} is {show}, expected {'absent' if want is None else repr(want)}")
    return problems


def plan_data(current, desired):
    """The merge patch of ``data`` that makes ``current`` hold ``desired`` (None removes a key),
    and the previous values of the keys it changes (None: the key did not exist)."""
    patch, previous = {}, {}
    for key, value in desired.items():
        if value is None:
            if key in current:
                patch[key], previous[key] = None, current[key]
        elif current.get(key) != value:
            patch[key], previous[key] = value, current.get(key)
    return patch, previous


def render_data(data):
    """ConfigMap data as ``key: value`` lines, for a diff."""
    lines = []
    for key in sorted(data):
        value = data[key]
        lines.append(f"{key}: {json.dumps(value) if chr(10) in value else value}")
    return "\n".join(lines) + ("\n" if lines else "")


def configmap_references(obj, configmap):
    """How a workload's pod template uses a ConfigMap: a list of dicts with ``how`` (V(envFrom),
    V(env), V(volume), V(projected volume)), ``container``/``volume`` and, for V(env), ``key``."""
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    refs = []
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        for src in c.get("envFrom") or []:
            if (src.get("configMapRef") or {}).get("name") == configmap:
                refs.append(dict(how="envFrom", container=c.get("name")))
        for env in c.get("env") or []:
            key_ref = (env.get("valueFrom") or {}).get("configMapKeyRef") or {}
            if key_ref.get("name") == configmap:
                refs.append(dict(how="env", container=c.get("name"), key=key_ref.get("key"), variable=env.get("name")))
    for vol in spec.get("volumes") or []:
        if (vol.get("configMap") or {}).get("name") == configmap:
            refs.append(dict(how="volume", volume=vol.get("name")))
        for src in (vol.get("projected") or {}).get("sources") or []:
            if (src.get("configMap") or {}).get("name") == configmap:
                refs.append(dict(how="projected volume", volume=vol.get("name")))
    return refs


def uses_keys(refs, keys):
    """True when these references see a change of ``keys`` (whole-ConfigMap references see every key)."""
    keys = set(keys)
    return any(r["how"] != "env" or r.get("key") in keys for r in refs)
