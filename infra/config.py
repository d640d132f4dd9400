"""The validated stack configuration: read once, checked whole, then trusted everywhere.

A stack is either the agency's `platform` (the redirector, its Elastic IP, the failover watcher)
or one client `site` (a DigitalOcean + Linode pair). Each key in the stack file's `twinhost:`
namespace maps to one field below, camelCase in the file. Pulumi's project config has no object
type, so structured keys (`digitalocean`, `linode`, `app`, `failover`, `aws`, `watcher`) are
objects in the stack file and are declared in `Pulumi.yaml` without a type.

Every error names the key path, the bad value and what is allowed, and all errors are reported
together in one `ConfigError`: an operator fixes the file once, not once per run.

What this module deliberately does not do: read secrets. Secret keys (`appSecrets`,
`notifyWebhook`) stay `pulumi.Output` secrets and are read by the stack code; here only their
presence is known, never their value.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

import idna
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from infra import catalog

NAMESPACE = "twinhost"

Provider = Literal["digitalocean", "linode"]
PROVIDERS: tuple[Provider, ...] = ("digitalocean", "linode")
FailoverMode = Literal["manual", "watchdog", "route53", "cloudflare-lb"]
CertificateSource = Literal["acme", "cloudflare-origin"]
DebianRelease = Literal[12, 13]

# The redirector's defaults (see AwsRedirector). Two independent public resolvers (Cloudflare,
# Quad9): the apex registry lookup keeps working when one of them is down.
DEFAULT_RESOLVERS = ("1.1.1.1", "9.9.9.9")
LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"

# DNS-only record TTLs: below 60 s many resolvers clamp anyway; above a day a failover is useless.
TTL_MIN, TTL_MAX = 60, 86400
DEFAULT_TTL = 60
# RSA keys under this size are below today's recommendations (NIST SP 800-57: 128-bit security).
MIN_RSA_BITS = 3072
SECRET_KEYS = ("appSecrets", "notifyWebhook", "watcherDnsToken")
ANYWHERE_OVERRIDE = "dangerouslyAllowSshFromAnywhere"

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_CLOUDFLARE_ID = re.compile(r"^[0-9a-f]{32}$")
_ROUTE53_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,32}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_STACK_PART = r"[A-Za-z0-9_.-]+"
# A known site: its stack name (a DNS label, read as <this org>/<this project>/<name>), or a
# fully qualified `<org>/<project>/<stack>` for a site stack in another project or org.
_SITE_STACK = re.compile(rf"^({_STACK_PART}/{_STACK_PART}/)?{_STACK_PART}$")


# ---------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a stack config: where, what was found, and what is allowed."""

    key: str
    message: str
    value: Any = None
    show_value: bool = True

    def __str__(self) -> str:
        shown = f" (got {self.value!r})" if self.show_value and self.value is not None else ""
        return f"{self.key}: {self.message}{shown}"


class ConfigError(Exception):
    """Every problem found in a stack config, reported together."""

    def __init__(self, issues: list[ConfigIssue]):
        self.issues = issues
        lines = "\n".join(f"  - {issue}" for issue in issues)
        super().__init__(f"invalid twinhost config ({len(issues)} problem(s)):\n{lines}")


# ---------------------------------------------------------------------------------------------
# Field validators: each raises ValueError with a message that says what is allowed.


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(
            "must be a DNS label: 1-63 of a-z, 0-9 and '-', not starting or ending with '-'"
        )
    return value


def _apex_domain(value: str) -> str:
    try:
        ascii_name = idna.encode(value.strip().rstrip("."), uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"is not a valid domain name ({exc})") from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise ValueError("must be a registered domain such as example.com, not a single label")
    if labels[0] == "www":
        raise ValueError(
            f"give the apex ({'.'.join(labels[1:])}); www.<apex> is served and redirected to "
            "automatically"
        )
    if any(not _DNS_LABEL.match(label) for label in labels):
        raise ValueError("has a label that is not a valid DNS label")
    return ascii_name


def _zone_name(value: str) -> str:
    try:
        return idna.encode(value.strip().rstrip("."), uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"is not a valid DNS zone name ({exc})") from None


def _cidr(value: str, info: ValidationInfo) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            fixed = ipaddress.ip_network(value, strict=False)
            raise ValueError(f"has host bits set; did you mean {fixed}?") from None
        raise ValueError("must be an IPv4 or IPv6 network in CIDR form, e.g. 203.0.113.7/32") from None
    allow_anywhere = bool((info.context or {}).get(ANYWHERE_OVERRIDE))
    if network.prefixlen == 0 and not allow_anywhere:
        raise ValueError(
            "opens SSH to the whole internet; list your office/VPN networks instead, or set "
            f"{ANYWHERE_OVERRIDE}: true if you really mean it"
        )
    return str(network)


