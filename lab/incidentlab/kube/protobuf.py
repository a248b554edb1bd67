"""Reading the protobuf bodies kubectl sends for built-in kinds.

kubectl's typed clients (``kubectl drain``'s eviction, ``kubectl auth can-i``/``whoami``,
``kubectl autoscale``, ``kubectl create namespace|configmap|secret|deployment|job|pdb``)
send ``application/vnd.kubernetes.protobuf``: the magic ``k8s\\0``, then a
``runtime.Unknown`` (typeMeta, raw) whose ``raw`` is the object in the field numbers of
k8s.io/api's generated.proto. This module decodes those kinds into the JSON form the rest of
the emulator works with, from a schema per message (field number -> JSON name and type).

Go's generated code writes every non-pointer field, empty or not, so empty values are
dropped, except for pointer fields where a zero means something (``replicas: 0``,
``gracePeriodSeconds: 0``: marked ``keep``). A field this schema does not know fails the
request with 415 instead of being dropped without a word, unless its value is empty.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    pass


# -- the wire format ---------------------------------------------------------------


def _varint(b: bytes, i: int) -> tuple[int, int]:
    x = shift = 0
    while True:
        if i >= len(b):
            raise ProtobufError("truncated varint")
        c = b[i]
        i += 1
        x |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return x, i


def fields(b: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) of each field: an int for varints, bytes for length-delimited ones."""
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _varint(b, i)
            out.append((num, val))
        elif wire == 2:
            n, i = _varint(b, i)
            if i + n > len(b):
                raise ProtobufError("truncated field")
            out.append((num, b[i : i + n]))
            i += n
        elif wire == 1:
            out.append((num, int.from_bytes(b[i : i + 8], "little")))
            i += 8
        elif wire == 5:
            out.append((num, int.from_bytes(b[i : i + 4], "little")))
            i += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
    return out


# -- schemas -----------------------------------------------------------------------
# A schema maps a field number to (JSON name, type[, "keep"]). Types: "string", "int", "bool",
# "bytes" (base64 in JSON), "time", "quantity", "intorstr", another schema (a message),
# ("repeated", type) and ("map", value type) (map keys are strings).


def _s(**spec: tuple) -> dict[int, tuple]:
    return {num: (name, *rest) for name, (num, *rest) in spec.items()}


def R(t: object) -> tuple:
    return ("repeated", t)


def M(t: object) -> tuple:
    return ("map", t)


