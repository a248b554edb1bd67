# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an operator reads off a cluster, as data: compact views of nodes, pods, deployments,
HPAs, endpoints, events and ``top`` figures, a health summary per cluster, and the text
tables ``kubectl get -o wide`` would print.

Everything here works on the API's JSON as plain dicts (what ``k8s.get_json`` returns and
``kubectl get -o json`` shows), so the views are pure functions, tested without a cluster,
and the text tables are computed the way kubectl's printers compute them.
"""

from __future__ import annotations

import calendar
import json
import re
import time

from ansible_collections.incident.response.plugins.module_utils import k8s
from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure

# What a snapshot can read (ConfigMaps only when asked: their data is configuration, not state),
# the metrics API's group and version, and list page size.
KINDS = ("nodes", "pods", "deployments", "hpas", "endpoints", "events", "metrics", "configmaps")
DEFAULT_KINDS = KINDS[:-1]
METRICS = ("metrics.k8s.io", "v1beta1")
PAGE_SIZE = 500


# -- small helpers ------------------------------------------------------------------------


def parse_time(ts):
    """Seconds since the epoch of an RFC 3339 timestamp from the API, or None."""
    if not ts or not isinstance(ts, str):
        return None
    m = re.match(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?$", ts.strip())
    if not m:
        return None
    base = calendar.timegm(time.strptime(f"{m.group(1)}T{m.group(2)}", "%Y-%m-%dT%H:%M:%S"))
    frac = float(m.group(3)) if m.group(3) else 0.0
    tz = m.group(4) or "Z"
    offset = 0 if tz == "Z" else (1 if tz[0] == "+" else -1) * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return base + frac - offset


def iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def human_duration(seconds):
    """kubectl's ages: k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
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
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def age(ts, now):
    t = parse_time(ts)
    return "<unknown>" if t is None else human_duration(now - t)


_SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}


def parse_quantity(q):
    """A Kubernetes quantity ("100m", "64Mi", "4", "1e3") as a number of base units, or None."""
    if q is None:
        return None
    if isinstance(q, (int, float)):
        return float(q)
    m = re.match(r"^\s*([+-]?[0-9.]+(?:[eE][+-]?\d+)?)\s*([a-zA-Z]*)\s*$", str(q))
    if not m or m.group(2) not in _SUFFIXES:
        return None
    return float(m.group(1)) * _SUFFIXES[m.group(2)]


def millicores(q):
    v = parse_quantity(q)
    return None if v is None else round(v * 1000)


def mem_bytes(q):
    v = parse_quantity(q)
    return None if v is None else int(v)


def _meta(o):
    return o.get("metadata") or {}


def _key(o):
    m = _meta(o)
    return f"{m['namespace']}/{m['name']}" if m.get("namespace") else m.get("name", "")


