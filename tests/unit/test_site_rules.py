"""The safety rules of a site stack, each proven on the program's own resources under mocks."""

from __future__ import annotations

import base64
import gzip
import ipaddress
from pathlib import Path
from typing import Any

import pytest

from infra import catalog
from infra.bootstrap.parts import readable
from infra.bootstrap.render import provider_user_data_size
from infra.config import ConfigError
from infra.constants import USER_DATA_LIMITS
from infra.plan.runner import PlanResult, RecordedResource, is_secret_value, reveal, run_plan
from tests.conftest import REPO, write_stack

CF_ZONE = "0123456789abcdef0123456789abcdef"
LIMITS = {provider: USER_DATA_LIMITS[provider] for provider in ("digitalocean", "linode")}


def plan(tmp_path: Path, values: dict[str, Any], name: str = "variant") -> PlanResult:
    return run_plan(write_stack(tmp_path, name, values))


def of_type(result: PlanResult, type_: str) -> list[RecordedResource]:
    return [r for r in result.resources if r.type == type_]


def one(result: PlanResult, type_: str) -> RecordedResource:
    found = of_type(result, type_)
    assert len(found) == 1, [r.name for r in found]
    return found[0]


@pytest.fixture(scope="module")
def example() -> PlanResult:
    return run_plan(REPO / "Pulumi.harbourlaw.yaml")


def proxied(values: dict[str, Any], mode: str = "watchdog") -> dict[str, Any]:
    values = dict(values, proxied=True, domains=[{"name": "harbour-law.co.uk", "cloudflareZoneId": CF_ZONE}])
    values["failover"] = {"mode": mode, **({"accountId": CF_ZONE} if mode == "cloudflare-lb" else {})}
    return values


# -- placement ------------------------------------------------------------------------------------


def test_nodes_are_on_two_providers_in_the_configured_regions(example):
    droplet = one(example, "digitalocean:index/droplet:Droplet")
    instance = one(example, "linode:index/instance:Instance")
    assert droplet.inputs["region"] == example.config.digitalocean.region == "lon1"
    assert instance.inputs["region"] == example.config.linode.region == "de-fra-2"


@pytest.mark.parametrize("primary,address", [("digitalocean", "203.0.113.10"), ("linode", "198.51.100.20")])
def test_the_failover_name_starts_on_the_configured_primary(tmp_path, site_values, primary, address):
    result = plan(tmp_path, dict(site_values, primary=primary))
    record = next(
        r for r in of_type(result, "cloudflare:index/dnsRecord:DnsRecord") if r.inputs["type"] == "A"
    )
    assert record.inputs["content"] == address
    user_data = result.user_data[primary]
    assert user_data == result.user_data[primary]  # the primary's own user data exists


# -- firewalls ------------------------------------------------------------------------------------


def _ssh_sources(result: PlanResult) -> list[str]:
    sources: list[str] = []
    for rule in reveal(one(result, "digitalocean:index/firewall:Firewall").inputs["inboundRules"]):
        if rule.get("portRange") == "22":
            sources += rule["sourceAddresses"]
    for rule in reveal(one(result, "linode:index/firewall:Firewall").inputs["inbounds"]):
        if "22" in str(rule.get("ports", "")).split(","):
            sources += rule.get("ipv4s", []) + rule.get("ipv6s", [])
    return sources


def test_no_firewall_allows_ssh_from_the_world(example):
    sources = _ssh_sources(example)
    assert sources and all(ipaddress.ip_network(s).prefixlen > 0 for s in sources)
    assert set(sources) == set(example.config.admin_cidrs)


def test_only_the_loud_override_opens_ssh_to_the_world(tmp_path, site_values):
    values = dict(site_values, adminCidrs=["0.0.0.0/0"], dangerouslyAllowSshFromAnywhere=True)
    assert "0.0.0.0/0" in _ssh_sources(plan(tmp_path, values))


