"""Which platform watches a site: the platform stack file's `twinhost:sites` list, kept in step.

The watcher on the redirector watches only the watchdog-mode sites that the platform stack lists
in `twinhost:sites`, and it learns the list at the platform's `pulumi up`. So:

- `twinhost new-site` adds the new site to that list (`add_site`, unless `--no-watch`) and prints
  the two `pulumi up`s in order: the site's first (the platform reads its outputs), then the
  platform's, which starts the watching.
- `twinhost destroy-site SITE --yes` removes it from the list (`remove_site`) and prints the
  commands that take the site down, in the order that never leaves a watcher judging nodes that
  are being deleted (docs/workflow.md "Removing a client site").
- `twinhost plan` warns on stderr about a watchdog-mode site no platform stack file lists
  (`unwatched_warning`).

Edits keep the platform file's comments and layout (`infra.stack_edit`) and are validated with
the platform's own model before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.cli import find_project_dir, project_dir_option
from infra.config import (
    NAMESPACE,
    ConfigError,
    ConfigIssue,
    PlatformConfig,
    flatten_stack_file_config,
    parse_config,
)
from infra.config.files import config_section
from infra.config.issues import StackFileError
from infra.stack_edit import EditedStackFile, plain

SITES_KEY = f"{NAMESPACE}:sites"
EXIT_OK = 0
EXIT_REFUSED = 2
POLICY_PACK_DIR = "policy/"


def _entry_names(site: str, entry: object) -> bool:
    """A `sites` entry names `site`: a bare name, or ORG/PROJECT/SITE."""
    return str(entry).rsplit("/", 1)[-1] == site


def platform_files(project_dir: Path) -> list[Path]:
    """The platform stack files of the project (unreadable files are left out: their plan says why)."""
    found = []
    for path in sorted(project_dir.glob("Pulumi.*.yaml")):
        try:
            if config_section(path).get(f"{NAMESPACE}:role") == "platform":
                found.append(path)
        except StackFileError:
            continue
    return found


def watching_platforms(project_dir: Path, site: str) -> list[Path]:
    """The platform stack files whose `twinhost:sites` lists `site`."""
    found = []
    for path in platform_files(project_dir):
        sites = config_section(path).get(SITES_KEY) or []
        if isinstance(sites, list) and any(_entry_names(site, entry) for entry in sites):
            found.append(path)
    return found


def unwatched_warning(project_dir: Path, stack_file: Path) -> str | None:
    """The warning for a watchdog-mode site that no platform stack file lists, else None."""
    try:
        section = config_section(stack_file)
    except StackFileError:
        return None  # its plan reports the file itself
    failover = section.get(f"{NAMESPACE}:failover")
    if section.get(f"{NAMESPACE}:role") != "site" or not isinstance(failover, dict):
        return None
    if failover.get("mode") != "watchdog":
        return None
    site = str(
        section.get(f"{NAMESPACE}:site") or stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    )
    if watching_platforms(project_dir, site):
        return None
    return (
        f"twinhost: warning: {site} is in failover mode 'watchdog', but no platform stack file "
        f"in {project_dir} lists it in {SITES_KEY}: nothing watches it and its failover record "
        f"never moves. Add '- {site}' to {SITES_KEY} of the platform stack file, then "
        "`pulumi up` the platform after the site's first `up` (docs/workflow.md)."
    )


def platform_file_for(project_dir: Path, platform_stack: str) -> Path:
    """The stack file of the platform a site names (ORG/PROJECT/STACK -> Pulumi.STACK.yaml)."""
    return project_dir / f"Pulumi.{platform_stack.rsplit('/', 1)[-1]}.yaml"


def _validated(stack_file: EditedStackFile) -> None:
    """Refuse (ConfigError) an edit that leaves the platform's config invalid."""
    config = parse_config(flatten_stack_file_config(plain(stack_file.config)))
    if not isinstance(config, PlatformConfig):
        raise ConfigError(
            [
                ConfigIssue(
                    f"{NAMESPACE}:role", f"{stack_file.path.name} is not a platform stack file", config.role
                )
            ]
        )


def add_site(platform_file: Path, site: str) -> EditedStackFile | None:
    """The platform file with `site` appended to `twinhost:sites` (None: already listed).
    Validated, not written: the caller writes it once everything else is checked."""
    stack_file = EditedStackFile(platform_file)
    config = stack_file.config
    sites = config.get(SITES_KEY)
    if sites is None:
        config[SITES_KEY] = [site]
    elif not isinstance(sites, list):
        raise ConfigError([ConfigIssue(SITES_KEY, f"in {platform_file.name} must be a list", sites)])
    elif any(_entry_names(site, entry) for entry in sites):
        return None
    else:
        if not sites and hasattr(sites, "fa"):
            sites.fa.set_block_style()  # `sites: []` becomes a block list, like the others
        sites.append(site)
    _validated(stack_file)
    return stack_file


