"""The failover name `<site>.<ops zone>`: the one name clients CNAME `www` to.

Four modes (README "Failover modes"):
- manual: A record(s) for the node(s) named by `failover.active`; `pulumi up` switches.
- watchdog: one A record created here whose *content* the platform's watcher moves through the
  DNS API. The stack must not fight the watcher, so `content`/`records` are in ignore_changes:
  `pulumi up` creates the record and never puts a moved address back.
- route53: Route 53 failover routing: a PRIMARY and a SECONDARY record, each tied to a Route 53
  HTTPS health check on /health. No code of ours is on the failover path.
- cloudflare-lb: a Cloudflare load balancer named like the record, a pool per node (primary
  first) and a monitor on /health.

Every record is protected: deleting the name every client CNAMEs to takes their sites offline.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_cloudflare as cloudflare

from infra.config import FailoverMode, Provider

HEALTH_PATH = "/health"
# Cloudflare DNS: ttl=1 means "automatic", the only TTL a proxied record can have.
CLOUDFLARE_AUTOMATIC_TTL = 1
# Seconds a Cloudflare monitor waits for /health before counting a failure.
MONITOR_TIMEOUT_S = 5


@dataclass
class OpsZone:
    """The agency's ops zone, as published by the platform stack."""

    provider: str  # "cloudflare" or "route53"
    zone_id: pulumi.Input[str]
    name: pulumi.Input[str]


@dataclass
class FailoverDnsArgs:
    site: str
    mode: FailoverMode
    zone: OpsZone
    addresses: dict[Provider, pulumi.Input[str]]
    primary: Provider
    active: str | None  # manual mode: digitalocean, linode or both
    ttl: int | None  # None: proxied (automatic)
    proxied: bool
    check_interval: int
    failures: int
    recoveries: int
    cloudflare_account_id: str | None = None


class FailoverDns(pulumi.ComponentResource):
    """Outputs: `hostname` (the failover FQDN), `record_count`."""

    hostname: pulumi.Output[str]

    def __init__(self, name: str, args: FailoverDnsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("twinhost:site:FailoverDns", name, None, opts)
        self._args = args
        self._name = name
        self.hostname = pulumi.Output.concat(args.site, ".", args.zone.name)
        self.records: list[pulumi.CustomResource] = []
        secondary: Provider = "linode" if args.primary == "digitalocean" else "digitalocean"
        self._order: list[Provider] = [args.primary, secondary]

        if args.mode == "manual":
            self._create_static_records(self._manual_targets())
        elif args.mode == "watchdog":
            self._create_static_records([args.primary], watched=True)
        elif args.mode == "route53":
            self._create_route53_failover()
        else:
            self._create_cloudflare_load_balancer()
        self.register_outputs({"hostname": self.hostname, "record_count": len(self.records)})

    # -- steps ---------------------------------------------------------------------------------

    def _manual_targets(self) -> list[Provider]:
        active = self._args.active
        if active == "both":
            return list(self._order)
        return [provider for provider in self._order if provider == (active or self._order[0])]

    def _protected(self, watched: bool = False, fields: tuple[str, ...] = ()) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=self,
            protect=True,
            # The watcher owns the address once the record exists (see module docstring).
            ignore_changes=list(fields) if watched else None,
        )

    def _create_static_records(self, targets: list[Provider], watched: bool = False) -> None:
        args = self._args
        if args.zone.provider == "cloudflare":
            for provider in targets:
                self.records.append(cloudflare.DnsRecord(
                    f"{self._name}-{provider}",
                    zone_id=args.zone.zone_id,
                    name=self.hostname,
                    type="A",
                    content=args.addresses[provider],
                    proxied=args.proxied,
                    ttl=CLOUDFLARE_AUTOMATIC_TTL if args.proxied else args.ttl,
                    comment=f"twinhost {args.site}: failover name ({args.mode})",
                    opts=self._protected(watched, ("content",)),
                ))
        else:
            self.records.append(aws.route53.Record(
                f"{self._name}-a",
                zone_id=args.zone.zone_id,
                name=self.hostname,
                type="A",
                ttl=args.ttl,
                records=[args.addresses[p] for p in targets],
                opts=self._protected(watched, ("records",)),
            ))

    def _create_route53_failover(self) -> None:
        args = self._args
        for role, provider in zip(("PRIMARY", "SECONDARY"), self._order):
            check = aws.route53.HealthCheck(
                f"{self._name}-{provider}-check",
                type="HTTPS",  # Route 53 HTTPS checks negotiate TLS 1.2 (and 1.3) with SNI
                ip_address=args.addresses[provider],
                port=443,
                resource_path=HEALTH_PATH,
                fqdn=self.hostname,  # sent as Host header and SNI name
                enable_sni=True,
                request_interval=args.check_interval,
                failure_threshold=args.failures,
                tags={"Name": f"twinhost-{args.site}-{provider}", "site": args.site},
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.records.append(aws.route53.Record(
                f"{self._name}-{provider}",
                zone_id=args.zone.zone_id,
                name=self.hostname,
                type="A",
                ttl=args.ttl,
                records=[args.addresses[provider]],
                set_identifier=f"{args.site}-{provider}",
                failover_routing_policies=[aws.route53.RecordFailoverRoutingPolicyArgs(type=role)],
                health_check_id=check.id,
                opts=self._protected(),
            ))

    def _create_cloudflare_load_balancer(self) -> None:
        args = self._args
        account_id = args.cloudflare_account_id
        assert account_id is not None, "config validation requires accountId for cloudflare-lb"
        monitor = cloudflare.LoadBalancerMonitor(
            f"{self._name}-monitor",
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
            header={"Host": [self.hostname]},
            description=f"twinhost {args.site} /health",
            opts=pulumi.ResourceOptions(parent=self),
        )
        pools = []
        for provider in self._order:
            pools.append(cloudflare.LoadBalancerPool(
                f"{self._name}-{provider}-pool",
                account_id=account_id,
                name=f"{args.site}-{provider}",
                origins=[cloudflare.LoadBalancerPoolOriginArgs(
                    name=provider, address=args.addresses[provider], enabled=True,
                    header=cloudflare.LoadBalancerPoolOriginHeaderArgs(hosts=[self.hostname]),
                )],
                monitor=monitor.id,
                minimum_origins=1,
                opts=pulumi.ResourceOptions(parent=self),
            ))
        self.records.append(cloudflare.LoadBalancer(
            f"{self._name}-lb",
            zone_id=args.zone.zone_id,
            name=self.hostname,
            default_pools=[pool.id for pool in pools],
            fallback_pool=pools[-1].id,
            steering_policy="off",  # "off" = failover in default_pools order: primary first
            proxied=True,
            opts=self._protected(),
        ))
