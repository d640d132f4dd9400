"""Rule: DNS-only records have a TTL of 60..300 s (client apex records excepted); proxied records
use the automatic TTL."""

from __future__ import annotations

import pytest
from tests.policy.policy_harness import Plans, resource_args, violations
from twinhost_policy.rules import (
    CLOUDFLARE_DNS_RECORD,
    CLOUDFLARE_LOAD_BALANCER,
    ROUTE53_RECORD,
    validate_dns_ttl,
)

RECORD_TYPES = (CLOUDFLARE_DNS_RECORD, ROUTE53_RECORD, CLOUDFLARE_LOAD_BALANCER)


@pytest.mark.parametrize("stack", ["harbourlaw", "proxied", "cloudflarelb", "manualboth", "route53"])
def test_program_records_have_allowed_ttls(plans: Plans, stack: str) -> None:
    plan = plans.shipped(stack) if stack == "harbourlaw" else plans.variant(stack)
    records = [r for r in plan.resources if r.type in RECORD_TYPES]
    assert records
    for record in records:
        assert violations(validate_dns_ttl, resource_args(record)) == [], record.name


def test_failover_record_ttl_over_300_is_refused(plans: Plans) -> None:
    # twinhost:ttl 600 is valid config (60..86400) but too slow for a failover to be seen.
    plan = plans.variant("longttl")
    failover = next(r for r in plan.of_type(CLOUDFLARE_DNS_RECORD) if r.inputs.get("type") == "A")
    found = violations(validate_dns_ttl, resource_args(failover))
    assert len(found) == 1 and "TTL 600" in found[0]


def test_route53_record_ttl_under_60_is_refused(plans: Plans) -> None:
    record = next(r for r in plans.variant("route53").of_type(ROUTE53_RECORD) if r.inputs.get("type") == "A")
    found = violations(validate_dns_ttl, resource_args(record, edit=lambda i: i.update(ttl=30)))
    assert len(found) == 1 and "TTL 30" in found[0]


def test_client_apex_record_may_keep_a_long_ttl(plans: Plans) -> None:
    # manualboth keeps the client's zone in the agency account: the stack writes www and the apex.
    plan = plans.variant("manualboth")
    apex = next(r for r in plan.of_type(CLOUDFLARE_DNS_RECORD) if r.inputs.get("name") == "harbour-law.co.uk")
    assert apex.inputs["ttl"] > 300
    assert violations(validate_dns_ttl, resource_args(apex)) == []
    # ...but a www name with that TTL is refused: it follows the failover.
    www = next(r for r in plan.of_type(CLOUDFLARE_DNS_RECORD) if r.inputs.get("name") == "www.harbour-law.co.uk")
    assert violations(validate_dns_ttl, resource_args(www, edit=lambda i: i.update(ttl=3600)))


def test_proxied_record_with_a_custom_ttl_is_refused(plans: Plans) -> None:
    plan = plans.variant("proxied")
    record = next(r for r in plan.of_type(CLOUDFLARE_DNS_RECORD) if r.inputs.get("proxied"))
    found = violations(validate_dns_ttl, resource_args(record, edit=lambda i: i.update(ttl=120)))
    assert len(found) == 1 and "automatic TTL" in found[0]
