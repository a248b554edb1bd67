"""k8s.py's helpers for the read modules: which clusters a task acts on, how a failed call reads."""

from __future__ import annotations

import pytest
import urllib3

from ansible_collections.incident.response.plugins.module_utils import k8s
from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure


class FakeClients:
    label = "primary"

    class api_client:  # the attribute path of the real client
        class configuration:
            host = "https://k8s.example:6443"


def test_single_cluster_is_named_after_its_context():
    auths = k8s.cluster_auths({"context": "primary", "kubeconfig": "/k", "host": None, "clusters": None})
    assert [(a["name"], a["context"], a["kubeconfig"]) for a in auths] == [("primary", "primary", "/k")]
    assert k8s.cluster_auths({"clusters": None})[0]["name"] == "default"


def test_clusters_inherit_the_top_level_kubeconfig_only_when_they_say_nothing():
    params = {
        "kubeconfig": "/shared",
        "clusters": [
            {"name": "primary", "context": "primary", "kubeconfig": None, "host": None},
            {"name": "dr", "host": "https://dr:6443", "kubeconfig": None},
        ],
    }
    auths = k8s.cluster_auths(params)
    assert auths[0]["kubeconfig"] == "/shared" and auths[1]["kubeconfig"] is None


def test_duplicate_cluster_names_fail():
    with pytest.raises(ModuleFailure, match="unique"):
        k8s.cluster_auths({"clusters": [{"name": "a"}, {"name": "a"}]})


def test_timeouts_and_refusals_read_differently():
    pool = urllib3.HTTPConnectionPool("k8s.example", 6443)
    timeout = urllib3.exceptions.ReadTimeoutError(pool, "/api/v1/nodes", "Read timed out.")
    msg = k8s.explain(timeout, FakeClients, "list nodes")
    assert msg.startswith("primary: the API server https://k8s.example:6443 did not answer within the request timeout")
    refused = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111]")
    assert "cannot reach the API server" in k8s.explain(refused, FakeClients, "list nodes")


def test_forbidden_reads_as_a_permission_problem():
    exc = k8s.ApiException(status=403, reason="Forbidden")
    exc.body = '{"message": "nodes is forbidden: User \\"viewer\\" cannot list resource \\"nodes\\""}'
    msg = k8s.explain(exc, FakeClients, "list nodes")
    assert msg == (
        'primary: forbidden to list nodes: the credentials lack RBAC permission (nodes is forbidden: User "viewer" '
        'cannot list resource "nodes")'
    )
