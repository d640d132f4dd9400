"""Node A: a Debian droplet on DigitalOcean behind a protected reserved IP.

The reserved IP is created by the pair before any node (the Linode's user data needs it), and
handed in here to be assigned. Replacing the droplet keeps the address: only the assignment moves.

Deliberately not here: the firewall (see `cloud_firewalls.py`) and DNS (see `failover_dns.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_digitalocean as digitalocean

from infra import catalog
from infra.bootstrap.render import digitalocean_user_data
from infra.config import DigitalOceanNode


@dataclass
class DigitalOceanSiteNodeArgs:
    site: str
    settings: DigitalOceanNode
    debian: int
    reserved_ip: digitalocean.ReservedIp
    # First-boot only: rendered by the bootstrap, passed as a secret (it holds private keys).
    user_data: pulumi.Input[str]
    tags: list[str] = field(default_factory=list)


class DigitalOceanSiteNode(pulumi.ComponentResource):
    """Outputs: `droplet_id` (int), `public_address` (the reserved IP clients reach),
    `egress_address` (the droplet's own IP, which its outbound traffic leaves from)."""

    droplet_id: pulumi.Output[int]
    public_address: pulumi.Output[str]
    egress_address: pulumi.Output[str]

    def __init__(self, name: str, args: DigitalOceanSiteNodeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("twinhost:site:DigitalOceanNode", name, None, opts)
        child_opts = pulumi.ResourceOptions(parent=self)
        settings = args.settings

        self.droplet = digitalocean.Droplet(
            f"{name}-droplet",
            name=f"{args.site}-do",
            image=catalog.providers()["digitalocean"]["images"][args.debian],
            region=settings.region,
            size=settings.size,
            backups=settings.backups,
            monitoring=settings.monitoring,
            ipv6=settings.ipv6,
            tags=sorted({"twinhost", f"site-{args.site}", *settings.tags, *args.tags}),
            # As is, or above the budget as one gzip MIME part (infra/bootstrap/render.py).
            user_data=pulumi.Output.secret(args.user_data).apply(digitalocean_user_data),
            # User data runs once, at first boot: a change to it (an app version, a bootstrap
            # edit) must never replace a serving node. App updates go through twinhost-deploy;
            # replacing a node on purpose is `pulumi up --replace <urn>` (README).
            opts=child_opts.merge(pulumi.ResourceOptions(ignore_changes=["user_data", "ssh_keys"])),
        )
        self.assignment = digitalocean.ReservedIpAssignment(
            f"{name}-reserved-ip-assignment",
            ip_address=args.reserved_ip.ip_address,
            droplet_id=self.droplet.id.apply(int),
            # Replacing the droplet replaces the assignment. Create-then-delete would unassign the
            # address from the NEW droplet when the old assignment is deleted, so delete first:
            # a few seconds unassigned, then the address follows the new droplet.
            opts=child_opts.merge(pulumi.ResourceOptions(delete_before_replace=True)),
        )

        self.droplet_id = self.droplet.id.apply(int)
        self.public_address = args.reserved_ip.ip_address
        self.egress_address = self.droplet.ipv4_address
        self.register_outputs(
            {
                "droplet_id": self.droplet_id,
                "public_address": self.public_address,
                "egress_address": self.egress_address,
            }
        )
