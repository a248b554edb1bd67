# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes access for the collection's modules: the official client only.

One cluster is described by the options of the ``incident.response.kube_auth`` doc
fragment (kubeconfig + context, or host + token, or in-cluster). Modules that act on
several clusters (the runbook's regions) take a list of such descriptions plus a
``name`` each. Clients are cached per configuration, so the modules' worker threads
share one connection pool per cluster. API errors become :class:`ModuleFailure`
messages that say what to check.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure, timed_out_text

# The modules send requests by path through ApiClient.param_serialize/call_api, which the client
# has from version 37 on (its regenerated ApiClient); older clients would fail with an AttributeError.
MIN_KUBERNETES = (37, 0)


def kubernetes_problem(version, has_param_serialize=True):
    """Why the installed ``kubernetes`` client cannot serve these modules, or None when it can."""
    wanted = f"kubernetes >= {MIN_KUBERNETES[0]} is required"
    match = re.match(r"\s*(\d+)\.(\d+)", str(version or ""))
    if match and tuple(int(x) for x in match.groups()) < MIN_KUBERNETES:
        return f"{wanted}, found {version}"
    if not has_param_serialize:
        return f"{wanted}, found {version or 'an unknown version'} without ApiClient.param_serialize"
    return None


# The client is imported on first use (load_kubernetes): it costs 0.15-0.25 s, and a module with other work to do
# first starts that work meanwhile (triage_probe's HTTP and SQL probes run while its cluster probe imports it).
HAS_K8S = None  # None until load_kubernetes() tried
K8S_IMPORT_ERROR = None
KUBERNETES_VERSION = None
K8S_PROBLEM = None
kubernetes = kclient = kconfig = None


class NotLoaded(Exception):
    """Stands for the client's exception classes until load_kubernetes() imported them: nothing raises it, so an
    ``isinstance`` or an ``except`` on it before the import matches nothing."""


# The client's exceptions, and urllib3's (its transport) that the modules tell apart.
ApiException = ConfigException = HTTPError = TimeoutError_ = NewConnectionError = NotLoaded
_LOAD_LOCK = threading.Lock()


def load_kubernetes():
    """Import the kubernetes client, once per process; True when it is importable (see kubernetes_failure)."""
    global HAS_K8S, K8S_IMPORT_ERROR, KUBERNETES_VERSION, K8S_PROBLEM
    global kubernetes, kclient, kconfig, ApiException, ConfigException, HTTPError, TimeoutError_, NewConnectionError
    with _LOAD_LOCK:
        if HAS_K8S is not None:
            return HAS_K8S
        try:
            import kubernetes
            from kubernetes import client as kclient
            from kubernetes import config as kconfig
            from kubernetes.client.rest import ApiException
            from kubernetes.config.config_exception import ConfigException
            from urllib3.exceptions import HTTPError, NewConnectionError
            from urllib3.exceptions import TimeoutError as TimeoutError_
        except ImportError:
            K8S_IMPORT_ERROR = traceback.format_exc()
            HAS_K8S = False
            return False
        KUBERNETES_VERSION = getattr(kubernetes, "__version__", None)
        K8S_PROBLEM = kubernetes_problem(KUBERNETES_VERSION, hasattr(kclient.ApiClient, "param_serialize"))
        HAS_K8S = True
        return True


def kubernetes_failure():
    """(message, traceback) when no usable ``kubernetes`` client can be imported, else None."""
    if not load_kubernetes():
        return missing_required_lib(f"kubernetes >= {MIN_KUBERNETES[0]}"), K8S_IMPORT_ERROR
    if K8S_PROBLEM:
        return (
            f"{K8S_PROBLEM} (Python {sys.executable}); install a newer client: "
            f"pip install 'kubernetes>={MIN_KUBERNETES[0]}'",
            None,
        )
    return None


AUTH_KEYS = ("kubeconfig", "context", "host", "api_key", "ca_cert", "validate_certs", "in_cluster")


def auth_argument_spec():
    """Options of the ``incident.response.kube_auth`` doc fragment."""
    return dict(
        kubeconfig=dict(type="path", fallback=(_env, ["K8S_AUTH_KUBECONFIG", "KUBECONFIG"])),
        context=dict(type="str", fallback=(_env, ["K8S_AUTH_CONTEXT"])),
        host=dict(type="str", fallback=(_env, ["K8S_AUTH_HOST"])),
        api_key=dict(type="str", no_log=True, fallback=(_env, ["K8S_AUTH_API_KEY"])),
        ca_cert=dict(type="path", aliases=["ssl_ca_cert"], fallback=(_env, ["K8S_AUTH_SSL_CA_CERT"])),
        validate_certs=dict(type="bool", default=True, aliases=["verify_ssl"]),
        in_cluster=dict(type="bool", default=False),
        request_timeout=dict(type="float", default=10.0),
    )


def clusters_argument_spec():
    """``clusters``: several clusters in one task, each a name plus the auth options."""
    options = auth_argument_spec()
    options.pop("request_timeout")
    options.update(name=dict(type="str", required=True))
    for opt in options.values():
        opt.pop("fallback", None)  # per-cluster entries are explicit
    return dict(clusters=dict(type="list", elements="dict", options=options))


def _env(*names):
    from ansible.module_utils.basic import AnsibleFallbackNotFound

    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    raise AnsibleFallbackNotFound


def cluster_auths(params):
    """The clusters a task acts on: ``clusters`` when given, else the one described by the top-level auth options.

    Each is an auth dict with a ``name`` (the single cluster is named after its context, else ``default``).
    A cluster entry without host or kubeconfig uses the top-level ``kubeconfig`` (one file, a context per region).
    """
    if params.get("clusters"):
        names = [c["name"] for c in params["clusters"]]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ModuleFailure(f"cluster names must be unique, these repeat: {', '.join(dup)}")
        auths = [dict(c) for c in params["clusters"]]
        for auth in auths:
            if not (auth.get("host") or auth.get("kubeconfig") or auth.get("in_cluster")):
                auth["kubeconfig"] = params.get("kubeconfig")
        return auths
    auth = {k: params.get(k) for k in AUTH_KEYS}
    auth["name"] = params.get("context") or "default"
    return [auth]


def require_kubernetes(module):
    """Fail the module, saying what to install, without a usable ``kubernetes`` client."""
    failure = kubernetes_failure()
    if failure:
        module.fail_json(msg=failure[0], exception=failure[1])


def describe(auth):
    """How to name a cluster in messages."""
    if auth.get("name"):
        return auth["name"]
    if auth.get("context"):
        return f"context {auth['context']}"
    if auth.get("host"):
        return auth["host"]
    return "the current kubeconfig context"


class Clients:
    """The typed APIs of one cluster: ``core``, ``apps``, ``autoscaling``, ``custom``, ``version``.

    Each is made on first use: importing an API class of the client costs up to 0.4 s (its models),
    a module pays only for the ones it uses.
    """

    APIS = {
        "core": "CoreV1Api",
        "apps": "AppsV1Api",
        "autoscaling": "AutoscalingV2Api",
        "custom": "CustomObjectsApi",
        "version": "VersionApi",
    }

    def __init__(self, api_client, label):
        self.api_client = api_client
        self.label = label

    def __getattr__(self, name):
        if name not in Clients.APIS:
            raise AttributeError(name)
        api = getattr(kclient, Clients.APIS[name])(self.api_client)
        setattr(self, name, api)
        return api


POOL_SIZE = 32
_CACHE = {}
_CACHE_LOCK = threading.Lock()


def get_clients(auth):
    """Clients for one cluster, cached per configuration."""
    key = hashlib.sha256(json.dumps({k: auth.get(k) for k in AUTH_KEYS}, sort_keys=True).encode()).hexdigest()
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = Clients(_api_client(auth), describe(auth))
        return _CACHE[key]


def _api_client(auth):
    failure = kubernetes_failure()
    if failure:
        raise ModuleFailure(failure[0])
    try:
        if auth.get("in_cluster"):
            configuration = kclient.Configuration()
            kconfig.load_incluster_config(client_configuration=configuration)
        elif auth.get("host"):
            configuration = kclient.Configuration()
            configuration.host = auth["host"]
            if auth.get("api_key"):
                configuration.api_key = {"authorization": auth["api_key"]}
                configuration.api_key_prefix = {"authorization": "Bearer"}
            if auth.get("ca_cert"):
                configuration.ssl_ca_cert = auth["ca_cert"]
        else:
            path = auth.get("kubeconfig") or os.path.expanduser("~/.kube/config")
            if not os.path.exists(path):
                raise ModuleFailure(f"kubeconfig {path} does not exist: set kubeconfig or KUBECONFIG")
            contexts = kconfig.list_kube_config_contexts(config_file=path)[0]
            names = [c["name"] for c in contexts]
            if auth.get("context") and auth["context"] not in names:
                raise ModuleFailure(f"kubeconfig {path} has no context {auth['context']!r}; it has: {', '.join(names)}")
            configuration = kclient.Configuration()
            kconfig.load_kube_config(config_file=path, context=auth.get("context"), client_configuration=configuration)
    except ConfigException as exc:
        raise ModuleFailure(f"cannot load the Kubernetes configuration for {describe(auth)}: {exc}") from None
    if auth.get("validate_certs") is False:
        configuration.verify_ssl = False
    # Fail fast on an unreachable API server: one attempt, the caller's timeout.
    configuration.retries = False
    # The modules' worker threads share this client: one pooled connection per worker, not a discarded one.
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, POOL_SIZE)
    return kclient.ApiClient(configuration)


