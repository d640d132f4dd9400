"""Where a site's machines are: its stack outputs, and its platform stack's for the redirector.

Two sources, in this order:

1. `--addresses FILE` (tests, the lab, a runner without the Pulumi CLI): JSON of the same shape as
   `pulumi stack output --json`. Either one stack's outputs (a site's: `nodeAddresses`, ...;
   `redirectorAddress` may sit beside them), or a map of stack name to outputs, for several
   stacks at once:

       {"harbourlaw": {"nodeAddresses": {"digitalocean": "203.0.113.10", "linode": ...},
                       "failoverHostname": "harbourlaw.ops.example.net", ...},
        "prod": {"redirectorAddress": "203.0.113.30", ...}}

   The platform's entry is found under its short name (`prod`) or its full one
   (`org/twinhost/prod`, the site's `platformStack`).
2. The Pulumi CLI on PATH: `pulumi stack output --json --stack SITE` (and `--stack <platformStack>`
   for the redirector), run in the project directory.

Neither available, or the outputs lack what the contract (`infra.site_outputs`) requires: an
`AddressError`, which the commands turn into exit code 2 with a line saying what to do.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.config import NAMESPACE, StackFileError
from infra.config.files import config_section
from infra.site_outputs import REQUIRED, SiteOutputs

PROVIDERS = ("digitalocean", "linode")
DEFAULT_ADMIN_USER = "ops"  # Pulumi.yaml's default of twinhost:adminUser
PULUMI_TIMEOUT_SECONDS = 120


class AddressError(Exception):
    """The addresses cannot be known: no source, a failing source, or outputs missing a key."""


@dataclass(frozen=True)
class StackFacts:
    """What the ops commands read from a site's stack file (never a secret)."""

    stack: str
    path: Path
    admin_user: str
    platform_stack: str  # org/twinhost/prod
    primary: str
    mode: str
    app: Mapping[str, Any]
    active: str | None = None  # manual mode: the node(s) the record follows
    site: str = ""  # twinhost:site (the name in the outputs' `site`)

    @property
    def serving(self) -> str:
        """The node visitors reach first: manual mode's `active` node, else the primary."""
        return self.active if self.active in PROVIDERS else self.primary

    @property
    def platform_short(self) -> str:
        return self.platform_stack.rsplit("/", 1)[-1]

    @property
    def app_version(self) -> str | None:
        version = self.app.get("version")
        return None if version is None else str(version)


@dataclass(frozen=True)
class SiteAddresses:
    """One site's outputs (read back through the contract) and, when known, its redirector."""

    stack: str
    outputs: SiteOutputs
    redirector: str | None
    redirector_admin_user: str

    def node(self, provider: str) -> str:
        try:
            return str(self.outputs.node_addresses[provider])
        except KeyError:
            known = ", ".join(sorted(self.outputs.node_addresses))
            raise AddressError(f"{self.stack} has no {provider} node (its nodes: {known})") from None

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(p for p in PROVIDERS if p in self.outputs.node_addresses)