def selector_string(selector):
    """A label selector as kubectl prints it (requirements sorted by key)."""
    parts = [(k, f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        op, key = expr.get("operator"), expr.get("key", "")
        if op in ("In", "NotIn"):
            parts.append((key, f"{key} {op.lower()} ({','.join(sorted(expr.get('values') or []))})"))
        elif op == "Exists":
            parts.append((key, key))
        elif op == "DoesNotExist":
            parts.append((key, f"!{key}"))
    return ",".join(text for _key, text in sorted(parts)) or "<none>"


# -- pods ---------------------------------------------------------------------------------


def _container_view(cs, spec):
    state = cs.get("state") or {}
    kind = next((k for k in ("running", "waiting", "terminated") if k in state), "waiting")
    detail = state.get(kind) or {}
    last = (cs.get("lastState") or {}).get("terminated")
    return dict(
        name=cs.get("name"),
        image=cs.get("image") or (spec or {}).get("image"),
        ready=bool(cs.get("ready")),
        restart_count=cs.get("restartCount", 0),
        state=kind,
        reason=detail.get("reason"),
        message=detail.get("message"),
        started_at=detail.get("startedAt"),
        last_terminated=dict(
            reason=last.get("reason"),
            exit_code=last.get("exitCode"),
            signal=last.get("signal"),
            started_at=last.get("startedAt"),
            finished_at=last.get("finishedAt"),
        )
        if last
        else None,
    )


def pod_cells(pod):
    """(READY, STATUS, restarts, last restart epoch or None) as kubectl's printPod computes them."""
    status, spec = pod.get("status") or {}, pod.get("spec") or {}
    total = len(spec.get("containers") or [])
    ready = restarts = 0
    last_restart = None
    reason = status.get("reason") or status.get("phase") or ""

    def note_restart(cs):
        nonlocal last_restart
        term = (cs.get("lastState") or {}).get("terminated")
        t = parse_time((term or {}).get("finishedAt"))
        if t is not None and (last_restart is None or t > last_restart):
            last_restart = t

    initializing = False
    init_specs = spec.get("initContainers") or []
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += cs.get("restartCount", 0)
        note_restart(cs)
        state = cs.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting")
        if term is not None and term.get("exitCode", 0) == 0:
            continue
        if term is not None:
            if term.get("reason"):
                reason = "Init:" + term["reason"]
            elif term.get("signal"):
                reason = f"Init:Signal:{term['signal']}"
            else:
                reason = f"Init:ExitCode:{term.get('exitCode', 0)}"
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    initialized = any(
        c.get("type") == "Initialized" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    if not initializing or initialized:
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += cs.get("restartCount", 0)
            note_restart(cs)
            state = cs.get("state") or {}
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif (state.get("terminated") or {}).get("reason"):
                reason = state["terminated"]["reason"]
            elif "terminated" in state:
                term = state["terminated"] or {}
                reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode', 0)}"
            elif cs.get("ready") and "running" in state:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if pod_ready(pod) else "NotReady"
    if _meta(pod).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif status.get("phase") not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return f"{ready}/{total}", reason, restarts, last_restart


def pod_ready(pod):
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def pod_view(pod):
    meta, spec, status = _meta(pod), pod.get("spec") or {}, pod.get("status") or {}
    specs = {c.get("name"): c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])}
    containers = [_container_view(cs, specs.get(cs.get("name"))) for cs in status.get("containerStatuses") or []]
    init = [_container_view(cs, specs.get(cs.get("name"))) for cs in status.get("initContainerStatuses") or []]
    ready_cell, status_cell, restarts, last_restart = pod_cells(pod)
    waiting = sorted({c["reason"] for c in containers + init if c["state"] == "waiting" and c["reason"]})
    owner = next(iter(meta.get("ownerReferences") or []), None)
    return dict(
        namespace=meta.get("namespace"),
        name=meta.get("name"),
        phase=status.get("phase"),
        status=status_cell,
        ready=pod_ready(pod),
        containers_ready=ready_cell,
        restarts=restarts,
        last_restart=iso(last_restart) if last_restart else None,
        node=spec.get("nodeName"),
        ip=status.get("podIP"),
        host_ip=status.get("hostIP"),
        nominated_node=status.get("nominatedNodeName"),
        readiness_gates=len(spec.get("readinessGates") or []),
        created=meta.get("creationTimestamp"),
        deleting=bool(meta.get("deletionTimestamp")),
        owner=f"{owner.get('kind')}/{owner.get('name')}" if owner else None,
        labels=meta.get("labels") or {},
        waiting_reasons=waiting,
        crashlooping="CrashLoopBackOff" in waiting,
        containers=containers,
        init_containers=init,
    )


# -- workloads ----------------------------------------------------------------------------


def _conditions(obj):
    return [
        dict(
            type=c.get("type"),
            status=c.get("status"),
            reason=c.get("reason"),
            message=c.get("message"),
            last_update=c.get("lastUpdateTime") or c.get("lastTransitionTime"),
        )
        for c in (obj.get("status") or {}).get("conditions") or []
    ]


def deployment_view(dep):
    meta, spec, st = _meta(dep), dep.get("spec") or {}, dep.get("status") or {}
    desired = spec.get("replicas", 1)
    conditions = _conditions(dep)
    by_type = {c["type"]: c for c in conditions}
    progressing = by_type.get("Progressing") or {}
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    available = st.get("availableReplicas", 0)
    return dict(
        namespace=meta.get("namespace"),
        name=meta.get("name"),
        desired=desired,
        current=st.get("replicas", 0),
        updated=st.get("updatedReplicas", 0),
        ready=st.get("readyReplicas", 0),
        available=available,
        unavailable=st.get("unavailableReplicas", 0),
        fully_available=available >= desired,
        rolled_out=(
            (st.get("observedGeneration") or 0) >= (meta.get("generation") or 0)
            and st.get("updatedReplicas", 0) == desired
            and st.get("replicas", 0) == desired
            and available == desired
        ),
        progress_deadline_exceeded=progressing.get("reason") == "ProgressDeadlineExceeded",
        paused=bool(spec.get("paused")),
        generation=meta.get("generation"),
        observed_generation=st.get("observedGeneration"),
        conditions=conditions,
        containers=[c.get("name") for c in pod_spec.get("containers") or []],
        images=[c.get("image") for c in pod_spec.get("containers") or []],
        selector=selector_string(spec.get("selector") or {}),
        created=meta.get("creationTimestamp"),
    )


def _metric_spec_name(m):
    kind = m.get("type")
    body = m.get(kind[0].lower() + kind[1:] if kind else "", {}) or {}
    if kind in ("Resource", "ContainerResource"):
        return body.get("name")
    return (body.get("metric") or {}).get("name")


def _target_text(target):
    if not target:
        return "<unknown>"
    if "averageUtilization" in target:
        return f"{target['averageUtilization']}%"
    return str(target.get("averageValue") or target.get("value") or "<unknown>")


def hpa_view(hpa):
    meta, spec, st = _meta(hpa), hpa.get("spec") or {}, hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    current = {}
    for m in st.get("currentMetrics") or []:
        current[(m.get("type"), _metric_spec_name(m))] = m
    metrics = []
    for m in spec.get("metrics") or []:
        kind, name = m.get("type"), _metric_spec_name(m)
        key = kind[0].lower() + kind[1:] if kind else ""
        target = ((m.get(key) or {}).get("target")) or {}
        cur = (((current.get((kind, name)) or {}).get(key)) or {}).get("current") or {}
        if "averageUtilization" in target:
            cur_text = f"{cur['averageUtilization']}%" if "averageUtilization" in cur else None
        else:
            cur_text = cur.get("averageValue") or cur.get("value")
        metrics.append(dict(type=kind, name=name, target=_target_text(target), current=cur_text))
    maximum = spec.get("maxReplicas", 0)
    current_replicas = st.get("currentReplicas", 0)
    conditions = _conditions(hpa)
    return dict(
        namespace=meta.get("namespace"),
        name=meta.get("name"),
        reference=f"{ref.get('kind')}/{ref.get('name')}",
        min_replicas=spec.get("minReplicas", 1),
        max_replicas=maximum,
        current_replicas=current_replicas,
        desired_replicas=st.get("desiredReplicas", 0),
        at_max=bool(maximum) and current_replicas >= maximum,
        metrics=metrics,
        targets=hpa_targets(metrics),
        conditions=conditions,
        last_scale_time=st.get("lastScaleTime"),
        created=meta.get("creationTimestamp"),
    )


def hpa_targets(metrics):
    """The TARGETS column of ``kubectl get hpa`` (1.32: ``cpu: 12%/70%``)."""
    parts = []
    for m in metrics:
        if m["type"] == "Resource":
            parts.append(f"{m['name']}: {m['current'] or '<unknown>'}/{m['target']}")
        else:
            parts.append(f"{m['current'] or '<unknown>'}/{m['target']}")
    return ", ".join(parts) or "<none>"


# -- nodes, endpoints, events, top -------------------------------------------------------


def node_view(node):
    meta, spec, st = _meta(node), node.get("spec") or {}, node.get("status") or {}
    conds = {c.get("type"): c for c in st.get("conditions") or []}
    ready_cond = conds.get("Ready")
    status = "Unknown" if ready_cond is None else ("Ready" if ready_cond.get("status") == "True" else "NotReady")
    if spec.get("unschedulable"):
        status += ",SchedulingDisabled"
    labels = meta.get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k)
    if labels.get("kubernetes.io/role"):
        roles.append(labels["kubernetes.io/role"])
    addrs = {}
    for a in st.get("addresses") or []:
        addrs.setdefault(a.get("type"), a.get("address"))
    info = st.get("nodeInfo") or {}
    problems = []
    for ctype, c in conds.items():
        bad = c.get("status") != "True" if ctype == "Ready" else c.get("status") == "True"
        if bad:
            problems.append(dict(type=ctype, status=c.get("status"), reason=c.get("reason"), message=c.get("message")))

    def res(which):
        d = st.get(which) or {}
        return dict(cpu=d.get("cpu"), memory=d.get("memory"), pods=d.get("pods"))

    return dict(
        name=meta.get("name"),
        status=status,
        ready=status.startswith("Ready"),
        unschedulable=bool(spec.get("unschedulable")),
        roles=roles,
        conditions={t: c.get("status") for t, c in conds.items()},
        problems=problems,
        capacity=res("capacity"),
        allocatable=res("allocatable"),
        internal_ip=addrs.get("InternalIP"),
        external_ip=addrs.get("ExternalIP"),
        kubelet_version=info.get("kubeletVersion"),
        os_image=info.get("osImage"),
        kernel_version=info.get("kernelVersion"),
        container_runtime=info.get("containerRuntimeVersion"),
        zone=labels.get("topology.kubernetes.io/zone"),
        created=meta.get("creationTimestamp"),
    )


