"""The emulator's HPA keeps its target within minReplicas..maxReplicas whatever the metrics say,
as kube-controller-manager does (its recommendation is normalized to the bounds). Driven
directly on a store with a stubbed metrics calculation, so the recommendation is exact."""

from __future__ import annotations

import pytest

from incidentlab.kube.controllers import DEPLOY, HPA, ControllerManager, res
from incidentlab.kube.events import Recorder
from incidentlab.kube.store import Store

NS_RES = res("namespaces")


def _manager_with(replicas: int) -> tuple[Store, ControllerManager, dict]:
    store = Store()
    store.create(NS_RES, {"metadata": {"name": "ns"}})
    labels = {"app": "web"}
    store.create(
        DEPLOY,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
            },
        },
        "ns",
    )
    hpa = store.create(
        HPA,
        {
            "metadata": {"name": "web"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 5,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                    }
                ],
            },
        },
        "ns",
    )
    return store, ControllerManager(store, Recorder(store), kubelet=None), hpa


@pytest.mark.parametrize(("recommended", "expected"), [(0, 2), (1, 2), (3, 3), (9, 5)])
def test_recommendation_is_kept_within_the_bounds(recommended, expected):
    store, mgr, hpa = _manager_with(replicas=2)
    mgr._autoscale_one(hpa, lambda *_: (recommended, 0, "0"))
    assert store.get(DEPLOY, "ns", "web")["spec"]["replicas"] == expected


def test_a_target_scaled_to_zero_by_hand_is_left_alone():
    store, mgr, hpa = _manager_with(replicas=0)
    mgr._autoscale_one(hpa, lambda *_: (3, 50, "35m"))
    assert store.get(DEPLOY, "ns", "web")["spec"]["replicas"] == 0
    conds = {c["type"]: c for c in store.get(HPA, "ns", "web")["status"]["conditions"]}
    assert conds["ScalingActive"]["reason"] == "ScalingDisabled"
