"""Records and health checks in an ops zone on Route 53.

Imported only through `infra.components.dns_providers.route53()`, i.e. only by site stacks whose
ops zone is on Route 53.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from infra.components.dns_providers import HEALTH_PATH, FailoverDnsArgs, OpsZone, protected
from infra.config import Provider


class Route53Dns:
    """The `DnsProvider` of an ops zone on Route 53."""

    def address_records(
        self,
        name: str,
        parent: pulumi.Resource,
        args: FailoverDnsArgs,
        hostname: pulumi.Output[str],
        targets: Sequence[Provider],
        watched: bool,
    ) -> list[pulumi.CustomResource]:
        return [
            aws.route53.Record(
                f"{name}-a",
                zone_id=args.zone.zone_id,
                name=hostname,
                type="A",
                ttl=args.ttl,
                records=[args.addresses[p] for p in targets],
                # The watcher owns the address once the record exists (infra/components/failover_dns.py).
                opts=protected(parent, ("records",) if watched else ()),
            )
        ]

    def provider_failover(
        self,
        name: str,
        parent: pulumi.Resource,
        args: FailoverDnsArgs,
        hostname: pulumi.Output[str],
        order: Sequence[Provider],
    ) -> list[pulumi.CustomResource]:
        """Route 53 failover routing: a PRIMARY and a SECONDARY record, each tied to a health check."""
        assert args.mode == "route53", "config validation ties failover mode route53 to opsDns route53"
        records: list[pulumi.CustomResource] = []
        for role, provider in zip(("PRIMARY", "SECONDARY"), order, strict=False):
            check = aws.route53.HealthCheck(
                f"{name}-{provider}-check",
                type="HTTPS",  # Route 53 HTTPS checks negotiate TLS 1.2 (and 1.3) with SNI
                ip_address=args.addresses[provider],
                port=443,
                resource_path=HEALTH_PATH,
                fqdn=hostname,  # sent as Host header and SNI name
                enable_sni=True,
                request_interval=args.check_interval,
                failure_threshold=args.failures,
                tags={"Name": f"twinhost-{args.site}-{provider}", "site": args.site},
                opts=pulumi.ResourceOptions(parent=parent),
            )
            records.append(
                aws.route53.Record(
                    f"{name}-{provider}",
                    zone_id=args.zone.zone_id,
                    name=hostname,
                    type="A",
                    ttl=args.ttl,
                    records=[args.addresses[provider]],
                    set_identifier=f"{args.site}-{provider}",
                    failover_routing_policies=[aws.route53.RecordFailoverRoutingPolicyArgs(type=role)],
                    health_check_id=check.id,
                    opts=protected(parent),
                )
            )
        return records

    def registration_record(
        self,
        name: str,
        parent: pulumi.Resource,
        zone: OpsZone,
        record_name: pulumi.Output[str],
        content: str,
        ttl: int,
        comment: str,
    ) -> pulumi.CustomResource:
        # Route 53 records have no comment field.
        return aws.route53.Record(
            name,
            zone_id=zone.zone_id,
            name=record_name,
            type="TXT",
            ttl=ttl,
            records=[content],
            opts=protected(parent),
        )
