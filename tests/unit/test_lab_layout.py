"""The lab's pure parts (no root, no containers): its addresses, what its DNS publishes, what the
plan renders for it, and how the checks read graders' reports. The lab itself is tests/lab."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.plan.mocks import DEFAULT_ADDRESSES
from infra.plan.runner import run_plan
from twinhost_lab import checks, lab
from twinhost_lab.layout import Layout
from twinhost_lab.services import make_lab_ca

REPO = Path(__file__).resolve().parents[2]
TEST_NET_2 = ipaddress.ip_network("198.51.100.0/24")


def test_every_lab_address_is_documentation_space_on_the_bridge() -> None:
    layout = Layout()
    bridge = ipaddress.ip_network(layout.network)
    addresses = [
        layout.host_address,
        layout.internet_address,
        layout.admin_address,
        *(a for node in layout.nodes for a in node.addresses),
    ]
    assert all(ipaddress.ip_address(a) in bridge for a in addresses)
    assert bridge.subnet_of(TEST_NET_2)  # never routed: nothing can leak off the host
    assert len(set(addresses)) == len(addresses)


def test_the_internet_namespace_is_outside_the_admin_network_and_the_admin_sources_inside() -> None:
    layout = Layout()
    admin = ipaddress.ip_network(layout.admin_network)
    assert ipaddress.ip_address(layout.internet_address) not in admin
    sources = [layout.admin_address, checks.AUDIT_SOURCE, checks.FAIL2BAN_SOURCE, checks.BURST_SOURCE]
    assert all(ipaddress.ip_address(s) in admin for s in sources)
    # One source per purpose: a ban or a rate limit on one never blocks another check.
    assert len({checks.AUDIT_SOURCE, checks.FAIL2BAN_SOURCE, checks.BURST_SOURCE}) == 3
    assert not any(ipaddress.ip_address(a) in admin for node in layout.nodes for a in node.addresses)


def test_the_address_map_covers_every_address_the_plan_mocks_hand_out() -> None:
    assert set(Layout().address_map()) == set(DEFAULT_ADDRESSES)


def test_the_outside_reaches_the_droplet_at_its_reserved_ip() -> None:
    droplet = Layout().node("digitalocean")
    assert droplet.address == Layout().address_map()["digitalocean_reserved_ip"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Layout, dict[str, str], dict[str, object]]:
    layout = Layout(state_dir=tmp_path_factory.mktemp("lab-state"))
    profile = lab.lab_profile(layout, ca_pem=_ca_pem(), admin_public_key=_admin_key())
    user_data, facts, _platform = lab.render(layout, REPO, profile)
    return layout, user_data, facts


def _ca_pem() -> str:
    return make_lab_ca("198.51.100.1").cert_pem


def _admin_key() -> str:
    public = Ed25519PrivateKey.generate().public_key()
    return (
        public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        + " lab"
    )


def test_each_container_boots_the_plan_user_data_with_the_lab_overrides(rendered) -> None:  # type: ignore[no-untyped-def]
    layout, user_data, _ = rendered
    assert set(user_data) == {"digitalocean", "linode", "redirector"}
    for role, text in user_data.items():
        assert text.startswith("#cloud-config") or text.startswith("Content-Type: multipart"), role
    site_node = user_data["digitalocean"]
    assert layout.proxy_url in site_node  # packages through the host's caching proxy
    assert layout.acme_directory in site_node  # certificates from the lab's ACME server
    assert layout.node("linode").address in site_node  # the peer at its lab address
    # Written for reading, private: tinc and TLS keys are in it.
    for role in user_data:
        assert (layout.run_dir / "user-data" / f"{role}.yaml").stat().st_mode & 0o077 == 0


def test_the_lab_dns_publishes_what_the_stacks_and_the_client_would(rendered) -> None:  # type: ignore[no-untyped-def]
    layout, _, facts = rendered
    hosts, txt = lab.dns_records(layout, facts)
    nodes = [n.address for n in layout.site_nodes]
    assert hosts[facts["failover"]] == nodes
    assert all(hosts[www] == nodes for www in facts["www"])
    redirector = [layout.node("redirector").address]
    assert len(facts["redirect_apexes"]) >= 2  # the redirector is checked for two clients
    assert all(hosts[apex] == redirector for apex in facts["redirect_apexes"])
    # The unknown apex points at the redirector but is registered nowhere: it must be refused.
    assert hosts[facts["unknown_apex"]] == redirector
    assert not any(name.startswith(facts["unknown_apex"] + ".") for name in txt)
    for apex in facts["redirect_apexes"]:
        assert txt[f"{apex}._apex.{facts['ops_zone']}"].startswith("twinhost site=")


def test_the_summary_table_has_a_row_per_container() -> None:
    layout = Layout()
    state = lab.LabState(
        stack="harbourlaw",
        platform_stack="prod",
        debian=12,
        nodes={"th-do": {"cloud_init": "done", "cloud_init_s": 147.1}},
        timings={"up_total_s": 178.5, "containers_started_at": 1.0},
    )
    table = lab.summary_table(layout, state).splitlines()
    assert [row.split()[0] for row in table[1:4]] == [n.name for n in layout.nodes]
    assert "147.1" in table[1] and table[2].split()[-1] == "-"
    assert table[-1] == "up_total_s 178.5"  # epoch bookkeeping is not a figure


def test_ssh_audit_counts_failures_and_warnings_per_algorithm() -> None:
    report = {
        "kex": [
            {"algorithm": "curve25519-sha256", "notes": {"info": ["default"]}},
            {"algorithm": "diffie-hellman-group14-sha1", "notes": {"fail": ["SHA-1"], "warn": ["weak"]}},
        ],
        "key": [{"algorithm": "ssh-rsa", "notes": {"warn": ["SHA-1"]}}],
        "enc": [],
        "mac": [{"algorithm": "hmac-sha2-256-etm@openssh.com", "notes": {}}],
    }
    fails, warns = checks._ssh_audit_counts(report)
    assert fails == ["kex:diffie-hellman-group14-sha1"]
    assert warns == ["kex:diffie-hellman-group14-sha1", "key:ssh-rsa"]


def test_the_lab_user_data_has_no_swap_file_and_the_real_one_does(rendered) -> None:  # type: ignore[no-untyped-def]
    """A container may not swapon (cloud-init 25 fails the boot on it): the lab profile turns the
    swap file off, and only the lab profile does."""
    _, user_data, _ = rendered
    for role in ("digitalocean", "linode"):
        assert "swap" not in yaml.safe_load(user_data[role])
    real = run_plan(
        REPO / "Pulumi.harbourlaw.yaml", stack_outputs={"prod": run_plan(REPO / "Pulumi.prod.yaml").outputs}
    )
    assert yaml.safe_load(real.user_data["digitalocean"])["swap"]["filename"] == "/swapfile"
