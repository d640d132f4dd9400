"""Rule: no SSH from 0.0.0.0/0 or ::/0, unless the stack sets the loud override (then say so)."""

from __future__ import annotations

import pytest
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs
from pulumi_policy.proxy import unknown_checking_proxy

from tests.policy.policy_harness import Plans, resource_args, violations
from twinhost_policy.rules import (
    AWS_INGRESS_RULE,
    AWS_SECURITY_GROUP,
    AWS_SECURITY_GROUP_RULE,
    DIGITALOCEAN_FIREWALL,
    LINODE_FIREWALL,
    SSH_OVERRIDE_KEY,
    validate_no_ssh_from_anywhere,
    validate_ssh_override_in_use,
)

FIREWALLS = (DIGITALOCEAN_FIREWALL, LINODE_FIREWALL)


@pytest.mark.parametrize("firewall", FIREWALLS)
def test_example_site_firewalls_allow_ssh_only_from_admin_networks(plans: Plans, firewall: str) -> None:
    plan = plans.shipped("harbourlaw")
    args = resource_args(plan.one(firewall))
    assert violations(validate_no_ssh_from_anywhere, args) == []
    assert violations(validate_ssh_override_in_use, args) == []


@pytest.mark.parametrize("firewall", FIREWALLS)
def test_ssh_from_anywhere_is_refused_when_the_stack_lacks_the_override(plans: Plans, firewall: str) -> None:
    # The program's own firewall for adminCidrs 0.0.0.0/0 + ::/0, judged with a config that does
    # not carry the override (a program or config bug would look exactly like this).
    plan = plans.variant("sshanywhere")
    plan.install_config(drop=(SSH_OVERRIDE_KEY,))
    found = violations(validate_no_ssh_from_anywhere, resource_args(plan.one(firewall)))
    assert any("0.0.0.0/0" in message for message in found), found
    assert any("::/0" in message for message in found), found
    assert all(SSH_OVERRIDE_KEY in message for message in found)


@pytest.mark.parametrize("firewall", FIREWALLS)
def test_ssh_override_lets_the_rule_pass_but_is_reported_on_every_preview(
    plans: Plans, firewall: str
) -> None:
    plan = plans.variant("sshanywhere")  # installs its config: the override is true
    args = resource_args(plan.one(firewall))
    assert violations(validate_no_ssh_from_anywhere, args) == []
    notices = violations(validate_ssh_override_in_use, args)
    assert len(notices) == 2 and all("allowed only because" in n for n in notices), notices


def test_linode_firewall_with_default_accept_counts_as_ssh_from_anywhere(plans: Plans) -> None:
    plan = plans.shipped("harbourlaw")
    args = resource_args(plan.one(LINODE_FIREWALL), edit=lambda i: i.update(inboundPolicy="ACCEPT"))
    assert any("inboundPolicy ACCEPT" in m for m in violations(validate_no_ssh_from_anywhere, args))


def test_digitalocean_port_range_that_includes_22_counts(plans: Plans) -> None:
    def open_range(inputs: dict) -> None:
        inputs["inboundRules"].append({"protocol": "tcp", "portRange": "1-1024", "sourceAddresses": ["::/0"]})

    plan = plans.shipped("harbourlaw")
    found = violations(
        validate_no_ssh_from_anywhere, resource_args(plan.one(DIGITALOCEAN_FIREWALL), edit=open_range)
    )
    assert found and "tcp/1-1024 from ::/0" in found[0]


# The program declares no AWS security group yet (the platform's redirector will): these cases
# are built by hand, with the property names of pulumi_aws's wire format.
def _aws(resource_type: str, props: dict) -> ResourceValidationArgs:
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    return ResourceValidationArgs(resource_type, unknown_checking_proxy(props), "urn:test", "sg", opts, None)


@pytest.mark.parametrize(
    "resource_type, props, expected",
    [
        (
            AWS_SECURITY_GROUP,
            {"ingress": [{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}]},
            1,
        ),
        (
            AWS_SECURITY_GROUP,
            {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"]}]},
            1,
        ),
        (
            AWS_SECURITY_GROUP,
            {"ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}]},
            0,
        ),
        (
            AWS_SECURITY_GROUP,
            {
                "ingress": [
                    {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["203.0.113.0/28"]}
                ]
            },
            0,
        ),
        (
            AWS_SECURITY_GROUP_RULE,
            {
                "type": "ingress",
                "protocol": "tcp",
                "fromPort": 0,
                "toPort": 65535,
                "cidrBlocks": ["0.0.0.0/0"],
            },
            1,
        ),
        (
            AWS_SECURITY_GROUP_RULE,
            {"type": "egress", "protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]},
            0,
        ),
        (AWS_INGRESS_RULE, {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv6": "::/0"}, 1),
    ],
)
def test_aws_security_groups_never_open_ssh_to_the_world(
    resource_type: str, props: dict, expected: int
) -> None:
    from pulumi import runtime

    runtime.set_all_config({}, [])
    assert len(violations(validate_no_ssh_from_anywhere, _aws(resource_type, props))) == expected
