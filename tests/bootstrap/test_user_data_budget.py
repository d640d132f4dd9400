"""Every node's user data, as its provider receives it, within USER_DATA_BUDGET (60 %) of the
provider's limit: DigitalOcean counts the text (64 KiB), Linode the base64 it receives (the
document is gzipped whole first), AWS the gzip bytes (16 KiB). Checked for every stack file in the
repo with every failover mode, proxied and DNS-only, Debian 12 and 13, and for every renderer
variant (app kinds, the lab's options, everything on). Sizes are printed (`pytest -s`)."""

from __future__ import annotations

import base64
import gzip
import warnings
from pathlib import Path

import pytest
import yaml

from infra.bootstrap import render_user_data
from infra.bootstrap.parts import PACK_ABOVE, decoded_files, readable, strip_comments
from infra.bootstrap.render import (
    USER_DATA_BUDGET,
    digitalocean_document,
    digitalocean_user_data,
    linode_user_data,
    node_parts,
    provider_user_data_size,
)
from infra.constants import USER_DATA_LIMITS
from infra.plan.runner import reveal, run_plan
from tests.bootstrap.bootstrap_specs import make_spec
from tests.bootstrap.bootstrap_variants import all_variants, everything_on
from tests.policy.policy_harness import (
    ACCOUNT_ID,
    PROJECT_DIR,
    ROUTE53_PLATFORM,
    ZONE_ID,
    Plans,
    _write_variant,
)

DOMAIN = [{"name": "harbour-law.co.uk", "cloudflareZoneId": ZONE_ID}]
# Every failover mode, proxied and DNS-only where the config allows it (cloudflare-lb needs
# proxied; route53 needs opsDns route53, which cannot proxy).
MODES = {
    "watchdog-dnsonly": {"failover": {"mode": "watchdog"}},
    "watchdog-proxied": {"failover": {"mode": "watchdog"}, "proxied": True, "domains": DOMAIN},
    "manual-dnsonly": {"failover": {"mode": "manual", "active": "both"}, "domains": DOMAIN},
    "manual-proxied": {"failover": {"mode": "manual", "active": "both"}, "proxied": True, "domains": DOMAIN},
    "route53-dnsonly": {
        "opsDns": "route53",
        "failover": {"mode": "route53"},
        "platformStack": "brightpixel/twinhost/prod53",
        "ttl": 300,
    },
    "cloudflarelb-proxied": {
        "failover": {"mode": "cloudflare-lb", "accountId": ACCOUNT_ID},
        "proxied": True,
        "domains": DOMAIN,
    },
    # With the database (MariaDB Galera): DigitalOcean's document then ships as one gzip MIME part.
    "watchdog-dnsonly-database": {"failover": {"mode": "watchdog"}, "database": "mariadb"},
    "cloudflarelb-proxied-database": {
        "failover": {"mode": "cloudflare-lb", "accountId": ACCOUNT_ID},
        "proxied": True,
        "domains": DOMAIN,
        "database": "mariadb",
    },
}
SITE_STACKS = sorted(
    p
    for p in PROJECT_DIR.glob("Pulumi.*.yaml")
    if yaml.safe_load(p.read_text())["config"].get("twinhost:role") == "site"
)
ALL_STACKS = sorted(PROJECT_DIR.glob("Pulumi.*.yaml"))


def received(resource) -> tuple[str, int] | None:
    """(provider, size as the provider counts it) of a planned resource's user data, read from
    the inputs the program sends, not recomputed."""
    inputs = resource.inputs
    if "metadatas" in inputs:  # Linode: the base64 string itself
        return "linode", len(reveal(inputs["metadatas"])[0]["userData"])
    if "userDataBase64" in inputs:  # EC2: the bytes after its base64 (the gzip)
        return "aws", len(base64.b64decode(reveal(inputs["userDataBase64"])))
    if "userData" in inputs:  # DigitalOcean: the text
        return "digitalocean", len(reveal(inputs["userData"]).encode())
    return None


def check(label: str, plan) -> list[str]:
    over, seen = [], 0
    for resource in plan.resources:
        found = received(resource)
        if found is None:
            continue
        seen += 1
        provider, size = found
        limit = USER_DATA_LIMITS[provider]
        print(f"{label:42} {provider:13} {size:6d} B  {100 * size / limit:5.1f} % of {limit}")
        if size > USER_DATA_BUDGET * limit:
            over.append(f"{label} {provider}: {size} B > {USER_DATA_BUDGET:.0%} of {limit}")
    assert seen, f"{label}: no user data found"
    return over


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> Plans:
    return Plans(tmp_path_factory.mktemp("budget-stacks"))


