"""Tell the platform's redirector which apex domains belong to this site.

The redirector obtains a certificate for an apex on demand, and must refuse names that are not
our clients' (anyone can point a domain at the Elastic IP). It asks DNS: a TXT record
`<apex>._apex.<ops zone>` exists only for registered client apexes, and only site stacks create
them. So `pulumi up` of a site is the whole registration; nothing is done on the redirector.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.components.dns_providers import OpsZone, dns_provider
from infra.redirector.registry import REGISTRY_LABEL, apex_record_content

REGISTRATION_TTL = 300


def registration_name(apex: str, ops_zone: pulumi.Input[str]) -> pulumi.Output[str]:
    """`<apex>._apex.<ops zone>`: the registry's label (infra/redirector/registry.py, the one
    definition the redirector reads too) under the ops zone, which is known only as an Output."""
    return pulumi.Output.concat(apex, f".{REGISTRY_LABEL}.", ops_zone)


@dataclass
class ApexRegistrationArgs:
    site: str
    apexes: list[str]
    zone: OpsZone


class ApexRegistration(pulumi.ComponentResource):
    """One protected TXT record per client apex in the ops zone. Output: `names`."""

    def __init__(self, name: str, args: ApexRegistrationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("twinhost:site:ApexRegistration", name, None, opts)
        content = apex_record_content(args.site)
        dns = dns_provider(args.zone.provider)
        names = []
        for apex in args.apexes:
            record_name = registration_name(apex, args.zone.name)
            names.append(record_name)
            dns.registration_record(
                f"{name}-{apex}",
                self,
                args.zone,
                record_name,
                content,
                REGISTRATION_TTL,
                comment=f"twinhost {args.site}: redirector may issue a certificate for {apex}",
            )
        self.names = pulumi.Output.all(*names)
        self.register_outputs({"names": self.names})
