"""Node bootstrap: cloud-init user data renderers (see docs/bootstrap.md).

Public entry points:
- `render_user_data(spec: NodeSpec) -> str`: a site node's `#cloud-config`.
- `hardening_parts(...) -> Parts`: the hardening alone, for other hosts (the redirector),
  merged with their own parts by `merge` and dumped by `render_parts`.
"""

from infra.bootstrap.hardening import FirewallRule, hardening_parts
from infra.bootstrap.parts import File, Parts, compact, merge
from infra.bootstrap.render import (
    render_parts,
    render_user_data,
    secret_values,
)
from infra.constants import USER_DATA_LIMITS

__all__ = [
    "USER_DATA_LIMITS",
    "File",
    "FirewallRule",
    "Parts",
    "compact",
    "hardening_parts",
    "merge",
    "render_parts",
    "render_user_data",
    "secret_values",
]
