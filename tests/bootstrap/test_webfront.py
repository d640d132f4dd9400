"""The web front: nginx -t by Debian 12's and 13's nginx, and the TLS profile it declares."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.bootstrap.webfront import cloudflare_ranges
from tests.bootstrap.bootstrap_debroot import chroot, write_fresh
from tests.bootstrap.bootstrap_nodes import install, rendered_files, scratch_root
from tests.bootstrap.bootstrap_specs import make_spec, self_signed

NGINX_FILES = [
    "/etc/nginx/conf.d/twinhost.conf",
    "/etc/nginx/twinhost/proxy.conf",
    "/etc/nginx/twinhost/upstream.conf",
]
CONF = "/etc/nginx/conf.d/twinhost.conf"


@pytest.fixture(scope="module", params=[12, 13], ids=["debian12", "debian13"])
def nginx_root(request, tmp_path_factory) -> tuple[int, Path]:
    debian = request.param
    root = scratch_root(debian, tmp_path_factory.mktemp(f"nginx{debian}") / "root")
    cert, key = self_signed(("www.acme-shop.example",))
    write_fresh(root / "etc/twinhost/tls/live/fullchain.pem", cert)
    write_fresh(root / "etc/twinhost/tls/live/privkey.pem", key, 0o600)
    return debian, root


@pytest.mark.parametrize("proxied", [False, True], ids=["dnsonly-acme", "proxied-origin"])
def test_rendered_web_front_passes_nginx_t(nginx_root, proxied, keys):
    debian, root = nginx_root
    files = rendered_files(make_spec(debian=debian, proxied=proxied, keys=keys))
    install(root, files, NGINX_FILES)
    result = chroot(root, ["/usr/sbin/nginx", "-t"])
    assert result.returncode == 0, result.stderr
    # No deprecation or other warning (stapling on a certificate without OCSP is the one
    # expected notice, and only in ACME mode).
    warnings = [
        line for line in result.stderr.splitlines() if "[warn]" in line and "ssl_stapling" not in line
    ]
    assert not warnings, warnings


def directives(conf: str, name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^\s*{name}\s+([^;]*);", conf, re.M)]


@pytest.mark.parametrize("proxied", [False, True])
def test_tls_follows_mozilla_intermediate(proxied):
    conf = rendered_files(make_spec(proxied=proxied))[CONF].content
    assert set(directives(conf, "ssl_protocols")) == {"TLSv1.2 TLSv1.3"}
    assert set(directives(conf, "ssl_ecdh_curve")) == {"X25519:prime256v1:secp384r1"}
    (ciphers,) = set(directives(conf, "ssl_ciphers"))
    for suite in ciphers.split(":"):
        assert suite.startswith("ECDHE-") and ("GCM" in suite or "CHACHA20-POLY1305" in suite), suite
    assert directives(conf, "ssl_prefer_server_ciphers") == ["off"]
    assert directives(conf, "ssl_session_tickets") == ["off"]
    assert directives(conf, "add_header") == ['Strict-Transport-Security "max-age=63072000" always']


def test_http_redirects_to_https_but_serves_acme_challenges_and_health():
    conf = rendered_files(make_spec(proxied=False))[CONF].content
    port80 = conf.split("listen 80;", 1)[1].split("\nserver {", 1)[0]  # the site's named server
    assert "return 301 https://$host$request_uri;" in port80
    assert "location ^~ /.well-known/acme-challenge/" in port80
    assert "root /srv/shared/acme/webroot;" in port80
    assert "location = /health" in port80


@pytest.mark.parametrize("debian", [12, 13])
def test_unknown_names_are_refused_by_a_catch_all_server(debian):
    """Issue 15: only the site's names reach the app. The default servers refuse any other Host
    (444; /health stays answerable by address) and any other SNI (no handshake)."""
    conf = rendered_files(make_spec(debian=debian))[CONF].content
    servers = ["server {" + block for block in conf.split("\nserver {")[1:]]
    defaults = [s for s in servers if "default_server" in s]
    assert len(defaults) == 2
    http, https = defaults
    assert directives(http, "server_name") == ["_"] and directives(https, "server_name") == ["_"]
    assert "return 444;" in http and "location = /health" in http
    assert "return 301" not in http and "acme-challenge" not in http
    assert directives(https, "ssl_reject_handshake") == ["on"]
    assert "proxy_pass" not in https and "ssl_certificate" not in https
    named = [s for s in servers if "default_server" not in s]
    assert all(directives(s, "server_name") != ["_"] for s in named) and len(named) == 2
    # The handshake starts with the default server's settings: the same TLS profile (lab: sslyze).
    for name in ("ssl_protocols", "ssl_ciphers", "ssl_ecdh_curve"):
        assert directives(https, name) == directives(named[1], name), name


def test_debian_13_offers_the_post_quantum_hybrid_first():
    conf = rendered_files(make_spec(debian=13))[CONF].content
    assert set(directives(conf, "ssl_ecdh_curve")) == {"X25519MLKEM768:X25519:prime256v1:secp384r1"}


def test_health_is_passed_through_to_the_app_over_https():
    conf = rendered_files(make_spec())[CONF].content
    tls = conf.split("listen 443", 1)[1]
    assert re.search(r"location = /health \{\s*proxy_pass http://twinhost_app;", tls)


def test_proxied_site_uses_origin_certificate_and_real_client_addresses(keys):
    files = rendered_files(make_spec(proxied=True, keys=keys))
    conf = files[CONF].content
    assert "acme-challenge" not in conf and "ssl_stapling" not in conf
    assert set(directives(conf, "set_real_ip_from")) == set(cloudflare_ranges())
    assert directives(conf, "real_ip_header") == ["CF-Connecting-IP"]
    assert files["/etc/twinhost/tls/live/privkey.pem"].mode == 0o600
    assert files["/etc/twinhost/tls/live/fullchain.pem"].content.strip() == keys.origin_cert.strip()


def test_acme_store_and_webroot_are_on_the_shared_volume():
    files = rendered_files(make_spec(proxied=False))
    env = files["/etc/twinhost/certs.env"].content
    assert "CERT_MODE=acme" in env and "SHARED_DIR=/srv/shared" in env
    script = files["/usr/local/sbin/twinhost-certs"].content
    assert "ACME=${SHARED_DIR}/acme" in script
    assert '--config-dir "$ACME/config"' in script and '--webroot-path "$ACME/webroot"' in script
    # nginx never reads the shared volume for its certificate: it must start without it.
    assert "/srv/shared" not in "".join(directives(files[CONF].content, "ssl_certificate"))


def test_lab_can_point_acme_at_its_own_ca(keys):
    files = rendered_files(make_spec(lab=True, keys=keys))
    assert (
        "ACME_DIRECTORY=https://acme-v02.api.letsencrypt.org/directory"
        in files["/etc/twinhost/certs.env"].content
    )
    from infra.bootstrap.render import base_config

    assert (
        base_config(make_spec(lab=True, keys=keys))["ca_certs"]["trusted"][0].strip() == keys.extra_ca.strip()
    )
