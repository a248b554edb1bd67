"""config_patch against the lab: both regions' ConfigMaps, the services that read them, their health through the LBs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from kubernetes import client

from incidentlab.config import DB_USERS
from kubeutil import NS, REGIONS, api, http, kubectl, module_clusters, read_only
from support import db, run_module, wait_for

pytestmark = pytest.mark.lab

CM = "microservice-config"


def data(lab, region):
    """The ConfigMap's data as the unmodified kubectl shows it."""
    return json.loads(kubectl(lab, region, "get", "configmap", CM, "-n", NS, "-o", "jsonpath={.data}").stdout)


def db_health(lab, region, service="user-service"):
    """(status, host, port) of the db component of a service's health, through the region's load balancer."""
    _code, body, _ = http(lab.cfg.url(f"lb-{region}", f"/{service}/actuator/health"))
    details = ((body.get("components") or {}).get("db") or {}).get("details") or {}
    return body.get("status"), details.get("host"), details.get("port")


def restarted_pods(lab, region, app):
    """The pods of one service's last restart (its pod template's restartedAt; old ones may not be deleted yet)."""
    listed = client.CoreV1Api(api(lab, region)).list_namespaced_pod(NS, label_selector=f"app={app}").items
    stamp = "kubectl.kubernetes.io/restartedAt"
    last = max((p.metadata.annotations or {}).get(stamp, "") for p in listed)
    return [p for p in listed if (p.metadata.annotations or {}).get(stamp, "") == last]


def at(stamp):
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def no_secret_values(lab, *results):
    values = [v for v in lab.secrets().values() if v]
    text = json.dumps(results)
    return not [v for v in values if v in text]


def test_db_host_and_port_in_both_regions_restart_the_services_and_roll_back(restored, fresh_databases, tmp_path):
    """Runbook 2.2: the replica was promoted; point every service of both regions at it, then back."""
    lab = restored
    primary_port, replica_port = lab.cfg.ports["db-primary"], lab.cfg.ports["db-replica"]
    with db(lab, "db-replica", "admin", database=None) as conn, conn.cursor() as cur:
        cur.execute("SET GLOBAL read_only = 0")  # what the promotion did
    before = {r: data(lab, r) for r in REGIONS}
    assert before["primary"]["db.host"] == "127.0.0.1" and before["primary"]["db.port"] == str(primary_port)
    args = {
        **module_clusters(lab),
        "namespace": NS,
        "name": CM,
        "data": {"db.host": "localhost", "db.port": replica_port},
        "expected": {"db.host": "127.0.0.1"},
        "secrets": ["db-credentials"],
        "restart_consumers": True,
        "backup_file": str(tmp_path / "microservice-config.previous.json"),
    }

    # Check mode: the diff, the consumers that would restart, nothing changed.
    plan = run_module("config_patch", args, check=True, diff=True)
    assert not plan["failed"], plan["msg"]
    assert plan["changed"] is True
    assert plan["msg"] == (
        "would patch microservice-config in 2 of 2 namespace(s) (primary/microservices: db.host, db.port; "
        "secondary/microservices: db.host, db.port) and restart 10 consumer(s); required secret(s) present: "
        "db-credentials"
    )
    assert plan["diff"][0]["before_header"] == "primary/microservices/configmap/microservice-config"
    assert "db.host: 127.0.0.1\n" in plan["diff"][0]["before"] and "db.host: localhost\n" in plan["diff"][0]["after"]
    assert f"db.port: {replica_port}\n" in plan["diff"][1]["after"]
    consumers = plan["configmaps"][0]["consumers"]
    assert sorted(c["name"] for c in consumers) == sorted(
        ["user-service", "order-service", "payment-service", "inventory-service", "notification-service"]
    )
    assert {r["how"] for c in consumers for r in c["references"]} == {"env"}
    assert all(c["affected"] and not c["restarted"] for c in consumers)
    assert {r: data(lab, r) for r in REGIONS} == before
    assert not (tmp_path / "microservice-config.previous.json").exists()

    # The change: both regions patched, every service restarted and rolled out, health shows the new database.
    res = run_module("config_patch", args)
    assert not res["failed"], res["msg"]
    assert res["changed"] is True
    assert res["msg"] == (
        "patched microservice-config in 2 of 2 namespace(s) (primary/microservices: db.host, db.port; "
        "secondary/microservices: db.host, db.port); restarted 10 consumer(s), all rolled out; "
        "required secret(s) present: db-credentials"
    )
    for region in REGIONS:
        assert data(lab, region) == {**before[region], "db.host": "localhost", "db.port": str(replica_port)}
        wait_for(
            lambda r=region: db_health(lab, r) == ("UP", "localhost", replica_port),
            30,
            f"user-service in {region} to report the promoted database",
        )
        for service in ("order-service", "notification-service"):
            assert db_health(lab, region, service) == ("UP", "localhost", replica_port)
    assert all(c["restarted"] and c["rollout"]["status"] == "rolled_out" for c in res["configmaps"][1]["consumers"])
    assert res["previous"] == [
        {"cluster": r, "namespace": NS, "name": CM, "data": {"db.host": "127.0.0.1", "db.port": str(primary_port)}}
        for r in REGIONS
    ]
    backup = json.loads((tmp_path / "microservice-config.previous.json").read_text())
    assert backup["previous"] == res["previous"]
    assert res["secrets"] == [
        {"cluster": r, "namespace": NS, "name": "db-credentials", "type": "Opaque", "exists": True} for r in REGIONS
    ]

    # The same patch again: no change, no restart (the precondition now fails, so drop it).
    again = run_module("config_patch", {**args, "expected": None})
    assert not again["failed"] and again["changed"] is False and again["previous"] == []
    assert again["msg"].startswith("microservice-config already as asked in 2 namespace(s)")
    assert all(not c["restarted"] for cm in again["configmaps"] for c in cm["consumers"])

    # Rollback from the backup file: the old values, services restarted onto the primary again - one region after
    # the other: the secondary's new pods are created once the primary's are ready.
    back = run_module(
        "config_patch",
        {
            **module_clusters(lab),
            "state": "restore",
            "name": CM,
            "backup_file": args["backup_file"],
            "restart_consumers": True,
            "restart_order": "cluster_by_cluster",
        },
    )
    assert not back["failed"], back["msg"]
    assert back["msg"].startswith("restored microservice-config in 2 of 2 namespace(s)")
    first, second = ({c["name"]: c for c in cm["consumers"]} for cm in back["configmaps"])
    primary_done = max(at(c["restarted_at"]) + timedelta(seconds=c["rollout"]["elapsed"]) for c in first.values())
    # restarted_at is to the millisecond and a rollout's elapsed to 10 ms: their sum can be ~6 ms late (seen once).
    # Restarted together, the secondary's would be a whole rollout (~1 s) early.
    assert min(at(c["restarted_at"]) for c in second.values()) >= primary_done - timedelta(milliseconds=10)
    # The cluster agrees: the secondary's new pods were created after the primary's.
    created = {r: min(p.metadata.creation_timestamp for p in restarted_pods(lab, r, "user-service")) for r in REGIONS}
    assert created["secondary"] >= created["primary"]
    for region in REGIONS:
        assert data(lab, region) == before[region]
        wait_for(
            lambda r=region: db_health(lab, r) == ("UP", "127.0.0.1", primary_port),
            30,
            f"user-service in {region} to report the primary again",
        )
    assert no_secret_values(lab, plan, res, again, back)