def configmap_view(cm):
    meta = _meta(cm)
    return dict(namespace=meta.get("namespace"), name=meta.get("name"), data=dict(cm.get("data") or {}))


def endpoints_view(ep):
    meta = _meta(ep)
    ready, not_ready = [], []
    for ss in ep.get("subsets") or []:
        ports = ss.get("ports") or [{}]
        for bucket, addrs in ((ready, ss.get("addresses")), (not_ready, ss.get("notReadyAddresses"))):
            for a in addrs or []:
                for p in ports:
                    bucket.append(f"{a.get('ip')}:{p['port']}" if "port" in p else a.get("ip"))
    return dict(
        namespace=meta.get("namespace"),
        name=meta.get("name"),
        ready_addresses=ready,
        not_ready_addresses=not_ready,
        ready=len(ready),
        not_ready=len(not_ready),
        created=meta.get("creationTimestamp"),
    )


def endpoints_text(addresses, limit=3):
    """The ENDPOINTS column of ``kubectl get endpoints``."""
    if not addresses:
        return "<none>"
    more = len(addresses) - limit
    return ",".join(addresses[:limit]) + (f" + {more} more..." if more > 0 else "")


def event_time(ev):
    series = ev.get("series") or {}
    for ts in (ev.get("lastTimestamp"), series.get("lastObservedTime"), ev.get("eventTime")):
        t = parse_time(ts)
        if t is not None:
            return t
    return parse_time(_meta(ev).get("creationTimestamp"))


