"""The witness (infra/witness.py): the redirector as every listed site's third tinc member and
thin-arbiter, delivered through the platform's S3/SSM channel, under the plan's mocks."""

from __future__ import annotations

import base64
import ipaddress
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import platform_watcher as pw
from infra import witness as wt
from infra.bootstrap.parts import decoded_files
from infra.config import ConfigError, parse_config
from infra.plan.mocks import DEFAULT_ADDRESSES
from infra.plan.runner import PlanResult, is_config_error, is_secret_value, reveal, run_plan
from tests.conftest import REPO

PROD = REPO / "Pulumi.prod.yaml"
SITE = REPO / "Pulumi.harbourlaw.yaml"
EIP = DEFAULT_ADDRESSES["redirector"]
# Two names whose 14-bit mesh index is the same (found by trying three-letter names).
COLLIDING = ("aar", "adm")


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Any]:
    """Plan the platform with `sites`, each site a copy of the example under its own name."""
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    example = yaml.safe_load(SITE.read_text())

    def make(*sites: str) -> PlanResult:
        for index, name in enumerate(sites):
            document = json.loads(json.dumps(example))
            document["config"]["twinhost:site"] = name
            document["config"]["twinhost:domains"] = [f"{name}-client{index}.example"]
            (tmp_path / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(document))
        document = yaml.safe_load(PROD.read_text())
        document["config"]["twinhost:sites"] = list(sites)
        (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(document))
        return run_plan(tmp_path / "Pulumi.prod.yaml")

    yield make


def named(plan: PlanResult, name: str) -> Any:
    (found,) = [r for r in plan.resources if r.name == name]
    return found


def document(plan: PlanResult) -> dict[str, Any]:
    return dict(json.loads(str(reveal(named(plan, "watcher-witness").inputs["content"]))))


# -- the address scheme ------------------------------------------------------------------------------


def test_the_witness_is_dot_3_of_each_sites_mesh_on_a_port_of_its_own() -> None:
    for site in ("harbourlaw", "acme-shop", "a"):
        network = wt.mesh_network(site)
        assert network.subnet_of(ipaddress.ip_network("10.64.0.0/10")) and network.prefixlen == 24
        assert wt.witness_mesh_address(site) == str(network[3])
        assert wt.WITNESS_PORT_BASE <= wt.witness_port(site) < 32768  # below Linux's ephemeral range
        assert len(wt.witness_net(site)) <= 15 and wt.witness_net(site).startswith("w")


def test_the_nodes_mesh_addresses_are_unchanged_by_the_witness() -> None:
    # The /24 of a deployed site must not move: the old formula, written out.
    import hashlib

    from infra.bootstrap.spec import mesh_addresses, mesh_network

    digest = int.from_bytes(hashlib.sha256(b"harbourlaw").digest()[:2], "big") & 0x3FFF
    expected = ipaddress.IPv4Network((int(ipaddress.IPv4Address("10.64.0.0")) + (digest << 8), 24))
    assert mesh_network("harbourlaw") == expected
    assert mesh_addresses("harbourlaw") == {"digitalocean": str(expected[1]), "linode": str(expected[2])}


def test_colliding_site_names_are_refused_in_the_platform_config_naming_both() -> None:
    base = yaml.safe_load(PROD.read_text())["config"]
    raw = {k.split(":", 1)[1]: v for k, v in base.items() if k.startswith("twinhost:")}
    raw["sites"] = ["harbourlaw", *COLLIDING]
    raw["watcherDnsToken"] = "placeholder"
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, ["watcherDnsToken"])
    (problem,) = [i for i in caught.value.issues if i.key == "twinhost:sites[2]"]
    assert "'aar'" in str(problem) and "'adm'" in str(problem)
    assert str(wt.mesh_network("aar")) in str(problem)


def test_colliding_sites_are_refused_when_the_witness_document_is_made() -> None:
    key = {"digitalocean": "PEM-A", "linode": "PEM-B"}
    addresses = {"digitalocean": "203.0.113.10", "linode": "198.51.100.20"}
    sites = [wt.WitnessedSite.from_outputs(name, addresses, key) for name in COLLIDING]
    with pytest.raises(wt.WitnessCollisionError, match="'aar' and 'adm'"):
        wt.witness_document([s for s in sites if s], public_key_pem="PEM-W", address=EIP)


def test_a_site_stack_from_before_the_witness_is_left_out_until_its_next_up() -> None:
    assert wt.WitnessedSite.from_outputs("old", {"digitalocean": "203.0.113.10", "linode": "x"}, {}) is None


# -- the platform ----------------------------------------------------------------------------------


def test_adding_a_site_never_changes_the_redirectors_user_data(project: Any) -> None:
    one = project("harbourlaw")
    two = project("harbourlaw", "acme")
    assert one.user_data["redirector"] == two.user_data["redirector"]
    packed = [reveal(named(p, "redirector-instance").inputs["userDataBase64"]) for p in (one, two)]
    assert packed[0] == packed[1] and base64.b64decode(packed[0])[:2] == b"\x1f\x8b"
    # What changes is the published document: both sites, each with its own net and port.
    assert [s["site"] for s in document(one)["sites"]] == ["harbourlaw"]
    sites = {s["site"]: s for s in document(two)["sites"]}
    assert set(sites) == {"harbourlaw", "acme"}
    assert sites["acme"]["net"] != sites["harbourlaw"]["net"]
    assert sites["acme"]["port"] == wt.witness_port("acme")
    assert sites["acme"]["address"] == wt.witness_mesh_address("acme")


