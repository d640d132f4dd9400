"""The platform stack: the agency's shared pieces, made once.

1. the Elastic IP every client apex points at, created first and protected, outside any
   component, so that nothing done to the redirector (rebuild, new type, new image) touches it;
2. the redirector instance behind it (`infra/components/redirector.py`), whose user data
   (`infra.redirector`) runs Caddy redirecting every registered apex to www;
3. the outputs site stacks read through their StackReference (names below are a contract).

How a client apex becomes known: a site stack writes `<apex>._apex.<ops zone>` TXT (see
`infra.redirector.registry`); nothing here changes per site for that.

The failover watcher: the platform reads every site stack in `twinhost:sites` (StackReference),
generates the watcher's config from the watchdog-mode ones, and publishes it with the code and
the secrets for the redirector to fetch (`infra/components/watcher_delivery.py`). Adding a site
changes only those objects, never the instance.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from infra import catalog, site_outputs
from infra import platform_watcher as pw
from infra.bootstrap import Parts
from infra.bootstrap.overrides import RenderOverrides
from infra.components.redirector import Redirector, RedirectorArgs
from infra.components.watcher_delivery import WatcherDelivery, WatcherDeliveryArgs
from infra.config import NAMESPACE, ConfigError, ConfigIssue, PlatformConfig
from infra.redirector import RedirectorSpec, render_user_data, user_data_base64
from infra.redirector.registry import CONTENT_PREFIX, registry_suffix

REDIRECTOR_HOSTNAME = "twinhost-redirector"


def build_platform(config: PlatformConfig, overrides: RenderOverrides | None = None) -> dict[str, Any]:
    """`overrides`: the lab's render-time values (infra.bootstrap.overrides); `pulumi up`: none."""
    provider = aws.Provider("aws", region=config.aws.region)
    address = aws.ec2.Eip(
        "redirector-eip",
        domain="vpc",
        tags={"Name": "twinhost-redirector", "twinhost": "platform"},
        # Every client's apex A record points here: losing it breaks every client at once.
        # Created at the top level (not inside the Redirector component) so its URN never
        # depends on how the redirector is built.
        opts=pulumi.ResourceOptions(provider=provider, protect=True),
    )
    zone_id = config.cloudflare_zone_id if config.dns_provider == "cloudflare" else config.route53_zone_id
    webhook = _set_secret("notifyWebhook")
    delivery = _watcher_delivery(config, str(zone_id), webhook, provider)
    # The Elastic IP goes into the ask service's settings: certificates only for apexes that
    # point here (the address exists before the instance; the association comes after).
    user_data = pulumi.Output.all(delivery.bucket, address.public_ip).apply(
        lambda values: user_data_base64(
            redirector_user_data(
                config,
                public_address=values[1],
                overrides=overrides,
                extra_parts=(
                    pw.node_parts(
                        bucket=values[0],
                        region=config.aws.region,
                        backends=_watcher_backends(config, overrides),
                        # Only `twinhost plan --lab` sets it: the lab's S3/SSM stand-in.
                        lab_aws=overrides.aws if overrides else None,
                    ),
                ),
            )
        )
    )
    redirector = Redirector(
        "redirector",
        RedirectorArgs(
            settings=config.aws,
            debian=config.debian,
            admin_cidrs=list(config.admin_cidrs),
            address=address,
            user_data_base64=user_data,
            instance_profile=delivery.instance_profile,
            resolvers=list(config.aws.resolvers),
        ),
        opts=pulumi.ResourceOptions(providers={"aws": provider}),
    )
    # Whether a webhook is set (Pulumi.yaml's default "" means unset): a plain bool derived from
    # the secret, which itself never leaves this stack's config.
    notify = pulumi.Output.unsecret(webhook.apply(bool)) if webhook is not None else False
    return {
        # Read by every site stack (infra/site.py): keep these names.
        "redirectorAddress": address.public_ip,
        "opsZone": config.ops_zone,
        "opsDnsProvider": config.dns_provider,
        "opsZoneId": zone_id,
        # Where a site registers its apexes: `<apex>.<apexRegistry>` TXT "<apexRecordPrefix><site>".
        "apexRegistry": registry_suffix(config.ops_zone),
        "apexRecordPrefix": CONTENT_PREFIX,
        "acmeEmail": config.acme_email,
        # For operators, and for the watcher (issue 7): where checks come from, how often.
        "redirectorInstanceId": redirector.instance_id,
        "redirectorSecurityGroupId": redirector.security_group_id,
        "redirectorImage": redirector.ami_name,
        "watcher": {
            "sourceAddress": address.public_ip,  # sites behind a proxy allow /health from it
            "interval": config.watcher.interval,
            "failures": config.watcher.failures,
            "recoveries": config.watcher.recoveries,
            # Whether failover events are posted anywhere; the URL itself stays a secret here.
            "notifications": notify,
            # Where the watcher's config, code and release index live (read by the redirector).
            "bucket": delivery.bucket,
        },
    }


