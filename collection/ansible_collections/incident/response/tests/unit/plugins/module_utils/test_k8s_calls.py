"""k8s.py's helpers for the read modules: which clusters a task acts on, how a failed call reads."""

from __future__ import annotations

import json

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


@pytest.mark.parametrize(
    ("version", "has_param_serialize", "problem"),
    [
        ("37.0.2", True, None),
        ("37.0.0", True, None),
        ("38.1.0b1", True, None),
        ("36.0.3", True, "kubernetes >= 37 is required, found 36.0.3"),
        ("12.0.1", True, "kubernetes >= 37 is required, found 12.0.1"),
        ("36.0.0", False, "kubernetes >= 37 is required, found 36.0.0"),
        ("37.0.0", False, "kubernetes >= 37 is required, found 37.0.0 without ApiClient.param_serialize"),
        (None, False, "kubernetes >= 37 is required, found an unknown version without ApiClient.param_serialize"),
        ("unknown", True, None),  # no version to compare: what the client has decides
    ],
)
def test_the_client_version_the_modules_need(version, has_param_serialize, problem):
    assert k8s.kubernetes_problem(version, has_param_serialize) == problem


class FailingModule:
    class Failed(Exception):
        pass

    def fail_json(self, **result):
        raise self.Failed(result)


def test_an_old_client_fails_the_module_with_what_to_install(monkeypatch):
    monkeypatch.setattr(k8s, "K8S_PROBLEM", k8s.kubernetes_problem("36.0.0"))
    with pytest.raises(FailingModule.Failed) as failed:
        k8s.require_kubernetes(FailingModule())
    msg = failed.value.args[0]["msg"]
    assert msg.startswith("kubernetes >= 37 is required, found 36.0.0 (Python ")
    assert msg.endswith("install a newer client: pip install 'kubernetes>=37'")


def test_the_installed_client_is_accepted():
    assert k8s.HAS_K8S and k8s.K8S_PROBLEM is None, k8s.K8S_PROBLEM


def test_a_refused_dry_run_is_told_from_a_refused_write():
    def exc(status, message):
        e = k8s.ApiException(status=status, reason="x")
        e.body = json.dumps({"message": message})
        return e

    assert k8s.dry_run_refused(exc(400, 'admission webhook "policy.example.com" does not support dry run'))
    assert not k8s.dry_run_refused(exc(400, "the body of the request could not be decoded"))
    assert not k8s.dry_run_refused(exc(403, "configmaps is forbidden"))
    assert not k8s.dry_run_refused(urllib3.exceptions.ReadTimeoutError(None, "/", "Read timed out."))


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
