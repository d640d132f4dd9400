"""The platform stack under Pulumi mocks: the real program with Pulumi.prod.yaml's own config,
every resource's inputs and options as the engine would receive them."""

from __future__ import annotations

import ipaddress
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.components.redirector import DEBIAN_AMI_OWNER
from infra.plan import mocks
from infra.plan.cost import monthly_cost
from infra.plan.runner import PlanResult, RecordedResource, is_secret_value, reveal, run_plan
from infra.redirector import AWS_USER_DATA_LIMIT
from infra.witness import witness_port

REPO = Path(__file__).resolve().parents[2]
PROD = REPO / "Pulumi.prod.yaml"
ANYWHERE = {"0.0.0.0/0", "::/0"}

EIP = "aws:ec2/eip:Eip"
INSTANCE = "aws:ec2/instance:Instance"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
ASSOCIATION = "aws:ec2/eipAssociation:EipAssociation"
GET_AMI = "aws:ec2/getAmi:getAmi"


def _plan_recording_ami_lookups(stack_file: Path) -> tuple[PlanResult, list[dict[str, Any]]]:
    """Plan a stack file, and keep the arguments of every AMI lookup the program made."""
    lookups: list[dict[str, Any]] = []
    original = mocks._CALL_HANDLERS[GET_AMI]

    def recording(plan_mocks: mocks.PlanMocks, args: Any) -> dict[str, Any]:
        lookups.append(dict(args.args))
        return original(plan_mocks, args)

    mocks._CALL_HANDLERS[GET_AMI] = recording
    try:
        return run_plan(stack_file), lookups
    finally:
        mocks._CALL_HANDLERS[GET_AMI] = original


@pytest.fixture(scope="module")
def prod() -> tuple[PlanResult, list[dict[str, Any]]]:
    return _plan_recording_ami_lookups(PROD)


@pytest.fixture(scope="module")
def plan(prod: tuple[PlanResult, list[dict[str, Any]]]) -> PlanResult:
    return prod[0]


def one(plan: PlanResult, type_token: str) -> RecordedResource:
    found = [r for r in plan.resources if r.type == type_token]
    assert len(found) == 1, f"expected one {type_token}, found {[r.name for r in found]}"
    return found[0]


@pytest.fixture
def variant(tmp_path: Path) -> Iterator[Any]:
    """Plan Pulumi.prod.yaml with some `twinhost:` keys changed (a stack file in tmp_path)."""
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    # The platform reads the site stacks it watches (twinhost:sites).
    for site in yaml.safe_load(PROD.read_text())["config"].get("twinhost:sites", []):
        shutil.copy(REPO / f"Pulumi.{site}.yaml", tmp_path / f"Pulumi.{site}.yaml")

    def make(**changes: Any) -> tuple[PlanResult, list[dict[str, Any]]]:
        document = yaml.safe_load(PROD.read_text())
        for key, value in changes.items():
            document["config"][f"twinhost:{key}"] = value
        path = tmp_path / "Pulumi.variant.yaml"
        path.write_text(yaml.safe_dump(document))
        return _plan_recording_ami_lookups(path)

    yield make


# -- the Elastic IP ----------------------------------------------------------------------------


def test_elastic_ip_is_protected(plan: PlanResult) -> None:
    assert one(plan, EIP).protect


def test_elastic_ip_lives_outside_the_redirector_component(plan: PlanResult) -> None:
    """Its URN must not depend on how the redirector is built: rebuilding, renaming or
    refactoring the component never replaces the address every client points at."""
    address = one(plan, EIP)
    assert address.parent is None or address.parent.endswith("::twinhost-prod")
    assert address.inputs["domain"] == "vpc"


def test_elastic_ip_is_associated_with_the_redirector_instance(plan: PlanResult) -> None:
    association = one(plan, ASSOCIATION)
    assert association.inputs["allocationId"] == "eipalloc-0plan"  # the EIP's, from the mocks
    instance_ids = {r.urn: r for r in plan.resources if r.type == INSTANCE}
    assert association.inputs["instanceId"]  # resolved from the instance
    assert len(instance_ids) == 1
    # A rebuilt instance replaces the association: delete first, or the old association's
    # deletion would take the address off the new instance.
    assert association.delete_before_replace


# -- the security group ------------------------------------------------------------------------


def _rules(plan: PlanResult, key: str) -> list[dict[str, Any]]:
    return list(reveal(one(plan, SECURITY_GROUP).inputs[key]))