def test_a_new_key_is_removed_by_the_rollback(restored):
    """Runbook 4.2: kubectl patch configmap ... '{"data":{"new.config":"value"}}', and its undo."""
    lab = restored
    args = {
        "kubeconfig": lab.cfg.path("kubeconfig").as_posix(),
        "context": "secondary",
        "namespace": NS,
        "name": CM,
        "data": {"new.config": "value"},
    }
    res = run_module("config_patch", args)
    assert not res["failed"] and res["changed"] is True
    assert res["msg"] == "patched microservice-config in 1 of 1 namespace(s) (secondary/microservices: new.config)"
    assert res["previous"] == [{"cluster": "secondary", "namespace": NS, "name": CM, "data": {"new.config": None}}]
    assert data(lab, "secondary")["new.config"] == "value"
    assert "new.config" not in data(lab, "primary")
    assert run_module("config_patch", args)["changed"] is False

    back = run_module(
        "config_patch",
        {**{k: v for k, v in args.items() if k != "data"}, "state": "restore", "previous": res["previous"]},
        diff=True,
    )
    assert not back["failed"] and back["changed"] is True
    assert "new.config: value\n" in back["diff"][0]["before"] and "new.config" not in back["diff"][0]["after"]
    assert "new.config" not in data(lab, "secondary")
    assert back["previous"] == [{"cluster": "secondary", "namespace": NS, "name": CM, "data": {"new.config": "value"}}]


