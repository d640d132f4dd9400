"""The redirector's first-boot user data: Debian + Caddy redirecting every client apex to www.

`render_user_data(spec)` merges the parts of `infra.redirector.parts` into one #cloud-config.
Two hooks keep other concerns out of this package:
- `hardening`: the function that makes the admin user and hardens sshd (default: this
  package's minimal `admin_part`; `infra.bootstrap`'s shared hardening replaces it);
- `extra_parts`: more parts after the redirector's own, e.g. the failover watcher (issue 7).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from infra.redirector.cloud_config import Part, dump, merge
from infra.redirector.parts import admin_part, apex_ask_part, base_part, caddy_part
from infra.redirector.spec import RedirectorSpec

__all__ = ["AWS_USER_DATA_LIMIT", "RedirectorSpec", "Part", "render_user_data", "user_data_parts"]

# EC2 refuses user data over 16 KB (16384 bytes) before base64 encoding.
AWS_USER_DATA_LIMIT = 16384


def user_data_parts(
    spec: RedirectorSpec,
    hardening: Callable[[RedirectorSpec], Part] = admin_part,
    extra_parts: Sequence[Part] = (),
) -> list[Part]:
    """The parts in boot order: base, hardening, the ask service before Caddy, then extras."""
    return [base_part(spec), hardening(spec), apex_ask_part(spec), caddy_part(spec), *extra_parts]


def render_user_data(
    spec: RedirectorSpec,
    hardening: Callable[[RedirectorSpec], Part] = admin_part,
    extra_parts: Sequence[Part] = (),
) -> str:
    """The #cloud-config text. Raises ValueError when it would exceed EC2's 16 KB limit."""
    text = dump(merge(user_data_parts(spec, hardening, extra_parts)))
    size = len(text.encode())
    if size > AWS_USER_DATA_LIMIT:
        raise ValueError(
            f"redirector user data is {size} bytes; EC2 accepts at most {AWS_USER_DATA_LIMIT}"
        )
    return text
