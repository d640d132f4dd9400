"""DNS backends: one small interface, one module per provider.

A backend manages the A record set of one name: `get()` returns the addresses the provider holds
now, `set(addresses, ttl)` makes the provider hold exactly those. Each provider's client library is
imported only when a site uses it, so the redirector installs only the libraries its sites need.
"""

from __future__ import annotations

from typing import Protocol

from twinhost_watcher.config import CloudflareDns, Route53Dns, Site, WatcherConfig, read_secret


class DnsError(Exception):
    """A provider call failed. The message is safe to log: it never carries a credential."""


class RateLimitedError(DnsError):
    """The provider asked us to slow down; try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class DnsBackend(Protocol):
    name: str

    def get(self) -> list[str]:
        """The A record's addresses as the provider holds them now (empty if there is none)."""

    def set(self, addresses: list[str], ttl: int) -> None:
        """Make the A record hold exactly `addresses` (never called with an empty list)."""


def backend_for(site: Site, config: WatcherConfig, timeout: float) -> DnsBackend:
    """The backend of a site, with its secrets read. Raises SecretError naming a missing secret."""
    dns = site.dns
    index = config.sites.index(site)
    if isinstance(dns, CloudflareDns):
        from twinhost_watcher.backends.cloudflare import CloudflareBackend

        token = read_secret(config, f"sites[{index}].dns.tokenSecret", dns.token_secret)
        return CloudflareBackend(site.record, dns.zone_id, token, proxied=dns.proxied, timeout=timeout)
    if isinstance(dns, Route53Dns):
        from twinhost_watcher.backends.route53 import Route53Backend

        return Route53Backend(
            site.record, dns.hosted_zone_id, region=dns.region, endpoint_url=dns.endpoint_url, timeout=timeout
        )
    from twinhost_watcher.backends.rfc2136 import Rfc2136Backend

    secret = read_secret(config, f"sites[{index}].dns.tsigSecret", dns.tsig_secret)
    return Rfc2136Backend(
        site.record,
        site.zone,
        dns.server,
        dns.port,
        key_name=dns.tsig_key_name,
        algorithm=dns.tsig_algorithm,
        secret=secret,
        timeout=timeout,
    )