def _sources(rule: dict[str, Any]) -> set[str]:
    return {*rule.get("cidrBlocks", []), *rule.get("ipv6CidrBlocks", [])}


def _covers(rule: dict[str, Any], port: int) -> bool:
    if rule["protocol"] in ("-1", "all"):
        return True
    return rule["protocol"] == "tcp" and int(rule["fromPort"]) <= port <= int(rule["toPort"])


def test_security_group_has_no_ssh_from_the_world(plan: PlanResult) -> None:
    for rule in _rules(plan, "ingress"):
        if _covers(rule, 22):
            assert not (_sources(rule) & ANYWHERE), rule
            for cidr in _sources(rule):
                assert ipaddress.ip_network(cidr).prefixlen > 0


def test_security_group_allows_ssh_only_from_the_admin_cidrs(plan: PlanResult) -> None:
    ssh = [rule for rule in _rules(plan, "ingress") if _covers(rule, 22)]
    assert len(ssh) == 1
    assert _sources(ssh[0]) == set(plan.config.admin_cidrs)


@pytest.mark.parametrize("port", [80, 443])
def test_security_group_opens_web_ports_to_everyone(plan: PlanResult, port: int) -> None:
    """80 for redirects and ACME HTTP-01 challenges, 443 for HTTPS redirects."""
    assert any(_covers(rule, port) and _sources(rule) == ANYWHERE for rule in _rules(plan, "ingress"))


def test_security_group_opens_nothing_else(plan: PlanResult) -> None:
    """22, 80, 443 (tcp); and per listed site only its witness tinc port (tcp and udp), from
    that site's two node addresses only (infra/witness.py)."""
    witness = {witness_port(site) for site in plan.config.sites}  # type: ignore[union-attr]
    own = [rule for rule in _rules(plan, "ingress") if int(rule["fromPort"]) not in witness]
    ports = sorted(int(rule["fromPort"]) for rule in own)
    assert ports == [22, 80, 443]
    assert all(rule["fromPort"] == rule["toPort"] and rule["protocol"] == "tcp" for rule in own)
    tinc = [rule for rule in _rules(plan, "ingress") if int(rule["fromPort"]) in witness]
    assert sorted((int(r["fromPort"]), r["protocol"]) for r in tinc) == sorted(
        (port, protocol) for port in witness for protocol in ("tcp", "udp")
    )
    for rule in tinc:
        assert rule["fromPort"] == rule["toPort"]
        assert _sources(rule) == {
            f"{mocks.DEFAULT_ADDRESSES['digitalocean_reserved_ip']}/32",
            f"{mocks.DEFAULT_ADDRESSES['linode']}/32",
        }


def test_dns_egress_goes_only_to_the_configured_resolvers(plan: PlanResult) -> None:
    dns = [rule for rule in _rules(plan, "egress") if int(rule["fromPort"]) == 53]
    assert {rule["protocol"] for rule in dns} == {"udp", "tcp"}
    for rule in dns:
        assert _sources(rule) == {f"{r}/32" for r in plan.config.aws.resolvers}  # type: ignore[union-attr]


# -- the instance --------------------------------------------------------------------------------


def test_imdsv2_is_required(plan: PlanResult) -> None:
    options = one(plan, INSTANCE).inputs["metadataOptions"]
    assert options["httpTokens"] == "required"
    assert int(options["httpPutResponseHopLimit"]) == 1


def test_ami_is_looked_up_not_literal(prod: tuple[PlanResult, list[dict[str, Any]]]) -> None:
    plan, lookups = prod
    assert len(lookups) == 1
    (lookup,) = lookups
    assert lookup["owners"] == [DEBIAN_AMI_OWNER] and lookup["mostRecent"] is True
    filters = {f["name"]: f["values"] for f in lookup["filters"]}
    assert filters["name"] == ["debian-12-arm64-*"]
    assert filters["architecture"] == ["arm64"]
    # The instance boots exactly what the lookup answered.
    assert one(plan, INSTANCE).inputs["ami"] == "ami-0123456789abcdef0"


def test_no_ami_id_is_written_in_the_program() -> None:
    literal = re.compile(r"\bami-[0-9a-f]{8,17}\b")
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "infra").rglob("*.py")
        if path.parent.name != "plan" and literal.search(path.read_text())
    ]
    assert offenders == []