class Budget:
    """A request timeout bounded by a step's deadline: pass it wherever a timeout goes.

    Each request waits at most ``per_request`` seconds, cut to what is left of ``deadline`` (a
    common.Deadline); once that is spent, requests are not sent (:class:`DeadlineSpent`). A step
    that pages through lists or reads several kinds thus ends by its deadline, not after a
    request timeout per request.
    """

    def __init__(self, per_request, deadline):
        self.per_request = float(per_request)
        self.deadline = deadline

    def seconds(self):
        if self.deadline.spent:
            raise DeadlineSpent(self.deadline.elapsed())
        return self.deadline.cap(self.per_request)


class DeadlineSpent(Exception):
    """The step's deadline was spent before a request could be sent."""


def request_timeout(timeout):
    """The seconds to pass to the client for one request: a number as is, a :class:`Budget` resolved now."""
    return timeout.seconds() if isinstance(timeout, Budget) else timeout


def is_timeout(exc):
    """The API server did not answer in time (a frozen or partitioned one accepts and never answers)."""
    if isinstance(exc, DeadlineSpent):
        return True
    # (urllib3's NewConnectionError, a refused connection, is a ConnectTimeoutError too: it is "cannot reach")
    return isinstance(exc, TimeoutError_) and not isinstance(exc, NewConnectionError)  # NotLoaded: matches none


