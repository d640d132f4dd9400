"""`twinhost failover SITE --to PROVIDER`: switch a manual-mode site to the other node.

Manual failover is a config change: `failover.active` in the site's stack file, then `pulumi up`
moves the record. This command edits the stack file (comments, layout and long lines kept: only
the `active:` line changes), validates the result with the same model `pulumi up` uses, and prints
the `pulumi up` to run. With `--apply` it runs that `pulumi up` itself (the Pulumi CLI, with the
policy pack), and checks for the CLI BEFORE editing: without it nothing is edited and it exits 2,
so the file never says one thing while the record says another without the operator being told.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra.cli import find_project_dir, project_dir_option
from infra.config import NAMESPACE, ConfigError, SiteConfig, parse_config
from infra.stack_edit import EditedStackFile, plain

TARGETS = ("digitalocean", "linode", "both")
EXIT_REFUSED = 2
POLICY_PACK_DIR = "policy/"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "failover", help="switch a manual-mode site to the other node", parents=[project_dir_option()]
    )
    parser.add_argument("site", help="the site stack name (Pulumi.<site>.yaml)")
    parser.add_argument("--to", required=True, choices=TARGETS, help="the node(s) to serve from")
    parser.add_argument(
        "--apply",
        action="store_true",
        help="then run `pulumi up --stack SITE --policy-pack policy/` (needs the "
        "Pulumi CLI on PATH; without it nothing is edited and the exit is 2)",
    )
    parser.set_defaults(handler=run)


def up_command(site: str) -> list[str]:
    """The `pulumi up` that moves the site's failover record (run from the project directory)."""
    return ["pulumi", "up", "--stack", site, "--policy-pack", POLICY_PACK_DIR]


def run(args: argparse.Namespace) -> int:
    project_dir = find_project_dir(getattr(args, "project_dir", None))
    command = up_command(args.site)
    pulumi = shutil.which("pulumi")
    if args.apply and pulumi is None:
        # Checked before the edit: a file switched but never applied is worse than no switch.
        print(
            f"twinhost failover: --apply needs the Pulumi CLI on PATH; nothing changed. Without "
            f"it: twinhost failover {args.site} --to {args.to}, then `{' '.join(command)}` "
            "where the CLI is.",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    try:
        path, previous = switch_active(project_dir, args.site, args.to)
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"twinhost failover: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    if previous == args.to:
        print(f"{path.name} already says failover.active {args.to}; the file is unchanged.")
    else:
        print(f"{path.name}: failover.active {previous} -> {args.to}")
    if not args.apply:
        if previous != args.to:
            print(f"Next: {' '.join(command)}   (moves {args.site}'s failover record)")
        return 0
    # `pulumi up` converges: run it even when the file already said so (an earlier edit that was
    # never applied is exactly the case to repair).
    assert pulumi is not None  # checked before the edit
    print(f"Running: {' '.join(command)}", flush=True)
    code = subprocess.run([pulumi, *command[1:]], cwd=project_dir, check=False).returncode
    if code != 0:
        print(
            f"twinhost failover: `{' '.join(command)}` failed (exit {code}). {path.name} says "
            f"failover.active {args.to}, but the record may not have moved: fix the cause and "
            f"run the same command again.",
            file=sys.stderr,
        )
        return code
    print(f"{args.site} serves from {args.to}.")
    return 0


def switch_active(project_dir: Path, site: str, target: str) -> tuple[Path, str | None]:
    """Set `failover.active` in Pulumi.<site>.yaml; returns (path, previous value).

    Refuses (ValueError/ConfigError, file untouched) unless the site is in manual mode and the
    edited config is valid. Only the `active:` line changes; every other byte stays.
    """
    if target not in TARGETS:
        raise ValueError(f"--to must be one of {', '.join(TARGETS)}, not {target!r}")
    path = project_dir / f"Pulumi.{site}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path}")
    stack_file = EditedStackFile(path)
    config = stack_file.config
    failover: Any = config.get(f"{NAMESPACE}:failover")
    if not isinstance(failover, dict) or failover.get("mode") != "manual":
        mode = failover.get("mode") if isinstance(failover, dict) else None
        raise ValueError(
            f"{site} is in failover mode {mode!r}: only mode 'manual' is switched by hand "
            "(watchdog, route53 and cloudflare-lb move the record themselves)"
        )
    previous = failover.get("active")
    if previous == target:
        return path, previous
    failover["active"] = target
    values = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith(f"{NAMESPACE}:")}
    parsed = parse_config(plain(values))
    assert isinstance(parsed, SiteConfig)
    stack_file.write()
    return path, previous