def test_the_document_names_each_nodes_address_mesh_address_and_public_key(project: Any) -> None:
    plan = project("harbourlaw")
    doc = document(plan)
    assert doc["name"] == wt.WITNESS_TINC_NAME and doc["address"] == EIP
    assert doc["thinArbiter"] == {"directory": wt.THIN_ARBITER_DIR, "port": wt.THIN_ARBITER_PORT}
    (site,) = doc["sites"]
    network = wt.mesh_network("harbourlaw")
    assert [(n["name"], n["address"], n["meshAddress"]) for n in site["nodes"]] == [
        ("harbourlaw_digitalocean", DEFAULT_ADDRESSES["digitalocean_reserved_ip"], str(network[1])),
        ("harbourlaw_linode", DEFAULT_ADDRESSES["linode"], str(network[2])),
    ]
    for node in site["nodes"]:
        assert node["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in json.dumps(doc)


def test_the_witness_key_is_secret_in_ssm_and_only_its_public_half_is_exported(project: Any) -> None:
    plan = project("harbourlaw")
    parameter = named(plan, "watcher-witness-key")
    assert parameter.inputs["name"] == pw.witness_parameter_name("prod")
    assert parameter.inputs["type"] == "SecureString" and is_secret_value(parameter.inputs["value"])
    exported = plan.outputs["witness"]
    assert exported["name"] == wt.WITNESS_TINC_NAME and exported["address"] == EIP
    assert "PRIVATE" not in json.dumps(reveal(exported)) and "PUBLIC KEY" in exported["publicKeyPem"]
    release = json.loads(str(reveal(named(plan, "watcher-release").inputs["content"])))
    assert release["witness"]["config"]["key"] == pw.WITNESS_KEY
    assert release["witness"]["key"]["parameter"] == pw.witness_parameter_name("prod")
    # Not among the watcher's secrets: the watcher's unit never gets the witness's key.
    assert pw.WITNESS_SECRET not in release["secrets"]


def test_each_sites_witness_port_is_open_only_to_that_sites_nodes(project: Any) -> None:
    plan = project("harbourlaw", "acme")
    group = named(plan, "redirector-sg").inputs
    ports = {wt.witness_port(s) for s in ("harbourlaw", "acme")}
    tinc = [r for r in reveal(group["ingress"]) if int(r["fromPort"]) in ports]
    assert sorted((int(r["fromPort"]), r["protocol"]) for r in tinc) == sorted(
        (p, proto) for p in ports for proto in ("tcp", "udp")
    )
    nodes = {f"{DEFAULT_ADDRESSES['digitalocean_reserved_ip']}/32", f"{DEFAULT_ADDRESSES['linode']}/32"}
    assert all(set(r["cidrBlocks"]) == nodes and r["fromPort"] == r["toPort"] for r in tinc)
    out = [r for r in reveal(group["egress"]) if int(r["fromPort"]) == 655]
    assert {r["protocol"] for r in out} == {"tcp", "udp"}
    assert all(set(r["cidrBlocks"]) == nodes for r in out)


def test_a_collision_between_site_outputs_is_a_config_error_at_up(project: Any, tmp_path: Path) -> None:
    """Stack names that differ from their `site` (a site renamed by hand) are caught at `up`."""
    plan_error = None
    try:
        # Stack files named x1/x2 (no collision by stack name) whose sites collide.
        example = yaml.safe_load(SITE.read_text())
        for stack, site in zip(("x1", "x2"), COLLIDING, strict=True):
            document_ = json.loads(json.dumps(example))
            document_["config"]["twinhost:site"] = site
            document_["config"]["twinhost:domains"] = [f"{site}.example"]
            (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document_))
        shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
        prod = yaml.safe_load(PROD.read_text())
        prod["config"]["twinhost:sites"] = ["x1", "x2"]
        (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(prod))
        run_plan(tmp_path / "Pulumi.prod.yaml")
    except Exception as error:  # noqa: BLE001 (the plan surfaces the program's error)
        plan_error = is_config_error(error)
    assert plan_error is not None
    assert "'aar' and 'adm'" in str(plan_error) and "twinhost:sites" in str(plan_error)


# -- the site --------------------------------------------------------------------------------------


def test_each_node_has_the_witness_as_third_mesh_member() -> None:
    plan = run_plan(SITE)
    for node in ("digitalocean", "linode"):
        files = {f["path"]: f for f in decoded_files(yaml.safe_load(plan.user_data[node]))}
        host = files["/etc/tinc/harbourlaw/hosts/witness"]["content"]
        assert f"Address = {EIP} {wt.witness_port('harbourlaw')}" in host
        assert f"Subnet = {wt.witness_mesh_address('harbourlaw')}/32" in host
        assert "ConnectTo = witness" in files["/etc/tinc/harbourlaw/tinc.conf"]["content"]
        firewall = files["/usr/local/sbin/twinhost-firewall"]["content"]
        assert f"from {EIP} to any port 655" in firewall
