"""One rule per DNS name and provider id, shared by the watcher's config and the stack config:
each accepted value comes back (normalised where the rule says), each refused one raises a
ValueError that says what is allowed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from twinhost_watcher import validators as v
from twinhost_watcher.config import CloudflareDns, Route53Dns

ACCEPTED: list[tuple[Callable[[str], str], str, str]] = [
    (v.dns_label, "acme", "acme"),
    (v.dns_label, "a", "a"),
    (v.dns_label, "site-2", "site-2"),
    (v.dns_label, "a" * 63, "a" * 63),
    (v.dns_name, "acme.ops.example.net", "acme.ops.example.net"),
    (v.dns_name, "Acme.Ops.Example.NET.", "acme.ops.example.net"),
    (v.dns_name, "xn--bcher-kva.example", "xn--bcher-kva.example"),
    (v.cloudflare_zone_id, "0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"),
    (v.cloudflare_account_id, "fedcba9876543210fedcba9876543210", "fedcba9876543210fedcba9876543210"),
    # AWS's ids start with Z by custom; moto's (the lab drill's Route 53) do not.
    (v.route53_zone_id, "Z0123456789ABCDEFGHIJ", "Z0123456789ABCDEFGHIJ"),
    (v.route53_zone_id, "K8VANQW3JPQB3EGL5NCSYQ", "K8VANQW3JPQB3EGL5NCSYQ"),
    (v.route53_zone_id, "Z" * 32, "Z" * 32),
]

REFUSED: list[tuple[Callable[[str], str], str, str]] = [
    (v.dns_label, "Acme", "must be a DNS label: 1-63 of a-z, 0-9 and '-'"),
    (v.dns_label, "-acme", "must be a DNS label"),
    (v.dns_label, "acme-", "must be a DNS label"),
    (v.dns_label, "harbour_law", "must be a DNS label"),
    (v.dns_label, "a" * 64, "must be a DNS label"),
    (v.dns_label, "", "must be a DNS label"),
    (v.dns_name, "localhost", "must be a fully qualified DNS name such as site.ops.example.net"),
    (v.dns_name, "acme..example.net", "must be a fully qualified DNS name"),
    (v.dns_name, "bücher.example", "must be a fully qualified DNS name"),
    (v.dns_name, ".".join(["a" * 63] * 4), "must be a fully qualified DNS name"),  # 255 characters
    (v.cloudflare_zone_id, "zone-1", "must be a Cloudflare zone id: 32 lowercase hex characters"),
    (v.cloudflare_zone_id, "0123456789ABCDEF0123456789ABCDEF", "must be a Cloudflare zone id"),
    (v.cloudflare_zone_id, "0123456789abcdef0123456789abcde", "must be a Cloudflare zone id"),
    (v.cloudflare_account_id, "acct", "must be a Cloudflare account id: 32 lowercase hex characters"),
    (
        v.route53_zone_id,
        "zone-1",
        "must be a hosted zone id such as Z0123456789ABCDEFGHIJ (upper-case letters and digits, at most 32)",
    ),
    (v.route53_zone_id, "z0123456789abcdefghij", "must be a hosted zone id"),
    (v.route53_zone_id, "/hostedzone/Z0123456789ABCDEFGHIJ", "must be a hosted zone id"),
    (v.route53_zone_id, "Z" * 33, "at most 32"),
    (v.route53_zone_id, "", "must be a hosted zone id"),
]


@pytest.mark.parametrize(
    ("check", "value", "expected"), ACCEPTED, ids=[f"{c.__name__}:{value[:24]}" for c, value, _ in ACCEPTED]
)
def test_valid_names_and_ids_are_accepted(check: Callable[[str], str], value: str, expected: str) -> None:
    assert check(value) == expected


@pytest.mark.parametrize(
    ("check", "value", "message"), REFUSED, ids=[f"{c.__name__}:{value[:24]}" for c, value, _ in REFUSED]
)
def test_invalid_names_and_ids_are_refused_saying_what_is_allowed(
    check: Callable[[str], str], value: str, message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        check(value)
    assert message in str(caught.value)


def test_the_watcher_config_uses_the_shared_rules() -> None:
    """The same refusal, word for word, through the watcher's config file."""
    with pytest.raises(ValueError, match="must be a hosted zone id such as"):
        Route53Dns.model_validate({"backend": "route53", "hostedZoneId": "Z" * 33})
    assert Route53Dns.model_validate({"backend": "route53", "hostedZoneId": "K8VANQW3JPQB3EGL5NCSYQ"})
    with pytest.raises(ValueError, match="must be a Cloudflare zone id: 32 lowercase hex"):
        CloudflareDns.model_validate({"backend": "cloudflare", "zoneId": "ABC", "tokenSecret": "t"})