def test_tinc_is_open_only_to_the_peer_and_the_witness(example):
    # The witness: the platform's redirector, at its Elastic IP (the plan's mocks: 192.0.2.10).
    do_rules = reveal(one(example, "digitalocean:index/firewall:Firewall").inputs["inboundRules"])
    tinc = [r for r in do_rules if r.get("portRange") == "655"]
    assert {p for r in tinc for p in r["sourceAddresses"]} == {"198.51.100.20/32", "192.0.2.10/32"}
    linode_rules = reveal(one(example, "linode:index/firewall:Firewall").inputs["inbounds"])
    tinc = [r for r in linode_rules if r.get("ports") == "655"]
    # Node A's reserved IP and its droplet's own address (outbound traffic leaves from it).
    assert {p for r in tinc for p in r["ipv4s"]} == {"203.0.113.10/32", "203.0.113.20/32", "192.0.2.10/32"}


def test_digitalocean_firewall_allows_outbound_explicitly(example):
    outbound = reveal(one(example, "digitalocean:index/firewall:Firewall").inputs["outboundRules"])
    assert {r["protocol"] for r in outbound} == {"tcp", "udp", "icmp"}


def test_proxied_sites_open_web_ports_only_to_cloudflare(tmp_path, site_values):
    result = plan(tmp_path, proxied(site_values, mode="cloudflare-lb"))
    ranges = set(catalog.cloudflare_ranges()["ipv4"] + catalog.cloudflare_ranges()["ipv6"])
    for rule in reveal(one(result, "digitalocean:index/firewall:Firewall").inputs["inboundRules"]):
        if rule.get("portRange") in ("80", "443"):
            assert set(rule["sourceAddresses"]) == ranges
    for rule in reveal(one(result, "linode:index/firewall:Firewall").inputs["inbounds"]):
        if rule.get("ports") == "80,443":
            assert set(rule["ipv4s"] + rule["ipv6s"]) == ranges


def test_proxied_watchdog_sites_also_let_the_watcher_check_health(tmp_path, site_values):
    result = plan(tmp_path, proxied(site_values, mode="watchdog"))
    web = [
        r
        for r in reveal(one(result, "digitalocean:index/firewall:Firewall").inputs["inboundRules"])
        if r.get("portRange") == "443"
    ]
    assert "192.0.2.10/32" in web[0]["sourceAddresses"]
    # ...and each node's own firewall lets the watcher through too.
    assert all("192.0.2.10/32" in readable(text) for text in result.user_data.values())


def _is_whole_number(value: Any) -> bool:
    # The wire carries numbers as floats; a string id (the provider's `id`) would stay a string.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()


def test_firewall_ids_are_passed_as_integers(example):
    assert all(
        _is_whole_number(i) for i in one(example, "digitalocean:index/firewall:Firewall").inputs["dropletIds"]
    )
    assert all(_is_whole_number(i) for i in one(example, "linode:index/firewall:Firewall").inputs["linodes"])
    assignment = one(example, "digitalocean:index/reservedIpAssignment:ReservedIpAssignment")
    assert _is_whole_number(assignment.inputs["dropletId"])


# -- DNS ------------------------------------------------------------------------------------------


def test_dns_only_records_have_a_short_ttl_by_default(example):
    for record in of_type(example, "cloudflare:index/dnsRecord:DnsRecord"):
        if record.inputs["type"] == "A":
            assert 60 <= record.inputs["ttl"] <= 300


def test_proxied_records_have_no_custom_ttl(tmp_path, site_values):
    result = plan(tmp_path, proxied(site_values))
    proxied_records = [
        r for r in of_type(result, "cloudflare:index/dnsRecord:DnsRecord") if r.inputs.get("proxied")
    ]
    assert proxied_records and all(r.inputs["ttl"] == 1 for r in proxied_records)


def test_records_and_the_reserved_ip_are_protected(example):
    assert one(example, "digitalocean:index/reservedIp:ReservedIp").protect
    records = of_type(example, "cloudflare:index/dnsRecord:DnsRecord")
    assert records and all(r.protect for r in records)


