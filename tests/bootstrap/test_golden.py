"""Golden user data per node role. Regenerate: TWINHOST_REGEN_GOLDEN=1 pytest tests/bootstrap.

The golden files are for reading: each holds the readable copy of the user data (`readable`:
files shipped gz+b64 shown decoded, marked `shipped_as: gz+b64`), so a change to a script shows
as a diff of its lines; a change to which files are packed shows too.

The specs use FAKE_KEYS (obviously fake placeholders), so no real key is ever committed."""

from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path

import pytest

from infra.bootstrap import hardening_parts, render_parts, render_user_data
from infra.bootstrap.hardening import FirewallRule
from infra.bootstrap.parts import compact, readable
from infra.bootstrap.spec import DatabaseSpec
from tests.bootstrap.bootstrap_specs import DATABASE_PASSWORD, SITE, make_spec

GOLDEN = Path(__file__).with_name("golden")
REGENERATE = os.environ.get("TWINHOST_REGEN_GOLDEN") == "1"


def redirector_user_data() -> str:
    """What the platform's redirector would render with the reusable hardening."""
    parts = hardening_parts(
        admin_user="ops",
        ssh_keys=[make_spec().ssh_keys[0]],
        admin_cidrs=["203.0.113.0/24"],
        debian=12,
        memory_mib=512,
        open_ports=[FirewallRule("web from anywhere", "80,443")],
    )
    return render_parts(compact(parts), hostname="redirector.ops.example")


def wordpress_user_data() -> str:
    """Node A of a WordPress site (app kind `wordpress`, database: mariadb), with fake database
    TLS material so the file is stable and holds no real key."""
    fake = DatabaseSpec(
        cluster_name=f"twinhost-{SITE}",
        name=SITE.replace("-", "_"),
        user=SITE.replace("-", "_"),
        password=DATABASE_PASSWORD,
        ca_pem="-----BEGIN CERTIFICATE-----\nFAKE-DATABASE-CA\n-----END CERTIFICATE-----",
        certificate_pem="-----BEGIN CERTIFICATE-----\nFAKE-DATABASE-MEMBER\n-----END CERTIFICATE-----",
        private_key_pem="-----BEGIN PRIVATE KEY-----\nFAKE-DATABASE-MEMBER-KEY\n-----END PRIVATE KEY-----",
    )
    return render_user_data(dataclasses.replace(make_spec("digitalocean", app="wordpress"), database=fake))


ROLES = {
    "node-a-digitalocean-primary-dnsonly": lambda: render_user_data(make_spec("digitalocean")),
    "node-b-linode-secondary-dnsonly": lambda: render_user_data(make_spec("linode")),
    "node-a-digitalocean-primary-proxied-debian13": lambda: render_user_data(
        make_spec("digitalocean", debian=13, proxied=True, app="container")
    ),
    "redirector-hardening-only": redirector_user_data,
    "node-a-digitalocean-primary-wordpress": wordpress_user_data,
}


@pytest.mark.parametrize("role", sorted(ROLES))
def test_rendered_user_data_matches_golden_file(role):
    actual = readable(ROLES[role]())
    path = GOLDEN / f"{role}.yaml"
    if REGENERATE or not path.exists():
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(actual)
        if not REGENERATE:
            pytest.fail(f"{path} did not exist; written now: review and commit it")
    expected = path.read_text()
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), actual.splitlines(True), f"golden/{role}.yaml", "rendered now", n=2
            )
        )
        pytest.fail(f"user data for {role} changed (TWINHOST_REGEN_GOLDEN=1 to accept):\n{diff}")


def test_golden_files_hold_no_real_key():
    for path in GOLDEN.glob("*.yaml"):
        text = path.read_text()
        # Every PEM body in a golden file is a FAKE-... placeholder.
        bodies = [
            chunk.split("\n", 1)[1].split("-----END", 1)[0].strip() for chunk in text.split("-----BEGIN ")[1:]
        ]
        assert all(body.startswith("FAKE-") for body in bodies), (path, bodies)
