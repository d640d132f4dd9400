"""The platform stack: the agency's shared pieces, made once.

PROVISIONAL (issue 4 builds the redirector instance behind this address): for now the protected
Elastic IP and the outputs site stacks read.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config import PlatformConfig


def build_platform(config: PlatformConfig) -> dict[str, Any]:
    provider = aws.Provider("aws", region=config.aws.region)
    address = aws.ec2.Eip(
        "redirector-eip",
        domain="vpc",
        tags={"Name": "twinhost-redirector", "twinhost": "platform"},
        # Every client's apex A record points here: losing it breaks every client at once.
        opts=pulumi.ResourceOptions(provider=provider, protect=True),
    )
    zone_id = config.cloudflare_zone_id if config.dns_provider == "cloudflare" else config.route53_zone_id
    return {
        "redirectorAddress": address.public_ip,
        "opsZone": config.ops_zone,
        "opsDnsProvider": config.dns_provider,
        "opsZoneId": zone_id,
    }
