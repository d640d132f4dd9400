"""Rule: firewall rule counts under provider limits (DigitalOcean 50 per firewall, in + out;
Linode 25 in total and 255 addresses per rule). Limits come from infra.components.firewall_rules."""

from __future__ import annotations

import pytest

from infra.components.firewall_rules import (
    DIGITALOCEAN_MAX_RULES,
    LINODE_MAX_ADDRESSES_PER_RULE,
    LINODE_MAX_RULES,
)
from tests.policy.policy_harness import Plans, resource_args, violations
from twinhost_policy.rules import DIGITALOCEAN_FIREWALL, LINODE_FIREWALL, validate_firewall_rule_count


@pytest.mark.parametrize("variant", ["harbourlaw", "proxied", "cloudflarelb"])
@pytest.mark.parametrize("firewall", [DIGITALOCEAN_FIREWALL, LINODE_FIREWALL])
def test_program_firewalls_fit_provider_limits(plans: Plans, variant: str, firewall: str) -> None:
    # "proxied" sites carry Cloudflare's ~22 ranges on 80/443: the largest rule sets the program makes.
    plan = plans.shipped(variant) if variant == "harbourlaw" else plans.variant(variant)
    assert violations(validate_firewall_rule_count, resource_args(plan.one(firewall))) == []


def _pad(key: str, rule: dict, total: int, keep: tuple[str, ...] = ()) -> object:
    def edit(inputs: dict) -> None:
        others = sum(len(inputs.get(k) or []) for k in keep)
        existing = inputs.get(key) or []
        inputs[key] = existing + [dict(rule) for _ in range(total - others - len(existing))]

    return edit


def test_digitalocean_firewall_over_50_rules_is_refused(plans: Plans) -> None:
    firewall = plans.shipped("harbourlaw").one(DIGITALOCEAN_FIREWALL)
    extra = {"protocol": "tcp", "portRange": "8443", "sourceAddresses": ["203.0.113.0/28"]}
    at_limit = resource_args(
        firewall, edit=_pad("inboundRules", extra, DIGITALOCEAN_MAX_RULES, ("outboundRules",))
    )
    over = resource_args(
        firewall, edit=_pad("inboundRules", extra, DIGITALOCEAN_MAX_RULES + 1, ("outboundRules",))
    )
    assert violations(validate_firewall_rule_count, at_limit) == []
    found = violations(validate_firewall_rule_count, over)
    assert len(found) == 1 and f"{DIGITALOCEAN_MAX_RULES + 1} rules" in found[0]


def test_linode_firewall_over_25_rules_is_refused(plans: Plans) -> None:
    firewall = plans.shipped("harbourlaw").one(LINODE_FIREWALL)
    extra = {
        "label": "extra",
        "action": "ACCEPT",
        "protocol": "TCP",
        "ports": "8443",
        "ipv4s": ["203.0.113.0/28"],
    }
    assert (
        violations(
            validate_firewall_rule_count,
            resource_args(firewall, edit=_pad("inbounds", extra, LINODE_MAX_RULES)),
        )
        == []
    )
    found = violations(
        validate_firewall_rule_count,
        resource_args(firewall, edit=_pad("inbounds", extra, LINODE_MAX_RULES + 1)),
    )
    assert len(found) == 1 and "Linode allows 25" in found[0]


def test_linode_outbound_rules_count_toward_the_25(plans: Plans) -> None:
    firewall = plans.shipped("harbourlaw").one(LINODE_FIREWALL)
    out = {"label": "out", "action": "ACCEPT", "protocol": "TCP", "ports": "443", "ipv4s": ["0.0.0.0/0"]}
    args = resource_args(firewall, edit=_pad("outbounds", out, LINODE_MAX_RULES + 1, ("inbounds",)))
    assert violations(validate_firewall_rule_count, args)


def test_linode_rule_with_more_than_255_addresses_is_refused(plans: Plans) -> None:
    firewall = plans.shipped("harbourlaw").one(LINODE_FIREWALL)

    def widen(inputs: dict) -> None:
        inputs["inbounds"][0]["ipv4s"] = [
            f"10.0.{i // 256}.{i % 256}/32" for i in range(LINODE_MAX_ADDRESSES_PER_RULE + 1)
        ]
        inputs["inbounds"][0]["ipv6s"] = []

    found = violations(validate_firewall_rule_count, resource_args(firewall, edit=widen))
    assert len(found) == 1 and "256 addresses" in found[0]
