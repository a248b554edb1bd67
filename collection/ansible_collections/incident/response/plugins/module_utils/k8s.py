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
import threading
import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure

try:
    import urllib3
    from kubernetes import client as kclient
    from kubernetes import config as kconfig
    from kubernetes.client.rest import ApiException
    from kubernetes.config.config_exception import ConfigException

    HAS_K8S = True
    K8S_IMPORT_ERROR = None
except ImportError:
    HAS_K8S = False
    K8S_IMPORT_ERROR = traceback.format_exc()

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


def require_kubernetes(module):
    if not HAS_K8S:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=K8S_IMPORT_ERROR)


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
    """The typed APIs of one cluster."""

    def __init__(self, api_client, label):
        self.api_client = api_client
        self.label = label
        self.core = kclient.CoreV1Api(api_client)
        self.apps = kclient.AppsV1Api(api_client)
        self.autoscaling = kclient.AutoscalingV2Api(api_client)
        self.custom = kclient.CustomObjectsApi(api_client)
        self.version = kclient.VersionApi(api_client)


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
    return kclient.ApiClient(configuration)


def explain(exc, clients, what):
    """One line for an API failure while doing ``what`` on a cluster."""
    where = clients.label
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
    if isinstance(exc, urllib3.exceptions.HTTPError):
        host = clients.api_client.configuration.host
        return f"{where}: cannot reach the API server {host} to {what} ({type(exc).__name__}: {_short(exc)})"
    return f"{where}: {type(exc).__name__} while trying to {what}: {_short(exc)}"


def api_failures():
    """Exceptions that mean 'the cluster answered no' or 'the cluster did not answer'."""
    return (ApiException, urllib3.exceptions.HTTPError, OSError)


def _api_message(exc):
    try:
        return json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        return exc.reason


def _short(exc):
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."


def call(clients, what, fn, *args, **kwargs):
    """Call one API method; failures become ModuleFailure naming the cluster and the action."""
    try:
        return fn(*args, **kwargs)
    except api_failures() as exc:
        raise ModuleFailure(explain(exc, clients, what), cluster=clients.label) from None


def cluster_auths(params):
    """The clusters one task acts on, each an auth dict with a ``name``.

    With ``clusters``, one per entry: what an entry leaves unset comes from the module-level
    options (one kubeconfig, a context per region). Without, the module-level options are
    the one cluster, named after its context or host.
    """
    base = {k: params.get(k) for k in AUTH_KEYS}
    entries = params.get("clusters") or []
    if not entries:
        return [dict(base, name=base.get("context") or base.get("host") or "default")]
    out, seen = [], set()
    for entry in entries:
        if entry["name"] in seen:
            raise ModuleFailure(f"clusters: the name {entry['name']!r} appears more than once")
        seen.add(entry["name"])
        auth = {k: entry.get(k) if entry.get(k) is not None else base.get(k) for k in AUTH_KEYS}
        out.append(dict(auth, name=entry["name"]))
    return out


class Cluster:
    """One cluster of a task: its name, its (cached) clients and the per-request timeout.

    ``call`` and ``json`` pass ``_request_timeout``, so a cluster that accepts connections
    and never answers (a partitioned region) fails after ``timeout`` seconds.
    """

    def __init__(self, auth, timeout=10.0):
        self.auth = auth
        self.name = auth.get("name") or describe(auth)
        self.timeout = timeout
        self._clients = None

    @property
    def clients(self):
        if self._clients is None:
            self._clients = get_clients(self.auth)
        return self._clients

    def call(self, what, api, method, *args, **kwargs):
        """``clients.<api>.<method>(*args, **kwargs)``, failures as ModuleFailure."""
        kwargs.setdefault("_request_timeout", self.timeout)
        return call(self.clients, what, getattr(getattr(self.clients, api), method), *args, **kwargs)

    def json(self, what, api, method, *args, **kwargs):
        """Like ``call``, but the answer as the API's plain JSON (camelCase keys), without model objects."""
        resp = self.call(what, api, method, *args, _preload_content=False, **kwargs)
        try:
            return json.loads(resp.data or b"{}")
        except ValueError:
            raise ModuleFailure(f"{self.name}: the API answered {what} with something that is not JSON") from None

    def text(self, what, api, method, *args, **kwargs):
        """Like ``call``, for text answers (pod logs)."""
        resp = self.call(what, api, method, *args, _preload_content=False, **kwargs)
        return (resp.data or b"").decode("utf-8", errors="replace")


def clusters_from_params(module):
    """``Cluster`` objects for a module's ``clusters``/auth options (fails the module without the client)."""
    require_kubernetes(module)
    timeout = module.params.get("request_timeout") or 10.0
    return [Cluster(auth, timeout) for auth in cluster_auths(module.params)]
