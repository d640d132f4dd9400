"""What a site does in the agency's Cloudflare account: ops zone records, load balancers, the
client's own records (proxied sites) and origin certificates.

Imported only through `infra.components.dns_providers.cloudflare()`, i.e. only by stacks whose
config uses Cloudflare: `pulumi_cloudflare` costs about 4 s to import.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_cloudflare as cloudflare

from infra.components.dns_providers import HEALTH_PATH, FailoverDnsArgs, OpsZone, protected
from infra.components.origin_tls import OriginTls, OriginTlsArgs
from infra.config import Provider

# Cloudflare DNS: ttl=1 means "automatic", the only TTL a proxied record can have.
CLOUDFLARE_AUTOMATIC_TTL = 1
# Seconds a Cloudflare monitor waits for /health before counting a failure.
MONITOR_TIMEOUT_S = 5
# The client's apex A record points at the redirector; it rarely changes, so a longer TTL.
APEX_TTL = 3600


class CloudflareDns:
    """The `DnsProvider` of an ops zone on Cloudflare, plus the Cloudflare-only parts of a site."""

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
            cloudflare.DnsRecord(
                f"{name}-{provider}",
                zone_id=args.zone.zone_id,
                name=hostname,
                type="A",
                content=args.addresses[provider],
                proxied=args.proxied,
                ttl=CLOUDFLARE_AUTOMATIC_TTL if args.proxied else args.ttl,
                comment=f"twinhost {args.site}: failover name ({args.mode})",
                # The watcher owns the address once the record exists (infra/components/failover_dns.py).
                opts=protected(parent, ("content",) if watched else ()),
            )
            for provider in targets
        ]

    def provider_failover(
        self,
        name: str,
        parent: pulumi.Resource,
        args: FailoverDnsArgs,
        hostname: pulumi.Output[str],
        order: Sequence[Provider],
    ) -> list[pulumi.CustomResource]:
        """Cloudflare Load Balancing: a monitor on /health, a pool per node, primary first."""
        assert args.mode == "cloudflare-lb", "config validation ties cloudflare-lb to opsDns cloudflare"
        account_id = args.cloudflare_account_id
        assert account_id is not None, "config validation requires accountId for cloudflare-lb"
        monitor = cloudflare.LoadBalancerMonitor(
            f"{name}-monitor",
            account_id=account_id,
            type="https",
            method="GET",
            path=HEALTH_PATH,
            expected_codes="200",
            interval=args.check_interval,
            timeout=MONITOR_TIMEOUT_S,
            retries=0,
            consecutive_down=args.failures,
            consecutive_up=args.recoveries,
            header={"Host": [hostname]},
            description=f"twinhost {args.site} /health",
            opts=pulumi.ResourceOptions(parent=parent),
        )
        pools = []
        for provider in order:
            pools.append(
                cloudflare.LoadBalancerPool(
                    f"{name}-{provider}-pool",
                    account_id=account_id,
                    name=f"{args.site}-{provider}",
                    origins=[
                        cloudflare.LoadBalancerPoolOriginArgs(
                            name=provider,
                            address=args.addresses[provider],
                            enabled=True,
                            header=cloudflare.LoadBalancerPoolOriginHeaderArgs(hosts=[hostname]),
                        )
                    ],
                    monitor=monitor.id,
                    minimum_origins=1,
                    opts=pulumi.ResourceOptions(parent=parent),
                )
            )
        return [
            cloudflare.LoadBalancer(
                f"{name}-lb",
                zone_id=args.zone.zone_id,
                name=hostname,
                default_pools=[pool.id for pool in pools],
                fallback_pool=pools[-1].id,
                steering_policy="off",  # "off" = failover in default_pools order: primary first
                proxied=True,
                opts=protected(parent),
            )
        ]

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
        return cloudflare.DnsRecord(
            name,
            zone_id=zone.zone_id,
            name=record_name,
            type="TXT",
            content=f'"{content}"',
            ttl=ttl,
            proxied=False,
            comment=comment,
            opts=protected(parent),
        )

    # -- Cloudflare-only parts of a site (infra/components/site_pair.py) ---------------------------

    def client_records(
        self,
        name: str,
        parent: pulumi.Resource,
        zone_id: str,
        domain: str,
        failover_hostname: pulumi.Input[str],
        redirector_address: pulumi.Input[str],
        proxied: bool,
        ttl: int,
    ) -> None:
        """A client zone kept in the agency's account: www -> failover name, apex -> redirector."""
        cloudflare.DnsRecord(
            f"{name}-{domain}-www",
            zone_id=zone_id,
            name=f"www.{domain}",
            type="CNAME",
            content=failover_hostname,
            proxied=proxied,
            ttl=CLOUDFLARE_AUTOMATIC_TTL if proxied else ttl,
            comment="twinhost: www follows the failover name",
            opts=protected(parent),
        )
        cloudflare.DnsRecord(
            f"{name}-{domain}-apex",
            zone_id=zone_id,
            name=domain,
            type="A",
            content=redirector_address,
            proxied=False,  # the redirector terminates TLS for the apex itself (ACME)
            ttl=APEX_TTL,
            comment="twinhost: apex -> redirector -> https://www",
            opts=protected(parent),
        )

    def origin_tls(
        self, name: str, site: str, hostnames: list[pulumi.Input[str]], opts: pulumi.ResourceOptions
    ) -> OriginTls:
        """A Cloudflare Origin CA certificate for a proxied site (infra/components/origin_tls.py)."""
        return OriginTls(name, OriginTlsArgs(site, hostnames), opts=opts)