OWNER_REF = _s(
    kind=(1, "string"),
    name=(3, "string"),
    uid=(4, "string"),
    apiVersion=(5, "string"),
    controller=(6, "bool", "keep"),
    blockOwnerDeletion=(7, "bool", "keep"),
)
OBJECT_META = _s(
    name=(1, "string"),
    generateName=(2, "string"),
    namespace=(3, "string"),
    selfLink=(4, "string"),
    uid=(5, "string"),
    resourceVersion=(6, "string"),
    generation=(7, "int"),
    creationTimestamp=(8, "time"),
    deletionTimestamp=(9, "time"),
    deletionGracePeriodSeconds=(10, "int", "keep"),
    labels=(11, M("string")),
    annotations=(12, M("string")),
    ownerReferences=(13, R(OWNER_REF)),
    finalizers=(14, R("string")),
)
LABEL_SELECTOR = _s(
    matchLabels=(1, M("string")),
    matchExpressions=(2, R(_s(key=(1, "string"), operator=(2, "string"), values=(3, R("string"))))),
)
PRECONDITIONS = _s(uid=(1, "string"), resourceVersion=(2, "string"))
DELETE_OPTIONS = _s(
    gracePeriodSeconds=(1, "int", "keep"),
    preconditions=(2, PRECONDITIONS),
    orphanDependents=(3, "bool", "keep"),
    propagationPolicy=(4, "string"),
    dryRun=(5, R("string")),
)
KEY_REF = _s(name=(1, "string"), key=(2, "string"), optional=(3, "bool", "keep"))
FIELD_REF = _s(apiVersion=(1, "string"), fieldPath=(2, "string"))
ENV_VAR = _s(
    name=(1, "string"),
    value=(2, "string"),
    valueFrom=(
        3,
        _s(
            fieldRef=(1, FIELD_REF),
            configMapKeyRef=(3, _s(localObjectReference=(1, {}), key=(2, "string"), optional=(3, "bool", "keep"))),
            secretKeyRef=(4, _s(localObjectReference=(1, {}), key=(2, "string"), optional=(3, "bool", "keep"))),
        ),
    ),
)
CONTAINER_PORT = _s(
    name=(1, "string"), hostPort=(2, "int"), containerPort=(3, "int"), protocol=(4, "string"), hostIP=(5, "string")
)
RESOURCES = _s(limits=(1, M("quantity")), requests=(2, M("quantity")))
CONTAINER = _s(
    name=(1, "string"),
    image=(2, "string"),
    command=(3, R("string")),
    args=(4, R("string")),
    workingDir=(5, "string"),
    ports=(6, R(CONTAINER_PORT)),
    env=(7, R(ENV_VAR)),
    resources=(8, RESOURCES),
    terminationMessagePath=(13, "string"),
    imagePullPolicy=(14, "string"),
    stdin=(16, "bool"),
    stdinOnce=(17, "bool"),
    tty=(18, "bool"),
    terminationMessagePolicy=(20, "string"),
    restartPolicy=(24, "string"),
)
POD_SPEC = _s(
    containers=(2, R(CONTAINER)),
    restartPolicy=(3, "string"),
    terminationGracePeriodSeconds=(4, "int", "keep"),
    activeDeadlineSeconds=(5, "int", "keep"),
    dnsPolicy=(6, "string"),
    nodeSelector=(7, M("string")),
    serviceAccountName=(8, "string"),
    serviceAccount=(9, "string"),
    nodeName=(10, "string"),
    hostNetwork=(11, "bool"),
    hostPID=(12, "bool"),
    hostIPC=(13, "bool"),
    hostname=(16, "string"),
    subdomain=(17, "string"),
    schedulerName=(19, "string"),
    priorityClassName=(24, "string"),
)
POD_TEMPLATE = _s(metadata=(1, OBJECT_META), spec=(2, POD_SPEC))
DEPLOYMENT_SPEC = _s(
    replicas=(1, "int", "keep"),
    selector=(2, LABEL_SELECTOR),
    template=(3, POD_TEMPLATE),
    strategy=(4, _s(type=(1, "string"))),
    minReadySeconds=(5, "int"),
    revisionHistoryLimit=(6, "int", "keep"),
    paused=(7, "bool"),
    progressDeadlineSeconds=(9, "int", "keep"),
)
JOB_SPEC = _s(
    parallelism=(1, "int", "keep"),
    completions=(2, "int", "keep"),
    activeDeadlineSeconds=(3, "int", "keep"),
    selector=(4, LABEL_SELECTOR),
    manualSelector=(5, "bool", "keep"),
    template=(6, POD_TEMPLATE),
    backoffLimit=(7, "int", "keep"),
    ttlSecondsAfterFinished=(8, "int", "keep"),
    completionMode=(9, "string"),
    suspend=(10, "bool", "keep"),
)
PDB_SPEC = _s(
    minAvailable=(1, "intorstr"),
    selector=(2, LABEL_SELECTOR),
    maxUnavailable=(3, "intorstr"),
    unhealthyPodEvictionPolicy=(4, "string"),
)
HPA_V1_SPEC = _s(
    scaleTargetRef=(1, _s(kind=(1, "string"), name=(2, "string"), apiVersion=(3, "string"))),
    minReplicas=(2, "int", "keep"),
    maxReplicas=(3, "int"),
    targetCPUUtilizationPercentage=(4, "int", "keep"),
)
RESOURCE_ATTRIBUTES = _s(
    namespace=(1, "string"),
    verb=(2, "string"),
    group=(3, "string"),
    version=(4, "string"),
    resource=(5, "string"),
    subresource=(6, "string"),
    name=(7, "string"),
)
NON_RESOURCE_ATTRIBUTES = _s(path=(1, "string"), verb=(2, "string"))
SSAR_SPEC = _s(resourceAttributes=(1, RESOURCE_ATTRIBUTES), nonResourceAttributes=(2, NON_RESOURCE_ATTRIBUTES))
SAR_SPEC = _s(
    resourceAttributes=(1, RESOURCE_ATTRIBUTES),
    nonResourceAttributes=(2, NON_RESOURCE_ATTRIBUTES),
    user=(3, "string"),
    groups=(4, R("string")),
    uid=(6, "string"),
)


