"""The failover watcher's delivery by the platform stack, under the plan's mocks: the generated
config (loaded by the watcher's own loader), the bucket, the parameters, the IAM policy, the
refresh units (systemd's own parser), and the offline plan's answer for site stacks."""

from __future__ import annotations

import json
import os
import py_compile
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import platform_watcher as pw
from infra.components.watcher_delivery import watcher_policy
from infra.config import Watcher
from infra.constants import USER_DATA_LIMITS
from infra.plan.mocks import DEFAULT_ADDRESSES, PLAN_ACCOUNT, PLAN_REGION
from infra.plan.runner import PlanResult, RecordedResource, is_secret_value, reveal, run_plan
from tests.conftest import REPO
from twinhost_watcher.config import load_config

PROD = REPO / "Pulumi.prod.yaml"
SITE = REPO / "Pulumi.harbourlaw.yaml"
WEBHOOK = "https://ntfy.example/twinhost-very-secret-topic"


@pytest.fixture(scope="module")
def plan() -> PlanResult:
    return run_plan(PROD)


@pytest.fixture
def variant(tmp_path: Path) -> Iterator[Any]:
    """Plan Pulumi.prod.yaml with some keys changed; other stack files copied beside it."""
    for name in ("Pulumi.yaml", "Pulumi.harbourlaw.yaml"):
        shutil.copy(REPO / name, tmp_path / name)

    def make(**changes: Any) -> PlanResult:
        document = yaml.safe_load(PROD.read_text())
        for key, value in changes.items():
            if value is None:
                document["config"].pop(f"twinhost:{key}", None)
            else:
                document["config"][f"twinhost:{key}"] = value
        path = tmp_path / "Pulumi.prod.yaml"
        path.write_text(yaml.safe_dump(document))
        return run_plan(path)

    yield make


def named(plan: PlanResult, name: str) -> RecordedResource:
    (found,) = [r for r in plan.resources if r.name == name]
    return found


def of_type(plan: PlanResult, token: str) -> list[RecordedResource]:
    return [r for r in plan.resources if r.type == token]


def generated_config(plan: PlanResult) -> str:
    return str(reveal(named(plan, "watcher-config").inputs["content"]))


# -- the generated config ------------------------------------------------------------------------


def test_generated_config_loads_with_the_watchers_own_loader(plan: PlanResult, tmp_path: Path) -> None:
    path = tmp_path / "watcher.json"
    path.write_text(generated_config(plan))
    config = load_config(path)
    (site,) = config.sites
    assert site.site == "harbourlaw" and site.record == "harbourlaw.ops.brightpixel.agency"
    assert site.zone == "ops.brightpixel.agency" and site.record_ttl == 60
    assert [(n.name, n.address) for n in site.nodes] == [
        ("digitalocean", DEFAULT_ADDRESSES["digitalocean_reserved_ip"]),
        ("linode", DEFAULT_ADDRESSES["linode"]),
    ]
    assert site.dns.backend == "cloudflare" and site.dns.zone_id == "5d2c7a1e9b0f4c3d8e6a7b1c2d3e4f50"
    assert (config.interval, config.failures, config.recoveries) == (5, 3, 2)


def test_config_holds_only_watchdog_sites() -> None:
    def site(name: str, mode: str) -> pw.WatchedSite:
        return pw.WatchedSite(
            site=name,
            mode=mode,
            record=f"{name}.ops.example.net",
            zone="ops.example.net",
            addresses={"digitalocean": "203.0.113.10", "linode": "198.51.100.20"},
        )

    sites = [
        site("a", "watchdog"),
        site("b", "manual"),
        site("c", "route53"),
        site("d", "cloudflare-lb"),
        site("e", "watchdog"),
    ]
    config = pw.watcher_config(Watcher(), sites, dns_provider="cloudflare", zone_id="0" * 32, notify=False)
    assert config is not None and [s["site"] for s in config["sites"]] == ["a", "e"]
    assert (
        pw.watcher_config(Watcher(), sites[1:4], dns_provider="cloudflare", zone_id="0" * 32, notify=False)
        is None
    )


