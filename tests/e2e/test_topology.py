"""P0 on databases beyond one pair, on labs of their own: a primary with three replicas (one behind, one
delayed on purpose), and two database clusters of which only one loses its primary."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from incidentlab import mariadb
from kubeutil import NS, REGIONS, SERVICES, api
from response_support import db_state, respond
from support import db, run_playbook, scalar


def write_orders(lab, n: int, status: str) -> int:
    """n orders written on the primary, each committed (acknowledged); returns how many it has of them."""
    with db(lab, "db-primary") as conn:
        conn.cursor().executemany(
            "INSERT INTO orders (user_id, total, status) VALUES (1, %s, %s)", [(i, status) for i in range(n)]
        )
        return scalar(conn, "SELECT COUNT(*) FROM orders WHERE status=%s", (status,))


def orders(lab, name: str, status: str) -> int:
    with db(lab, name) as conn:
        return scalar(conn, "SELECT COUNT(*) FROM orders WHERE status=%s", (status,))


def replica(lab, name: str) -> dict:
    with mariadb.admin(lab.cfg, name, lab.secrets()) as conn:
        return mariadb.replica_status(conn) or {}


def configmaps(lab) -> dict:
    return {
        region: client.CoreV1Api(api(lab, region)).read_namespaced_config_map("microservice-config", NS).data
        for region in REGIONS
    }


def pods(lab) -> dict:
    """region -> service -> the names of its pods."""
    out = {}
    for region in REGIONS:
        items = client.CoreV1Api(api(lab, region)).list_namespaced_pod(NS).items
        out[region] = {s: sorted(p.metadata.name for p in items if p.metadata.labels.get("app") == s) for s in SERVICES}
    return out


@pytest.mark.topology("replicas")
def test_the_most_advanced_replica_is_promoted_and_the_others_follow_it_with_every_received_row(own_lab, tmp_path):
    """db-replica (promotion rule prefer) stopped receiving for a while; db-spare received everything. P0 promotes
    db-spare, db-replica catches up from it and db-delayed follows it keeping its delay; every row the old primary
    acknowledged and a replica received is on the new primary. Check mode showed that plan first, changing nothing."""
    lab = own_lab
    secrets = lab.secrets()
    with lab.traffic_paused():
        with mariadb.admin(lab.cfg, "db-replica", secrets) as conn:
            mariadb.execute(conn, "STOP SLAVE IO_THREAD")
        written = write_orders(lab, 40, "ACKED")
        mariadb.wait_caught_up(lab.cfg, secrets, "db-spare", "db-primary")
        mariadb.wait_caught_up(lab.cfg, secrets, "db-delayed", "db-primary", received=True)
        assert orders(lab, "db-replica", "ACKED") == 0
        lab.break_fault("db-primary-down")

        planned = run_playbook(
            "p0_critical", lab, {"incident_dir": str(tmp_path / "check")}, check=True, skip_tags="notify"
        )
        assert planned.ok, planned.stdout[-3000:]
        (plan,) = planned.result("The plan of each database cluster")["res"]["msg"]
        assert plan.startswith("shop: primary db-primary is unreachable; promote db-spare")
        assert "db-replica (prefer) lacks 40 of its transactions" in plan
        assert "db-delayed excluded: delayed by 3600 s on purpose" in plan
        assert planned.result("Promote the replica")["changed"]  # what it would do
        assert db_state(lab, "db-spare") == {"read_only": True, "replica": True}  # and did not

        run = run_playbook(
            "p0_critical", lab, {"incident_dir": str(tmp_path), "confirm_destructive": True}, skip_tags="notify"
        )
    assert run.ok, run.stdout[-3000:]
    assert run.outcome["verified"] is True and run.outcome["gaps"] == []
    promoted = run.result("Promote the replica")["res"]
    assert promoted["promoted"] is True and "siblings" in promoted["msg"]

    assert db_state(lab, "db-spare") == {"read_only": False, "replica": False}
    assert orders(lab, "db-spare", "ACKED") == written
    spare = str(lab.cfg.ports["db-spare"])
    for name in ("db-replica", "db-delayed"):
        rs = replica(lab, name)
        assert str(rs["Master_Port"]) == spare, name
        assert rs["Slave_IO_Running"] == "Yes" and rs["Slave_SQL_Running"] == "Yes", name
        assert rs["Using_Gtid"] == "Slave_Pos"
    assert replica(lab, "db-replica")["Seconds_Behind_Master"] == 0
    assert orders(lab, "db-replica", "ACKED") == written  # caught up from the new primary
    assert replica(lab, "db-delayed")["SQL_Delay"] == 3600  # still a copy of the past
    for region, data in configmaps(lab).items():
        assert data["db.port"] == spare, region
    (record,) = list((tmp_path / "changes").glob("*-p0_critical.json"))
    database = json.loads(record.read_text())["database"]
    assert database["promoted"] == "db-spare" and database["old_primary"] == "db-primary"
    assert sorted(database["clusters"]["shop"]["siblings"]) == ["db-delayed", "db-replica"]


@pytest.mark.topology("clusters")
def test_two_clusters_only_the_one_whose_primary_died_fails_over(own_lab, ctl_env):
    """payments-primary dies: triage reports each cluster, P0 promotes payments-replica and re-points and restarts
    payment-service alone; the shop cluster, the other services and their pods are as they were."""
    lab = own_lab
    ports = lab.cfg.ports
    before_pods, before_config = pods(lab), configmaps(lab)
    for data in before_config.values():
        assert (data["db.port"], data["payments.db.port"]) == (str(ports["db-primary"]), str(ports["payments-primary"]))
    lab.break_fault("db-primary-down", "payments-primary")

    doc, inc = respond(ctl_env, "--yes")
    assert doc["severity"] == "P0" and doc["status"] == "mitigated" and doc["verified"] is True, doc
    assert any("payments-primary is unreachable" in r for r in doc["reasons"])
    findings = json.loads((inc.path / "triage" / "findings.json").read_text())["findings"]
    assert set(findings["database_clusters"]) == {"shop", "payments"}
    assert findings["database_clusters"]["payments"]["primary_down"] == ["payments-primary"]
    assert findings["database_clusters"]["shop"]["primary_down"] == []
    assert findings["topology"]["split_brain"] is False  # two clusters, two primaries: as it should be

    after_pods, after_config = pods(lab), configmaps(lab)
    for region in REGIONS:
        assert after_config[region] == {**before_config[region], "payments.db.port": str(ports["payments-replica"])}
        for service in SERVICES:
            if service == "payment-service":
                assert not set(after_pods[region][service]) & set(before_pods[region][service]), region
            else:
                assert after_pods[region][service] == before_pods[region][service], (region, service)
    assert db_state(lab, "payments-replica") == {"read_only": False, "replica": False}
    assert db_state(lab, "db-primary") == {"read_only": False, "replica": False}
    assert db_state(lab, "db-replica") == {"read_only": True, "replica": True}
    timeline = [e for e in inc.timeline() if e.get("module") == "incident.response.config_patch" and e["changed"]]
    assert len(timeline) == 1 and "payments.db.port" in timeline[0]["summary"]


@pytest.mark.topology("clusters")
def test_a_cluster_whose_step_fails_does_not_stop_the_next_and_the_outcome_names_it(own_lab, tmp_path):
    """Both primaries die; the payments cluster's ConfigMap cannot be patched (it names one that does not exist).
    Its promotion stands, the shop cluster is still failed over, and the run fails saying what is left."""
    lab = own_lab
    lab.break_fault("db-primary-down", "payments-primary")
    lab.break_fault("db-primary-down")
    clusters = dict(lab.state()["database_clusters"])
    clusters["payments"] = dict(clusters["payments"], config={"name": "no-such-config"})
    run = run_playbook(
        "p0_critical",
        lab,
        {"incident_dir": str(tmp_path), "confirm_destructive": True, "database_clusters": clusters},
        skip_tags="notify",
    )
    assert not run.ok
    stop = run.result("Stop here when a database step failed")
    assert stop["status"] == "failed" and stop["res"]["msg"].startswith("payments: ")
    assert db_state(lab, "payments-replica") == {"read_only": False, "replica": False}
    assert db_state(lab, "db-replica") == {"read_only": False, "replica": False}  # the next cluster was handled
    for data in configmaps(lab).values():
        assert data["db.port"] == str(lab.cfg.ports["db-replica"])
        assert data["payments.db.port"] == str(lab.cfg.ports["payments-primary"])
    assert any(
        g.startswith("cluster payments: its services were not pointed at payments-replica") for g in run.outcome["gaps"]
    )
    (record,) = list((tmp_path / "changes").glob("*-p0_critical.json"))
    database = json.loads(record.read_text())["database"]
    assert database["promoted"] == "payments-replica, db-replica"
    assert set(database["clusters"]) == {"payments", "shop"}
