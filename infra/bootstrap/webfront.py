"""The TLS web front: Debian's nginx in front of the app.

Why nginx rather than Caddy: nginx is in Debian 12 and 13 and patched by Debian's security team
through the same unattended upgrades as the rest of the node; every TLS knob of Mozilla's
intermediate profile (protocols, ECDHE AEAD suites, the curve list, HSTS, stapling) is a plain
directive; and `nginx -t` lets both the tests and `twinhost-deploy` check a configuration before
it is used. Caddy would bring its own ACME client, whose shared storage would have to be proven
on GlusterFS, and Debian 12's caddy (2.6) lags upstream.

Certificates:
- proxied sites: the Cloudflare Origin CA certificate and key from the spec (Cloudflare's proxy
  is the only client, and it trusts that CA);
- DNS-only sites: ACME with Debian's certbot (http-01, webroot), one certificate per name, which
  nginx picks by SNI. The failover name (the last server name, what the watcher checks) is issued
  as soon as it points at the pair, without waiting for the client's DNS; a client name that does
  not point at the pair (no www CNAME yet, or the client left) is skipped and reported in
  `CERTS_STATUS`, and issued by a later run once it does. The certificate store and the challenge
  webroot are on the shared volume, so either node can answer a challenge and the standby serves
  the same certificates. `spec.acme_directory` selects the CA (the lab's pebble),
  `spec.extra_ca_pem` makes the node trust it. Until a name has a certificate, a self-signed one
  lets nginx start.
"""

from __future__ import annotations

from infra import catalog
from infra.bootstrap.glusterfs import HEALTH_FLAG, SHARED_DIR
from infra.bootstrap.hardening import FirewallRule
from infra.bootstrap.parts import SCRIPT_MODE, File, Parts, static, template
from infra.bootstrap.spec import NodeSpec

TLS_DIR = "/etc/twinhost/tls"
# What twinhost-certs found for each name at its last run (state, why, what nginx serves): the
# script's default path.
CERTS_STATUS = "/var/lib/twinhost/certs-status.json"
ACME_WEBROOT = f"{SHARED_DIR}/acme/webroot"
PRIVATE_KEY_MODE = 0o600
WEB_PORTS = "80,443"


def cloudflare_ranges() -> tuple[str, ...]:
    ranges = catalog.cloudflare_ranges()
    return (*ranges["ipv4"], *ranges["ipv6"])


def web_sources(spec: NodeSpec) -> tuple[str, ...]:
    """Who may reach 80/443: anyone (empty), or the given CIDRs plus the health checkers."""
    if not spec.http_sources:
        return ()
    return tuple(dict.fromkeys((*spec.http_sources, *spec.health_check_sources)))


def web_firewall_rules(spec: NodeSpec) -> tuple[FirewallRule, ...]:
    sources = web_sources(spec)
    reason = "web from Cloudflare and health checks" if sources else "web from anywhere"
    return (FirewallRule(reason, WEB_PORTS, sources=sources),)


def failover_name(spec: NodeSpec) -> str:
    """The site's failover name: the last server name (the client names come first,
    `SitePair._server_names`). The watcher's checks send it as SNI."""
    return spec.server_names[-1]


def certificates(spec: NodeSpec) -> tuple[tuple[tuple[str, ...], str], ...]:
    """(names, directory) of each certificate nginx serves: ACME, one per name (each name is
    issued on its own); the Cloudflare Origin CA certificate covers every name."""
    if spec.certificates == "acme":
        return tuple(((name,), f"{TLS_DIR}/live/{name}") for name in spec.server_names)
    return ((spec.server_names, f"{TLS_DIR}/live"),)