@pytest.mark.parametrize("stack", ALL_STACKS, ids=lambda p: p.name)
def test_every_stack_file_fits_the_budget(plans: Plans, stack: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert check(stack.name, plans.shipped(stack.name.split(".")[1])) == []


@pytest.mark.parametrize("debian", [12, 13])
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("stack", SITE_STACKS, ids=lambda p: p.name)
def test_every_failover_mode_and_release_fits_the_budget(
    plans: Plans, stack: Path, mode: str, debian: int
) -> None:
    path = plans.scratch / f"Pulumi.{stack.name.split('.')[1]}{mode.replace('-', '')}{debian}.yaml"
    _write_variant(stack, path, {**MODES[mode], "debian": debian})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert check(f"{stack.name} {mode} debian{debian}", plans.file(path)) == []


# The platform variants the tests build (tests/unit/test_platform.py, tests/unit/
# test_watcher_delivery.py): the redirector's user data, which EC2 counts gzipped.
PLATFORM_VARIANTS = {
    "debian13-amd64": {"aws": {"region": "eu-west-1", "instanceType": "t3.nano"}, "debian": 13},
    "webhook": {"notifyWebhook": {"secure": "v1:AAAA"}},
    "no-sites": {"sites": [], "watcherDnsToken": None},
    "route53": ROUTE53_PLATFORM,
}


@pytest.mark.parametrize("variant", sorted(PLATFORM_VARIANTS))
def test_every_platform_variant_fits_the_budget(plans: Plans, variant: str) -> None:
    path = plans.scratch / f"Pulumi.platform{variant.replace('-', '')}.yaml"
    _write_variant(PROJECT_DIR / "Pulumi.prod.yaml", path, PLATFORM_VARIANTS[variant])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert check(f"platform {variant}", plans.file(path)) == []


def test_the_lab_redirector_fits_the_budget() -> None:
    """The lab's profile adds its CA root, the S3/SSM stand-in's credentials and two backends."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from twinhost_lab.lab import lab_profile
    from twinhost_lab.layout import Layout
    from twinhost_lab.services import make_lab_ca

    layout = Layout()
    public = Ed25519PrivateKey.generate().public_key()
    key = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    profile = lab_profile(layout, make_lab_ca(layout.host_address).cert_pem, key + " lab")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        plan = run_plan(PROJECT_DIR / f"Pulumi.{layout.platform_stack}.yaml", lab=profile)
    assert check("platform, the lab's profile", plan) == []


def test_every_renderer_variant_fits_the_budget(keys) -> None:
    variants = {
        **all_variants(),
        **{
            f"everything-on-{p}-{app}": {**everything_on(p), "app": app}
            for p in ("digitalocean", "linode")
            for app in ("demo", "container", "deb", "command")
        },
    }
    over = []
    for name, kwargs in variants.items():
        spec = make_spec(keys=keys, **kwargs)
        size = provider_user_data_size(spec.provider, render_user_data(spec))
        limit = USER_DATA_LIMITS[spec.provider]
        print(f"{name:42} {size:6d} B  {100 * size / limit:5.1f} % of {limit}")
        if size > USER_DATA_BUDGET * limit:
            over.append(name)
    assert over == []


@pytest.mark.parametrize("provider", ["digitalocean", "linode"])
def test_cloud_init_gets_every_file_byte_for_byte(provider: str, keys) -> None:
    """Packing changes how files travel, never what lands: decoded, each entry is its file, and
    the rule is the one in the engine (above PACK_ABOVE bytes: gz+b64, unless gzipped whole:
    Linode's always, DigitalOcean's when its packed text is above the budget)."""
    spec = make_spec(keys=keys, **everything_on(provider))
    text = render_user_data(spec)
    entries = decoded_files(yaml.safe_load(text))
    files = node_parts(spec).files
    assert [e["path"] for e in entries] == [f.path for f in files]
    gzipped_whole = provider == "linode" or len(text.encode()) > USER_DATA_BUDGET * USER_DATA_LIMITS[provider]
    for entry, item in zip(entries, files, strict=True):
        # Every file loses its comment-only lines (`compact`; `#!` lines and secret files ship
        # whole).
        expected = item.content if item.secret else strip_comments(item.content)
        assert entry["content"] == expected, item.path
        packed = not gzipped_whole and len(expected.encode()) > PACK_ABOVE
        assert (entry.get("shipped_as") == "gz+b64") == packed, item.path
    assert any(e.get("shipped_as") for e in entries) == (not gzipped_whole)
    assert yaml.safe_load(readable(text))["write_files"] == entries


def test_a_digitalocean_document_gzipped_whole_keeps_its_files_plain(keys) -> None:
    """Above the budget even packed, DigitalOcean's document goes gzipped whole into a MIME part:
    gzip over gz+b64 files would gain little, so none is packed, and the part is the smaller."""
    spec = make_spec(keys=keys, database=True, proxied=True)
    text = render_user_data(spec)
    user_data = digitalocean_user_data(text)
    assert user_data.startswith("Content-Type: multipart/mixed")
    assert digitalocean_document(user_data) == text
    entries = decoded_files(yaml.safe_load(text))
    assert entries and not any(e.get("shipped_as") for e in entries)
    assert len(user_data.encode()) <= USER_DATA_BUDGET * USER_DATA_LIMITS["digitalocean"]


def test_linode_gets_the_gzipped_document_in_base64() -> None:
    text = render_user_data(make_spec("linode"))
    encoded = linode_user_data(text)
    assert gzip.decompress(base64.b64decode(encoded)).decode() == text
    assert linode_user_data(text) == encoded  # reproducible: no timestamp, no spurious diff
    assert len(encoded) == provider_user_data_size("linode", text) < len(text.encode())
