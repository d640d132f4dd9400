"""The failover watcher as the platform stack delivers it: pure functions, no Pulumi types.

- `watcher_config(...)`: the watcher's config file (`twinhost_watcher.config` format) generated from
  what the site stacks export. Only `watchdog`-mode sites are in it. It names secrets
  (`tokenSecret`, `notify.urlSecret`) and never holds one. It is validated by the watcher's own
  loader before it is published, so a bad site fails `pulumi up`, not the node.
- `release_document(...)`: the small index the node's refresh timer reads every minute from S3:
  where the config and the code archive are (with their SHA-256), and which SSM parameter (and
  version) holds each secret.
- `node_parts(...)`: what the redirector's first boot adds for the watcher: the pieces of
  `infra.watcher_install` (hash-pinned virtualenv, the hardened unit) and the refresh timer that
  fetches config, secrets and code (first at boot, then every minute).

The config and secrets are NOT in the user data: user data is first-boot only (and readable
through the instance metadata service), while sites come and go. A new site is `pulumi up` on the
platform, and the refresh timer picks it up within a minute, without touching the instance.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra import watcher_install as install
from infra.bootstrap.overrides import AwsStandIn
from infra.bootstrap.parts import SCRIPT_MODE, Command, File, Parts, static
from infra.catalog import cloudflare_origin_ca_bundle
from infra.config import Watcher
from infra.site_outputs import SiteOutputs
from twinhost_watcher.config import parse_config

# Secret names in the watcher's config: file names in its secrets directory.
DNS_TOKEN_SECRET = "cloudflare-token"
WEBHOOK_SECRET = "webhook-url"
# Cloudflare's Origin CA root for the checks of `cloudflare-origin` sites' nodes, from
# infra/data/cloudflare-origin-ca.yaml: the root of the type infra/components/origin_tls.py
# requests (a test keeps the two in step). It travels inline in the watcher's config (`caPem`):
# nothing to install on the redirector (whose 16 KB of user data has no room), nothing missing.
ORIGIN_CA_REQUEST_TYPE = "origin-ecc"

# Keys in the platform's bucket. The archive key carries its SHA-256 (install.source_sha256()).
KEY_PREFIX = "watcher/"
RELEASE_KEY = KEY_PREFIX + "release.json"
CONFIG_KEY = KEY_PREFIX + "watcher.json"
# The witness (infra/witness.py): its document and the SSM parameter of its tinc private key.
# Separate from the watcher's secrets: the watcher's unit never gets the witness's key.
WITNESS_KEY = "witness/witness.json"
WITNESS_SECRET = "tinc-key"
# One more SecureString per listed site stack: that site's secrets on the witness, as JSON
# ({"site": <name>, "garbdKeyPem": <the witness's key for the site's Galera cluster>}; only
# "site" for a site without a database). Per site: a SecureString holds 4 KB at most.
WITNESS_SITE_SECRET_PREFIX = "sites/"

REFRESH_SCRIPT = "/usr/local/sbin/twinhost-watcher-refresh"
REFRESH_SETTINGS = "/etc/twinhost/watcher-refresh.json"
REFRESH_SERVICE = "/etc/systemd/system/twinhost-watcher-refresh.service"
REFRESH_TIMER = "/etc/systemd/system/twinhost-watcher-refresh.timer"


def archive_key(sha256: str) -> str:
    return f"{KEY_PREFIX}source-{sha256}.tar.gz"


def parameter_name(stack: str, secret: str) -> str:
    """The SSM parameter that holds one watcher secret: `/twinhost/<stack>/watcher/<secret>`."""
    return f"/twinhost/{stack}/watcher/{secret}"


def witness_parameter_name(stack: str) -> str:
    """The SSM parameter holding the witness's tinc private key."""
    return f"/twinhost/{stack}/witness/{WITNESS_SECRET}"


def witness_site_parameter_name(stack: str, site_stack: str) -> str:
    """The SSM parameter holding the witness's secrets for one listed site stack."""
    return f"/twinhost/{stack}/witness/{WITNESS_SITE_SECRET_PREFIX}{site_stack}"


