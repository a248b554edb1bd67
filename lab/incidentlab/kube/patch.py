"""The three PATCH flavours of the Kubernetes API.

- JSON merge patch (RFC 7386): maps merge, ``null`` deletes, lists replace.
- JSON patch (RFC 6902): add/remove/replace/move/copy/test on JSON pointers.
- Strategic merge patch: like a merge patch, but lists of objects with a merge key
  (containers by name, env by name, ports by containerPort, ...) merge element by
  element, and the directives ``$patch: replace|delete|merge``,
  ``$deleteFromPrimitiveList/<key>``, ``$setElementOrder/<key>`` and ``$retainKeys``
  are understood.

Errors: a patch that is not valid JSON of the right shape is a 400; one that cannot
be applied (test failed, missing path) is a 422, as kube-apiserver answers.
"""

from __future__ import annotations

import copy

from .errors import ApiError, bad_request

# Merge keys of the built-in types we serve (patchMergeKey in the Go API types).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
# Lists of scalars whose patch strategy is "merge" (the union), not replace.
MERGE_PRIMITIVE_LISTS = {"finalizers"}


def unprocessable(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)


def _merge_key(field: str, items: list) -> str | None:
    if field == "ports":
        # Container ports merge on containerPort, Service ports on port.
        sample = next((i for i in items if isinstance(i, dict) and "$patch" not in i), None)
        if sample is None:
            return "containerPort"
        return "containerPort" if "containerPort" in sample else "port"
    return MERGE_KEYS.get(field)


# -- JSON merge patch ------------------------------------------------------------


def merge_patch(target: object, patch: object) -> object:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- strategic merge patch ------------------------------------------------------


def strategic_merge_patch(target: dict, patch: dict) -> dict:
    if not isinstance(patch, dict):
        raise bad_request("strategic merge patch must be a JSON object")
    return _smp_map(target if isinstance(target, dict) else {}, patch)


def _smp_map(orig: dict, patch: dict) -> dict:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise bad_request(f"Unknown patch type: {directive}")
    result = copy.deepcopy(orig)
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if not isinstance(value, list):
                raise bad_request(f"{key} must be a list")
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            cur = result.get(key)
            merged = _smp_map(cur if isinstance(cur, dict) else {}, value)
            if value.get("$patch") == "delete":
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _smp_list(key, result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain or k not in orig}
    return result


def _smp_list(field: str, orig: object, patch: list) -> list:
    orig = orig if isinstance(orig, list) else []
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    key = _merge_key(field, patch) if any(isinstance(i, dict) for i in patch) else None
    if key is None:
        if field in MERGE_PRIMITIVE_LISTS:
            out = list(orig)
            out += [i for i in patch if i not in out]
            return out
        return copy.deepcopy(patch)
    result = copy.deepcopy(orig)
    for item in patch:
        if not isinstance(item, dict):
            raise bad_request(f"strategic merge patch: {field} needs objects with the merge key {key!r}")
        if key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {key}")
        idx = next((i for i, o in enumerate(result) if isinstance(o, dict) and o.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                result.pop(idx)
            continue
        if idx is None:
            result.append(_smp_map({}, item))
        else:
            result[idx] = _smp_map(result[idx], item)
    return result


# -- JSON patch ------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: object, parts: list[str], path: str) -> object:
    cur = doc
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise unprocessable(f"jsonpatch: path {path!r} does not exist")
    return cur


def _add(doc: object, parts: list[str], value: object, path: str) -> object:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise unprocessable(f"jsonpatch: index {last} out of range in {path!r}")
    else:
        raise unprocessable(f"jsonpatch: cannot add at {path!r}")
    return doc


def _remove(doc: object, parts: list[str], path: str) -> object:
    if not parts:
        raise unprocessable("jsonpatch: cannot remove the whole document")
    parent = _walk(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise unprocessable(f"jsonpatch: unable to remove nonexistent key {path!r}")


def json_patch(target: dict, ops: object) -> dict:
    if not isinstance(ops, list):
        raise bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid json patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        parts = _pointer(path)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise bad_request(f"jsonpatch {kind} operation does not have a value")
        if kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op["value"]), path)
        elif kind == "remove":
            _remove(doc, parts, path)
        elif kind == "replace":
            _walk(doc, parts, path)  # must exist
            if parts:
                _remove(doc, parts, path)
            doc = _add(doc, parts, copy.deepcopy(op["value"]), path)
        elif kind in ("move", "copy"):
            src = op.get("from")
            if src is None:
                raise bad_request(f"jsonpatch {kind} operation does not have a from")
            sparts = _pointer(src)
            value = copy.deepcopy(_walk(doc, sparts, src))
            if kind == "move":
                _remove(doc, sparts, src)
            doc = _add(doc, parts, value, path)
        elif kind == "test":
            if _walk(doc, parts, path) != op["value"]:
                raise unprocessable(f"jsonpatch: test operation for path {path!r} failed")
        else:
            raise bad_request(f"Unexpected kind: {kind}")
    if not isinstance(doc, dict):
        raise unprocessable("jsonpatch: the result is not an object")
    return doc


CONTENT_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
}


def apply_patch(kind: str, target: dict, patch: object) -> dict:
    if kind == "json":
        return json_patch(target, patch)
    if not isinstance(patch, dict):
        raise bad_request("the patch must be a JSON object")
    if kind == "merge":
        return merge_patch(target, patch)
    return strategic_merge_patch(target, patch)