KINDS: dict[tuple[str, str], dict[int, tuple]] = {
    ("v1", "Namespace"): _s(metadata=(1, OBJECT_META), spec=(2, _s(finalizers=(1, R("string")))), status=(3, None)),
    ("v1", "ConfigMap"): _s(
        metadata=(1, OBJECT_META), data=(2, M("string")), binaryData=(3, M("bytes")), immutable=(4, "bool", "keep")
    ),
    ("v1", "Secret"): _s(
        metadata=(1, OBJECT_META),
        data=(2, M("bytes")),
        type=(3, "string"),
        stringData=(4, M("string")),
        immutable=(5, "bool", "keep"),
    ),
    ("apps/v1", "Deployment"): _s(metadata=(1, OBJECT_META), spec=(2, DEPLOYMENT_SPEC), status=(3, None)),
    ("batch/v1", "Job"): _s(metadata=(1, OBJECT_META), spec=(2, JOB_SPEC), status=(3, None)),
    ("policy/v1", "PodDisruptionBudget"): _s(metadata=(1, OBJECT_META), spec=(2, PDB_SPEC), status=(3, None)),
    ("policy/v1", "Eviction"): _s(metadata=(1, OBJECT_META), deleteOptions=(2, DELETE_OPTIONS)),
    ("autoscaling/v1", "HorizontalPodAutoscaler"): _s(
        metadata=(1, OBJECT_META), spec=(2, HPA_V1_SPEC), status=(3, None)
    ),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): _s(
        metadata=(1, OBJECT_META), spec=(2, SSAR_SPEC), status=(3, None)
    ),
    ("authorization.k8s.io/v1", "SubjectAccessReview"): _s(
        metadata=(1, OBJECT_META), spec=(2, SAR_SPEC), status=(3, None)
    ),
    ("authentication.k8s.io/v1", "SelfSubjectReview"): _s(metadata=(1, OBJECT_META), status=(2, None)),
    ("meta.k8s.io/v1", "DeleteOptions"): DELETE_OPTIONS,
    ("v1", "DeleteOptions"): DELETE_OPTIONS,
}


# -- decoding ------------------------------------------------------------------------


def _empty(v: object) -> bool:
    return v in (0, b"", "", False) or v == {} or v == []


def _scalar(t: str, v: int | bytes, where: str) -> object:
    if t == "int":
        if not isinstance(v, int):
            raise ProtobufError(f"{where}: expected an integer")
        return v - (1 << 64) if v >= 1 << 63 else v
    if t == "bool":
        return bool(v)
    if not isinstance(v, bytes):
        raise ProtobufError(f"{where}: expected a length-delimited value")
    if t == "string":
        return v.decode()
    if t == "bytes":
        return base64.b64encode(v).decode()
    if t == "quantity":
        return dict(_message(_s(string=(1, "string")), v, where)).get("string", "")
    if t == "time":
        secs = dict(fields(v)).get(1, 0)
        return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if secs else None
    if t == "intorstr":
        f = dict(fields(v))
        return f.get(3, b"").decode() if f.get(1) == 1 else _scalar("int", f.get(2, 0), where)
    raise ProtobufError(f"{where}: unknown type {t}")


def _value(t: object, v: int | bytes, where: str) -> object:
    if isinstance(t, dict):
        if not isinstance(v, bytes):
            raise ProtobufError(f"{where}: expected a message")
        return _message(t, v, where)
    return _scalar(t, v, where)  # type: ignore[arg-type]


def _message(schema: dict[int, tuple], b: bytes, where: str) -> dict:
    out: dict = {}
    for num, v in fields(b):
        spec = schema.get(num)
        if spec is None:
            if _empty(v):
                continue
            raise ProtobufError(f"{where}: field {num} is not understood by the lab's API")
        name, t, *flags = spec
        path = f"{where}.{name}"
        if t is None:  # a part the server computes itself (status): ignored
            continue
        if isinstance(t, tuple) and t[0] == "repeated":
            out.setdefault(name, []).append(_value(t[1], v, path))
            continue
        if isinstance(t, tuple) and t[0] == "map":
            if not isinstance(v, bytes):
                raise ProtobufError(f"{path}: expected a map entry")
            entry = dict(fields(v))
            key = entry.get(1, b"")
            key = key.decode() if isinstance(key, bytes) else str(key)
            out.setdefault(name, {})[key] = _value(t[1], entry.get(2, b"" if t[1] != "int" else 0), path)
            continue
        if name == "localObjectReference":  # an embedded struct whose fields are inlined in JSON
            out.update(_message(_s(name=(1, "string")), v, path) if isinstance(v, bytes) else {})
            continue
        val = _value(t, v, path)
        if val is None or (_empty(val) and "keep" not in flags):
            continue
        out[name] = val
    return out


def decode(raw: bytes) -> dict:
    """The JSON form of a protobuf-encoded object; ProtobufError when it cannot be read."""
    if not raw.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf prefix")
    unknown = dict(fields(raw[len(MAGIC) :]))
    type_meta = dict(fields(unknown.get(1, b""))) if isinstance(unknown.get(1), bytes) else {}
    api_version = (type_meta.get(1) or b"").decode()
    kind = (type_meta.get(2) or b"").decode()
    schema = KINDS.get((api_version, kind))
    if schema is None:
        raise ProtobufError(f"{kind or 'an object'} ({api_version or 'no apiVersion'}) is not read as protobuf here")
    body = unknown.get(2, b"")
    obj = _message(schema, body if isinstance(body, bytes) else b"", kind)
    if kind != "DeleteOptions":
        obj = {"apiVersion": api_version, "kind": kind, **obj}
    return obj
