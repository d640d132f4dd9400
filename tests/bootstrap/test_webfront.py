"""The web front: nginx -t by Debian 12's and 13's nginx, and the TLS profile it declares."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from infra.bootstrap.webfront import CERTS_STATUS, cloudflare_ranges, failover_name
from tests.bootstrap.bootstrap_debroot import chroot, write_fresh
from tests.bootstrap.bootstrap_nodes import free_port, install, rendered_files, scratch_root
from tests.bootstrap.bootstrap_specs import make_spec, self_signed

NGINX_FILES = [
    "/etc/nginx/conf.d/twinhost.conf",
    "/etc/nginx/twinhost/proxy.conf",
    "/etc/nginx/twinhost/upstream.conf",
    "/etc/nginx/twinhost/https.conf",
]
CONF = "/etc/nginx/conf.d/twinhost.conf"
# The site's TLS profile and locations, included by each of its servers on 443.
HTTPS = "/etc/nginx/twinhost/https.conf"
INCLUDE_HTTPS = f"include {HTTPS};"


@pytest.fixture(scope="module", params=[12, 13], ids=["debian12", "debian13"])
def nginx_root(request, tmp_path_factory) -> tuple[int, Path]:
    debian = request.param
    root = scratch_root(debian, tmp_path_factory.mktemp(f"nginx{debian}") / "root")
    names = make_spec().server_names
    cert, key = self_signed(names)
    # Proxied: the origin certificate for every name; ACME: each name's own (twinhost-certs).
    for live in ("live", *(f"live/{name}" for name in names)):
        write_fresh(root / f"etc/twinhost/tls/{live}/fullchain.pem", cert)
        write_fresh(root / f"etc/twinhost/tls/{live}/privkey.pem", key, 0o600)
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
    files = rendered_files(make_spec(proxied=proxied))
    # The site's servers take their settings from one included file (ACME: a server per name).
    conf = files[CONF].content + files[HTTPS].content
    assert all(INCLUDE_HTTPS in server for server in https_servers(files[CONF].content).values())
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
    files = rendered_files(make_spec(debian=debian))
    conf = files[CONF].content
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
    # The site's server on 80, and one on 443 per certificate (ACME: one per name).
    names = make_spec(debian=debian).server_names
    assert all(directives(s, "server_name") != ["_"] for s in named) and len(named) == 1 + len(names)
    # The handshake starts with the default server's settings: the same TLS profile (lab: sslyze)
    # as the site's servers include.
    assert all(INCLUDE_HTTPS in site for site in named[1:])
    for name in ("ssl_protocols", "ssl_ciphers", "ssl_ecdh_curve"):
        assert directives(https, name) == directives(files[HTTPS].content, name), name


def https_servers(conf: str) -> dict[str, str]:
    """The site's servers on 443 by their server_name."""
    servers = ["server {" + block for block in conf.split("\nserver {")[1:]]
    return {
        " ".join(directives(s, "server_name")): s
        for s in servers
        if "listen 443 ssl" in s and "default_server" not in s
    }


@pytest.mark.parametrize("debian", [12, 13])
def test_each_acme_name_is_served_with_its_own_certificate(debian):
    """Issue 15: one certificate per name, picked by SNI, so the failover name (what the watcher
    checks) has its own whatever the client's DNS does; same TLS settings and locations for all."""
    spec = make_spec(debian=debian)
    conf = rendered_files(spec)[CONF].content
    servers = https_servers(conf)
    assert sorted(servers) == sorted(spec.server_names)
    assert failover_name(spec) == spec.server_names[-1] == "acme-shop.ops.example"
    for name, server in servers.items():
        assert directives(server, "ssl_certificate") == [f"/etc/twinhost/tls/live/{name}/fullchain.pem"]
        assert directives(server, "ssl_certificate_key") == [f"/etc/twinhost/tls/live/{name}/privkey.pem"]
    bodies = {re.sub(r"\n\s*(server_name|ssl_certificate\w*) [^;]*;", "", s) for s in servers.values()}
    assert len(bodies) == 1, "the servers differ only in their name and certificate"
    assert INCLUDE_HTTPS in bodies.pop()
    # Port 80 still answers every name (redirects, ACME challenges).
    port80 = conf.split("listen 80;", 1)[1].split("\nserver {", 1)[0]
    assert directives(port80, "server_name") == [" ".join(spec.server_names)]