def _ssh_public_key(value: str) -> str:
    parts = value.strip().split()
    if len(parts) < 2:
        raise ValueError("must be an OpenSSH public key line: '<type> <base64> [comment]'")
    key_type, blob = parts[0], parts[1]
    if key_type.startswith("sk-"):
        # FIDO keys: the library cannot load them, but the blob must be well-formed base64.
        if key_type not in ("sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com"):
            raise ValueError(f"has an unknown security-key type {key_type!r}")
        try:
            base64.b64decode(blob, validate=True)
        except ValueError:
            raise ValueError("has a key body that is not valid base64") from None
        return value.strip()
    if key_type == "ssh-dss":
        raise ValueError("is a DSA key: DSA is disabled in OpenSSH; use ed25519")
    try:
        key = load_ssh_public_key(f"{key_type} {blob}".encode())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"cannot be parsed as an SSH public key ({exc})") from None
    if isinstance(key, dsa.DSAPublicKey):
        raise ValueError("is a DSA key: DSA is disabled in OpenSSH; use ed25519")
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise ValueError(
            f"is a {key.key_size}-bit RSA key; RSA keys need at least {MIN_RSA_BITS} bits "
            "(or use ed25519)"
        )
    if not isinstance(key, (rsa.RSAPublicKey, ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey)):
        raise ValueError("has an unsupported key type; use ed25519, ECDSA or RSA >= 3072 bits")
    return value.strip()


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("must be an e-mail address (the ACME account contact)")
    return value


def _cloudflare_id(value: str) -> str:
    if not _CLOUDFLARE_ID.match(value):
        raise ValueError("must be a Cloudflare id: 32 lowercase hex characters")
    return value


def _route53_zone_id(value: str) -> str:
    if not _ROUTE53_ZONE_ID.match(value):
        raise ValueError("must be a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ")
    return value


