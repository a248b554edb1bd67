"""AWX as code (deploy/awx/): no AWX runs here, so the asset file goes through awxkit's own reading and
import command as far as they go without a server, and everything it names is checked against the
project: playbooks, inventories, variables, secrets, notification channels, the EDA activation."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import ansible_runner
import pytest
import requests
import yaml
from awxkit import yaml_file
from awxkit.api import resources
from awxkit.api.client import Connection
from awxkit.api.pages import page
from awxkit.api.pages.api import EXPORTABLE_RESOURCES, ApiV2
from awxkit.api.resources import Resources
from awxkit.cli.resource import Import

from support import PROJECT_ROOT, ansible_env

ASSETS = PROJECT_ROOT / "deploy" / "awx" / "assets.yml"
EDA = PROJECT_ROOT / "deploy" / "awx" / "eda-controller.yml"
PLAYBOOKS = PROJECT_ROOT / "playbooks"
PROCEDURES = [
    "triage",
    "p0_critical",
    "p1_high",
    "p2_medium",
    "p3_low",
    "investigate",
    "resolve_config",
    "resolve_deploy",
    "rollback",
    "communicate",
    "postmortem",
]


@pytest.fixture(scope="module")
def assets() -> dict:
    with ASSETS.open() as fh:  # exactly as `awx import -f yaml` reads its input
        return yaml.load(fh, Loader=yaml_file.Loader)


def _page_class(kind: str):
    pattern = getattr(resources, kind)
    return page.get_registered_page(pattern.replace(r"\d+", "1"))


def _objects(assets: dict):
    """Every object the import creates: top-level assets and the workflow's nodes, with their resource."""
    for resource, items in assets.items():
        for item in items:
            yield resource, item
            for node in item.get("related", {}).get("workflow_nodes", []):
                yield "workflow_nodes", node


def _references(value):
    """Natural keys used as values (foreign keys, related sets, roles' objects), not the objects' own."""
    if isinstance(value, dict):
        if "type" in value and ("name" in value or "identifier" in value):
            yield value
            return
        for key, v in value.items():
            if key != "natural_key":
                yield from _references(v)
    elif isinstance(value, list):
        for v in value:
            yield from _references(v)


def _freeze(key: dict) -> str:
    return json.dumps(key, sort_keys=True)


def _api_listing() -> dict[str, str]:
    """What AWX's /api/v2/ answers: its endpoints by name (awxkit's Resources), with AWX's own names for two."""
    renamed = {"inventories/": "inventory", "constructed_inventories/": "constructed_inventory"}
    return {
        renamed.get(value, value[:-1]): f"/api/v2/{value}"
        for attr, value in vars(Resources).items()
        if attr.startswith("_") and isinstance(value, str) and re.fullmatch(r"[a-z_]+/", value)
    }


def test_awx_import_reads_the_file_and_orders_it_until_the_first_request(assets):
    """awxkit's `awx import` command (its Import handler, its YAML loader, ApiV2.import_assets) runs on the file
    until it asks the server for the first resource's fields; there is no server: the request is refused.
    (The `awx` program itself asks the server for its API before it reads anything.)"""
    with socket.socket() as s:  # a port nothing listens on, on this machine's loopback
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    v2 = ApiV2(Connection(f"http://127.0.0.1:{port}"), endpoint="/api/v2/", json=_api_listing())
    # awxkit's own creation order: what the file's objects depend on is created first.
    order = list(v2._dependent_resources())
    assert set(assets) <= set(order)
    for first, then in (
        ("organizations", "teams"),
        ("credential_types", "credentials"),
        ("execution_environments", "projects"),
        ("projects", "inventory_sources"),
        ("inventory", "job_templates"),
        ("notification_templates", "job_templates"),
    ):  # (workflow nodes are related objects: created after every list, so after the job templates)
        assert order.index(first) < order.index(then), (first, then)

    class Client:  # the part of awxkit's CLI client the import command uses
        help = False

        def __init__(self, stdin):
            self.stdin, self.v2, self.authenticated = stdin, v2, False

        def get_config(self, key):
            return {"format": "yaml"}[key]

        def authenticate(self):
            self.authenticated = True

    with ASSETS.open() as fh:
        client = Client(fh)
        with pytest.raises(requests.exceptions.ConnectionError) as refused:
            Import().handle(client, None)
    assert client.authenticated and f"127.0.0.1', port={port}" in str(refused.value).replace('"', "'")


