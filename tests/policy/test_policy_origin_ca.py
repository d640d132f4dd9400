"""Rule (stack): Cloudflare Origin CA certificates only on names this stack proxies."""

from __future__ import annotations

import pytest

from tests.policy.policy_harness import Plans, stack_args, violations
from twinhost_policy.rules import ORIGIN_CA_CERTIFICATE, validate_origin_ca_only_on_proxied_names


@pytest.mark.parametrize("variant", ["proxied", "cloudflarelb"])
def test_origin_certificate_covers_only_proxied_names(plans: Plans, variant: str) -> None:
    plan = plans.variant(variant)
    assert plan.one(ORIGIN_CA_CERTIFICATE)  # proxied sites get one
    assert violations(validate_origin_ca_only_on_proxied_names, stack_args(plan.resources)) == []


def test_dns_only_site_has_no_origin_certificate(plans: Plans) -> None:
    plan = plans.shipped("harbourlaw")
    assert not [r for r in plan.resources if r.type == ORIGIN_CA_CERTIFICATE]
    assert violations(validate_origin_ca_only_on_proxied_names, stack_args(plan.resources)) == []


def test_origin_certificate_on_a_dns_only_name_is_refused(plans: Plans) -> None:
    # The program's own proxied site with its www record turned DNS-only.
    plan = plans.variant("proxied")
    www = next(r for r in plan.resources if r.inputs.get("name") == "www.harbour-law.co.uk")
    args = stack_args(plan.resources, edits={www.name: lambda i: i.update(proxied=False)})
    found = violations(validate_origin_ca_only_on_proxied_names, args)
    assert len(found) == 1 and "'www.harbour-law.co.uk'" in found[0]


def test_origin_certificate_for_a_name_the_stack_does_not_serve_is_refused(plans: Plans) -> None:
    plan = plans.variant("proxied")
    certificate = plan.one(ORIGIN_CA_CERTIFICATE)
    args = stack_args(
        plan.resources,
        edits={
            certificate.name: lambda i: i.update(hostnames=[*i["hostnames"], "shop.harbour-law.co.uk"]),
        },
    )
    found = violations(validate_origin_ca_only_on_proxied_names, args)
    assert len(found) == 1 and "shop.harbour-law.co.uk" in found[0]