def test_watchdog_records_leave_their_content_to_the_watcher(example):
    record = next(
        r for r in of_type(example, "cloudflare:index/dnsRecord:DnsRecord") if r.inputs["type"] == "A"
    )
    assert record.ignore_changes == ["content"]


def test_manual_mode_follows_active(tmp_path, site_values):
    result = plan(tmp_path, dict(site_values, failover={"mode": "manual", "active": "linode"}))
    a_records = [
        r for r in of_type(result, "cloudflare:index/dnsRecord:DnsRecord") if r.inputs["type"] == "A"
    ]
    assert [r.inputs["content"] for r in a_records] == ["198.51.100.20"]
    assert a_records[0].ignore_changes == []
    both = plan(tmp_path, dict(site_values, failover={"mode": "manual", "active": "both"}), name="both")
    contents = {
        r.inputs["content"]
        for r in of_type(both, "cloudflare:index/dnsRecord:DnsRecord")
        if r.inputs["type"] == "A"
    }
    assert contents == {"203.0.113.10", "198.51.100.20"}


def test_route53_mode_uses_failover_routing_with_https_health_checks(tmp_path, site_values):
    values = dict(site_values, opsDns="route53", failover={"mode": "route53"})
    project = tmp_path
    write_stack(
        project,
        "prod",
        {
            **__import__("tests.conftest", fromlist=["stack_file_values"]).stack_file_values("prod"),
            "dnsProvider": "route53",
            "route53ZoneId": "Z0123456789ABCDEFGHIJ",
        },
    )
    result = plan(project, values)
    checks = of_type(result, "aws:route53/healthCheck:HealthCheck")
    assert len(checks) == 2
    assert all(
        c.inputs["type"] == "HTTPS" and c.inputs["resourcePath"] == "/health" and c.inputs["enableSni"]
        for c in checks
    )
    records = [r for r in of_type(result, "aws:route53/record:Record") if r.inputs["type"] == "A"]
    roles = {r.inputs["failoverRoutingPolicies"][0]["type"]: r.inputs["records"][0] for r in records}
    assert roles == {"PRIMARY": "203.0.113.10", "SECONDARY": "198.51.100.20"}
    assert all(r.protect for r in records)


def test_cloudflare_lb_mode_has_a_pool_per_node_and_a_health_monitor(tmp_path, site_values):
    result = plan(tmp_path, proxied(site_values, mode="cloudflare-lb"))
    monitor = one(result, "cloudflare:index/loadBalancerMonitor:LoadBalancerMonitor")
    assert monitor.inputs["path"] == "/health" and monitor.inputs["type"] == "https"
    pools = of_type(result, "cloudflare:index/loadBalancerPool:LoadBalancerPool")
    assert sorted(p.inputs["origins"][0]["address"] for p in pools) == ["198.51.100.20", "203.0.113.10"]
    balancer = one(result, "cloudflare:index/loadBalancer:LoadBalancer")
    assert balancer.protect and balancer.inputs["proxied"] is True


def test_the_platform_dns_provider_must_match_the_site(tmp_path, site_values):
    with pytest.raises(Exception, match="opsDns"):
        plan(tmp_path, dict(site_values, opsDns="route53", failover={"mode": "route53"}))


def test_apex_domains_are_registered_for_the_redirector(example):
    txt = [r for r in of_type(example, "cloudflare:index/dnsRecord:DnsRecord") if r.inputs["type"] == "TXT"]
    assert [r.inputs["name"] for r in txt] == ["harbour-law.co.uk._apex.ops.brightpixel.agency"]


# -- TLS ------------------------------------------------------------------------------------------


def test_dns_only_sites_get_no_origin_certificate(example):
    assert of_type(example, "cloudflare:index/originCaCertificate:OriginCaCertificate") == []


def test_proxied_sites_get_an_origin_certificate_for_their_names(tmp_path, site_values):
    result = plan(tmp_path, proxied(site_values))
    certificate = one(result, "cloudflare:index/originCaCertificate:OriginCaCertificate")
    assert set(certificate.inputs["hostnames"]) == {
        "www.harbour-law.co.uk",
        "harbourlaw.ops.brightpixel.agency",
    }
    for text in result.user_data.values():
        assert "BEGIN CERTIFICATE" in readable(text)  # delivered to both nodes (packed files decoded)