def explain(exc, clients, what):
    """One line for an API failure while doing ``what`` on a cluster."""
    where = clients.label
    if isinstance(exc, DeadlineSpent):
        return f"{where}: {timed_out_text(exc.args[0])}: the step's deadline was spent before it could {what}"
    if isinstance(exc, ApiException):
        reason = _api_message(exc)
        if exc.status == 403:
            return f"{where}: forbidden to {what}: the credentials lack RBAC permission ({reason})"
        if exc.status == 401:
            return f"{where}: unauthorized to {what}: the credentials were rejected ({reason})"
        if exc.status == 404:
            return f"{where}: not found while trying to {what} ({reason})"
        if exc.status == 409:
            return f"{where}: conflict while trying to {what}, the object changed meanwhile; retry ({reason})"
        return f"{where}: API error {exc.status} while trying to {what} ({reason})"
    if is_timeout(exc):
        host = clients.api_client.configuration.host
        return (
            f"{where}: the API server {host} did not answer within the request timeout while trying to {what} "
            f"({type(exc).__name__}); check the server or raise request_timeout"
        )
    if isinstance(exc, HTTPError):
        host = clients.api_client.configuration.host
        return f"{where}: cannot reach the API server {host} to {what} ({type(exc).__name__}: {_short(exc)})"
    return f"{where}: {type(exc).__name__} while trying to {what}: {_short(exc)}"