def event_view(ev):
    io = ev.get("involvedObject") or {}
    src = ev.get("source") or {}
    last = event_time(ev)
    return dict(
        namespace=_meta(ev).get("namespace"),
        type=ev.get("type"),
        reason=ev.get("reason"),
        object=f"{io.get('kind')}/{io.get('name')}",
        message=ev.get("message"),
        count=ev.get("count") or (ev.get("series") or {}).get("count") or 1,
        first_seen=ev.get("firstTimestamp") or ev.get("eventTime"),
        last_seen=iso(last) if last is not None else None,
        source=", ".join(v for v in (src.get("component") or ev.get("reportingComponent"), src.get("host")) if v),
    )


def pod_usage_view(pm):
    meta = _meta(pm)
    cpu = sum(millicores((c.get("usage") or {}).get("cpu")) or 0 for c in pm.get("containers") or [])
    mem = sum(mem_bytes((c.get("usage") or {}).get("memory")) or 0 for c in pm.get("containers") or [])
    return dict(namespace=meta.get("namespace"), name=meta.get("name"), cpu_millicores=cpu, memory_bytes=mem)


def node_usage_view(nm, allocatable):
    """``kubectl top node``: usage and its share of the node's allocatable resources."""
    meta, usage = _meta(nm), nm.get("usage") or {}
    cpu, mem = millicores(usage.get("cpu")) or 0, mem_bytes(usage.get("memory")) or 0
    alloc = allocatable.get(meta.get("name")) or {}
    alloc_cpu, alloc_mem = millicores(alloc.get("cpu")), mem_bytes(alloc.get("memory"))
    return dict(
        name=meta.get("name"),
        cpu_millicores=cpu,
        memory_bytes=mem,
        cpu_percent=int(cpu * 100 / alloc_cpu) if alloc_cpu else None,
        memory_percent=int(mem * 100 / alloc_mem) if alloc_mem else None,
    )