def test_proxied_client_zones_get_www_and_apex_records(tmp_path, site_values):
    result = plan(tmp_path, proxied(site_values))
    records = {
        (r.inputs["type"], r.inputs["name"]): r
        for r in of_type(result, "cloudflare:index/dnsRecord:DnsRecord")
        if r.inputs["zoneId"] == CF_ZONE
    }
    assert (
        records[("CNAME", "www.harbour-law.co.uk")].inputs["content"] == "harbourlaw.ops.brightpixel.agency"
    )
    assert records[("A", "harbour-law.co.uk")].inputs["content"] == "192.0.2.10"


# -- user data ------------------------------------------------------------------------------------


def test_user_data_is_passed_as_a_secret(example):
    droplet = one(example, "digitalocean:index/droplet:Droplet")
    instance = one(example, "linode:index/instance:Instance")
    assert is_secret_value(droplet.inputs["userData"])
    assert is_secret_value(instance.inputs["metadatas"]) or is_secret_value(
        instance.inputs["metadatas"][0]["userData"]
    )


def test_user_data_fits_each_provider_limit(example):
    for node, text in example.user_data.items():
        # As the provider counts it (Linode: the base64 of the gzip; DigitalOcean: the text, or
        # its one gzip MIME part above the budget), the way the provider refuses it.
        assert provider_user_data_size(node, text) < LIMITS[node], node
    instance = one(example, "linode:index/instance:Instance")
    encoded = reveal(instance.inputs["metadatas"])[0]["userData"]
    # Linode receives the document gzipped, then base64 (infra.bootstrap.render.linode_user_data).
    assert gzip.decompress(base64.b64decode(encoded)).decode() == example.user_data["linode"]


def test_bootstrap_changes_never_replace_a_node(example):
    """User data is first-boot only: a new app version must not rebuild a serving node."""
    assert "userData" in one(example, "digitalocean:index/droplet:Droplet").ignore_changes
    assert "metadatas" in one(example, "linode:index/instance:Instance").ignore_changes


def test_reserved_ip_assignment_is_deleted_before_it_is_replaced(example):
    assert one(example, "digitalocean:index/reservedIpAssignment:ReservedIpAssignment").delete_before_replace


def test_each_node_gets_only_its_own_tinc_private_key(example):
    keys = {r.name.rsplit("-", 1)[-1]: r for r in of_type(example, "tls:index/privateKey:PrivateKey")}
    assert set(keys) == {"digitalocean", "linode"}
    for _node, text in example.user_data.items():
        assert readable(text).count("PRIVATE KEY-----") == 2  # BEGIN and END of exactly one key


# -- what a renderer relies on is refused by config validation first ------------------------------


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"adminUser": "root"}, "twinhost:adminUser"),
        ({"app": {"kind": "demo", "env": {"log-level": "debug"}}}, "twinhost:app.env.log-level"),
        ({"app": {"kind": "demo", "env": {"SHARED_DIR": "/tmp"}}}, "twinhost:app.env.SHARED_DIR"),
        ({"app": {"kind": "demo", "env": {"MOTD": "two\nlines"}}}, "twinhost:app.env.MOTD"),
        ({"adminCidrs": [f"198.51.100.{i}/32" for i in range(256)]}, "twinhost:adminCidrs"),
    ],
    ids=[
        "root admin (hardening)",
        "env name (app)",
        "reserved env (app)",
        "env line break (app)",
        "256 admin networks (Linode firewall)",
    ],
)
def test_config_a_renderer_would_refuse_fails_before_anything_is_declared(
    tmp_path, site_values, changes, key
):
    with pytest.raises(ConfigError) as caught:  # a ConfigError from load_config, not a renderer's ValueError
        plan(tmp_path, dict(site_values, **changes))
    assert key in {issue.key for issue in caught.value.issues}, caught.value