def remove_site(platform_file: Path, site: str) -> EditedStackFile | None:
    """The platform file without `site` in `twinhost:sites` (None: it was not listed)."""
    stack_file = EditedStackFile(platform_file)
    sites = stack_file.config.get(SITES_KEY)
    if not isinstance(sites, list):
        return None
    indexes = [i for i, entry in enumerate(sites) if _entry_names(site, entry)]
    if not indexes:
        return None
    for index in reversed(indexes):
        del sites[index]
    if not sites and hasattr(sites, "fa"):
        sites.fa.set_flow_style()  # the last one gone: `sites: []`, the key and its comment kept
    _validated(stack_file)
    return stack_file


def watch_commands(site_stack: str, platform_stack: str) -> list[str]:
    """After a site is added to `sites`: the two `pulumi up`s, in the order that works."""
    return [
        f"pulumi up --stack {site_stack} --policy-pack {POLICY_PACK_DIR}   # the site first: the platform reads its outputs",
        f"pulumi up --stack {platform_stack} --policy-pack {POLICY_PACK_DIR}   # then the platform: its watcher starts watching it",
    ]


# ---------------------------------------------------------------------------------------------
# `twinhost destroy-site`


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `destroy-site` to the `twinhost` command (called by infra.cli)."""
    parser = commands.add_parser(
        "destroy-site",
        parents=[project_dir_option()],
        help="stop watching a site (remove it from the platform's twinhost:sites) and print the "
        "commands that take it down, in order",
        description="Removes SITE from the platform stack file's twinhost:sites (comments kept) and "
        "prints, in order: the platform's `pulumi up` (the watcher stops watching), "
        "unprotecting the site's protected resources, `pulumi destroy`, `pulumi stack "
        "rm`, and removing the stack file. It runs no Pulumi command itself: destroying "
        "a client's servers is done by a person, step by step. Refuses without --yes.",
    )
    parser.add_argument("site", help="the site stack name (Pulumi.<site>.yaml)")
    parser.add_argument(
        "--yes",
        action="store_true",
        help="really edit the platform stack file (without it: print the plan, change nothing, exit 2)",
    )
    parser.set_defaults(handler=_destroy_site)


def destroy_commands(site: str, site_stack: str, platform_stack: str | None, watched: bool) -> list[str]:
    """The commands that take a site down, in order."""
    commands = []
    if watched and platform_stack is not None:
        commands.append(
            f"pulumi up --stack {platform_stack} --policy-pack {POLICY_PACK_DIR}   "
            f"# first: the watcher stops watching {site} (no alerts about nodes being deleted)"
        )
    commands += [
        f"pulumi state unprotect --all --stack {site_stack} --yes   # the reserved IP and DNS records are protected",
        f"pulumi destroy --stack {site_stack}",
        f"pulumi stack rm {site_stack}",
        f"git rm Pulumi.{site}.yaml   # with the platform file's change, in one pull request",
    ]
    return commands


def _destroy_site(args: argparse.Namespace) -> int:
    project_dir = find_project_dir(getattr(args, "project_dir", None))
    site = args.site
    path = project_dir / f"Pulumi.{site}.yaml"
    try:
        section = config_section(path) if path.exists() else None
    except StackFileError as exc:
        print(f"twinhost destroy-site: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    if section is None or section.get(f"{NAMESPACE}:role") != "site":
        print(
            f"twinhost destroy-site: no site stack file Pulumi.{site}.yaml in {project_dir}; nothing changed.",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    platform_stack = section.get(f"{NAMESPACE}:platformStack")
    platform_stack = str(platform_stack) if platform_stack else None
    site_stack = f"{platform_stack.split('/', 1)[0]}/{site}" if platform_stack else site
    watchers = watching_platforms(project_dir, site)
    edits = []
    try:
        for platform_file in watchers:
            edited = remove_site(platform_file, site)
            if edited is not None:
                edits.append(edited)
    except ConfigError as exc:
        print(f"twinhost destroy-site: nothing changed.\n{exc}", file=sys.stderr)
        return EXIT_REFUSED
    commands = destroy_commands(site, site_stack, platform_stack, bool(edits))
    if not args.yes:
        print(
            f"twinhost destroy-site {site}: would remove {site} from {SITES_KEY} of "
            f"{', '.join(e.path.name for e in edits) or 'no platform stack file (not listed)'}, then "
            "you run:",
            file=sys.stderr,
        )
        for command in commands:
            print(f"  {command}", file=sys.stderr)
        print("Nothing changed: rerun with --yes to edit the platform stack file.", file=sys.stderr)
        return EXIT_REFUSED
    for edited in edits:
        edited.write()
        print(f"{edited.path.name}: removed {site} from {SITES_KEY}")
    if not edits:
        print(f"{site} is in no platform's {SITES_KEY}: no file changed.")
    print("")
    print("Next, from the project directory, in this order:")
    for command in commands:
        print(f"  {command}")
    print("Then tell the client to remove www.<domain> CNAME and the apex A record (stack output clientDns).")
    return EXIT_OK