# -- the health summary ------------------------------------------------------------------


def health_summary(snap):
    """What triage needs of one cluster's snapshot, names included, plus one line for people."""
    nodes, pods = snap.get("nodes") or [], snap.get("pods") or []
    deps, hpas, eps = snap.get("deployments") or [], snap.get("hpas") or [], snap.get("endpoints") or []
    live = [p for p in pods if p["phase"] != "Succeeded"]
    crash = [f"{p['namespace']}/{p['name']}" for p in pods if p["crashlooping"]]
    not_ready = [f"{p['namespace']}/{p['name']}" for p in live if not p["ready"]]
    pending = [f"{p['namespace']}/{p['name']}" for p in pods if p["phase"] == "Pending"]
    dep_bad = [d for d in deps if not d["fully_available"]]
    problems = []
    for n in nodes:
        if not n["ready"]:
            problems.append(f"node {n['name']} is {n['status']}")
    for d in dep_bad:
        why = " (ProgressDeadlineExceeded)" if d["progress_deadline_exceeded"] else ""
        problems.append(f"deployment {d['namespace']}/{d['name']}: {d['available']}/{d['desired']} available{why}")
    for p in live:
        if p["crashlooping"]:
            problems.append(f"pod {p['namespace']}/{p['name']}: CrashLoopBackOff, {p['restarts']} restarts")
        elif not p["ready"]:
            problems.append(f"pod {p['namespace']}/{p['name']}: {p['status']}, not ready")
    for h in hpas:
        if h["at_max"]:
            problems.append(f"hpa {h['namespace']}/{h['name']} is at its maximum of {h['max_replicas']} replicas")
    metrics = snap.get("metrics") or {}
    summary = dict(
        nodes=len(nodes),
        nodes_ready=sum(1 for n in nodes if n["ready"]),
        nodes_not_ready=[n["name"] for n in nodes if not n["ready"]],
        pods=len(pods),
        pods_ready=sum(1 for p in live if p["ready"]),
        pods_not_ready=not_ready,
        pods_pending=pending,
        crashlooping=crash,
        restarts=sum(p["restarts"] for p in pods),
        deployments=len(deps),
        deployments_available=len(deps) - len(dep_bad),
        deployments_not_available=[f"{d['namespace']}/{d['name']}" for d in dep_bad],
        hpas=len(hpas),
        hpas_at_max=[f"{h['namespace']}/{h['name']}" for h in hpas if h["at_max"]],
        endpoints_without_ready=[f"{e['namespace']}/{e['name']}" for e in eps if not e["ready"]],
        warning_events=snap.get("warning_events_total", len(snap.get("events") or [])),
        metrics_available=None if snap.get("metrics") is None else bool(metrics.get("available")),
        problems=problems,
        healthy=not problems,
    )
    read = {kind for kind in KINDS if snap.get(kind) is not None}
    summary["line"] = summary_line(snap.get("name", ""), summary, read)
    return summary


