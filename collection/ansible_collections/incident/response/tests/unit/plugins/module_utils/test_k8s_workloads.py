"""Replica arithmetic, HPA decisions and ConfigMap planning of the write modules."""

from __future__ import annotations

import re

import pytest

from ansible_collections.incident.response.plugins.module_utils import k8s_workloads as wl

# -- replicas --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "kwargs", "expected"),
    [
        (2, dict(replicas=3), (3, None)),
        (2, dict(replicas=0), (0, None)),
        (2, dict(delta=3), (5, None)),
        (5, dict(delta=-2), (3, None)),
        (3, dict(factor=1.5), (5, None)),  # 4.5 rounds up
        (4, dict(factor=0.5), (2, None)),
        (3, dict(factor=0.01), (1, None)),  # rounding up: a factor never stops a workload
        (3, dict(factor=1.1), (4, None)),  # 3.3000000000000003 is 4, not a float artefact
        (10, dict(factor=0.3), (3, None)),  # 3.0000000000000004 is 3
        (4, dict(factor=3, cap=8), (8, "capped at 8")),
        (4, dict(delta=-3, floor=2), (2, "raised to the floor 2")),
        (2, dict(replicas=10, cap=6), (6, "capped at 6")),
        (2, dict(replicas=1, floor=2), (2, "raised to the floor 2")),
    ],
)
def test_count_delta_factor_and_limits(current, kwargs, expected):
    assert wl.plan_replicas(current, **kwargs) == expected


@pytest.mark.parametrize(
    ("current", "kwargs", "error"),
    [
        (2, dict(delta=-2), "refusing to scale to zero by arithmetic"),
        (0, dict(factor=2), "factor 2 on 0 replicas gives 0"),
        (2, dict(replicas=3, delta=1), "exactly one of"),
        (2, dict(), "exactly one of"),
        (2, dict(replicas=-1), "0 or more"),
        (2, dict(factor=0), "above 0"),
        (2, dict(replicas=3, floor=5, cap=4), "floor (5) is above cap (4)"),
    ],
)
def test_count_mistakes_are_refused(current, kwargs, error):
    with pytest.raises(ValueError, match=re.escape(error)):
        wl.plan_replicas(current, **kwargs)


def test_arithmetic_never_stops_a_workload_but_a_floor_keeps_one():
    with pytest.raises(ValueError, match="give replicas: 0"):
        wl.plan_replicas(2, delta=-5)
    with pytest.raises(ValueError, match="refusing"):
        wl.plan_replicas(2, delta=-5, floor=0)
    assert wl.plan_replicas(2, delta=-5, floor=1) == (1, "raised to the floor 1")


# -- HPAs ------------------------------------------------------------------------------------


def hpa(name="web", lo=2, hi=5, kind="Deployment", target="web", api_version="apps/v1"):
    return {
        "metadata": {"name": name},
        "spec": {
            "minReplicas": lo,
            "maxReplicas": hi,
            "scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": target},
        },
    }


def test_hpas_targeting_matches_kind_name_and_group():
    hpas = [hpa(), hpa("other", target="api"), hpa("sts", kind="StatefulSet"), hpa("foreign", api_version="x.io/v1")]
    assert [h["metadata"]["name"] for h in wl.hpas_targeting(hpas, "Deployment", "web")] == ["web"]
    assert [h["metadata"]["name"] for h in wl.hpas_targeting(hpas, "StatefulSet", "web")] == ["sts"]


def test_adjust_raises_min_and_max_when_needed_and_says_so():
    plan = wl.plan_hpa("adjust_hpa", [hpa()], 3, 2)
    assert (plan["action"], plan["new_min_replicas"], plan["new_max_replicas"]) == ("adjusted", 3, 5)
    assert plan["note"] == "HPA web min 2->3 so that it keeps 3 replicas"
    plan = wl.plan_hpa("adjust_hpa", [hpa()], 8, 2)
    assert (plan["new_min_replicas"], plan["new_max_replicas"]) == (8, 8)
    assert plan["note"] == "HPA web min 2->8, max 5->8 so that it keeps 8 replicas"


def test_adjust_lowers_min_when_scaling_down_and_is_idempotent():
    plan = wl.plan_hpa("adjust_hpa", [hpa(lo=4)], 3, 4)
    assert (plan["action"], plan["new_min_replicas"], plan["new_max_replicas"]) == ("adjusted", 3, 5)
    assert wl.plan_hpa("adjust_hpa", [hpa(lo=3)], 3, 3)["action"] == "unchanged"


