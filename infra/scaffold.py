"""`twinhost new-site`: write a new client's stack file, validated, and say what to run next.

A new client is one new stack file, `Pulumi.<site>.yaml`. This command writes it from a few
flags plus the values every stack of the agency shares (admin networks, SSH keys, ACME contact,
the platform stack), copied from an existing site stack or, failing that, the platform stack.
The file is validated by the same model the program uses (`infra.config.parse_config`) before
anything is written: an invalid input writes nothing and exits 2 with every problem listed.

A watchdog-mode site is also added to the platform stack file's `twinhost:sites` (comments and
layout kept; `--no-watch` leaves it out): the platform's watcher watches only the sites listed
there, from the platform's next `pulumi up` on, after the site's first (see infra/site_watch.py).

What it deliberately does not do: create the Pulumi stack, touch any backend or set secrets.
Those need credentials; it prints the exact commands instead (`pulumi stack init`, each
`pulumi config set --secret` the stack needs, `pulumi preview` with the policy pack).

Never copied from another stack: `dangerouslyAllowSshFromAnywhere`. Opening SSH to the world is
a decision made per stack, by hand, where a reviewer sees it in the diff.

Example:
    twinhost new-site acme --domain acme.example --primary linode --region-linode fr-par
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.cli import find_project_dir
from infra.config import (
    NAMESPACE,
    ConfigError,
    ConfigIssue,
    PlatformConfig,
    SiteConfig,
    flatten_stack_file_config,
    parse_config,
)
from infra.config.files import config_section, platform_stack_file_issue, served_domains
from infra.pulumi_config import declared_defaults
from infra.site_watch import SITES_KEY, add_site, platform_file_for, watch_commands, watching_platforms
from infra.stack_edit import EditedStackFile

EXIT_OK = 0
EXIT_INVALID = 2
# With a self-managed (DIY) backend every stack lives in the fixed organization "organization",
# so `organization/twinhost/prod` is the platform's reference when no site says otherwise.
DIY_ORGANIZATION = "organization"
# The keys every stack of the agency shares; copied from an existing stack when present.
SHARED_KEYS = ("adminUser", "adminCidrs", "sshKeys", "acmeEmail", "debian")
POLICY_PACK_DIR = "policy/"


@dataclass
class SiteRequest:
    """What the operator asked for on the command line (None: not given, use the default)."""

    name: str
    domains: list[str]
    primary: str = "digitalocean"
    platform_stack: str | None = None
    failover_mode: str = "watchdog"
    active: str | None = None
    cloudflare_account_id: str | None = None
    proxied: bool = False
    zone_ids: dict[str, str] = field(default_factory=dict)
    region_do: str | None = None
    size_do: str | None = None
    region_linode: str | None = None
    type_linode: str | None = None
    ttl: int | None = None
    copy_from: str | None = None
    watch: bool = True  # add a watchdog-mode site to the platform's twinhost:sites


@dataclass
class SharedValues:
    """Values taken from an existing stack, and where they came from (for the message)."""

    source: str | None
    values: dict[str, Any]
    platform_stack: str | None
    ops_dns: str | None
    aws_region: str | None


@dataclass
class Scaffold:
    """The stack file to write and the commands to run after it."""

    path: Path
    text: str
    config: SiteConfig
    next_commands: list[str]
    notes: list[str]
    platform_edit: EditedStackFile | None = None  # the platform file with the site in `sites`


# ---------------------------------------------------------------------------------------------
# Command line


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `new-site` to the `twinhost` command (called by infra.cli)."""
    parser = commands.add_parser(
        "new-site",
        help="write a validated Pulumi.<site>.yaml for a new client and print the next commands",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("name", help="site name: a DNS label; the stack and failover name use it")
    parser.add_argument(
        "--domain",
        dest="domains",
        action="append",
        required=True,
        help="a client apex domain, e.g. example.com (repeat for more)",
    )
    parser.add_argument(
        "--primary",
        choices=("digitalocean", "linode"),
        default="digitalocean",
        help="the provider whose node serves first (default: digitalocean)",
    )
    parser.add_argument(
        "--platform-stack",
        help="the platform stack as ORG/twinhost/STACK (default: the one existing site stacks use)",
    )
    parser.add_argument(
        "--failover-mode",
        choices=("manual", "watchdog", "route53", "cloudflare-lb"),
        default="watchdog",
        help="how the failover name follows the healthy node",
    )
    parser.add_argument(
        "--active",
        choices=("digitalocean", "linode", "both"),
        help="manual mode: the node(s) the failover name points at (default: --primary)",
    )
    parser.add_argument("--cloudflare-account-id", help="cloudflare-lb mode: the Cloudflare account id")
    parser.add_argument(
        "--proxied", action="store_true", help="proxy through Cloudflare (every domain needs --zone-id)"
    )
    parser.add_argument(
        "--zone-id",
        dest="zone_ids",
        action="append",
        default=[],
        metavar="DOMAIN=ID",
        help="the Cloudflare zone id of a client domain in the agency's account",
    )
    parser.add_argument("--region-do", help="DigitalOcean region (default: the model's, fra1)")
    parser.add_argument("--size-do", help="DigitalOcean droplet size")
    parser.add_argument("--region-linode", help="Linode region with the Metadata service (default: gb-lon)")
    parser.add_argument("--type-linode", help="Linode type")
    parser.add_argument(
        "--ttl", type=int, help="TTL of DNS-only records, 60..300 s (default 60): the policy pack's bounds"
    )
    parser.add_argument(
        "--from",
        dest="copy_from",
        metavar="STACK",
        help="copy the shared values from Pulumi.STACK.yaml (default: the first site "
        "stack, else the platform stack)",
    )
    parser.add_argument(
        "--no-watch",
        dest="watch",
        action="store_false",
        help="do not add a watchdog-mode site to the platform stack file's "
        "twinhost:sites (default: add it; the watcher watches only listed sites)",
    )
    parser.set_defaults(handler=_new_site)


def _new_site(args: argparse.Namespace) -> int:
    project_dir = find_project_dir(args.project_dir)
    zone_ids, problems = _parse_zone_ids(args.zone_ids)
    request = SiteRequest(
        name=args.name,
        domains=list(args.domains),
        primary=args.primary,
        platform_stack=args.platform_stack,
        failover_mode=args.failover_mode,
        active=args.active,
        cloudflare_account_id=args.cloudflare_account_id,
        proxied=args.proxied,
        zone_ids=zone_ids,
        region_do=args.region_do,
        size_do=args.size_do,
        region_linode=args.region_linode,
        type_linode=args.type_linode,
        ttl=args.ttl,
        copy_from=args.copy_from,
        watch=args.watch,
    )
    try:
        scaffold = build_scaffold(project_dir, request, problems)
    except ConfigError as exc:
        print(f"twinhost new-site: nothing written.\n{exc}", file=sys.stderr)
        return EXIT_INVALID
    except StackExistsError as exc:
        print(f"twinhost new-site: {exc}", file=sys.stderr)
        return EXIT_INVALID
    write_scaffold(scaffold)
    print(render_report(scaffold, project_dir))
    return EXIT_OK


def _parse_zone_ids(items: Sequence[str]) -> tuple[dict[str, str], list[ConfigIssue]]:
    zone_ids: dict[str, str] = {}
    problems: list[ConfigIssue] = []
    for item in items:
        domain, sep, zone_id = item.partition("=")
        if not sep or not domain or not zone_id:
            problems.append(ConfigIssue("--zone-id", "must be DOMAIN=ZONE_ID", item))
        else:
            zone_ids[domain.strip().lower()] = zone_id.strip()
    return zone_ids, problems


# ---------------------------------------------------------------------------------------------
# Building the stack file


class StackExistsError(Exception):
    """The stack file is already there: new-site never overwrites a client's stack."""


def build_scaffold(
    project_dir: Path,
    request: SiteRequest,
    flag_issues: Sequence[ConfigIssue] = (),
) -> Scaffold:
    """The validated stack file for `request`. Raises ConfigError (every problem, including
    `flag_issues` found while reading the flags) or StackExistsError."""
    shared = read_shared_values(project_dir, request.copy_from)
    config_section = site_config_section(request, shared)
    text = render_stack_file(request, shared, config_section)
    # Validate exactly what will be written: the text parsed back, as the program will read it,
    # with the domains the project's other stack files serve.
    try:
        config = validate_stack_text(text, served_domains(project_dir))
    except ConfigError as exc:
        raise ConfigError([*flag_issues, *exc.issues]) from None
    if shared.platform_stack is not None or request.platform_stack is not None:
        # A platform named by the operator or copied from a site must be in the repo: the plan
        # reads it from its file. (The default names no file yet: the note below says so.)
        missing = platform_stack_file_issue(project_dir, config.platform_stack)
        if missing is not None:
            raise ConfigError([*flag_issues, missing])
    if flag_issues:
        raise ConfigError(list(flag_issues))
    path = project_dir / f"Pulumi.{request.name}.yaml"
    if path.exists():
        raise StackExistsError(f"{path.name} already exists; choose another name (nothing written)")
    notes = []
    commands = next_commands(config, shared)
    platform_edit = None
    if config.failover.mode == "watchdog":
        platform_file = platform_file_for(project_dir, config.platform_stack)
        listed = bool(watching_platforms(project_dir, request.name))
        if request.watch and platform_file.exists():
            # Validated here, written after the site file: an invalid edit writes nothing at all.
            platform_edit = add_site(platform_file, request.name)
            listed = True
        if listed:
            commands += watch_commands(
                f"{config.platform_stack.split('/', 1)[0]}/{request.name}", config.platform_stack
            )
        elif request.watch:
            notes.append(
                f"there is no platform stack file {platform_file.name} here: add {request.name} "
                f"to {SITES_KEY} of the platform stack yourself, or nothing watches it"
            )
        else:
            notes.append(
                f"--no-watch: nothing watches {request.name} until it is in {SITES_KEY} of the "
                "platform stack and the platform is updated (`twinhost plan` warns)"
            )
    if shared.source is None:
        notes.append("no stack file to copy admin CIDRs, SSH keys and the ACME contact from")
    if request.platform_stack is None and shared.platform_stack is None:
        notes.append(
            f"platformStack defaults to {config.platform_stack} (a self-managed backend's fixed "
            "organization); with Pulumi Cloud use --platform-stack ORG/twinhost/STACK"
        )
    return Scaffold(path, text, config, commands, notes, platform_edit)


def read_shared_values(project_dir: Path, copy_from: str | None) -> SharedValues:
    """The shared values of an existing stack: `copy_from`, else the first site, else the platform."""
    candidates: list[Path]
    if copy_from is not None:
        candidate = project_dir / f"Pulumi.{copy_from}.yaml"
        if not candidate.exists():
            raise ConfigError([ConfigIssue("--from", f"there is no stack file {candidate.name}", copy_from)])
        candidates = [candidate]
    else:
        files = sorted(project_dir.glob("Pulumi.*.yaml"))
        documents = {path: _config_of(path) for path in files}
        sites = [p for p in files if documents[p].get(f"{NAMESPACE}:role") == "site"]
        platforms = [p for p in files if documents[p].get(f"{NAMESPACE}:role") == "platform"]
        candidates = sites[:1] or platforms[:1]
    platform = _platform_file(project_dir)
    platform_config = _config_of(platform) if platform else {}
    if not candidates:
        return SharedValues(None, {}, None, _ops_dns_of(platform_config), _aws_region_of(platform_config))

    source = candidates[0]
    section = _config_of(source)
    values = flatten_stack_file_config(section)
    shared = {key: values[key] for key in SHARED_KEYS if key in values}
    is_site = values.get("role") == "site"
    return SharedValues(
        source=source.name,
        values=shared,
        platform_stack=values.get("platformStack") if is_site else None,
        ops_dns=values.get("opsDns", "cloudflare") if is_site else _ops_dns_of(section),
        aws_region=(section.get("aws:region") if is_site else None) or _aws_region_of(platform_config),
    )


def _config_of(path: Path) -> dict[str, Any]:
    return config_section(path)  # StackFileError (a ConfigError): exit 2 with one line


def _platform_file(project_dir: Path) -> Path | None:
    for path in sorted(project_dir.glob("Pulumi.*.yaml")):
        if _config_of(path).get(f"{NAMESPACE}:role") == "platform":
            return path
    return None


def _ops_dns_of(platform_section: Mapping[str, Any]) -> str | None:
    value = platform_section.get(f"{NAMESPACE}:dnsProvider")
    return str(value) if value else ("cloudflare" if platform_section else None)


def _aws_region_of(platform_section: Mapping[str, Any]) -> str | None:
    value = platform_section.get("aws:region")
    return str(value) if value else None


def site_config_section(request: SiteRequest, shared: SharedValues) -> dict[str, Any]:
    """The stack file's `config:` section (namespaced keys), in the order a reader expects."""
    ns = NAMESPACE + ":"
    platform_stack = request.platform_stack or shared.platform_stack or f"{DIY_ORGANIZATION}/twinhost/prod"
    ops_dns = shared.ops_dns or "cloudflare"
    section: dict[str, Any] = {}
    if ops_dns == "route53":
        # The site's Route 53 records use the default AWS provider, which needs a region even
        # though Route 53 itself is global.
        section["aws:region"] = shared.aws_region or "us-east-1"
    section[ns + "role"] = "site"
    section[ns + "site"] = request.name
    section[ns + "domains"] = [
        {"name": d, "cloudflareZoneId": request.zone_ids[d.lower()]} if d.lower() in request.zone_ids else d
        for d in request.domains
    ]
    section[ns + "primary"] = request.primary
    if request.proxied:
        section[ns + "proxied"] = True
    if request.ttl is not None:
        section[ns + "ttl"] = request.ttl
    section[ns + "platformStack"] = platform_stack
    if ops_dns != "cloudflare":
        section[ns + "opsDns"] = ops_dns
    for key in SHARED_KEYS:
        if key in shared.values:
            section[ns + key] = shared.values[key]
    digitalocean = {k: v for k, v in (("region", request.region_do), ("size", request.size_do)) if v}
    linode = {k: v for k, v in (("region", request.region_linode), ("type", request.type_linode)) if v}
    if digitalocean:
        section[ns + "digitalocean"] = digitalocean
    if linode:
        section[ns + "linode"] = linode
    failover: dict[str, Any] = {"mode": request.failover_mode}
    if request.failover_mode == "manual":
        failover["active"] = request.active or request.primary
    elif request.active is not None:
        failover["active"] = request.active  # refused by the model, with its own message
    if request.cloudflare_account_id:
        failover["accountId"] = request.cloudflare_account_id
    section[ns + "failover"] = failover
    section[ns + "app"] = {"kind": "demo"}
    return section


def render_stack_file(request: SiteRequest, shared: SharedValues, section: Mapping[str, Any]) -> str:
    copied = f"copied from {shared.source}" if shared.source else "not found: add them by hand"
    header = [
        f"# Client site {request.name}: written by `twinhost new-site`; edit freely, it is yours now.",
        f"# Shared values (admin CIDRs, SSH keys, ACME contact) {copied}.",
        "# Secrets are never committed: set them with `pulumi config set --secret` (docs/workflow.md).",
        f"# The client sets: www.<domain> CNAME {request.name}.<ops zone>, and the apex A record to the",
        "# redirector's Elastic IP (stack output `clientDns` after `pulumi up`).",
    ]
    body = yaml.safe_dump(
        {"config": dict(section)}, sort_keys=False, default_flow_style=False, allow_unicode=True, width=200
    )
    return "\n".join(header) + "\n" + body


def validate_stack_text(text: str, served_elsewhere: Mapping[str, str] | None = None) -> SiteConfig:
    """Validate a stack file's text with the program's own model (ConfigError on any problem).
    `served_elsewhere`: {apex: stack} of the domains other stack files serve."""
    document = yaml.safe_load(text) or {}
    config = parse_config(
        flatten_stack_file_config(document.get("config") or {}), (), declared_defaults(), served_elsewhere
    )
    if not isinstance(config, SiteConfig):  # role is written as "site"; this guards the writer
        raise ConfigError([ConfigIssue(f"{NAMESPACE}:role", "must be 'site' for a new site", config.role)])
    return config


def write_scaffold(scaffold: Scaffold) -> None:
    # "x": never replace a file that appeared since the check (two operators, one name).
    with open(scaffold.path, "x", encoding="utf-8") as handle:
        handle.write(scaffold.text)
    if scaffold.platform_edit is not None:
        scaffold.platform_edit.write()


# ---------------------------------------------------------------------------------------------
# What to run next


def required_secrets(config: SiteConfig | PlatformConfig) -> list[tuple[str, str]]:
    """(config key, what it is) for every secret a stack needs before `pulumi preview`."""
    if isinstance(config, PlatformConfig):
        secrets = [("twinhost:notifyWebhook", "the webhook the failover watcher posts to (optional)")]
        if config.dns_provider == "cloudflare":
            secrets.insert(0, ("cloudflare:apiToken", "Cloudflare API token: DNS edit on the ops zone"))
        return secrets
    secrets = [
        ("digitalocean:token", "DigitalOcean API token (read/write): droplet, reserved IP, firewall"),
        ("linode:token", "Linode personal access token: Linodes and Firewalls read/write"),
    ]
    needs_cloudflare = (
        config.ops_dns == "cloudflare" or config.proxied or any(d.cloudflare_zone_id for d in config.domains)
    )
    if needs_cloudflare:
        secrets.append(
            (
                "cloudflare:apiToken",
                "Cloudflare API token: DNS edit on the ops zone "
                "(and client zones, SSL and Certificates edit when proxied, Load Balancing "
                "edit for cloudflare-lb)",
            )
        )
    secrets.append((f"{NAMESPACE}:appSecrets", "JSON object of the app's secret environment (optional)"))
    return secrets


def next_commands(config: SiteConfig, shared: SharedValues) -> list[str]:
    organization = config.platform_stack.split("/", 1)[0]
    stack = f"{organization}/{config.site}"
    commands = [f"pulumi stack init {stack}"]
    for key, _ in required_secrets(config):
        if key == f"{NAMESPACE}:appSecrets":
            commands.append(
                f'pulumi config set --stack {stack} --secret {key} \'{{"NAME": "value"}}\'   # optional'
            )
        else:
            # No value on the command line: pulumi prompts, so the token stays out of shell history.
            commands.append(f"pulumi config set --stack {stack} --secret {key}")
    if config.ops_dns == "route53":
        commands.append("# Route 53: AWS credentials come from the environment (AWS_PROFILE or OIDC)")
    commands.append(f"twinhost plan --stack {config.site}")
    commands.append(f"pulumi preview --stack {stack} --policy-pack {POLICY_PACK_DIR}")
    return commands


def render_report(scaffold: Scaffold, project_dir: Path) -> str:
    relative = (
        scaffold.path.relative_to(project_dir) if scaffold.path.is_relative_to(project_dir) else scaffold.path
    )
    lines = [
        f"Wrote {relative} (validated: site {scaffold.config.site}, "
        f"failover {scaffold.config.failover.mode}, primary {scaffold.config.primary})."
    ]
    if scaffold.platform_edit is not None:
        lines.append(
            f"Added {scaffold.config.site} to {SITES_KEY} in {scaffold.platform_edit.path.name}: "
            "the platform's watcher watches it after the platform's next `pulumi up`, which "
            "must follow the site's first (the platform reads the site's outputs)."
        )
    lines += [f"Note: {note}." for note in scaffold.notes]
    lines.append("")
    lines.append("Next, from the project directory:")
    lines += [f"  {command}" for command in scaffold.next_commands]
    lines.append("")
    lines.append("Secrets it needs:")
    lines += [f"  {key}: {what}" for key, what in required_secrets(scaffold.config)]
    changed = (
        f"{relative} and {scaffold.platform_edit.path.name}" if scaffold.platform_edit else f"{relative}"
    )
    lines.append(f"Then commit {changed} and open a pull request: CI previews it with the policy pack.")
    return "\n".join(lines)
