"""Faults are real: the databases report them, Prometheus alerts on them, Alertmanager delivers the alert."""

from __future__ import annotations

import urllib.parse

import pytest

from incidentlab import mariadb, sinks
from support import wait_for


def _replica_status(lab):
    with mariadb.admin(lab.cfg, "db-replica", lab.secrets()) as conn:
        rs = mariadb.replica_status(conn)
        rs["executed"] = mariadb.execute(conn, "SELECT @@gtid_slave_pos AS p")[0]["p"]
        return rs


def test_replica_lag_stops_the_sql_thread_and_heal_catches_up(lab, healed):
    lab.break_fault("replica-lag")
    rs = _replica_status(lab)
    assert rs["Slave_SQL_Running"] == "No" and rs["Slave_IO_Running"] == "Yes"
    # The IO thread still receives what the primary writes: there is real lag to apply.
    assert mariadb.gtid_seq(rs["Gtid_IO_Pos"]) >= mariadb.gtid_seq(rs["executed"]) + 25
    lab.heal("replica-lag")
    rs = _replica_status(lab)
    assert rs["Slave_SQL_Running"] == "Yes"


def test_replication_broken_alert_reaches_the_webhook_sink(lab, healed):
    before = max((r["seq"] for r in sinks.read_requests(lab.cfg)), default=0)
    lab.break_fault("replication-broken")
    rs = wait_for(lambda: (s := _replica_status(lab))["Last_IO_Errno"] and s, 30, "IO thread error")
    assert rs["Slave_IO_Running"] != "Yes"
    assert "Access denied" in rs["Last_IO_Error"]

    def alert_delivered(status: str):
        for req in sinks.read_requests(lab.cfg, "/alertmanager", since_seq=before):
            for alert in (req["json"] or {}).get("alerts", []):
                if alert["labels"]["alertname"] == "ReplicationBroken" and alert["status"] == status:
                    return alert
        return None

    alert = wait_for(lambda: alert_delivered("firing"), 40, "ReplicationBroken firing at the sink")
    assert alert["labels"]["db"] == "db-replica"
    assert alert["labels"]["severity"] == "critical"
    lab.heal("replication-broken")
    assert _replica_status(lab)["Slave_IO_Running"] == "Yes"
    wait_for(lambda: alert_delivered("resolved"), 40, "ReplicationBroken resolved at the sink")


@pytest.mark.parametrize("fault", ["db-primary-down", "db-primary-partitioned"])
def test_database_down_alert_fires_in_prometheus(lab, healed, fault):
    """Stopped or frozen (a partition: connections hang), the primary is reported down, and the replica's
    metrics stay (a frozen server must not fail the exporter's whole scrape)."""
    from incidentlab.monitoring import http_json

    lab.break_fault(fault)

    def firing():
        alerts = http_json(lab.cfg.url("prometheus", "/api/v1/alerts"))["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "DatabaseDown" and a["state"] == "firing"]

    alerts = wait_for(firing, 40, "DatabaseDown firing")
    assert alerts[0]["labels"]["db"] == "db-primary"
    query = urllib.parse.quote('mysql_up{db="db-replica"}')
    replica = http_json(lab.cfg.url("prometheus", f"/api/v1/query?query={query}"))["data"]["result"]
    assert [r["value"][1] for r in replica] == ["1"]
