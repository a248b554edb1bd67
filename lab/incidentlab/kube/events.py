"""core/v1 Events as the kubelet and controllers record them, aggregated by count.

Repeated events (a probe failing every second, a back-off) update one Event's count and
lastTimestamp, and at most every few seconds, so they do not flood watches.
"""

from __future__ import annotations

import threading
import time

from .resources import res
from .store import Store, now_iso, random_suffix

FLUSH_EVERY = 5.0
TTL_SECONDS = 3600


class Recorder:
    def __init__(self, store: Store):
        self.store = store
        self.lock = threading.Lock()
        self.seen: dict[tuple, list] = {}  # key -> [event name, namespace, pending count, last write]

    def record(
        self,
        obj: dict,
        etype: str,
        reason: str,
        message: str,
        component: str,
        host: str | None = None,
        field_path: str | None = None,
    ) -> None:
        meta = obj["metadata"]
        ns = meta.get("namespace") or "default"
        key = (meta.get("uid"), etype, reason, message, field_path)
        now = time.monotonic()
        ev = res("events")
        with self.lock:
            entry = self.seen.get(key)
            if entry and self.store.find(ev, entry[1], entry[0]) is not None:
                entry[2] += 1
                if now - entry[3] < FLUSH_EVERY:
                    return
                count, entry[2], entry[3] = entry[2], 0, now
                name = entry[0]

                def bump(e: dict) -> None:
                    e["count"] = e.get("count", 1) + count
                    e["lastTimestamp"] = now_iso()

                self.store.mutate(ev, entry[1], name, bump)
                return
            involved = {
                "kind": obj.get("kind"),
                "namespace": meta.get("namespace"),
                "name": meta["name"],
                "uid": meta.get("uid"),
                "apiVersion": obj.get("apiVersion"),
                "resourceVersion": meta.get("resourceVersion"),
            }
            if field_path:
                involved["fieldPath"] = field_path
            ts = now_iso()
            name = f"{meta['name']}.{int(time.time() * 1e9):x}{random_suffix(2)}"
            body = {
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": {k: v for k, v in involved.items() if v is not None},
                "reason": reason,
                "message": message,
                "source": {"component": component, **({"host": host} if host else {})},
                "firstTimestamp": ts,
                "lastTimestamp": ts,
                "count": 1,
                "type": etype,
                "eventTime": None,
                "reportingComponent": component,
                "reportingInstance": host or "",
            }
            try:
                self.store.create(ev, body, ns)
            except Exception:
                return
            self.seen[key] = [name, ns, 0, now]

    def expire(self) -> None:
        """Delete events older than an hour, as the apiserver's event TTL does."""
        from .store import parse_time

        cutoff = time.time() - TTL_SECONDS
        ev = res("events")
        for e in self.store.items(ev):
            t = parse_time(e.get("lastTimestamp") or e["metadata"].get("creationTimestamp"))
            if t is not None and t < cutoff:
                self.store.remove(ev, e["metadata"]["namespace"], e["metadata"]["name"])
        with self.lock:
            self.seen = {k: v for k, v in self.seen.items() if self.store.find(ev, v[1], v[0]) is not None}
