"""The redirector: one small Debian EC2 instance behind the platform's protected Elastic IP.

Every client apex A record points at the Elastic IP, so the address is created by the platform
before this component and handed in, like a site's reserved IP: the instance, its security
group and the association can all be replaced (`pulumi up --replace`, a new AMI, a new type) and
the address stays. Only the association moves.

Assumptions: the account's default VPC and one of its default subnets (public, with an internet
gateway), IPv4 only (the default VPC has no IPv6 subnets). No EC2 key pair: the admin's SSH keys
arrive in the user data, like on every twinhost node.

Deliberately not here: the Elastic IP itself (see `infra/platform.py`), the user data (rendered
by `infra.redirector`), and DNS (site stacks register their apexes in the ops zone).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.bootstrap.spec import TINC_PORT
from infra.config import AwsRedirector

# Debian's own AWS account: the official images (https://wiki.debian.org/Cloud/AmazonEC2Image).
DEBIAN_AMI_OWNER = "136693071363"
# Debian names images debian-<release>-<arch>-<date>-<build>, with amd64 for AWS's x86_64.
# "debian-12-arm64-*" also keeps out the "debian-12-backports-arm64-*" images.
_DEBIAN_ARCH = {"arm64": "arm64", "x86_64": "amd64"}
_ANYWHERE_V4, _ANYWHERE_V6 = "0.0.0.0/0", "::/0"


@dataclass
class RedirectorArgs:
    settings: AwsRedirector
    debian: int
    admin_cidrs: list[str]
    # Created and protected by the platform; the component only associates it.
    address: aws.ec2.Eip
    # First-boot only (see the instance's ignore_changes); passed on as a secret. The gzip of
    # the #cloud-config, base64: the readable document is ~20 KB, over EC2's 16 KB.
    user_data_base64: pulumi.Input[str]
    # The IAM instance profile (the watcher's least-privilege role); None: no role.
    instance_profile: pulumi.Input[str] | None = None
    # The ask service's DNS resolvers: the only DNS egress the security group allows (the VPC's
    # own resolver, used by the system, is not filtered by security groups).
    resolvers: list[str] = field(default_factory=list)
    # The witness (infra/witness.py): per site, its witness tinc port and its nodes' /32s. The
    # group lets each site's nodes reach that port only, and the witness reach their tinc port
    # (655) only. Rules are inline: a changed list updates the group in place, never the instance.
    witness_peers: pulumi.Input[list[tuple[int, list[str]]]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


def debian_ami_name_pattern(debian: int, architecture: str) -> str:
    """The image name filter for Debian `debian` on `architecture` (AWS's arm64 / x86_64)."""
    return f"debian-{debian}-{_DEBIAN_ARCH[architecture]}-*"


def _split_cidrs(cidrs: list[str]) -> tuple[list[str], list[str]]:
    networks = [ipaddress.ip_network(c) for c in cidrs]
    return ([str(n) for n in networks if n.version == 4], [str(n) for n in networks if n.version == 6])


class Redirector(pulumi.ComponentResource):
    """Outputs: `instance_id`, `security_group_id`, `ami_id` (the Debian image it booted),
    `ami_name`, `public_address` (the Elastic IP)."""

    instance_id: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    ami_id: pulumi.Output[str]
    ami_name: pulumi.Output[str]
    public_address: pulumi.Output[str]

    def __init__(self, name: str, args: RedirectorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("twinhost:platform:Redirector", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self._tags = {"twinhost": "platform", **args.tags}

        self.ami = self._lookup_ami()
        self.security_group = self._create_security_group()
        self.instance = self._create_instance()
        self.association = aws.ec2.EipAssociation(
            f"{name}-eip-association",
            allocation_id=args.address.allocation_id,
            instance_id=self.instance.id,
            # A rebuilt instance replaces the association. Create-then-delete would disassociate
            # the address from the NEW instance when the old association is deleted, so delete
            # first: a few seconds without a target, then the address follows the new instance.
            opts=self._child.merge(pulumi.ResourceOptions(delete_before_replace=True)),
        )

        self.instance_id = self.instance.id
        self.security_group_id = self.security_group.id
        self.ami_id = self.ami.id
        self.ami_name = self.ami.name
        self.public_address = args.address.public_ip
        self.register_outputs(
            {
                "instance_id": self.instance_id,
                "security_group_id": self.security_group_id,
                "ami_id": self.ami_id,
                "ami_name": self.ami_name,
                "public_address": self.public_address,
            }
        )

    # -- steps ---------------------------------------------------------------------------------

    def _lookup_ami(self) -> pulumi.Output[aws.ec2.GetAmiResult]:
        """The newest official Debian image for the release and the instance type's CPU."""
        architecture = self._args.settings.architecture
        return aws.ec2.get_ami_output(
            owners=[DEBIAN_AMI_OWNER],
            most_recent=True,
            filters=[
                aws.ec2.GetAmiFilterArgs(
                    name="name", values=[debian_ami_name_pattern(self._args.debian, architecture)]
                ),
                aws.ec2.GetAmiFilterArgs(name="architecture", values=[architecture]),
                aws.ec2.GetAmiFilterArgs(name="virtualization-type", values=["hvm"]),
                aws.ec2.GetAmiFilterArgs(name="root-device-type", values=["ebs"]),
            ],
            opts=pulumi.InvokeOutputOptions(parent=self),
        )

    def _create_security_group(self) -> aws.ec2.SecurityGroup:
        admin_v4, admin_v6 = _split_cidrs(self._args.admin_cidrs)
        resolvers_v4, resolvers_v6 = _split_cidrs(
            [f"{r}/32" if ":" not in r else f"{r}/128" for r in self._args.resolvers]
        )
        web = [
            aws.ec2.SecurityGroupIngressArgs(
                description=description,
                protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_blocks=[_ANYWHERE_V4],
                ipv6_cidr_blocks=[_ANYWHERE_V6],
            )
            for port, description in (
                (80, "HTTP redirects and ACME HTTP-01 challenges"),
                (443, "HTTPS redirects"),
            )
        ]
        ssh = aws.ec2.SecurityGroupIngressArgs(
            description="SSH from the admin networks only",
            protocol="tcp",
            from_port=22,
            to_port=22,
            cidr_blocks=admin_v4,
            ipv6_cidr_blocks=admin_v6,
        )
        egress = [
            aws.ec2.SecurityGroupEgressArgs(
                description="HTTP(S): apt, ACME, and later the watcher's checks and DNS APIs",
                protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_blocks=[_ANYWHERE_V4],
                ipv6_cidr_blocks=[_ANYWHERE_V6],
            )
            for port in (80, 443)
        ]
        egress.append(
            aws.ec2.SecurityGroupEgressArgs(
                description="NTP",
                protocol="udp",
                from_port=123,
                to_port=123,
                cidr_blocks=[_ANYWHERE_V4],
                ipv6_cidr_blocks=[_ANYWHERE_V6],
            )
        )
        if resolvers_v4 or resolvers_v6:
            egress.extend(
                aws.ec2.SecurityGroupEgressArgs(
                    description="DNS to the apex registry's resolvers",
                    protocol=protocol,
                    from_port=53,
                    to_port=53,
                    cidr_blocks=resolvers_v4,
                    ipv6_cidr_blocks=resolvers_v6,
                )
                for protocol in ("udp", "tcp")
            )
        peers = pulumi.Output.from_input(self._args.witness_peers)
        return aws.ec2.SecurityGroup(
            f"{self._name}-sg",
            # The description forces a replacement when it changes: keep it fixed.
            description="twinhost redirector: web from anywhere, SSH from the admin networks",
            ingress=peers.apply(lambda p: [*web, ssh, *_witness_ingress(p)]),
            egress=peers.apply(lambda p: [*egress, *_witness_egress(p)]),
            # Rules are removed before the group is deleted, so a replaced instance never blocks it.
            revoke_rules_on_delete=True,
            tags={"Name": "twinhost-redirector", **self._tags},
            opts=self._child,
        )

    def _create_instance(self) -> aws.ec2.Instance:
        settings = self._args.settings
        return aws.ec2.Instance(
            f"{self._name}-instance",
            ami=self.ami.id,
            instance_type=settings.instance_type,
            vpc_security_group_ids=[self.security_group.id],
            # The Elastic IP arrives seconds after launch; until then apt and cloud-init need a
            # way out, and AWS releases this address when the Elastic IP is associated.
            associate_public_ip_address=True,
            # IMDSv2 only: a token (PUT, hop limit 1) is needed, so a request forged through
            # Caddy or any SSRF cannot read the instance's metadata or user data.
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_type="gp3",
                volume_size=settings.volume_gib,
                encrypted=True,  # the account's default EBS key; the disk holds ACME account keys
                delete_on_termination=True,
                tags={"Name": "twinhost-redirector", **self._tags},
            ),
            # Burstable instances default to "unlimited" credits on t4g/t3: a stuck process
            # would then bill CPU surplus. "standard" throttles instead; a redirector idles.
            credit_specification=aws.ec2.InstanceCreditSpecificationArgs(cpu_credits="standard"),
            user_data_base64=pulumi.Output.secret(self._args.user_data_base64),
            user_data_replace_on_change=False,
            # Changing the profile is an in-place association, never a replacement.
            iam_instance_profile=self._args.instance_profile,
            tags={"Name": "twinhost-redirector", **self._tags},
            # User data runs once, at first boot; a newer Debian image appears every few weeks.
            # Neither may replace the serving instance on a routine `pulumi up`: rebuilding it
            # (new image, new user data) is `pulumi up --replace <instance urn>` (docs/platform.md).
            opts=self._child.merge(
                pulumi.ResourceOptions(ignore_changes=["user_data", "user_data_base64", "ami"])
            ),
        )


def _witness_ingress(peers: list[tuple[int, list[str]]]) -> list[aws.ec2.SecurityGroupIngressArgs]:
    """Each site's witness tinc port, from that site's nodes only."""
    return [
        aws.ec2.SecurityGroupIngressArgs(
            description="witness tinc from the site's nodes",
            protocol=protocol,
            from_port=int(port),
            to_port=int(port),
            cidr_blocks=list(cidrs),
        )
        for port, cidrs in peers
        for protocol in ("tcp", "udp")
    ]


def _witness_egress(peers: list[tuple[int, list[str]]]) -> list[aws.ec2.SecurityGroupEgressArgs]:
    """tinc (655) to every witnessed node: the witness dials them too."""
    cidrs = sorted({c for _, site_cidrs in peers for c in site_cidrs})
    if not cidrs:
        return []
    return [
        aws.ec2.SecurityGroupEgressArgs(
            description="witness tinc to the sites' nodes",
            protocol=protocol,
            from_port=TINC_PORT,
            to_port=TINC_PORT,
            cidr_blocks=cidrs,
        )
        for protocol in ("tcp", "udp")
    ]
