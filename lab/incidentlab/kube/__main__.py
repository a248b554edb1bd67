"""``python -m incidentlab.kube serve|up|down|status`` (see region.py and server.py)."""

from __future__ import annotations

import argparse
import sys

from ..config import LabConfig, read_json
from ..errors import LabError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m incidentlab.kube", description="The lab's Kubernetes API emulator")
    ap.add_argument("--lab-dir", default=None)
    ap.add_argument("--port-base", type=int, default=None)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run one region's emulator in the foreground")
    s.add_argument("--region", required=True)
    s.add_argument("--hpa-period", type=float, default=15.0, help="HPA sync period in seconds (kube default 15)")
    s.add_argument("--progress-deadline", type=int, default=30, help="progressDeadlineSeconds of the lab services")
    # Accepted after the subcommand too (the lab starts `... serve --region R --lab-dir D --port-base N`).
    s.add_argument("--lab-dir", dest="lab_dir_sub", default=None)
    s.add_argument("--port-base", dest="port_base_sub", type=int, default=None)
    sub.add_parser("up", help="start both regions, their LBs and the global LB (standalone, without the lab)")
    sub.add_parser("down", help="stop them")
    sub.add_parser("status", help="show each component")
    args = ap.parse_args(argv)
    try:
        lab_dir = getattr(args, "lab_dir_sub", None) or args.lab_dir
        port_base = getattr(args, "port_base_sub", None) or args.port_base
        cfg = (
            LabConfig.resolve(lab_dir, port_base)
            if lab_dir is None
            else LabConfig(lab_dir, port_base or LabConfig.resolve(lab_dir).port_base)
        )
        if args.cmd == "serve":
            from .server import serve_main

            serve_main(cfg, args.region, args.hpa_period, args.progress_deadline)
            return 0
        from . import cluster as region

        table = region.process_table(cfg)
        if args.cmd == "up":
            # Standalone use (no database unless the lab's runs): the services stay unready.
            region.start(cfg, table, region.db_params(cfg, read_json(cfg.secrets_file) or {}))
            print(f"cluster up; kubeconfig: {region.kubeconfig_path(cfg)}")
        elif args.cmd == "down":
            region.stop(cfg, table)
        else:
            for row in region.status_rows(cfg):
                print(f"{row['name']:<14} {row['address']:<32} {row['health']:<5} {row['detail']}")
            print(f"kubeconfig: {region.kubeconfig_path(cfg)}")
        return 0
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
