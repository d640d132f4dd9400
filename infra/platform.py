"""The platform stack: the agency's shared pieces, made once.

1. the Elastic IP every client apex points at, created first and protected, outside any
   component, so that nothing done to the redirector (rebuild, new type, new image) touches it;
2. the redirector instance behind it (`infra/components/redirector.py`), whose user data
   (`infra.redirector`) runs Caddy redirecting every registered apex to www;
3. the outputs site stacks read through their StackReference (names below are a contract).

How a client apex becomes known: a site stack writes `<apex>._apex.<ops zone>` TXT (see
`infra.redirector.registry`); nothing here changes per site.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.redirector import Redirector, RedirectorArgs
from infra.config import NAMESPACE, PlatformConfig
from infra.redirector import Part, RedirectorSpec, render_user_data
from infra.redirector.registry import CONTENT_PREFIX, registry_suffix

REDIRECTOR_HOSTNAME = "twinhost-redirector"


def build_platform(config: PlatformConfig) -> dict[str, Any]:
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
    redirector = Redirector(
        "redirector",
        RedirectorArgs(
            settings=config.aws,
            debian=config.debian,
            admin_cidrs=list(config.admin_cidrs),
            address=address,
            user_data=redirector_user_data(config),
            resolvers=list(config.aws.resolvers),
        ),
        opts=pulumi.ResourceOptions(providers={"aws": provider}),
    )
    zone_id = config.cloudflare_zone_id if config.dns_provider == "cloudflare" else config.route53_zone_id
    webhook = pulumi.Config(NAMESPACE).get_secret("notifyWebhook")
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
        },
    }


def redirector_spec(config: PlatformConfig) -> RedirectorSpec:
    return RedirectorSpec(
        hostname=REDIRECTOR_HOSTNAME,
        debian=config.debian,
        admin_user=config.admin_user,
        ssh_keys=tuple(config.ssh_keys),
        ops_zone=config.ops_zone,
        acme_email=config.acme_email,
        acme_directory=config.aws.acme_directory,
        resolvers=tuple(config.aws.resolvers),
    )


def redirector_user_data(config: PlatformConfig, extra_parts: tuple[Part, ...] = ()) -> str:
    """The redirector's #cloud-config. `extra_parts` is the hook for the failover watcher
    (issue 7): its part (package, config, unit) is added here, after the redirector's own."""
    return render_user_data(redirector_spec(config), extra_parts=extra_parts)