def webfront_parts(spec: NodeSpec, *, app_port: int) -> Parts:
    acme = spec.certificates == "acme"
    problems = []
    if not spec.server_names:
        problems.append("server_names is empty")
    if acme and not spec.acme_email:
        problems.append("certificates 'acme' needs acme_email")
    if not acme and not (spec.origin_certificate_pem and spec.origin_private_key_pem):
        problems.append(
            "certificates 'cloudflare-origin' needs origin_certificate_pem and origin_private_key_pem"
        )
    if problems:
        raise ValueError("web front: " + "; ".join(problems))

    note = (
        "From the shared volume by twinhost-certs; self-signed until issued."
        if acme
        else "The Cloudflare Origin CA certificate from the stack."
    )
    conf = template(
        "site/etc/nginx/conf.d/twinhost.conf.j2",
        proxied=spec.proxied,
        acme=acme,
        cloudflare_ranges=cloudflare_ranges(),
        server_names=spec.server_names,
        certificates=certificates(spec),
        acme_webroot=ACME_WEBROOT,
        debian=spec.debian,
        certificate_note=note,
        health_flag=HEALTH_FLAG,
    )
    env = "".join(
        (
            "# twinhost-certs settings (from the stack, at first boot).\n",
            f"CERT_MODE={'acme' if acme else 'origin'}\n",
            f'SERVER_NAMES="{" ".join(spec.server_names)}"\n',
            f"FAILOVER_NAME={failover_name(spec)}\n",
            f"ACME_EMAIL={spec.acme_email or ''}\n",
            f"ACME_DIRECTORY={spec.acme_directory}\n",
            f"SHARED_DIR={SHARED_DIR}\n",
        )
    )
    files = [
        File("/etc/nginx/conf.d/twinhost.conf", conf),
        File("/etc/nginx/twinhost/proxy.conf", static("site/etc/nginx/twinhost/proxy.conf")),
        # The TLS profile and locations, once for every server on 443 (one per name in ACME mode).
        File(
            "/etc/nginx/twinhost/https.conf",
            template(
                "site/etc/nginx/twinhost/https.conf.j2",
                acme=acme,
                debian=spec.debian,
                health_flag=HEALTH_FLAG,
            ),
        ),
        File(
            "/etc/nginx/twinhost/upstream.conf",
            template("site/etc/nginx/twinhost/upstream.conf.j2", port=app_port),
        ),
        File("/etc/twinhost/certs.env", env),
        File("/usr/local/sbin/twinhost-certs", static("site/usr/local/sbin/twinhost-certs"), SCRIPT_MODE),
    ]
    packages = ["nginx", "openssl"]
    runcmd: list[tuple[str, ...]] = [
        # Debian's default site also claims default_server on port 80.
        ("rm", "-f", "/etc/nginx/sites-enabled/default"),
        ("/usr/local/sbin/twinhost-certs",),
        ("systemctl", "enable", "nginx.service"),
        ("systemctl", "restart", "nginx.service"),
    ]
    if acme:
        packages.append("certbot")
        files += [
            File(
                "/etc/systemd/system/twinhost-certs.service",
                static("site/etc/systemd/system/twinhost-certs.service"),
            ),
            File(
                "/etc/systemd/system/twinhost-certs.timer",
                static("site/etc/systemd/system/twinhost-certs.timer"),
            ),
        ]
        runcmd += [
            # Debian's certbot.timer renews /etc/letsencrypt, which we do not use.
            ("systemctl", "disable", "--now", "certbot.timer"),
            ("systemctl", "daemon-reload"),
            ("systemctl", "enable", "--now", "twinhost-certs.timer"),
        ]
    else:
        assert spec.origin_certificate_pem and spec.origin_private_key_pem
        files += [
            File(f"{TLS_DIR}/live/fullchain.pem", spec.origin_certificate_pem.strip() + "\n"),
            File(
                f"{TLS_DIR}/live/privkey.pem",
                spec.origin_private_key_pem.strip() + "\n",
                PRIVATE_KEY_MODE,
                secret=True,
            ),
        ]
    return Parts(files=tuple(files), packages=tuple(packages), runcmd=tuple(runcmd), name="webfront")
