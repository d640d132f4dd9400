"""Rule: the Elastic IP, reserved IPs and DNS records (and load balancers) carry `protect`."""

from __future__ import annotations

import pytest

from tests.policy.policy_harness import Plans, resource_args, violations
from twinhost_policy.rules import (
    CLOUDFLARE_DNS_RECORD,
    CLOUDFLARE_LOAD_BALANCER,
    ELASTIC_IP,
    PROTECTED_TYPES,
    RESERVED_IP,
    ROUTE53_RECORD,
    validate_protected,
)

# (stack, shipped or variant, resource type): every kind the program makes, in the stack that makes it.
CASES = [
    ("prod", "shipped", ELASTIC_IP),
    ("harbourlaw", "shipped", RESERVED_IP),
    ("harbourlaw", "shipped", CLOUDFLARE_DNS_RECORD),
    ("route53", "variant", ROUTE53_RECORD),
    ("cloudflarelb", "variant", CLOUDFLARE_LOAD_BALANCER),
    ("proxied", "variant", CLOUDFLARE_DNS_RECORD),
]


def _plan(plans: Plans, stack: str, kind: str):
    return plans.shipped(stack) if kind == "shipped" else plans.variant(stack)


@pytest.mark.parametrize("stack, kind, resource_type", CASES)
def test_program_protects_every_address_and_record(
    plans: Plans, stack: str, kind: str, resource_type: str
) -> None:
    for resource in _plan(plans, stack, kind).of_type(resource_type):
        assert violations(validate_protected, resource_args(resource)) == [], resource.name


@pytest.mark.parametrize("stack, kind, resource_type", CASES)
def test_unprotected_address_or_record_is_refused(
    plans: Plans, stack: str, kind: str, resource_type: str
) -> None:
    resource = _plan(plans, stack, kind).first(resource_type)
    found = violations(validate_protected, resource_args(resource, protect=False))
    assert len(found) == 1 and "not protected" in found[0] and resource.name in found[0]


def test_every_protected_type_the_program_declares_is_protected(plans: Plans) -> None:
    stacks = [
        plans.shipped("prod"),
        plans.shipped("harbourlaw"),
        plans.variant("cloudflarelb"),
        plans.variant("route53"),
        plans.variant("manualboth"),
    ]
    seen = {r.type for plan in stacks for r in plan.resources if r.type in PROTECTED_TYPES}
    assert seen == {ELASTIC_IP, RESERVED_IP, CLOUDFLARE_DNS_RECORD, ROUTE53_RECORD, CLOUDFLARE_LOAD_BALANCER}
    for plan in stacks:
        for resource in plan.resources:
            assert violations(validate_protected, resource_args(resource)) == [], resource.name
