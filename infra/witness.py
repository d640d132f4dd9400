"""The witness: the redirector as the third vote of every pair, as plain data (no Pulumi types).

The redirector joins each listed site's tinc network as a third member, `witness`, with one
RSA key made by the platform stack (its private half an SSM SecureString, never in user data).
In each site's mesh /24 (`mesh_network`: node A .1, node B .2) the witness is `.3`, so anything
that listens on the witness (the GlusterFS thin-arbiter on 24007; a site's garbd on 4567) is
reached from both nodes of a site at `<site's mesh>.3`, over that site's own tinc network.

On the witness every site is one tinc daemon, network and interface, all named `w<index>`, where
`index` is the site's 14-bit mesh index in hex (`w1a2b`; interface names are at most 15
characters, site names are not). tinc 1.0 binds one port per daemon, so the witness listens for
site S on `WITNESS_PORT_BASE + index(S)` (16384..32767: below Linux's ephemeral range, so an
outgoing connection never holds it); the nodes keep tinc's 655.

Two site names whose 14-bit index collides get the same /24: harmless between the pair's own
nodes (separate nets), but on the witness, which holds every site's /24 at once, a routing
conflict. `mesh_collisions` finds them; the platform refuses them (config rule and at `up`).

What the platform publishes for the redirector (`witness_document`): the witness's own name and
public key, and per site its net, port, addresses and the nodes' host entries (public keys and
addresses: nothing secret); for a site with a database also its Galera cluster's name, the site's
database CA and the witness's certificate for its garbd (the key travels apart, through SSM:
`infra.platform_watcher.witness_site_parameter_name`). The redirector's refresh timer applies it (`twinhost-witness` in the
watcher's code archive), so a new site never touches the instance or its user data.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MESH_SUPERNET = ipaddress.IPv4Network("10.64.0.0/10")
MESH_INDEX_BITS = 14
WITNESS_TINC_NAME = "witness"
WITNESS_HOST = 3  # .3 in every site's mesh /24
WITNESS_PORT_BASE = 16384  # + the 14-bit index: 16384..32767
THIN_ARBITER_PORT = 24007
THIN_ARBITER_DIR = "/srv/thin-arbiter"
# Galera's group port, where each site's garbd listens at the site's `.3` (the nodes' own group
# port: infra.bootstrap.database.GALERA_PORT; a test keeps the two equal).
GARBD_PORT = 4567
DOCUMENT_VERSION = 1


def mesh_index(site: str) -> int:
    """A site's 14-bit mesh index: the first 14 bits of SHA-256 of its name (stable)."""
    return int.from_bytes(hashlib.sha256(site.encode()).digest()[:2], "big") & ((1 << MESH_INDEX_BITS) - 1)


def mesh_network(site: str) -> ipaddress.IPv4Network:
    """A /24 in 10.64.0.0/10 chosen from the site name (see the module doc about collisions)."""
    base = int(MESH_SUPERNET.network_address) + (mesh_index(site) << 8)
    return ipaddress.IPv4Network((base, 24))


def witness_mesh_address(site: str) -> str:
    return str(mesh_network(site)[WITNESS_HOST])


def witness_port(site: str) -> int:
    return WITNESS_PORT_BASE + mesh_index(site)


def witness_net(site: str) -> str:
    """The tinc network (and interface) name of `site` on the witness."""
    return f"w{mesh_index(site):04x}"


