"""User data size against the providers' limits, and where secrets may appear."""

from __future__ import annotations

import pytest
import yaml

from infra.bootstrap import USER_DATA_LIMITS, render_user_data, secret_values
from infra.bootstrap.parts import decoded_files
from infra.bootstrap.render import node_parts, provider_user_data_size
from tests.bootstrap.bootstrap_specs import make_spec
from tests.bootstrap.bootstrap_variants import all_variants, everything_on
from tests.bootstrap.test_golden import redirector_user_data


@pytest.mark.parametrize("app", ["demo", "container", "deb", "command"])
@pytest.mark.parametrize("provider", ["digitalocean", "linode"])
def test_user_data_fits_the_provider_limit_with_every_option_on(provider, app, keys):
    size = provider_user_data_size(
        provider, render_user_data(make_spec(keys=keys, **{**everything_on(provider), "app": app}))
    )
    limit = USER_DATA_LIMITS[provider]
    print(f"{provider} {app} everything on: {size} bytes of {limit} (as the provider counts)")
    assert size <= limit, f"{size} bytes > {limit}"


def test_redirector_hardening_fits_aws_16_kib_with_room_to_spare():
    size = len(redirector_user_data().encode())
    print(f"redirector hardening only: {size} bytes of {USER_DATA_LIMITS['aws']}")
    # The redirector adds its own nginx and ACME parts: leave it at least 4 KiB.
    assert size <= USER_DATA_LIMITS["aws"] - 4096


def test_every_variant_fits_its_provider(keys):
    for name, kwargs in all_variants().items():
        spec = make_spec(keys=keys, **kwargs)
        assert (
            provider_user_data_size(spec.provider, render_user_data(spec)) <= USER_DATA_LIMITS[spec.provider]
        ), name


def test_a_nodes_secrets_never_appear_in_its_peers_user_data(keys):
    for kwargs in (everything_on("digitalocean"), {"provider": "digitalocean"}):
        a = make_spec(keys=keys, **kwargs)
        b = make_spec(keys=keys, **{**kwargs, "provider": "linode"})
        peer_text = render_user_data(b)
        # Packed (gz+b64) files are decoded first: a secret must be found in them too.
        peer_files = "".join(f["content"] for f in decoded_files(yaml.safe_load(peer_text)))
        assert a.tinc_private_key_pem.strip() not in peer_text
        assert a.tinc_private_key_pem.strip() not in peer_files
        assert keys.tinc_private["linode"].strip() in peer_files  # its own key is there


def test_secrets_appear_only_in_files_marked_secret(keys):
    spec = make_spec(keys=keys, **everything_on("digitalocean"))
    parts = node_parts(spec)
    for secret in secret_values(spec):
        holders = [f.path for f in parts.files if secret in f.content]
        assert holders, secret[:20]
        assert all(f.secret for f in parts.files if secret in f.content), holders
        assert not any(secret in str(c) for c in (*parts.runcmd, *parts.bootcmd))
        assert not any(secret in str(v) for v in parts.config.values())


def test_secret_files_are_readable_by_root_only(keys):
    parts = node_parts(make_spec(keys=keys, **everything_on("digitalocean")))
    secret_files = [f for f in parts.files if f.secret]
    assert {f.path for f in secret_files} >= {
        "/etc/tinc/acme_shop/rsa_key.priv",
        "/etc/twinhost/tls/live/privkey.pem",
        "/etc/twinhost/app/environment",
    }
    for item in secret_files:
        assert item.mode == 0o600 and item.owner == "root:root", item.path


def test_spec_repr_never_shows_a_secret(keys):
    spec = make_spec(keys=keys, **everything_on("digitalocean"))
    text = repr(spec)
    for secret in secret_values(spec):
        assert secret not in text


def test_app_secrets_reach_the_container_by_name_only(keys):
    spec = make_spec(keys=keys, app="container")
    unit = next(f for f in node_parts(spec).files if f.path.endswith("twinhost-app@.service"))
    assert "--env SHOP_API_TOKEN " in unit.content
    assert keys.app_secret not in unit.content


@pytest.mark.parametrize("provider", ["digitalocean", "linode"])
def test_secrets_in_the_rendered_user_data_sit_only_in_secret_files(provider, keys):
    """The same check on the document the provider gets, packed files decoded: each secret is
    found, and only in files that are 0600 root's (the secret ones)."""
    spec = make_spec(keys=keys, **everything_on(provider))
    files = decoded_files(yaml.safe_load(render_user_data(spec)))
    secret_paths = {f.path for f in node_parts(spec).files if f.secret}
    for secret in secret_values(spec):
        holders = {f["path"] for f in files if secret in f["content"]}
        assert holders and holders <= secret_paths, (secret[:20], holders)
