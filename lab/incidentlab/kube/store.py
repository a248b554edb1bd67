"""The object store: what etcd plus the generic registry do in kube-apiserver.

Objects are plain dicts stored copy-on-write: a stored dict is never changed after it
is stored, so readers (the API, controllers, watches) may hold it without a lock and
must ``clone`` it before changing anything. Every write takes the next value of one
global, monotonic resourceVersion and appends an event to a bounded history from which
watches are served (a watch from a version older than the history gets 410 Expired).
"""

from __future__ import annotations

import bisect
import copy
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from . import objects
from .errors import ApiError, already_exists, conflict, expired, forbidden, invalid, not_found
from .resources import BY_KEY, Res

HISTORY_MAX = 20000
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        return datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def clone(obj: dict) -> dict:
    return copy.deepcopy(obj)


def random_suffix(n: int = 5) -> str:
    return "".join(secrets.choice(NAME_ALPHABET) for _ in range(n))


@dataclass(frozen=True)
class Event:
    rv: int
    key: str
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict
    old: dict | None


def _ns_of(obj: dict) -> str:
    return obj["metadata"].get("namespace", "")


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.data: dict[str, dict[tuple[str, str], dict]] = {key: {} for key in BY_KEY}
        self.rv = 1000
        self.history: list[Event] = []
        self.history_rvs: list[int] = []
        self._ip_next = 10
        self.listeners: list[Callable[[Event], None]] = []

    # -- reading -----------------------------------------------------------------
    def get(self, res: Res, ns: str, name: str) -> dict:
        obj = self.data[res.key].get((ns if res.namespaced else "", name))
        if obj is None:
            raise not_found(res.plural, name, res.group)
        return obj

    def find(self, res: Res, ns: str, name: str) -> dict | None:
        return self.data[res.key].get((ns if res.namespaced else "", name))

    def items(self, res: Res, ns: str | None = None) -> list[dict]:
        with self.lock:
            values = list(self.data[res.key].items())
        values.sort(key=lambda kv: kv[0])
        return [o for (n, _), o in values if ns is None or n == ns]

    def list(self, res: Res, ns: str | None, match: Callable[[dict], bool]) -> tuple[list[dict], int]:
        with self.lock:
            rv = self.rv
            values = sorted(self.data[res.key].items(), key=lambda kv: kv[0])
        return [o for (n, _), o in values if (ns is None or n == ns) and match(o)], rv

    # -- writing -----------------------------------------------------------------
    def _commit(self, res: Res, etype: str, obj: dict, old: dict | None, dry: bool = False) -> dict:
        """Store (or remove) ``obj`` with the next resourceVersion and record the event.
        A dry run (``dryRun=All``) goes through everything but this."""
        if dry:
            return obj
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = (_ns_of(obj), obj["metadata"]["name"])
        if etype == "DELETED":
            self.data[res.key].pop(key, None)
        else:
            self.data[res.key][key] = obj
        ev = Event(self.rv, res.key, etype, obj, old)
        self.history.append(ev)
        self.history_rvs.append(self.rv)
        if len(self.history) > HISTORY_MAX:
            del self.history[: HISTORY_MAX // 2]
            del self.history_rvs[: HISTORY_MAX // 2]
        self.cond.notify_all()
        for fn in self.listeners:
            fn(ev)
        return obj

    def _allocate_ip(self) -> str:
        self._ip_next += 1
        return f"10.96.{self._ip_next // 250}.{self._ip_next % 250 + 1}"

    def _check_namespace(self, res: Res, ns: str, name: str) -> None:
        if not res.namespaced:
            return
        nsobj = self.data["namespaces"].get(("", ns))
        if nsobj is None:
            raise not_found("namespaces", ns)
        if nsobj["metadata"].get("deletionTimestamp"):
            raise forbidden(
                res.plural,
                name,
                f"unable to create new content in namespace {ns} because it is being terminated",
                res.group,
            )

    def create(self, res: Res, obj: dict, ns: str | None = None, dry: bool = False) -> dict:
        """Create from a caller-owned dict (it becomes the stored object)."""
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        if res.namespaced:
            meta["namespace"] = ns or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        with self.lock:
            if not meta.get("name") and meta.get("generateName"):
                for _ in range(10):
                    meta["name"] = meta["generateName"] + random_suffix()
                    if self.find(res, meta.get("namespace", ""), meta["name"]) is None:
                        break
            name = meta.get("name") or ""
            uid = str(uuid.uuid4())
            objects.admit(res, obj, None, {"allocate_ip": self._allocate_ip, "uid": uid})
            self._check_namespace(res, meta.get("namespace", ""), name)
            if self.find(res, meta.get("namespace", ""), name) is not None:
                raise already_exists(res.plural, name, res.group)
            for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
                meta.pop(k, None)
            meta["uid"] = uid
            meta["creationTimestamp"] = now_iso()
            if res.generation:
                meta["generation"] = 1
            else:
                meta.pop("generation", None)
            return self._commit(res, "ADDED", obj, None, dry)

    def update(self, res: Res, obj: dict, sub: str | None = None, check_rv: bool = True, dry: bool = False) -> dict:
        """Replace (PUT semantics) from a caller-owned dict; a no-op write keeps the resourceVersion."""
        meta = obj.get("metadata")
        if not isinstance(meta, dict) or not meta.get("name"):
            raise invalid(res.kind, "", [("metadata.name", "Required value: name is required")], res.group)
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        with self.lock:
            ns = meta.get("namespace", "") if res.namespaced else ""
            old = self.get(res, ns, meta["name"])
            if (
                check_rv
                and meta.get("resourceVersion")
                and meta["resourceVersion"] != old["metadata"]["resourceVersion"]
            ):
                raise conflict(res.plural, meta["name"], res.group)
            new = obj
            if sub == "status":
                new = clone(old)
                new["status"] = obj.get("status", {})
            elif res.has_status and sub is None:
                new["status"] = clone(old.get("status", {}))
            nm = new["metadata"]
            if sub == "status":
                nm = new["metadata"]
            else:
                for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
                    if k in old["metadata"]:
                        nm[k] = old["metadata"][k]
                    else:
                        nm.pop(k, None)
                if res.namespaced:
                    nm["namespace"] = ns
                if res.generation:
                    nm["generation"] = old["metadata"].get("generation", 1)
                    if new.get("spec") != old.get("spec"):
                        nm["generation"] += 1
                objects.admit(res, new, old, {})
            nm["resourceVersion"] = old["metadata"]["resourceVersion"]
            if new == old:
                return old
            ns_finalizing = res.plural == "namespaces" and (new.get("spec") or {}).get("finalizers")
            if nm.get("deletionTimestamp") and not nm.get("finalizers") and res.plural != "pods" and not ns_finalizing:
                return self._commit(res, "DELETED", new, old, dry)
            return self._commit(res, "MODIFIED", new, old, dry)

    def mutate(self, res: Res, ns: str, name: str, fn: Callable[[dict], object], sub: str | None = None) -> dict | None:
        """Read-modify-write for controllers: ``fn`` edits a copy; nothing is written if it changed nothing."""
        with self.lock:
            cur = self.find(res, ns, name)
            if cur is None:
                return None
            new = clone(cur)
            fn(new)
            if new == cur:
                return cur
            return self.update(res, new, sub=sub, check_rv=False)

    def commit_raw(self, res: Res, new: dict, cur: dict) -> dict:
        """Write without admission: what a subresource such as pods/binding may change."""
        with self.lock:
            return self._commit(res, "MODIFIED", new, cur)

    def remove(self, res: Res, ns: str, name: str) -> dict | None:
        """Remove an object now (the end of graceful deletion, or a finalizer-free delete)."""
        with self.lock:
            cur = self.find(res, ns, name)
            if cur is None:
                return None
            return self._commit(res, "DELETED", clone(cur), cur)

    def delete(self, res: Res, ns: str, name: str, options: dict | None = None, dry: bool = False) -> tuple[dict, bool]:
        """Delete as the generic registry does. Returns (object, gone_now)."""
        options = options or {}
        with self.lock:
            cur = self.get(res, ns, name)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != cur["metadata"]["uid"]:
                raise conflict(
                    res.plural,
                    name,
                    res.group,
                    f"Precondition failed: UID in precondition: {pre['uid']}, "
                    f"UID in object meta: {cur['metadata']['uid']}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"]["resourceVersion"]:
                raise conflict(
                    res.plural,
                    name,
                    res.group,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                    f"{cur['metadata']['resourceVersion']}",
                )
            policy = options.get("propagationPolicy")
            if policy is None and options.get("orphanDependents") is True:
                policy = "Orphan"
            policy = policy or "Background"
            if policy not in ("Background", "Foreground", "Orphan"):
                raise invalid("DeleteOptions", "", [("propagationPolicy", f'Unsupported value: "{policy}"')])
            grace = options.get("gracePeriodSeconds")
            new = clone(cur)
            meta = new["metadata"]
            if meta.get("deletionTimestamp"):
                # Already terminating: only a shorter grace period (a force delete) changes anything.
                if res.plural == "pods" and grace == 0:
                    return self._commit(res, "DELETED", new, cur, dry), True
                return cur, False
            finalizers = list(meta.get("finalizers") or [])
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            if policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            graceful = (
                res.plural == "pods"
                and (new.get("spec") or {}).get("nodeName")
                and grace != 0
                and (new.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            )
            terminating_ns = res.plural == "namespaces"
            if not finalizers and not graceful and not terminating_ns:
                return self._commit(res, "DELETED", new, cur, dry), True
            if finalizers:
                meta["finalizers"] = finalizers
            meta["deletionTimestamp"] = now_iso()
            if res.plural == "pods":
                if grace is None:
                    grace = (new.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
                meta["deletionGracePeriodSeconds"] = grace
            elif finalizers:
                meta["deletionGracePeriodSeconds"] = 0
            if terminating_ns:
                new.setdefault("status", {})["phase"] = "Terminating"
            if res.generation:
                meta["generation"] = meta.get("generation", 1) + 1
            return self._commit(res, "MODIFIED", new, cur, dry), False

    # -- watching ----------------------------------------------------------------
    def watch(
        self,
        res: Res,
        ns: str | None,
        since: int | None,
        match: Callable[[dict], bool],
        deadline: float,
        tick: float = 1.0,
    ) -> Iterator[tuple[str, dict] | None]:
        """Yield (type, object) for changes after ``since`` (all current objects first when
        ``since`` is None), and None about every ``tick`` seconds so the caller can check its
        client and send bookmarks. Raises 410 when ``since`` is older than the history."""

        def visible(obj: dict | None) -> bool:
            return obj is not None and (ns is None or _ns_of(obj) == ns) and match(obj)

        with self.lock:
            if since is None:
                initial, last = self.list(res, ns, match)
            else:
                initial, last = [], since
                oldest = self.history_rvs[0] if self.history_rvs else self.rv + 1
                if since < oldest - 1 and since < self.rv:
                    raise expired(f"too old resource version: {since} ({oldest - 1})")
        for obj in initial:
            yield "ADDED", obj
        while True:
            with self.lock:
                idx = bisect.bisect_right(self.history_rvs, last)
                events = self.history[idx:]
                if not events:
                    self.cond.wait(timeout=max(0.0, min(tick, deadline - time.monotonic())))
                    idx = bisect.bisect_right(self.history_rvs, last)
                    events = self.history[idx:]
                if events:
                    last = events[-1].rv
            for ev in events:
                if ev.key != res.key:
                    continue
                now_in, was_in = visible(ev.obj), visible(ev.old)
                if ev.type == "DELETED":
                    if was_in or now_in:
                        yield "DELETED", ev.obj
                elif now_in and was_in:
                    yield "MODIFIED", ev.obj
                elif now_in:
                    yield "ADDED", ev.obj
                elif was_in:
                    yield "DELETED", ev.obj
            if time.monotonic() >= deadline:
                return
            yield None

    def current_rv(self) -> int:
        return self.rv