def api_failures():
    """Exceptions that mean 'the cluster answered no' or 'the cluster did not answer'."""
    return (ApiException, HTTPError, OSError, DeadlineSpent)


def dry_run_refused(exc):
    """True when the server refused a request *because* it is a dry run: an admission webhook that may
    have side effects answers 400 'admission webhook "..." does not support dry run'."""
    return isinstance(exc, ApiException) and exc.status == 400 and "dry run" in str(_api_message(exc)).lower()


def _api_message(exc):
    try:
        return json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        return exc.reason


def _short(exc):
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."


def call(clients, what, fn, *args, **kwargs):
    """Call one API method; failures become ModuleFailure naming the cluster and the action.

    The failure's ``unreachable`` attribute (not part of its result) tells "the cluster did not
    answer" from "the cluster answered no"; ``timed_out`` says it did not answer in time.
    """
    try:
        return fn(*args, **kwargs)
    except api_failures() as exc:
        failure = ModuleFailure(explain(exc, clients, what), cluster=clients.label)
        failure.unreachable = not isinstance(exc, ApiException)
        failure.timed_out = is_timeout(exc)
        raise failure from None


def get_bytes(clients, path, query=None, timeout=None, accept="application/json"):
    """GET one API path with the cluster's ApiClient (its auth, TLS and connection pool); the body as bytes.

    The read modules GET by path, as the client's own DynamicClient does, and parse the JSON themselves:
    importing a typed API class costs 0.4-1 s per module run (its pydantic models), and the client's
    models would turn the server's JSON into objects only to be turned back. API errors raise
    ApiException as the typed calls do; :func:`get_json` turns them into one-line failures.
    """
    return request_bytes(clients, "GET", path, query, timeout=timeout, accept=accept)


def get_json(clients, what, path, query=None, timeout=None):
    """GET one API path; its JSON as plain dicts (as ``kubectl get -o json`` shows it), failures as ModuleFailure."""
    data = call(clients, what, get_bytes, clients, path, query, timeout)
    try:
        return json.loads(data)
    except ValueError:
        raise ModuleFailure(
            f"{clients.label}: the API server's answer to {what} is not JSON", cluster=clients.label
        ) from None


MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


def api_path(group_version, plural, namespace=None, name=None, sub=None):
    """The REST path of a resource: ``api_path("apps/v1", "deployments", "ns", "web", "scale")``."""
    parts = ["/api/v1" if group_version == "v1" else f"/apis/{group_version}"]
    if namespace:
        parts += ["namespaces", namespace]
    parts.append(plural)
    parts += [x for x in (name, sub) if x]
    return "/".join(parts)


def request_bytes(
    clients, method, path, query=None, body=None, content_type=None, timeout=None, accept="application/json"
):
    """Any verb on one API path with the cluster's ApiClient (its auth, TLS and connection pool); the body as bytes."""
    api = clients.api_client
    params = [(k, v) for k, v in (query or {}).items() if v is not None]
    headers = {"Accept": accept}
    if content_type:
        headers["Content-Type"] = content_type
    method, url, headers, body, post = api.param_serialize(
        method, path, query_params=params, header_params=headers, body=body, auth_settings=["BearerToken"]
    )
    resp = api.call_api(
        method, url, header_params=headers, body=body, post_params=post, _request_timeout=request_timeout(timeout)
    )
    try:
        data = resp.read()
    finally:
        resp.response.release_conn()
    if not 200 <= resp.status <= 299:
        raise ApiException.from_response(http_resp=resp, body=None, data=None)
    return data


DRY_RUN = {"dryRun": "All"}


