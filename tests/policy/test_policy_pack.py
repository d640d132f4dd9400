"""The pack as a whole: every stack the program ships passes every rule, and the pack serves
each rule with the intended enforcement. (PolicyPack itself is never constructed here: it starts
the analyzer server and blocks.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from tests.policy.policy_harness import PROJECT_DIR, Plans, resource_args, stack_args, violations
from twinhost_policy import rules
from twinhost_policy.policies import PACK_NAME, POLICIES

SHIPPED = sorted(
    p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in PROJECT_DIR.glob("Pulumi.*.yaml")
)


def _all_violations(plan) -> list[str]:
    found = []
    for policy in POLICIES:
        if isinstance(policy, ResourceValidationPolicy):
            for resource in plan.resources:
                found += [
                    f"{policy.name} {resource.name}: {m}"
                    for m in violations(policy.validate, resource_args(resource))
                ]
        else:
            found += [f"{policy.name}: {m}" for m in violations(policy.validate, stack_args(plan.resources))]
    return found


@pytest.mark.parametrize("stack", SHIPPED)
def test_every_shipped_stack_passes_every_policy(plans: Plans, stack: str) -> None:
    assert _all_violations(plans.shipped(stack)) == []


@pytest.mark.parametrize("variant", ["proxied", "cloudflarelb", "route53", "manualboth"])
def test_every_failover_mode_passes_every_policy(plans: Plans, variant: str) -> None:
    assert _all_violations(plans.variant(variant)) == []


@pytest.mark.parametrize("flags", [{"primary": "linode", "failover_mode": "manual"}])
def test_a_stack_made_by_new_site_passes_every_policy(plans: Plans, flags: dict) -> None:
    from infra.scaffold import SiteRequest, build_scaffold, write_scaffold

    name = "newsite" + str(len(flags))
    scaffold = build_scaffold(
        plans.scratch, SiteRequest(name=name, domains=[f"{name}.example"], copy_from="prod", **flags)
    )
    write_scaffold(scaffold)
    assert _all_violations(plans.file(scaffold.path)) == []


def test_every_rule_is_served_and_all_but_the_override_notice_are_mandatory() -> None:
    served = {policy.name: policy for policy in POLICIES}
    assert len(served) == len(POLICIES), "policy names must be unique"
    validators = {getattr(rules, name) for name in dir(rules) if name.startswith("validate_")}
    # ResourceValidationPolicy keeps its callback in a private attribute: compare behaviourally
    # by counting, and by kind.
    assert len(POLICIES) == len(validators)
    advisory = {name for name, p in served.items() if p.enforcement_level == EnforcementLevel.ADVISORY}
    assert advisory == {"ssh-from-anywhere-override-in-use"}
    assert all(
        p.enforcement_level in (EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY) for p in POLICIES
    )
    stack_policies = {p.name for p in POLICIES if isinstance(p, StackValidationPolicy)}
    assert stack_policies == {"origin-ca-only-on-proxied-names", "site-on-both-providers"}


def test_pack_runs_in_the_projects_virtualenv_with_pinned_pulumi_policy() -> None:
    pack_dir = PROJECT_DIR / "policy"
    manifest = yaml.safe_load((pack_dir / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    venv = (pack_dir / manifest["runtime"]["options"]["virtualenv"]).resolve()
    assert venv == (PROJECT_DIR / ".venv").resolve()
    assert any(
        line.startswith("pulumi_policy==")
        for line in (PROJECT_DIR / "requirements.lock").read_text().splitlines()
    )
    main = (pack_dir / "__main__.py").read_text()
    assert "name=PACK_NAME" in main and PACK_NAME == "twinhost"
    assert Path(pack_dir / "twinhost_policy" / "rules.py").exists()
