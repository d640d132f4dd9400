"""Config -> components -> exports, for both stack roles.

`pulumi up` runs this through `infra/__main__.py`; `twinhost plan` runs the same function under
mocks. Config is read and validated before any resource is declared, so an invalid stack config
creates nothing.

`overrides` (the local lab's render-time values, `infra.bootstrap.overrides`) is an argument of
this step, never a stack config key: `pulumi up` passes none.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from infra.bootstrap.overrides import RenderOverrides
from infra.config import NAMESPACE, PlatformConfig, SiteConfig, parse_config
from infra.pulumi_config import declared_defaults, read_namespace


def load_config(served_elsewhere: Mapping[str, str] | None = None) -> SiteConfig | PlatformConfig:
    """Read the whole `twinhost:` namespace of the running stack and validate it (ConfigError).
    `served_elsewhere`: {apex: stack} of the domains other stack files serve (the plan knows)."""
    values, secret_keys = read_namespace(NAMESPACE)
    return parse_config(values, secret_keys, declared_defaults(), served_elsewhere)


def build_stack(overrides: RenderOverrides | None = None) -> None:
    config = load_config()
    if isinstance(config, SiteConfig):
        from infra.site import build_site  # imports only the SDKs a site needs

        exports = build_site(config, overrides)
    else:
        from infra.platform import build_platform  # imports only the SDKs a platform needs

        exports = build_platform(config, overrides)
    for name, value in exports.items():
        pulumi.export(name, value)
