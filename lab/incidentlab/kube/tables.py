"""Server-side printing: the ``meta.k8s.io/v1 Table`` kubectl asks for on ``kubectl get``.

Columns and cell formats follow kube-apiserver's printers (pkg/printers/internalversion)
for the kinds operators list; everything else gets Name and Age.
"""

from __future__ import annotations

import time

from .selectors import selector_to_string
from .store import parse_time


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def age(ts: str | None) -> str:
    t = parse_time(ts)
    return "<unknown>" if t is None else human_duration(time.time() - t)


def col(name: str, type_: str = "string", priority: int = 0, fmt: str = "", desc: str = "") -> dict:
    return {"name": name, "type": type_, "format": fmt, "description": desc or name, "priority": priority}


NAME = col("Name", fmt="name", desc="Name must be unique within a namespace.")
AGE = col("Age", desc="CreationTimestamp is a timestamp representing the server time when this object was created.")


def _meta(o: dict) -> dict:
    return o.get("metadata") or {}


def pod_status_cells(pod: dict) -> tuple[str, str, str]:
    """(READY, STATUS, RESTARTS) exactly as printPod computes them."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or ""
    statuses = status.get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    ready = restarts = 0
    has_running = False
    last_restart = None
    for cs in reversed(statuses):
        restarts += cs.get("restartCount", 0)
        term_last = (cs.get("lastState") or {}).get("terminated")
        if term_last:
            t = parse_time(term_last.get("finishedAt"))
            if t and (last_restart is None or t > last_restart):
                last_restart = t
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
        elif "terminated" in state:
            term = state["terminated"]
            reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode', 0)}"
        elif cs.get("ready") and "running" in state:
            has_running = True
            ready += 1
    if reason == "Completed" and has_running:
        ready_cond = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        reason = "Running" if ready_cond else "NotReady"
    if _meta(pod).get("deletionTimestamp") and status.get("phase") not in ("Succeeded", "Failed"):
        reason = "Terminating"
    restarts_s = str(restarts)
    if restarts and last_restart:
        restarts_s = f"{restarts} ({human_duration(time.time() - last_restart)} ago)"
    return f"{ready}/{total}", reason, restarts_s


def _pod(o: dict) -> list:
    ready, reason, restarts = pod_status_cells(o)
    st, sp = o.get("status") or {}, o.get("spec") or {}
    gates = sp.get("readinessGates")
    return [
        _meta(o)["name"],
        ready,
        reason,
        restarts,
        age(_meta(o).get("creationTimestamp")),
        st.get("podIP") or "<none>",
        sp.get("nodeName") or "<none>",
        st.get("nominatedNodeName") or "<none>",
        f"{len(gates)}" if gates else "<none>",
    ]


def _containers_images(tmpl_spec: dict) -> tuple[str, str]:
    cs = tmpl_spec.get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _deploy(o: dict) -> list:
    sp, st = o.get("spec") or {}, o.get("status") or {}
    names, images = _containers_images((sp.get("template") or {}).get("spec") or {})
    return [
        _meta(o)["name"],
        f"{st.get('readyReplicas', 0)}/{sp.get('replicas', 0)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        age(_meta(o).get("creationTimestamp")),
        names,
        images,
        selector_to_string(sp.get("selector") or {}),
    ]


def _rs(o: dict) -> list:
    sp, st = o.get("spec") or {}, o.get("status") or {}
    names, images = _containers_images((sp.get("template") or {}).get("spec") or {})
    return [
        _meta(o)["name"],
        sp.get("replicas", 0),
        st.get("replicas", 0),
        st.get("readyReplicas", 0),
        age(_meta(o).get("creationTimestamp")),
        names,
        images,
        selector_to_string(sp.get("selector") or {}),
    ]


def _sts(o: dict) -> list:
    sp, st = o.get("spec") or {}, o.get("status") or {}
    names, images = _containers_images((sp.get("template") or {}).get("spec") or {})
    return [
        _meta(o)["name"],
        f"{st.get('readyReplicas', 0)}/{sp.get('replicas', 0)}",
        age(_meta(o).get("creationTimestamp")),
        names,
        images,
    ]


def _ds(o: dict) -> list:
    sp, st = o.get("spec") or {}, o.get("status") or {}
    names, images = _containers_images((sp.get("template") or {}).get("spec") or {})
    node_selector = ((sp.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    return [
        _meta(o)["name"],
        st.get("desiredNumberScheduled", 0),
        st.get("currentNumberScheduled", 0),
        st.get("numberReady", 0),
        st.get("updatedNumberScheduled", 0),
        st.get("numberAvailable", 0),
        ",".join(f"{k}={v}" for k, v in node_selector.items()) or "<none>",
        age(_meta(o).get("creationTimestamp")),
        names,
        images,
        selector_to_string(sp.get("selector") or {}),
    ]


def _node(o: dict) -> list:
    st = o.get("status") or {}
    conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
    status = "Ready" if conds.get("Ready") == "True" else "NotReady"
    if (o.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    labels = _meta(o).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    info = st.get("nodeInfo") or {}
    addrs = {a.get("type"): a.get("address") for a in st.get("addresses") or []}
    return [
        _meta(o)["name"],
        status,
        ",".join(roles) or "<none>",
        age(_meta(o).get("creationTimestamp")),
        info.get("kubeletVersion", ""),
        addrs.get("InternalIP", "<none>"),
        addrs.get("ExternalIP", "<none>"),
        info.get("osImage", ""),
        info.get("kernelVersion", ""),
        info.get("containerRuntimeVersion", ""),
    ]


def _hpa_targets(o: dict) -> str:
    sp, st = o.get("spec") or {}, o.get("status") or {}
    current = {
        (m.get("resource") or {}).get("name"): m for m in st.get("currentMetrics") or [] if m.get("type") == "Resource"
    }
    parts = []
    for m in sp.get("metrics") or []:
        if m.get("type") != "Resource":
            parts.append("<unknown>/<unknown>")
            continue
        name = m["resource"]["name"]
        target = m["resource"].get("target") or {}
        cur = ((current.get(name) or {}).get("resource") or {}).get("current") or {}
        if "averageUtilization" in target:
            now = f"{cur['averageUtilization']}%" if "averageUtilization" in cur else "<unknown>"
            parts.append(f"{name}: {now}/{target['averageUtilization']}%")
        else:
            parts.append(f"{name}: {cur.get('averageValue', '<unknown>')}/{target.get('averageValue', '<unknown>')}")
    return ", ".join(parts) or "<none>"


def _hpa(o: dict) -> list:
    sp, st = o.get("spec") or {}, o.get("status") or {}
    ref = sp.get("scaleTargetRef") or {}
    return [
        _meta(o)["name"],
        f"{ref.get('kind')}/{ref.get('name')}",
        _hpa_targets(o),
        sp.get("minReplicas", 1),
        sp.get("maxReplicas", 0),
        st.get("currentReplicas", 0),
        age(_meta(o).get("creationTimestamp")),
    ]


def format_endpoints(o: dict, limit: int = 3) -> str:
    addrs = []
    for ss in o.get("subsets") or []:
        for a in ss.get("addresses") or []:
            for p in ss.get("ports") or [{}]:
                addrs.append(f"{a.get('ip')}:{p['port']}" if "port" in p else a.get("ip"))
    if not addrs:
        return "<none>"
    more = len(addrs) - limit
    return ",".join(addrs[:limit]) + (f" + {more} more..." if more > 0 else "")


def _svc(o: dict) -> list:
    sp, st = o.get("spec") or {}, o.get("status") or {}
    ingress = ((st.get("loadBalancer") or {}).get("ingress")) or []
    ext = ",".join(i.get("ip") or i.get("hostname") or "" for i in ingress) or (
        "<pending>" if sp.get("type") == "LoadBalancer" else "<none>"
    )
    ports = (
        ",".join(
            f"{p.get('port')}" + (f":{p['nodePort']}" if p.get("nodePort") else "") + f"/{p.get('protocol', 'TCP')}"
            for p in sp.get("ports") or []
        )
        or "<none>"
    )
    sel = ",".join(f"{k}={v}" for k, v in sorted((sp.get("selector") or {}).items())) or "<none>"
    return [
        _meta(o)["name"],
        sp.get("type", "ClusterIP"),
        sp.get("clusterIP") or "<none>",
        ext,
        ports,
        age(_meta(o).get("creationTimestamp")),
        sel,
    ]


def _event(o: dict) -> list:
    last = o.get("lastTimestamp") or o.get("eventTime") or _meta(o).get("creationTimestamp")
    io = o.get("involvedObject") or {}
    src = o.get("source") or {}
    return [
        age(last),
        o.get("type", ""),
        o.get("reason", ""),
        f"{(io.get('kind') or '').lower()}/{io.get('name')}",
        ", ".join(v for v in (src.get("component"), src.get("host")) if v),
        o.get("message", ""),
        age(o.get("firstTimestamp")),
        o.get("count", 1),
        _meta(o)["name"],
    ]


def _job(o: dict) -> list:
    sp, st = o.get("spec") or {}, o.get("status") or {}
    conds = {c.get("type") for c in st.get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in conds:
        status = "Complete"
    elif "Failed" in conds:
        status = "Failed"
    elif _meta(o).get("deletionTimestamp"):
        status = "Terminating"
    elif "Suspended" in conds:
        status = "Suspended"
    elif "FailureTarget" in conds:
        status = "FailureTarget"
    elif "SuccessCriteriaMet" in conds:
        status = "SuccessCriteriaMet"
    else:
        status = "Running"
    succeeded = st.get("succeeded", 0)
    if sp.get("completions") is not None:
        completions = f"{succeeded}/{sp['completions']}"
    elif (sp.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {sp['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(st.get("startTime")), parse_time(st.get("completionTime"))
    duration = "" if start is None else human_duration((end if end is not None else time.time()) - start)
    names, images = _containers_images((sp.get("template") or {}).get("spec") or {})
    return [
        _meta(o)["name"],
        status,
        completions,
        duration,
        age(_meta(o).get("creationTimestamp")),
        names,
        images,
        selector_to_string(sp.get("selector") or {}),
    ]


def _pdb(o: dict) -> list:
    sp, st = o.get("spec") or {}, o.get("status") or {}
    return [
        _meta(o)["name"],
        str(sp["minAvailable"]) if sp.get("minAvailable") is not None else "N/A",
        str(sp["maxUnavailable"]) if sp.get("maxUnavailable") is not None else "N/A",
        st.get("disruptionsAllowed", 0),
        age(_meta(o).get("creationTimestamp")),
    ]


def _data_count(o: dict) -> int:
    return len(o.get("data") or {}) + len(o.get("binaryData") or {})


PRINTERS = {
    "Pod": (
        [
            NAME,
            col("Ready"),
            col("Status"),
            col("Restarts"),
            AGE,
            col("IP", priority=1),
            col("Node", priority=1),
            col("Nominated Node", priority=1),
            col("Readiness Gates", priority=1),
        ],
        _pod,
    ),
    "Deployment": (
        [
            NAME,
            col("Ready"),
            col("Up-to-date", "integer"),
            col("Available", "integer"),
            AGE,
            col("Containers", priority=1),
            col("Images", priority=1),
            col("Selector", priority=1),
        ],
        _deploy,
    ),
    "ReplicaSet": (
        [
            NAME,
            col("Desired", "integer"),
            col("Current", "integer"),
            col("Ready", "integer"),
            AGE,
            col("Containers", priority=1),
            col("Images", priority=1),
            col("Selector", priority=1),
        ],
        _rs,
    ),
    "StatefulSet": (
        [NAME, col("Ready"), AGE, col("Containers", priority=1), col("Images", priority=1)],
        _sts,
    ),
    "DaemonSet": (
        [
            NAME,
            col("Desired", "integer"),
            col("Current", "integer"),
            col("Ready", "integer"),
            col("Up-to-date", "integer"),
            col("Available", "integer"),
            col("Node Selector"),
            AGE,
            col("Containers", priority=1),
            col("Images", priority=1),
            col("Selector", priority=1),
        ],
        _ds,
    ),
    "Node": (
        [
            NAME,
            col("Status"),
            col("Roles"),
            AGE,
            col("Version"),
            col("Internal-IP", priority=1),
            col("External-IP", priority=1),
            col("OS-Image", priority=1),
            col("Kernel-Version", priority=1),
            col("Container-Runtime", priority=1),
        ],
        _node,
    ),
    "HorizontalPodAutoscaler": (
        [
            NAME,
            col("Reference"),
            col("Targets"),
            col("MinPods", "integer"),
            col("MaxPods", "integer"),
            col("Replicas", "integer"),
            AGE,
        ],
        _hpa,
    ),
    "Endpoints": (
        [NAME, col("Endpoints"), AGE],
        lambda o: [_meta(o)["name"], format_endpoints(o), age(_meta(o).get("creationTimestamp"))],
    ),
    "Service": (
        [NAME, col("Type"), col("Cluster-IP"), col("External-IP"), col("Port(s)"), AGE, col("Selector", priority=1)],
        _svc,
    ),
    "ConfigMap": (
        [NAME, col("Data", "integer"), AGE],
        lambda o: [_meta(o)["name"], _data_count(o), age(_meta(o).get("creationTimestamp"))],
    ),
    "Secret": (
        [NAME, col("Type"), col("Data", "integer"), AGE],
        lambda o: [_meta(o)["name"], o.get("type", ""), _data_count(o), age(_meta(o).get("creationTimestamp"))],
    ),
    "Namespace": (
        [NAME, col("Status"), AGE],
        lambda o: [_meta(o)["name"], (o.get("status") or {}).get("phase", ""), age(_meta(o).get("creationTimestamp"))],
    ),
    "Event": (
        [
            col("Last Seen"),
            col("Type"),
            col("Reason"),
            col("Object"),
            col("Source", priority=1),
            col("Message"),
            col("First Seen", priority=1),
            col("Count", "integer", priority=1),
            col("Name", priority=1),
        ],
        _event,
    ),
}
PRINTERS["Job"] = (
    [
        NAME,
        col("Status"),
        col("Completions"),
        col("Duration"),
        AGE,
        col("Containers", priority=1),
        col("Images", priority=1),
        col("Selector", priority=1),
    ],
    _job,
)
PRINTERS["PodDisruptionBudget"] = (
    [NAME, col("Min Available"), col("Max Unavailable"), col("Allowed Disruptions", "integer"), AGE],
    _pdb,
)
PRINTERS["Lease"] = (
    [NAME, col("Holder"), AGE],
    lambda o: [
        _meta(o)["name"],
        (o.get("spec") or {}).get("holderIdentity", ""),
        age(_meta(o).get("creationTimestamp")),
    ],
)
DEFAULT = ([NAME, AGE], lambda o: [_meta(o)["name"], age(_meta(o).get("creationTimestamp"))])


def partial_metadata(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def to_table(
    kind: str, objs: list[dict], rv: str, include: str = "Metadata", headers: bool = True, convert=None
) -> dict:
    """Rows from stored objects; ``convert`` turns one into the requested version for includeObject=Object."""
    columns, row = PRINTERS.get(kind, DEFAULT)
    rows = []
    for o in objs:
        r = {"cells": row(o)}
        if include == "Object":
            r["object"] = convert(o) if convert else o
        elif include != "None":
            r["object"] = partial_metadata(o)
        rows.append(r)
    table = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv}, "rows": rows}
    table["columnDefinitions"] = columns if headers else []
    return table
