"""`incidentctl lab ...`: run the local lab that stands in for the platform."""

from __future__ import annotations

import functools
import inspect
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .config import ENV_LAB_DIR, ENV_PORT_BASE
from .errors import LabError, LabInputError
from .lab import Lab

app = typer.Typer(
    help="Run the local lab: a MariaDB primary/replica pair (or more servers: up --topology), Prometheus, "
    "Alertmanager, notification sinks, a Kubernetes API per region (two, or three: up --regions) with the demo "
    "services behind nginx load balancers, with fault injection. "
    "Everything binds 127.0.0.1; state lives in one lab directory.",
    no_args_is_help=True,
)
traffic_app = typer.Typer(
    help="Pause, resume or show the traffic generator (about 10 requests/s through lb-global and lb-secondary). "
    "A pause lasts across commands until `lab traffic resume`, `lab heal`, `lab down` or `lab up`.",
    no_args_is_help=True,
)
app.add_typer(traffic_app, name="traffic")
out = Console()
err = Console(stderr=True)

LabDir = Annotated[
    Path | None,
    typer.Option(
        "--lab-dir", envvar=ENV_LAB_DIR, help="Lab directory (default: .lab/ in the project).", show_default=False
    ),
]
PortBase = Annotated[
    int | None,
    typer.Option(
        "--port-base",
        envvar=ENV_PORT_BASE,
        help="First port of the lab's range (default 24000; ports are base+offset, e.g. db-primary = base+306).",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Server = Annotated[
    str | None,
    typer.Option(
        "--server",
        help="The database server a database fault acts on (default: db-primary, or the replica for the replica "
        "faults); `lab status` lists the servers of the running topology.",
        show_default=False,
    ),
]


def _target(fault: str | None, target: str | None, server: str | None) -> str | None:
    from .faults import FAULTS

    if server and fault in FAULTS and not FAULTS[fault].server:
        raise LabInputError(f"fault {fault} does not act on a database server: --server does not apply")
    if target and server and target != server:
        raise LabInputError(f"give the server once: {target!r} and --server {server!r} differ")
    return server or target


AlertWebhook = Annotated[
    str | None,
    typer.Option(
        "--alert-webhook",
        help="Alertmanager also posts every alert there (the sink keeps receiving), e.g. incidentctl watch's "
        "http://127.0.0.1:5050/alerts.",
        show_default=False,
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="INCIDENTLAB_ALERT_WEBHOOK_TOKEN",
        help="Bearer token Alertmanager sends to the alert webhook (http_config.authorization).",
        show_default=False,
    ),
]


def reflowed(fn):
    """Each paragraph of the command's docstring as one line, so that the help wraps it to the terminal.

    Typer's "rich" help (the controller's mode, which the lab's commands inherit) keeps a docstring's
    line breaks, which cut sentences in the middle on any terminal but the source's width.
    """
    doc = inspect.cleandoc(fn.__doc__ or "")
    fn.__doc__ = "\n\n".join(" ".join(line.strip() for line in para.splitlines()) for para in doc.split("\n\n"))
    return fn


def expected_errors(fn):
    """Expected failures become one line on stderr and a distinct exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LabError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def _progress(msg: str) -> None:
    err.print(f"[green]==>[/green] {msg}", highlight=False)


@app.command()
@reflowed
@expected_errors
def up(
    lab_dir: LabDir = None,
    port_base: PortBase = None,
    topology: Annotated[
        str | None,
        typer.Option(
            "--topology",
            help="Database servers to run: pair (db-primary and db-replica, the default), replicas (db-primary with "
            "db-replica, db-spare and the delayed db-delayed), clusters (the pair as cluster shop, and "
            "payments-primary/payments-replica used by payment-service).",
            show_default=False,
        ),
    ] = None,
    regions: Annotated[
        int | None,
        typer.Option(
            "--regions",
            help="Kubernetes regions to run, each with its load balancer: 2 (primary and secondary, the default) "
            "or 3 (and tertiary). Traffic normally goes to primary.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Bring the lab up (idempotent: a running lab is left as it is)."""
    lab = Lab.open(lab_dir, port_base)
    lab.up(progress=_progress, topology=topology, regions=regions)
    _print_status(lab, as_json=False)


@app.command("alert-webhook")
@reflowed
@expected_errors
def alert_webhook_(
    url: Annotated[str, typer.Argument(help="Where Alertmanager also posts every alert, or `off`.")],
    token: Token = None,
    lab_dir: LabDir = None,
) -> None:
    """Route every alert of the running lab's Alertmanager to URL as well as to the HTTP sink.

    incidentctl watch --port 5050 listens on http://127.0.0.1:5050/alerts. The URL off routes to the sink only.
    """
    Lab.open(lab_dir).set_alert_webhook(None if url == "off" else url, token, progress=_progress)


@app.command()
@reflowed
@expected_errors
def down(lab_dir: LabDir = None) -> None:
    """Stop every lab process (also leftovers of a crashed run) and discard the lab's data."""
    Lab.open(lab_dir).down(progress=_progress)


@app.command()
@reflowed
@expected_errors
def status(lab_dir: LabDir = None, as_json: Json = False) -> None:
    """Show each component with its address and health. Exit 1 when something is unhealthy."""
    lab = Lab.open(lab_dir)
    if not _print_status(lab, as_json):
        raise typer.Exit(1)


def _print_status(lab: Lab, as_json: bool) -> bool:
    st = lab.state()
    comps = lab.status()
    healthy = bool(comps) and all(c.healthy for c in comps) and st.get("status") == "up"
    doc = {
        "lab_dir": str(lab.cfg.lab_dir),
        "status": st.get("status", "absent"),
        "healthy": healthy,
        "port_base": lab.cfg.port_base,
        "topology": st.get("topology", "pair") if st else None,
        "regions": list(lab.regions),
        "components": [c.as_dict() for c in comps],
        "faults": lab.active_faults(),
        "secrets_file": str(lab.cfg.secrets_file),
        "kubeconfig": str(lab.cfg.path("kubeconfig")),
    }
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return healthy
    topo = f", {doc['topology']} topology" if doc["topology"] and doc["topology"] != "pair" else ""
    topo += f", {len(doc['regions'])} regions" if len(doc["regions"]) != 2 else ""
    table = Table(title=f"lab {lab.cfg.lab_dir} ({doc['status']}{topo})", title_justify="left")
    for col in ("component", "kind", "address", "health", "detail"):
        table.add_column(col, overflow="fold")
    for c in comps:
        health = (
            "[green]healthy[/green]"
            if c.healthy
            else ("[red]down[/red]" if not c.running else "[yellow]unhealthy[/yellow]")
        )
        table.add_row(c.name, c.kind, c.address, health, c.detail)
    out.print(table)
    for f in doc["faults"]:
        out.print(f"[yellow]active fault:[/yellow] {f['name']}{' ' + f['arg'] if f.get('arg') else ''}")
    out.print(f"passwords: {doc['secrets_file']} (mode 0600)", highlight=False)
    out.print(f"kubeconfig: {doc['kubeconfig']} (contexts {', '.join(doc['regions'])})", highlight=False)
    return healthy


@app.command("break")
@reflowed
@expected_errors
def break_(
    fault: Annotated[str, typer.Argument(help="Fault to inject; `incidentctl lab faults` lists them.")],
    target: Annotated[str | None, typer.Argument(help="What the fault applies to, for faults that need it.")] = None,
    server: Server = None,
    lab_dir: LabDir = None,
) -> None:
    """Inject a real fault into the running lab."""
    out.print(Lab.open(lab_dir).break_fault(fault, _target(fault, target, server)), highlight=False)


@app.command()
@reflowed
@expected_errors
def heal(
    fault: Annotated[str | None, typer.Argument(help="Fault to heal (default: every active fault).")] = None,
    target: Annotated[str | None, typer.Argument(help="Target of the fault, when it has one.")] = None,
    server: Server = None,
    lab_dir: LabDir = None,
) -> None:
    """Undo injected faults and restart whatever died, restoring a working topology.

    After a database promotion the healed topology is the promoted one: the old primary
    comes back read-only and replicates from the new primary.
    """
    for msg in Lab.open(lab_dir).heal(fault, _target(fault, target, server)):
        out.print(msg, highlight=False)


@app.command()
@reflowed
def faults() -> None:
    """List the faults `break` can inject."""
    from .faults import FAULTS

    table = Table("fault", "argument", "what it does")
    for f in sorted(FAULTS.values(), key=lambda f: f.name):
        arg = (f"[{f.arg}]" if f.default_arg else f.arg) or ("[--server NAME]" if f.server else "")
        table.add_row(f.name, arg, f.summary)
    out.print(table)


@traffic_app.command("pause")
@reflowed
@expected_errors
def traffic_pause(lab_dir: LabDir = None) -> None:
    """Pause the traffic generator; returns once none of its requests is in flight.

    From then on no generated request reaches the services or their databases, across commands, until
    `incidentctl lab traffic resume` (or `lab heal`, `lab down`, `lab up`). `lab status` shows the pause.
    """
    lab = Lab.open(lab_dir)
    lab.require_up()
    if not lab.pause_traffic():
        out.print("traffic generator paused (it is not running: it sends nothing when it starts)", highlight=False)
        return
    out.print("traffic generator paused: no request in flight", highlight=False)


@traffic_app.command("resume")
@reflowed
@expected_errors
def traffic_resume(lab_dir: LabDir = None) -> None:
    """Let the traffic generator send again."""
    lab = Lab.open(lab_dir)
    lab.require_up()
    out.print(
        "traffic generator resumed" if lab.resume_traffic() else "traffic generator was not paused", highlight=False
    )


@traffic_app.command("status")
@reflowed
@expected_errors
def traffic_status(lab_dir: LabDir = None, as_json: Json = False) -> None:
    """Show whether the traffic generator sends or is paused (and since when)."""
    from . import traffic

    lab = Lab.open(lab_dir)
    doc = traffic.state(lab.cfg, lab.procs.get("traffic"))
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    out.print(f"traffic generator: {traffic.describe(lab.cfg)}", highlight=False, soft_wrap=True)