def test_config_names_secrets_but_holds_no_secret_value(variant: Any) -> None:
    plan = variant(notifyWebhook={"secure": "v1:webhook"})
    text = generated_config(plan)
    config = json.loads(text)
    assert config["notify"] == {"urlSecret": pw.WEBHOOK_SECRET}
    assert config["sites"][0]["dns"]["tokenSecret"] == pw.DNS_TOKEN_SECRET
    # The values travel only as SSM SecureStrings, secret end to end.
    parameters = {r.inputs["name"]: r for r in of_type(plan, "aws:ssm/parameter:Parameter")}
    assert set(parameters) == {
        "/twinhost/prod/watcher/cloudflare-token",
        "/twinhost/prod/watcher/webhook-url",
        pw.witness_parameter_name("prod"),
        pw.witness_site_parameter_name("prod", "harbourlaw"),
    }
    for parameter in parameters.values():
        assert parameter.inputs["type"] == "SecureString" and parameter.inputs["tier"] == "Standard"
        assert is_secret_value(parameter.inputs["value"])
    for name in ("watcher-config", "watcher-release", "watcher-witness"):
        assert not is_secret_value(named(plan, name).inputs["content"])
        assert "[secret]" not in str(reveal(named(plan, name).inputs["content"]))


def test_generated_config_never_contains_a_secret_value() -> None:
    """No code path hands a secret value to the generator: prove it with real values around."""
    site = pw.WatchedSite(
        site="a",
        mode="watchdog",
        record="a.ops.example.net",
        zone="ops.example.net",
        addresses={"digitalocean": "203.0.113.10", "linode": "198.51.100.20"},
    )
    config = pw.watcher_config(Watcher(), [site], dns_provider="cloudflare", zone_id="0" * 32, notify=True)
    assert WEBHOOK not in json.dumps(config)
    assert pw.secret_names(config) == [pw.DNS_TOKEN_SECRET, pw.WEBHOOK_SECRET]


def test_no_webhook_means_no_notify_key_and_no_parameter(plan: PlanResult) -> None:
    assert "notify" not in json.loads(generated_config(plan))
    names = {r.inputs["name"] for r in of_type(plan, "aws:ssm/parameter:Parameter")}
    assert names == {
        "/twinhost/prod/watcher/cloudflare-token",
        pw.witness_parameter_name("prod"),
        pw.witness_site_parameter_name("prod", "harbourlaw"),
    }


def test_sites_on_cloudflare_without_a_token_are_refused_before_any_resource(variant: Any) -> None:
    from infra.plan.runner import is_config_error

    with pytest.raises(Exception) as caught:
        variant(watcherDnsToken=None)
    error = is_config_error(caught.value)
    assert error is not None and "twinhost:watcherDnsToken" in str(error)


def test_no_sites_means_no_config_and_a_release_that_says_so(variant: Any) -> None:
    plan = variant(sites=[], watcherDnsToken=None)
    release = json.loads(str(reveal(named(plan, "watcher-release").inputs["content"])))
    assert release["config"] is None and release["secrets"] == {}


def test_release_index_names_config_archive_and_secret_versions(plan: PlanResult) -> None:
    release = json.loads(str(reveal(named(plan, "watcher-release").inputs["content"])))
    import hashlib

    assert release["config"] == {
        "key": pw.CONFIG_KEY,
        "sha256": hashlib.sha256(generated_config(plan).encode()).hexdigest(),
    }
    archive = named(plan, "watcher-archive")
    assert release["archive"]["key"] == archive.inputs["key"]
    assert release["secrets"] == {
        pw.DNS_TOKEN_SECRET: {"parameter": "/twinhost/prod/watcher/cloudflare-token", "version": 1}
    }
    # Written after the objects it names.
    assert named(plan, "watcher-release").inputs["key"] == pw.RELEASE_KEY


# -- the bucket --------------------------------------------------------------------------------------


def watcher_only(resources: list[Any]) -> list[Any]:
    """The watcher bucket's resources (the platform also has the backup bucket: test_site_backups)."""
    return [r for r in resources if not r.name.startswith("backups")]


