"""A site stack: read the platform, build the pair, export what operators and clients need."""

from __future__ import annotations

import json
from typing import Any

import pulumi

from infra.bootstrap.overrides import RenderOverrides
from infra.components.failover_dns import OpsZone
from infra.components.site_pair import PlatformOutputs, SitePair, SitePairArgs
from infra.config import NAMESPACE, ConfigError, ConfigIssue, SiteConfig
from infra.site_outputs import SiteOutputs


def build_site(config: SiteConfig, overrides: RenderOverrides | None = None) -> dict[str, Any]:
    """`overrides`: the lab's render-time values (infra.bootstrap.overrides); `pulumi up`: none."""
    platform_ref = pulumi.StackReference(config.platform_stack)
    provider = platform_ref.require_output("opsDnsProvider").apply(
        lambda actual: _same_dns_provider(config.ops_dns, actual)
    )
    platform = PlatformOutputs(
        redirector_address=platform_ref.require_output("redirectorAddress"),
        ops_zone=OpsZone(
            provider=config.ops_dns,
            # Depends on the provider check, so a mismatch fails before records are declared.
            zone_id=pulumi.Output.all(provider, platform_ref.require_output("opsZoneId")).apply(
                lambda v: v[1]
            ),
            name=platform_ref.require_output("opsZone"),
        ),
        # None from a platform stack that has no witness yet (before its next `pulumi up`).
        witness=platform_ref.get_output("witness"),
        # Required only when the site backs up: a platform from before the backup bucket has
        # none, and `pulumi up` of the platform must come first (docs/backups.md).
        backups=platform_ref.require_output("backups") if config.backups.enabled else None,
        notify_webhook=platform_ref.get_output("notifyWebhook"),
    )
    pair = SitePair(
        config.site, SitePairArgs(config, platform, app_secrets=_app_secrets(), overrides=overrides)
    )
    return SiteOutputs(
        site=config.site,
        failover_hostname=pair.failover_hostname,
        failover_mode=config.failover.mode,
        node_addresses=pair.node_addresses,
        client_dns=pair.client_dns,
        domains=[d.name for d in config.domains],
        ops_zone=platform.ops_zone.name,
        failover_ttl=config.record_ttl,
        proxied=config.proxied,
        primary=config.primary,
        certificates=config.certificate_source,
        tinc_public_keys=pair.tinc_public_keys,
        witness_database=pair.witness_database,
        witness_database_key=pair.witness_database_key,
    ).to_exports()


def _same_dns_provider(expected: str, actual: str) -> str:
    if expected != actual:
        raise ConfigError(
            [
                ConfigIssue(
                    f"{NAMESPACE}:opsDns",
                    f"does not match the platform stack, whose ops zone is on {actual!r}; set it to {actual!r}",
                    expected,
                )
            ]
        )
    return actual


def _app_secrets() -> pulumi.Output[dict[str, str]] | None:
    """`appSecrets` (a secret JSON object) as an Output secret; never read into plain values."""
    raw = pulumi.Config(NAMESPACE).get_secret("appSecrets")
    if raw is None:
        return None
    return pulumi.Output.secret(raw.apply(_decode_secret_object))


def _decode_secret_object(text: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}  # the offline plan cannot decrypt secrets; `pulumi up` sees the real JSON
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
