"""Rule: DNS-only records have a TTL of 60..300 s (client apex records excepted); proxied records
use the automatic TTL."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from infra.cli import main
from tests.policy.policy_harness import Plans, resource_args, violations
from twinhost_policy.rules import (
    CLOUDFLARE_DNS_RECORD,
    CLOUDFLARE_LOAD_BALANCER,
    ROUTE53_RECORD,
    validate_dns_ttl,
)

PROJECT_DIR = Path(__file__).resolve().parents[2]
RECORD_TYPES = (CLOUDFLARE_DNS_RECORD, ROUTE53_RECORD, CLOUDFLARE_LOAD_BALANCER)


@pytest.mark.parametrize("stack", ["harbourlaw", "proxied", "cloudflarelb", "manualboth", "route53"])
def test_program_records_have_allowed_ttls(plans: Plans, stack: str) -> None:
    plan = plans.shipped(stack) if stack == "harbourlaw" else plans.variant(stack)
    records = [r for r in plan.resources if r.type in RECORD_TYPES]
    assert records
    for record in records:
        assert violations(validate_dns_ttl, resource_args(record)) == [], record.name


def _failover_record(plans: Plans):
    return next(
        r for r in plans.shipped("harbourlaw").of_type(CLOUDFLARE_DNS_RECORD) if r.inputs.get("type") == "A"
    )


def test_failover_record_ttl_over_300_is_refused(plans: Plans) -> None:
    # 600 s is too slow for a failover to be seen (the stack config refuses it too, below).
    found = violations(
        validate_dns_ttl, resource_args(_failover_record(plans), edit=lambda i: i.update(ttl=600))
    )
    assert len(found) == 1 and "TTL 600" in found[0]


TTL_TABLE = (1, 30, 59, 60, 61, 120, 299, 300, 301, 600, 3600, 86400, 100000)


def test_new_site_refuses_exactly_the_ttls_the_policy_refuses(plans: Plans, tmp_path: Path, capsys) -> None:
    """`new-site --ttl N` writes a stack only when the pack would pass its failover record."""
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    # twinhost:ttl lands on a Cloudflare record or a Route 53 record (opsDns): the pack refuses a
    # value when it refuses it on either (ttl 1 is Cloudflare's "automatic", but 1 s on Route 53).
    records = (
        _failover_record(plans),
        next(r for r in plans.variant("route53").of_type(ROUTE53_RECORD) if r.inputs.get("type") == "A"),
    )
    disagreements = []
    for ttl in TTL_TABLE:
        policy_refuses = any(
            violations(validate_dns_ttl, resource_args(record, edit=lambda i, ttl=ttl: i.update(ttl=ttl)))
            for record in records
        )
        code = main(
            [
                "--project-dir",
                str(tmp_path),
                "new-site",
                f"ttl{ttl}",
                "--domain",
                f"ttl{ttl}.example",
                "--ttl",
                str(ttl),
                "--no-watch",
            ]
        )
        written = (tmp_path / f"Pulumi.ttl{ttl}.yaml").exists()
        assert (code == 0) == written
        if policy_refuses == written:
            disagreements.append(
                (
                    ttl,
                    "policy refuses" if policy_refuses else "policy passes",
                    "new-site wrote it" if written else "new-site refused it",
                )
            )
    capsys.readouterr()
    assert disagreements == []


def test_plan_refuses_a_ttl_the_policy_refuses(tmp_path: Path, capsys) -> None:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.harbourlaw.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    path = tmp_path / "Pulumi.harbourlaw.yaml"
    path.write_text(
        path.read_text().replace(
            "  twinhost:primary: digitalocean\n", "  twinhost:primary: digitalocean\n  twinhost:ttl: 600\n"
        )
    )
    assert "twinhost:ttl: 600" in path.read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        code = main(
            [
                "--project-dir",
                str(tmp_path),
                "plan",
                "--stack",
                "harbourlaw",
                "--build-dir",
                str(tmp_path / "build"),
            ]
        )
    assert code == 2
    assert "twinhost:ttl" in capsys.readouterr().err


def test_route53_record_ttl_under_60_is_refused(plans: Plans) -> None:
    record = next(r for r in plans.variant("route53").of_type(ROUTE53_RECORD) if r.inputs.get("type") == "A")
    found = violations(validate_dns_ttl, resource_args(record, edit=lambda i: i.update(ttl=30)))
    assert len(found) == 1 and "TTL 30" in found[0]


def test_client_apex_record_may_keep_a_long_ttl(plans: Plans) -> None:
    # manualboth keeps the client's zone in the agency account: the stack writes www and the apex.
    plan = plans.variant("manualboth")
    apex = next(r for r in plan.of_type(CLOUDFLARE_DNS_RECORD) if r.inputs.get("name") == "harbour-law.co.uk")
    assert apex.inputs["ttl"] > 300
    assert violations(validate_dns_ttl, resource_args(apex)) == []
    # ...but a www name with that TTL is refused: it follows the failover.
    www = next(
        r for r in plan.of_type(CLOUDFLARE_DNS_RECORD) if r.inputs.get("name") == "www.harbour-law.co.uk"
    )
    assert violations(validate_dns_ttl, resource_args(www, edit=lambda i: i.update(ttl=3600)))


def test_proxied_record_with_a_custom_ttl_is_refused(plans: Plans) -> None:
    plan = plans.variant("proxied")
    record = next(r for r in plan.of_type(CLOUDFLARE_DNS_RECORD) if r.inputs.get("proxied"))
    found = violations(validate_dns_ttl, resource_args(record, edit=lambda i: i.update(ttl=120)))
    assert len(found) == 1 and "automatic TTL" in found[0]
