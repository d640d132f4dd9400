"""What the redirector's first boot needs to know, as plain values (no Pulumi types).

The platform stack fills one `RedirectorSpec` from its config; the lab and the tests fill their
own (a lab resolver and ACME directory, loopback ports, Caddy's internal CA). Every such
difference is an input here, never a branch on "are we in a test" inside the renderer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from infra.config import DEFAULT_RESOLVERS, LETS_ENCRYPT_DIRECTORY
from infra.redirector.registry import registry_suffix

# The ask service's loopback port; Caddy is its only client.
ASK_PORT = 9180
# Caddy's admin API as a unix socket in its runtime directory: only root and caddy reach it,
# unlike the default TCP localhost:2019 that any local user could reconfigure Caddy through.
ADMIN_SOCKET = "unix//run/caddy/admin.sock"
AcmeChallenge = Literal["http-01", "tls-alpn-01"]


@dataclass(frozen=True)
class RedirectorSpec:
    """Everything the redirector's user data is rendered from."""

    hostname: str
    debian: int
    admin_user: str
    ssh_keys: tuple[str, ...]
    ops_zone: str
    acme_email: str
    # For the shared hardening (infra.bootstrap): ufw lets SSH in only from these networks (the
    # security group does too: two independent layers), and small machines get a swap file.
    admin_cidrs: tuple[str, ...] = ()
    memory_mib: int = 512
    swap: bool = True  # False only in the lab (a container may not swapon)
    # "acme": certificates from `acme_directory` (HTTP-01). "internal": Caddy's own local CA
    # (tests, or a lab without an ACME server); never for the real redirector.
    issuer: Literal["acme", "internal"] = "acme"
    acme_directory: str = LETS_ENCRYPT_DIRECTORY
    acme_ca_root_pem: str | None = None  # a lab ACME server's root, trusted for the directory only
    # ACME challenge types Caddy may answer: HTTP-01 on port 80, TLS-ALPN-01 on port 443. Both
    # by default, so either port alone still renews; the tests pin one to prove each path.
    acme_challenges: tuple[AcmeChallenge, ...] = ("http-01", "tls-alpn-01")
    resolvers: tuple[str, ...] = DEFAULT_RESOLVERS
    resolver_port: int = 53
    ask_port: int = ASK_PORT
    # Seconds the ask service remembers a "yes" / a "no" (bounds lookups per random name).
    positive_cache_s: int = 300
    negative_cache_s: int = 30
    # The Elastic IP: the ask service approves a certificate only for an apex whose A/AAAA records
    # are all this address (None: registration alone, as for tests without client DNS).
    public_address: str | None = None
    # Certificate asks approved per apex per window: Let's Encrypt allows 5 failed validations per
    # hostname per account per hour; a success is kept for months, so stay under that.
    max_asks: int = 3
    ask_window_s: int = 3600
    # Where Caddy listens. The real redirector: every address, ports 80/443. Tests: loopback.
    http_port: int = 80
    https_port: int = 443
    bind: str | None = None
    admin: str = ADMIN_SOCKET
    # The lab only: an HTTP proxy for apt.
    apt_proxy: str | None = None

    @property
    def registry(self) -> str:
        return registry_suffix(self.ops_zone)
