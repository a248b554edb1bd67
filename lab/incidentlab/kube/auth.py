"""Bearer tokens and ABAC authorization, for requests that carry a token.

kube-apiserver can authenticate static tokens (``--token-auth-file``, a CSV of
``token,user,uid[,"group1,group2"]``) and authorize with ABAC
(``--authorization-mode=ABAC --authorization-policy-file``, one ``Policy`` per line).
The emulator does the same with ``<lab>/kube/tokens.csv`` and
``<lab>/kube/abac-policy.jsonl``, read again whenever they change, so a test or an
operator can have a restricted user (a namespace-only viewer, say) and see the real 401
and 403 answers.

Requests without an ``Authorization`` header stay what they always were in the lab: the
admin (the kubeconfig's user is empty). Admin endpoints under ``/_lab/`` are never checked.

The same decisions answer ``SelfSubjectAccessReview``/``SubjectAccessReview``
(``kubectl auth can-i``) and ``SelfSubjectReview`` (``kubectl auth whoami``), and
impersonation (``kubectl --as USER --as-group GROUP``) lets the admin ask as another user, as
kube-apiserver's impersonation filter does. Every authenticated user may review its own access,
as the default RBAC role ``system:basic-user`` allows.
"""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

from .errors import ApiError

READ_VERBS = ("get", "list", "watch")
ADMIN_NAME = "lab-admin"
ADMIN_GROUPS = ("system:masters", "system:authenticated")
NO_MATCH = "No policy matched."


class User:
    def __init__(self, name: str, groups: tuple[str, ...], uid: str = ""):
        self.name = name
        self.groups = groups
        self.uid = uid

    def info(self) -> dict:
        """The userInfo of an authentication review (system:authenticated added, as the server does)."""
        groups = list(self.groups) + ([] if "system:authenticated" in self.groups else ["system:authenticated"])
        return {"username": self.name, **({"uid": self.uid} if self.uid else {}), "groups": groups}


def admin_info() -> dict:
    return {"username": ADMIN_NAME, "groups": list(ADMIN_GROUPS)}


def _unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


class Authorizer:
    def __init__(self, tokens_path: Path, policy_path: Path):
        self.tokens_path = tokens_path
        self.policy_path = policy_path
        self.lock = threading.Lock()
        self._tokens: dict[str, User] = {}
        self._policies: list[dict] = []
        self._stamp: tuple = ()

    def _reload(self) -> None:
        stamp = tuple(p.stat().st_mtime_ns if p.exists() else None for p in (self.tokens_path, self.policy_path))
        if stamp == self._stamp:
            return
        tokens: dict[str, User] = {}
        if self.tokens_path.exists():
            with open(self.tokens_path, newline="") as fh:
                for row in csv.reader(fh):
                    if len(row) >= 3 and row[0].strip() and not row[0].startswith("#"):
                        groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
                        tokens[row[0].strip()] = User(row[1].strip(), groups, row[2].strip())
        policies = []
        if self.policy_path.exists():
            for line in self.policy_path.read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    policies.append(json.loads(line).get("spec") or {})
        self._tokens, self._policies, self._stamp = tokens, policies, stamp

    def authenticate(self, header: str | None) -> User | None:
        """None for a request without credentials (the lab's admin); 401 for a token nobody issued."""
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized()
        with self.lock:
            self._reload()
            user = self._tokens.get(token.strip())
        if user is None:
            raise _unauthorized()
        return user

    def impersonate(self, user: User | None, as_user: str | None, as_groups: list[str]) -> User | None:
        """The user a request acts as: ``Impersonate-User``/``-Group`` when the requester may impersonate."""
        if not as_user:
            if as_groups:
                raise ApiError(
                    500,
                    "InternalError",
                    "Internal error occurred: requested [" + ", ".join(as_groups) + "] without impersonating a user",
                    {"causes": [{"message": "impersonating groups requires a user"}]},
                )
            return user
        allowed, _ = self.decide(user, "impersonate", "", "users", None, None, as_user)
        if not allowed:
            raise ApiError(
                403,
                "Forbidden",
                f'users "{as_user}" is forbidden: User "{user.name if user else ADMIN_NAME}" cannot impersonate '
                'resource "users" in API group "" at the cluster scope',
                {"name": as_user, "kind": "users"},
            )
        return User(as_user, tuple(as_groups))

    @staticmethod
    def _subject(spec: dict, user: User) -> bool:
        u, g = spec.get("user", ""), spec.get("group", "")
        if not u and not g:
            return False
        return (not u or u in ("*", user.name)) and (not g or g == "*" or g in user.groups)

    def _policies_now(self) -> list[dict]:
        with self.lock:
            self._reload()
            return list(self._policies)

    def decide(
        self,
        user: User | None,
        verb: str,
        group: str,
        resource: str,
        sub: str | None,
        namespace: str | None,
        name: str | None,
    ) -> tuple[bool, str]:
        """(allowed, reason) of a resource request, as ABAC decides it (the admin may do anything)."""
        if user is None or "system:masters" in user.groups:
            return True, ""
        if group in ("authorization.k8s.io", "authentication.k8s.io") and resource in (
            "selfsubjectaccessreviews",
            "selfsubjectrulesreviews",
            "selfsubjectreviews",
        ):
            return True, ""  # system:basic-user
        for spec in self._policies_now():
            if not self._subject(spec, user) or (spec.get("readonly") and verb not in READ_VERBS):
                continue
            if spec.get("namespace") not in ("*", namespace or ""):
                continue
            if spec.get("resource") not in ("*", resource) or spec.get("apiGroup") not in ("*", group):
                continue
            return True, ""
        return False, NO_MATCH

    def decide_path(self, user: User | None, path: str) -> tuple[bool, str]:
        """(allowed, reason) of a non-resource request (discovery, /version, /openapi)."""
        if user is None or "system:masters" in user.groups:
            return True, ""
        for spec in self._policies_now():
            allowed = spec.get("nonResourcePath")
            if not allowed or not self._subject(spec, user):
                continue
            if allowed == "*" or allowed == path or (allowed.endswith("*") and path.startswith(allowed[:-1])):
                return True, ""
        return False, NO_MATCH

    def authorize(
        self,
        user: User | None,
        verb: str,
        group: str,
        resource: str,
        sub: str | None,
        namespace: str | None,
        name: str | None,
    ) -> None:
        """403 unless a policy line allows this resource request."""
        if self.decide(user, verb, group, resource, sub, namespace, name)[0]:
            return
        what = f"{resource}/{sub}" if sub else resource
        qualified = f"{resource}.{group}" if group else resource
        obj = f'{qualified} "{name}"' if name else qualified
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        details = {"kind": resource, **({"name": name} if name else {}), **({"group": group} if group else {})}
        raise ApiError(
            403,
            "Forbidden",
            f'{obj} is forbidden: User "{user.name}" cannot {verb} resource "{what}" in API group "{group}" '
            f"{scope}: No policy matched.",
            details,
        )

    def authorize_path(self, user: User | None, path: str) -> None:
        """403 unless a policy line allows this non-resource path (discovery, /version, /openapi)."""
        if self.decide_path(user, path)[0]:
            return
        raise ApiError(403, "Forbidden", f'forbidden: User "{user.name}" cannot get path "{path}": No policy matched.')
