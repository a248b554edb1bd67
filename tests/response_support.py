"""Helpers for the tests that run incidentctl against a lab of their own (e2e, chaos)."""

from __future__ import annotations

import json
from pathlib import Path

import pymysql
from kubernetes import client

from incidentctl.record import Incident
from incidentlab import mariadb
from kubeutil import NS, REGIONS, api
from support import db, incidentctl


def respond(env, *args: str, rc: int = 0) -> tuple[dict, Incident]:
    """incidentctl respond --json on the lab; the exit code must be ``rc``."""
    res = incidentctl("respond", "--inventory", "lab", "--json", *args, env=env, timeout=600)
    assert res.returncode == rc, res.stdout[-3000:] + res.stderr[-3000:]
    doc = json.loads(res.stdout)
    return doc, Incident.open(Path(env["INCIDENTCTL_INCIDENTS_DIR"]), doc["incident"])


def db_state(lab, name: str) -> dict:
    with mariadb.admin(lab.cfg, name, lab.secrets()) as conn:
        ro = mariadb.execute(conn, "SELECT @@read_only AS ro")[0]["ro"]
        return {"read_only": bool(ro), "replica": mariadb.replica_status(conn) is not None}


def platform_state(lab) -> dict:
    """What a procedure could change: database roles, the services' config, pods, the traffic switch."""
    state = {"upstream": lab.cfg.path("nginx", "global", "upstream.conf").read_text()}
    for region in REGIONS:
        core, apps = client.CoreV1Api(api(lab, region)), client.AppsV1Api(api(lab, region))
        state[region] = {
            "config": core.read_namespaced_config_map("microservice-config", NS).data,
            "replicas": {d.metadata.name: d.spec.replicas for d in apps.list_namespaced_deployment(NS).items},
            "pods": sorted(p.metadata.name for p in core.list_namespaced_pod(NS).items),
        }
    for name in mariadb.DB_NODES:
        if lab.procs.get(name) and lab.procs.get(name).running:
            state[name] = db_state(lab, name)
    return state


def configmap_ports(lab) -> dict[str, str]:
    return {
        region: client.CoreV1Api(api(lab, region)).read_namespaced_config_map("microservice-config", NS).data["db.port"]
        for region in REGIONS
    }


def app_can_write(lab, name: str) -> bool:
    """The application's account inserts a row on that server (read_only stops it)."""
    try:
        with db(lab, name) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO heartbeat (source) VALUES ('split-brain probe')")
        return True
    except pymysql.MySQLError as exc:
        if exc.args[0] == 1290:  # --read-only
            return False
        raise


def triage_json(env) -> dict:
    res = incidentctl("triage", "-i", "lab", "--json", env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout)