def test_fail_policy_refuses_a_change_but_not_a_no_op():
    with pytest.raises(
        ValueError, match=re.escape("HPA web (min 2, max 5) scales this workload and would undo a scale to 3")
    ):
        wl.plan_hpa("fail", [hpa()], 3, 2)
    assert wl.plan_hpa("fail", [hpa()], 2, 2)["action"] == "unchanged"


def test_scale_anyway_leaves_the_hpa_and_warns_how_it_will_react():
    plan = wl.plan_hpa("scale_anyway", [hpa()], 7, 2)
    assert plan["action"] == "ignored" and "back within its bounds" in plan["note"]
    assert (plan["new_min_replicas"], plan["new_max_replicas"]) == (2, 5)
    assert "may change it" in wl.plan_hpa("scale_anyway", [hpa()], 4, 2)["note"]


def test_no_hpa_several_hpas_and_zero():
    assert wl.plan_hpa("fail", [], 3, 2) is None
    with pytest.raises(ValueError, match=r"several HPAs \(a, b\)"):
        wl.plan_hpa("adjust_hpa", [hpa("b"), hpa("a")], 3, 2)
    assert wl.plan_hpa("fail", [hpa()], 0, 2)["action"] == "inactive"


# -- ConfigMaps ----------------------------------------------------------------------------------


def test_plan_data_sets_changes_only_and_records_absent_keys_as_none():
    current = {"db.host": "10.0.1.20", "db.port": "3306", "db.name": "shop"}
    patch, previous = wl.plan_data(current, {"db.host": "10.0.2.20", "db.port": "3306", "new.config": "v"})
    assert patch == {"db.host": "10.0.2.20", "new.config": "v"}
    assert previous == {"db.host": "10.0.1.20", "new.config": None}
    # Rolling back with the previous values removes the new key and restores the old one.
    after = {**current, **patch}
    back, again = wl.plan_data(after, previous)
    assert back == {"db.host": "10.0.1.20", "new.config": None}
    assert again == {"db.host": "10.0.2.20", "new.config": "v"}
    assert wl.plan_data(current, {"db.name": "shop", "gone": None}) == ({}, {})


def test_values_are_strings_ints_written_out_bools_refused():
    assert wl.normalize_data({"db.port": 3307, "db.host": "h", "x": None}) == {
        "db.port": "3307",
        "db.host": "h",
        "x": None,
    }
    with pytest.raises(
        ValueError, match=re.escape("'feature.on' is a bool (True); ConfigMap values are strings: quote it")
    ):
        wl.normalize_data({"feature.on": True})
    with pytest.raises(ValueError, match="float"):
        wl.normalize_data({"ratio": 0.5})


def test_expected_values_and_absence():
    current = {"db.host": "10.0.1.20"}
    assert wl.check_expected(current, {"db.host": "10.0.1.20", "other": None}) == []
    assert wl.check_expected(current, {"db.host": "10.0.9.9", "db.port": "3306"}) == [
        "db.host is '10.0.1.20', expected '10.0.9.9'",
        "db.port is absent, expected '3306'",
    ]


def test_consumers_found_through_env_envfrom_and_volumes_only():
    def workload(**pod):
        return {"spec": {"template": {"spec": pod}}}

    env_ref = workload(
        containers=[
            {
                "name": "app",
                "env": [
                    {"name": "DB_HOST", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "db.host"}}},
                    {"name": "OTHER", "valueFrom": {"configMapKeyRef": {"name": "else", "key": "db.host"}}},
                    {"name": "PLAIN", "value": "cfg"},
                ],
            }
        ]
    )
    refs = wl.configmap_references(env_ref, "cfg")
    assert refs == [{"how": "env", "container": "app", "key": "db.host", "variable": "DB_HOST"}]
    assert wl.uses_keys(refs, ["db.host"]) and not wl.uses_keys(refs, ["log.level"])

    whole = workload(
        initContainers=[{"name": "init", "envFrom": [{"configMapRef": {"name": "cfg"}}]}],
        containers=[{"name": "app"}],
        volumes=[
            {"name": "conf", "configMap": {"name": "cfg"}},
            {"name": "all", "projected": {"sources": [{"secret": {"name": "s"}}, {"configMap": {"name": "cfg"}}]}},
        ],
    )
    refs = wl.configmap_references(whole, "cfg")
    assert [r["how"] for r in refs] == ["envFrom", "volume", "projected volume"]
    assert wl.uses_keys(refs, ["anything"])
    # A name that merely looks related is not a reference.
    assert wl.configmap_references(workload(containers=[{"name": "cfg", "image": "cfg"}]), "cfg") == []


def test_render_data_for_diffs():
    assert wl.render_data({"b": "2", "a": "x\ny"}) == 'a: "x\\ny"\nb: 2\n'
    assert wl.render_data({}) == ""
