"""`twinhost deploy|rollback|status|logs|ssh|list|backup|backups|restore`: day-2 operations from
the workstation.

Exit codes, every command: 0 done; 1 the operation ran and failed (a deploy stopped and rolled
back, a node unhealthy, ssh failed); 2 refused before anything changed (a bad argument, an
unreadable stack file, addresses not known). `twinhost ssh` exits with ssh's own code.
Heavy imports happen inside the handlers: `twinhost --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from infra.cli import find_project_dir, project_dir_option

EXIT_FAILED = 1
EXIT_REFUSED = 2
NODE_ROLES = ("digitalocean", "linode")
ADDRESSES_HELP = (
    "JSON of stack outputs instead of asking the Pulumi CLI: one stack's `pulumi stack output "
    "--json`, or {stack: outputs} for several (the platform's gives the redirector's address)"
)


def _remote_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False, parents=[project_dir_option()])
    parent.add_argument("--addresses", type=Path, default=None, metavar="FILE", help=ADDRESSES_HELP)
    parent.add_argument(
        "--ssh-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="an ssh config file for these connections (`ssh -F`); default: your own ssh setup, "
        "host keys learnt on first use",
    )
    return parent


def _trust_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ca-file",
        type=Path,
        default=None,
        metavar="PEM",
        help="trust these CAs for the web front instead of the system's (a staging CA, the lab's ACME)",
    )


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    remote = _remote_options()
    deploy = commands.add_parser(
        "deploy",
        help="rolling, health-gated deploy of an app version to a site's pair",
        description="Deploy VERSION to one node (blue/green: `twinhost-deploy` on the node), wait "
        "until it is healthy through its web front as the failover watcher sees it, then the other. "
        "A failure stops there: that node goes back to its version, the other is never touched. On "
        "success twinhost:app.version in Pulumi.SITE.yaml is set to VERSION, so `pulumi up` agrees.",
        parents=[remote],
    )
    deploy.add_argument("site", help="the site stack name (Pulumi.<site>.yaml)")
    deploy.add_argument(
        "version", help="the app version (a container tag or sha256 digest, a package version)"
    )
    _deploy_options(deploy)
    deploy.set_defaults(handler=_deploy)

    rollback = commands.add_parser(
        "rollback",
        help="back to the previous (or a named) app version, node by node, health-gated",
        description="Go back to VERSION, or to the version each node ran before the current one. "
        "Nodes keep the last 3 versions they ran (images or packages), so nothing is downloaded; "
        "a version no node keeps is refused (deploy it instead).",
        parents=[remote],
    )
    rollback.add_argument("site", help="the site stack name (Pulumi.<site>.yaml)")
    rollback.add_argument("version", nargs="?", default=None, help="default: the previous version")
    _deploy_options(rollback)
    rollback.set_defaults(handler=_rollback)

    status = commands.add_parser(
        "status",
        help="per node health, version, certificate, GlusterFS; the failover record; the watcher",
        parents=[remote],
    )
    which = status.add_mutually_exclusive_group(required=True)
    which.add_argument("site", nargs="?", default=None, help="the site stack name")
    which.add_argument("--all", action="store_true", help="every site stack file in the repo")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument(
        "--resolver", default=None, metavar="IP", help="ask this DNS server for the failover record"
    )
    _trust_option(status)
    status.set_defaults(handler=_status)

    logs = commands.add_parser(
        "logs", help="a site's app, web front or cloud-init logs; or the watcher's", parents=[remote]
    )
    logs.add_argument("site", nargs="?", default=None, help="the site stack name (optional with --watcher)")
    logs.add_argument("--node", choices=NODE_ROLES, default=None, help="one node (default: both)")
    logs.add_argument("--unit", choices=("app", "web", "cloud-init"), default="app", help="default: app")
    logs.add_argument(
        "--watcher", action="store_true", help="the failover watcher's journal on the redirector"
    )
    logs.add_argument(
        "--platform",
        default=None,
        help="with --watcher and no SITE: the platform stack (default: the only one)",
    )
    logs.add_argument("-n", "--lines", type=int, default=100, help="how many recent lines (default: 100)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines (Ctrl-C stops)")
    logs.set_defaults(handler=_logs)

    ssh = commands.add_parser(
        "ssh", help="a shell on a site's node or its redirector, as the admin user", parents=[remote]
    )
    ssh.add_argument("site", help="the site stack name")
    ssh.add_argument(
        "machine", nargs="?", default=None, choices=(*NODE_ROLES, "redirector"), help="default: the primary"
    )
    ssh.add_argument(
        "remote_command",
        nargs="*",
        metavar="-- COMMAND",
        help="run this instead of a shell (options first, then SITE MACHINE -- COMMAND: "
        "`twinhost ssh --addresses F acme linode -- uptime`)",
    )
    ssh.set_defaults(handler=_ssh)

    backup = commands.add_parser(
        "backup",
        help="back a site up now: its shared volume and database dump, to its restic repository",
        description="Run the site's backup now on one node (the primary, or the other when ssh cannot "
        "reach it): a consistent database dump (database: mariadb), a restic snapshot of the shared "
        "volume and the dump, then pruning by the site's retention. Progress lines as they come; "
        "docs/backups.md.",
        parents=[remote],
    )
    backup.add_argument("site", help="the site stack name (Pulumi.<site>.yaml)")
    backup.set_defaults(handler=_backup)

    backups = commands.add_parser(
        "backups", help="list a site's backup snapshots (restic, in the platform's bucket)", parents=[remote]
    )
    backups.add_argument("site", help="the site stack name (Pulumi.<site>.yaml)")
    backups.add_argument("--json", action="store_true", help="print restic's JSON")
    backups.set_defaults(handler=_backups)

    restore = commands.add_parser(
        "restore",
        help="restore a backup onto the running pair (files and database), or into a directory",
        description="Restore SNAPSHOT (default: the latest) onto the running pair: the shared volume "
        "becomes the snapshot's files (files made since are removed) and the database is replaced "
        "by its dump; both replicate to the other node. Refused without --yes, as it overwrites. "
        "With --to-path P the snapshot's files go under P on the node instead (nothing else is "
        "touched; refused without --yes when P is not empty).",
        parents=[remote],
    )
    restore.add_argument("site", help="the site stack name (Pulumi.<site>.yaml)")
    restore.add_argument("snapshot", nargs="?", default="latest", help="a snapshot id (default: latest)")
    restore.add_argument("--to-path", default=None, metavar="P", help="restore under this path on the node")
    restore.add_argument("--yes", action="store_true", help="overwrite (the pair, or a non-empty --to-path)")
    restore.add_argument(
        "--node", choices=NODE_ROLES, default=None, help="the node to run on (default: the primary)"
    )
    restore.set_defaults(handler=_restore)

    listing = commands.add_parser(
        "list",
        help="every stack: role, failover mode, primary, monthly cost (offline plan), total",
        parents=[project_dir_option()],
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_list)


def _deploy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--first", choices=NODE_ROLES, default=None, help="the node to deploy first (default: the standby)"
    )
    parser.add_argument(
        "--health-timeout",
        type=float,
        default=90,
        metavar="SECONDS",
        help="how long a node may take to be healthy through its web front (default: 90)",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="leave twinhost:app.version in the stack file as it is"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON at the end")
    _trust_option(parser)


class _RefusedError(Exception):
    pass


def _context(args: argparse.Namespace, site: str) -> tuple[Path, Any, Any]:
    from infra.ops import addresses

    project_dir = find_project_dir(getattr(args, "project_dir", None))
    try:
        facts = addresses.stack_facts(project_dir, site)
        found = addresses.load(project_dir, facts, args.addresses)
    except addresses.AddressError as exc:
        raise _RefusedError(str(exc)) from None
    return project_dir, facts, found


def _settings(args: argparse.Namespace) -> Any:
    from infra.ops.remote import SshSettings

    if args.ssh_config is not None and not args.ssh_config.is_file():
        raise _RefusedError(f"--ssh-config {args.ssh_config}: no such file")
    return SshSettings(config_file=args.ssh_config)


def _checker(args: argparse.Namespace, certificates: str) -> Any:
    from infra.ops.health import HealthChecker

    if args.ca_file is not None:
        if not args.ca_file.is_file():
            raise _RefusedError(f"--ca-file {args.ca_file}: no such file")
        return HealthChecker(ca_file=args.ca_file)
    if certificates == "cloudflare-origin":
        from infra.catalog import cloudflare_origin_ca_bundle
        from infra.platform_watcher import ORIGIN_CA_REQUEST_TYPE

        return HealthChecker(ca_pem=cloudflare_origin_ca_bundle(ORIGIN_CA_REQUEST_TYPE))
    return HealthChecker()


def _targets(facts: Any, found: Any) -> list[Any]:
    from infra.ops.remote import Target

    return [Target(role, found.node(role), facts.admin_user) for role in found.providers]


def _guard(args: argparse.Namespace, work: Any) -> int:
    try:
        return int(work(args))
    except _RefusedError as exc:
        print(f"twinhost {args.command}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print(f"twinhost {args.command}: interrupted", file=sys.stderr)
        return 130


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _deploy(args: argparse.Namespace) -> int:
    return _guard(args, lambda a: _walk(a, rollback=False))


def _rollback(args: argparse.Namespace) -> int:
    return _guard(args, lambda a: _walk(a, rollback=True))


def _walk(args: argparse.Namespace, *, rollback: bool) -> int:
    from infra.config import ConfigError
    from infra.ops import deploy
    from infra.ops.remote import Remote

    _project_dir, facts, found = _context(args, args.site)
    remote = Remote(_settings(args))
    check = _checker(args, found.outputs.certificates)
    targets = deploy.order_nodes(_targets(facts, found), facts.serving, args.first)
    try:
        if rollback:
            version = deploy.rollback_target(remote, targets, args.version)
            _progress(f"rolling {args.site} back to {version}")
        else:
            version = deploy.check_version(args.version)
    except deploy.DeployRefusedError as exc:
        raise _RefusedError(str(exc)) from None
    order = " then ".join(f"{t.role} ({t.address})" for t in targets)
    _progress(f"{'rollback' if rollback else 'deploy'} {args.site} {version}: {order}")
    result = deploy.rolling_deploy(
        targets,
        version,
        remote=remote,
        check=check,
        tls_name=found.outputs.failover_hostname,
        log=_progress,
        gate=deploy.Gate(timeout=args.health_timeout),
    )
    recorded = None
    if result.ok and not args.no_record:
        try:
            changed = deploy.record_version(facts.path, version)
        except ConfigError as exc:
            print(f"twinhost {args.command}: {facts.path.name} not updated: {exc}", file=sys.stderr)
            return EXIT_FAILED
        recorded = f"{facts.path.name}: twinhost:app.version {version}" + ("" if changed else " (unchanged)")
    if args.json:
        print(json.dumps({**result.to_dict(), "recorded": recorded}, indent=2))
    else:
        for node in result.nodes:
            print(
                f"{node.role:<13} {node.address:<16} {node.before or '?':>10} -> {node.after or '?':<10} "
                f"{node.outcome}{': ' + node.detail if node.detail and not result.ok else ''}"
            )
        if recorded:
            print(recorded + ("" if args.no_record else "; commit it with the deploy"))
    if not result.ok:
        untouched = [n.role for n in result.nodes if n.outcome == "not reached"]
        print(
            f"twinhost {args.command}: stopped; "
            + (f"{', '.join(untouched)} not touched (still on its version); " if untouched else "")
            + f"{facts.path.name} unchanged",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


def _status(args: argparse.Namespace) -> int:
    return _guard(args, _status_work)


def _status_work(args: argparse.Namespace) -> int:
    from infra.ops import status
    from infra.ops.remote import Remote, Target

    project_dir = find_project_dir(getattr(args, "project_dir", None))
    sites = [args.site] if args.site else _site_stacks(project_dir)
    settings = _settings(args)
    results = []
    for site in sites:
        _, facts, found = _context(args, site)
        redirector = (
            Target("redirector", found.redirector, found.redirector_admin_user) if found.redirector else None
        )
        results.append(
            status.site_status(
                site,
                facts.mode,
                facts.primary,
                found.outputs.failover_hostname,
                _targets(facts, found),
                redirector,
                remote=Remote(settings),
                check=_checker(args, found.outputs.certificates),
                resolver=args.resolver,
                log=_progress,
            )
        )
    if args.json:
        documents = [r.to_dict() for r in results]
        print(json.dumps(documents if args.all else documents[0], indent=2))
    else:
        print("\n\n".join(status.render(r) for r in results))
    return 0 if all(r.ok for r in results) else EXIT_FAILED


def _backup_node(args: argparse.Namespace, site: str, only: str | None = None) -> tuple[Any, Any]:
    from infra.ops import backup
    from infra.ops.remote import Remote

    _project_dir, facts, found = _context(args, site)
    remote = Remote(_settings(args))
    targets = [t for t in _targets(facts, found) if only is None or t.role == only]
    try:
        target = backup.pick_node(remote, targets, facts.primary)
    except backup.NoNodeError as exc:
        print(f"twinhost {args.command}: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_FAILED) from None
    return remote, target


def _backup(args: argparse.Namespace) -> int:
    return _guard(args, _backup_work)


def _backup_work(args: argparse.Namespace) -> int:
    from infra.ops import backup

    remote, target = _backup_node(args, args.site)
    _progress(f"backup {args.site} on {target.role} ({target.address})")
    started = time.monotonic()
    outcome = backup.run(remote, target, ["now"], _progress, backup.BACKUP_TIMEOUT)
    record = backup.json_tail(outcome.output)
    if not outcome.ok or not isinstance(record, dict):
        print(f"twinhost backup: failed on {target.role} (exit {outcome.code})", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"{args.site}: snapshot {record.get('snapshot')} on {target.role}: {record.get('files')} files, "
        f"{record.get('bytes')} bytes ({record.get('added')} new) in {time.monotonic() - started:.1f} s"
    )
    return 0


def _backups(args: argparse.Namespace) -> int:
    return _guard(args, _backups_work)


def _backups_work(args: argparse.Namespace) -> int:
    from infra.ops import backup

    remote, target = _backup_node(args, args.site)
    outcome = backup.run(remote, target, ["snapshots"], lambda _line: None, 300)
    snapshots = backup.json_tail(outcome.output)
    if not outcome.ok or not isinstance(snapshots, list):
        print(
            f"twinhost backups: could not list on {target.role}:\n{outcome.output[-2000:]}", file=sys.stderr
        )
        return EXIT_FAILED
    if args.json:
        print(json.dumps(snapshots, indent=2))
        return 0
    rows = backup.snapshot_rows(snapshots)
    print(f"{args.site}: {len(rows)} snapshots (restic, oldest first)")
    for short_id, when, paths in rows:
        print(f"  {short_id}  {when} UTC  {paths}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    return _guard(args, _restore_work)


def _restore_work(args: argparse.Namespace) -> int:
    from infra.ops import backup

    if args.to_path is None and not args.yes:
        raise _RefusedError(
            f"restoring {args.snapshot} replaces {args.site}'s shared files and database on both nodes; "
            "add --yes (or --to-path P to restore the files elsewhere)"
        )
    remote, target = _backup_node(args, args.site, args.node)
    words = ["restore", args.snapshot, *(["--to-path", args.to_path] if args.to_path else [])]
    words += ["--yes"] if args.yes else []
    _progress(f"restore {args.site} {args.snapshot} on {target.role} ({target.address})")
    started = time.monotonic()
    outcome = backup.run(remote, target, words, _progress, backup.BACKUP_TIMEOUT)
    if outcome.code == backup.REFUSED:
        print(f"twinhost restore: refused on {target.role} (nothing changed)", file=sys.stderr)
        return EXIT_REFUSED
    if not outcome.ok:
        print(f"twinhost restore: failed on {target.role} (exit {outcome.code})", file=sys.stderr)
        return EXIT_FAILED
    print(f"{args.site}: restored {args.snapshot} on {target.role} in {time.monotonic() - started:.1f} s")
    return 0


def _site_stacks(project_dir: Path) -> list[str]:
    from infra.config import NAMESPACE, StackFileError
    from infra.config.files import config_section, stack_name_of

    found = []
    for path in sorted(project_dir.glob("Pulumi.*.yaml")):
        try:
            if config_section(path).get(f"{NAMESPACE}:role") == "site":
                found.append(stack_name_of(path))
        except StackFileError as exc:
            raise _RefusedError(str(exc)) from None
    if not found:
        raise _RefusedError(f"no site stack files in {project_dir}")
    return found


def _platform_stacks(project_dir: Path) -> list[str]:
    from infra.config import NAMESPACE
    from infra.config.files import config_section, stack_name_of

    return [
        stack_name_of(path)
        for path in sorted(project_dir.glob("Pulumi.*.yaml"))
        if config_section(path).get(f"{NAMESPACE}:role") == "platform"
    ]


def _redirector(args: argparse.Namespace) -> Any:
    """The redirector as a Target: from SITE's platform, or from --platform (or the only one)."""
    from infra.ops import addresses
    from infra.ops.remote import Target

    if args.site:
        _, _facts, found = _context(args, args.site)
        if not found.redirector:
            raise _RefusedError(f"the redirector's address is not known: no platform outputs for {args.site}")
        return Target("redirector", found.redirector, found.redirector_admin_user)
    project_dir = find_project_dir(getattr(args, "project_dir", None))
    platforms = [args.platform] if args.platform else _platform_stacks(project_dir)
    if len(platforms) != 1:
        raise _RefusedError(
            f"give SITE or --platform (platform stacks here: {', '.join(platforms) or 'none'})"
        )
    platform = platforms[0]
    try:
        if args.addresses is not None:
            document = addresses.read_file(args.addresses)
            outputs = document.get(platform) if platform in document else document
        else:
            outputs = addresses.stack_outputs(project_dir, platform)
    except addresses.AddressError as exc:
        raise _RefusedError(str(exc)) from None
    address = (outputs or {}).get("redirectorAddress")
    if not address:
        raise _RefusedError(f"no redirectorAddress in {platform}'s outputs")
    return Target("redirector", str(address), addresses.platform_admin_user(project_dir, platform))