def _resolver_address(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("must be the IP address of a DNS resolver, e.g. 1.1.1.1") from None
    if address.is_unspecified or address.is_multicast:
        raise ValueError("must be the unicast IP address of a DNS resolver, e.g. 1.1.1.1")
    return str(address)


def _https_url(value: str) -> str:
    if not re.fullmatch(r"https://[A-Za-z0-9.-]+(:\d{1,5})?(/[^\s]*)?", value):
        raise ValueError("must be an https:// URL (an ACME directory)")
    return value


def _one_of(allowed: Any, what: str) -> Any:
    def check(value: Any) -> Any:
        if value not in allowed:
            listing = ", ".join(str(item) for item in allowed)
            raise ValueError(f"is not a known {what}; allowed: {listing}")
        return value

    return check


def _linode_region_has_metadata(value: str) -> str:
    regions = catalog.providers()["linode"]["regions"]
    if not regions[value]["metadata"]:
        capable = [name for name, info in regions.items() if info["metadata"]]
        raise ValueError(
            f"is {regions[value]['city']}, which has no Metadata service, so cloud-init would "
            f"never receive the user data; choose one of: {', '.join(capable)}"
        )
    return value


def _site_stack(value: str) -> str:
    if not _SITE_STACK.match(value):
        raise ValueError(
            "must be a site stack's name such as 'harbourlaw' (same org and project as this "
            "stack) or '<org>/<project>/<stack>'"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
SiteStack = Annotated[str, AfterValidator(_site_stack)]
ApexDomain = Annotated[str, AfterValidator(_apex_domain)]
Cidr = Annotated[str, AfterValidator(_cidr)]
SshPublicKey = Annotated[str, AfterValidator(_ssh_public_key)]
Email = Annotated[str, AfterValidator(_email)]
CloudflareId = Annotated[str, AfterValidator(_cloudflare_id)]


# ---------------------------------------------------------------------------------------------
# Models


class _Model(BaseModel):
    # extra="forbid": a misspelled key is an error, never silently ignored.
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class DigitalOceanNode(_Model):
    """Node A: a DigitalOcean droplet with a reserved IP."""

    region: Annotated[str, AfterValidator(_one_of(catalog.providers()["digitalocean"]["regions"], "DigitalOcean region"))] = "fra1"
    size: Annotated[str, AfterValidator(_one_of(list(catalog.providers()["digitalocean"]["sizes"]), "DigitalOcean size"))] = "s-1vcpu-1gb"
    backups: bool = False
    monitoring: bool = True
    ipv6: bool = True
    tags: list[DnsLabel] = Field(default_factory=list)

    @property
    def memory_mib(self) -> int:
        return int(catalog.providers()["digitalocean"]["sizes"][self.size])


class LinodeNode(_Model):
    """Node B: a Linode instance; its user data travels in `metadatas`."""

    region: Annotated[str, AfterValidator(_one_of(list(catalog.providers()["linode"]["regions"]), "Linode region")), AfterValidator(_linode_region_has_metadata)] = "gb-lon"
    type: Annotated[str, AfterValidator(_one_of(list(catalog.providers()["linode"]["types"]), "Linode type"))] = "g6-nanode-1"
    backups: bool = False
    tags: list[DnsLabel] = Field(default_factory=list)

    @property
    def memory_mib(self) -> int:
        return int(catalog.providers()["linode"]["types"][self.type])


class DemoApp(_Model):
    """The built-in demo app: serves /health and a page that reads a file from the shared volume."""

    kind: Literal["demo"] = "demo"
    port: int = Field(8080, ge=1024, le=65535)
    version: str = "1"
    env: dict[str, str] = Field(default_factory=dict)


class ContainerApp(_Model):
    """A container image run by podman under a hardened systemd unit."""

    kind: Literal["container"]
    image: str = Field(pattern=r"^[a-z0-9][a-z0-9._/-]*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$")
    port: int = Field(8080, ge=1024, le=65535)
    version: str = "1"
    env: dict[str, str] = Field(default_factory=dict)


class DebApp(_Model):
    """A Debian package (from the node's apt sources, or a URL) that ships a service."""

    kind: Literal["deb"]
    package: str = Field(pattern=r"^[a-z0-9][a-z0-9+.-]+$")
    version: str = "latest"
    command: str = Field(min_length=1)
    port: int = Field(8080, ge=1024, le=65535)
    env: dict[str, str] = Field(default_factory=dict)


class CommandApp(_Model):
    """Any command that serves HTTP on 127.0.0.1:<port> and answers /health."""

    kind: Literal["command"]
    command: str = Field(min_length=1)
    port: int = Field(8080, ge=1024, le=65535)
    version: str = "1"
    env: dict[str, str] = Field(default_factory=dict)


App = Annotated[Union[DemoApp, ContainerApp, DebApp, CommandApp], Field(discriminator="kind")]


class Failover(_Model):
    """How the failover name follows the healthy node. See README 'Failover modes'."""

    mode: FailoverMode
    # manual: which node the name points at. `both` publishes both addresses (round robin).
    active: Literal["digitalocean", "linode", "both"] | None = None
    interval: int | None = Field(None, ge=2, le=3600)
    failures: int = Field(3, ge=1, le=10)
    recoveries: int = Field(2, ge=1, le=10)
    account_id: CloudflareId | None = None

    @model_validator(mode="after")
    def _mode_keys(self) -> Failover:
        problems = []
        if self.mode == "manual" and self.active is None:
            problems.append("mode 'manual' needs 'active': digitalocean, linode or both")
        if self.mode != "manual" and self.active is not None:
            problems.append(
                f"'active' is only for mode 'manual'; in mode {self.mode!r} the health checks "
                "decide (remove 'active')"
            )
        if self.mode == "route53" and self.interval not in (None, 10, 30):
            problems.append(f"Route 53 health checks run every 10 or 30 s, not {self.interval}")
        if self.mode == "cloudflare-lb":
            if self.account_id is None:
                problems.append("mode 'cloudflare-lb' needs 'accountId' (the Cloudflare account id)")
            if self.interval is not None and self.interval < 60:
                problems.append("Cloudflare Load Balancing checks every 60 s or more on the base plan")
        if self.mode in ("manual", "watchdog") and self.account_id is not None:
            problems.append("'accountId' is only used by mode 'cloudflare-lb'")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def check_interval(self) -> int:
        """Seconds between health checks, with each mode's default."""
        if self.interval is not None:
            return self.interval
        return {"manual": 5, "watchdog": 5, "route53": 30, "cloudflare-lb": 60}[self.mode]


class ClientDomain(_Model):
    """A client apex domain; `cloudflareZoneId` when the client's zone is in the agency account."""

    name: ApexDomain
    cloudflare_zone_id: CloudflareId | None = None


def _domain_entry(value: Any) -> Any:
    # A bare string is the common case: `domains: [example.com]`.
    return {"name": value} if isinstance(value, str) else value


class LabAws(_Model):
    """The lab's stand-in for S3 and SSM (moto, `infra/lab/aws.py`): where it listens and the
    fixed lab credentials it is reached with, in place of the instance role. Never a real AWS
    account's keys: the lab's containers have no cloud behind them."""

    endpoint_url: Annotated[str, Field(pattern=r"^http://[A-Za-z0-9.-]+(:\d{1,5})?/?$")]
    access_key_id: Annotated[str, Field(pattern=r"^[A-Z0-9]{16,128}$")]
    secret_access_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9/+=]{16,128}$")]


class LabOverrides(_Model):
    """Set only by `twinhost plan --lab` for the local lab: never in a real stack file.

    The lab boots the plan's user data in containers that reach Debian's mirror through a host
    proxy and get certificates from a lab ACME server; these are the few values that differ.
    `aws`: the redirector's watcher refresh reads S3 and SSM from the lab's stand-in."""

    apt_proxy: Annotated[str, Field(pattern=r"^http://[A-Za-z0-9.-]+(:\d{1,5})?/?$")] | None = None
    ca_pem: Annotated[str, Field(pattern=r"^-----BEGIN CERTIFICATE-----")] | None = None
    acme_directory: Annotated[str, AfterValidator(_https_url)] | None = None
    resolvers: list[Annotated[str, AfterValidator(_resolver_address)]] | None = None
    aws: LabAws | None = None
    # false: no swap file. A container shares the host's kernel and may not swapon (cloud-init 25
    # reports that as an error, 22.4 as a warning).
    swap: bool | None = None
    # DNS backends the redirector's watcher installs besides the platform's own dnsProvider: the
    # lab's failover drill (infra/lab/drill.py) switches the watcher to a lab Knot server
    # (rfc2136) and to moto's Route 53, so their libraries must be in the watcher's venv.
    watcher_backends: list[Literal["cloudflare", "route53", "rfc2136"]] | None = None


class _AdminAccess(_Model):
    admin_user: DnsLabel = "ops"
    admin_cidrs: list[Cidr] = Field(min_length=1)
    ssh_keys: list[SshPublicKey] = Field(min_length=1)
    dangerously_allow_ssh_from_anywhere: bool = Field(False, alias=ANYWHERE_OVERRIDE)
    debian: DebianRelease = 12
    lab_overrides: LabOverrides | None = None



class SiteConfig(_AdminAccess):
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

    @model_validator(mode="before")
    @classmethod
    def _expand_domain_strings(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("domains"), list):
            data = dict(data)
            data["domains"] = [_domain_entry(item) for item in data["domains"]]
        return data

    @model_validator(mode="after")
    def _site_rules(self) -> SiteConfig:
        problems = []
        names = [d.name for d in self.domains]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"domains lists {duplicates} more than once")
        if self.proxied:
            if self.ttl is not None:
                problems.append(
                    "proxied records have no TTL (Cloudflare answers with its own); remove 'ttl'"
                )
            missing = [d.name for d in self.domains if d.cloudflare_zone_id is None]
            if missing:
                problems.append(
                    f"proxied needs every client domain in the agency's Cloudflare account; give "
                    f"cloudflareZoneId for {missing} (or set proxied: false and use ACME)"
                )
        if self.certificate_source == "cloudflare-origin" and not self.proxied:
            problems.append(
                "certificates 'cloudflare-origin' are trusted only by Cloudflare's proxy; use "
                "'acme' for a DNS-only site, or set proxied: true"
            )
        if self.certificate_source == "acme" and self.acme_email is None:
            problems.append("certificates 'acme' needs 'acmeEmail' (the ACME account contact)")
        if self.failover.mode == "cloudflare-lb" and not self.proxied:
            problems.append("failover mode 'cloudflare-lb' needs proxied: true")
        if self.failover.mode == "cloudflare-lb" and self.ops_dns != "cloudflare":
            problems.append("failover mode 'cloudflare-lb' needs opsDns: cloudflare")
        if self.failover.mode == "route53" and self.ops_dns != "route53":
            problems.append("failover mode 'route53' needs opsDns: route53 (the ops zone on Route 53)")
        if self.proxied and self.ops_dns != "cloudflare":
            problems.append("proxied needs opsDns: cloudflare (only Cloudflare records can be proxied)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def certificate_source(self) -> CertificateSource:
        """The default follows the proxy: Origin CA behind Cloudflare, ACME otherwise."""
        if self.certificates is not None:
            return self.certificates
        return "cloudflare-origin" if self.proxied else "acme"

    @property
    def record_ttl(self) -> int | None:
        """TTL of the DNS-only failover record; None for proxied records (automatic)."""
        return None if self.proxied else (self.ttl or DEFAULT_TTL)

    @property
    def secondary(self) -> Provider:
        return "linode" if self.primary == "digitalocean" else "digitalocean"


class AwsRedirector(_Model):
    """The redirector: its EC2 instance, and where its apex registry check and ACME point."""

    region: Annotated[str, AfterValidator(_one_of(catalog.providers()["aws"]["regions"], "AWS region"))] = "eu-west-1"
    instance_type: Annotated[str, AfterValidator(_one_of(list(catalog.providers()["aws"]["instance_types"]), "EC2 instance type"))] = "t4g.nano"
    volume_gib: int = Field(8, ge=8, le=64)
    # The resolvers the redirector asks whether a name is a registered client apex (a TXT record
    # in the ops zone). Public resolvers by default; the lab points them at its own DNS server.
    resolvers: list[Annotated[str, AfterValidator(_resolver_address)]] = Field(
        default_factory=lambda: list(DEFAULT_RESOLVERS), min_length=1, max_length=4
    )
    # Where the redirector's certificates come from (ACME, HTTP-01). Let's Encrypt by default.
    acme_directory: Annotated[str, AfterValidator(_https_url)] = LETS_ENCRYPT_DIRECTORY

    @property
    def architecture(self) -> str:
        return str(catalog.providers()["aws"]["instance_types"][self.instance_type])


class Watcher(_Model):
    """The failover watcher on the redirector (watchdog-mode sites)."""

    interval: int = Field(5, ge=2, le=300)
    failures: int = Field(3, ge=1, le=10)
    recoveries: int = Field(2, ge=1, le=10)


class PlatformConfig(_AdminAccess):
    """The agency's shared platform: redirector, Elastic IP, failover watcher, ops zone records."""

    role: Literal["platform"]
    ops_zone: Annotated[str, AfterValidator(_zone_name)]
    dns_provider: Literal["cloudflare", "route53"] = "cloudflare"
    cloudflare_zone_id: CloudflareId | None = None
    route53_zone_id: Annotated[str, AfterValidator(_route53_zone_id)] | None = None
    acme_email: Email
    aws: AwsRedirector = Field(default_factory=lambda: AwsRedirector())
    watcher: Watcher = Field(default_factory=lambda: Watcher())
    # The site stacks this platform reads (StackReference) to generate the watcher's config.
    # Only the watchdog-mode ones are watched; the others are read and skipped.
    sites: list[SiteStack] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _zone_for_provider(self) -> PlatformConfig:
        problems = []
        if self.dns_provider == "cloudflare" and self.cloudflare_zone_id is None:
            problems.append("dnsProvider 'cloudflare' needs cloudflareZoneId (the ops zone's id)")
        if self.dns_provider == "route53" and self.route53_zone_id is None:
            problems.append("dnsProvider 'route53' needs route53ZoneId (the ops zone's hosted zone id)")
        stacks = [self.site_stack_name(name, "o", "p") for name in self.sites]
        repeated = sorted({name for name, full in zip(self.sites, stacks) if stacks.count(full) > 1})
        if repeated:
            problems.append(f"sites lists {repeated} more than once")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @staticmethod
    def site_stack_name(name: str, organization: str, project: str) -> str:
        """The fully qualified stack a `sites` entry names: a bare name is read in this stack's
        own organization and project (the convention `twinhost new-site` follows)."""
        return name if "/" in name else f"{organization}/{project}/{name}"


StackConfig = Annotated[Union[SiteConfig, PlatformConfig], Field(discriminator="role")]
_STACK_ADAPTER: TypeAdapter[SiteConfig | PlatformConfig] = TypeAdapter(StackConfig)


# ---------------------------------------------------------------------------------------------
# Parsing


def parse_config(
    raw: Mapping[str, Any],
    secret_keys: Collection[str] = (),
    declared_defaults: Mapping[str, Any] | None = None,
) -> SiteConfig | PlatformConfig:
    """Validate the `twinhost:` namespace of a stack (keys without the namespace prefix).

    Values may be strings holding JSON (that is how Pulumi hands objects to a program); they are
    decoded first. Raises ConfigError with every problem found; the values of `secret_keys` are
    never shown in a message. A value equal to its `declared_defaults` entry (Pulumi.yaml's
    "not set" default, which Pulumi hands to every stack) counts as not set.
    """
    issues: list[ConfigIssue] = []
    data: dict[str, Any] = {}
    defaults = declared_defaults or {}
    for key, value in raw.items():
        if key in SECRET_KEYS:
            continue  # secrets are read by the stack as Outputs, never validated by value here
        decoded = _decode(value)
        if key in defaults and decoded == defaults[key]:
            continue
        data[key] = decoded

    role = data.get("role")
    if role not in ("site", "platform"):
        issues.append(ConfigIssue(
            f"{NAMESPACE}:role", "is required and must be 'site' or 'platform'", role,
        ))
        raise ConfigError(issues)

    try:
        config = _STACK_ADAPTER.validate_python(
            data, context={ANYWHERE_OVERRIDE: data.get(ANYWHERE_OVERRIDE) is True}
        )
    except ValidationError as exc:
        issues.extend(_issues_from(exc, data))
    if "appSecrets" in raw and role == "site":
        issues.extend(_check_app_secrets(raw["appSecrets"]))
    if issues:
        hidden = {f"{NAMESPACE}:{key}" for key in secret_keys}
        issues = [
            ConfigIssue(i.key, i.message, i.value, show_value=False)
            if any(i.key == h or i.key.startswith((h + ".", h + "[")) for h in hidden) else i
            for i in issues
        ]
        raise ConfigError(issues)
    return config


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


def _check_app_secrets(value: Any) -> list[ConfigIssue]:
    """appSecrets must be a JSON object of ENV_NAME: string; its values are never shown."""
    if value in ("", "[secret]"):  # unset, or the offline plan (which cannot decrypt)
        return []
    decoded = _decode(value)
    key = f"{NAMESPACE}:appSecrets"
    if not isinstance(decoded, dict):
        return [ConfigIssue(key, "must be a JSON object of NAME: value pairs (value not shown: "
                                 "it is a secret)", show_value=False)]
    bad = [name for name in decoded if not _ENV_NAME.match(str(name))]
    if bad:
        return [ConfigIssue(key, f"has names that are not environment variable names: {bad}; "
                                 "use A-Z, 0-9 and _", show_value=False)]
    return []


def _issues_from(exc: ValidationError, data: Mapping[str, Any]) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors():
        # The first loc element is the discriminator tag ('site' / 'platform'); drop it.
        loc = [part for part in error["loc"][1:] if not (isinstance(part, str) and part in _UNION_TAGS)]
        key = _key_path(loc)
        kind = error["type"]
        value = error.get("input")
        if kind == "missing":
            message, value = "is required", None
        elif kind == "extra_forbidden":
            message = "is not a known key" + _allowed_keys_hint(loc, data)
            value = None
        elif kind in ("value_error", "assertion_error"):
            message = str(error["msg"]).removeprefix("Value error, ")
            if not loc:  # a model-level rule: no single value to show
                value = None
            elif isinstance(value, Mapping):
                value = None
        elif kind == "literal_error" or str(error["msg"]).startswith("Input should be "):
            message = "must be " + str(error["msg"]).removeprefix("Input should be ")
        elif kind == "union_tag_invalid":
            message = "must be one of " + str(error["msg"]).split("expected tags: ")[-1]
            value = value.get("kind") if isinstance(value, Mapping) else value
            key = f"{key}.kind"
        else:
            message = str(error["msg"])
        issues.append(ConfigIssue(key, message, value))
    return issues


_UNION_TAGS = {"demo", "container", "deb", "command"}


def _key_path(loc: list[Any]) -> str:
    path = NAMESPACE + ":"
    first = True
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("" if first else ".") + str(part)
        first = False
    return path if loc else f"{NAMESPACE}:(stack)"


def _allowed_keys_hint(loc: list[Any], data: Mapping[str, Any]) -> str:
    model: type[BaseModel] | None = SiteConfig if data.get("role") == "site" else PlatformConfig
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            break
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        annotation = getattr(field, "annotation", None) if field else None
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if model is None:
        return ""
    names = sorted(f.alias or n for n, f in model.model_fields.items())
    return "; allowed: " + ", ".join(names)


def flatten_stack_file_config(config_section: Mapping[str, Any]) -> dict[str, Any]:
    """The `twinhost:` keys of a stack file's `config:` section, without the namespace."""
    prefix = NAMESPACE + ":"
    return {key[len(prefix):]: value for key, value in config_section.items() if key.startswith(prefix)}
