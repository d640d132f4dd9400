"""Where a site's DNS records go, without importing a DNS provider's SDK until a stack asks for it.

The ops zone is on Cloudflare or on Route 53 (`twinhost:opsDns`); proxied sites also use the
agency's Cloudflare account for client records and origin certificates. The components that
write there (`FailoverDns`, `ApexRegistration`, `SitePair`) are provider-neutral: they get a
`DnsProvider` from `dns_provider(name)` (or the Cloudflare one from `cloudflare()`), whose
modules hold the SDK calls:

- `infra/components/cloudflare_dns.py` (`pulumi_cloudflare`),
- `infra/components/route53_dns.py` (`pulumi_aws`).

Why the indirection: importing `pulumi_cloudflare` alone costs about 4 s, more than everything
else in a site's plan, and a Route 53 site never uses it. So those two modules are imported
below, on demand, and nowhere else: this is the one place the program defers an import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import pulumi

from infra.config import FailoverMode, Provider

if TYPE_CHECKING:  # for annotations only; imported on demand below
    from infra.components.cloudflare_dns import CloudflareDns
    from infra.components.route53_dns import Route53Dns

DnsProviderName = Literal["cloudflare", "route53"]

HEALTH_PATH = "/health"


@dataclass
class OpsZone:
    """The agency's ops zone, as published by the platform stack."""

    provider: DnsProviderName
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


def protected(parent: pulumi.Resource, ignore_changes: Sequence[str] = ()) -> pulumi.ResourceOptions:
    """Options of a record clients depend on: protected; `ignore_changes` names the fields
    another writer owns (the watcher moves a watchdog record's address)."""
    return pulumi.ResourceOptions(parent=parent, protect=True, ignore_changes=list(ignore_changes) or None)


class DnsProvider(Protocol):
    """The records twinhost writes into the ops zone, on one DNS provider."""

    def address_records(
        self,
        name: str,
        parent: pulumi.Resource,
        args: FailoverDnsArgs,
        hostname: pulumi.Output[str],
        targets: Sequence[Provider],
        watched: bool,
    ) -> list[pulumi.CustomResource]:
        """The failover name as plain A record(s) for `targets` (modes manual and watchdog);
        `watched`: the watcher owns the address once the record exists."""
        ...

    def provider_failover(
        self,
        name: str,
        parent: pulumi.Resource,
        args: FailoverDnsArgs,
        hostname: pulumi.Output[str],
        order: Sequence[Provider],
    ) -> list[pulumi.CustomResource]:
        """The provider's own failover, primary first (Route 53 failover routing, mode route53;
        Cloudflare Load Balancing, mode cloudflare-lb)."""
        ...

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
        """One TXT record in the ops zone (an apex registration)."""
        ...


# -- the on-demand imports (see the module docstring) --------------------------------------------


def cloudflare() -> CloudflareDns:
    """The agency's Cloudflare account: imports `pulumi_cloudflare`."""
    from infra.components.cloudflare_dns import CloudflareDns

    return CloudflareDns()


def route53() -> Route53Dns:
    """Route 53: imports `pulumi_aws`."""
    from infra.components.route53_dns import Route53Dns

    return Route53Dns()


_PROVIDERS: Mapping[DnsProviderName, Callable[[], DnsProvider]] = {
    "cloudflare": cloudflare,
    "route53": route53,
}


def dns_provider(name: DnsProviderName) -> DnsProvider:
    """The ops zone's DNS provider by its config name (`twinhost:opsDns`)."""
    return _PROVIDERS[name]()
