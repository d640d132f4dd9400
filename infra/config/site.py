"""The model of a `site` stack: one client site on a DigitalOcean node and a Linode node.

Field types only; every rule that relates two fields (proxied vs ttl, failover mode vs its keys)
is a function in `rules.py`, so a bad value in one field never hides the others' problems.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from infra import catalog
from infra.config.fields import (
    DEFAULT_TTL,
    TTL_MAX,
    TTL_MIN,
    AdminAccess,
    ApexDomain,
    CertificateSource,
    CloudflareAccountId,
    CloudflareZoneId,
    Database,
    DnsLabel,
    Email,
    FailoverMode,
    Provider,
    StrictModel,
    clock_time,
    linode_region_has_metadata,
    one_of,
)

_DO = catalog.providers()["digitalocean"]
_LINODE = catalog.providers()["linode"]


class DigitalOceanNode(StrictModel):
    """Node A: a DigitalOcean droplet with a reserved IP."""

    region: Annotated[str, AfterValidator(one_of(_DO["regions"], "DigitalOcean region"))] = "fra1"
    size: Annotated[str, AfterValidator(one_of(list(_DO["sizes"]), "DigitalOcean size"))] = "s-1vcpu-1gb"
    backups: bool = False
    monitoring: bool = True
    ipv6: bool = True
    tags: list[DnsLabel] = Field(default_factory=list)

    @property
    def memory_mib(self) -> int:
        return int(catalog.providers()["digitalocean"]["sizes"][self.size])


class LinodeNode(StrictModel):
    """Node B: a Linode instance; its user data travels in `metadatas`."""

    region: Annotated[
        str,
        AfterValidator(one_of(list(_LINODE["regions"]), "Linode region")),
        AfterValidator(linode_region_has_metadata),
    ] = "gb-lon"
    type: Annotated[str, AfterValidator(one_of(list(_LINODE["types"]), "Linode type"))] = "g6-nanode-1"
    backups: bool = False
    tags: list[DnsLabel] = Field(default_factory=list)

    @property
    def memory_mib(self) -> int:
        return int(catalog.providers()["linode"]["types"][self.type])


class DemoApp(StrictModel):
    """The built-in demo app: serves /health and a page that reads a file from the shared volume."""

    kind: Literal["demo"] = "demo"
    port: int = Field(8080, ge=1024, le=65535)
    version: str = "1"
    env: dict[str, str] = Field(default_factory=dict)


class ContainerApp(StrictModel):
    """A container image run by podman under a hardened systemd unit."""

    kind: Literal["container"]
    image: str = Field(pattern=r"^[a-z0-9][a-z0-9._/-]*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$")
    port: int = Field(8080, ge=1024, le=65535)
    version: str = "1"
    env: dict[str, str] = Field(default_factory=dict)


class DebApp(StrictModel):
    """A Debian package (from the node's apt sources, or a URL) that ships a service."""

    kind: Literal["deb"]
    package: str = Field(pattern=r"^[a-z0-9][a-z0-9+.-]+$")
    version: str = "latest"
    command: str = Field(min_length=1)
    port: int = Field(8080, ge=1024, le=65535)
    env: dict[str, str] = Field(default_factory=dict)


class CommandApp(StrictModel):
    """Any command that serves HTTP on 127.0.0.1:<port> and answers /health."""

    kind: Literal["command"]
    command: str = Field(min_length=1)
    port: int = Field(8080, ge=1024, le=65535)
    version: str = "1"
    env: dict[str, str] = Field(default_factory=dict)


class WordPressApp(StrictModel):
    """WordPress from Debian's `wordpress` package, run by php-fpm behind the web front, its
    database on the site's Galera and its wp-content on the shared volume
    (infra/bootstrap/wordpress.py). Needs `database: mariadb` (rules.wordpress_needs_the_database).
    `version` is the package's version, as for kind `deb` (`latest`: what apt has)."""

    kind: Literal["wordpress"]
    port: int = Field(8080, ge=1024, le=65535)
    version: str = "latest"
    env: dict[str, str] = Field(default_factory=dict)


App = Annotated[DemoApp | ContainerApp | DebApp | CommandApp | WordPressApp, Field(discriminator="kind")]
APP_KINDS = frozenset({"demo", "container", "deb", "command", "wordpress"})


class Failover(StrictModel):
    """How the failover name follows the healthy node. See README 'Failover modes'.

    Which keys each mode takes is checked by `rules.failover_keys_fit_the_mode`."""

    mode: FailoverMode
    # manual: which node the name points at. `both` publishes both addresses (round robin).
    active: Literal["digitalocean", "linode", "both"] | None = None
    interval: int | None = Field(None, ge=2, le=3600)
    failures: int = Field(3, ge=1, le=10)
    recoveries: int = Field(2, ge=1, le=10)
    account_id: CloudflareAccountId | None = None

    @property
    def check_interval(self) -> int:
        """Seconds between health checks, with each mode's default."""
        if self.interval is not None:
            return self.interval
        return {"manual": 5, "watchdog": 5, "route53": 30, "cloudflare-lb": 60}[self.mode]


class Backups(StrictModel):
    """Encrypted, pruned snapshots of the shared volume (and the database dump) in the platform's
    backup bucket, under this site's prefix (infra/bootstrap/backup.py, docs/backups.md).

    `time` is when the primary node backs up each day (UTC); the standby node looks one hour later
    and backs up only when no backup succeeded in the last `BACKUP_STALE_HOURS` (the primary is
    down). The `keep*` counts are restic's `forget --keep-daily/-weekly/-monthly`: how many of the
    most recent days, weeks and months keep their last snapshot."""

    enabled: bool = True
    time: Annotated[str, AfterValidator(clock_time)] = "02:15"
    keep_daily: int = Field(7, ge=0, le=366)
    keep_weekly: int = Field(4, ge=0, le=520)
    keep_monthly: int = Field(6, ge=0, le=240)


class ClientDomain(StrictModel):
    """A client apex domain; `cloudflareZoneId` when the client's zone is in the agency account."""

    name: ApexDomain
    cloudflare_zone_id: CloudflareZoneId | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, data: Any) -> Any:
        # A bare string is the common case: `domains: [example.com]`.
        return {"name": data} if isinstance(data, str) else data


