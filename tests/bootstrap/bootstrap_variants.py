"""Every user data variant the schema and size tests render."""

from __future__ import annotations

import itertools
from typing import Any

PROVIDERS = ("digitalocean", "linode")
DEBIANS = (12, 13)
APP_KINDS = ("demo", "container", "deb", "command")


def all_variants() -> dict[str, dict[str, Any]]:
    """{id: make_spec keyword arguments}: both providers x both releases x proxied/DNS-only x
    each app kind, plus the lab's options."""
    variants: dict[str, dict[str, Any]] = {}
    for provider, debian, proxied, app in itertools.product(PROVIDERS, DEBIANS, (False, True), APP_KINDS):
        name = f"{provider}-debian{debian}-{'proxied' if proxied else 'dnsonly'}-{app}"
        variants[name] = {"provider": provider, "debian": debian, "proxied": proxied, "app": app}
    for provider, debian in itertools.product(PROVIDERS, DEBIANS):
        variants[f"{provider}-debian{debian}-lab"] = {"provider": provider, "debian": debian, "lab": True}
    variants["linode-debian12-2gb"] = {"provider": "linode", "memory_mib": 2048}
    # The database (MariaDB Galera): a DigitalOcean node with it ships as one gzip MIME part.
    for provider, debian, proxied in itertools.product(PROVIDERS, DEBIANS, (False, True)):
        name = f"{provider}-debian{debian}-{'proxied' if proxied else 'dnsonly'}-database"
        variants[name] = {"provider": provider, "debian": debian, "proxied": proxied, "database": True}
    # WordPress (app kind `wordpress`, which needs the database): php-fpm, Debian's package.
    for provider, debian, proxied in itertools.product(PROVIDERS, DEBIANS, (False, True)):
        name = f"{provider}-debian{debian}-{'proxied' if proxied else 'dnsonly'}-wordpress"
        variants[name] = {"provider": provider, "debian": debian, "proxied": proxied, "app": "wordpress"}
    return variants


def everything_on(provider: str, debian: int = 13) -> dict[str, Any]:
    """The biggest user data a node can get: proxied (origin certificate and key, every
    Cloudflare range), a container app, the lab's proxy and CA, five admin keys and networks."""
    return {
        "provider": provider,
        "debian": debian,
        "proxied": True,
        "app": "container",
        "lab": True,
        "admin_keys": 5,
        "admin_cidrs": (
            "203.0.113.0/26",
            "203.0.113.64/26",
            "198.18.0.0/24",
            "2001:db8:100::/48",
            "2001:db8:200::/48",
        ),
    }
