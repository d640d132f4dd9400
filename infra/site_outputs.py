"""What a site stack exports: one definition, read and written by everything that uses it.

- the site program (`infra/site.py`) exports `SiteOutputs(...).to_exports()`;
- the platform (`infra/platform.py`) reads `KEYS` from each site stack's StackReference, and
  `infra.platform_watcher.WatchedSite` is built from `SiteOutputs.from_outputs(...)`;
- the offline plan (`infra/plan/mocks.py`) answers a reference to a site stack not planned yet
  with `SiteOutputs(...).to_exports()` made from its stack file;
- the lab (`twinhost_lab/lab.py`) reads the planned site's outputs through `from_outputs`.

The export names are the attribute names in camelCase (`failover_hostname` -> `failoverHostname`):
they are a contract with stacks already deployed, so renaming an attribute renames an output.
No Pulumi import: in the program some values are Outputs, which `to_exports` passes through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

# Outputs the first site stacks already had; every other one falls back to what those sites had.
REQUIRED = ("failoverHostname", "failoverMode", "nodeAddresses")


@dataclass(frozen=True)
class SiteOutputs:
    """One site stack's exports. In the program, the values marked "Output" are pulumi Outputs;
    read back (`from_outputs`) they are plain values."""

    site: str
    failover_hostname: Any  # str (Output): "<site>.<ops zone>", the name the watcher moves
    failover_mode: str  # watchdog | route53 | cloudflare-lb | manual
    node_addresses: Any  # {provider: IPv4} (Outputs inside)
    client_dns: Any  # str (Output): the records the client sets, one per line
    domains: Sequence[str]
    # Read by the platform stack to generate the failover watcher's config.
    ops_zone: Any  # str (Output): the zone the failover record is in
    failover_ttl: int | None  # None when proxied (Cloudflare's automatic TTL)
    proxied: bool
    primary: str  # the provider the record points at first
    certificates: str  # acme | cloudflare-origin
    # Read by the platform's witness (infra/witness.py): {provider: the node's tinc public key PEM}.
    tinc_public_keys: Any = None
    # Read by the platform's witness to run the site's garbd (`database: mariadb` only; None
    # otherwise): {cluster, caPem, certificatePem} (public; the witness's certificate), and the
    # witness's private key for it, a secret output (the platform keeps it in SSM).
    witness_database: Any = None
    witness_database_key: Any = None

    def to_exports(self) -> dict[str, Any]:
        """{export name: value}, in `KEYS` order: what `pulumi.export` gets."""
        return {_export_name(f.name): getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, Any], *, default_zone: str) -> SiteOutputs:
        """From a site stack's outputs (plain values). `REQUIRED` must be there; outputs added
        after the first site stacks fall back to what those sites had (`opsZone` to
        `default_zone`, the platform's own ops zone). KeyError names a missing required output."""
        record = str(outputs["failoverHostname"])
        proxied = bool(outputs.get("proxied", False))
        ttl = outputs.get("failoverTtl")
        return cls(
            site=str(outputs.get("site") or record.split(".", 1)[0]),
            failover_hostname=record,
            failover_mode=str(outputs["failoverMode"]),
            node_addresses={str(k): str(v) for k, v in dict(outputs["nodeAddresses"]).items()},
            client_dns=str(outputs.get("clientDns") or ""),
            domains=[str(d) for d in outputs.get("domains") or ()],
            ops_zone=str(outputs.get("opsZone") or default_zone),
            failover_ttl=int(ttl) if ttl is not None else (None if proxied else 60),
            proxied=proxied,
            primary=str(outputs.get("primary") or "digitalocean"),
            certificates=str(outputs.get("certificates") or "acme"),
            tinc_public_keys={str(k): str(v) for k, v in dict(outputs.get("tincPublicKeys") or {}).items()},
            witness_database=(
                {str(k): str(v) for k, v in dict(outputs["witnessDatabase"]).items()}
                if outputs.get("witnessDatabase")
                else None
            ),
            witness_database_key=str(outputs["witnessDatabaseKey"])
            if outputs.get("witnessDatabaseKey")
            else None,
        )


def _export_name(attribute: str) -> str:
    head, *rest = attribute.split("_")
    return head + "".join(word.capitalize() for word in rest)


# Every export name, in declaration order: what the platform reads from each site stack.
KEYS: tuple[str, ...] = tuple(_export_name(f.name) for f in fields(SiteOutputs))
# The secret ones: the platform reads them apart, so the rest (the watcher's config, the
# witness's public document) does not become secret with them.
SECRET_KEYS: tuple[str, ...] = ("witnessDatabaseKey",)
PUBLIC_KEYS: tuple[str, ...] = tuple(k for k in KEYS if k not in SECRET_KEYS)


def client_dns(domains: Sequence[str], failover_hostname: str, redirector_address: str) -> str:
    """What each client sets at their DNS host: www at the failover name, the apex at the
    redirector (which redirects it to www), one record per line."""
    return "\n".join(
        line
        for apex in domains
        for line in (f"{apex}: www CNAME {failover_hostname}", f"{apex}: @ A {redirector_address}")
    )