def test_ami_follows_the_instance_type_architecture_and_release(variant: Any) -> None:
    plan, (lookup,) = variant(aws={"region": "eu-west-1", "instanceType": "t3.nano"}, debian=13)
    filters = {f["name"]: f["values"] for f in lookup["filters"]}
    assert filters["name"] == ["debian-13-amd64-*"]  # Debian says amd64 where AWS says x86_64
    assert filters["architecture"] == ["x86_64"]
    assert one(plan, INSTANCE).inputs["instanceType"] == "t3.nano"


def test_root_volume_is_encrypted(plan: PlanResult) -> None:
    root = one(plan, INSTANCE).inputs["rootBlockDevice"]
    assert root["encrypted"] is True
    assert root["volumeType"] == "gp3"
    assert int(root["volumeSize"]) == plan.config.aws.volume_gib  # type: ignore[union-attr]


def test_instance_is_the_configured_smallest_type_with_capped_cpu_credits(plan: PlanResult) -> None:
    instance = one(plan, INSTANCE)
    assert instance.inputs["instanceType"] == "t4g.nano"
    assert instance.inputs["creditSpecification"] == {"cpuCredits": "standard"}


def test_user_data_is_secret(plan: PlanResult) -> None:
    assert is_secret_value(one(plan, INSTANCE).inputs["userDataBase64"])


def test_user_data_and_image_never_replace_the_instance(plan: PlanResult) -> None:
    """First-boot only: a bootstrap edit or a newer Debian image must not rebuild it on a
    routine `pulumi up`; rebuilding is `pulumi up --replace`."""
    instance = one(plan, INSTANCE)
    assert {"userData", "ami"} <= set(instance.ignore_changes)
    assert not instance.inputs.get("userDataReplaceOnChange")


def test_user_data_is_under_16_kb(plan: PlanResult) -> None:
    import base64

    text = plan.user_data["redirector"]  # decompressed by the plan, as cloud-init reads it
    assert text.startswith("#cloud-config\n")
    packed = base64.b64decode(reveal(one(plan, INSTANCE).inputs["userDataBase64"]))
    assert len(packed) <= AWS_USER_DATA_LIMIT  # EC2 counts the gzip bytes


def test_user_data_has_the_stack_admin_keys_and_ops_zone_registry(plan: PlanResult) -> None:
    document = yaml.safe_load(plan.user_data["redirector"])
    assert document["users"][0]["ssh_authorized_keys"] == list(plan.config.ssh_keys)
    assert "_apex.ops.brightpixel.agency" in plan.user_data["redirector"]


def test_instance_sits_in_the_redirector_security_group(plan: PlanResult) -> None:
    instance = one(plan, INSTANCE)
    assert instance.inputs["vpcSecurityGroupIds"]
    assert instance.parent == one(plan, SECURITY_GROUP).parent  # both in the component
    component = next(r for r in plan.resources if r.urn == instance.parent)
    assert component.type == "twinhost:platform:Redirector"


# -- outputs and cost -------------------------------------------------------------------------


def test_outputs_keep_what_site_stacks_read(plan: PlanResult) -> None:
    outputs = plan.outputs
    assert outputs["redirectorAddress"] == "192.0.2.10"
    assert outputs["opsZone"] == "ops.brightpixel.agency"
    assert outputs["opsDnsProvider"] == "cloudflare"
    assert outputs["opsZoneId"] == "5d2c7a1e9b0f4c3d8e6a7b1c2d3e4f50"
    assert outputs["apexRegistry"] == "_apex.ops.brightpixel.agency"
    assert outputs["apexRecordPrefix"] == "twinhost site="
    assert outputs["acmeEmail"] == "hosting@brightpixel.agency"
    assert outputs["watcher"] == {
        "sourceAddress": "192.0.2.10",
        "interval": 5,
        "failures": 3,
        "recoveries": 2,
        "notifications": False,
        "bucket": "watcher-bucket-0plan",
    }


def test_outputs_hold_no_secret(plan: PlanResult) -> None:
    assert "[secret]" not in repr(plan.outputs)


def test_notification_setting_says_whether_a_webhook_is_set_not_where(variant: Any) -> None:
    plan, _ = variant(notifyWebhook={"secure": "v1:AAAA"})
    assert plan.outputs["watcher"]["notifications"] is True
    assert "v1:AAAA" not in repr(plan.outputs)


def test_plan_prices_the_instance_its_volume_and_the_public_ipv4(plan: PlanResult) -> None:
    instance_cost = monthly_cost(one(plan, INSTANCE))
    assert instance_cost == pytest.approx(round(0.0042 * 730, 2) + 8 * 0.08, abs=0.011)
    assert monthly_cost(one(plan, EIP)) == pytest.approx(0.005 * 730, abs=0.011)
