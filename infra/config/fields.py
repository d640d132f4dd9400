"""Field types of the stack config: each validator checks one value and raises ValueError with a
message that says what is allowed (pydantic turns it into an issue keyed by the field's path).

Rules that relate two fields live in `rules.py`; this module only knows one value at a time.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from typing import Annotated, Any, Literal

import idna
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo
from pydantic.alias_generators import to_camel

from infra import catalog
from twinhost_watcher.validators import (
    DNS_LABEL,
    cloudflare_account_id,
    cloudflare_zone_id,
    dns_label,
    route53_zone_id,
)

Provider = Literal["digitalocean", "linode"]
PROVIDERS: tuple[Provider, ...] = ("digitalocean", "linode")
FailoverMode = Literal["manual", "watchdog", "route53", "cloudflare-lb"]
CertificateSource = Literal["acme", "cloudflare-origin"]
DebianRelease = Literal[12, 13]
# A site's database: none, or MariaDB Galera across the pair (PostgreSQL is for later).
Database = Literal["none", "mariadb"]
# What the app's environment gets when the site has a database (infra/bootstrap/database.py):
# names an app.env or appSecrets entry may not also set (rules.database_env_names_are_free).
DATABASE_ENV = ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD_FILE", "DB_OPTION_FILE")

# The redirector's defaults (see AwsRedirector). Two independent public resolvers (Cloudflare,
# Quad9): the apex registry lookup keeps working when one of them is down.
DEFAULT_RESOLVERS = ("1.1.1.1", "9.9.9.9")

# DNS-only record TTLs: below 60 s many resolvers clamp anyway; above 5 minutes resolvers keep a
# dead node's address too long after a failover. The policy pack's `dns-only-ttl-60-to-300`
# imports these two, so `new-site`, `twinhost plan` and `pulumi preview` refuse the same values.
TTL_MIN, TTL_MAX = 60, 300
DEFAULT_TTL = 60
# RSA keys under this size are below today's recommendations (NIST SP 800-57: 128-bit security).
MIN_RSA_BITS = 3072
SECRET_KEYS = ("appSecrets", "notifyWebhook", "watcherDnsToken")
ANYWHERE_OVERRIDE = "dangerouslyAllowSshFromAnywhere"
# The widest admin network accepted without the override. An IPv4 /8 is the largest block ever
# assigned to one organisation (the legacy class A networks), and an IPv6 /32 is the standard
# allocation an RIR makes to one ISP: anything wider spans many unrelated networks, so it is
# "the internet" in disguise (0.0.0.0/1 is half of it), not an office or a VPN.
ADMIN_CIDR_FLOOR = {4: 8, 6: 32}
# Linode's cloud firewall takes at most 255 addresses per rule, and all admin networks share the
# one SSH rule (infra/components/firewall_rules.py); more would be refused by its API mid-`up`.
MAX_ADMIN_CIDRS = 255
# Accounts a Debian node already has (base-passwd's static users, and the daemons twinhost
# installs): taking one over as the admin user would hand its files and groups to SSH logins.
RESERVED_USERS = frozenset(
    {
        "root",
        "daemon",
        "bin",
        "sys",
        "sync",
        "games",
        "man",
        "lp",
        "mail",
        "news",
        "uucp",
        "proxy",
        "www-data",
        "backup",
        "list",
        "irc",
        "gnats",
        "nobody",
        "sshd",
        "messagebus",
        "caddy",
        "mysql",
        "tinc",
        "gluster",
        "certbot",
        "twinapp",
    }
)
# Environment variables the app's unit sets itself (infra/bootstrap/app.py): a setting or secret
# of the same name would be overridden or would break the blue/green slots.
RESERVED_ENV = ("PORT", "APP_VERSION", "APP_IMAGE_REF", "SHARED_DIR")

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# Debian's adduser NAME_REGEX, narrowed to what is also a DNS label; 32 characters is useradd's limit.
_USER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_STACK_PART = r"[A-Za-z0-9_.-]+"
# A known site: its stack name (a DNS label, read as <this org>/<this project>/<name>), or a
# fully qualified `<org>/<project>/<stack>` for a site stack in another project or org.
_SITE_STACK = re.compile(rf"^({_STACK_PART}/{_STACK_PART}/)?{_STACK_PART}$")


def decode(value: Any) -> Any:
    """A value as Pulumi hands it to a program (objects and lists as JSON strings, scalars as
    strings) turned back into its YAML type; anything else as it is."""
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


def admin_user(value: str) -> str:
    if not _USER_NAME.match(value):
        raise ValueError("must be a user name: a lowercase letter, then up to 31 of a-z, 0-9 and '-'")
    if value in RESERVED_USERS or value.startswith("systemd-"):
        raise ValueError(
            "names an account the node already has; choose a plain name of your own such as 'ops' "
            f"(refused: {', '.join(sorted(RESERVED_USERS))}, systemd-*)"
        )
    return value


def apex_domain(value: str) -> str:
    try:
        ascii_name = idna.encode(value.strip().rstrip("."), uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"is not a valid domain name ({exc})") from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise ValueError("must be a registered domain such as example.com, not a single label")
    if labels[0] == "www":
        raise ValueError(
            f"give the apex ({'.'.join(labels[1:])}); www.<apex> is served and redirected to automatically"
        )
    if any(not DNS_LABEL.match(label) for label in labels):
        raise ValueError("has a label that is not a valid DNS label")
    return ascii_name


def zone_name(value: str) -> str:
    try:
        return idna.encode(value.strip().rstrip("."), uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"is not a valid DNS zone name ({exc})") from None


def cidr(value: str, info: ValidationInfo) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            fixed = ipaddress.ip_network(value, strict=False)
            raise ValueError(f"has host bits set; did you mean {fixed}?") from None
        raise ValueError("must be an IPv4 or IPv6 network in CIDR form, e.g. 203.0.113.7/32") from None
    if bool((info.context or {}).get(ANYWHERE_OVERRIDE)):
        return str(network)
    if network.prefixlen == 0:
        raise ValueError(
            "opens SSH to the whole internet; list your office/VPN networks instead, or set "
            f"{ANYWHERE_OVERRIDE}: true if you really mean it"
        )
    floor = ADMIN_CIDR_FLOOR[network.version]
    if network.prefixlen < floor:
        raise ValueError(
            f"is wider than /{floor}, the widest IPv{network.version} admin network allowed (wider "
            f"is no office or VPN, it is a slice of the internet); list your networks, or set "
            f"{ANYWHERE_OVERRIDE}: true if you really mean it"
        )
    return str(network)


def ssh_public_key(value: str) -> str:
    if any(ch in value.strip() for ch in "\r\n\0"):
        # One key per authorized_keys line: a line break would smuggle in a second line.
        raise ValueError("holds a line break; give one key per list entry")
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
            f"is a {key.key_size}-bit RSA key; RSA keys need at least {MIN_RSA_BITS} bits (or use ed25519)"
        )
    if not isinstance(key, (rsa.RSAPublicKey, ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey)):
        raise ValueError("has an unsupported key type; use ed25519, ECDSA or RSA >= 3072 bits")
    return value.strip()


def email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("must be an e-mail address (the ACME account contact)")
    return value


def resolver_address(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("must be the IP address of a DNS resolver, e.g. 1.1.1.1") from None
    if address.is_unspecified or address.is_multicast:
        raise ValueError("must be the unicast IP address of a DNS resolver, e.g. 1.1.1.1")
    return str(address)


def https_url(value: str) -> str:
    if not re.fullmatch(r"https://[A-Za-z0-9.-]+(:\d{1,5})?(/[^\s]*)?", value):
        raise ValueError("must be an https:// URL (an ACME directory)")
    return value


def one_of(allowed: Any, what: str) -> Any:
    def check(value: Any) -> Any:
        if value not in allowed:
            listing = ", ".join(str(item) for item in allowed)
            raise ValueError(f"is not a known {what}; allowed: {listing}")
        return value

    return check


def linode_region_has_metadata(value: str) -> str:
    regions = catalog.providers()["linode"]["regions"]
    if not regions[value]["metadata"]:
        capable = [name for name, info in regions.items() if info["metadata"]]
        raise ValueError(
            f"is {regions[value]['city']}, which has no Metadata service, so cloud-init would "
            f"never receive the user data; choose one of: {', '.join(capable)}"
        )
    return value


def site_stack(value: str) -> str:
    if not _SITE_STACK.match(value):
        raise ValueError(
            "must be a site stack's name such as 'harbourlaw' (same org and project as this "
            "stack) or '<org>/<project>/<stack>'"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(dns_label)]
AdminUser = Annotated[str, AfterValidator(admin_user)]
SiteStack = Annotated[str, AfterValidator(site_stack)]
ApexDomain = Annotated[str, AfterValidator(apex_domain)]
ZoneName = Annotated[str, AfterValidator(zone_name)]
Cidr = Annotated[str, AfterValidator(cidr)]
SshPublicKey = Annotated[str, AfterValidator(ssh_public_key)]
Email = Annotated[str, AfterValidator(email)]
CloudflareZoneId = Annotated[str, AfterValidator(cloudflare_zone_id)]
CloudflareAccountId = Annotated[str, AfterValidator(cloudflare_account_id)]
Route53ZoneId = Annotated[str, AfterValidator(route53_zone_id)]
ResolverAddress = Annotated[str, AfterValidator(resolver_address)]
HttpsUrl = Annotated[str, AfterValidator(https_url)]


class StrictModel(BaseModel):
    # extra="forbid": a misspelled key is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class AdminAccess(StrictModel):
    """The keys both roles share: who administers every node, and from where."""

    admin_user: AdminUser = "ops"
    admin_cidrs: list[Cidr] = Field(min_length=1, max_length=MAX_ADMIN_CIDRS)
    ssh_keys: list[SshPublicKey] = Field(min_length=1)
    dangerously_allow_ssh_from_anywhere: bool = Field(False, alias=ANYWHERE_OVERRIDE)
    debian: DebianRelease = 12