def test_every_object_is_one_awx_import_knows_with_a_complete_natural_key(assets):
    assert set(assets) <= set(EXPORTABLE_RESOURCES), set(assets) - set(EXPORTABLE_RESOURCES)
    for resource, item in _objects(assets):
        key = item["natural_key"]
        cls = _page_class(key["type"])
        assert set(key) - {"type"} <= set(cls.NATURAL_KEY), (resource, key, cls.NATURAL_KEY)
        assert key.get("name", key.get("identifier")) == item.get("name", item.get("identifier")), key


def test_every_reference_names_an_object_of_the_file(assets):
    defined = {_freeze(item["natural_key"]) for _, item in _objects(assets)}
    missing = [
        (item["natural_key"].get("name") or item["natural_key"].get("identifier"), ref)
        for _, item in _objects(assets)
        for ref in _references({k: v for k, v in item.items() if k != "natural_key"})
        if ref.get("type") != "role" and _freeze(ref) not in defined
    ]
    assert missing == []


def _playbook_text(name: str, seen: set | None = None) -> str:
    """A playbook and every file of playbooks/ it names (vars, tasks, imported playbooks, templates)."""
    seen = seen if seen is not None else set()
    path = PLAYBOOKS / name
    if name in seen or not path.is_file():
        return ""
    seen.add(name)
    text = path.read_text()
    for ref in set(re.findall(r"[\w./-]+\.(?:yml|j2)", text)):
        rel = ref.split("playbooks/")[-1]
        text += "\n" + _playbook_text(rel, seen)
    return text


def test_job_templates_name_playbooks_and_variables_that_exist(assets):
    templates = {jt["natural_key"]["name"]: jt for jt in assets["job_templates"]}
    playbooks = {jt["playbook"] for jt in templates.values()}
    assert {f"{p}.yml" for p in PROCEDURES} <= playbooks  # one job template per procedure
    for name, jt in templates.items():
        assert (PLAYBOOKS / jt["playbook"]).is_file(), name
        text = _playbook_text(jt["playbook"])
        spec = jt["related"].get("survey_spec", {}).get("spec", [])
        assert jt["survey_enabled"] == bool(spec), name
        for question in spec:
            assert re.search(rf"\b{question['variable']}\b", text), f"{name}: {question['variable']} is not used"
        variables = {q["variable"]: q for q in spec}
        if "confirm_destructive" in variables:  # destructive steps stay off unless someone says so
            assert variables["confirm_destructive"]["default"] == "false"
            assert re.search(r"tags:.*destructive", text), name
    for source in assets["inventory_sources"]:
        assert (PROJECT_ROOT / source["source_path"]).is_file(), source["source_path"]


def test_the_workflow_runs_triage_an_approval_then_the_chosen_procedure(assets):
    (workflow,) = assets["workflow_job_templates"]
    nodes = {n["identifier"]: n for n in workflow["related"]["workflow_nodes"]}
    assert nodes["triage"]["unified_job_template"]["name"] == "incident: triage"
    assert [n["identifier"] for n in nodes["triage"]["related"]["success_nodes"]] == ["approve"]
    assert nodes["approve"]["related"]["create_approval_template"]["timeout"] > 0
    assert [n["identifier"] for n in nodes["approve"]["related"]["success_nodes"]] == ["procedure"]
    procedure = next(
        jt for jt in assets["job_templates"] if jt["name"] == nodes["procedure"]["unified_job_template"]["name"]
    )
    assert procedure["playbook"] == "chosen_procedure.yml"
    # The workflow's survey reaches every node's playbook: each variable is used by one of them.
    text = _playbook_text("triage.yml") + _playbook_text("chosen_procedure.yml")
    for question in workflow["related"]["survey_spec"]["spec"]:
        assert re.search(rf"\b{question['variable']}\b", text), question["variable"]


