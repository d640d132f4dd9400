"""The redirector's user data parts: pure functions from a `RedirectorSpec` to a `Part`.

- `base_part`: what the redirector adds to the shared hardening's first boot (apt retries, a
  reboot when the first-boot upgrade needs one). Hostname, locale, apt sources, upgrades, the
  admin user, sshd, ufw, fail2ban come from `infra.bootstrap.hardening_parts`.
- `admin_part`: the pre-hardening stand-in (admin user + sshd drop-in), kept only for callers
  that render the redirector without the shared hardening; the platform no longer uses it.
- `apex_ask_part`: the registry check Caddy asks (`twinhost-apex-ask`), its config and unit.
- `caddy_part`: Debian's caddy with the redirector's Caddyfile.

Files come from `cloudinit/redirector/`, which mirrors their target paths.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jinja2

from infra.redirector.cloud_config import Part, WriteFile
from infra.redirector.spec import RedirectorSpec

SOURCE_ROOT = Path(__file__).resolve().parents[2] / "cloudinit" / "redirector"

CADDYFILE = "/etc/caddy/redirector.Caddyfile"
CADDY_DROPIN = "/etc/systemd/system/caddy.service.d/twinhost.conf"
ACME_CA_ROOT = "/etc/twinhost/acme-ca-root.pem"
ASK_SCRIPT = "/usr/local/bin/twinhost-apex-ask"
ASK_CONFIG = "/etc/twinhost/apex-ask.json"
ASK_UNIT = "/etc/systemd/system/twinhost-apex-ask.service"
ASK_NETWORK_DROPIN = "/etc/systemd/system/twinhost-apex-ask.service.d/network.conf"
SSHD_DROPIN = "/etc/ssh/sshd_config.d/20-twinhost-redirector.conf"


@cache
def source(target_path: str) -> str:
    """The repo's copy of a file that lands at `target_path` on the redirector."""
    return (SOURCE_ROOT / target_path.lstrip("/")).read_text(encoding="utf-8")


def shipped(text: str) -> str:
    """A config file as it lands on the node: without its full-line `#` comments.

    The comments say why each directive is there; they stay in the repo, where changes are
    reviewed. EC2's 16 KB user data limit is shared by every part, so they do not ship.
    Only for formats where a line starting with `#` is a comment (Caddyfile, systemd, sshd).
    """
    kept: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if not line.strip() and (not kept or not kept[-1].strip()):
            continue  # no leading or doubled blank lines where comments were
        kept.append(line)
    return "\n".join(kept).strip("\n") + "\n"


def _template(target_path: str) -> jinja2.Template:
    environment = jinja2.Environment(
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined, autoescape=False,
    )
    return environment.from_string(source(target_path + ".j2"))


APT_RETRIES = "/etc/apt/apt.conf.d/80twinhost-retries"


def base_part(spec: RedirectorSpec) -> Part:
    """On top of the shared hardening (which sets hostname, locale, apt, package upgrade)."""
    return Part(
        "base",
        # The Elastic IP is associated seconds after launch, which changes the public address
        # mid-download if apt is already running: retry instead of failing the first boot.
        # (A file, not cloud-config `apt.conf`: the hardening owns the `apt` key.)
        files=(WriteFile(APT_RETRIES, 'Acquire::Retries "5";\n'),),
        other={
            # An internet-facing host: the hardening upgrades to today's security fixes before
            # it serves; reboot if a kernel needs it (down for a minute, once, at creation).
            "package_reboot_if_required": True,
        },
    )


def admin_part(spec: RedirectorSpec) -> Part:
    """The admin user (keys only) and a hardened sshd. See the module docstring."""
    return Part(
        "admin",
        files=(WriteFile(SSHD_DROPIN, shipped(source(SSHD_DROPIN)), "0644"),),
        commands=(("systemctl", "reload", "ssh"),),
        other={
            "users": [{
                "name": spec.admin_user,
                "groups": ["sudo"],
                "shell": "/bin/bash",
                "lock_passwd": True,
                # No password exists, so sudo must not ask for one; SSH keys are the gate.
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "ssh_authorized_keys": list(spec.ssh_keys),
            }],
            "disable_root": True,
            "ssh_pwauth": False,
        },
    )


def apex_ask_part(spec: RedirectorSpec) -> Part:
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
    return Part(
        "apex-ask",
        packages=("python3-dnspython",),
        files=(
            WriteFile(ASK_SCRIPT, source(ASK_SCRIPT), "0755", compress=True),
            WriteFile(ASK_CONFIG, json.dumps(settings, indent=2) + "\n", "0644"),
            WriteFile(ASK_UNIT, shipped(source(ASK_UNIT)), "0644"),
            WriteFile(ASK_NETWORK_DROPIN, network, "0644"),
        ),
        commands=(
            ("systemctl", "daemon-reload"),
            ("systemctl", "enable", "--now", "twinhost-apex-ask.service"),
        ),
    )


def caddy_part(spec: RedirectorSpec) -> Part:
    acme_ca_root = ACME_CA_ROOT if (spec.issuer == "acme" and spec.acme_ca_root_pem) else None
    files = [
        WriteFile(CADDYFILE, render_caddyfile(spec, acme_ca_root=acme_ca_root), "0644"),
        WriteFile(CADDY_DROPIN, shipped(source(CADDY_DROPIN)), "0644"),
    ]
    if acme_ca_root and spec.acme_ca_root_pem:
        files.append(WriteFile(ACME_CA_ROOT, spec.acme_ca_root_pem, "0644"))
    return Part(
        "caddy",
        packages=("caddy",),
        files=tuple(files),
        # The package starts Caddy on install (with the drop-in already in place, since
        # write_files runs before packages); restart once the ask service is up as well.
        commands=(("systemctl", "daemon-reload"), ("systemctl", "restart", "caddy.service")),
    )


def render_caddyfile(spec: RedirectorSpec, acme_ca_root: str | None = None) -> str:
    """The redirector's Caddyfile for `spec` (also used by the tests to run the real Caddy)."""
    if not spec.acme_challenges:
        raise ValueError("acme_challenges must allow http-01, tls-alpn-01 or both")
    return shipped(_template(CADDYFILE).render(
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
    ))