@pytest.mark.parametrize("debian", [12, 13])
def test_nginx_serves_each_name_its_own_certificate_and_refuses_other_names(debian, tmp_path):
    """The release's real nginx with the rendered config (on loopback ports): the handshake for
    each name shows that name's certificate; an unknown name gets no handshake."""
    spec = make_spec(debian=debian)
    root = scratch_root(debian, tmp_path / "root")
    install(root, rendered_files(spec), NGINX_FILES)
    served = {}
    for name in spec.server_names:
        cert, key = self_signed((name,))
        served[name] = ssl.PEM_cert_to_DER_cert(cert)
        write_fresh(root / f"etc/twinhost/tls/live/{name}/fullchain.pem", cert)
        write_fresh(root / f"etc/twinhost/tls/live/{name}/privkey.pem", key, 0o600)
    port = free_port()
    conf = root / CONF.lstrip("/")
    text = re.sub(r"\n\s*listen \[::\]:\d+[^;]*;", "", conf.read_text())
    text = text.replace("listen 443 ", f"listen 127.0.0.1:{port} ")
    write_fresh(conf, text.replace("listen 80", f"listen 127.0.0.1:{free_port()}"))
    (root / "etc/nginx/sites-enabled/default").unlink(missing_ok=True)
    server = subprocess.Popen(
        ["chroot", str(root), "/usr/sbin/nginx", "-g", "daemon off;"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the certificate is compared byte for byte below

    def certificate_for(name: str) -> bytes | None:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
            context.wrap_socket(sock, server_hostname=name) as tls,
        ):
            return tls.getpeercert(binary_form=True)

    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            assert server.poll() is None, server.communicate()[0]
            time.sleep(0.1)
        for name, der in served.items():
            assert certificate_for(name) == der, name
        with pytest.raises(ssl.SSLError):
            certificate_for("not-ours.example")
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_proxied_names_share_the_origin_certificate(keys):
    spec = make_spec(proxied=True, keys=keys)
    servers = https_servers(rendered_files(spec)[CONF].content)
    assert list(servers) == [" ".join(spec.server_names)]
    (server,) = servers.values()
    assert directives(server, "ssl_certificate") == ["/etc/twinhost/tls/live/fullchain.pem"]
    assert directives(server, "ssl_certificate_key") == ["/etc/twinhost/tls/live/privkey.pem"]


def test_certs_script_knows_the_failover_name_and_reports_where_twinhost_expects():
    spec = make_spec()
    files = rendered_files(spec)
    env = files["/etc/twinhost/certs.env"].content
    assert f"FAILOVER_NAME={spec.server_names[-1]}\n" in env
    assert f'SERVER_NAMES="{" ".join(spec.server_names)}"\n' in env
    script = files["/usr/local/sbin/twinhost-certs"].content
    assert f"STATUS=${{TWINHOST_CERTS_STATUS:-{CERTS_STATUS}}}" in script


def test_debian_13_offers_the_post_quantum_hybrid_first():
    files = rendered_files(make_spec(debian=13))
    conf = files[CONF].content + files[HTTPS].content
    assert set(directives(conf, "ssl_ecdh_curve")) == {"X25519MLKEM768:X25519:prime256v1:secp384r1"}


def test_health_is_passed_through_to_the_app_over_https():
    files = rendered_files(make_spec())
    assert all(INCLUDE_HTTPS in server for server in https_servers(files[CONF].content).values())
    assert re.search(
        r"location = /health \{(\s*#[^\n]*)*\s*if \(-f /run/twinhost/shared-write-failed\) \{\s*return 503;"
        r"\s*\}\s*proxy_pass http://twinhost_app;",
        files[HTTPS].content,
    )


def test_every_health_location_fails_while_the_shared_volume_refuses_writes():
    """The write probe's flag (twinhost-health-probe) fails /health on 80 and 443 alike, before
    the app is asked: the watcher drops the minority side of a partition."""
    files = rendered_files(make_spec())
    locations = re.findall(
        r"location = /health \{(.*?)proxy_pass", files[CONF].content + files[HTTPS].content, re.S
    )
    assert len(locations) == 3
    for body in locations:
        assert re.search(r"if \(-f /run/twinhost/shared-write-failed\) \{\s*return 503;\s*\}", body)


def test_proxied_site_uses_origin_certificate_and_real_client_addresses(keys):
    files = rendered_files(make_spec(proxied=True, keys=keys))
    conf = files[CONF].content + files[HTTPS].content
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
