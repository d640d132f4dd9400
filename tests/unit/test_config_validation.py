"""The stack config is refused before any resource exists, with messages that name the key, the
value and what is allowed; all problems are reported together."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.config import ConfigError, PlatformConfig, SiteConfig, parse_config
from infra.pulumi_config import declared_defaults
from tests.conftest import run_twinhost, stack_file_values, write_stack


def _rsa_public_key(bits: int) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    return (
        key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " t@x"
    )


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
    (
        "domain must be an apex, not www",
        "domains",
        ["www.harbour-law.co.uk"],
        "twinhost:domains[0].name",
        "give the apex",
    ),
    (
        "domain must be a valid IDNA name",
        "domains",
        ["harbour law.co.uk"],
        "twinhost:domains[0].name",
        "not a valid domain",
    ),
    (
        "domain must have two labels",
        "domains",
        ["localhost"],
        "twinhost:domains[0].name",
        "registered domain",
    ),
    (
        "domains must not repeat (after IDNA)",
        "domains",
        ["bücher.de", "xn--bcher-kva.de"],
        "twinhost:domains[1].name",
        "more than once",
    ),
    (
        "primary must be a known provider",
        "primary",
        "hetzner",
        "twinhost:primary",
        "'digitalocean' or 'linode'",
    ),
    (
        "DigitalOcean region must be known",
        "digitalocean.region",
        "mars1",
        "twinhost:digitalocean.region",
        "allowed: nyc1",
    ),
    (
        "DigitalOcean size must be known",
        "digitalocean.size",
        "s-64vcpu",
        "twinhost:digitalocean.size",
        "allowed:",
    ),
    (
        "DigitalOcean keys must be known",
        "digitalocean.regoin",
        "lon1",
        "twinhost:digitalocean.regoin",
        "not a known key",
    ),
    ("Linode region must be known", "linode.region", "xx-nowhere", "twinhost:linode.region", "allowed:"),
    (
        "Linode region must have Metadata",
        "linode.region",
        "us-east",
        "twinhost:linode.region",
        "no Metadata service",
    ),
    ("Linode type must be known", "linode.type", "g1-huge", "twinhost:linode.type", "allowed:"),
    ("admin CIDRs must parse", "adminCidrs", ["office"], "twinhost:adminCidrs[0]", "CIDR"),
    (
        "admin CIDRs must not have host bits",
        "adminCidrs",
        ["203.0.113.7/24"],
        "twinhost:adminCidrs[0]",
        "did you mean 203.0.113.0/24",
    ),
    (
        "SSH from 0.0.0.0/0 is refused",
        "adminCidrs",
        ["0.0.0.0/0"],
        "twinhost:adminCidrs[0]",
        "dangerouslyAllowSshFromAnywhere",
    ),
    ("SSH from ::/0 is refused", "adminCidrs", ["::/0"], "twinhost:adminCidrs[0]", "whole internet"),
    ("admin CIDRs are required", "adminCidrs", _DELETE, "twinhost:adminCidrs", "required"),
    (
        "SSH keys must parse",
        "sshKeys",
        ["ssh-ed25519 not-base64!"],
        "twinhost:sshKeys[0]",
        "cannot be parsed",
    ),
    ("SSH keys must not be DSA", "sshKeys", ["ssh-dss AAAAB3NzaC1kc3M="], "twinhost:sshKeys[0]", "DSA"),
    ("RSA SSH keys need 3072 bits", "sshKeys", [RSA_2048], "twinhost:sshKeys[0]", "3072"),
    ("SSH keys are required", "sshKeys", [], "twinhost:sshKeys", "at least 1"),
    ("failover mode must be known", "failover", {"mode": "dns-magic"}, "twinhost:failover.mode", "'manual'"),
    (
        "manual mode needs active",
        "failover",
        {"mode": "manual"},
        "twinhost:failover.active",
        "needs 'active'",
    ),
    (
        "active is only for manual mode",
        "failover",
        {"mode": "watchdog", "active": "linode"},
        "twinhost:failover.active",
        "only for mode 'manual'",
    ),
    (
        "cloudflare-lb needs an account id",
        "failover",
        {"mode": "cloudflare-lb"},
        "twinhost:failover.accountId",
        "accountId",
    ),
    (
        "route53 checks run every 10 or 30 s",
        "failover",
        {"mode": "route53", "interval": 5},
        "twinhost:failover.interval",
        "10 or 30",
    ),
    (
        "failures must be 1..10",
        "failover",
        {"mode": "watchdog", "failures": 0},
        "twinhost:failover.failures",
        "greater than or equal to 1",
    ),
    ("TTL must be at least 60", "ttl", 30, "twinhost:ttl", "greater than or equal to 60"),
    ("TTL must be at most a day", "ttl", 100000, "twinhost:ttl", "less than or equal to 300"),
    ("TTL must be at most the policy pack's 300 s", "ttl", 600, "twinhost:ttl", "less than or equal to 300"),
    ("proxied records have no TTL", "ttl", 120, "twinhost:ttl", "proxied records have no TTL"),
    (
        "origin certificates need the proxy",
        "certificates",
        "cloudflare-origin",
        "twinhost:certificates",
        "trusted only by Cloudflare",
    ),
    (
        "certificate source must be known",
        "certificates",
        "self-signed",
        "twinhost:certificates",
        "'acme' or 'cloudflare-origin'",
    ),
    ("ACME needs a contact e-mail", "acmeEmail", _DELETE, "twinhost:acmeEmail", "acmeEmail"),
    ("app kind must be known", "app", {"kind": "docker"}, "twinhost:app.kind", "'demo', 'container'"),
    ("container app needs an image", "app", {"kind": "container"}, "twinhost:app.image", "required"),
    ("app port must be unprivileged", "app", {"kind": "demo", "port": 80}, "twinhost:app.port", "1024"),
    (
        "platform stack must be org/project/stack",
        "platformStack",
        "prod",
        "twinhost:platformStack",
        "pattern",
    ),
    ("unknown top-level keys are refused", "primay", "linode", "twinhost:primay", "not a known key"),
    ("debian must be 12 or 13", "debian", 11, "twinhost:debian", "12 or 13"),
    (
        "route53 mode needs the ops zone on Route 53",
        "failover",
        {"mode": "route53"},
        "twinhost:opsDns",
        "opsDns: route53",
    ),
    # Rules a renderer used to enforce (a traceback after resources were declared), now refused here.
    ("the admin user may not be root", "adminUser", "root", "twinhost:adminUser", "already has"),
    (
        "the admin user may not be a system account",
        "adminUser",
        "www-data",
        "twinhost:adminUser",
        "already has",
    ),
    (
        "the admin user must start with a letter",
        "adminUser",
        "1ops",
        "twinhost:adminUser",
        "lowercase letter",
    ),
    (
        "app.env names must be environment names",
        "app",
        {"kind": "demo", "env": {"log-level": "debug"}},
        "twinhost:app.env.log-level",
        "not an environment variable name",
    ),
    (
        "app.env may not set what the unit sets",
        "app",
        {"kind": "demo", "env": {"PORT": "80"}},
        "twinhost:app.env.PORT",
        "set by twinhost itself",
    ),
    (
        "app.env values are one line",
        "app",
        {"kind": "demo", "env": {"MOTD": "a\nb"}},
        "twinhost:app.env.MOTD",
        "line break",
    ),
    (
        "an SSH key is one line",
        "sshKeys",
        ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPQ0wQG0XPe8IN9wENY0RVhI1B3Rur+nUXSAQ4yz9Vm1 a\nssh-rsa AAAA"],
        "twinhost:sshKeys[0]",
        "line break",
    ),
    (
        "admin CIDRs fit one Linode firewall rule",
        "adminCidrs",
        [f"203.0.113.{i}/32" for i in range(256)] + ["198.51.100.0/24"],
        "twinhost:adminCidrs",
        "at most 255",
    ),
    # The admin CIDR floor: IPv4 /8, IPv6 /32 (fields.ADMIN_CIDR_FLOOR says why).
    (
        "IPv4 admin CIDRs wider than /8 are refused",
        "adminCidrs",
        ["0.0.0.0/1"],
        "twinhost:adminCidrs[0]",
        "wider than /8",
    ),
    (
        "IPv4 /7 is refused",
        "adminCidrs",
        ["10.0.0.0/7"],
        "twinhost:adminCidrs[0]",
        "dangerouslyAllowSshFromAnywhere",
    ),
    (
        "IPv6 admin CIDRs wider than /32 are refused",
        "adminCidrs",
        ["2000::/3"],
        "twinhost:adminCidrs[0]",
        "wider than /32",
    ),
    # Each cross-field rule names the one key to change.
    (
        "cloudflare-lb checks every 60 s or more",
        "failover",
        {"mode": "cloudflare-lb", "accountId": "a" * 32, "interval": 30},
        "twinhost:failover.interval",
        "60 s",
    ),
    (
        "accountId is only for cloudflare-lb",
        "failover",
        {"mode": "watchdog", "accountId": "a" * 32},
        "twinhost:failover.accountId",
        "only used by mode 'cloudflare-lb'",
    ),
    (
        "cloudflare-lb needs the proxy",
        "failover",
        {"mode": "cloudflare-lb", "accountId": "a" * 32},
        "twinhost:failover.mode",
        "proxied: true",
    ),
    (
        "proxied needs the ops zone on Cloudflare",
        "opsDns",
        "route53",
        "twinhost:opsDns",
        "proxied needs opsDns: cloudflare",
    ),
    (
        "labOverrides is refused in a stack file",
        "labOverrides",
        {"aptProxy": "http://10.0.0.1:3142"},
        "twinhost:labOverrides",
        "`twinhost lab` only",
    ),
]


@pytest.mark.parametrize("rule,path,value,key,words", SITE_CASES, ids=[case[0] for case in SITE_CASES])
def test_invalid_site_config_is_refused_naming_the_key(site_values, rule, path, value, key, words):
    values = _set(site_values, path, value)
    if rule in ("proxied records have no TTL", "proxied needs the ops zone on Cloudflare"):
        values["proxied"] = True
        values["domains"] = [{"name": "harbour-law.co.uk", "cloudflareZoneId": "a" * 32}]
    with pytest.raises(ConfigError) as caught:
        parse_config(values)
    messages = [str(issue) for issue in caught.value.issues]
    assert any(m.startswith(key) and words in m for m in messages), messages


PLATFORM_CASES = [
    ("ops zone must be a DNS name", "opsZone", "ops zone!", "twinhost:opsZone", "not a valid DNS zone"),
    (
        "dns provider must be known",
        "dnsProvider",
        "gandi",
        "twinhost:dnsProvider",
        "'cloudflare' or 'route53'",
    ),
    (
        "cloudflare zone id must be 32 hex",
        "cloudflareZoneId",
        "zone-1",
        "twinhost:cloudflareZoneId",
        "32 lowercase hex",
    ),
    ("route53 needs a hosted zone id", "dnsProvider", "route53", "twinhost:route53ZoneId", "route53ZoneId"),
    ("AWS region must be known", "aws.region", "eu-mars-1", "twinhost:aws.region", "allowed:"),
    ("EC2 type must be known", "aws.instanceType", "x1e.32xlarge", "twinhost:aws.instanceType", "allowed:"),
    (
        "watcher interval must be >= 2 s",
        "watcher.interval",
        1,
        "twinhost:watcher.interval",
        "greater than or equal to 2",
    ),
    ("ACME e-mail must be an address", "acmeEmail", "hosting", "twinhost:acmeEmail", "e-mail"),
    ("the platform's admin user may not be root", "adminUser", "root", "twinhost:adminUser", "already has"),
    (
        "platform admin CIDRs have the same floor",
        "adminCidrs",
        ["128.0.0.0/1"],
        "twinhost:adminCidrs[0]",
        "wider than /8",
    ),
    (
        "sites must not repeat",
        "sites",
        ["harbourlaw", "harbourlaw"],
        "twinhost:sites[1]",
        "same stack as sites[0]",
    ),
    (
        "watched sites on Cloudflare need the watcher's DNS token",
        "watcherDnsToken",
        _DELETE,
        "twinhost:watcherDnsToken",
        "required when sites are listed",
    ),
    (
        "cloudflare needs the ops zone id",
        "cloudflareZoneId",
        _DELETE,
        "twinhost:cloudflareZoneId",
        "required",
    ),
    (
        "labOverrides is refused in the platform stack",
        "labOverrides",
        {"resolvers": ["10.0.0.53"]},
        "twinhost:labOverrides",
        "`twinhost lab` only",
    ),
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
    assert {
        "twinhost:site",
        "twinhost:digitalocean.region",
        "twinhost:adminCidrs[0]",
        "twinhost:linode.region",
    } <= keys


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


# -- every rule always runs, each problem under its own key ------------------------------------


def test_one_config_with_several_independent_errors_lists_all_of_them(site_values):
    """A bad `site` used to hide the proxied-mode problems (pydantic's `after` validators), and
    those came as one `(stack)` issue joined by "; ". Now each is its own issue with its key."""
    values = dict(
        site_values,
        site="Bad_Name",
        adminUser="root",
        proxied=True,
        ttl=120,
        certificates="acme",
        acmeEmail=None,
        failover={"mode": "route53", "interval": 5},
        app={"kind": "demo", "env": {"log-level": "debug"}},
    )
    values.pop("acmeEmail")
    with pytest.raises(ConfigError) as caught:
        parse_config(values)
    by_key = {issue.key: issue for issue in caught.value.issues}
    assert {
        "twinhost:site",
        "twinhost:adminUser",
        "twinhost:ttl",
        "twinhost:domains[0].cloudflareZoneId",
        "twinhost:acmeEmail",
        "twinhost:opsDns",
        "twinhost:failover.interval",
        "twinhost:app.env.log-level",
    } <= set(by_key), sorted(by_key)
    assert by_key["twinhost:failover.interval"].value == 5 and "(got 5)" in str(
        by_key["twinhost:failover.interval"]
    )
    # One issue per problem, each under its own key; none at the stack level.
    assert len(caught.value.issues) == len(by_key) == 8, caught.value
    assert not any("(stack)" in issue.key for issue in caught.value.issues)


def test_a_rule_whose_input_failed_is_skipped_not_the_others(site_values):
    values = dict(site_values, failover={"mode": "manual", "failures": 0}, proxied=True, ttl=300)
    with pytest.raises(ConfigError) as caught:
        parse_config(values)
    keys = {issue.key for issue in caught.value.issues}
    assert "twinhost:failover.failures" in keys
    assert "twinhost:failover.active" not in keys  # its rule needs `failover`, which did not parse
    assert "twinhost:ttl" in keys  # the proxied rules still ran


def test_rules_are_plain_functions_of_what_parsed():
    from types import SimpleNamespace

    from infra.config import rules

    failover = SimpleNamespace(mode="route53", active="linode", interval=15, account_id=None)
    found = rules.failover_keys_fit_the_mode(rules.Parsed({"failover": failover}))
    assert [(i.key, i.value) for i in found] == [
        ("twinhost:failover.active", "linode"),
        ("twinhost:failover.interval", 15),
    ]
    assert (
        rules.failover_keys_fit_the_mode(
            rules.Parsed(
                {"failover": SimpleNamespace(mode="watchdog", active=None, interval=None, account_id=None)}
            )
        )
        == []
    )


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "2001:db8::/32", "203.0.113.7/32"])
def test_admin_cidrs_at_the_floor_are_accepted(site_values, cidr):
    assert isinstance(parse_config(dict(site_values, adminCidrs=[cidr])), SiteConfig)


@pytest.mark.parametrize("cidr", ["0.0.0.0/1", "2000::/3"])
def test_the_loud_override_also_allows_too_wide_admin_cidrs(site_values, cidr):
    values = dict(site_values, adminCidrs=[cidr], dangerouslyAllowSshFromAnywhere=True)
    assert isinstance(parse_config(values), SiteConfig)


def test_a_domain_another_stack_serves_is_refused_naming_both(site_values):
    with pytest.raises(ConfigError) as caught:
        parse_config(site_values, served_elsewhere={"harbour-law.co.uk": "oldharbour"})
    [found] = [i for i in caught.value.issues if i.key == "twinhost:domains[0].name"]
    assert "oldharbour" in str(found) and "harbour-law.co.uk" in str(found)


def test_app_secrets_may_not_repeat_app_env_or_reserved_names(site_values):
    values = dict(
        site_values,
        app={"kind": "demo", "env": {"DB_HOST": "x"}},
        appSecrets='{"DB_HOST": "hunter2", "PORT": "1"}',
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(values, secret_keys={"appSecrets"})
    text = str(caught.value)
    assert "hunter2" not in text
    assert "twinhost:app.env.DB_HOST: is also set in appSecrets" in text
    assert "twinhost:appSecrets: sets ['PORT']" in text


# -- through the CLI: exit 2, the key named, no traceback ----------------------------------------


_cli = run_twinhost


def _acme(site_values: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return dict(site_values, site="acme", domains=["acme.example"], **changes)


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"adminUser": "root"}, "twinhost:adminUser"),
        ({"app": {"kind": "demo", "env": {"log-level": "debug"}}}, "twinhost:app.env.log-level"),
        ({"labOverrides": {"aptProxy": "http://10.0.0.1:3142"}}, "twinhost:labOverrides"),
        ({"adminCidrs": ["0.0.0.0/1"]}, "twinhost:adminCidrs[0]"),
    ],
    ids=["adminUser root", "app.env log-level", "labOverrides", "0.0.0.0/1"],
)
def test_config_that_used_to_fail_in_a_renderer_exits_2_naming_the_key(tmp_path, site_values, changes, key):
    write_stack(tmp_path, "acme", _acme(site_values, **changes))
    result = _cli("plan", "--stack", "acme", "--project-dir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert key in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "build").exists()


def test_a_domain_served_by_another_stack_file_exits_2_naming_both_stacks(tmp_path, site_values):
    write_stack(tmp_path, "copycat", dict(site_values, site="copycat"))
    result = _cli("plan", "--stack", "copycat", "--project-dir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "Pulumi.copycat.yaml" in result.stderr and "'harbourlaw'" in result.stderr
    assert "twinhost:domains[0].name" in result.stderr and "Traceback" not in result.stderr


def test_plan_all_refuses_both_stacks_that_serve_one_domain(tmp_path, site_values):
    write_stack(tmp_path, "copycat", dict(site_values, site="copycat"))
    result = _cli("plan", "--all", "--project-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "Pulumi.copycat.yaml: " in result.stderr and "Pulumi.harbourlaw.yaml: " in result.stderr
    assert "served by stack 'harbourlaw'" in result.stderr and "served by stack 'copycat'" in result.stderr


@pytest.mark.parametrize("plan", [["--stack", "acme"], ["--all"]], ids=["--stack", "--all"])
def test_a_stack_file_that_is_not_yaml_exits_2_with_one_line(tmp_path, site_values, plan):
    path = write_stack(tmp_path, "acme", _acme(site_values))
    path.write_text(
        path.read_text().replace("twinhost:primary: digitalocean", "twinhost:primary: [digitalocean")
    )
    result = _cli("plan", *plan, "--project-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    [line] = [line for line in result.stderr.splitlines() if "acme" in line]
    assert "Pulumi.acme.yaml is not valid YAML (line " in line, result.stderr


def test_a_project_file_that_is_not_yaml_exits_2_with_one_line(tmp_path, site_values):
    write_stack(tmp_path, "acme", _acme(site_values))
    (tmp_path / "Pulumi.yaml").write_text("name: twinhost\nconfig: [\n")
    result = _cli("plan", "--stack", "acme", "--project-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "Pulumi.yaml is not valid YAML (line 3" in result.stderr, result.stderr


def test_a_platform_stack_without_a_stack_file_exits_2_naming_the_key(tmp_path, site_values):
    write_stack(tmp_path, "acme", _acme(site_values, platformStack="brightpixel/twinhost/staging"))
    result = _cli("plan", "--stack", "acme", "--project-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "twinhost:platformStack: names the platform stack 'staging'" in result.stderr
    assert "Pulumi.staging.yaml" in result.stderr


def test_new_site_refuses_an_unreadable_stack_file_and_a_served_domain(tmp_path, site_values):
    from infra.cli import main

    write_stack(tmp_path, "prod", stack_file_values("prod"))
    assert main(["--project-dir", str(tmp_path), "new-site", "acme", "--domain", "harbour-law.co.uk"]) == 2
    assert not (tmp_path / "Pulumi.acme.yaml").exists()
    (tmp_path / "Pulumi.harbourlaw.yaml").write_text("config:\n  twinhost:role: site\n   bad: indent\n")
    result = _cli("--project-dir", str(tmp_path), "new-site", "acme", "--domain", "acme.example")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "Pulumi.harbourlaw.yaml is not valid YAML (line 3" in result.stderr


def test_new_site_refuses_a_platform_stack_without_a_stack_file(tmp_path):
    from infra.cli import main

    write_stack(tmp_path, "prod", stack_file_values("prod"))
    assert (
        main(
            [
                "--project-dir",
                str(tmp_path),
                "new-site",
                "acme",
                "--domain",
                "acme.example",
                "--platform-stack",
                "brightpixel/twinhost/staging",
            ]
        )
        == 2
    )
    assert not (tmp_path / "Pulumi.acme.yaml").exists()


def test_a_site_whose_ops_dns_differs_from_its_platform_is_refused_before_anything_is_declared(
    tmp_path, site_values
):
    from infra.plan.runner import run_plan

    path = write_stack(tmp_path, "acme", _acme(site_values, opsDns="route53", failover={"mode": "route53"}))
    with pytest.raises(ConfigError) as caught:
        run_plan(path)
    [found] = caught.value.issues
    assert found.key == "twinhost:opsDns" and found.value == "route53" and "'cloudflare'" in found.message
