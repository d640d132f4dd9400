"""The tinc 1.0 mesh between a site's two nodes.

One tinc network per site (`spec.tinc_net`), router mode, a /32 Subnet per node inside the site's
mesh prefix. Keys are made by Pulumi (`pulumi_tls` RSA): this node's private key only in its own
user data, each node's public key in both host files. Both nodes `ConnectTo` each other, so the
mesh forms whichever boots first.

On DigitalOcean, a droplet's outgoing traffic leaves from its own public IP, not its reserved
IP. The Linode peer's ufw allows tinc from the reserved IP only (its user data is rendered before
the droplet exists, so `MeshPeer.other_source_addresses` stays empty in a real site; the cloud
firewall allows both addresses), and on the droplet a small unit routes traffic for the peer
through the anchor gateway when DigitalOcean's metadata service is present (skipped elsewhere),
so that it leaves from the reserved IP.
"""

from __future__ import annotations

import re

from infra.bootstrap.hardening import FirewallRule
from infra.bootstrap.parts import SCRIPT_MODE, File, Parts, static, template
from infra.bootstrap.spec import TINC_PORT, MeshPeer, NodeSpec, WitnessPeer

PEER_ROUTE_ENV = "/etc/twinhost/peer-route.env"
PEER_ROUTE_SERVICE = "twinhost-peer-route.service"
PEER_TINC_RULE = "tinc from the peer node"  # the ufw comment the converge finds the rules by
MESH_INTERFACE = "tinc0"  # interface names are at most 15 characters; one mesh per node
PRIVATE_KEY_MODE = 0o600
_TINC_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_NET_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def tinc_dir(spec: NodeSpec) -> str:
    return f"/etc/tinc/{spec.tinc_net}"


def tinc_parts(spec: NodeSpec) -> Parts:
    """tinc 1.0 configuration, keys and host files; `tinc@<net>` enabled and started."""
    problems = [
        f"{label} {value!r} may only hold letters, digits and _"
        for label, value in (("tinc_node_name", spec.tinc_node_name), ("peer.name", spec.peer.name))
        if not _TINC_NAME.match(value)
    ]
    if not _NET_NAME.match(spec.tinc_net):
        problems.append(f"tinc_net {spec.tinc_net!r} may only hold letters, digits, _ and -")
    if problems:
        raise ValueError("tinc: " + "; ".join(problems))
    base = tinc_dir(spec)
    own_host = host_file(
        spec.tinc_node_name, spec.public_address, TINC_PORT, spec.mesh_address, spec.tinc_public_key_pem
    )
    witness = spec.witness
    files = [
        File(
            f"{base}/tinc.conf",
            template(
                "site/etc/tinc/NET/tinc.conf.j2",
                site=spec.site,
                name=spec.tinc_node_name,
                net=spec.tinc_net,
                interface=MESH_INTERFACE,
                peer_name=spec.peer.name,
                witness_name=witness.name if witness else None,
            ),
        ),
        File(f"{base}/rsa_key.priv", spec.tinc_private_key_pem.strip() + "\n", PRIVATE_KEY_MODE, secret=True),
        File(f"{base}/hosts/{spec.tinc_node_name}", own_host),
        File(peer_host_path(spec.tinc_net, spec.peer), peer_host_file(spec.peer)),
        *(
            (
                File(
                    f"{base}/hosts/{witness.name}",
                    host_file(
                        witness.name,
                        witness.public_address,
                        witness.port,
                        witness.mesh_address,
                        witness.tinc_public_key_pem,
                    ),
                ),
            )
            if witness
            else ()
        ),
        File(
            f"{base}/tinc-up",
            template("site/etc/tinc/NET/tinc-up.j2", address=spec.mesh_address, prefix=spec.mesh_prefix),
            SCRIPT_MODE,
        ),
        File(
            f"{base}/tinc-down",
            template("site/etc/tinc/NET/tinc-down.j2", address=spec.mesh_address, prefix=spec.mesh_prefix),
            SCRIPT_MODE,
        ),
    ]
    runcmd: list[tuple[str, ...]] = []
    if spec.provider == "digitalocean":
        files += [
            File(PEER_ROUTE_ENV, peer_route_env(routed_addresses(spec.peer, spec.witness))),
            File(
                "/usr/local/sbin/twinhost-peer-route",
                static("site/usr/local/sbin/twinhost-peer-route"),
                SCRIPT_MODE,
            ),
            File(
                "/etc/systemd/system/twinhost-peer-route.service",
                static("site/etc/systemd/system/twinhost-peer-route.service"),
            ),
        ]
        runcmd.append(("systemctl", "enable", "--now", PEER_ROUTE_SERVICE))
    runcmd += [
        ("systemctl", "enable", "tinc.service", f"tinc@{spec.tinc_net}.service"),
        ("systemctl", "start", f"tinc@{spec.tinc_net}.service"),
    ]
    return Parts(files=tuple(files), packages=("tinc", "iproute2"), runcmd=tuple(runcmd), name="tinc")


