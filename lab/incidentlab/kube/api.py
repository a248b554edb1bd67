"""HTTP front of the emulator: the Kubernetes REST API as kubectl and client libraries use it.

Routes: ``/version``, ``/healthz``, discovery (legacy and aggregated), ``/openapi/v3``,
``/api/v1/...`` and ``/apis/<group>/<version>/...`` for the resources in ``resources.py``,
the kube-state-metrics style ``/metrics`` and the lab's admin endpoints under ``/_lab/``.
Plain HTTP/1.1 with keep-alive; watches and ``logs -f`` stream with chunked encoding.
"""

from __future__ import annotations

import base64
import json
import select
import socket
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import yaml

from . import protobuf
from . import resources as R
from .errors import (
    ApiError,
    bad_request,
    invalid,
    method_not_allowed,
    no_route,
    not_found,
    unsupported_media_type,
)
from .objects import unknown_fields
from .patch import CONTENT_TYPES, apply_patch
from .selectors import parse_fields, parse_labels, selector_to_string
from .store import clone
from .tables import to_table

if TYPE_CHECKING:
    from .server import Emulator

DEFAULT_WATCH_TIMEOUT = 1800
BOOKMARK_EVERY = 30.0


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], cluster: Emulator):
        self.cluster = cluster
        super().__init__(addr, Handler)


def _flag(q: dict, name: str) -> bool:
    return (q.get(name) or [""])[0].lower() in ("true", "1", "yes")