def test_precondition_mismatch_fails_and_changes_nothing(lab):
    before = {r: data(lab, r) for r in REGIONS}
    res = run_module(
        "config_patch",
        {
            **module_clusters(lab),
            "namespace": NS,
            "name": CM,
            "data": {"db.host": "10.9.9.9"},
            "expected": {"db.host": "10.0.1.20", "db.name": "shop"},
        },
    )
    assert res["failed"]
    assert res["msg"] == (
        "nothing was changed: primary/microservices: configmap microservice-config is not as expected: db.host is "
        "'127.0.0.1', expected '10.0.1.20' | secondary/microservices: configmap microservice-config is not as "
        "expected: db.host is '127.0.0.1', expected '10.0.1.20'"
    )
    assert {r: data(lab, r) for r in REGIONS} == before


def test_secrets_by_name_only(lab):
    args = {**module_clusters(lab), "namespace": NS, "name": CM}
    res = run_module("config_patch", {**args, "list_secrets": True, "secrets": ["db-credentials"]}, check=True)
    assert not res["failed"] and res["changed"] is False
    assert res["secrets"] == [
        {"cluster": r, "namespace": NS, "name": "db-credentials", "type": "Opaque", "exists": True} for r in REGIONS
    ]
    missing = run_module(
        "config_patch", {**args, "data": {"db.host": "x"}, "secrets": ["db-credentials", "vault-token"]}
    )
    assert missing["failed"] and "required secret(s) missing: vault-token" in missing["msg"]
    assert data(lab, "primary")["db.host"] == "127.0.0.1"
    assert no_secret_values(lab, res, missing)
    assert DB_USERS["app"] not in json.dumps(res)  # not even the user name stored in the secret


def test_clear_failures(lab):
    kube = {"kubeconfig": lab.cfg.path("kubeconfig").as_posix(), "context": "primary"}
    res = run_module("config_patch", {**kube, "namespace": NS, "name": "no-such-config", "data": {"a": "b"}})
    assert res["failed"] and res["msg"] == (
        "nothing was changed: primary: configmap 'no-such-config' not found in namespace 'microservices'"
    )
    res = run_module("config_patch", {**kube, "namespace": "nowhere", "name": CM, "data": {"a": "b"}})
    assert res["failed"] and "primary: namespace 'nowhere' does not exist" in res["msg"]
    res = run_module("config_patch", {**kube, "namespace": NS, "name": CM, "data": {"feature.on": True}})
    assert res["failed"] and "ConfigMap values are strings: quote it" in res["msg"]
    res = run_module(
        "config_patch",
        {**kube, "namespace": NS, "name": CM, "data": {"a": "b"}, "restart_order": "cluster_by_cluster", "wait": False},
    )
    assert res["failed"] and res["msg"] == (
        "restart_order=cluster_by_cluster waits for each cluster's rollouts: it needs wait=true"
    )
    with read_only(lab) as viewer:
        res = run_module("config_patch", {**viewer, "namespace": NS, "name": CM, "data": {"db.host": "x"}})
        listed = run_module("config_patch", {**viewer, "namespace": NS, "name": CM, "list_secrets": True}, check=True)
    assert res["failed"]
    assert "forbidden to patch configmap microservices/microservice-config" in res["msg"]
    assert "nothing was written" in res["msg"]
    # A user who may read secrets still gets their names only.
    assert not listed["failed"] and [s["name"] for s in listed["secrets"]] == ["db-credentials"]
    assert no_secret_values(lab, listed)
    assert data(lab, "primary")["db.host"] == "127.0.0.1"


def test_consumers_are_found_from_pod_templates_not_names(lab, scratch):
    c = api(lab, "primary")
    core, apps = client.CoreV1Api(c), client.AppsV1Api(c)
    core.create_namespaced_config_map(scratch, {"metadata": {"name": "app-config"}, "data": {"mode": "a", "size": "1"}})

    def dep(name, **container):
        return {
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "terminationGracePeriodSeconds": 2,
                        "containers": [{"name": "app", "image": "incidentlab/demo-service:1.0", **container}],
                    },
                },
            },
        }

    env = [{"name": "SERVICE_NAME", "value": "user-service"}]
    apps.create_namespaced_deployment(
        scratch, dep("whole", env=env, envFrom=[{"configMapRef": {"name": "app-config"}}])
    )
    key_ref = {"name": "SIZE", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "size"}}}
    apps.create_namespaced_deployment(scratch, dep("sized", env=[*env, key_ref]))
    apps.create_namespaced_deployment(scratch, dep("app-config-reader", env=env))  # its name is no reference
    for name in ("whole", "sized", "app-config-reader"):
        kubectl(lab, "primary", "rollout", "status", f"deployment/{name}", "-n", scratch, "--timeout=60s")
    res = run_module(
        "config_patch",
        {
            "kubeconfig": lab.cfg.path("kubeconfig").as_posix(),
            "context": "primary",
            "namespace": scratch,
            "name": "app-config",
            "data": {"mode": "b"},
            "restart_consumers": True,
        },
    )
    assert not res["failed"], res["msg"]
    consumers = {c["name"]: c for c in res["configmaps"][0]["consumers"]}
    assert set(consumers) == {"whole", "sized"}
    assert consumers["whole"]["restarted"] and consumers["whole"]["references"] == [
        {"how": "envFrom", "container": "app"}
    ]
    assert not consumers["sized"]["affected"] and not consumers["sized"]["restarted"]  # reads only `size`
    assert res["msg"].endswith("; restarted 1 consumer(s), all rolled out")
    for name in ("whole", "sized", "app-config-reader"):
        apps.delete_namespaced_deployment(name, scratch)


