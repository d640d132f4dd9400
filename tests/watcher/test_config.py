"""The watcher's config file: every invalid value refused with its key, its value and what is
allowed, all at once; secrets read only from safe files and never shown."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from twinhost_watcher.config import (
    SecretError,
    WatcherConfigError,
    load_config,
    parse_config,
    read_secret,
    webhook_url,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "cloudinit/redirector/etc/twinhost/watcher.example.json"


def example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text())


def issues_of(data: Any) -> list[str]:
    with pytest.raises(WatcherConfigError) as caught:
        parse_config(data)
    return [str(issue) for issue in caught.value.issues]


def test_the_shipped_example_is_valid_and_uses_the_defaults() -> None:
    config = load_config(EXAMPLE)
    assert [s.site for s in config.sites] == ["acme", "globex", "initech", "hooli"]
    assert (config.interval, config.failures, config.recoveries) == (5, 3, 2)
    acme, globex, initech, _ = config.sites
    assert acme.nodes[0].url == "https://203.0.113.10/health"
    assert acme.tls_name(acme.nodes[0]) == "www.acme.example"
    assert globex.tls_name(globex.nodes[0]) == "globex.ops.example.net", "SNI defaults to the record"
    assert globex.record_ttl == 1, "proxied records use Cloudflare's automatic TTL"
    assert initech.nodes[0].pin_sha256 == "3f9ac10d5e77214b8890aabcdef0123456789abcdef0123456789abcdef01234"


def test_defaults_fill_everything_but_the_sites() -> None:
    data = example()
    minimal = {"sites": [data["sites"][2]]}
    config = parse_config(minimal)
    assert (config.interval, config.failures, config.recoveries, config.timeout) == (5, 3, 2, 3)
    assert config.state_dir == "/var/lib/twinhost-watcher"


CASES = [
    (lambda d: d.update(interval=0.5), "interval: must be greater than or equal to 1 (got 0.5)"),
    (lambda d: d.update(failures=0), "failures: must be greater than or equal to 1 (got 0)"),
    (lambda d: d.update(timeout=5), "(file): timeout (5.0) must be shorter than interval (5.0)"),
    (lambda d: d.update(stateDir="var/lib/w"), "stateDir: must be an absolute path (got 'var/lib/w')"),
    (lambda d: d.update(sites=[]), "sites: must have at least 1 item(s), has 0"),
    (lambda d: d["sites"][0].update(site="Acme_1"), "sites[0].site: must be a DNS label"),
    (
        lambda d: d["sites"][0].update(record="acme.elsewhere.net"),
        "record 'acme.elsewhere.net' is not inside zone 'ops.example.net'",
    ),
    (
        lambda d: d["sites"][0]["nodes"][0].update(address="203.0.113.300"),
        "sites[0].nodes[0].address: must be an IPv4 address such as 203.0.113.10 (the watcher manages A records) (got '203.0.113.300')",
    ),
    (
        lambda d: d["sites"][0]["nodes"][0].update(address="2001:db8::1"),
        "sites[0].nodes[0].address: must be an IPv4 address",
    ),
    (
        lambda d: d["sites"][0]["nodes"][1].update(address="203.0.113.10"),
        "nodes repeat the address ['203.0.113.10']",
    ),
    (
        lambda d: d["sites"][0]["nodes"][0].update(healthUrl="http://203.0.113.10/health"),
        "sites[0].nodes[0].healthUrl: must be an https:// URL",
    ),
    (
        lambda d: d["sites"][0]["nodes"][0].update(pinSha256="abc"),
        "sites[0].nodes[0].pinSha256: must be the SHA-256 of the certificate",
    ),
    (
        lambda d: d["sites"][2]["nodes"][0].update(caBundle="/etc/ca.pem"),
        "sites[2].nodes[0]: give caBundle or pinSha256, not both",
    ),
    (
        lambda d: d["sites"][0]["dns"].update(zoneId="ABC"),
        "sites[0].dns.zoneId: must be a Cloudflare zone id: 32 lowercase hex characters (got 'ABC')",
    ),
    (
        lambda d: d["sites"][0]["dns"].update(backend="gandi"),
        "sites[0].dns.backend: must be one of 'cloudflare', 'route53', 'rfc2136' (got 'gandi')",
    ),
    (lambda d: d["sites"][0]["dns"].pop("backend"), "sites[0].dns: needs 'backend'"),
    (
        lambda d: d["sites"][0]["dns"].update(tokenSecret="../../etc/shadow"),
        "sites[0].dns.tokenSecret: must be a secret's file name",
    ),
    (lambda d: d["sites"][0]["dns"].update(token="abc123"), "sites[0].dns.token: is not a known key"),
    (lambda d: d["sites"][0].update(ttl=30), "Cloudflare DNS-only records need ttl >= 60"),
    (lambda d: d["sites"][1].update(ttl=300), "proxied Cloudflare records have no TTL"),
    (
        lambda d: d["sites"][2]["dns"].update(hostedZoneId="zone-1"),
        "sites[2].dns.hostedZoneId: must be a hosted zone id",
    ),
    (
        lambda d: d["sites"][3]["dns"].update(server="ns1.example.com"),
        "sites[3].dns.server: must be the server's IP address (IPv4 or IPv6), not a name (got 'ns1.example.com')",
    ),
    (
        lambda d: d["sites"][3]["dns"].update(tsigAlgorithm="hmac-md5"),
        "sites[3].dns.tsigAlgorithm: must be 'hmac-sha256', 'hmac-sha384', 'hmac-sha512' or 'hmac-sha224' (got 'hmac-md5')",
    ),
    (lambda d: d["sites"][1].update(site="acme"), "sites repeat the site ['acme']"),
    (lambda d: d.update(notfy={}), "notfy: is not a known key"),
]


@pytest.mark.parametrize(("mutate", "expected"), CASES, ids=[c[1][:50] for c in CASES])
def test_every_invalid_value_is_refused_naming_key_value_and_what_is_allowed(mutate, expected: str) -> None:
    data = example()
    mutate(data)
    issues = issues_of(data)
    assert any(expected in issue for issue in issues), issues


def test_all_problems_are_reported_together() -> None:
    data = example()
    data["failures"] = 99
    data["sites"][0]["nodes"][0]["address"] = "nope"
    data["sites"][3]["dns"]["port"] = 0
    issues = issues_of(data)
    assert len(issues) == 3, issues
    assert [i.split(":")[0] for i in issues] == ["failures", "sites[0].nodes[0].address", "sites[3].dns.port"]


def test_invalid_json_names_the_line_and_column(tmp_path) -> None:
    path = tmp_path / "w.json"
    path.write_text('{\n  "interval": 5,\n  "sites": [\n}\n')
    with pytest.raises(WatcherConfigError, match=r"w.json:4:1: is not valid JSON"):
        load_config(path)


@pytest.fixture
def secrets(tmp_path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.delenv("TWINHOST_WATCHER_WEBHOOK_URL", raising=False)
    directory = tmp_path / "secrets"
    directory.mkdir(mode=0o700)
    data = example()
    data["secretsDir"] = str(directory)
    return directory, parse_config(data)


def write_secret(path: Path, value: str, mode: int = 0o600) -> None:
    path.write_text(value + "\n")
    os.chmod(path, mode)


def test_a_secret_is_read_from_a_0600_file_without_its_newline(secrets) -> None:
    directory, config = secrets
    write_secret(directory / "cloudflare-token", "tok-123")
    assert read_secret(config, "sites[0].dns.tokenSecret", "cloudflare-token") == "tok-123"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_secret_file_readable_by_others_is_refused(secrets, mode: int) -> None:
    directory, config = secrets
    write_secret(directory / "cloudflare-token", "tok-123", mode)
    with pytest.raises(SecretError) as caught:
        read_secret(config, "sites[0].dns.tokenSecret", "cloudflare-token")
    assert "sites[0].dns.tokenSecret" in str(caught.value) and f"{mode:04o}" in str(caught.value)
    assert "tok-123" not in str(caught.value)


def test_a_missing_secret_names_the_key_and_where_it_looked(secrets) -> None:
    _directory, config = secrets
    with pytest.raises(SecretError, match=r"sites\[3\].dns.tsigSecret: secret 'tsig-dyn' not found"):
        read_secret(config, "sites[3].dns.tsigSecret", "tsig-dyn")


def test_systemd_credentials_win_over_the_secrets_dir(secrets, tmp_path, monkeypatch) -> None:
    directory, config = secrets
    write_secret(directory / "cloudflare-token", "from-dir")
    creds = tmp_path / "creds"
    creds.mkdir()
    write_secret(creds / "secrets_cloudflare-token", "from-credentials", 0o400)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert read_secret(config, "k", "cloudflare-token") == "from-credentials"


def test_the_webhook_url_comes_from_the_env_or_its_secret_file(secrets, monkeypatch) -> None:
    directory, config = secrets
    write_secret(directory / "webhook-url", "https://ntfy.example.net/twinhost-ops-4f1c")
    assert webhook_url(config) == "https://ntfy.example.net/twinhost-ops-4f1c"
    monkeypatch.setenv("TWINHOST_WATCHER_WEBHOOK_URL", "https://hooks.slack.example/T0/B0/xyz")
    assert webhook_url(config) == "https://hooks.slack.example/T0/B0/xyz"


def test_a_plain_http_webhook_is_refused_without_showing_it(secrets) -> None:
    directory, config = secrets
    write_secret(directory / "webhook-url", "http://hooks.example.net/T0/secret-path")
    with pytest.raises(SecretError) as caught:
        webhook_url(config)
    assert "secret-path" not in str(caught.value) and "https://" in str(caught.value)


def test_no_webhook_configured_means_notifications_off(secrets) -> None:
    _, config = secrets
    data = config.model_dump(by_alias=True)
    data["notify"]["urlSecret"] = None
    assert webhook_url(parse_config(data)) is None


def test_secret_names_lists_every_secret_the_config_needs(secrets) -> None:
    _, config = secrets
    assert config.secret_names() == [
        ("sites[0].dns.tokenSecret", "cloudflare-token"),
        ("sites[1].dns.tokenSecret", "cloudflare-token"),
        ("sites[3].dns.tsigSecret", "tsig-dyn"),
        ("notify.urlSecret", "webhook-url"),
    ]


@pytest.mark.parametrize("zone_id", ["Z0123456789ABCDEFGHIJ", "K8VANQW3JPQB3EGL5NCSYQ"])
def test_route53_zone_ids_need_not_start_with_z(zone_id: str) -> None:
    """The API documents only the length; moto's ids (the lab drill) start with any letter."""
    data = example()
    route53 = next(site for site in data["sites"] if site["dns"]["backend"] == "route53")
    route53["dns"]["hostedZoneId"] = zone_id
    config = parse_config(data)
    assert zone_id in [getattr(site.dns, "hosted_zone_id", None) for site in config.sites]


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        ("not a certificate", "must hold PEM CA certificates"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "holds no PEM certificate OpenSSL can load",
        ),
    ],
)
def test_an_inline_ca_pem_must_load(pem: str, message: str) -> None:
    data = example()
    data["sites"][0]["nodes"][0]["caPem"] = pem
    assert any(message in issue and issue.startswith("sites[0].nodes[0].caPem") for issue in issues_of(data))


def test_an_inline_ca_pem_excludes_the_other_trust_settings() -> None:
    from infra.catalog import cloudflare_origin_ca_bundle

    data = example()
    data["sites"][0]["nodes"][0].update(
        caPem=cloudflare_origin_ca_bundle("origin-ecc"), caBundle="/etc/ca.pem"
    )
    assert any("give one of caBundle, caPem, pinSha256" in issue for issue in issues_of(data))
