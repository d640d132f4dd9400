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
The records themselves are written by the ops zone's DNS provider module
(`infra/components/dns_providers.py`), so this component imports no provider SDK.
"""

from __future__ import annotations

import pulumi

from infra.components.dns_providers import FailoverDnsArgs, OpsZone, dns_provider
from infra.config import Provider

# Re-exported: the args and the zone are part of this component's interface.
__all__ = ["FailoverDns", "FailoverDnsArgs", "OpsZone"]


class FailoverDns(pulumi.ComponentResource):
    """Outputs: `hostname` (the failover FQDN), `record_count`."""

    hostname: pulumi.Output[str]

    def __init__(self, name: str, args: FailoverDnsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("twinhost:site:FailoverDns", name, None, opts)
        self._args = args
        self.hostname = pulumi.Output.concat(args.site, ".", args.zone.name)
        secondary: Provider = "linode" if args.primary == "digitalocean" else "digitalocean"
        order: list[Provider] = [args.primary, secondary]
        dns = dns_provider(args.zone.provider)

        if args.mode == "manual":
            self.records = dns.address_records(
                name, self, args, self.hostname, self._manual_targets(order), watched=False
            )
        elif args.mode == "watchdog":
            self.records = dns.address_records(name, self, args, self.hostname, [args.primary], watched=True)
        else:
            # route53 / cloudflare-lb: config validation ties each mode to its ops zone provider.
            self.records = dns.provider_failover(name, self, args, self.hostname, order)
        self.register_outputs({"hostname": self.hostname, "record_count": len(self.records)})

    def _manual_targets(self, order: list[Provider]) -> list[Provider]:
        active = self._args.active
        if active == "both":
            return list(order)
        return [provider for provider in order if provider == (active or order[0])]