def _logs(args: argparse.Namespace) -> int:
    return _guard(args, _logs_work)


def _logs_work(args: argparse.Namespace) -> int:
    from infra.ops import logs

    if args.lines < 1:
        raise _RefusedError("--lines must be at least 1")
    settings = _settings(args)
    if args.watcher:
        targets = [_redirector(args)]
        command = logs.watcher_command(args.lines, args.follow)
    else:
        if not args.site:
            raise _RefusedError("give SITE (or --watcher)")
        _, facts, found = _context(args, args.site)
        targets = [t for t in _targets(facts, found) if args.node in (None, t.role)]
        command = logs.node_command(args.unit, args.lines, args.follow)
    code = logs.stream(settings, targets, command, lambda line: print(line, flush=True))
    return 0 if code == 0 else EXIT_FAILED


def _ssh(args: argparse.Namespace) -> int:
    return _guard(args, _ssh_work)


def _ssh_work(args: argparse.Namespace) -> int:
    from infra.ops.remote import Target

    settings = _settings(args)
    command = [c for c in args.remote_command if c != "--"] or None
    if args.machine == "redirector":
        target = _redirector(args)
    else:
        _, facts, found = _context(args, args.site)
        role = args.machine or facts.primary
        try:
            target = Target(role, found.node(role), facts.admin_user)
        except Exception as exc:  # noqa: BLE001 - AddressError names the nodes there are
            raise _RefusedError(str(exc)) from None
    argv = settings.argv(target, command, interactive=command is None)
    sys.stdout.flush()
    os.execvp(argv[0], argv)
    return EXIT_FAILED  # not reached