def summary_line(name, s, read=KINDS):
    """One line for people; only what was read is mentioned."""
    parts = []
    if "nodes" in read:
        parts.append(f"{s['nodes_ready']}/{s['nodes']} nodes ready")
    if "pods" in read:
        parts.append(f"{s['pods_ready']}/{s['pods']} pods ready")
    if "deployments" in read:
        parts.append(f"{s['deployments_available']}/{s['deployments']} deployments available")
    if s["crashlooping"]:
        parts.append(f"{len(s['crashlooping'])} crash-looping ({', '.join(s['crashlooping'][:3])})")
    if s["hpas_at_max"]:
        parts.append(f"{len(s['hpas_at_max'])} HPA(s) at max ({', '.join(s['hpas_at_max'][:3])})")
    if "events" in read:
        parts.append(f"{s['warning_events']} warning events")
    if "metrics" in read and not s["metrics_available"]:
        parts.append("no metrics API")
    return f"{name}: " + (", ".join(parts) or "nothing read")


# -- text tables like kubectl get -o wide -------------------------------------------------


def format_table(headers, rows):
    """Columns as kubectl's tabwriter aligns them: width of the widest cell + 3, at least 6; the last unpadded."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(6, max(len(r[i]) for r in cells) + 3) for i in range(len(headers))]
    lines = []
    for r in cells:
        lines.append("".join(c.ljust(widths[i]) for i, c in enumerate(r[:-1])) + r[-1])
    return "\n".join(lines)


def pods_table(pods, now, all_namespaces=True):
    headers = ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    rows = []
    for p in pods:
        restarts = str(p["restarts"])
        last = parse_time(p.get("last_restart"))
        if p["restarts"] and last is not None:
            restarts = f"{p['restarts']} ({human_duration(now - last)} ago)"
        row = [
            p["name"],
            p["containers_ready"],
            p["status"],
            restarts,
            age(p["created"], now),
            p["ip"] or "<none>",
            p["node"] or "<none>",
            p["nominated_node"] or "<none>",
            str(p["readiness_gates"]) if p["readiness_gates"] else "<none>",
        ]
        rows.append(([p["namespace"]] if all_namespaces else []) + row)
    return format_table((["NAMESPACE"] if all_namespaces else []) + headers, rows)


def deployments_table(deps, now):
    headers = ["NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    rows = [
        [
            d["namespace"],
            d["name"],
            f"{d['ready']}/{d['desired']}",
            d["updated"],
            d["available"],
            age(d["created"], now),
            ",".join(d["containers"]),
            ",".join(d["images"]),
            d["selector"],
        ]
        for d in deps
    ]
    return format_table(headers, rows)


def hpas_table(hpas, now):
    headers = ["NAMESPACE", "NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    rows = [
        [
            h["namespace"],
            h["name"],
            h["reference"],
            h["targets"],
            h["min_replicas"],
            h["max_replicas"],
            h["current_replicas"],
            age(h["created"], now),
        ]
        for h in hpas
    ]
    return format_table(headers, rows)


def nodes_table(nodes, now):
    headers = ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE"]
    headers += ["KERNEL-VERSION", "CONTAINER-RUNTIME"]
    rows = [
        [
            n["name"],
            n["status"],
            ",".join(n["roles"]) or "<none>",
            age(n["created"], now),
            n["kubelet_version"] or "",
            n["internal_ip"] or "<none>",
            n["external_ip"] or "<none>",
            n["os_image"] or "",
            n["kernel_version"] or "",
            n["container_runtime"] or "",
        ]
        for n in nodes
    ]
    return format_table(headers, rows)


def endpoints_table(eps, now):
    rows = [[e["namespace"], e["name"], endpoints_text(e["ready_addresses"]), age(e["created"], now)] for e in eps]
    return format_table(["NAMESPACE", "NAME", "ENDPOINTS", "AGE"], rows)


def events_table(events, now):
    rows = [
        [e["namespace"], age(e["last_seen"], now), e["type"], e["reason"], e["object"].lower(), e["message"]]
        for e in events
    ]
    return format_table(["NAMESPACE", "LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], rows)


def top_nodes_table(nodes):
    rows = [
        [
            n["name"],
            f"{n['cpu_millicores']}m",
            "<unknown>" if n["cpu_percent"] is None else f"{n['cpu_percent']}%",
            f"{n['memory_bytes'] // 2**20}Mi",
            "<unknown>" if n["memory_percent"] is None else f"{n['memory_percent']}%",
        ]
        for n in nodes
    ]
    return format_table(["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"], rows)


def top_pods_table(pods):
    rows = [[p["namespace"], p["name"], f"{p['cpu_millicores']}m", f"{p['memory_bytes'] // 2**20}Mi"] for p in pods]
    return format_table(["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"], rows)


def snapshot_text(clusters, now):
    """The incident record's human-readable snapshot: per cluster, the tables of ``kubectl get -o wide``."""
    out = [f"# Cluster snapshot taken {iso(now)}", ""]
    for snap in clusters:
        out.append(f"## Cluster {snap['name']} ({snap.get('server') or '?'})")
        if snap.get("error"):
            out += [f"ERROR: {snap['error']}", ""]
        s = snap.get("summary")
        if s:
            out.append(s["line"])
            out += [f"  - {p}" for p in s["problems"]]
        out.append("")
        sections = [
            ("kubectl get nodes -o wide", snap.get("nodes"), nodes_table),
            ("kubectl get pods --all-namespaces -o wide", snap.get("pods"), pods_table),
            ("kubectl get deployments --all-namespaces -o wide", snap.get("deployments"), deployments_table),
            ("kubectl get hpa --all-namespaces", snap.get("hpas"), hpas_table),
            ("kubectl get endpoints --all-namespaces", snap.get("endpoints"), endpoints_table),
            (
                "recent Warning events (kubectl get events --field-selector type=Warning)",
                snap.get("events"),
                events_table,
            ),
        ]
        for title, items, table in sections:
            if items is None:
                continue
            out.append(f"### {title}")
            out.append(table(items, now) if items else "No resources found.")
            out.append("")
        metrics = snap.get("metrics")
        if metrics is not None:
            if metrics.get("available"):
                out += ["### kubectl top nodes", top_nodes_table(metrics.get("nodes") or []), ""]
                out += ["### kubectl top pods --all-namespaces", top_pods_table(metrics.get("pods") or []), ""]
            else:
                out += ["### kubectl top", f"NOTE: {metrics.get('note')}", ""]
    return "\n".join(out).rstrip() + "\n"