def _watcher_delivery(
    config: PlatformConfig, zone_id: str, webhook: pulumi.Output[str] | None, provider: aws.Provider
) -> WatcherDelivery:
    """Read the known site stacks, generate the watcher config, publish it (see module doc)."""
    token = _set_secret("watcherDnsToken")
    if config.sites and config.dns_provider == "cloudflare" and token is None:
        # Refused before any resource exists: a watcher without a token could never move a record.
        raise ConfigError(
            [
                ConfigIssue(
                    f"{NAMESPACE}:watcherDnsToken",
                    "is required when sites are listed and the ops zone is on Cloudflare: a Cloudflare API "
                    "token with DNS edit on the ops zone only; set it with "
                    "`pulumi config set --secret twinhost:watcherDnsToken <token>`",
                )
            ]
        )
    # "organization" is what Pulumi itself calls the org of a self-managed (DIY) backend.
    organization, project = pulumi.get_organization() or "organization", pulumi.get_project()
    references = [
        pulumi.StackReference(PlatformConfig.site_stack_name(name, organization, project))
        for name in config.sites
    ]
    outputs = [
        pulumi.Output.all(*[ref.get_output(key) for key in site_outputs.KEYS]).apply(
            lambda values: dict(zip(site_outputs.KEYS, values, strict=False))
        )
        for ref in references
    ]
    sites = pulumi.Output.all(*outputs).apply(
        lambda found: [pw.WatchedSite.from_outputs(values, default_zone=config.ops_zone) for values in found]
    )
    generated = sites.apply(
        lambda watched: pw.watcher_config(
            config.watcher,
            watched,
            dns_provider=config.dns_provider,
            zone_id=zone_id,
            notify=webhook is not None,
        )
    )
    secrets: dict[str, pulumi.Input[str]] = {}
    if config.sites and token is not None and config.dns_provider == "cloudflare":
        secrets[pw.DNS_TOKEN_SECRET] = token
    if webhook is not None:
        secrets[pw.WEBHOOK_SECRET] = webhook
    return WatcherDelivery(
        "watcher",
        WatcherDeliveryArgs(
            stack=pulumi.get_stack(),
            region=config.aws.region,
            config=generated,
            secrets=secrets,
            dns_provider=config.dns_provider,
            route53_zone_id=config.route53_zone_id,
            records=sites.apply(lambda watched: sorted(s.record for s in watched if s.mode == "watchdog")),
        ),
        opts=pulumi.ResourceOptions(providers={"aws": provider}),
    )


def _watcher_backends(config: PlatformConfig, overrides: RenderOverrides | None) -> list[str]:
    """The platform's own DNS provider, plus (the lab only) the drill's backends."""
    extra = overrides.watcher_backends if overrides else ()
    return [config.dns_provider, *sorted(set(extra) - {config.dns_provider})]


def _set_secret(key: str) -> pulumi.Output[str] | None:
    """A secret config value, or None when it is not set. Pulumi.yaml's default "" is handed to
    every stack as a plain value; a value set with `--secret` is marked secret. Only that mark is
    looked at here, never the value."""
    if not pulumi.runtime.is_config_secret(f"{NAMESPACE}:{key}"):
        return None
    return pulumi.Config(NAMESPACE).get_secret(key)


def redirector_spec(
    config: PlatformConfig, overrides: RenderOverrides | None = None, public_address: str | None = None
) -> RedirectorSpec:
    overrides = overrides or RenderOverrides()  # production's values unless `twinhost plan --lab`
    return RedirectorSpec(
        public_address=public_address,
        hostname=REDIRECTOR_HOSTNAME,
        debian=config.debian,
        admin_user=config.admin_user,
        ssh_keys=tuple(config.ssh_keys),
        admin_cidrs=tuple(config.admin_cidrs),
        memory_mib=int(catalog.providers()["aws"]["instance_memory_mib"][config.aws.instance_type]),
        ops_zone=config.ops_zone,
        acme_email=config.acme_email,
        acme_directory=overrides.acme_directory or config.aws.acme_directory,
        resolvers=overrides.resolvers or tuple(config.aws.resolvers),
        apt_proxy=overrides.apt_proxy,
        acme_ca_root_pem=overrides.ca_pem,
        swap=overrides.swap,
    )


def redirector_user_data(
    config: PlatformConfig,
    extra_parts: tuple[Parts, ...] = (),
    overrides: RenderOverrides | None = None,
    public_address: str | None = None,
) -> str:
    """The redirector's readable #cloud-config: shared hardening, its own parts, then
    `extra_parts` (the failover watcher). Delivered gzip-compressed (infra.redirector).
    `public_address`: the Elastic IP, for the ask service's check of an apex's A records."""
    return render_user_data(redirector_spec(config, overrides, public_address), extra_parts=extra_parts)
