"""The platform config's redirector keys: defaults, and refusals that name the key and value."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, PlatformConfig, parse_config
from twinhost_watcher.validators import route53_zone_id

BASE: dict[str, Any] = {
    "role": "platform",
    "opsZone": "ops.example.agency",
    "cloudflareZoneId": "5d2c7a1e9b0f4c3d8e6a7b1c2d3e4f50",
    "acmeEmail": "hosting@example.agency",
    "adminCidrs": ["203.0.113.0/28"],
    "sshKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPQ0wQG0XPe8IN9wENY0RVhI1B3Rur+nUXSAQ4yz9Vm1 ana@x"],
}


def _parse(**changes: Any) -> PlatformConfig:
    config = parse_config({**BASE, **changes})
    assert isinstance(config, PlatformConfig)
    return config


def test_redirector_defaults_are_public_resolvers_and_lets_encrypt() -> None:
    aws = _parse().aws
    assert aws.instance_type == "t4g.nano" and aws.architecture == "arm64"
    assert aws.resolvers == ["1.1.1.1", "9.9.9.9"]
    assert aws.acme_directory == "https://acme-v02.api.letsencrypt.org/directory"


def test_lab_can_point_resolvers_and_acme_at_its_own_servers() -> None:
    aws = _parse(aws={"resolvers": ["10.77.0.53"], "acmeDirectory": "https://acme.lab:14000/dir"}).aws
    assert aws.resolvers == ["10.77.0.53"]
    assert aws.acme_directory == "https://acme.lab:14000/dir"


@pytest.mark.parametrize(
    ("aws", "key", "message"),
    [
        ({"resolvers": ["dns.google"]}, "twinhost:aws.resolvers[0]", "IP address of a DNS resolver"),
        ({"resolvers": ["0.0.0.0"]}, "twinhost:aws.resolvers[0]", "unicast"),
        ({"resolvers": []}, "twinhost:aws.resolvers", "at least 1"),
        ({"acmeDirectory": "http://acme.example/dir"}, "twinhost:aws.acmeDirectory", "https://"),
        ({"instanceType": "m5.large"}, "twinhost:aws.instanceType", "t4g.nano"),
    ],
)
def test_bad_redirector_settings_are_refused_by_key_and_value(
    aws: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _parse(aws=aws)
    issues = [issue for issue in caught.value.issues if issue.key == key]
    assert issues, str(caught.value)
    assert message in str(issues[0])


ROUTE53 = {"dnsProvider": "route53"}


@pytest.mark.parametrize("zone_id", ["Z0123456789ABCDEFGHIJ", "K8VANQW3JPQB3EGL5NCSYQ"])
def test_route53_zone_ids_follow_the_watchers_rule(zone_id: str) -> None:
    """One rule in one place (twinhost_watcher.validators): what the watcher accepts, the stack
    accepts, moto's ids included (they do not start with Z)."""
    assert route53_zone_id(zone_id) == zone_id
    assert _parse(**ROUTE53, route53ZoneId=zone_id).route53_zone_id == zone_id


@pytest.mark.parametrize("zone_id", ["z0123456789abcdef", "Z" + "A" * 32, "/hostedzone/Z0123"])
def test_route53_zone_ids_the_watcher_would_refuse_are_refused_by_key(zone_id: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _parse(**ROUTE53, route53ZoneId=zone_id)
    assert any(
        issue.key == "twinhost:route53ZoneId" and "at most 32" in str(issue) for issue in caught.value.issues
    ), str(caught.value)