def test_bucket_blocks_every_kind_of_public_access(plan: PlanResult) -> None:
    (block,) = watcher_only(of_type(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"))
    for key in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block.inputs[key] is True
    (ownership,) = watcher_only(of_type(plan, "aws:s3/bucketOwnershipControls:BucketOwnershipControls"))
    assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"


def test_bucket_is_encrypted_versioned_and_tls_only(plan: PlanResult) -> None:
    (sse,) = watcher_only(
        of_type(
            plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        )
    )
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    (versioning,) = of_type(plan, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    (policy,) = watcher_only(of_type(plan, "aws:s3/bucketPolicy:BucketPolicy"))
    (statement,) = json.loads(reveal(policy.inputs["policy"]))["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }


# -- the IAM policy ------------------------------------------------------------------------------------


def _policy(plan: PlanResult) -> dict[str, Any]:
    (policy,) = of_type(plan, "aws:iam/rolePolicy:RolePolicy")
    return dict(json.loads(reveal(policy.inputs["policy"])))


def test_role_reads_exactly_the_four_objects_and_the_secret_parameters(plan: PlanResult) -> None:
    """The release, the watcher's config and code, and the witness's document; the watcher's
    secrets, the witness's key and its secrets for each listed site stack."""
    statements = {s["Sid"]: s for s in _policy(plan)["Statement"]}
    assert set(statements) == {"ReadWatcherObjects", "ReadWatcherSecrets"}
    bucket = "arn:aws:s3:::watcher-bucket-0plan"
    archive = named(plan, "watcher-archive").inputs["key"]
    assert statements["ReadWatcherObjects"]["Action"] == "s3:GetObject"
    assert sorted(statements["ReadWatcherObjects"]["Resource"]) == sorted(
        [
            f"{bucket}/{pw.RELEASE_KEY}",
            f"{bucket}/{pw.CONFIG_KEY}",
            f"{bucket}/{archive}",
            f"{bucket}/{pw.WITNESS_KEY}",
        ]
    )
    assert statements["ReadWatcherSecrets"]["Action"] == ["ssm:GetParameter", "ssm:GetParameters"]
    assert statements["ReadWatcherSecrets"]["Resource"] == sorted(
        [
            f"arn:aws:ssm:{PLAN_REGION}:{PLAN_ACCOUNT}:parameter/twinhost/prod/watcher/cloudflare-token",
            f"arn:aws:ssm:{PLAN_REGION}:{PLAN_ACCOUNT}:parameter{pw.witness_parameter_name('prod')}",
            f"arn:aws:ssm:{PLAN_REGION}:{PLAN_ACCOUNT}:parameter"
            f"{pw.witness_site_parameter_name('prod', 'harbourlaw')}",
        ]
    )


def test_role_has_no_wildcard_action_or_resource_and_no_kms(plan: PlanResult) -> None:
    """aws/ssm's key policy lets SSM decrypt for the account's principals: no kms statement."""
    for statement in _policy(plan)["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        assert all("*" not in action and not action.startswith("kms:") for action in actions), statement
        assert all("*" not in resource for resource in resources), statement


def test_role_is_only_for_ec2_and_is_the_redirectors_instance_profile(plan: PlanResult) -> None:
    (role,) = of_type(plan, "aws:iam/role:Role")
    trust = json.loads(reveal(role.inputs["assumeRolePolicy"]))
    assert trust["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    (instance,) = of_type(plan, "aws:ec2/instance:Instance")
    assert instance.inputs["iamInstanceProfile"] == "watcher-profile-0plan"


def test_route53_ops_zone_lets_the_watcher_change_only_its_a_records() -> None:
    policy = watcher_policy(
        bucket_arn="arn:aws:s3:::b",
        parameter_arns=[],
        dns_provider="route53",
        route53_zone_id="Z0123456789ABCDEFGHIJ",
        records=["a.ops.example.net"],
        archive_sha256="0" * 64,
    )
    statements = {s["Sid"]: s for s in policy["Statement"]}
    zone = "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"
    assert statements["MoveFailoverRecords"]["Resource"] == zone
    assert statements["OnlyWatchedNames"]["Condition"] == {
        "ForAnyValue:StringNotEquals": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["a.ops.example.net"]
        }
    }
    assert statements["OnlyARecords"]["Condition"] == {
        "ForAnyValue:StringNotEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["A"]}
    }
    assert "ReadWatcherSecrets" not in statements  # Route 53: credentials are the role itself


# -- the instance is never replaced for a site ------------------------------------------------------


def test_adding_a_site_changes_the_published_config_not_the_user_data(variant: Any) -> None:
    without = variant(sites=[])
    with_site = variant(sites=["harbourlaw"])
    assert without.user_data["redirector"] == with_site.user_data["redirector"]
    assert generated_config(without) != generated_config(with_site)


def test_user_data_is_gzip_base64_and_ignored_after_first_boot(plan: PlanResult) -> None:
    import base64

    (instance,) = of_type(plan, "aws:ec2/instance:Instance")
    packed = base64.b64decode(reveal(instance.inputs["userDataBase64"]))
    assert packed[:2] == b"\x1f\x8b" and len(packed) <= USER_DATA_LIMITS["aws"]
    assert is_secret_value(instance.inputs["userDataBase64"])
    assert {"userData", "userDataBase64", "ami"} <= set(instance.ignore_changes)


# -- the offline plan answers site references ----------------------------------------------------------


def test_plan_answers_a_site_reference_exactly_as_the_site_stack_exports() -> None:
    """The mocks synthesise a site's outputs from its stack file; they must equal what planning
    the site itself exports, for every key of the contract (all of which the platform reads)."""
    from infra.plan.mocks import PlanMocks, _site_outputs_from_stack_file
    from infra.site_outputs import KEYS

    synthesised = _site_outputs_from_stack_file(PlanMocks(), SITE)
    planned = run_plan(SITE).outputs
    assert synthesised is not None
    assert {k: synthesised[k] for k in KEYS} == {k: planned[k] for k in KEYS}


def test_a_site_without_a_stack_file_is_named_in_the_error(variant: Any) -> None:
    with pytest.raises(Exception, match=r"Pulumi\.nosuchsite\.yaml"):
        variant(sites=["nosuchsite"])


# -- the refresh script and timer on the node ---------------------------------------------------------


def _node_files(plan: PlanResult) -> dict[str, str]:
    document = yaml.safe_load(plan.user_data["redirector"])
    return {f["path"]: f["content"] for f in document["write_files"]}


def test_refresh_units_pass_systemd_analyze_verify(plan: PlanResult, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    files = _node_files(plan)
    # verify insists that ExecStart= binaries exist: point the unit at a copy of the script.
    script = tmp_path / "twinhost-watcher-refresh"
    script.write_text(files[pw.REFRESH_SCRIPT])
    script.chmod(0o755)
    for path, content in files.items():
        if path.startswith("/etc/systemd/system/twinhost-watcher"):
            (tmp_path / Path(path).name).write_text(content.replace(pw.REFRESH_SCRIPT, str(script)))
    result = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            "twinhost-watcher-refresh.service",
            "twinhost-watcher-refresh.timer",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"},
    )
    problems = [line for line in result.stderr.splitlines() if "twinhost-watcher-refresh" in line]
    assert result.returncode == 0 and not problems, result.stderr


def test_refresh_script_as_shipped_compiles(plan: PlanResult, tmp_path: Path) -> None:
    """It lands comment-stripped (compact): the shipped text must still be valid Python."""
    path = tmp_path / "refresh.py"
    path.write_text(_node_files(plan)[pw.REFRESH_SCRIPT])
    py_compile.compile(str(path), doraise=True)


def test_first_boot_installs_the_pinned_venv_then_refreshes_then_starts_the_timer(plan: PlanResult) -> None:
    runcmd = yaml.safe_load(plan.user_data["redirector"])["runcmd"]
    venv = runcmd.index(["python3", "-m", "venv", "/opt/twinhost-watcher/venv"])
    pip = next(i for i, c in enumerate(runcmd) if c[0] == "/opt/twinhost-watcher/venv/bin/pip")
    refresh = runcmd.index([pw.REFRESH_SCRIPT, "--first-boot"])
    timer = runcmd.index(["systemctl", "enable", "--now", "twinhost-watcher-refresh.timer"])
    assert venv < pip < refresh < timer
    assert "--require-hashes" in runcmd[pip] and "--only-binary=:all:" in runcmd[pip]
    files = _node_files(plan)
    assert "/etc/twinhost/watcher.json" not in files  # fetched, never in user data
    settings = json.loads(files[pw.REFRESH_SETTINGS])
    assert settings == {"bucket": "watcher-bucket-0plan", "region": "eu-west-1", "releaseKey": pw.RELEASE_KEY}