def mesh_collisions(sites: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs (earlier, later) of distinct site names that share a mesh /24, in input order."""
    first: dict[int, str] = {}
    found = []
    for site in sites:
        index = mesh_index(site)
        if index in first and first[index] != site:
            found.append((first[index], site))
        first.setdefault(index, site)
    return found


class WitnessCollisionError(ValueError):
    """Two sites share a mesh /24: the witness cannot hold both."""


def collision_message(a: str, b: str) -> str:
    return (
        f"sites {a!r} and {b!r} get the same private mesh network {mesh_network(a)} (a 14-bit "
        f"choice from the site name); the witness joins every site's network, so it cannot hold "
        f"both: rename one of the two sites"
    )


@dataclass(frozen=True)
class WitnessNode:
    """One site node as the witness sees it."""

    name: str  # tinc node name
    address: str  # public IPv4 (DigitalOcean: the reserved IP)
    mesh_address: str
    public_key_pem: str


@dataclass(frozen=True)
class WitnessDatabase:
    """A site's Galera cluster as its garbd on the witness joins it (public parts only)."""

    cluster: str
    ca_pem: str  # the site's database CA
    certificate_pem: str  # the witness's, signed by that CA, for `.3` of the site's mesh


@dataclass(frozen=True)
class WitnessedSite:
    site: str
    nodes: tuple[WitnessNode, ...]
    database: WitnessDatabase | None = None  # None: no database, no garbd

    @classmethod
    def from_outputs(
        cls,
        site: str,
        addresses: Mapping[str, str],
        public_keys: Mapping[str, str],
        database: Mapping[str, str] | None = None,
    ) -> WitnessedSite | None:
        """From a site stack's outputs; None for a site that exports no tinc keys yet (a site
        stack from before the witness: it joins after its next `pulumi up`). `database`: its
        `witnessDatabase` output ({cluster, caPem, certificatePem}), or None."""
        providers = ("digitalocean", "linode")
        if not all(public_keys.get(p) and addresses.get(p) for p in providers):
            return None
        network = mesh_network(site)
        return cls(
            site=site,
            nodes=tuple(
                WitnessNode(
                    name=f"{site}_{provider}".replace("-", "_"),
                    address=addresses[provider],
                    mesh_address=str(network[host]),
                    public_key_pem=public_keys[provider].strip(),
                )
                for host, provider in ((1, "digitalocean"), (2, "linode"))
            ),
            database=(
                WitnessDatabase(
                    cluster=database["cluster"],
                    ca_pem=database["caPem"].strip(),
                    certificate_pem=database["certificatePem"].strip(),
                )
                if database
                else None
            ),
        )


def witness_document(sites: Sequence[WitnessedSite], *, public_key_pem: str, address: str) -> dict[str, Any]:
    """What the redirector's `twinhost-witness` applies. Raises WitnessCollisionError when two
    sites share a mesh /24 (naming both)."""
    problems = [collision_message(a, b) for a, b in mesh_collisions(s.site for s in sites)]
    if problems:
        raise WitnessCollisionError("; ".join(problems))
    return {
        "version": DOCUMENT_VERSION,
        "name": WITNESS_TINC_NAME,
        "address": address,
        "publicKeyPem": public_key_pem.strip(),
        "thinArbiter": {"directory": THIN_ARBITER_DIR, "port": THIN_ARBITER_PORT},
        "sites": [
            {
                "site": s.site,
                "net": witness_net(s.site),
                "port": witness_port(s.site),
                "network": str(mesh_network(s.site)),
                "address": witness_mesh_address(s.site),
                "nodes": [
                    {
                        "name": n.name,
                        "address": n.address,
                        "meshAddress": n.mesh_address,
                        "publicKeyPem": n.public_key_pem,
                    }
                    for n in s.nodes
                ],
                **({"database": _database_entry(s.database)} if s.database else {}),
            }
            for s in sorted(sites, key=lambda s: s.site)
        ],
    }


def _database_entry(database: WitnessDatabase) -> dict[str, Any]:
    """A site's garbd in the witness's document: public parts only (its key is in SSM)."""
    return {
        "cluster": database.cluster,
        "port": GARBD_PORT,
        "caPem": database.ca_pem,
        "certificatePem": database.certificate_pem,
    }


def security_group_peers(sites: Sequence[WitnessedSite]) -> list[tuple[int, list[str]]]:
    """(witness tinc port of the site, its nodes' /32s): what the redirector's security group
    opens, per site, and only to that site's nodes."""
    return [
        (witness_port(s.site), sorted(f"{n.address}/32" for n in s.nodes))
        for s in sorted(sites, key=lambda s: s.site)
    ]
