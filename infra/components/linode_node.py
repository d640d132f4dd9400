"""Node B: a Debian instance on Linode, its user data delivered through the Metadata service.

Linode takes user data base64-encoded in `metadatas`: the document is gzipped first (its limit is
counted on the base64; see `GZIPPED_WHOLE` in infra/bootstrap/render.py); regions without the
Metadata service are refused by the config model before anything is created.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pulumi
import pulumi_linode as linode

from infra import catalog
from infra.bootstrap.render import linode_user_data
from infra.config import LinodeNode


@dataclass
class LinodeSiteNodeArgs:
    site: str
    settings: LinodeNode
    debian: int
    user_data: pulumi.Input[str]
    tags: list[str] = field(default_factory=list)


class LinodeSiteNode(pulumi.ComponentResource):
    """Outputs: `instance_id` (int), `public_address` (its public IPv4)."""

    instance_id: pulumi.Output[int]
    public_address: pulumi.Output[str]

    def __init__(self, name: str, args: LinodeSiteNodeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("twinhost:site:LinodeNode", name, None, opts)
        settings = args.settings
        encoded = pulumi.Output.secret(args.user_data).apply(linode_user_data)
        self.instance = linode.Instance(
            f"{name}-instance",
            label=f"{args.site}-linode",
            region=settings.region,
            type=settings.type,
            image=catalog.providers()["linode"]["images"][args.debian],
            backups_enabled=settings.backups,
            tags=sorted({"twinhost", f"site-{args.site}", *settings.tags, *args.tags}),
            metadatas=[linode.InstanceMetadataArgs(user_data=encoded)],
            # First-boot data: a change must never rebuild a serving node (see the droplet).
            # root_pass: Linode generates one when absent; it is never used (root login is off).
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=["metadatas", "root_pass", "authorized_keys"]
            ),
        )
        self.instance_id = self.instance.id.apply(int)
        # `ip_address` is deprecated in the provider; the first IPv4 is the public one.
        self.public_address = self.instance.ipv4s.apply(
            lambda addresses: sorted(addresses, key=_private_last)[0]
        )
        self.register_outputs({"instance_id": self.instance_id, "public_address": self.public_address})


def _private_last(address: str) -> bool:
    return ipaddress.ip_address(address).is_private
