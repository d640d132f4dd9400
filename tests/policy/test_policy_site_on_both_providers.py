"""Rule (stack): every site stack has a DigitalOcean droplet and a Linode instance."""

from __future__ import annotations

import pytest

from tests.policy.policy_harness import Plans, stack_args, violations
from twinhost_policy.rules import DROPLET, LINODE_INSTANCE, validate_site_has_both_providers


@pytest.mark.parametrize("variant", ["proxied", "cloudflarelb", "route53", "manualboth"])
def test_every_site_mode_runs_on_both_providers(plans: Plans, variant: str) -> None:
    plan = plans.variant(variant)
    assert violations(validate_site_has_both_providers, stack_args(plan.resources)) == []


def test_example_site_runs_on_both_providers(plans: Plans) -> None:
    plan = plans.shipped("harbourlaw")
    assert violations(validate_site_has_both_providers, stack_args(plan.resources)) == []


@pytest.mark.parametrize(
    "dropped, expected", [(LINODE_INSTANCE, "no Linode instance"), (DROPLET, "no DigitalOcean droplet")]
)
def test_site_missing_a_provider_is_refused(plans: Plans, dropped: str, expected: str) -> None:
    plan = plans.shipped("harbourlaw")
    kept = [r for r in plan.resources if r.type != dropped]
    found = violations(validate_site_has_both_providers, stack_args(kept))
    assert len(found) == 1 and expected in found[0]


def test_site_is_recognised_by_its_components_even_without_config(plans: Plans) -> None:
    plan = plans.shipped("harbourlaw")
    plan.install_config(drop=("twinhost:role",))
    kept = [r for r in plan.resources if r.type != LINODE_INSTANCE]
    assert violations(validate_site_has_both_providers, stack_args(kept))


def test_platform_stack_is_not_a_site(plans: Plans) -> None:
    plan = plans.shipped("prod")
    assert violations(validate_site_has_both_providers, stack_args(plan.resources)) == []
