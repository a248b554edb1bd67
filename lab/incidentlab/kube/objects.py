"""Admission: the defaults kube-apiserver fills in and the validation it enforces.

Only what matters for the kinds we serve is covered, but what is covered answers like
the real server: the same defaults (so ``kubectl get -o yaml`` looks familiar) and a
422 ``Invalid`` with field paths for objects a real cluster would refuse.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re

from .errors import ApiError, invalid
from .resources import Res

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
# Kinds whose names must be DNS labels rather than subdomains.
LABEL_NAMED = {"Namespace", "Service"}


def _container_defaults(c: dict) -> None:
    image = c.get("image") or ""
    tag = image.rsplit("/", 1)[-1]
    if "imagePullPolicy" not in c:
        c["imagePullPolicy"] = (
            "Always" if (":" not in tag or tag.endswith(":latest")) and "@" not in tag else "IfNotPresent"
        )
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        p.setdefault("protocol", "TCP")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        pr = c.get(probe)
        if isinstance(pr, dict):
            pr.setdefault("timeoutSeconds", 1)
            pr.setdefault("periodSeconds", 10)
            pr.setdefault("successThreshold", 1)
            pr.setdefault("failureThreshold", 3)
            if isinstance(pr.get("httpGet"), dict):
                pr["httpGet"].setdefault("scheme", "HTTP")
                pr["httpGet"].setdefault("path", "/")


def pod_spec_defaults(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if isinstance(c, dict):
            _container_defaults(c)


def _qos(spec: dict) -> str:
    containers = spec.get("containers") or []
    reqs = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in reqs):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get(k) and (r.get("requests") or r.get("limits") or {}).get(k) == r["limits"][k]
        for r in reqs
        for k in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _defaults(kind: str, obj: dict, ctx: dict) -> None:
    spec = obj.get("spec")
    if kind == "Pod" and isinstance(spec, dict):
        pod_spec_defaults(spec)
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault(
            "tolerations",
            [
                {
                    "key": f"node.kubernetes.io/{t}",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
                for t in ("not-ready", "unreachable")
            ],
        )
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", _qos(spec))
    elif kind in ("Deployment", "ReplicaSet") and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        tmpl = spec.setdefault("template", {})
        if isinstance(tmpl.get("spec"), dict):
            pod_spec_defaults(tmpl["spec"])
        tmpl.setdefault("metadata", {}).setdefault("creationTimestamp", None)
        if kind == "Deployment":
            strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
            if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                strategy["type"] = "RollingUpdate"
                ru = strategy.setdefault("rollingUpdate", {})
                ru.setdefault("maxUnavailable", "25%")
                ru.setdefault("maxSurge", "25%")
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
        obj.setdefault("status", {})
    elif kind in ("StatefulSet", "DaemonSet") and isinstance(spec, dict):
        tmpl = spec.setdefault("template", {})
        if isinstance(tmpl.get("spec"), dict):
            pod_spec_defaults(tmpl["spec"])
        tmpl.setdefault("metadata", {}).setdefault("creationTimestamp", None)
        spec.setdefault("revisionHistoryLimit", 10)
        if kind == "StatefulSet":
            spec.setdefault("replicas", 1)
            spec.setdefault("podManagementPolicy", "OrderedReady")
            strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
            if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                strategy["type"] = "RollingUpdate"
                strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
            spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
            obj.setdefault("status", {"replicas": 0, "availableReplicas": 0})
        else:
            strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
            if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                strategy["type"] = "RollingUpdate"
                ru = strategy.setdefault("rollingUpdate", {})
                ru.setdefault("maxUnavailable", 1)
                ru.setdefault("maxSurge", 0)
            obj.setdefault(
                "status",
                {"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0},
            )
    elif kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        if spec.get("clusterIP") in (None, "") and ctx.get("allocate_ip"):
            spec["clusterIP"] = ctx["allocate_ip"]()
        if spec.get("clusterIP"):
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
        obj.setdefault("status", {"loadBalancer": {}})
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {}) or {}
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj["data"] = data
    elif kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")
    elif kind == "Job" and isinstance(spec, dict):
        job_defaults(obj, ctx.get("uid"))
        tmpl = spec.get("template")
        if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
            pod_spec_defaults(tmpl["spec"])
            tmpl.setdefault("metadata", {}).setdefault("creationTimestamp", None)
        obj.setdefault("status", {})
    elif kind == "PodDisruptionBudget":
        obj.setdefault("spec", {})
        obj.setdefault("status", {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0})
    elif kind == "HorizontalPodAutoscaler" and isinstance(spec, dict):
        spec.setdefault("minReplicas", 1)
        if not spec.get("metrics"):  # autoscaling/v2's default: 80% CPU
            target = {"type": "Utilization", "averageUtilization": 80}
            spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": target}}]
        behavior = spec.setdefault("behavior", {})
        up = behavior.setdefault("scaleUp", {})
        up.setdefault("stabilizationWindowSeconds", 0)
        up.setdefault("selectPolicy", "Max")
        up.setdefault(
            "policies",
            [{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}],
        )
        down = behavior.setdefault("scaleDown", {})
        down.setdefault("selectPolicy", "Max")
        down.setdefault("policies", [{"type": "Percent", "value": 100, "periodSeconds": 15}])
        obj.setdefault("status", {"currentReplicas": 0, "desiredReplicas": 0})


def job_defaults(obj: dict, uid: str | None) -> None:
    """What the API server sets on a job: its defaults and, at creation, the selector on its uid and the
    matching pod labels (the job's own labels, when it has none, are its pods')."""
    spec = obj["spec"]
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    tmpl = spec.setdefault("template", {})
    if not isinstance(tmpl, dict) or not uid:
        return
    labels = tmpl.setdefault("metadata", {}).setdefault("labels", {})
    if not spec.get("manualSelector"):
        name = obj["metadata"].get("name", "")
        labels.update(
            {
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "controller-uid": uid,
                "job-name": name,
            }
        )
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    if not obj["metadata"].get("labels"):
        obj["metadata"]["labels"] = dict(labels)


# -- validation ---------------------------------------------------------------------


def _validate_meta(kind: str, meta: dict, errs: list) -> None:
    name = meta.get("name") or ""
    pattern = DNS_LABEL if kind in LABEL_NAMED else DNS_SUBDOMAIN
    limit = 63 if kind in LABEL_NAMED else 253
    if not name:
        errs.append(("metadata.name", "Required value: name or generateName is required"))
    elif not pattern.match(name) or len(name) > limit:
        what = "RFC 1123 label" if kind in LABEL_NAMED else "RFC 1123 subdomain"
        errs.append(
            (
                "metadata.name",
                f'Invalid value: "{name}": a lowercase {what} must consist of lower case alphanumeric characters, '
                "'-' or '.', and must start and end with an alphanumeric character",
            )
        )
    for field in ("labels", "annotations"):
        val = meta.get(field)
        if val is not None and not isinstance(val, dict):
            errs.append((f"metadata.{field}", "Invalid value: must be a map of strings"))
            continue
        for k, v in (val or {}).items():
            if not isinstance(v, str):
                errs.append((f"metadata.{field}", f'Invalid value: "{k}": values must be strings'))
            elif field == "labels" and (len(v) > 63 or not LABEL_VALUE.match(v)):
                errs.append(
                    (
                        "metadata.labels",
                        f'Invalid value: "{v}": a valid label must be an empty string or '
                        "consist of alphanumeric characters, '-', '_' or '.'",
                    )
                )
            if field == "labels" and not LABEL_NAME.match(k.rsplit("/", 1)[-1]):
                errs.append(
                    ("metadata.labels", f'Invalid value: "{k}": name part must consist of alphanumeric characters')
                )


def _validate_pod_spec(spec: object, path: str, errs: list) -> None:
    if not isinstance(spec, dict):
        errs.append((path, "Required value"))
        return
    containers = spec.get("containers")
    if not containers or not isinstance(containers, list):
        errs.append((f"{path}.containers", "Required value"))
        return
    seen = set()
    for i, c in enumerate(containers):
        p = f"{path}.containers[{i}]"
        if not isinstance(c, dict):
            errs.append((p, "Invalid value: must be an object"))
            continue
        name = c.get("name") or ""
        if not name:
            errs.append((f"{p}.name", "Required value"))
        elif not DNS_LABEL.match(name):
            errs.append((f"{p}.name", f'Invalid value: "{name}": a lowercase RFC 1123 label is required'))
        elif name in seen:
            errs.append((f"{p}.name", f'Duplicate value: "{name}"'))
        seen.add(name)
        if not c.get("image"):
            errs.append((f"{p}.image", "Required value"))
        for j, e in enumerate(c.get("env") or []):
            if not isinstance(e, dict) or not e.get("name"):
                errs.append((f"{p}.env[{j}].name", "Required value"))
    if spec.get("restartPolicy") not in (None, "Always", "OnFailure", "Never"):
        errs.append((f"{path}.restartPolicy", f'Unsupported value: "{spec.get("restartPolicy")}"'))


def _validate_workload(kind: str, obj: dict, errs: list) -> None:
    from .selectors import selector_from_match

    spec = obj.get("spec")
    if not isinstance(spec, dict):
        errs.append(("spec", "Required value"))
        return
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        errs.append(("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0"))
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        errs.append(("spec.selector", "Required value"))
    tmpl = spec.get("template") or {}
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    if isinstance(selector, dict) and not selector_from_match(selector)(labels):
        errs.append(
            ("spec.template.metadata.labels", f"Invalid value: {labels}: `selector` does not match template `labels`")
        )
    _validate_pod_spec(tmpl.get("spec"), "spec.template.spec", errs)
    if kind != "ReplicaSet" and (tmpl.get("spec") or {}).get("restartPolicy", "Always") != "Always":
        errs.append(("spec.template.spec.restartPolicy", 'Unsupported value: supported values: "Always"'))


def _validate_data(obj: dict, errs: list, is_secret: bool) -> None:
    for field in ("data", "binaryData"):
        data = obj.get(field)
        if data is None:
            continue
        if not isinstance(data, dict):
            errs.append((field, "Invalid value: must be a map"))
            continue
        for k, v in data.items():
            if not CONFIG_KEY.match(k):
                errs.append(
                    (
                        f"{field}[{k}]",
                        f'Invalid value: "{k}": a valid config key must consist of alphanumeric '
                        "characters, '-', '_' or '.'",
                    )
                )
            if not isinstance(v, str):
                errs.append((f"{field}[{k}]", "Invalid value: must be a string"))
            elif is_secret or field == "binaryData":
                try:
                    base64.b64decode(v, validate=True)
                except (binascii.Error, ValueError):
                    errs.append((f"{field}[{k}]", "Invalid value: illegal base64 data"))


def _intstr_ok(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, str) and value.endswith("%") and value[:-1].isdigit() and int(value[:-1]) <= 100


def _validate_job(obj: dict, errs: list) -> None:
    from .selectors import selector_from_match

    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    for f in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        v = spec.get(f)
        if v is not None and (not isinstance(v, int) or v < (1 if f == "activeDeadlineSeconds" else 0)):
            errs.append((f"spec.{f}", f"Invalid value: {v}: must be greater than or equal to 0"))
    if spec.get("completionMode", "NonIndexed") != "NonIndexed":
        errs.append(("spec.completionMode", 'Unsupported value: the lab runs only "NonIndexed" jobs'))
    tmpl = spec.get("template") or {}
    _validate_pod_spec(tmpl.get("spec"), "spec.template.spec", errs)
    if (tmpl.get("spec") or {}).get("restartPolicy") not in ("OnFailure", "Never"):
        errs.append(("spec.template.spec.restartPolicy", 'Required value: valid values: "OnFailure", "Never"'))
    sel = spec.get("selector")
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        errs.append(("spec.selector", "Required value"))
    elif not selector_from_match(sel)(labels):
        errs.append(
            ("spec.template.metadata.labels", f"Invalid value: {labels}: `selector` does not match template `labels`")
        )


def _validate_pdb(obj: dict, errs: list) -> None:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    both = spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None
    if both:
        errs.append(("spec", "Invalid value: minAvailable and maxUnavailable cannot be both set"))
    for f in ("minAvailable", "maxUnavailable"):
        v = spec.get(f)
        if v is not None and not _intstr_ok(v):
            errs.append(
                (f"spec.{f}", f"Invalid value: {v!r}: must be a non-negative integer or a percentage up to 100%")
            )
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy not in (None, "IfHealthyBudget", "AlwaysAllow"):
        errs.append(
            (
                "spec.unhealthyPodEvictionPolicy",
                f'Unsupported value: "{policy}": supported values: "AlwaysAllow", "IfHealthyBudget"',
            )
        )


def _validate(kind: str, obj: dict, errs: list) -> None:
    spec = obj.get("spec")
    if kind == "Job":
        _validate_job(obj, errs)
    elif kind == "PodDisruptionBudget":
        _validate_pdb(obj, errs)
    elif kind == "Pod":
        _validate_pod_spec(spec, "spec", errs)
    elif kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        _validate_workload(kind, obj, errs)
    elif kind == "Service":
        spec = spec if isinstance(spec, dict) else {}
        ports = spec.get("ports")
        if spec.get("type", "ClusterIP") != "ExternalName" and not ports:
            errs.append(("spec.ports", "Required value"))
        for i, p in enumerate(ports or []):
            port = p.get("port") if isinstance(p, dict) else None
            if not isinstance(port, int) or not 1 <= port <= 65535:
                errs.append((f"spec.ports[{i}].port", f"Invalid value: {port}: must be between 1 and 65535, inclusive"))
        ip = spec.get("clusterIP")
        if ip and ip != "None":
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                errs.append(("spec.clusterIP", f'Invalid value: "{ip}": must be a valid IP address'))
    elif kind in ("ConfigMap", "Secret"):
        _validate_data(obj, errs, kind == "Secret")
    elif kind == "HorizontalPodAutoscaler":
        spec = spec if isinstance(spec, dict) else {}
        ref = spec.get("scaleTargetRef") or {}
        if not ref.get("kind"):
            errs.append(("spec.scaleTargetRef.kind", "Required value"))
        if not ref.get("name"):
            errs.append(("spec.scaleTargetRef.name", "Required value"))
        mx, mn = spec.get("maxReplicas"), spec.get("minReplicas", 1)
        if not isinstance(mx, int) or mx < 1:
            errs.append(("spec.maxReplicas", f"Invalid value: {mx}: must be greater than or equal to 1"))
        if not isinstance(mn, int) or mn < 1:
            errs.append(("spec.minReplicas", f"Invalid value: {mn}: must be greater than or equal to 1"))
        elif isinstance(mx, int) and mn > mx:
            errs.append(("spec.maxReplicas", f"Invalid value: {mx}: must be greater than or equal to `minReplicas`"))


def _validate_update(kind: str, old: dict, new: dict, errs: list) -> None:
    if kind == "Job":
        for f in ("selector", "completions", "completionMode"):
            if (old.get("spec") or {}).get(f) != (new.get("spec") or {}).get(f):
                errs.append((f"spec.{f}", "Invalid value: field is immutable"))
    elif kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        if (old.get("spec") or {}).get("selector") != (new.get("spec") or {}).get("selector"):
            errs.append(("spec.selector", "Invalid value: field is immutable"))
    elif kind == "Pod":
        # Only container images may change in a running pod's spec (plus what we default).
        def strip(spec: dict) -> dict:
            spec = dict(spec or {})
            spec["containers"] = [{k: v for k, v in c.items() if k != "image"} for c in spec.get("containers") or []]
            spec.pop("activeDeadlineSeconds", None)
            spec.pop("tolerations", None)
            return spec

        if strip(old.get("spec")) != strip(new.get("spec")):
            errs.append(
                (
                    "spec",
                    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, "
                    "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` "
                    "(only additions to existing tolerations) or `spec.terminationGracePeriodSeconds`",
                )
            )
    elif kind in ("ConfigMap", "Secret") and old.get("immutable"):
        for field in ("data", "binaryData", "immutable"):
            if old.get(field) != new.get(field):
                errs.append((field, "Forbidden: field is immutable when `immutable` is set"))
    elif kind == "Service":
        old_ip, new_ip = (old.get("spec") or {}).get("clusterIP"), (new.get("spec") or {}).get("clusterIP")
        if new_ip and new_ip != old_ip:
            errs.append(("spec.clusterIP", "Invalid value: field is immutable"))
        elif not new_ip and old_ip:
            new.setdefault("spec", {})["clusterIP"] = old_ip
            new["spec"]["clusterIPs"] = [old_ip]


def admit(res: Res, obj: dict, old: dict | None, ctx: dict) -> None:
    """Default and validate ``obj`` in place (``old`` is set on update); raise 422 when invalid."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise ApiError(400, "BadRequest", "metadata must be an object")
    if not isinstance(obj.get("spec", {}), dict):
        raise invalid(res.kind, meta.get("name", ""), [("spec", "Invalid value: must be an object")], res.group)
    _defaults(res.kind, obj, ctx)
    errs: list[tuple[str, str]] = []
    _validate_meta(res.kind, meta, errs)
    _validate(res.kind, obj, errs)
    if old is not None:
        _validate_update(res.kind, old, obj, errs)
    if errs:
        raise invalid(res.kind, meta.get("name", ""), errs, res.group)


# Top-level fields of each kind (besides apiVersion, kind, metadata), for fieldValidation=Strict.
TOP_FIELDS = {
    "Lease": {"spec"},
    "ConfigMap": {"data", "binaryData", "immutable"},
    "Secret": {"data", "stringData", "type", "immutable"},
    "Endpoints": {"subsets"},
    "Event": {
        "involvedObject",
        "reason",
        "message",
        "source",
        "firstTimestamp",
        "lastTimestamp",
        "count",
        "type",
        "eventTime",
        "series",
        "action",
        "related",
        "reportingComponent",
        "reportingInstance",
    },
}
META_FIELDS = {
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
}


def unknown_fields(kind: str, obj: dict) -> list[str]:
    """Fields a strict decoder would reject (only the top level and metadata are checked)."""
    allowed = {"apiVersion", "kind", "metadata"} | TOP_FIELDS.get(kind, {"spec", "status"})
    out = [f'unknown field "{k}"' for k in obj if k not in allowed]
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    out += [f'unknown field "metadata.{k}"' for k in meta if k not in META_FIELDS]
    return out
