"""The stack config is refused before any resource exists, with messages that name the key, the
value and what is allowed; all problems are reported together."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.config import ConfigError, PlatformConfig, SiteConfig, parse_config
from infra.pulumi_config import declared_defaults

def _rsa_public_key(bits: int) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " t@x"


RSA_2048 = _rsa_public_key(2048)


def _set(values: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    result = copy.deepcopy(values)
    target = result
    parts = path.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    if value is _DELETE:
        target.pop(parts[-1], None)
    else:
        target[parts[-1]] = value
    return result


_DELETE = object()

# (rule, key path to change, new value, key expected in the message, words expected in the message)
SITE_CASES = [
    ("site name must be a DNS label", "site", "Harbour_Law", "twinhost:site", "DNS label"),
    ("site name may not start with a hyphen", "site", "-acme", "twinhost:site", "DNS label"),
    ("site name is required", "site", _DELETE, "twinhost:site", "required"),
    ("domains must not be empty", "domains", [], "twinhost:domains", "at least 1"),
    ("domain must be an apex, not www", "domains", ["www.harbour-law.co.uk"], "twinhost:domains[0].name", "give the apex"),
    ("domain must be a valid IDNA name", "domains", ["harbour law.co.uk"], "twinhost:domains[0].name", "not a valid domain"),
    ("domain must have two labels", "domains", ["localhost"], "twinhost:domains[0].name", "registered domain"),
    ("domains must not repeat (after IDNA)", "domains", ["bücher.de", "xn--bcher-kva.de"], "twinhost", "more than once"),
    ("primary must be a known provider", "primary", "hetzner", "twinhost:primary", "'digitalocean' or 'linode'"),
    ("DigitalOcean region must be known", "digitalocean.region", "mars1", "twinhost:digitalocean.region", "allowed: nyc1"),
    ("DigitalOcean size must be known", "digitalocean.size", "s-64vcpu", "twinhost:digitalocean.size", "allowed:"),
    ("DigitalOcean keys must be known", "digitalocean.regoin", "lon1", "twinhost:digitalocean.regoin", "not a known key"),
    ("Linode region must be known", "linode.region", "xx-nowhere", "twinhost:linode.region", "allowed:"),
    ("Linode region must have Metadata", "linode.region", "us-east", "twinhost:linode.region", "no Metadata service"),
    ("Linode type must be known", "linode.type", "g1-huge", "twinhost:linode.type", "allowed:"),
    ("admin CIDRs must parse", "adminCidrs", ["office"], "twinhost:adminCidrs[0]", "CIDR"),
    ("admin CIDRs must not have host bits", "adminCidrs", ["203.0.113.7/24"], "twinhost:adminCidrs[0]", "did you mean 203.0.113.0/24"),
    ("SSH from 0.0.0.0/0 is refused", "adminCidrs", ["0.0.0.0/0"], "twinhost:adminCidrs[0]", "dangerouslyAllowSshFromAnywhere"),
    ("SSH from ::/0 is refused", "adminCidrs", ["::/0"], "twinhost:adminCidrs[0]", "whole internet"),
    ("admin CIDRs are required", "adminCidrs", _DELETE, "twinhost:adminCidrs", "required"),
    ("SSH keys must parse", "sshKeys", ["ssh-ed25519 not-base64!"], "twinhost:sshKeys[0]", "cannot be parsed"),
    ("SSH keys must not be DSA", "sshKeys", ["ssh-dss AAAAB3NzaC1kc3M="], "twinhost:sshKeys[0]", "DSA"),
    ("RSA SSH keys need 3072 bits", "sshKeys", [RSA_2048], "twinhost:sshKeys[0]", "3072"),
    ("SSH keys are required", "sshKeys", [], "twinhost:sshKeys", "at least 1"),
    ("failover mode must be known", "failover", {"mode": "dns-magic"}, "twinhost:failover.mode", "'manual'"),
    ("manual mode needs active", "failover", {"mode": "manual"}, "twinhost:failover", "needs 'active'"),
    ("active is only for manual mode", "failover", {"mode": "watchdog", "active": "linode"}, "twinhost:failover", "only for mode 'manual'"),
    ("cloudflare-lb needs an account id", "failover", {"mode": "cloudflare-lb"}, "twinhost:failover", "accountId"),
    ("route53 checks run every 10 or 30 s", "failover", {"mode": "route53", "interval": 5}, "twinhost:failover", "10 or 30"),
    ("failures must be 1..10", "failover", {"mode": "watchdog", "failures": 0}, "twinhost:failover.failures", "greater than or equal to 1"),
    ("TTL must be at least 60", "ttl", 30, "twinhost:ttl", "greater than or equal to 60"),
    ("TTL must be at most a day", "ttl", 100000, "twinhost:ttl", "less than or equal to 86400"),
    ("proxied records have no TTL", "ttl", 120, "twinhost", "proxied records have no TTL"),
    ("origin certificates need the proxy", "certificates", "cloudflare-origin", "twinhost", "trusted only by Cloudflare"),
    ("certificate source must be known", "certificates", "self-signed", "twinhost:certificates", "'acme' or 'cloudflare-origin'"),
    ("ACME needs a contact e-mail", "acmeEmail", _DELETE, "twinhost", "acmeEmail"),
    ("app kind must be known", "app", {"kind": "docker"}, "twinhost:app.kind", "'demo', 'container'"),
    ("container app needs an image", "app", {"kind": "container"}, "twinhost:app.image", "required"),
    ("app port must be unprivileged", "app", {"kind": "demo", "port": 80}, "twinhost:app.port", "1024"),
    ("platform stack must be org/project/stack", "platformStack", "prod", "twinhost:platformStack", "pattern"),
    ("unknown top-level keys are refused", "primay", "linode", "twinhost:primay", "not a known key"),
    ("debian must be 12 or 13", "debian", 11, "twinhost:debian", "12 or 13"),
    ("route53 mode needs the ops zone on Route 53", "failover", {"mode": "route53"}, "twinhost", "opsDns: route53"),
]


@pytest.mark.parametrize(
    "rule,path,value,key,words", SITE_CASES, ids=[case[0] for case in SITE_CASES]
)
def test_invalid_site_config_is_refused_naming_the_key(site_values, rule, path, value, key, words):
    values = _set(site_values, path, value)
    if rule == "proxied records have no TTL":
        values["proxied"] = True
        values["domains"] = [{"name": "harbour-law.co.uk", "cloudflareZoneId": "a" * 32}]
    with pytest.raises(ConfigError) as caught:
        parse_config(values)
    messages = [str(issue) for issue in caught.value.issues]
    assert any(m.startswith(key) and words in m for m in messages), messages


PLATFORM_CASES = [
    ("ops zone must be a DNS name", "opsZone", "ops zone!", "twinhost:opsZone", "not a valid DNS zone"),
    ("dns provider must be known", "dnsProvider", "gandi", "twinhost:dnsProvider", "'cloudflare' or 'route53'"),
    ("cloudflare zone id must be 32 hex", "cloudflareZoneId", "zone-1", "twinhost:cloudflareZoneId", "32 lowercase hex"),
    ("route53 needs a hosted zone id", "dnsProvider", "route53", "twinhost", "route53ZoneId"),
    ("AWS region must be known", "aws.region", "eu-mars-1", "twinhost:aws.region", "allowed:"),
    ("EC2 type must be known", "aws.instanceType", "x1e.32xlarge", "twinhost:aws.instanceType", "allowed:"),
    ("watcher interval must be >= 2 s", "watcher.interval", 1, "twinhost:watcher.interval", "greater than or equal to 2"),
    ("ACME e-mail must be an address", "acmeEmail", "hosting", "twinhost:acmeEmail", "e-mail"),
]


@pytest.mark.parametrize(
    "rule,path,value,key,words", PLATFORM_CASES, ids=[case[0] for case in PLATFORM_CASES]
)
def test_invalid_platform_config_is_refused_naming_the_key(platform_values, rule, path, value, key, words):
    with pytest.raises(ConfigError) as caught:
        parse_config(_set(platform_values, path, value))
    messages = [str(issue) for issue in caught.value.issues]
    assert any(m.startswith(key) and words in m for m in messages), messages


def test_there_are_at_least_thirty_invalid_config_cases():
    assert len(SITE_CASES) + len(PLATFORM_CASES) >= 30


def test_every_problem_is_reported_together(site_values):
    values = _set(site_values, "site", "Bad_Name")
    values = _set(values, "digitalocean.region", "mars1")
    values = _set(values, "adminCidrs", ["0.0.0.0/0"])
    values = _set(values, "linode.region", "us-east")
    with pytest.raises(ConfigError) as caught:
        parse_config(values)
    keys = {issue.key for issue in caught.value.issues}
    assert {"twinhost:site", "twinhost:digitalocean.region", "twinhost:adminCidrs[0]",
            "twinhost:linode.region"} <= keys


def test_messages_show_the_bad_value(site_values):
    with pytest.raises(ConfigError) as caught:
        parse_config(_set(site_values, "digitalocean.region", "mars1"))
    assert "(got 'mars1')" in str(caught.value)


def test_secret_values_are_never_shown_in_errors(site_values):
    values = dict(site_values, acmeEmail="not-an-email-but-secret-xyz")
    with pytest.raises(ConfigError) as caught:
        parse_config(values, secret_keys={"acmeEmail"})
    assert "secret-xyz" not in str(caught.value)
    assert any(issue.key == "twinhost:acmeEmail" for issue in caught.value.issues)


def test_app_secrets_must_be_an_object_of_env_names(site_values):
    with pytest.raises(ConfigError) as caught:
        parse_config(dict(site_values, appSecrets='{"db-password": "hunter2"}'))
    assert "hunter2" not in str(caught.value)
    assert "environment variable names" in str(caught.value)


def test_the_loud_override_allows_ssh_from_anywhere(site_values):
    values = dict(site_values, adminCidrs=["0.0.0.0/0"], dangerouslyAllowSshFromAnywhere=True)
    assert isinstance(parse_config(values), SiteConfig)


def test_values_arrive_as_pulumi_strings(site_values):
    """Under Pulumi, objects and lists arrive as JSON strings and scalars as strings."""
    import json

    values = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in site_values.items()}
    values["debian"] = "13"
    config = parse_config(values)
    assert isinstance(config, SiteConfig) and config.debian == 13


def test_declared_project_defaults_count_as_unset(platform_values):
    """Pulumi hands Pulumi.yaml's defaults (e.g. site keys) to the platform stack too."""
    values = {**{k: v for k, v in declared_defaults().items()}, **platform_values}
    assert isinstance(parse_config(values, declared_defaults=declared_defaults()), PlatformConfig)


def test_shipped_stack_files_are_valid(site_values, platform_values):
    site = parse_config(site_values)
    assert isinstance(site, SiteConfig) and site.certificate_source == "acme" and site.record_ttl == 60
    assert isinstance(parse_config(platform_values), PlatformConfig)


def test_rsa_keys_of_3072_bits_are_accepted(site_values):
    values = dict(site_values, sshKeys=[_rsa_public_key(3072)])
    assert isinstance(parse_config(values), SiteConfig)