def host_file(name: str, address: str, port: int, mesh_address: str, public_key_pem: str) -> str:
    """A tinc host file: where the node is reached, its mesh address and its public key."""
    return template(
        "site/etc/tinc/NET/hosts/NODE.j2",
        name=name,
        address=address,
        port=port,
        subnet=f"{mesh_address}/32",
        public_key_pem=public_key_pem.strip(),
    )


# The peer's address as the first boot writes it, and as `twinhost-converge` rewrites it when the
# peer is replaced (a new Linode has a new public IP: infra/bootstrap/converge.py `peer_state`).
def peer_host_path(tinc_net: str, peer: MeshPeer) -> str:
    return f"/etc/tinc/{tinc_net}/hosts/{peer.name}"


def peer_host_file(peer: MeshPeer) -> str:
    return host_file(peer.name, peer.public_address, TINC_PORT, peer.mesh_address, peer.tinc_public_key_pem)


def peer_tinc_rule(peer: MeshPeer) -> FirewallRule:
    """ufw: tinc's port from the peer's public addresses."""
    return FirewallRule(PEER_TINC_RULE, str(TINC_PORT), ("tcp", "udp"), sources=peer_source_addresses(peer))


def peer_route_env(addresses: tuple[str, ...]) -> str:
    """The settings of `twinhost-peer-route` (a droplet's only): the addresses it routes."""
    return f'# twinhost-peer-route: the peer\'s public addresses.\nPEER_ADDRESSES="{" ".join(addresses)}"\n'


def peer_source_addresses(peer: MeshPeer) -> tuple[str, ...]:
    return (peer.public_address, *peer.other_source_addresses)


def routed_addresses(peer: MeshPeer, witness: WitnessPeer | None) -> tuple[str, ...]:
    """Where a droplet's tinc traffic must leave from the reserved IP: the peer, and the witness
    (whose security group allows the site's node addresses, the reserved IP among them)."""
    return (*peer_source_addresses(peer), *((witness.public_address,) if witness else ()))


# What the mesh carries: GlusterFS only. glusterd's management port, and the range glusterd hands
# brick ports out of (glusterd.vol's base-port..max-port: 49152..60999; GlusterFS 10 allocates from
# the top down, so a 100-port range from 49152 misses the brick: found in the lab). Ping (ICMP
# echo) is allowed by ufw's own before.rules.
GLUSTERD_PORT = "24007"
GLUSTER_BRICK_PORTS = "49152:60999"


def tinc_firewall_rules(spec: NodeSpec) -> tuple[FirewallRule, ...]:
    """tinc's port from the peer's addresses only; on the mesh interface, from the peer's mesh
    address, only what the mesh carries (GlusterFS): sshd, nginx, the app and anything else
    that listens stay closed to a compromised peer."""
    peer = (f"{spec.peer.mesh_address}/32",)
    witness = (
        (
            FirewallRule(
                "tinc from the witness",
                str(TINC_PORT),
                ("tcp", "udp"),
                sources=(spec.witness.public_address,),
            ),
        )
        if spec.witness
        else ()
    )
    return (
        peer_tinc_rule(spec.peer),
        *witness,
        FirewallRule(
            "glusterd from the peer over the mesh", GLUSTERD_PORT, sources=peer, interface=MESH_INTERFACE
        ),
        FirewallRule(
            "gluster bricks from the peer over the mesh",
            GLUSTER_BRICK_PORTS,
            sources=peer,
            interface=MESH_INTERFACE,
        ),
    )
