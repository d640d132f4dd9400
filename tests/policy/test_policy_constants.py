"""The policy pack runs as its own program (`pulumi ... --policy-pack policy/`, possibly in a
virtualenv made from policy/requirements.txt, without this project installed), so it keeps its
own copy of the provider limits; they must equal the program's (infra.constants)."""

from __future__ import annotations

from infra.constants import USER_DATA_LIMITS
from twinhost_policy import rules


def test_the_policy_packs_user_data_limits_are_the_programs() -> None:
    assert {
        "digitalocean": rules.DIGITALOCEAN_USER_DATA_MAX,
        "linode": rules.LINODE_USER_DATA_MAX,
        "aws": rules.AWS_USER_DATA_MAX,
    } == USER_DATA_LIMITS
