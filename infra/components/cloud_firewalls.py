"""The providers' firewalls for the two nodes of a pair, from one computed rule list.

Rules are built with the SDKs' `*Args` classes, never dict literals: a misspelled key in a dict is
silently dropped by the SDK, a misspelled keyword argument is a TypeError.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_digitalocean as digitalocean
import pulumi_linode as linode

from infra.components.firewall_rules import WORLD, InboundRule, linode_rule_groups

# DigitalOcean firewalls with no outbound rules block ALL outbound traffic (apt, ACME, tinc to
# the peer would all fail), so outbound is opened explicitly.
DIGITALOCEAN_OUTBOUND = [
    digitalocean.FirewallOutboundRuleArgs(
        protocol="tcp", port_range="1-65535", destination_addresses=list(WORLD)
    ),
    digitalocean.FirewallOutboundRuleArgs(
        protocol="udp", port_range="1-65535", destination_addresses=list(WORLD)
    ),
    digitalocean.FirewallOutboundRuleArgs(protocol="icmp", destination_addresses=list(WORLD)),
]


@dataclass
class DigitalOceanFirewallArgs:
    site: str
    droplet_id: pulumi.Input[int]
    rules: pulumi.Output[list[InboundRule]]


class DigitalOceanFirewall(pulumi.ComponentResource):
    """A DigitalOcean cloud firewall attached to node A. Output: `firewall_id`."""

    def __init__(self, name: str, args: DigitalOceanFirewallArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("twinhost:site:DigitalOceanFirewall", name, None, opts)
        self.firewall = digitalocean.Firewall(
            f"{name}-firewall",
            name=f"{args.site}-do",
            droplet_ids=[args.droplet_id],
            inbound_rules=args.rules.apply(lambda rules: [_digitalocean_rule(rule) for rule in rules]),
            outbound_rules=DIGITALOCEAN_OUTBOUND,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.firewall_id = self.firewall.id
        self.register_outputs({"firewall_id": self.firewall_id})


def _digitalocean_rule(rule: InboundRule) -> digitalocean.FirewallInboundRuleArgs:
    return digitalocean.FirewallInboundRuleArgs(
        protocol=rule.protocol,
        port_range=rule.ports,
        source_addresses=list(rule.sources),
    )


@dataclass
class LinodeFirewallArgs:
    site: str
    instance_id: pulumi.Input[int]
    rules: pulumi.Output[list[InboundRule]]


class LinodeFirewall(pulumi.ComponentResource):
    """A Linode Cloud Firewall attached to node B: inbound default DROP, outbound ACCEPT."""

    def __init__(self, name: str, args: LinodeFirewallArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("twinhost:site:LinodeFirewall", name, None, opts)
        inbounds = args.rules.apply(lambda rules: [_linode_rule(rule) for rule in linode_rule_groups(rules)])
        self.firewall = linode.Firewall(
            f"{name}-firewall",
            label=f"{args.site}-linode"[:32],
            inbound_policy="DROP",
            outbound_policy="ACCEPT",
            inbounds=inbounds,
            linodes=[args.instance_id],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.firewall_id = self.firewall.id
        self.register_outputs({"firewall_id": self.firewall_id})


def _linode_rule(rule: InboundRule) -> linode.FirewallInboundArgs:
    return linode.FirewallInboundArgs(
        label=rule.label[:32],
        action="ACCEPT",
        protocol=rule.protocol.upper(),
        ports=rule.ports,
        ipv4s=rule.ipv4_sources or None,
        ipv6s=rule.ipv6_sources or None,
    )
