"""The watcher's config file (JSON), validated whole before anything runs.

The platform stack generates this file from the watchdog-mode sites it knows; docs/watcher.md shows
the format with an example. Keys are camelCase, like the stack config. Every error names the key
path, the bad value and what is allowed, and all errors are reported together.

Secrets are never in this file. It names them (`tokenSecret`, `tsigSecret`, `notify.urlSecret`);
`read_secret` reads each from the systemd credentials directory (the unit's `LoadCredential=`) or
from `secretsDir`, refusing a file that group or others can read. A secret's value is never shown in
an error or a log line.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from twinhost_watcher.validators import DNS_LABEL, cloudflare_zone_id, dns_label, dns_name, route53_zone_id

DEFAULT_STATE_DIR = "/var/lib/twinhost-watcher"  # the unit's StateDirectory=
DEFAULT_SECRETS_DIR = "/etc/twinhost/watcher-secrets"
# The unit loads DEFAULT_SECRETS_DIR with `LoadCredential=secrets:<dir>`; systemd names each file's
# credential "<id>_<file name>" (systemd.exec(5), LoadCredential= with a directory).
CREDENTIAL_PREFIX = "secrets_"
WEBHOOK_ENV = "TWINHOST_WATCHER_WEBHOOK_URL"
# Cloudflare refuses DNS-only TTLs under 60 s outside Enterprise; proxied records use "automatic".
CLOUDFLARE_MIN_TTL = 60
DEFAULT_TTL = 60

_SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


# ---------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class Issue:
    """One problem: where, what is wrong and allowed, and the value found (unless secret)."""

    key: str
    message: str
    value: Any = None

    def __str__(self) -> str:
        shown = f" (got {self.value!r})" if self.value is not None else ""
        return f"{self.key}: {self.message}{shown}"


class WatcherConfigError(Exception):
    """Every problem found in a watcher config, reported together."""

    def __init__(self, issues: list[Issue], source: str = "watcher config"):
        self.issues = issues
        lines = "\n".join(f"  - {issue}" for issue in issues)
        super().__init__(f"invalid {source} ({len(issues)} problem(s)):\n{lines}")


# ---------------------------------------------------------------------------------------------
# Field validators: each raises ValueError saying what is allowed. DNS names and provider ids are
# shared with the stack config (twinhost_watcher.validators).


def _key_name(value: str) -> str:
    name = value.strip().rstrip(".").lower()
    if not name or any(not DNS_LABEL.match(label) for label in name.split(".")):
        raise ValueError("must be a TSIG key name: DNS labels such as 'watcher' or 'watcher.ops.example.net'")
    return name


def _ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(
            "must be an IPv4 address such as 203.0.113.10 (the watcher manages A records)"
        ) from None


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("must be the server's IP address (IPv4 or IPv6), not a name") from None


def _secret_name(value: str) -> str:
    if not _SECRET_NAME.match(value):
        raise ValueError(
            "must be a secret's file name (letters, digits, '.', '_', '-'), read from the "
            "credentials directory or secretsDir; never the secret itself"
        )
    return value


def _absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must be an absolute path")
    return value


def _https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("must be an https:// URL such as https://203.0.113.10/health")
    try:
        _ = parts.port  # urlsplit parses the port lazily: reading it is the check
    except ValueError:
        raise ValueError("has an invalid port") from None
    return value


def _sha256_pin(value: str) -> str:
    pin = value.replace(":", "").strip().lower()
    if not _SHA256_HEX.match(pin):
        raise ValueError(
            "must be the SHA-256 of the certificate (DER) in hex, colons allowed: "
            "openssl x509 -in cert.pem -outform DER | sha256sum"
        )
    return pin


def _ca_pem(value: str) -> str:
    if "-----BEGIN CERTIFICATE-----" not in value:
        raise ValueError("must hold PEM CA certificates (-----BEGIN CERTIFICATE-----)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=value)
    except (ssl.SSLError, ValueError):
        raise ValueError("holds no PEM certificate OpenSSL can load") from None
    if not context.get_ca_certs():
        raise ValueError("holds no CA certificate")
    return value


Label = Annotated[str, AfterValidator(dns_label)]
Fqdn = Annotated[str, AfterValidator(dns_name)]
IPv4 = Annotated[str, AfterValidator(_ipv4)]
SecretName = Annotated[str, AfterValidator(_secret_name)]
AbsolutePath = Annotated[str, AfterValidator(_absolute_path)]


# ---------------------------------------------------------------------------------------------
# Models


class _Model(BaseModel):
    # extra="forbid": a misspelled key is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class Node(_Model):
    """One node of a site: the address published in DNS and how to check it."""

    name: Label
    address: IPv4
    # Where to check; defaults to https://<address>/health. Separate from `address` so a check can
    # go through another path (the lab, a test) while DNS still publishes the public address.
    health_url: Annotated[str, AfterValidator(_https_url)] | None = None
    # SNI and Host header; defaults to the site's record name (the name the node's cert covers).
    tls_name: Fqdn | None = None
    # Trust: the system CAs by default; or a CA bundle (e.g. Cloudflare's Origin CA root); or the
    # pinned SHA-256 of the node's own certificate (self-signed origins).
    ca_bundle: AbsolutePath | None = None
    # The same as PEM text in the config itself (what the platform writes for Cloudflare Origin CA
    # sites): nothing to install on the node, so nothing can be missing.
    ca_pem: Annotated[str, AfterValidator(_ca_pem)] | None = None
    pin_sha256: Annotated[str, AfterValidator(_sha256_pin)] | None = None

    @model_validator(mode="after")
    def _one_trust(self) -> Node:
        if self.ca_bundle is not None and self.pin_sha256 is not None:
            raise ValueError("give caBundle or pinSha256, not both (a pin replaces chain checks)")
        given = [
            k
            for k, v in (("caBundle", self.ca_bundle), ("caPem", self.ca_pem), ("pinSha256", self.pin_sha256))
            if v is not None
        ]
        if len(given) > 1 and self.ca_pem is not None:
            raise ValueError(f"give one of caBundle, caPem, pinSha256, not {' and '.join(given)}")
        return self

    @property
    def url(self) -> str:
        return self.health_url or f"https://{self.address}/health"


class CloudflareDns(_Model):
    """The record lives in a Cloudflare zone; changed with the official SDK."""

    backend: Literal["cloudflare"]
    zone_id: Annotated[str, AfterValidator(cloudflare_zone_id)]
    token_secret: SecretName
    proxied: bool = False


class Route53Dns(_Model):
    """The record lives in a Route 53 hosted zone; changed with boto3 (instance role credentials)."""

    backend: Literal["route53"]
    hosted_zone_id: Annotated[str, AfterValidator(route53_zone_id)]
    # Only for emulators (moto's server in tests and the lab); the real API needs none.
    endpoint_url: str | None = None
    region: str = "us-east-1"


TsigAlgorithm = Literal["hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224"]


class Rfc2136Dns(_Model):
    """The record lives on an authoritative server that takes TSIG-signed dynamic updates."""

    backend: Literal["rfc2136"]
    server: Annotated[str, AfterValidator(_ip)]
    port: int = Field(53, ge=1, le=65535)
    tsig_key_name: Annotated[str, AfterValidator(_key_name)]
    tsig_algorithm: TsigAlgorithm = "hmac-sha256"
    tsig_secret: SecretName


Dns = Annotated[CloudflareDns | Route53Dns | Rfc2136Dns, Field(discriminator="backend")]
_BACKEND_TAGS = {"cloudflare", "route53", "rfc2136"}


class Site(_Model):
    """One watchdog-mode site: its failover record and its nodes."""

    site: Label
    record: Fqdn
    zone: Fqdn
    ttl: int | None = Field(None, ge=1, le=86400)
    dns: Dns
    nodes: list[Node] = Field(min_length=1, max_length=8)

    @model_validator(mode="after")
    def _site_rules(self) -> Site:
        problems = []
        if self.record != self.zone and not self.record.endswith("." + self.zone):
            problems.append(f"record {self.record!r} is not inside zone {self.zone!r}")
        for field, values in (
            ("name", [n.name for n in self.nodes]),
            ("address", [n.address for n in self.nodes]),
        ):
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                problems.append(f"nodes repeat the {field} {repeated}")
        if isinstance(self.dns, CloudflareDns):
            if self.dns.proxied and self.ttl is not None:
                problems.append(
                    "proxied Cloudflare records have no TTL (Cloudflare's automatic); remove 'ttl'"
                )
            if not self.dns.proxied and self.ttl is not None and self.ttl < CLOUDFLARE_MIN_TTL:
                problems.append(f"Cloudflare DNS-only records need ttl >= {CLOUDFLARE_MIN_TTL}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def record_ttl(self) -> int:
        """The TTL written; 1 means "automatic" to Cloudflare (proxied records)."""
        if isinstance(self.dns, CloudflareDns) and self.dns.proxied:
            return 1
        return self.ttl or DEFAULT_TTL

    def tls_name(self, node: Node) -> str:
        return node.tls_name or self.record


class Notify(_Model):
    """The webhook posted on every record move (ntfy / Slack-compatible JSON)."""

    # The URL is a secret (it carries the token); the env variable TWINHOST_WATCHER_WEBHOOK_URL
    # wins over this file when set.
    url_secret: SecretName | None = None
    timeout: float = Field(5.0, gt=0, le=30)
    attempts: int = Field(3, ge=1, le=10)


class WatcherConfig(_Model):
    """The whole file."""

    interval: float = Field(5.0, ge=1, le=300)
    failures: int = Field(3, ge=1, le=10)
    recoveries: int = Field(2, ge=1, le=10)
    timeout: float = Field(3.0, gt=0, le=60)
    # One DNS API call; longer than a health check: provider APIs are slower than a /health page,
    # and a call that times out is only retried next round.
    dns_timeout: float = Field(10.0, gt=0, le=60)
    # How often the record is read back even when nothing changed, to repair drift (someone edited
    # the record by hand). Reads are cheap but rate-limited at the providers: not every tick.
    reconcile_interval: float = Field(60.0, ge=1, le=86400)
    # While a node is in doubt (a failure streak of an up node, or a success streak of a down
    # one, under way), the next round comes this long after the last one ended instead of at the
    # next `interval` (HAProxy's `fastinter`): a dead node is confirmed in seconds, not intervals.
    # Set it to `interval` to turn rechecks off.
    recheck_interval: float = Field(1.0, gt=0, le=300)
    state_dir: AbsolutePath = DEFAULT_STATE_DIR
    secrets_dir: AbsolutePath = DEFAULT_SECRETS_DIR
    notify: Notify = Field(default_factory=lambda: Notify.model_validate({}))
    sites: list[Site] = Field(min_length=1)

    @model_validator(mode="after")
    def _global_rules(self) -> WatcherConfig:
        problems = []
        if self.timeout >= self.interval:
            problems.append(
                f"timeout ({self.timeout}) must be shorter than interval ({self.interval}): a check "
                "must finish before the next one starts"
            )
        if self.reconcile_interval < self.interval:
            problems.append(
                f"reconcileInterval ({self.reconcile_interval}) must be at least interval ({self.interval})"
            )
        for field, values in (
            ("site", [s.site for s in self.sites]),
            ("record", [s.record for s in self.sites]),
        ):
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                problems.append(f"sites repeat the {field} {repeated}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def secret_names(self) -> list[tuple[str, str]]:
        """(key path, secret name) of every secret the config refers to."""
        names = []
        for index, site in enumerate(self.sites):
            if isinstance(site.dns, CloudflareDns):
                names.append((f"sites[{index}].dns.tokenSecret", site.dns.token_secret))
            elif isinstance(site.dns, Rfc2136Dns):
                names.append((f"sites[{index}].dns.tsigSecret", site.dns.tsig_secret))
        if self.notify.url_secret:
            names.append(("notify.urlSecret", self.notify.url_secret))
        return names


# ---------------------------------------------------------------------------------------------
# Loading


def load_config(path: str | os.PathLike[str]) -> WatcherConfig:
    """Read and validate the config file; raise WatcherConfigError with every problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise WatcherConfigError([Issue(str(path), f"cannot be read ({exc.strerror})")]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WatcherConfigError(
            [Issue(f"{path}:{exc.lineno}:{exc.colno}", f"is not valid JSON ({exc.msg})")]
        ) from None
    return parse_config(data)


def parse_config(data: Any) -> WatcherConfig:
    """Validate decoded JSON; raise WatcherConfigError with every problem."""
    if not isinstance(data, dict):
        raise WatcherConfigError([Issue("(file)", "must be a JSON object", type(data).__name__)])
    try:
        return WatcherConfig.model_validate(data)
    except ValidationError as exc:
        raise WatcherConfigError(_issues(exc)) from None


def _issues(exc: ValidationError) -> list[Issue]:
    issues = []
    for error in exc.errors():
        loc = [part for part in error["loc"] if not (isinstance(part, str) and part in _BACKEND_TAGS)]
        key = _key_path(loc)
        kind = error["type"]
        value = error.get("input")
        message = str(error["msg"])
        if kind == "missing":
            message, value = "is required", None
        elif kind == "extra_forbidden":
            message, value = "is not a known key (check the spelling; see docs/watcher.md)", None
        elif kind == "value_error":
            message = message.removeprefix("Value error, ")
        elif kind == "union_tag_invalid":
            message = "must be one of 'cloudflare', 'route53', 'rfc2136'"
            value = value.get("backend") if isinstance(value, dict) else value
            key += ".backend"
        elif kind in ("too_short", "too_long"):
            ctx = error.get("ctx", {})
            bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
            message = f"must have {'at least' if kind == 'too_short' else 'at most'} {bound} item(s), has {ctx.get('actual_length')}"
        elif kind == "union_tag_not_found":
            message, value = "needs 'backend': 'cloudflare', 'route53' or 'rfc2136'", None
        elif message.startswith("Input should be "):
            message = "must be " + message.removeprefix("Input should be ")
        if isinstance(value, (dict, list)):
            value = None  # a whole object is noise; the key path says where
        issues.append(Issue(key, message, value))
    return issues


def _key_path(loc: list[Any]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (("." if path else "") + str(part))
    return path or "(file)"


def check_trust_files(config: WatcherConfig) -> None:
    """Every node's `caBundle` must exist and hold at least one CA certificate OpenSSL loads.

    A missing bundle fails every check of that node, so both nodes of a site look down and its
    record freezes: refuse such a config before it runs (raise WatcherConfigError, every problem).
    """
    issues = []
    for s_index, site in enumerate(config.sites):
        for n_index, node in enumerate(site.nodes):
            if node.ca_bundle is None:
                continue
            key = f"sites[{s_index}].nodes[{n_index}].caBundle"
            try:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.load_verify_locations(cafile=node.ca_bundle)
            except OSError as exc:
                issues.append(Issue(key, f"cannot be read ({exc.strerror or exc})", node.ca_bundle))
                continue
            except ssl.SSLError:
                issues.append(Issue(key, "holds no PEM CA certificate OpenSSL can load", node.ca_bundle))
                continue
            if not context.get_ca_certs():
                issues.append(Issue(key, "holds no CA certificate", node.ca_bundle))
    if issues:
        raise WatcherConfigError(issues)


# ---------------------------------------------------------------------------------------------
# Secrets


class SecretError(Exception):
    """A secret is missing or unsafe. The message names the key, never the value."""


def read_secret(config: WatcherConfig, key: str, name: str) -> str:
    """The value of secret `name` (referred to by config key `key`), stripped of its newline.

    Looked up first in $CREDENTIALS_DIRECTORY (systemd copies the unit's LoadCredential= files
    there, readable only by the service), then in secretsDir, where the file must not be readable
    by group or others (like ssh with its keys).
    """
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    candidates = []
    if credentials:
        candidates.append((Path(credentials) / f"{CREDENTIAL_PREFIX}{name}", False))
    candidates.append((Path(config.secrets_dir) / name, True))
    for path, check_mode in candidates:
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if check_mode and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretError(
                f"{key}: secret file {path} is readable by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); chmod 0600 it"
            )
        value = path.read_text(encoding="utf-8").strip()
        if not value:
            raise SecretError(f"{key}: secret file {path} is empty")
        return value
    where = " or ".join(str(p) for p, _ in candidates)
    raise SecretError(f"{key}: secret {name!r} not found (looked in {where})")


def webhook_url(config: WatcherConfig) -> str | None:
    """The notification URL, or None when notifications are off. Never logged."""
    url = os.environ.get(WEBHOOK_ENV)
    if not url and config.notify.url_secret:
        url = read_secret(config, "notify.urlSecret", config.notify.url_secret)
    if not url:
        return None
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        # The value is not shown: webhook URLs carry their token.
        raise SecretError(
            "notify.urlSecret: the webhook URL must be https:// (value not shown: it is a secret)"
        )
    return url