class SiteConfig(AdminAccess):
    """One client site: a DigitalOcean node and a Linode node serving the client's domains."""

    role: Literal["site"]
    site: DnsLabel
    domains: list[ClientDomain] = Field(min_length=1)
    primary: Provider
    proxied: bool = False
    ttl: int | None = Field(None, ge=TTL_MIN, le=TTL_MAX)
    certificates: CertificateSource | None = None
    acme_email: Email | None = None
    platform_stack: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    # Where the platform's ops zone lives; must match the platform stack's dnsProvider (checked
    # against its output at `pulumi up`). Decides which SDK the failover records use.
    ops_dns: Literal["cloudflare", "route53"] = "cloudflare"
    digitalocean: DigitalOceanNode = Field(default_factory=lambda: DigitalOceanNode())
    linode: LinodeNode = Field(default_factory=lambda: LinodeNode())
    failover: Failover
    app: App = Field(default_factory=lambda: DemoApp())
    # MariaDB Galera across the pair over the mesh (infra/bootstrap/database.py); off by default.
    database: Database = "none"
    # Off-pair backups to the platform's bucket (docs/backups.md); on by default.
    backups: Backups = Field(default_factory=lambda: Backups())

    @property
    def certificate_source(self) -> CertificateSource:
        """The default follows the proxy: Origin CA behind Cloudflare, ACME otherwise."""
        return certificate_source(self.certificates, self.proxied)

    @property
    def record_ttl(self) -> int | None:
        """TTL of the DNS-only failover record; None for proxied records (automatic)."""
        return None if self.proxied else (self.ttl or DEFAULT_TTL)

    @property
    def secondary(self) -> Provider:
        return "linode" if self.primary == "digitalocean" else "digitalocean"


def certificate_source(certificates: CertificateSource | None, proxied: bool) -> CertificateSource:
    """`certificates` as set, or the default that follows the proxy."""
    if certificates is not None:
        return certificates
    return "cloudflare-origin" if proxied else "acme"
