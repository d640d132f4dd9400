"""Rule: user data under each provider's limit (DigitalOcean 64 KiB, Linode 65,535 bytes of the
base64 it receives, AWS 16 KiB)."""

from __future__ import annotations

import base64

import pytest
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from tests.policy.policy_harness import Plans, preview_unknown, resource_args, violations
from twinhost_policy.rules import (
    AWS_INSTANCE,
    AWS_LAUNCH_TEMPLATE,
    AWS_USER_DATA_MAX,
    DIGITALOCEAN_USER_DATA_MAX,
    DROPLET,
    LINODE_INSTANCE,
    LINODE_USER_DATA_MAX,
    user_data_sizes,
    validate_user_data_size,
)

NODES = (DROPLET, LINODE_INSTANCE)


@pytest.mark.parametrize("node", NODES)
def test_example_site_user_data_fits(plans: Plans, node: str) -> None:
    args = resource_args(plans.shipped("harbourlaw").one(node))
    sizes = list(user_data_sizes(args.resource_type, args.props))
    assert sizes and all(size is not None and 0 < size <= limit for _, size, limit in sizes), sizes
    assert violations(validate_user_data_size, args) == []


@pytest.mark.parametrize("node", NODES)
def test_user_data_over_the_limit_is_refused(plans: Plans, node: str) -> None:
    # The program's own rendering with 700 admin keys: the config model accepts them all, the
    # provider would not accept the user data.
    args = resource_args(plans.variant("manykeys").one(node))
    found = violations(validate_user_data_size, args)
    assert len(found) == 1 and "at most" in found[0], found


def test_linode_limit_is_counted_on_the_base64_form(plans: Plans) -> None:
    """The base64 text is what Linode receives: 65,535 characters of it pass (49,149 plain
    bytes give 65,532), 49,152 plain bytes (65,536 characters) fail, and so does the 65,535
    plain bytes that the older rule let through (87,380 characters)."""
    instance = plans.shipped("harbourlaw").one(LINODE_INSTANCE)

    def with_size(size: int):
        encoded = base64.b64encode(b"#" * size).decode()
        return lambda inputs: inputs.update(metadatas=[{"userData": encoded}])

    assert violations(validate_user_data_size, resource_args(instance, edit=with_size(49_149))) == []
    assert violations(validate_user_data_size, resource_args(instance, edit=with_size(49_152)))
    assert violations(validate_user_data_size, resource_args(instance, edit=with_size(LINODE_USER_DATA_MAX)))


def test_digitalocean_limit_is_64_kib_exactly(plans: Plans) -> None:
    droplet = plans.shipped("harbourlaw").one(DROPLET)
    ok = resource_args(droplet, edit=lambda i: i.update(userData="#" * DIGITALOCEAN_USER_DATA_MAX))
    over = resource_args(droplet, edit=lambda i: i.update(userData="#" * (DIGITALOCEAN_USER_DATA_MAX + 1)))
    assert violations(validate_user_data_size, ok) == []
    assert violations(validate_user_data_size, over)


def test_linode_user_data_that_is_not_base64_is_refused(plans: Plans) -> None:
    instance = plans.shipped("harbourlaw").one(LINODE_INSTANCE)
    args = resource_args(instance, edit=lambda i: i.update(metadatas=[{"userData": "#cloud-config\n"}]))
    assert any("not valid base64" in m for m in violations(validate_user_data_size, args))


# No EC2 instance in the program yet (the redirector is issue 4's): built by hand.
@pytest.mark.parametrize(
    "resource_type, key, encode",
    [
        (AWS_INSTANCE, "userData", False),
        (AWS_INSTANCE, "userDataBase64", True),
        (AWS_LAUNCH_TEMPLATE, "userData", True),
    ],
)
def test_aws_user_data_limit_is_16_kib(resource_type: str, key: str, encode: bool) -> None:
    def args(size: int) -> ResourceValidationArgs:
        value = base64.b64encode(b"#" * size).decode() if encode else "#" * size
        opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
        return ResourceValidationArgs(
            resource_type, unknown_checking_proxy({key: value}), "urn:t", "n", opts, None
        )

    assert violations(validate_user_data_size, args(AWS_USER_DATA_MAX)) == []
    assert violations(validate_user_data_size, args(AWS_USER_DATA_MAX + 1))


def test_user_data_unknown_at_preview_defers_the_rule_to_the_update(plans: Plans) -> None:
    """A new stack's user data depends on keys and addresses not made yet: the SDK turns the
    UnknownValueError into "can't run during preview" (advisory); `pulumi up` runs it for real."""
    droplet = plans.shipped("harbourlaw").one(DROPLET)
    with pytest.raises(UnknownValueError):
        validate_user_data_size(
            resource_args(droplet, edit=preview_unknown("userData")), lambda m, u=None: None
        )