# -- reading a cluster --------------------------------------------------------------------


# Where each kind is listed: (group/version prefix, plural, what to call it in messages).
RESOURCES = {
    "nodes": ("/api/v1", "nodes", "nodes"),
    "pods": ("/api/v1", "pods", "pods"),
    "deployments": ("/apis/apps/v1", "deployments", "deployments"),
    "hpas": ("/apis/autoscaling/v2", "horizontalpodautoscalers", "horizontal pod autoscalers"),
    "endpoints": ("/api/v1", "endpoints", "endpoints"),
    "events": ("/api/v1", "events", "warning events"),
    "configmaps": ("/api/v1", "configmaps", "configmaps"),
}


def resource_path(prefix, plural, namespace=None):
    return f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"


def list_all(clients, what, path, timeout=None, **query):
    """Every item of a list, page by page (``limit``/``continue``), as plain dicts."""
    items, token = [], None
    while True:
        page = k8s.get_json(clients, what, path, dict(query, limit=PAGE_SIZE, **{"continue": token}), timeout)
        items += page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


def list_kind(clients, kind, namespaces, timeout, **query):
    """The items of one kind, in all namespaces or in each of ``namespaces``."""
    prefix, plural, label = RESOURCES[kind]
    if not namespaces or kind == "nodes":
        return list_all(clients, f"list {label}", resource_path(prefix, plural), timeout, **query)
    items = []
    for ns in namespaces:
        what = f"list {label} in namespace {ns}"
        items += list_all(clients, what, resource_path(prefix, plural, ns), timeout, **query)
    return items


def _raw_json(clients, path, timeout):
    """One GET's JSON; API errors pass through as they are (for callers that tell 404 from 403)."""
    return json.loads(k8s.get_bytes(clients, path, timeout=timeout))


def _status_message(exc):
    try:
        return json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        return exc.reason


def _failure(exc, clients, what):
    failure = ModuleFailure(k8s.explain(exc, clients, what), cluster=clients.label)
    failure.unreachable = not isinstance(exc, k8s.ApiException)
    failure.timed_out = k8s.is_timeout(exc)
    return failure


