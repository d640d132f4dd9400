"""Where a lab lives and what its addresses are. Pure data: building a Layout touches nothing.

The bridge stands in for the internet between the providers: every address on it comes from
TEST-NET-2 (198.51.100.0/24, RFC 5737), which is never routed, so nothing can leak off the host.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

STATE_DIR = Path("/var/lib/twinhost-lab")
CACHE_DIR = Path("/var/cache/twinhost-lab")


@dataclass(frozen=True)
class Node:
    """One container: `addresses[0]` is its own (outbound) address; more are extra addresses
    on the same interface (a DigitalOcean droplet's reserved IP)."""

    name: str
    role: str  # "digitalocean" | "linode" | "redirector"
    addresses: tuple[str, ...]

    @property
    def address(self) -> str:
        """Where the outside reaches it (DigitalOcean: the reserved IP, like DNS does)."""
        return self.addresses[-1]


@dataclass(frozen=True)
class Layout:
    stack: str = "harbourlaw"
    platform_stack: str = "prod"
    debian: int = 12
    bridge: str = "thlab0"
    network: str = "198.51.100.0/24"
    host_address: str = "198.51.100.1"
    # Namespaces on the bridge: one outside every admin CIDR ("the internet"), one inside.
    internet_namespace: str = "thlab-inet"
    internet_address: str = "198.51.100.100"
    admin_namespace: str = "thlab-admin"
    admin_network: str = "198.51.100.208/29"
    admin_address: str = "198.51.100.210"
    proxy_port: int = 3150
    pypi_port: int = 3151
    acme_port: int = 14000
    acme_management_port: int = 15000
    dns_port: int = 53
    # The platform's notification webhook stand-in (twinhost_lab/webhook.py), HTTPS.
    webhook_port: int = 8443
    state_dir: Path = STATE_DIR
    cache_dir: Path = CACHE_DIR
    nodes: tuple[Node, ...] = field(
        default_factory=lambda: (
            # The droplet's own address first (its outbound source), then its reserved IP.
            Node("th-do", "digitalocean", ("198.51.100.11", "198.51.100.10")),
            Node("th-linode", "linode", ("198.51.100.20",)),
            Node("th-redirector", "redirector", ("198.51.100.30",)),
        )
    )

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.network).prefixlen

    def node(self, role: str) -> Node:
        return next(n for n in self.nodes if n.role == role)

    @property
    def site_nodes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.role != "redirector")

    def address_map(self) -> dict[str, str]:
        """The addresses the plan's mocks hand out (infra.plan.mocks.DEFAULT_ADDRESSES keys)."""
        droplet = self.node("digitalocean")
        return {
            "digitalocean_droplet": droplet.addresses[0],
            "digitalocean_reserved_ip": droplet.addresses[1],
            "linode": self.node("linode").address,
            "redirector": self.node("redirector").address,
        }

    @property
    def proxy_url(self) -> str:
        return f"http://{self.host_address}:{self.proxy_port}"

    @property
    def pypi_index(self) -> str:
        """The lab's stand-in for PyPI: the node wheels the watcher's install pins, nothing else."""
        return f"http://{self.host_address}:{self.pypi_port}/simple/"

    @property
    def python_version(self) -> str:
        """The release's python3 (the watcher's venv on the redirector)."""
        return {12: "3.11", 13: "3.13"}[self.debian]

    @property
    def acme_directory(self) -> str:
        return f"https://{self.host_address}:{self.acme_port}/dir"

    @property
    def run_dir(self) -> Path:
        """This lab's live files: container trees, service configs, logs, state.json."""
        return self.state_dir / "run"

    @property
    def machines_dir(self) -> Path:
        return self.run_dir / "machines"

    @property
    def suite(self) -> str:
        return {12: "bookworm", 13: "trixie"}[self.debian]
