"""The redirector's first-boot user data: Debian + Caddy redirecting every client apex to www.

`render_user_data(spec)` merges the shared node hardening (`infra.bootstrap.hardening_parts`:
admin user, sshd, ufw, fail2ban, unattended upgrades, rkhunter, sysctl, swap) with the
redirector's own parts (`infra.redirector.parts`) and any `extra_parts` (the failover watcher),
in that boot order, into one #cloud-config.

That document is about 18 KB before the watcher, over EC2's 16 KB user data limit, so it is
delivered gzip-compressed (`compressed_user_data`; cloud-init recognises the gzip magic and
decompresses it). The limit is checked on the compressed bytes, before any resource exists.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Sequence

from infra.bootstrap import FirewallRule, Parts, compact, hardening_parts, merge, render_parts
from infra.constants import USER_DATA_LIMITS
from infra.redirector.parts import apex_ask_part, base_part, caddy_part
from infra.redirector.spec import RedirectorSpec

__all__ = [
    "AWS_USER_DATA_LIMIT",
    "RedirectorSpec",
    "compressed_user_data",
    "decompress",
    "render_user_data",
    "user_data_parts",
]

# EC2 refuses user data over 16 KB (16384 bytes) before base64 encoding.
AWS_USER_DATA_LIMIT = USER_DATA_LIMITS["aws"]
GZIP_MAGIC = b"\x1f\x8b"
WEB_RULE = FirewallRule("web from anywhere: redirects and ACME", "80,443")


def user_data_parts(spec: RedirectorSpec, extra_parts: Sequence[Parts] = ()) -> Parts:
    """The merged parts in boot order: hardening (firewall up, then services may start), the
    redirector's base, the ask service before Caddy, then the extras (the watcher)."""
    hardening = hardening_parts(
        admin_user=spec.admin_user,
        ssh_keys=spec.ssh_keys,
        admin_cidrs=spec.admin_cidrs,
        debian=spec.debian,
        memory_mib=spec.memory_mib,
        open_ports=[WEB_RULE],
        apt_proxy=spec.apt_proxy,
        swap=spec.swap,
        # No automatic reboot: one instance serves every apex and runs the watcher.
        reboot_time=None,
    )
    own = [base_part(spec), apex_ask_part(spec), caddy_part(spec)]
    # compact: comment lines of config files stay in the repo (cloudinit/), not in the 16 KB;
    # scripts are shipped whole (see strip_comments).
    return compact(merge([hardening, *own, *extra_parts]))


def render_user_data(spec: RedirectorSpec, extra_parts: Sequence[Parts] = ()) -> str:
    """The readable #cloud-config. Raises ValueError when its gzip would exceed EC2's limit."""
    text = render_parts(user_data_parts(spec, extra_parts), hostname=spec.hostname)
    size = len(compressed_user_data(text))
    if size > AWS_USER_DATA_LIMIT:
        raise ValueError(
            f"redirector user data is {size} bytes gzip-compressed ({len(text.encode())} raw); "
            f"EC2 accepts at most {AWS_USER_DATA_LIMIT}"
        )
    return text


def compressed_user_data(text: str) -> bytes:
    """gzip of the document, reproducible (no timestamp): same text, same bytes, no diff."""
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def user_data_base64(text: str) -> str:
    """What EC2's `user_data_base64` takes (the API base64-decodes it back to the gzip)."""
    return base64.b64encode(compressed_user_data(text)).decode("ascii")


def decompress(data: bytes) -> str:
    """User data bytes as cloud-init reads them: gunzipped when gzip, else as they are."""
    return (gzip.decompress(data) if data[:2] == GZIP_MAGIC else data).decode()
