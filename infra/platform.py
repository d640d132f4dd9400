"""The platform stack: the agency's shared pieces, made once.

1. the Elastic IP every client apex points at, created first and protected, outside any
   component, so that nothing done to the redirector (rebuild, new type, new image) touches it;
2. the redirector instance behind it (`infra/components/redirector.py`), whose user data
   (`infra.redirector`) runs Caddy redirecting every registered apex to www;
3. the outputs site stacks read through their StackReference (names below are a contract);
4. the backup bucket every site backs up to, one prefix per site (docs/backups.md).

How a client apex becomes known: a site stack writes `<apex>._apex.<ops zone>` TXT (see
`infra.redirector.registry`); nothing here changes per site for that.

The failover watcher: the platform reads every site stack in `twinhost:sites` (StackReference),
generates the watcher's config from the watchdog-mode ones, and publishes it with the code and
the secrets for the redirector to fetch (`infra/components/watcher_delivery.py`). Adding a site
changes only those objects, never the instance.

The witness (`infra/witness.py`): the redirector is the third vote of every listed site (any
failover mode). The platform makes its tinc key, publishes its document (every site's tinc net,
ports, nodes' addresses and public keys; for a site with a database its Galera cluster, CA and the
witness's garbd certificate, which the site stack made) through the same channel, with the
witness's secrets per site (the garbd key the site stack exported as a secret) in SSM, opens each
site's witness port in the security group to that site's nodes only, and exports `witness` (name,
Elastic IP, public key) for the site stacks' nodes.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls

from infra import catalog, site_outputs
from infra import platform_watcher as pw
from infra import witness as wt
from infra.bootstrap import Parts
from infra.bootstrap.overrides import RenderOverrides
from infra.components.backup_bucket import BackupBucket, BackupBucketArgs
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
    witness_key = tls.PrivateKey(
        "witness-tinc",
        algorithm="RSA",
        # tinc 1.0 authenticates with RSA; the site nodes' keys have the same size.
        rsa_bits=3072,
    )
    delivery, witnessed = _watcher_delivery(config, str(zone_id), webhook, provider, witness_key, address)
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
            witness_peers=witnessed.apply(wt.security_group_peers),
        ),
        opts=pulumi.ResourceOptions(providers={"aws": provider}),
    )
    # Whether a webhook is set (Pulumi.yaml's default "" means unset): a plain bool derived from
    # the secret.
    notify = pulumi.Output.unsecret(webhook.apply(bool)) if webhook is not None else False
    backups = BackupBucket(
        "backups",
        BackupBucketArgs(region=config.aws.region, tags={"twinhost": "platform"}),
        opts=pulumi.ResourceOptions(providers={"aws": provider}),
    )
    exports: dict[str, Any] = {}
    if webhook is not None:
        # Read by the site stacks for their nodes' backup alerts (docs/backups.md): a secret
        # output, so it stays encrypted in both stacks' state and reaches only the nodes' user
        # data (itself a secret).
        exports["notifyWebhook"] = pulumi.Output.secret(webhook)
    return exports | {
        # Read by every site stack (infra/site.py): keep these names.
        "redirectorAddress": address.public_ip,
        "opsZone": config.ops_zone,
        "opsDnsProvider": config.dns_provider,
        "opsZoneId": zone_id,
        # Where a site registers its apexes: `<apex>.<apexRegistry>` TXT "<apexRecordPrefix><site>".
        "apexRegistry": registry_suffix(config.ops_zone),
        "apexRecordPrefix": CONTENT_PREFIX,
        "acmeEmail": config.acme_email,
        # Read by every site stack: the third member of its tinc net (infra/witness.py). The
        # private key stays in this stack (a secret) and in SSM.
        "witness": {
            "name": wt.WITNESS_TINC_NAME,
            "address": address.public_ip,
            "publicKeyPem": witness_key.public_key_pem,
        },
        # For operators, and for the watcher (issue 7): where checks come from, how often.
        "redirectorInstanceId": redirector.instance_id,
        "redirectorSecurityGroupId": redirector.security_group_id,
        "redirectorImage": redirector.ami_name,
        "watcher": {
            "sourceAddress": address.public_ip,  # sites behind a proxy allow /health from it
            "interval": config.watcher.interval,
            "failures": config.watcher.failures,
            "recoveries": config.watcher.recoveries,
            # Whether failover events are posted anywhere (the URL itself: `notifyWebhook`, secret).
            "notifications": notify,
            # Where the watcher's config, code and release index live (read by the redirector).
            "bucket": delivery.bucket,
        },
        # Read by every site stack: where its backups go, under its own prefix `<site>/`
        # (infra/components/site_backups.py makes that prefix's credentials).
        "backups": {"bucket": backups.bucket, "region": backups.region, "endpoint": backups.endpoint},
    }


def _watcher_delivery(
    config: PlatformConfig,
    zone_id: str,
    webhook: pulumi.Output[str] | None,
    provider: aws.Provider,
    witness_key: tls.PrivateKey,
    address: aws.ec2.Eip,
) -> tuple[WatcherDelivery, pulumi.Output[list[wt.WitnessedSite]]]:
    """Read the known site stacks, generate the watcher config and the witness document, publish
    them (see module doc). Also returns the witnessed sites (for the security group)."""
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
    # The public outputs only: the secret one (the garbd key) is read apart, so that the
    # watcher's config and the witness's document do not become secrets with it.
    outputs = [
        pulumi.Output.all(*[ref.get_output(key) for key in site_outputs.PUBLIC_KEYS]).apply(
            lambda values: dict(zip(site_outputs.PUBLIC_KEYS, values, strict=False))
        )
        for ref in references
    ]
    site_secrets: dict[str, pulumi.Input[str]] = {
        name: pulumi.Output.secret(
            pulumi.Output.all(ref.get_output("site"), ref.get_output("witnessDatabaseKey")).apply(
                lambda v: pw.witness_site_secrets(v[0], v[1])
            )
        )
        for name, ref in zip(config.sites, references, strict=True)
    }
    sites = pulumi.Output.all(*outputs).apply(
        lambda found: [pw.WatchedSite.from_outputs(values, default_zone=config.ops_zone) for values in found]
    )
    witnessed = pulumi.Output.all(*outputs).apply(
        lambda found: [
            site
            for values in found
            if (
                site := _witnessed(
                    site_outputs.SiteOutputs.from_outputs(values, default_zone=config.ops_zone)
                )
            )
            is not None
        ]
    )
    document = pulumi.Output.all(witnessed, witness_key.public_key_pem, address.public_ip).apply(
        lambda v: _witness_document(v[0], v[1], v[2])
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
            witness=document,
            witness_key=witness_key.private_key_pem,
            witness_site_secrets=site_secrets,
        ),
        opts=pulumi.ResourceOptions(providers={"aws": provider}),
    ), witnessed


def _witnessed(read: site_outputs.SiteOutputs) -> wt.WitnessedSite | None:
    return wt.WitnessedSite.from_outputs(
        read.site, read.node_addresses, read.tinc_public_keys or {}, read.witness_database
    )


def _witness_document(sites: list[wt.WitnessedSite], public_key_pem: str, address: str) -> dict[str, Any]:
    """The witness's document, or a ConfigError naming the two sites whose mesh networks collide
    (the config rule `sites_have_distinct_mesh_networks` catches it earlier for stack names)."""
    try:
        return wt.witness_document(sites, public_key_pem=public_key_pem, address=address)
    except wt.WitnessCollisionError as error:
        raise ConfigError([ConfigIssue(f"{NAMESPACE}:sites", str(error))]) from None


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
