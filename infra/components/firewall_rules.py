"""The inbound rules a site node needs, computed once and rendered for each provider.

Both providers' firewalls and the node's own ufw must agree, so the rules are computed here as
plain data from the config and the peer's addresses, and each provider component only translates
them. The provider limits are checked here too, before any resource exists.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from infra.bootstrap.spec import TINC_PORT

WORLD = ("0.0.0.0/0", "::/0")
# DigitalOcean: "A firewall can have up to 50 rules" (inbound and outbound together).
DIGITALOCEAN_MAX_RULES = 50
# Linode Cloud Firewall: 25 rules in total, each with at most 255 addresses.
LINODE_MAX_RULES = 25
LINODE_MAX_ADDRESSES_PER_RULE = 255

Protocol = Literal["tcp", "udp", "icmp"]


@dataclass(frozen=True)
class InboundRule:
    """Allow `protocol` on `ports` (None: all, as for ICMP) from `sources`."""

    label: str
    protocol: Protocol
    ports: str | None
    sources: tuple[str, ...]

    @property
    def ipv4_sources(self) -> list[str]:
        return [s for s in self.sources if ipaddress.ip_network(s).version == 4]

    @property
    def ipv6_sources(self) -> list[str]:
        return [s for s in self.sources if ipaddress.ip_network(s).version == 6]


class FirewallLimitError(ValueError):
    """The computed rules do not fit a provider's limits."""


def node_inbound_rules(
    admin_cidrs: Sequence[str],
    http_sources: Sequence[str],
    peer_addresses: Sequence[str],
    witness_addresses: Sequence[str] = (),
) -> list[InboundRule]:
    """The inbound rules for one node of a pair.

    admin_cidrs: who may SSH in. http_sources: who may reach 80/443 (empty: the world; a proxied
    site passes Cloudflare's ranges). peer_addresses: the other node's public addresses;
    witness_addresses: the platform witness's (the redirector's Elastic IP): the only sources
    allowed on the tinc port.
    """
    web = tuple(http_sources) or WORLD
    peers = tuple(_host_network(a) for a in [*peer_addresses, *witness_addresses])
    return [
        InboundRule("ssh-admin", "tcp", "22", tuple(admin_cidrs)),
        InboundRule("http", "tcp", "80", web),
        InboundRule("https", "tcp", "443", web),
        InboundRule("tinc-tcp-peer", "tcp", str(TINC_PORT), peers),
        InboundRule("tinc-udp-peer", "udp", str(TINC_PORT), peers),
        # Path MTU discovery and reachability checks need ICMP; it is cheap to allow.
        InboundRule("icmp", "icmp", None, WORLD),
    ]


def check_limits(rules: Sequence[InboundRule], outbound_rule_count: int) -> None:
    """Raise FirewallLimitError when the rules would be refused by either provider's API."""
    problems = []
    do_rules = len(rules) + outbound_rule_count
    if do_rules > DIGITALOCEAN_MAX_RULES:
        problems.append(
            f"DigitalOcean allows {DIGITALOCEAN_MAX_RULES} rules per firewall, this needs {do_rules}"
        )
    linode_rules = len(linode_rule_groups(rules))
    if linode_rules > LINODE_MAX_RULES:
        problems.append(f"Linode allows {LINODE_MAX_RULES} rules in total, this needs {linode_rules}")
    for rule in rules:
        if len(rule.sources) > LINODE_MAX_ADDRESSES_PER_RULE:
            problems.append(
                f"rule {rule.label!r} has {len(rule.sources)} sources; Linode allows "
                f"{LINODE_MAX_ADDRESSES_PER_RULE} per rule"
            )
    if problems:
        raise FirewallLimitError("; ".join(problems))


def linode_rule_groups(rules: Sequence[InboundRule]) -> list[InboundRule]:
    """Linode rules take a comma-separated port list, so rules with the same protocol and
    sources merge into one (80 and 443 become "80,443")."""
    merged: dict[tuple[str, tuple[str, ...]], InboundRule] = {}
    for rule in rules:
        key = (rule.protocol, rule.sources)
        if key in merged and rule.ports and merged[key].ports:
            previous = merged[key]
            merged[key] = InboundRule(
                f"{previous.label}-{rule.label}"[:32],
                rule.protocol,
                f"{previous.ports},{rule.ports}",
                rule.sources,
            )
        else:
            merged[key] = rule
    return list(merged.values())


def allows_ssh_from_anywhere(rules: Sequence[InboundRule]) -> bool:
    return any(
        rule.protocol == "tcp"
        and rule.ports == "22"
        and any(ipaddress.ip_network(s).prefixlen == 0 for s in rule.sources)
        for rule in rules
    )


def _host_network(address: str) -> str:
    network = ipaddress.ip_network(address, strict=False)
    return str(network)