def _int(q: dict, name: str) -> int | None:
    val = (q.get(name) or [None])[0]
    if val in (None, ""):
        return None
    try:
        return int(val)
    except ValueError:
        raise bad_request(f"{name}: invalid value {val!r}: must be an integer") from None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "incidentlab-kube-apiserver"

    def log_message(self, format, *args):
        pass

    # -- plumbing ------------------------------------------------------------------
    @property
    def cluster(self) -> Emulator:
        return self.server.cluster

    def _send_bytes(self, code: int, data: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for w in self.warnings:  # shown by kubectl as "Warning: ..."
            self.send_header("Warning", '299 - "' + w.replace('"', "'") + '"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, code: int, body: object, content_type: str = "application/json") -> None:
        self._send_bytes(code, json.dumps(body, separators=(",", ":")).encode(), content_type)

    def send_text(self, code: int, text: str, content_type: str = "text/plain; charset=utf-8") -> None:
        self._send_bytes(code, text.encode(), content_type)

    def start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def client_gone(self) -> bool:
        """True when the client closed its side (a finished watch or ``logs -f``)."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def drain_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length and not self.body_read:
            self.body_read = True
            self.rfile.read(length)

    def read_body(self) -> object:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length and not self.body_read else b""
        self.body_read = True
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if not raw:
            return None
        if ctype == "application/vnd.kubernetes.protobuf":
            try:
                return protobuf.decode(raw)
            except (protobuf.ProtobufError, UnicodeDecodeError, IndexError) as exc:
                raise unsupported_media_type(ctype, f"{exc}; send JSON (kubectl apply -f) instead") from None
        try:
            if ctype in ("application/yaml", "application/apply-patch+yaml"):
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"the body of the request could not be decoded: {exc}") from None

    # -- verbs ---------------------------------------------------------------------
    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        q = parse_qs(url.query, keep_blank_values=True)
        self.warnings: list[str] = []
        self.user = None
        self.served: R.Res | None = None
        self.body_read = False
        try:
            self.route(method, path, q)
        except ApiError as exc:
            self.drain_body()  # refused before reading it: the next request on this connection starts after it
            self.send_json(exc.code, exc.status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # an emulator bug must be a 500, not a dropped connection
            traceback.print_exc(file=sys.stderr)
            err = ApiError(500, "InternalError", f"Internal error occurred: {exc}", {"causes": [{"message": str(exc)}]})
            try:
                self.drain_body()
                self.send_json(500, err.status())
            except OSError:
                self.close_connection = True

    def route(self, method: str, path: str, q: dict) -> None:
        accept = self.headers.get("Accept") or ""
        if path.startswith("/_lab/"):
            code, body = self.cluster.admin(
                method, path[len("/_lab/") :], self.read_body() if method != "GET" else None
            )
            return self.send_json(code, body)
        auth = self.cluster.authorizer
        self.user = auth.impersonate(
            auth.authenticate(self.headers.get("Authorization")),
            self.headers.get("Impersonate-User"),
            self.headers.get_all("Impersonate-Group") or [],
        )
        segs = path.strip("/").split("/")
        resource_path = (len(segs) >= 3 and segs[0] == "api") or (len(segs) >= 4 and segs[0] == "apis")
        if not resource_path:
            auth.authorize_path(self.user, path)
        if path in ("/healthz", "/livez", "/readyz"):
            return self.send_text(200, "ok")
        if path == "/version":
            info = dict(
                R.KUBE_VERSION,
                gitCommit="0" * 40,
                gitTreeState="clean",
                buildDate="2025-04-22T00:00:00Z",
                goVersion="go1.23.8",
                compiler="gc",
                platform="linux/amd64",
            )
            return self.send_json(200, info)
        if path in ("/api", "/apis"):
            core = path == "/api"
            if "as=APIGroupDiscoveryList" in accept and "v=v2;" in accept.replace(" ", "") + ";":
                return self.send_json(200, R.aggregated(core), R.AGGREGATED_CT)
            addr = f"{self.server.server_address[0]}:{self.server.server_address[1]}"
            return self.send_json(200, R.api_versions(addr) if core else R.api_group_list())
        if path.startswith("/openapi/v3"):
            return self.openapi(path)
        if path == "/metrics":
            return self.send_text(200, self.cluster.state_metrics(), "text/plain; version=0.0.4; charset=utf-8")
        if segs[0] == "api" and len(segs) >= 2:
            group, version, rest = "", segs[1], segs[2:]
        elif segs[0] == "apis" and len(segs) >= 2:
            if len(segs) == 2:
                if segs[1] not in dict(R.GROUPS):
                    raise no_route()
                return self.send_json(200, R.api_group(segs[1]))
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            raise no_route()
        if not rest:
            body = R.resource_list(group, version)
            if body is None:
                raise no_route()
            return self.send_json(200, body)
        return self.resource_route(method, group, version, rest, q, accept)

    def openapi(self, path: str) -> None:
        if path == "/openapi/v3":
            return self.send_json(200, R.openapi_root())
        rel = path[len("/openapi/v3/") :]
        parts = rel.split("/")
        doc = None
        if parts[0] == "api" and len(parts) == 2:
            doc = R.openapi_gv_doc("", parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            doc = R.openapi_gv_doc(parts[1], parts[2])
        if doc is None:
            raise no_route()
        return self.send_json(200, doc)

    # -- resources -----------------------------------------------------------------
    def resource_route(self, method: str, group: str, version: str, rest: list[str], q: dict, accept: str) -> None:
        watch_path = False
        if rest[0] == "watch":
            watch_path, rest = True, rest[1:]
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            cand = R.lookup(group, version, rest[2])
            if cand is not None and cand.namespaced:
                ns, rest = rest[1], rest[2:]
        res = R.lookup(group, version, rest[0]) if rest else None
        if res is None or len(rest) > 3:
            raise no_route()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub and res.sub(sub) is None:
            raise no_route()
        if res.namespaced and name and ns is None:
            raise no_route()
        self.cluster.authorizer.authorize(
            self.user, _verb(method, name, watch_path or _flag(q, "watch")), group, res.plural, sub, ns, name
        )
        if res.review:
            if method != "POST" or name is not None:
                raise method_not_allowed(res.plural, res.group, _verb(method, name, False))
            return self.review(res)
        if not res.stored:
            if method != "GET":
                raise method_not_allowed(res.plural, res.group, _verb(method, name, False))
            return self.metrics_api(res, ns, name, q)
        # A served version converted from the stored one (autoscaling/v1) works on the stored objects.
        self.served = res
        res = R.stored_as(res)
        if name is None:
            if method == "GET":
                if watch_path or _flag(q, "watch"):
                    return self.watch(res, ns, q, accept)
                return self.list(res, ns, q, accept)
            if method == "POST":
                if res.namespaced and ns is None:
                    raise method_not_allowed()
                return self.create(res, ns, q)
            if method == "DELETE":
                return self.delete_collection(res, ns, q)
            raise method_not_allowed()
        if watch_path:
            q = dict(q, fieldSelector=[f"metadata.name={name}"])
            return self.watch(res, ns, q, accept)
        if sub == "log":
            if method != "GET":
                raise method_not_allowed()
            return self.logs(ns, name, q)
        if sub == "eviction":
            if method != "POST":
                raise method_not_allowed()
            return self.evict(ns, name, q)
        if sub == "scale":
            return self.scale(method, res, ns, name, q)
        if method == "GET":
            obj = self.cluster.store.get(res, ns or "", name)
            return self.send_object(obj, res, accept, q)
        if method == "PUT":
            return self.replace(res, ns, name, sub, q)
        if method == "PATCH":
            return self.patch(res, ns, name, sub, q)
        if method == "DELETE":
            if sub:
                raise method_not_allowed()
            return self.delete(res, ns, name, q)
        raise method_not_allowed()

    def out(self, obj: dict) -> dict:
        """A stored object as the version the request named shows it."""
        return R.to_served(self.served, obj) if self.served is not None else obj

    def send_object(self, obj: dict, res: R.Res, accept: str, q: dict, code: int = 200) -> None:
        if "as=Table" in accept:
            include = (q.get("includeObject") or ["Metadata"])[0]
            rv = obj["metadata"].get("resourceVersion", "")
            return self.send_json(code, to_table(res.kind, [obj], rv, include, convert=self.out))
        return self.send_json(code, self.out(obj))

    def _matcher(self, q: dict):
        labels = parse_labels((q.get("labelSelector") or [""])[0])
        fields = parse_fields((q.get("fieldSelector") or [""])[0])
        return lambda o: labels(o["metadata"].get("labels") or {}) and fields(o)

    def list(self, res: R.Res, ns: str | None, q: dict, accept: str) -> None:
        items, rv = self.cluster.store.list(res, ns, self._matcher(q))
        meta: dict = {"resourceVersion": str(rv)}
        limit = _int(q, "limit")
        cont = (q.get("continue") or [""])[0]
        if cont:
            try:
                start_after = json.loads(base64.b64decode(cont))
            except ValueError:
                raise bad_request("continue key is not valid") from None
            items = [o for o in items if [o["metadata"].get("namespace", ""), o["metadata"]["name"]] > start_after]
        if limit and limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            meta["continue"] = base64.b64encode(json.dumps([last.get("namespace", ""), last["name"]]).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        if "as=Table" in accept:
            include = (q.get("includeObject") or ["Metadata"])[0]
            table = to_table(res.kind, items, str(rv), include, convert=self.out)
            table["metadata"].update({k: v for k, v in meta.items() if k != "resourceVersion"})
            return self.send_json(200, table)
        served = self.served or res
        return self.send_json(
            200,
            {
                "kind": served.list_kind,
                "apiVersion": served.api_version,
                "metadata": meta,
                "items": [self.out(o) for o in items],
            },
        )

    def watch(self, res: R.Res, ns: str | None, q: dict, accept: str) -> None:
        rv_param = (q.get("resourceVersion") or [""])[0]
        since = None
        if rv_param not in ("", "0"):
            try:
                since = int(rv_param)
            except ValueError:
                raise bad_request(f"invalid resource version {rv_param!r}") from None
        timeout = _int(q, "timeoutSeconds") or DEFAULT_WATCH_TIMEOUT
        bookmarks = _flag(q, "allowWatchBookmarks")
        deadline = time.monotonic() + timeout
        store = self.cluster.store
        as_table = "as=Table" in accept
        include = (q.get("includeObject") or ["Metadata"])[0]
        events = store.watch(res, ns, since, self._matcher(q), deadline)
        try:
            first = next(events)  # raises 410 before any header is sent
        except StopIteration:
            first = None
        self.start_stream("application/json")
        headers_sent = False
        last_bookmark = time.monotonic()
        try:
            pending = [first]
            while True:
                ev = pending.pop() if pending else next(events, StopIteration)
                if ev is StopIteration:
                    break
                if ev is None:
                    if self.client_gone():
                        return
                    if bookmarks and time.monotonic() - last_bookmark > BOOKMARK_EVERY:
                        last_bookmark = time.monotonic()
                        obj = {
                            "kind": res.kind,
                            "apiVersion": (self.served or res).api_version,
                            "metadata": {"resourceVersion": str(store.current_rv())},
                        }
                        self.chunk(json.dumps({"type": "BOOKMARK", "object": obj}).encode() + b"\n")
                    continue
                etype, obj = ev
                if as_table:
                    rv = obj["metadata"]["resourceVersion"]
                    obj = to_table(res.kind, [obj], rv, include, not headers_sent, convert=self.out)
                    headers_sent = True
                else:
                    obj = self.out(obj)
                self.chunk(json.dumps({"type": etype, "object": obj}, separators=(",", ":")).encode() + b"\n")
            self.end_stream()
        except ApiError as exc:
            self.chunk(json.dumps({"type": "ERROR", "object": exc.status()}).encode() + b"\n")
            self.end_stream()
        finally:
            events.close()

    def _body_object(self, res: R.Res, old: dict | None = None) -> dict:
        """The request's object, checked against the version it was sent to and converted to the stored one."""
        body = self.read_body()
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        served = self.served or res
        self._check_kind(served, body)
        return R.from_served(served, body, old) if self.served is not None else body

    @staticmethod
    def _check_kind(res: R.Res, body: dict) -> None:
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if (api_version and api_version != res.api_version) or (kind and kind != res.kind):
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({res.api_version})"
                if api_version != res.api_version
                else f"the kind in the data ({kind}) does not match the expected kind ({res.kind})"
            )

    @staticmethod
    def _check_ns(body: dict, ns: str | None) -> None:
        body_ns = (body.get("metadata") or {}).get("namespace")
        if ns and body_ns and body_ns != ns:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")

    def _field_validation(self, res: R.Res, obj: dict, q: dict) -> None:
        """fieldValidation=Strict (kubectl's default) refuses unknown fields; Warn only warns."""
        mode = (q.get("fieldValidation") or ["Warn"])[0]
        problems = unknown_fields(res.kind, obj) if mode in ("Strict", "Warn") else []
        if problems and mode == "Strict":
            raise bad_request(
                f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: strict decoding error: '
                + ", ".join(problems)
            )
        self.warnings = [f"{res.kind}: {p}" for p in problems]

    def create(self, res: R.Res, ns: str | None, q: dict) -> None:
        body = self._body_object(res)
        self._field_validation(res, body, q)
        self._check_ns(body, ns)
        obj = self.cluster.store.create(res, body, ns, dry=_dry(q))
        self.send_json(201, self.out(obj))

    def replace(self, res: R.Res, ns: str | None, name: str, sub: str | None, q: dict) -> None:
        body = self._body_object(res, self.cluster.store.find(res, ns or "", name) if self.served else None)
        self._field_validation(res, body, q)
        self._check_ns(body, ns)
        meta = body.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise bad_request("the name of the object does not match the name on the URL")
        meta["name"] = name
        if res.namespaced:
            meta["namespace"] = ns
        obj = self.cluster.store.update(res, body, sub=sub, dry=_dry(q))
        self.send_json(200, self.out(obj))

    def patch(self, res: R.Res, ns: str | None, name: str, sub: str | None, q: dict) -> None:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        kind = CONTENT_TYPES.get(ctype)
        if kind is None:
            raise unsupported_media_type(ctype or "(none)")
        patch = self.read_body()
        store = self.cluster.store
        with store.lock:
            cur = store.get(res, ns or "", name)
            new = apply_patch(kind, clone(self.out(cur)), patch)
            if self.served is not None:
                new = R.from_served(self.served, new, cur)
            self._field_validation(res, new, q)
            meta = new.get("metadata") if isinstance(new.get("metadata"), dict) else {}
            if meta.get("name") != name or (res.namespaced and meta.get("namespace") != ns):
                raise ApiError(
                    422,
                    "Invalid",
                    f'{res.kind} "{name}" is invalid: metadata.name: Invalid value: the '
                    "name and namespace of a patched object cannot change",
                )
            # A patch is unconditional unless it carries a resourceVersion of its own.
            if not (isinstance(patch, dict) and (patch.get("metadata") or {}).get("resourceVersion")):
                meta["resourceVersion"] = cur["metadata"]["resourceVersion"]
            obj = store.update(res, new, sub=sub, dry=_dry(q))
        self.send_json(200, self.out(obj))

    def _delete_options(self, q: dict) -> dict:
        body = self.read_body()
        opts = dict(body) if isinstance(body, dict) else {}
        if q.get("propagationPolicy"):
            opts["propagationPolicy"] = q["propagationPolicy"][0]
        grace = _int(q, "gracePeriodSeconds")
        if grace is not None:
            opts["gracePeriodSeconds"] = grace
        if q.get("orphanDependents"):
            opts["orphanDependents"] = _flag(q, "orphanDependents")
        return opts

    def delete(self, res: R.Res, ns: str | None, name: str, q: dict) -> None:
        opts = self._delete_options(q)
        obj, gone = self.cluster.store.delete(res, ns or "", name, opts, dry=_dry(q, opts))
        if res.plural == "pods" or not gone:
            return self.send_json(200, self.out(obj))
        details = {"name": name, "group": res.group, "kind": res.plural, "uid": obj["metadata"]["uid"]}
        self.send_json(
            200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )

    def delete_collection(self, res: R.Res, ns: str | None, q: dict) -> None:
        if "deletecollection" not in res.verbs:
            raise method_not_allowed()
        opts = self._delete_options(q)
        store = self.cluster.store
        items, _ = store.list(res, ns, self._matcher(q))
        deleted = []
        for o in items:
            try:
                obj, _ = store.delete(
                    res, o["metadata"].get("namespace", ""), o["metadata"]["name"], opts, dry=_dry(q, opts)
                )
                deleted.append(self.out(obj))
            except ApiError as exc:
                if exc.code != 404:
                    raise
        self.send_json(
            200,
            {
                "kind": (self.served or res).list_kind,
                "apiVersion": (self.served or res).api_version,
                "metadata": {"resourceVersion": str(store.current_rv())},
                "items": deleted,
            },
        )

    # -- subresources --------------------------------------------------------------
    def scale(self, method: str, res: R.Res, ns: str, name: str, q: dict) -> None:
        store = self.cluster.store

        def view(obj: dict) -> dict:
            m = obj["metadata"]
            return {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
                "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
                "status": {
                    "replicas": (obj.get("status") or {}).get("replicas", 0),
                    "selector": selector_to_string((obj.get("spec") or {}).get("selector") or {}),
                },
            }

        if method == "GET":
            return self.send_json(200, view(store.get(res, ns, name)))
        if method not in ("PUT", "PATCH"):
            raise method_not_allowed()
        with store.lock:
            cur = store.get(res, ns, name)
            if method == "PUT":
                body = self.read_body()
                if not isinstance(body, dict):
                    raise bad_request("the body of the request must be a Scale object")
                new_scale = body
            else:
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                if ctype not in CONTENT_TYPES:
                    raise unsupported_media_type(ctype or "(none)")
                new_scale = apply_patch(CONTENT_TYPES[ctype], view(cur), self.read_body())
            replicas = (new_scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise ApiError(
                    422,
                    "Invalid",
                    f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid '
                    f"value: {replicas}: must be greater than or equal to 0",
                )
            want_rv = (new_scale.get("metadata") or {}).get("resourceVersion")
            if method == "PUT" and want_rv and want_rv != cur["metadata"]["resourceVersion"]:
                from .errors import conflict

                raise conflict(res.plural, name, res.group)
            new = clone(cur)
            new["spec"]["replicas"] = replicas
            obj = store.update(res, new, check_rv=False, dry=_dry(q))
        self.send_json(200, view(obj))

    def logs(self, ns: str, name: str, q: dict) -> None:
        pod = self.cluster.store.get(R.res("pods"), ns, name)
        opts = {
            "container": (q.get("container") or [""])[0],
            "previous": _flag(q, "previous"),
            "tail": _int(q, "tailLines"),
            "since": _int(q, "sinceSeconds"),
            "since_time": (q.get("sinceTime") or [""])[0],
            "timestamps": _flag(q, "timestamps"),
            "limit_bytes": _int(q, "limitBytes"),
        }
        kubelet = self.cluster.kubelet
        if not _flag(q, "follow"):
            return self.send_text(200, kubelet.read_log(pod, **opts))
        self.start_stream("text/plain")
        try:
            for data in kubelet.follow_log(pod, self.client_gone, **opts):
                if data:
                    self.chunk(data.encode())
            self.end_stream()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def evict(self, ns: str, name: str, q: dict) -> None:
        """POST pods/NAME/eviction (policy/v1 Eviction): 201 Success, or 429 when a budget forbids it."""
        from .disruption import evict

        body = self.read_body()
        if body is not None:
            if not isinstance(body, dict):
                raise bad_request("the body of the request must be an Eviction object")
            if body.get("kind") not in (None, "Eviction") or body.get("apiVersion") not in (
                None,
                "policy/v1",
                "policy/v1beta1",
            ):
                raise bad_request(f"the body of the request must be a policy/v1 Eviction, not {body.get('kind')}")
            if (body.get("metadata") or {}).get("name") not in (None, "", name):
                raise bad_request("name in URL does not match name in Eviction object")
        opts = (body or {}).get("deleteOptions") or {}
        evict(self.cluster.store, ns, name, opts if isinstance(opts, dict) else {}, dry=_dry(q))
        self.send_json(201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})

    def review(self, res: R.Res) -> None:
        """Self/SubjectAccessReview and SelfSubjectReview: answered from the same tokens and policy as requests."""
        from .auth import User, admin_info

        body = self.read_body()
        if not isinstance(body, dict):
            raise bad_request(f"the body of the request must be a {res.kind} object")
        self._check_kind(res, body)
        head = {"kind": res.kind, "apiVersion": res.api_version, "metadata": {"creationTimestamp": None}}
        if res.kind == "SelfSubjectReview":
            info = self.user.info() if self.user is not None else admin_info()
            return self.send_json(201, {**head, "status": {"userInfo": info}})
        spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        user = self.user
        if res.kind == "SubjectAccessReview":
            if not spec.get("user") and not spec.get("groups"):
                raise invalid(
                    res.kind, "", [("spec.user", 'Invalid value: "": at least one of user or group must be specified')]
                )
            user = User(spec.get("user") or "", tuple(spec.get("groups") or ()), spec.get("uid") or "")
        ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if bool(ra) == bool(nra):
            raise invalid(
                res.kind,
                "",
                [
                    (
                        "spec.resourceAttributes",
                        "Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
                    )
                ],
                res.group,
            )
        auth = self.cluster.authorizer
        if ra:
            allowed, reason = auth.decide(
                user,
                ra.get("verb") or "",
                ra.get("group") or "",
                ra.get("resource") or "",
                ra.get("subresource") or None,
                ra.get("namespace") or None,
                ra.get("name") or None,
            )
        else:
            allowed, reason = auth.decide_path(user, nra.get("path") or "")
        status = {"allowed": allowed, **({"reason": reason} if reason else {})}
        self.send_json(201, {**head, "spec": spec, "status": status})

    def metrics_api(self, res: R.Res, ns: str | None, name: str | None, q: dict) -> None:
        if not self.cluster.metrics_served():
            # What the aggregator answers for an APIService whose backend (metrics-server) has no ready pod.
            raise ApiError(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
                {
                    "group": res.group,
                    "kind": res.plural,
                    "causes": [{"reason": "UnexpectedServerResponse", "message": "service unavailable"}],
                },
            )
        metrics = self.cluster.metrics_objects(res.kind, ns)
        match = self._matcher(q)
        if name is not None:
            found = next((m for m in metrics if m["metadata"]["name"] == name), None)
            if found is None:
                raise not_found(res.plural, name, res.group)
            return self.send_json(200, found)
        items = [m for m in metrics if match(m)]
        self.send_json(200, {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": {}, "items": items})


def _verb(method: str, name: str | None, watch: bool) -> str:
    """The authorization verb of a resource request, as kube-apiserver's RequestInfo names it."""
    if method == "GET":
        return "watch" if watch else ("get" if name else "list")
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def _dry(q: dict, delete_options: dict | None = None) -> bool:
    """A dry run: ``dryRun=All`` in the query, or for a delete in its DeleteOptions body (where kubectl
    puts it: ``kubectl delete --dry-run=server``)."""
    return "All" in (q.get("dryRun") or []) or "All" in ((delete_options or {}).get("dryRun") or [])