def _list(args: argparse.Namespace) -> int:
    return _guard(args, _list_work)


def _list_work(args: argparse.Namespace) -> int:
    """The rows of `twinhost plan --all` (the same `plan_stacks`), summed up by their cost."""
    from infra.cli import plan_stacks, stack_files
    from infra.config import NAMESPACE, StackFileError
    from infra.config.files import config_section, stack_name_of

    project_dir = find_project_dir(getattr(args, "project_dir", None))
    files = stack_files(project_dir)
    if not files:
        raise _RefusedError(f"no stack files (Pulumi.*.yaml) in {project_dir}")
    _progress(f"planning {len(files)} stacks offline for their cost ...")
    from infra.plan.cost import monthly_cost

    rows: list[dict[str, Any]] = []
    for planned in plan_stacks(project_dir, files):
        path = planned.path
        name = stack_name_of(path)
        try:
            section = config_section(path)
        except StackFileError as exc:
            rows.append({"stack": name, "role": "?", "problem": str(exc)})
            continue
        failover = section.get(f"{NAMESPACE}:failover") or {}
        row: dict[str, Any] = {
            "stack": name,
            "role": section.get(f"{NAMESPACE}:role"),
            "mode": failover.get("mode") if isinstance(failover, dict) else None,
            "primary": section.get(f"{NAMESPACE}:primary"),
            "domains": [
                d if isinstance(d, str) else d.get("name") for d in section.get(f"{NAMESPACE}:domains") or []
            ],
        }
        if planned.result is None:
            row["problem"] = str(planned.error).splitlines()[0]
        else:
            row["monthly_cost_usd"] = round(
                sum(monthly_cost(r) for r in planned.result.resources if r.custom), 2
            )
        rows.append(row)
    total = round(sum(float(r.get("monthly_cost_usd") or 0) for r in rows), 2)
    if args.json:
        print(json.dumps({"stacks": rows, "total_monthly_cost_usd": total}, indent=2))
    else:
        table = [("stack", "role", "mode", "primary", "domains", "$/month")]
        for r in rows:
            cost = (
                f"{r['monthly_cost_usd']:.2f}"
                if "monthly_cost_usd" in r
                else f"? ({r.get('problem', '')[:60]})"
            )
            table.append(
                (
                    r["stack"],
                    str(r.get("role") or "?"),
                    str(r.get("mode") or "-"),
                    str(r.get("primary") or "-"),
                    ", ".join(r.get("domains") or []) or "-",
                    cost,
                )
            )
        table.append(("total", "", "", "", "", f"{total:.2f}"))
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for line in table:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return EXIT_FAILED if any("problem" in r for r in rows) else 0
