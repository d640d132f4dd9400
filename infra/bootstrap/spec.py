"""What a node's first boot needs to know, as plain values.

The Pulumi side resolves its Outputs (addresses, keys, certificates) into a `NodeSpec`, and the
renderers in this package turn it into `#cloud-config`. Keeping the spec free of Pulumi types lets
the renderers be pure functions, tested and golden-filed without any engine or mock.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from infra import witness
from infra.config import App, CertificateSource, DemoApp, Provider
from infra.constants import LETS_ENCRYPT_DIRECTORY

TINC_PORT = 655


@dataclass(frozen=True)
class MeshPeer:
    """The other node of the pair, as this node sees it."""

    name: str  # tinc node name, e.g. "acme_linode" (tinc allows [A-Za-z0-9_])
    public_address: str  # where tinc reaches it (DigitalOcean: the reserved IP)
    mesh_address: str  # its address inside the tinc network
    tinc_public_key_pem: str
    # Extra source addresses its traffic may come from, allowed for tinc in ufw as well. The site
    # pair sets none: a droplet's own IP is not known when the Linode's user data is rendered, and
    # twinhost-peer-route makes the droplet send to its peer from the reserved IP instead.
    other_source_addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatabaseSpec:
    """The site's MariaDB Galera member on this node (infra/bootstrap/database.py)."""

    cluster_name: str
    name: str  # the site's database
    user: str  # the app's database user
    password: str = field(repr=False)  # secret
    ca_pem: str
    certificate_pem: str  # this member's, signed by the site's database CA
    private_key_pem: str = field(repr=False)  # secret
    # The witness's mesh address in this site's net, once the redirector joins it (issue 16
    # item 1): appended to the cluster address (its garbd is the third vote) and allowed to
    # reach the Galera port. None: two members only.
    witness_address: str | None = None


@dataclass(frozen=True)
class BackupSpec:
    """The site's off-pair backups on this node (infra/bootstrap/backup.py): a restic repository
    under the site's own prefix of the platform's bucket, and credentials for that prefix only."""

    repository: str  # restic's "s3:<endpoint>/<bucket>/<site>"
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)  # secret
    password: str = field(repr=False)  # secret: restic's repository key
    time: str = "02:15"  # "HH:MM" UTC: the primary's daily run; the standby looks an hour later
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 6
    # The platform's notification webhook (secret: its URL carries a token); None: no alert.
    webhook: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class WitnessPeer:
    """The platform's witness (the redirector) as a third member of this site's mesh
    (`infra.witness`): it listens for this site on its own tinc port, at the Elastic IP."""

    name: str
    public_address: str
    port: int
    mesh_address: str  # .3 of the site's mesh /24: the thin-arbiter (24007) is there
    tinc_public_key_pem: str


@dataclass(frozen=True)
class NodeSpec:
    """Everything one node's user data is rendered from."""

    site: str
    provider: Provider
    is_primary: bool  # the primary creates the GlusterFS volume; exactly one node is primary
    hostname: str
    debian: int
    memory_mib: int
    admin_user: str
    ssh_keys: tuple[str, ...]
    admin_cidrs: tuple[str, ...]
    public_address: str
    tinc_net: str
    tinc_node_name: str
    mesh_address: str
    mesh_prefix: int
    tinc_private_key_pem: str = field(repr=False)  # secret: never in a repr or log line
    tinc_public_key_pem: str
    peer: MeshPeer
    server_names: tuple[str, ...]  # every hostname the web front answers for; the failover name last
    proxied: bool
    http_sources: tuple[str, ...]  # empty: 80/443 from anywhere; else only these CIDRs
    certificates: CertificateSource
    origin_certificate_pem: str | None = None
    origin_private_key_pem: str | None = field(default=None, repr=False)  # secret
    acme_email: str | None = None
    acme_directory: str = LETS_ENCRYPT_DIRECTORY
    app: App = field(default_factory=lambda: DemoApp())
    app_secrets: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # secret values
    # Secrets the stack generates for the app kind (WordPress's keys and salts, by their
    # WORDPRESS_ENV names); they join the app's environment like app_secrets.
    app_keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # secret values
    # Set only in the lab: an HTTP proxy for apt, and extra CA certificates to trust (the lab ACME CA).
    apt_proxy: str | None = None
    extra_ca_pem: str | None = None
    swap: bool = True  # False only in the lab (a container may not swapon)
    # Added by the bootstrap (all optional):
    # Sources that may reach 80/443 even when `http_sources` limits them (the platform's
    # watcher, a health checker): in proxied mode only Cloudflare could reach /health otherwise.
    health_check_sources: tuple[str, ...] = ()
    # "HH:MM": reboot automatically after a kernel/libc update at that time (give the two nodes
    # different times). None: never reboot automatically.
    reboot_time: str | None = None
    # MariaDB Galera across the pair (`database: mariadb`); None: no database on this node.
    database: DatabaseSpec | None = None
    # The platform's witness; None for a platform without one (the pair alone: no third vote).
    witness: WitnessPeer | None = None
    # Off-pair backups (`backups.enabled` and a platform with a backup bucket); None: none.
    backup: BackupSpec | None = None


def mesh_network(site: str) -> ipaddress.IPv4Network:
    """A /24 in 10.64.0.0/10 chosen from the site name (`infra.witness.mesh_network`): stable,
    and distinct between sites unless two names collide in 14 bits, which the platform refuses
    (the witness joins every site's network)."""
    return witness.mesh_network(site)


def mesh_addresses(site: str) -> dict[Provider, str]:
    """Node A (DigitalOcean) is .1, node B (Linode) is .2 in the site's mesh network."""
    network = mesh_network(site)
    return {"digitalocean": str(network[1]), "linode": str(network[2])}


def tinc_node_name(site: str, provider: Provider) -> str:
    return f"{site}_{provider}".replace("-", "_")


def tinc_net_name(site: str) -> str:
    """The site's tinc network (`/etc/tinc/<net>`, `tinc@<net>`): at most 15 characters."""
    return site.replace("-", "")[:15] or "twinhost"


NodeRole = Literal["a", "b"]
