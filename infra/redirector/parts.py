"""The redirector's user data parts: pure functions from a `RedirectorSpec` to a `Parts`.

- `base_part`: what the redirector adds to the shared hardening's first boot (apt retries, a
  reboot when the first-boot upgrade needs one). Hostname, locale, apt sources, upgrades, the
  admin user, sshd, ufw, fail2ban come from `infra.bootstrap.hardening_parts`.
- `apex_ask_part`: the registry check Caddy asks (`twinhost-apex-ask`): its config and unit. The
  script itself (`ASK_SCRIPT`) comes with the watcher's code archive from S3 (infra.watcher_install).
- `caddy_part`: Debian's caddy with the redirector's Caddyfile.

They are built with the site nodes' engine (`infra.bootstrap.parts`); files come from
`cloudinit/redirector/`, which mirrors their target paths.
"""

from __future__ import annotations

import json

from infra.bootstrap.parts import File, Parts, static, strip_comments, template
from infra.redirector.spec import RedirectorSpec
from infra.watcher_install import ASK_SCRIPT as ASK_SCRIPT  # where the unit runs it (from S3)

CADDYFILE = "/etc/caddy/redirector.Caddyfile"
CADDY_DROPIN = "/etc/systemd/system/caddy.service.d/twinhost.conf"
ACME_CA_ROOT = "/etc/twinhost/acme-ca-root.pem"
ASK_CONFIG = "/etc/twinhost/apex-ask.json"
ASK_UNIT = "/etc/systemd/system/twinhost-apex-ask.service"
ASK_NETWORK_DROPIN = "/etc/systemd/system/twinhost-apex-ask.service.d/network.conf"
APT_RETRIES = "/etc/apt/apt.conf.d/80twinhost-retries"
# The redirector's files in cloudinit/ (`static(MACHINE + ASK_UNIT)`: cloudinit/redirector/etc/...).
MACHINE = "redirector"


def base_part(spec: RedirectorSpec) -> Parts:
    """On top of the shared hardening (which sets hostname, locale, apt, package upgrade)."""
    return Parts(
        name="base",
        # The Elastic IP is associated seconds after launch, which changes the public address
        # mid-download if apt is already running: retry instead of failing the first boot.
        # (A file, not cloud-config `apt.conf`: the hardening owns the `apt` key.)
        files=(File(APT_RETRIES, 'Acquire::Retries "5";\n'),),
        config={
            # An internet-facing host: the hardening upgrades to today's security fixes before
            # it serves; reboot if a kernel needs it (down for a minute, once, at creation).
            "package_reboot_if_required": True,
        },
    )


def apex_ask_part(spec: RedirectorSpec) -> Parts:
    settings = {
        "listen": "127.0.0.1",
        "port": spec.ask_port,
        "registry": spec.registry,
        "resolvers": list(spec.resolvers),
        "resolver_port": spec.resolver_port,
        "timeout": 3,
        "positive_ttl": spec.positive_cache_s,
        "negative_ttl": spec.negative_cache_s,
        "max_asks": spec.max_asks,
        "ask_window": spec.ask_window_s,
    }
    if spec.public_address:
        settings["address"] = spec.public_address
    allowed = " ".join(["localhost", *spec.resolvers])
    # With the unit's IPAddressDeny=any: loopback (Caddy) and the configured resolvers only.
    network = f"[Service]\nIPAddressAllow={allowed}\n"
    return Parts(
        name="apex-ask",
        packages=("python3-dnspython",),
        files=(
            # Not the script (ASK_SCRIPT): the refresh installs it from the release and restarts
            # the unit, which until then does not start (ConditionPathExists): no answer from
            # the check, so Caddy neither issues a certificate nor redirects (fail closed).
            File(ASK_CONFIG, json.dumps(settings, indent=2) + "\n"),
            File(ASK_UNIT, strip_comments(static(MACHINE + ASK_UNIT))),
            File(ASK_NETWORK_DROPIN, network),
        ),
        runcmd=(
            ("systemctl", "daemon-reload"),
            ("systemctl", "enable", "--now", "twinhost-apex-ask.service"),
        ),
    )


def caddy_part(spec: RedirectorSpec) -> Parts:
    acme_ca_root = ACME_CA_ROOT if (spec.issuer == "acme" and spec.acme_ca_root_pem) else None
    files = [
        File(CADDYFILE, render_caddyfile(spec, acme_ca_root=acme_ca_root)),
        File(CADDY_DROPIN, strip_comments(static(MACHINE + CADDY_DROPIN))),
    ]
    if acme_ca_root and spec.acme_ca_root_pem:
        files.append(File(ACME_CA_ROOT, spec.acme_ca_root_pem))
    return Parts(
        name="caddy",
        packages=("caddy",),
        files=tuple(files),
        # The package starts Caddy on install (with the drop-in already in place, since
        # write_files runs before packages); restart once the ask service is up as well.
        runcmd=(("systemctl", "daemon-reload"), ("systemctl", "restart", "caddy.service")),
    )


def render_caddyfile(spec: RedirectorSpec, acme_ca_root: str | None = None) -> str:
    """The redirector's Caddyfile for `spec` (also used by the tests to run the real Caddy)."""
    if not spec.acme_challenges:
        raise ValueError("acme_challenges must allow http-01, tls-alpn-01 or both")
    return strip_comments(
        template(
            MACHINE + CADDYFILE + ".j2",
            admin=spec.admin,
            http_port=spec.http_port,
            https_port=spec.https_port,
            bind=spec.bind,
            acme_email=spec.acme_email,
            issuer=spec.issuer,
            acme_directory=spec.acme_directory,
            acme_ca_root=acme_ca_root,
            acme_challenges=spec.acme_challenges,
            ask_port=spec.ask_port,
        )
    )
