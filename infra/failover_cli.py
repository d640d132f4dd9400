"""`twinhost failover SITE --to PROVIDER`: switch a manual-mode site to the other node.

Manual failover is a config change: `failover.active` in the site's stack file, then `pulumi up`
moves the record. This command edits the stack file (comments and layout kept), validates the
result with the same model `pulumi up` uses, and prints the `pulumi up` to run; with `--apply`
and the Pulumi CLI installed it runs it through the Automation API.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from infra.cli import find_project_dir, project_dir_option
from infra.config import NAMESPACE, ConfigError, SiteConfig, parse_config

TARGETS = ("digitalocean", "linode", "both")
EXIT_REFUSED = 2


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("failover", help="switch a manual-mode site to the other node",
                                 parents=[project_dir_option()])
    parser.add_argument("site", help="the site stack name (Pulumi.<site>.yaml)")
    parser.add_argument("--to", required=True, choices=TARGETS, help="the node(s) to serve from")
    parser.add_argument("--apply", action="store_true",
                        help="run `pulumi up` through the Automation API (needs the Pulumi CLI)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    project_dir = find_project_dir(getattr(args, "project_dir", None))
    try:
        path, previous = switch_active(project_dir, args.site, args.to)
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"twinhost failover: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    if previous == args.to:
        print(f"{args.site} already serves from {args.to}; nothing changed.")
        return 0
    print(f"{path.name}: failover.active {previous} -> {args.to}")
    if not args.apply:
        print(f"Next: pulumi up --stack {args.site}   (moves {args.site}'s failover record)")
        return 0
    if shutil.which("pulumi") is None:
        print("twinhost failover: --apply needs the Pulumi CLI on PATH; run `pulumi up` yourself.", file=sys.stderr)
        return EXIT_REFUSED
    from pulumi import automation  # deliberate: the Automation API loads only for --apply

    stack = automation.select_stack(stack_name=args.site, work_dir=str(project_dir))
    stack.up(on_output=print)
    return 0


def switch_active(project_dir: Path, site: str, target: str) -> tuple[Path, str | None]:
    """Set `failover.active` in Pulumi.<site>.yaml; returns (path, previous value).

    Refuses (ValueError/ConfigError, file untouched) unless the site is in manual mode and the
    edited config is valid.
    """
    if target not in TARGETS:
        raise ValueError(f"--to must be one of {', '.join(TARGETS)}, not {target!r}")
    path = project_dir / f"Pulumi.{site}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path}")
    yaml = YAML()
    yaml.preserve_quotes = True
    document = yaml.load(path.read_text(encoding="utf-8"))
    config = document["config"]
    failover: Any = config.get(f"{NAMESPACE}:failover")
    if not isinstance(failover, dict) or failover.get("mode") != "manual":
        mode = failover.get("mode") if isinstance(failover, dict) else None
        raise ValueError(
            f"{site} is in failover mode {mode!r}: only mode 'manual' is switched by hand "
            "(watchdog, route53 and cloudflare-lb move the record themselves)"
        )
    previous = failover.get("active")
    failover["active"] = target
    values = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith(f"{NAMESPACE}:")}
    parsed = parse_config(_plain(values))
    assert isinstance(parsed, SiteConfig)
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path, previous


def _plain(value: Any) -> Any:
    """ruamel's commented containers as plain dicts and lists, for validation."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
