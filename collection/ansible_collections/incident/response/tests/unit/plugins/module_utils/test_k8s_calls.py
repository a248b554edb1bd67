"""k8s.py's helpers for the read modules: which clusters a task acts on, how a failed call reads."""

from __future__ import annotations

import pytest
import urllib3

from ansible_collections.incident.response.plugins.module_utils import k8s
from ansible_collections.incident.response.plugins.module_utils.common import Deadline, ModuleFailure


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


def test_a_budget_cuts_each_request_and_stops_them_once_the_deadline_is_spent():
    deadline = Deadline(10)
    budget = k8s.Budget(30, deadline)
    assert 9 < k8s.request_timeout(budget) <= 10 and k8s.request_timeout(5) == 5
    deadline.start -= 10
    with pytest.raises(k8s.DeadlineSpent):
        k8s.request_timeout(budget)

    def send():
        k8s.request_timeout(budget)

    with pytest.raises(ModuleFailure) as failure:
        k8s.call(FakeClients, "list pods", send)
    assert failure.value.unreachable and failure.value.timed_out
    assert failure.value.msg.startswith("primary: not answering (timed out after 10.0 s): the step's deadline")


def test_only_a_request_without_answer_is_a_timeout():
    pool = urllib3.HTTPConnectionPool("k8s.example", 6443)
    assert k8s.is_timeout(urllib3.exceptions.ReadTimeoutError(pool, "/api/v1/nodes", "Read timed out."))
    assert k8s.is_timeout(urllib3.exceptions.ConnectTimeoutError(pool, "timed out"))
    assert not k8s.is_timeout(urllib3.exceptions.NewConnectionError(None, "[Errno 111] Connection refused"))
    assert not k8s.is_timeout(k8s.ApiException(status=503, reason="Service Unavailable"))
