"""API errors as kube-apiserver reports them: a ``Status`` object with code and reason.

The reasons that kube-apiserver sends with ``details`` (apimachinery's errors.NewNotFound,
NewForbidden, NewMethodNotSupported, ...) always carry it here too, empty or not: clients
read it without checking (``kubectl debug`` dereferences ``details`` of a 404).
"""

from __future__ import annotations

WITH_DETAILS = {
    "NotFound",
    "AlreadyExists",
    "Conflict",
    "Invalid",
    "Forbidden",
    "MethodNotAllowed",
    "TooManyRequests",
    "InternalError",
}


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        elif self.reason in WITH_DETAILS:
            body["details"] = {}
        return body


def _details(resource: str, name: str, group: str = "") -> dict:
    d = {"name": name, "kind": resource}
    if group:
        d["group"] = group
    return d


def qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    return ApiError(
        404, "NotFound", f'{qualified(resource, group)} "{name}" not found', _details(resource, name, group)
    )


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists', _details(resource, name, group)
    )


def conflict(resource: str, name: str, group: str = "", why: str | None = None) -> ApiError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        _details(resource, name, group),
    )


def invalid(kind: str, name: str, causes: list[tuple[str, str]], group: str = "") -> ApiError:
    """422 with one cause per (field, message), worded like field.ErrorList."""
    text = ", ".join(f"{f}: {m}" for f, m in causes)
    gk = f"{kind}.{group}" if group else kind
    details = {
        "name": name,
        "kind": kind,
        "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes],
    }
    if group:
        details["group"] = group
    return ApiError(422, "Invalid", f'{gk} "{name}" is invalid: {text}', details)


def no_route() -> ApiError:
    """A path no resource serves (the real server's NotFound handler: empty details)."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(resource: str = "", group: str = "", verb: str = "") -> ApiError:
    if not resource:
        return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})
    details = {"kind": resource, **({"group": group} if group else {})}
    return ApiError(
        405,
        "MethodNotAllowed",
        f'{verb} is not supported on resources of kind "{qualified(resource, group)}"',
        details,
    )


def unsupported_media_type(content_type: str, why: str = "") -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format ({content_type})"
        + (f": {why}" if why else " - accepted media types include: application/json, application/yaml"),
    )


def too_many_requests(message: str, causes: list[dict] | None = None) -> ApiError:
    return ApiError(429, "TooManyRequests", message, {"causes": causes} if causes else {})


def forbidden(resource: str, name: str, why: str, group: str = "") -> ApiError:
    return ApiError(
        403,
        "Forbidden",
        f'{qualified(resource, group)} "{name}" is forbidden: {why}',
        _details(resource, name, group),
    )


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)