def witness_site_secrets(site: str | None, garbd_key_pem: str | None) -> str:
    """The value of a site's witness parameter (JSON; see WITNESS_SITE_SECRET_PREFIX)."""
    value: dict[str, str] = {"site": site or ""}
    if garbd_key_pem:
        value["garbdKeyPem"] = garbd_key_pem.strip() + "\n"
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class WatchedSite:
    """The watcher's view of one site stack (its outputs: `infra.site_outputs`)."""

    site: str
    mode: str
    record: str  # failoverHostname
    zone: str  # the ops zone the record is in
    addresses: Mapping[str, str]  # nodeAddresses: provider -> IPv4
    primary: str = "digitalocean"
    ttl: int | None = 60  # None for proxied records
    proxied: bool = False
    certificates: str = "acme"  # acme | cloudflare-origin

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, Any], *, default_zone: str) -> WatchedSite:
        """From a site stack's outputs (`infra.site_outputs`, which fills in the outputs older
        site stacks do not have)."""
        read = SiteOutputs.from_outputs(outputs, default_zone=default_zone)
        return cls(
            site=read.site,
            mode=read.failover_mode,
            record=read.failover_hostname,
            zone=read.ops_zone,
            addresses=read.node_addresses,
            primary=read.primary,
            ttl=read.failover_ttl,
            proxied=read.proxied,
            certificates=read.certificates,
        )


def watcher_config(
    settings: Watcher,
    sites: Sequence[WatchedSite],
    *,
    dns_provider: str,
    zone_id: str,
    notify: bool,
) -> dict[str, Any] | None:
    """The watcher's config for the watchdog-mode `sites`, or None when there is none.

    Raises twinhost_watcher.config.WatcherConfigError when the result would not load on the node.
    """
    watched = sorted((s for s in sites if s.mode == "watchdog"), key=lambda s: s.site)
    if not watched:
        return None
    document: dict[str, Any] = {
        "interval": settings.interval,
        "failures": settings.failures,
        "recoveries": settings.recoveries,
        # A check must end before the next round starts. 2 s is plenty for a /health page across
        # continents (about 3 round trips) and keeps a powered-off node's confirmation, which
        # waits out the timeout on every check, within the 15 s target: with 5 s rounds and 1 s
        # rechecks, at most 5 + 3 x 2 + 2 x 1 = 13 s from its death (tests/watcher/test_engine.py).
        "timeout": min(2, settings.interval - 1),
    }
    if notify:
        document["notify"] = {"urlSecret": WEBHOOK_SECRET}
    document["sites"] = [_site(site, dns_provider, zone_id) for site in watched]
    parse_config(document)  # the watcher's own validation: fail here, never on the node
    return document


def _site(site: WatchedSite, dns_provider: str, zone_id: str) -> dict[str, Any]:
    dns: dict[str, Any]
    if dns_provider == "cloudflare":
        dns = {
            "backend": "cloudflare",
            "zoneId": zone_id,
            "tokenSecret": DNS_TOKEN_SECRET,
            "proxied": site.proxied,
        }
    else:
        # Route 53 is global; credentials come from the instance role (see the IAM policy).
        dns = {"backend": "route53", "hostedZoneId": zone_id}
    # Primary first: the order the record was created in (infra/components/failover_dns.py).
    order = sorted(site.addresses, key=lambda provider: (provider != site.primary, provider))
    nodes = []
    for provider in order:
        node: dict[str, Any] = {"name": provider, "address": site.addresses[provider]}
        if site.certificates == "cloudflare-origin":
            # Origin CA certificates chain to Cloudflare's Origin CA root, not a public CA.
            node["caPem"] = cloudflare_origin_ca_bundle(ORIGIN_CA_REQUEST_TYPE)
        nodes.append(node)
    entry: dict[str, Any] = {"site": site.site, "record": site.record, "zone": site.zone}
    if not site.proxied and site.ttl is not None:
        entry["ttl"] = site.ttl
    entry["dns"] = dns
    entry["nodes"] = nodes
    return entry


def secret_names(config: Mapping[str, Any] | None) -> list[str]:
    """Every secret name the config refers to (each becomes one SSM parameter)."""
    if config is None:
        return []
    return sorted({name for _, name in parse_config(dict(config)).secret_names()})