def cm_version(lab, region, name=CM, ns=NS):
    return client.CoreV1Api(api(lab, region)).read_namespaced_config_map(name, ns).metadata.resource_version


def test_check_mode_is_the_servers_dry_run_of_the_same_patch(lab):
    """Check mode sends the real patch with dryRun=All: the data shown is the server's answer, nothing is
    stored (resourceVersion unchanged), and what the server refuses fails check mode as it fails the run."""
    args = {**module_clusters(lab), "namespace": NS, "name": CM, "data": {"db.host": "10.0.2.20", "pool.size": 8}}
    versions = {r: cm_version(lab, r) for r in REGIONS}
    plan = run_module("config_patch", args, check=True, diff=True)
    assert not plan["failed"], plan["msg"]
    assert plan["changed"] is True
    for cm in plan["configmaps"]:
        assert cm["changed_keys"] == ["db.host", "pool.size"]
        assert cm["data"]["db.host"] == "10.0.2.20" and cm["data"]["pool.size"] == "8" and cm["data"]["db.name"]
        assert cm["resource_version"] == versions[cm["cluster"]]  # the dry run's answer: nothing stored
    assert {"db.host: 10.0.2.20", "pool.size: 8"} <= set(plan["diff"][0]["after"].splitlines())
    assert {r: cm_version(lab, r) for r in REGIONS} == versions

    # An invalid key: the server's validation, in check mode as in the real run.
    bad = {**args, "data": {"not a key!": "x"}}
    check, real = run_module("config_patch", bad, check=True), run_module("config_patch", bad)
    for res in (check, real):
        assert res["failed"] and "a valid config key must consist of alphanumeric characters" in res["msg"], res
    assert check["msg"].startswith("2 of 2 patch(es) would fail (the server refused the dry run): primary/")
    assert "API error 422 while trying to patch configmap microservices/microservice-config (dry run)" in check["msg"]
    assert real["msg"].startswith("2 of 2 patch(es) failed: primary/")
    assert "API error 422 while trying to patch configmap microservices/microservice-config (" in real["msg"]
    assert check["msg"].endswith("; nothing was written") and real["msg"].endswith("; nothing was written")

    # A user who may read but not patch: refused in check mode too (the dry run needs the same permission).
    with read_only(lab) as viewer:
        viewer_args = {**viewer, "namespace": NS, "name": CM, "data": {"db.host": "x"}}
        check = run_module("config_patch", viewer_args, check=True)
    assert check["failed"]
    assert "forbidden to patch configmap microservices/microservice-config (dry run)" in check["msg"]
    assert 'User "incident-viewer" cannot patch resource "configmaps"' in check["msg"]
    assert {r: cm_version(lab, r) for r in REGIONS} == versions


def test_an_immutable_configmap_fails_check_mode_as_it_fails_the_run(lab, scratch):
    """Only the server knows that an immutable ConfigMap refuses a change: check mode asks it."""
    core = client.CoreV1Api(api(lab, "primary"))
    core.create_namespaced_config_map(
        scratch, {"metadata": {"name": "frozen"}, "data": {"mode": "a"}, "immutable": True}
    )
    args = {"kubeconfig": lab.cfg.path("kubeconfig").as_posix(), "context": "primary", "namespace": scratch}
    args.update(name="frozen", data={"mode": "b"})
    version = cm_version(lab, "primary", "frozen", scratch)
    check, real = run_module("config_patch", args, check=True), run_module("config_patch", args)
    for res in (check, real):
        assert res["failed"] and "field is immutable when `immutable` is set" in res["msg"], res["msg"]
    assert "would fail" in check["msg"]
    assert cm_version(lab, "primary", "frozen", scratch) == version
    core.delete_namespaced_config_map("frozen", scratch)
