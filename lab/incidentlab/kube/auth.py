"""Bearer tokens and a two-role authorizer, so clients can meet 401 and 403 as on a real cluster.

Tokens come from a static token file in kube-apiserver's ``--token-auth-file`` format
(``token,user,uid,"group1,group2"``), re-read when it changes. A request without a token
is the lab's admin (the lab kubeconfig's user is empty); an unknown token is 401. Groups
decide what a user may do, like ClusterRoleBindings of the built-in roles would:
``system:masters`` everything, ``incidentlab:view`` the ``view`` role (get, list and watch,
secrets excepted); anything else nothing.
"""

from __future__ import annotations

import csv
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import ApiError

VIEW_GROUP = "incidentlab:view"
ADMIN_GROUP = "system:masters"
READ_VERBS = {"get", "list", "watch"}


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]


ADMIN = User("lab-admin", (ADMIN_GROUP,))


class StaticTokens:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock = threading.Lock()
        self.stamp: tuple | None = None
        self.tokens: dict[str, User] = {}

    def _load(self) -> dict[str, User]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return {}
        with self.lock:
            if self.stamp != (st.st_mtime_ns, st.st_size):
                tokens = {}
                with open(self.path, newline="") as fh:
                    for row in csv.reader(fh):
                        if len(row) >= 2 and row[0].strip() and not row[0].startswith("#"):
                            groups = tuple(g.strip() for g in (row[3] if len(row) > 3 else "").split(",") if g.strip())
                            tokens[row[0].strip()] = User(row[1].strip(), groups)
                self.tokens, self.stamp = tokens, (st.st_mtime_ns, st.st_size)
            return self.tokens

    def authenticate(self, header: str | None) -> User:
        if not header:
            return ADMIN
        scheme, _, token = header.partition(" ")
        user = self._load().get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user


def authorize(user: User, verb: str, group: str, plural: str, sub: str | None, ns: str | None, name: str | None):
    """Raise 403 Forbidden, worded as the RBAC authorizer words it, unless ``user`` may do this."""
    if ADMIN_GROUP in user.groups:
        return
    if VIEW_GROUP in user.groups and verb in READ_VERBS and plural != "secrets":
        return
    resource = f"{plural}/{sub}" if sub else plural
    qualified = f"{plural}.{group}" if group else plural
    subject = f'{qualified} "{name}"' if name else qualified
    scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
    details = {"kind": plural}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    why = f'User "{user.name}" cannot {verb} resource "{resource}" in API group "{group}" {scope}'
    raise ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", details)
