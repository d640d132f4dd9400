"""The failover watcher as the platform stack delivers it: pure functions, no Pulumi types.

- `watcher_config(...)`: the watcher's config file (`infra.watcher.config` format) generated from
  what the site stacks export. Only `watchdog`-mode sites are in it. It names secrets
  (`tokenSecret`, `notify.urlSecret`) and never holds one. It is validated by the watcher's own
  loader before it is published, so a bad site fails `pulumi up`, not the node.
- `release_document(...)`: the small index the node's refresh timer reads every minute from S3:
  where the config and the code archive are (with their SHA-256), and which SSM parameter (and
  version) holds each secret.
- `node_parts(...)`: what the redirector's first boot adds for the watcher: the install of
  `infra.watcher.install` (hash-pinned virtualenv, the hardened unit) and the refresh timer that
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

from infra.bootstrap.parts import File, Parts, static
from infra.catalog import cloudflare_origin_ca_bundle
from infra.config import LabAws, Watcher
from infra.watcher import install
from infra.watcher.config import parse_config

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

REFRESH_SCRIPT = "/usr/local/sbin/twinhost-watcher-refresh"
REFRESH_SETTINGS = "/etc/twinhost/watcher-refresh.json"
REFRESH_SERVICE = "/etc/systemd/system/twinhost-watcher-refresh.service"
REFRESH_TIMER = "/etc/systemd/system/twinhost-watcher-refresh.timer"


def archive_key(sha256: str) -> str:
    return f"{KEY_PREFIX}source-{sha256}.tar.gz"


def parameter_name(stack: str, secret: str) -> str:
    """The SSM parameter that holds one watcher secret: `/twinhost/<stack>/watcher/<secret>`."""
    return f"/twinhost/{stack}/watcher/{secret}"


@dataclass(frozen=True)
class WatchedSite:
    """What the platform reads from one site stack (its outputs; see infra/site.py)."""

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
        """From a site stack's outputs. Outputs added after the first site stacks (opsZone,
        failoverTtl, proxied, primary, certificates) fall back to what those sites had."""
        record = str(outputs["failoverHostname"])
        return cls(
            site=str(outputs.get("site") or record.split(".", 1)[0]),
            mode=str(outputs["failoverMode"]),
            record=record,
            zone=str(outputs.get("opsZone") or default_zone),
            addresses={str(k): str(v) for k, v in dict(outputs["nodeAddresses"]).items()},
            primary=str(outputs.get("primary") or "digitalocean"),
            ttl=(int(outputs["failoverTtl"]) if outputs.get("failoverTtl") is not None else
                 (None if outputs.get("proxied") else 60)),
            proxied=bool(outputs.get("proxied", False)),
            certificates=str(outputs.get("certificates") or "acme"),
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

    Raises infra.watcher.config.WatcherConfigError when the result would not load on the node.
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
        dns = {"backend": "cloudflare", "zoneId": zone_id, "tokenSecret": DNS_TOKEN_SECRET,
               "proxied": site.proxied}
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
) -> dict[str, Any]:
    """The node's index: config (key + SHA-256) or None, code archive, secrets (name ->
    parameter + version). The refresh timer fetches only what changed."""
    return {
        "config": None if config is None else {
            "key": CONFIG_KEY, "sha256": hashlib.sha256(config.encode()).hexdigest(),
        },
        "archive": {"key": archive_key(archive_sha256), "sha256": archive_sha256},
        "secrets": {name: {"parameter": parameter, "version": int(version)}
                    for name, (parameter, version) in sorted(secrets.items())},
    }


LAB_WATCHER_CREDENTIALS = "/etc/systemd/system/twinhost-watcher.service.d/lab-aws.conf"


def node_parts(*, bucket: str, region: str, backends: Sequence[str],
               lab_aws: LabAws | None = None) -> Parts:
    """The watcher on the redirector's first boot, after the redirector's own parts.

    `infra.watcher.install.node_install` gives the pinned requirements, the unit and the venv
    steps. Its archive fetch and config file are replaced by the refresh script, which does the
    same (SHA-256 checked) with an explicit region, and keeps doing it every minute.

    `lab_aws` (labOverrides.aws, the local lab only): the refresh reads S3 and SSM from the lab's
    stand-in with its fixed lab credentials instead of AWS with the instance role; the settings
    file then holds those credentials, so it is 0600.
    """
    sha256 = install.source_sha256()
    planned = install.node_install("{}", backends, bucket=bucket, key=archive_key(sha256),
                                   archive_sha256=sha256)
    files = [File(f.path, f.content, f.mode) for f in planned.files if f.path != install.CONFIG_PATH]
    settings = {"bucket": bucket, "region": region, "releaseKey": RELEASE_KEY}
    settings_mode = 0o644
    if lab_aws is not None:
        settings.update(endpointUrl=lab_aws.endpoint_url, accessKeyId=lab_aws.access_key_id,
                        secretAccessKey=lab_aws.secret_access_key)
        settings_mode = 0o600
        # The lab's stand-in for the instance role, for the watcher's own boto3 (the drill's
        # Route 53 backend on moto): the fixed lab credentials, nothing real behind them.
        files.append(File(LAB_WATCHER_CREDENTIALS,
                          "# The local lab only (labOverrides.aws): moto's fixed credentials.\n[Service]\n"
                          f"Environment=AWS_ACCESS_KEY_ID={lab_aws.access_key_id}\n"
                          f"Environment=AWS_SECRET_ACCESS_KEY={lab_aws.secret_access_key}\n", 0o600))
    files += [
        File(REFRESH_SETTINGS, json.dumps(settings, indent=2) + "\n", settings_mode),
        File(REFRESH_SCRIPT, static(REFRESH_SCRIPT.lstrip("/")), 0o755),
        File(REFRESH_SERVICE, static(REFRESH_SERVICE.lstrip("/"))),
        File(REFRESH_TIMER, static(REFRESH_TIMER.lstrip("/"))),
    ]
    runcmd: list[str | tuple[str, ...]] = [
        ("install", "-d", "-m", "0700", install.SECRETS_DIR),
        ("install", "-d", "-m", "0755", install.ROOT),
        *_venv_steps(planned.runcmd),
        ("systemctl", "daemon-reload"),
        # Code, config and secrets now, and the watcher started when there is a site to watch;
        # then every minute.
        (REFRESH_SCRIPT, "--first-boot"),
        ("systemctl", "enable", "--now", "twinhost-watcher-refresh.timer"),
    ]
    return Parts(files=tuple(files), packages=planned.packages, runcmd=tuple(runcmd))


def _venv_steps(runcmd: Sequence[str | tuple[str, ...]]) -> list[tuple[str, ...]]:
    """node_install's virtualenv and hash-pinned pip install, in its order."""
    steps = [c for c in runcmd if isinstance(c, tuple)
             and ((c[:3] == ("python3", "-m", "venv")) or c[0].endswith("/venv/bin/pip"))]
    if len(steps) != 2:
        raise RuntimeError(f"infra.watcher.install changed its steps; review node_parts: {runcmd}")
    return steps
