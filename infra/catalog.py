"""The provider catalogue and price table, read once from `infra/data/`.

Both are data files with their collection date and sources at the top, so refreshing them is an
edit, not a code change. Everything here is plain values: no Pulumi, no network.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

DATA_DIR = Path(__file__).parent / "data"


@functools.cache
def providers() -> dict[str, Any]:
    """Regions, sizes and images twinhost accepts, per provider (`data/providers.yaml`)."""
    return _load("providers.yaml")


@functools.cache
def prices() -> dict[str, Any]:
    """Monthly list prices in USD (`data/prices.yaml`)."""
    return _load("prices.yaml")


@functools.cache
def cloudflare_ranges() -> dict[str, Any]:
    """Cloudflare's published edge ranges (`data/cloudflare-ips.yaml`)."""
    return _load("cloudflare-ips.yaml")


@functools.cache
def cloudflare_origin_ca() -> dict[str, Any]:
    """Cloudflare's Origin CA roots, dated and sourced (`data/cloudflare-origin-ca.yaml`)."""
    return _load("cloudflare-origin-ca.yaml")


def cloudflare_origin_ca_bundle(request_type: str) -> str:
    """The Origin CA root(s) that certificates of `request_type` (origin-ecc, origin-rsa) chain
    to, as one PEM bundle (what the watcher trusts for proxied origins)."""
    roots = [root["pem"] for root in cloudflare_origin_ca()["roots"] if root["requestType"] == request_type]
    if not roots:
        raise ValueError(f"no Cloudflare Origin CA root for request type {request_type!r}")
    return "".join(roots)


def _load(name: str) -> dict[str, Any]:
    with open(DATA_DIR / name, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{DATA_DIR / name} must hold a mapping")
    return data


def hours_to_month(hourly: float) -> float:
    """AWS bills by the hour; a month is 730 hours in every AWS price page."""
    return round(hourly * 730, 2)