def fetch_metrics(clients, namespaces, timeout):
    """(node metrics, pod metrics, note): without metrics the note says why (the metrics API is not served)."""
    what = "read the metrics API (metrics.k8s.io)"
    prefix = "/apis/" + "/".join(METRICS)
    try:
        nodes = _raw_json(clients, f"{prefix}/nodes", timeout).get("items") or []
        pods = []
        for ns in namespaces or [None]:
            pods += _raw_json(clients, resource_path(prefix, "pods", ns), timeout).get("items") or []
        return nodes, pods, None
    except k8s.api_failures() as exc:
        if not isinstance(exc, k8s.ApiException):
            raise _failure(exc, clients, what) from None
        if exc.status in (404, 503):
            state = "is not served (not installed)" if exc.status == 404 else "is registered but not available"
            note = (
                f"{clients.label}: the metrics API (metrics.k8s.io) {state}: HTTP {exc.status} "
                f"{_status_message(exc)}; no `kubectl top` figures: check metrics-server in kube-system"
            )
        else:
            note = f"no `kubectl top` figures: {k8s.explain(exc, clients, what)}"
        return None, None, note


def missing_namespaces(clients, namespaces, timeout):
    """The namespaces that do not exist (a list in a missing namespace is just empty, so it is asked)."""
    missing = []
    for ns in namespaces:
        try:
            _raw_json(clients, f"/api/v1/namespaces/{ns}", timeout)
        except k8s.api_failures() as exc:
            if isinstance(exc, k8s.ApiException) and exc.status == 404:
                missing.append(ns)
            elif not (isinstance(exc, k8s.ApiException) and exc.status == 403):  # a namespaced viewer cannot tell
                raise _failure(exc, clients, f"read namespace {ns}") from None
    return missing


def fetch(clients, kind, namespaces, timeout):
    """The raw items of one kind (or, for ``metrics``, a tuple) from one cluster."""
    if kind == "metrics":
        return fetch_metrics(clients, namespaces, timeout)
    if kind == "events":
        return list_kind(clients, kind, namespaces, timeout, fieldSelector="type=Warning")
    return list_kind(clients, kind, namespaces, timeout)


def build_snapshot(name, server, raw, now, events_since, max_events):
    """One cluster's snapshot from the raw items of each kind (kinds absent from ``raw`` stay None)."""
    snap = dict(name=name, server=server, reachable=True, error=None)

    def sort(items, view, key=lambda v: (v.get("namespace") or "", v["name"])):
        return None if items is None else sorted((view(i) for i in items), key=key)

    snap["nodes"] = sort(raw.get("nodes"), node_view, key=lambda v: v["name"])
    snap["pods"] = sort(raw.get("pods"), pod_view)
    snap["deployments"] = sort(raw.get("deployments"), deployment_view)
    snap["hpas"] = sort(raw.get("hpas"), hpa_view)
    snap["endpoints"] = sort(raw.get("endpoints"), endpoints_view)
    snap["configmaps"] = sort(raw.get("configmaps"), configmap_view)
    if raw.get("events") is not None:
        cutoff = now - events_since
        recent = [e for e in raw["events"] if (event_time(e) or now) >= cutoff]
        recent.sort(key=lambda e: event_time(e) or now, reverse=True)
        snap["warning_events_total"] = sum(e.get("count") or 1 for e in recent)
        snap["events"] = [event_view(e) for e in recent[:max_events]]
    else:
        snap["events"] = None
    if "metrics" in raw:
        node_m, pod_m, note = raw["metrics"]
        if note:
            snap["metrics"] = dict(available=False, note=note, nodes=[], pods=[])
        else:
            alloc = {
                n["metadata"]["name"]: (n.get("status") or {}).get("allocatable") or {} for n in raw.get("nodes") or []
            }
            snap["metrics"] = dict(
                available=True,
                note=None,
                nodes=sorted((node_usage_view(m, alloc) for m in node_m), key=lambda v: v["name"]),
                pods=sorted((pod_usage_view(m) for m in pod_m), key=lambda v: (v["namespace"], v["name"])),
            )
    else:
        snap["metrics"] = None
    snap["summary"] = health_summary(snap)
    return snap
