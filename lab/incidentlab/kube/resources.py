"""The resources this API serves, and the discovery and OpenAPI documents built from them.

One table drives routing, legacy discovery (``/api/v1``, ``/apis/apps/v1``), aggregated
discovery (``apidiscovery.k8s.io/v2``, what kubectl 1.32 asks for first) and the small
OpenAPI v3 documents kubectl reads to learn that the server validates fields itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

KUBE_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.4-incidentlab"}

RW = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
RO = ["get", "list"]


@dataclass(frozen=True)
class Sub:
    name: str
    group: str
    version: str
    kind: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class Res:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = tuple(RW)
    subs: tuple[Sub, ...] = ()
    generation: bool = False  # metadata.generation tracks spec changes
    stored: bool = True  # False for computed resources (metrics, reviews)
    review: bool = False  # a create-only request answered at once (SelfSubjectAccessReview, ...)
    storage: tuple[str, str] | None = None  # served from the objects of this (group, version)
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def key(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def sub(self, name: str) -> Sub | None:
        return next((s for s in self.subs if s.name == name), None)

    @property
    def has_status(self) -> bool:
        return self.sub("status") is not None


def _status(group: str, version: str, kind: str) -> Sub:
    return Sub("status", group, version, kind, ("get", "patch", "update"))


RESOURCES: list[Res] = [
    Res(
        "",
        "v1",
        "Namespace",
        "namespaces",
        False,
        ("ns",),
        subs=(_status("", "v1", "Namespace"),),
        verbs=tuple(v for v in RW if v != "deletecollection"),
    ),
    Res("", "v1", "Node", "nodes", False, ("no",), subs=(_status("", "v1", "Node"),)),
    Res(
        "",
        "v1",
        "Pod",
        "pods",
        short=("po",),
        categories=("all",),
        subs=(
            _status("", "v1", "Pod"),
            Sub("log", "", "v1", "Pod", ("get",)),
            Sub("eviction", "policy", "v1", "Eviction", ("create",)),
        ),
    ),
    Res("", "v1", "Service", "services", short=("svc",), categories=("all",), subs=(_status("", "v1", "Service"),)),
    Res("", "v1", "Endpoints", "endpoints", short=("ep",)),
    Res("", "v1", "ConfigMap", "configmaps", short=("cm",)),
    Res("", "v1", "Secret", "secrets"),
    Res("", "v1", "Event", "events", short=("ev",)),
    Res(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short=("deploy",),
        categories=("all",),
        subs=(
            _status("apps", "v1", "Deployment"),
            Sub("scale", "autoscaling", "v1", "Scale", ("get", "patch", "update")),
        ),
        generation=True,
    ),
    Res(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        short=("rs",),
        categories=("all",),
        subs=(
            _status("apps", "v1", "ReplicaSet"),
            Sub("scale", "autoscaling", "v1", "Scale", ("get", "patch", "update")),
        ),
        generation=True,
    ),
    Res(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        short=("sts",),
        categories=("all",),
        subs=(
            _status("apps", "v1", "StatefulSet"),
            Sub("scale", "autoscaling", "v1", "Scale", ("get", "patch", "update")),
        ),
        generation=True,
    ),
    Res(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        short=("ds",),
        categories=("all",),
        subs=(_status("apps", "v1", "DaemonSet"),),
        generation=True,
    ),
    Res(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short=("hpa",),
        categories=("all",),
        subs=(_status("autoscaling", "v2", "HorizontalPodAutoscaler"),),
        generation=True,
    ),
    # autoscaling/v1 serves the same objects as autoscaling/v2 (converted on the way in and out).
    Res(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short=("hpa",),
        categories=("all",),
        subs=(_status("autoscaling", "v1", "HorizontalPodAutoscaler"),),
        generation=True,
        storage=("autoscaling", "v2"),
    ),
    Res(
        "batch",
        "v1",
        "Job",
        "jobs",
        categories=("all",),
        subs=(_status("batch", "v1", "Job"),),
        generation=True,
    ),
    Res(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        short=("pdb",),
        subs=(_status("policy", "v1", "PodDisruptionBudget"),),
        generation=True,
    ),
    Res("coordination.k8s.io", "v1", "Lease", "leases"),
    Res(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        False,
        verbs=("create",),
        stored=False,
        review=True,
    ),
    Res(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        False,
        verbs=("create",),
        stored=False,
        review=True,
    ),
    Res(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        False,
        verbs=("create",),
        stored=False,
        review=True,
    ),
    Res("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", verbs=tuple(RO), stored=False),
    Res("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", False, verbs=tuple(RO), stored=False),
]

BY_GV: dict[tuple[str, str], dict[str, Res]] = {}
for _r in RESOURCES:
    BY_GV.setdefault((_r.group, _r.version), {})[_r.plural] = _r
BY_KEY: dict[str, Res] = {r.key: r for r in RESOURCES if r.stored and r.storage is None}
BY_KIND: dict[tuple[str, str], Res] = {(r.api_version, r.kind): r for r in RESOURCES}

# Group order and versions (the preferred one first), as /apis lists them.
GROUPS: list[tuple[str, list[str]]] = [
    ("apps", ["v1"]),
    ("authentication.k8s.io", ["v1"]),
    ("authorization.k8s.io", ["v1"]),
    ("autoscaling", ["v2", "v1"]),
    ("batch", ["v1"]),
    ("policy", ["v1"]),
    ("coordination.k8s.io", ["v1"]),
    ("metrics.k8s.io", ["v1beta1"]),
]


def lookup(group: str, version: str, plural: str) -> Res | None:
    return BY_GV.get((group, version), {}).get(plural)


def res(key: str) -> Res:
    return BY_KEY[key]


def stored_as(r: Res) -> Res:
    """The resource whose objects the store holds for ``r`` (itself unless it is a converted version)."""
    return BY_GV[r.storage][r.plural] if r.storage else r


# -- conversion between served versions ----------------------------------------------------
# autoscaling/v1 is autoscaling/v2 with one CPU utilization target; a v1 write keeps the
# other metrics and the behavior of the stored v2 object, as the real conversion does (it
# keeps them in annotations).


def _cpu_target(metrics: list) -> int | None:
    for m in metrics or []:
        target = (m.get("resource") or {}).get("target") or {}
        if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu":
            return target.get("averageUtilization")
    return None


def to_served(r: Res, obj: dict) -> dict:
    """The stored object as version ``r`` shows it."""
    if not r.storage:
        return obj
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    v1spec = {k: spec[k] for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec}
    cpu = _cpu_target(spec.get("metrics"))
    if cpu is not None:
        v1spec["targetCPUUtilizationPercentage"] = cpu
    status = {
        k: st[k] for k in ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas") if k in st
    }
    status.setdefault("currentReplicas", 0)
    status.setdefault("desiredReplicas", 0)
    for m in st.get("currentMetrics") or []:
        cur = (m.get("resource") or {}).get("current") or {}
        if (m.get("resource") or {}).get("name") == "cpu" and "averageUtilization" in cur:
            status["currentCPUUtilizationPercentage"] = cur["averageUtilization"]
    return {"kind": r.kind, "apiVersion": r.api_version, "metadata": obj["metadata"], "spec": v1spec, "status": status}


def from_served(r: Res, body: dict, old: dict | None) -> dict:
    """A body of version ``r`` as the store keeps it (``old``: the stored object it replaces)."""
    if not r.storage:
        return body
    sr = stored_as(r)
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    new_spec = dict((old or {}).get("spec") or {})
    for k in ("scaleTargetRef", "minReplicas", "maxReplicas"):
        if k in spec:
            new_spec[k] = spec[k]
        else:
            new_spec.pop(k, None)
    others = [
        m
        for m in new_spec.get("metrics") or []
        if not (m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu")
    ]
    cpu = spec.get("targetCPUUtilizationPercentage")
    if cpu is not None:
        target = {"type": "Utilization", "averageUtilization": cpu}
        others.insert(0, {"type": "Resource", "resource": {"name": "cpu", "target": target}})
    new_spec["metrics"] = others
    out = {"apiVersion": sr.api_version, "kind": sr.kind, "metadata": body.get("metadata") or {}, "spec": new_spec}
    if old is not None and "status" in old:
        out["status"] = old["status"]
    return out


# -- legacy discovery ------------------------------------------------------------


def api_versions(server_address: str) -> dict:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _gv_entry(group: str, version: str) -> dict:
    return {"groupVersion": f"{group}/{version}", "version": version}


def api_group(group: str) -> dict:
    versions = dict(GROUPS)[group]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [_gv_entry(group, v) for v in versions],
        "preferredVersion": _gv_entry(group, versions[0]),
    }


def api_group_list() -> dict:
    groups = [api_group(g) for g, _ in GROUPS]
    for g in groups:
        del g["kind"], g["apiVersion"]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def resource_list(group: str, version: str) -> dict | None:
    table = BY_GV.get((group, version))
    if table is None:
        return None
    out = []
    for r in table.values():
        entry = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short:
            entry["shortNames"] = list(r.short)
        if r.categories:
            entry["categories"] = list(r.categories)
        out.append(entry)
        for s in r.subs:
            sub = {
                "name": f"{r.plural}/{s.name}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": list(s.verbs),
            }
            if s.group != r.group or s.version != r.version:
                sub["group"], sub["version"] = s.group, s.version
            out.append(sub)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


# -- aggregated discovery (apidiscovery.k8s.io/v2) ------------------------------------

AGGREGATED_CT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def _discovery_version(group: str, version: str) -> dict:
    resources = []
    for r in BY_GV[(group, version)].values():
        entry = {
            "resource": r.plural,
            "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
            "scope": "Namespaced" if r.namespaced else "Cluster",
            "singularResource": r.singular,
            "verbs": list(r.verbs),
        }
        if r.short:
            entry["shortNames"] = list(r.short)
        if r.categories:
            entry["categories"] = list(r.categories)
        if r.subs:
            entry["subresources"] = [
                {
                    "subresource": s.name,
                    "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                    "verbs": list(s.verbs),
                }
                for s in r.subs
            ]
        resources.append(entry)
    return {"version": version, "resources": resources, "freshness": "Current"}


def aggregated(core: bool) -> dict:
    if core:
        items = [{"metadata": {"name": ""}, "versions": [_discovery_version("", "v1")]}]
    else:
        items = [
            {"metadata": {"name": g}, "versions": [_discovery_version(g, v) for v in versions]}
            for g, versions in GROUPS
        ]
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}


# -- OpenAPI v3 ---------------------------------------------------------------------
# kubectl asks the OpenAPI v3 document of a group version whether PATCH takes the
# fieldValidation parameter; if so it leaves validation to the server (as with a real
# apiserver) instead of downloading the full schema.


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def openapi_gv_doc(group: str, version: str) -> dict | None:
    table = BY_GV.get((group, version))
    if table is None:
        return None
    # kubectl (cli-runtime's queryParamVerifierV3) looks for a PATCH operation carrying the kind's
    # x-kubernetes-group-version-kind and a fieldValidation query parameter of its own.
    params = [
        {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        for name in ("dryRun", "fieldManager", "fieldValidation")
    ]
    paths = {}
    for r in table.values():
        if "patch" not in r.verbs:
            continue
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        prefix = f"/{_gv_path(group, version)}" + ("/namespaces/{namespace}" if r.namespaced else "")
        paths[f"{prefix}/{r.plural}/{{name}}"] = {
            "patch": {
                "operationId": f"patch{r.kind}",
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
            },
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {}},
    }


def openapi_root() -> dict:
    gvs = [("", "v1")] + [(g, v) for g, versions in GROUPS for v in versions]
    paths = {}
    for g, v in gvs:
        digest = hashlib.sha256(json.dumps(openapi_gv_doc(g, v), sort_keys=True).encode()).hexdigest()[:32].upper()
        p = _gv_path(g, v)
        paths[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={digest}"}
    return {"paths": paths}