def config_json(config: Mapping[str, Any]) -> str:
    """The file as it lands on the node; stable bytes (sorted keys), so the hash moves only when
    the content does."""
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def release_document(
    *,
    config: str | None,
    archive_sha256: str,
    secrets: Mapping[str, tuple[str, int]],
    witness: tuple[str, tuple[str, int]] | None = None,
    witness_sites: Mapping[str, tuple[str, int]] | None = None,
) -> dict[str, Any]:
    """The node's index: config (key + SHA-256) or None, code archive, secrets (name ->
    parameter + version), and the witness (its document's SHA-256, its key's parameter and
    version, and per listed site stack the parameter and version of its secrets) or None. The
    refresh timer fetches only what changed."""
    document: dict[str, Any] = {
        "config": None
        if config is None
        else {
            "key": CONFIG_KEY,
            "sha256": hashlib.sha256(config.encode()).hexdigest(),
        },
        "archive": {"key": archive_key(archive_sha256), "sha256": archive_sha256},
        "secrets": {
            name: {"parameter": parameter, "version": int(version)}
            for name, (parameter, version) in sorted(secrets.items())
        },
    }
    if witness is not None:
        text, (parameter, version) = witness
        document["witness"] = {
            "config": {"key": WITNESS_KEY, "sha256": hashlib.sha256(text.encode()).hexdigest()},
            "key": {"parameter": parameter, "version": int(version)},
            "sites": {
                name: {"parameter": site_parameter, "version": int(site_version)}
                for name, (site_parameter, site_version) in sorted((witness_sites or {}).items())
            },
        }
    return document


LAB_WATCHER_CREDENTIALS = "/etc/systemd/system/twinhost-watcher.service.d/lab-aws.conf"


def node_parts(
    *, bucket: str, region: str, backends: Sequence[str], lab_aws: AwsStandIn | None = None
) -> Parts:
    """The watcher on the redirector's first boot, after the redirector's own parts.

    From `infra.watcher_install`: the pinned requirements of `backends`, the unit and the
    virtualenv steps. The code, config and secrets come from the refresh script, which fetches
    them (SHA-256 checked) with an explicit region, and keeps doing it every minute. Only its
    first stage is here (`REFRESH_SCRIPT`): the refresh itself is in the code archive
    (`install.SCRIPT_MEMBERS`), which the first stage fetches and checks when none is installed.

    `lab_aws` (the lab's render overrides, `RenderOverrides.aws`): the refresh reads S3 and SSM
    from the lab's stand-in with its fixed lab credentials instead of AWS with the instance role;
    the settings file then holds those credentials, so it is 0600.
    """
    files = [install.requirements_file(backends), install.unit_file()]
    settings = {"bucket": bucket, "region": region, "releaseKey": RELEASE_KEY}
    settings_mode = 0o644
    if lab_aws is not None:
        settings.update(
            endpointUrl=lab_aws.endpoint_url,
            accessKeyId=lab_aws.access_key_id,
            secretAccessKey=lab_aws.secret_access_key,
        )
        settings_mode = 0o600
        # The lab's stand-in for the instance role, for the watcher's own boto3 (the drill's
        # Route 53 backend on moto): the fixed lab credentials, nothing real behind them.
        files.append(
            File(
                LAB_WATCHER_CREDENTIALS,
                "# The local lab only: moto's fixed credentials.\n[Service]\n"
                f"Environment=AWS_ACCESS_KEY_ID={lab_aws.access_key_id}\n"
                f"Environment=AWS_SECRET_ACCESS_KEY={lab_aws.secret_access_key}\n",
                0o600,
            )
        )
    files += [
        File(REFRESH_SETTINGS, json.dumps(settings, indent=2) + "\n", settings_mode),
        File(REFRESH_SCRIPT, static("redirector" + REFRESH_SCRIPT), SCRIPT_MODE),
        File(REFRESH_SERVICE, static("redirector" + REFRESH_SERVICE)),
        File(REFRESH_TIMER, static("redirector" + REFRESH_TIMER)),
    ]
    runcmd: list[Command] = [
        *install.install_steps(),
        ("systemctl", "daemon-reload"),
        # Code, config and secrets now, and the watcher started when there is a site to watch;
        # then every minute.
        (REFRESH_SCRIPT, "--first-boot"),
        ("systemctl", "enable", "--now", "twinhost-watcher-refresh.timer"),
    ]
    return Parts(files=tuple(files), packages=install.NODE_PACKAGES, runcmd=tuple(runcmd))