def test_the_credential_type_injects_every_secret_the_production_inventory_reads(assets):
    inventory = "\n".join(p.read_text() for p in (PROJECT_ROOT / "inventories" / "example").rglob("*.yml"))
    wanted = set(re.findall(r"lookup\('ansible\.builtin\.env', '(INCIDENT_[A-Z_]+)'\)", inventory))
    (ctype,) = assets["credential_types"]
    assert wanted and set(ctype["injectors"]["env"]) == wanted
    fields = {f["id"] for f in ctype["inputs"]["fields"]}
    for template in ctype["injectors"]["env"].values():
        assert re.fullmatch(r"\{\{ (\w+) \}\}", template).group(1) in fields
    for cred in assets["credentials"]:
        assert set(cred["inputs"].values()) == {"$encrypted$"}  # no secret in the file


def test_the_runbook_s_channels_have_notification_templates(assets):
    channels = yaml.safe_load(
        (PROJECT_ROOT / "inventories" / "example" / "group_vars" / "all" / "notify.yml").read_text()
    )
    kinds = {"slack": "slack", "pagerduty": "pagerduty", "email": "email", "statuspage": "webhook"}
    have = {nt["notification_type"] for nt in assets["notification_templates"]}
    assert {kinds[c["type"]] for c in channels["notify_channels"]} <= have


def test_the_eda_activation_refers_to_the_rulebook_and_the_workflow(assets):
    eda = yaml.safe_load(EDA.read_text())
    activation = eda["rulebook_activation"]
    assert activation["rulebook"] == "alertmanager.yml" and activation["collection"] == "incident.response"
    assert activation["project"] == eda["project"]["name"] == assets["projects"][0]["name"]
    assert activation["extra_var"]["awx_workflow"] == assets["workflow_job_templates"][0]["name"]
    assert activation["extra_var"]["awx_organization"] == assets["organizations"][0]["name"]
    assert activation["decision_environment"] == eda["decision_environment"]["name"]
    assert set(activation["eda_credentials"]) == {c["name"] for c in eda["credentials"]}


def _chosen(tmp_path: Path, extravars: dict) -> dict[str, set[str]]:
    """Run chosen_procedure.yml on the lab inventory with no lab: the outcomes of each play's tasks."""
    outcomes: dict[str, set[str]] = {}
    play = {"name": ""}
    tmp_path.mkdir(parents=True)

    def handler(event):
        data = event.get("event_data") or {}
        if event.get("event") == "playbook_on_play_start":
            play["name"] = data.get("play", "")
        elif event.get("event") in ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"):
            outcomes.setdefault(play["name"], set()).add(event["event"].removeprefix("runner_on_"))
        return False

    ansible_runner.run(
        private_data_dir=str(tmp_path),
        project_dir=str(PLAYBOOKS),
        playbook="chosen_procedure.yml",
        inventory=str(PROJECT_ROOT / "inventories" / "lab"),
        extravars=extravars,
        envvars={**ansible_env(), "INCIDENTLAB_DIR": str(tmp_path / "no-lab")},
        event_handler=handler,
        quiet=True,
    )
    return outcomes


def _ran(outcomes: dict[str, set[str]], play: str) -> set[str]:
    """What a play's tasks did beyond being skipped (a play that ended at its first task did nothing)."""
    return outcomes.get(play, set()) - {"skipped"}


def test_the_chosen_procedure_runs_only_the_procedure_of_the_severity(tmp_path):
    p2 = _chosen(tmp_path / "p2", {"triage": {"classification": {"severity": "P2"}}})
    assert _ran(p2, "P2 medium priority incident response")  # it ran (and found no lab up)
    for other in ("P0 critical incident response", "P1 high priority incident response"):
        assert _ran(p2, other) == set(), other
    assert _ran(p2, "P3 low priority incident") == set()  # the host failed in P2

    # The operator's severity wins over the policy's; without an incident, no procedure runs.
    p3 = _chosen(tmp_path / "p3", {"triage": {"classification": {"severity": "P0"}}, "incident_severity": "P3"})
    assert _ran(p3, "P3 low priority incident")
    for other in (
        "P0 critical incident response",
        "P1 high priority incident response",
        "P2 medium priority incident response",
    ):
        assert _ran(p3, other) == set(), other
    none = _chosen(tmp_path / "none", {"triage": {"classification": {"severity": None}}})
    assert {play for play in none if _ran(none, play)} == {"Choose the procedure"}
