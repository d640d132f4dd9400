"""The backup resources under mocks: the platform's protected bucket, one IAM user per site whose
policy reaches only that site's prefix, the key and the restic password secret, the nodes' user
data naming the repository, and the cost in the plan."""

from __future__ import annotations

import json
import warnings

import pytest
import yaml

from infra.bootstrap.parts import decoded_files
from infra.components.site_backups import prefix_policy
from infra.plan.cost import monthly_cost
from infra.plan.runner import PlanResult, is_secret_value, reveal, run_plan
from tests.conftest import REPO


@pytest.fixture(scope="module")
def site() -> PlanResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return run_plan(REPO / "Pulumi.harbourlaw.yaml")


@pytest.fixture(scope="module")
def platform() -> PlanResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return run_plan(REPO / "Pulumi.prod.yaml")


def one(plan: PlanResult, type_: str, contains: str = ""):
    [found] = [r for r in plan.resources if r.type == type_ and contains in r.name]
    return found


def test_the_platform_makes_one_protected_private_backup_bucket(platform):
    bucket = one(platform, "aws:s3/bucket:Bucket", "backups")
    assert bucket.protect and reveal(bucket.inputs)["tags"]["Name"] == "twinhost-backups"
    assert not reveal(bucket.inputs).get("forceDestroy")
    block = reveal(one(platform, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "backups").inputs)
    assert all(
        block[k]
        for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    assert set(platform.outputs["backups"]) == {"bucket", "region", "endpoint"}
    assert platform.outputs["backups"]["endpoint"] == "https://s3.eu-west-1.amazonaws.com"


def test_a_sites_credentials_reach_its_own_prefix_only(site):
    policy = json.loads(reveal(one(site, "aws:iam/userPolicy:UserPolicy").inputs)["policy"])
    objects, listing = policy["Statement"]
    assert objects["Resource"].startswith("arn:aws:s3:::") and objects["Resource"].endswith("/harbourlaw/*")
    assert "s3:ListBucket" not in objects["Action"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["harbourlaw", "harbourlaw/*"]}}
    assert json.loads(prefix_policy("b", "acme"))["Statement"][0]["Resource"] == "arn:aws:s3:::b/acme/*"


def test_the_restic_password_and_the_key_are_secrets_in_the_nodes_user_data(site):
    password = one(site, "random:index/randomPassword:RandomPassword", "restic")
    assert reveal(password.inputs)["length"] == 40 and reveal(password.inputs)["special"] is False
    for node, text in site.user_data.items():
        files = {e["path"]: e["content"] for e in decoded_files(yaml.safe_load(text))}
        env = files["/etc/twinhost/backup.env"]
        assert (
            "RESTIC_REPOSITORY=s3:https://s3.eu-west-1.amazonaws.com/" in env
            and env.count("/harbourlaw\n") == 1
        )
        assert "AWS_ACCESS_KEY_ID=AKIA" in env, node
    for resource in site.resources:
        if "userData" in resource.inputs:
            assert is_secret_value(resource.inputs["userData"])


def test_the_plan_prices_a_sites_backups(site):
    assert monthly_cost(one(site, "aws:iam/user:User")) == pytest.approx(0.15, abs=0.006)
    assert "AKIA" not in repr(site.outputs)


def test_a_site_with_backups_disabled_makes_no_backup_resources(tmp_path, site_values):
    from tests.conftest import write_stack

    write_stack(tmp_path, "harbourlaw", dict(site_values, backups={"enabled": False}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        plan = run_plan(tmp_path / "Pulumi.harbourlaw.yaml")
    assert not [r for r in plan.resources if r.type.startswith(("aws:iam", "random:"))]
    assert all("twinhost-backup" not in text for text in plan.user_data.values())