def stack_facts(project_dir: Path, stack: str) -> StackFacts:
    """A site's stack file, read for the ops commands. AddressError when it is missing, not a
    site, or unreadable (StackFileError's one line)."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise AddressError(f"no stack file {path} (sites: `twinhost list`)")
    try:
        section = config_section(path)
    except StackFileError as exc:
        raise AddressError(str(exc)) from None

    def value(key: str, default: Any = None) -> Any:
        return section.get(f"{NAMESPACE}:{key}", default)

    if value("role") != "site":
        raise AddressError(f"{path.name} is not a site stack (twinhost:role is {value('role')!r})")
    failover = value("failover") or {}
    app = value("app") or {"kind": "demo"}
    return StackFacts(
        stack=stack,
        path=path,
        admin_user=str(value("adminUser") or DEFAULT_ADMIN_USER),
        platform_stack=str(value("platformStack") or ""),
        primary=str(value("primary") or "digitalocean"),
        mode=str(failover.get("mode", "?")) if isinstance(failover, Mapping) else "?",
        app=dict(app) if isinstance(app, Mapping) else {},
        active=str(failover.get("active"))
        if isinstance(failover, Mapping) and failover.get("active")
        else None,
    )


def platform_admin_user(project_dir: Path, platform_short: str) -> str:
    path = project_dir / f"Pulumi.{platform_short}.yaml"
    try:
        return str(config_section(path).get(f"{NAMESPACE}:adminUser") or DEFAULT_ADMIN_USER)
    except (StackFileError, OSError):
        return DEFAULT_ADMIN_USER


def load(project_dir: Path, facts: StackFacts, addresses_file: Path | None) -> SiteAddresses:
    """The site's addresses from `addresses_file`, else from the Pulumi CLI (module doc)."""
    if addresses_file is not None:
        site_outputs, platform_outputs = _from_file(addresses_file, facts)
    elif shutil.which("pulumi") is not None:
        site_outputs = stack_outputs(project_dir, facts.stack)
        try:
            platform_outputs = stack_outputs(project_dir, facts.platform_stack)
        except AddressError:
            platform_outputs = {}  # the nodes are still reachable; only the redirector is not
    else:
        raise AddressError(
            f"cannot find {facts.stack}'s addresses: the Pulumi CLI is not on PATH. Pass --addresses "
            f"FILE (JSON: the output of `pulumi stack output --json --stack {facts.stack}`, see "
            "`twinhost status --help`)"
        )
    missing = [key for key in REQUIRED if key not in site_outputs]
    if missing:
        raise AddressError(
            f"{facts.stack}'s stack outputs have no {', '.join(missing)}: has `pulumi up` run for it? "
            f"(outputs seen: {', '.join(sorted(site_outputs)) or 'none'})"
        )
    try:
        outputs = SiteOutputs.from_outputs(site_outputs, default_zone="")
    except (TypeError, ValueError, AttributeError) as exc:
        raise AddressError(f"{facts.stack}'s stack outputs are not the site contract: {exc}") from None
    redirector = platform_outputs.get("redirectorAddress") or site_outputs.get("redirectorAddress")
    return SiteAddresses(
        stack=facts.stack,
        outputs=outputs,
        redirector=str(redirector) if redirector else None,
        redirector_admin_user=platform_admin_user(project_dir, facts.platform_short),
    )


def stack_outputs(project_dir: Path, stack: str) -> dict[str, Any]:
    """`pulumi stack output --json --stack STACK` (plain outputs; secrets stay `[secret]`)."""
    try:
        done = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--stack", stack],
            cwd=project_dir,
            capture_output=True,
            text=True,
            timeout=PULUMI_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AddressError(
            f"`pulumi stack output --stack {stack}` took over {PULUMI_TIMEOUT_SECONDS} s"
        ) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise AddressError(f"`pulumi stack output --json --stack {stack}` failed: {last}")
    try:
        value = json.loads(done.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise AddressError(f"`pulumi stack output --json --stack {stack}` is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise AddressError(f"`pulumi stack output --json --stack {stack}` is not a JSON object")
    return value


def read_file(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AddressError(f"--addresses {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise AddressError(f"--addresses {path} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise AddressError(f"--addresses {path} must be a JSON object (stack outputs)")
    return value


def _from_file(path: Path, facts: StackFacts) -> tuple[dict[str, Any], dict[str, Any]]:
    document = read_file(path)
    if "nodeAddresses" in document:  # one stack's outputs: they must be this site's
        named = document.get("site")
        if named is not None and str(named) not in (facts.site, facts.stack):
            raise AddressError(f"--addresses {path} holds the outputs of site {named}, not {facts.stack}")
        return document, {}
    site = document.get(facts.stack)
    if not isinstance(site, dict):
        raise AddressError(
            f"--addresses {path} has no outputs for {facts.stack} (stacks in it: "
            f"{', '.join(sorted(document)) or 'none'})"
        )
    platform = document.get(facts.platform_stack) or document.get(facts.platform_short) or {}
    return site, dict(platform) if isinstance(platform, dict) else {}
