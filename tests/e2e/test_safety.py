"""The safety defects found under faults, each reproduced on a lab of its own and answered by P0.

* a split brain after a partition (the old primary answers again, writable, beside the promoted one),
* a failover left half-done (the replica promoted, the services still configured for the dead primary),
  reached by a promotion by hand and by a run stopped between the promotion and the ConfigMap patch,
* the primary database down together with the primary region: traffic moves once the database is repaired.
"""

from __future__ import annotations

import signal

from kubernetes import client

from incidentlab import mariadb
from kubeutil import NS, REGIONS, SERVICES, api, http
from response_support import app_can_write, configmap_ports, db_state, respond, triage_json
from support import run_module, run_playbook, wait_for


def test_split_brain_after_a_partition_is_found_and_the_unused_primary_fenced(own_lab, ctl_env):
    """The sequence of the report: the primary freezes, P0 promotes the replica and moves the services, the
    partition ends without `lab heal` - two writable primaries. Triage calls it P0 on its own; P0 fences the
    one the services no longer use, and the application can write only on the promoted one."""
    with mariadb.admin(own_lab.cfg, "db-replica", own_lab.secrets()) as conn:
        # The replica gives up on a silent primary after slave_net_timeout: short here, so that the gate sees
        # a primary nobody reaches (as after the default 60 s) within the test.
        mariadb.execute(conn, ["STOP SLAVE IO_THREAD", "SET GLOBAL slave_net_timeout = 2", "START SLAVE IO_THREAD"])
    mariadb.wait_caught_up(own_lab.cfg, own_lab.secrets(), "db-replica", "db-primary")
    own_lab.break_fault("db-primary-partitioned")

    def replica_gave_up():
        with mariadb.admin(own_lab.cfg, "db-replica", own_lab.secrets()) as conn:
            return mariadb.replica_status(conn)["Slave_IO_Running"] != "Yes"

    wait_for(replica_gave_up, 60, "the replica to notice the silent primary")
    doc, first = respond(ctl_env, "--yes")
    assert doc["status"] == "mitigated"
    assert db_state(own_lab, "db-replica") == {"read_only": False, "replica": False}
    replica_port = str(own_lab.cfg.ports["db-replica"])
    assert set(configmap_ports(own_lab).values()) == {replica_port}

    # The partition ends, nobody heals: the old primary answers again, writable.
    assert own_lab.procs.kill("db-primary", signal.SIGCONT)
    assert wait_for(lambda: app_can_write(own_lab, "db-primary"), 30, "the old primary to take writes again")
    found = triage_json(ctl_env)
    assert found["findings"]["topology"]["split_brain"] is True
    assert found["classification"]["severity"] == "P0"
    assert any("split brain" in r for r in found["classification"]["reasons"])

    doc, second = respond(ctl_env, "--yes")
    assert second.id != first.id and second.data["severity"] == "P0"  # the first incident was mitigated
    fence = next(e for e in second.timeline() if e.get("module") == "incident.response.mysql_fence")
    assert fence["changed"] and fence["summary"]
    assert not app_can_write(own_lab, "db-primary")  # fenced
    assert app_can_write(own_lab, "db-replica")  # the one the services use
    assert set(configmap_ports(own_lab).values()) == {replica_port}  # nothing moved back
    assert any("rebuild db-primary as a replica of db-replica" in n for n in doc["needs_human"])


def _points_at_dead_primary_after(own_lab, ctl_env, how: str) -> None:
    primary_port = str(own_lab.cfg.ports["db-primary"])
    assert set(configmap_ports(own_lab).values()) == {primary_port}
    assert db_state(own_lab, "db-replica") == {"read_only": False, "replica": False}, how
    found = triage_json(ctl_env)
    assert found["findings"]["topology"]["stale_regions"] == sorted(REGIONS)
    assert any("services use a database that is not the primary" in r for r in found["classification"]["reasons"])

    doc, inc = respond(ctl_env, "--yes")
    assert doc["status"] == "mitigated" and doc["verified"] is True, doc
    assert sorted(doc["healthy"]) == sorted(SERVICES)
    assert set(configmap_ports(own_lab).values()) == {str(own_lab.cfg.ports["db-replica"])}
    tasks = [
        e for e in inc.timeline() if e.get("source") == "ansible" and e["run"].endswith("-respond")
    ]  # triage and P0 (--yes)
    promote = next(e for e in tasks if e["module"] == "incident.response.mysql_promote")
    assert promote["outcome"] == "skipped"  # nothing to promote: it was done
    patch = next(e for e in tasks if e["module"] == "incident.response.config_patch")
    assert patch["changed"] and "restarted 10 consumer(s)" in patch["summary"]


def test_a_promotion_made_by_hand_is_finished_by_re_pointing_the_services(own_lab, ctl_env):
    own_lab.break_fault("db-primary-down")
    secrets = own_lab.secrets()
    promoted = run_module(
        "mysql_promote",
        {
            "login_host": "127.0.0.1",
            "login_port": own_lab.cfg.ports["db-replica"],
            "login_user": "incident_admin",
            "login_password": secrets["admin"],
        },
    )
    assert promoted.get("promoted") is True, promoted
    _points_at_dead_primary_after(own_lab, ctl_env, "promoted by hand")


def test_a_failover_stopped_between_promotion_and_patch_is_finished(own_lab, ctl_env, tmp_path):
    """P0 runs up to the promotion and no further (its ConfigMap step left out, as when the run is killed
    between the two): the next response finishes the job instead of restarting pods that cannot get ready."""
    own_lab.break_fault("db-primary-down")
    run = run_playbook(
        "p0_critical",
        own_lab,
        {"incident_dir": str(tmp_path), "confirm_destructive": True},
        skip_tags="repoint,notify,application,verify",
    )
    assert run.result("Promote the replica")["changed"], run.stdout[-3000:]
    _points_at_dead_primary_after(own_lab, ctl_env, "promoted by a stopped P0")


def test_primary_database_and_primary_region_down_together_move_traffic_after_the_database(own_lab, ctl_env):
    """The secondary region's services are down only because of the database the same run repairs: the
    traffic decision is taken again after the database step, and users are served from the secondary."""
    own_lab.break_fault("db-primary-down")
    # Its services cache their health for a second: the response must find the secondary already DOWN,
    # or it moves traffic there at once (the other path, right too, which this test is not about).
    health = own_lab.cfg.url("lb-secondary", "/actuator/health")
    wait_for(lambda: http(health)[0] == 503, 30, "the secondary's load balancer to say DOWN (no database)")
    own_lab.break_fault("region-down")
    doc, inc = respond(ctl_env, "--yes")
    assert doc["status"] == "mitigated" and doc["verified"] is True, doc
    upstream = own_lab.cfg.path("nginx", "global", "upstream.conf").read_text()
    assert f"127.0.0.1:{own_lab.cfg.ports['lb-secondary']}" in upstream
    assert db_state(own_lab, "db-replica") == {"read_only": False, "replica": False}
    secondary = client.CoreV1Api(api(own_lab, "secondary")).read_namespaced_config_map("microservice-config", NS)
    assert secondary.data["db.port"] == str(own_lab.cfg.ports["db-replica"])
    late = [e for e in inc.timeline() if e.get("task", "").startswith("Fail traffic over") and e["changed"]]
    assert [e["task"] for e in late] == [
        "Fail traffic over to the first region by preference that serves now (2.1 step 3, after the database step)"
    ]
    # The frozen primary region serves nobody now: re-pointing it is a follow-up, not a gap.
    assert doc["gaps"] == [] and any("point primary at the new primary" in n for n in doc["needs_human"])