class Cluster:
    """One cluster of a write task: its name, its (cached) clients and the per-request timeout.

    Every request passes the timeout, so a cluster that accepts connections and never answers
    (a partitioned region) fails after ``timeout`` seconds. Requests go by path (no typed API
    classes, see :func:`get_bytes`); answers are the API's plain JSON.

    Writes take ``dry_run``: check mode sends the very request the real run would send, with
    ``dryRun=All``. The API server authenticates, authorizes, admits and validates it and answers
    with the object it would store, storing nothing; so check mode fails where the real run would
    (a forbidden verb, an invalid value, a conflict) and its plan is the server's answer.
    """

    def __init__(self, auth, timeout=10.0):
        self.auth = auth
        self.name = auth.get("name") or describe(auth)
        self.timeout = timeout
        self._clients = None
        self.warnings = []  # server-side dry runs the cluster refused (the module's own plan stood in)

    @property
    def clients(self):
        if self._clients is None:
            self._clients = get_clients(self.auth)
        return self._clients

    def request(self, what, method, path, query=None, body=None, content_type=None, missing_ok=False):
        """The answer as plain JSON; failures as ModuleFailure naming the cluster and ``what``.
        With ``missing_ok``, a 404 is None."""
        try:
            data = request_bytes(self.clients, method, path, query, body, content_type, self.timeout)
        except api_failures() as exc:
            if missing_ok and isinstance(exc, ApiException) and exc.status == 404:
                return None
            failure = ModuleFailure(explain(exc, self.clients, what), cluster=self.name)
            failure.unreachable = not isinstance(exc, ApiException)
            failure.dry_run_refused = bool((query or {}).get("dryRun")) and dry_run_refused(exc)
            failure.timed_out = is_timeout(exc)
            raise failure from None
        try:
            return json.loads(data or b"{}")
        except ValueError:
            raise ModuleFailure(
                f"{self.name}: the API server's answer to {what} is not JSON", cluster=self.name
            ) from None

    def get(self, what, path, missing_ok=False, **query):
        return self.request(what, "GET", path, query, missing_ok=missing_ok)

    def patch(self, what, path, body, content_type=MERGE_PATCH, dry_run=False, simulated=None):
        return self.write(what, "PATCH", path, body, content_type, dry_run=dry_run, simulated=simulated)

    def delete(self, what, path, body=None, missing_ok=False, dry_run=False):
        content_type = "application/json" if body else None
        return self.write(what, "DELETE", path, body, content_type, missing_ok, dry_run, simulated={})

    def write(self, what, method, path, body=None, content_type=None, missing_ok=False, dry_run=False, simulated=None):
        """One write; with ``dry_run`` the same request as a server-side dry run (the answer: what the
        server would store). ``simulated`` is the module's own idea of that answer, used only when the
        server refuses to dry-run the request (see :func:`dry_run_refused`); ``warnings`` says so."""
        if not dry_run:
            return self.request(what, method, path, None, body, content_type, missing_ok)
        try:
            return self.request(f"{what} (dry run)", method, path, DRY_RUN, body, content_type, missing_ok)
        except ModuleFailure as exc:
            if simulated is None or not getattr(exc, "dry_run_refused", False):
                raise
            self.warnings.append(f"{exc.msg}; check mode shows the module's own plan for it instead")
            return simulated

    def text(self, what, path, **query):
        """A text answer (a pod's log)."""
        try:
            data = request_bytes(self.clients, "GET", path, query, None, None, self.timeout)
        except api_failures() as exc:
            raise ModuleFailure(explain(exc, self.clients, what), cluster=self.name) from None
        return data.decode("utf-8", errors="replace")


def warn_dry_runs_refused(module, clusters):
    """Say which requests the clusters would not dry-run (check mode used the module's own plan there)."""
    for cluster in clusters:
        for warning in cluster.warnings:
            module.warn(warning)


def clusters_from_params(module):
    """``Cluster`` objects for a module's ``clusters``/auth options (fails the module without the client)."""
    require_kubernetes(module)
    timeout = module.params.get("request_timeout") or 10.0
    return [Cluster(auth, timeout) for auth in cluster_auths(module.params)]
