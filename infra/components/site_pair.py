"""One client site: node A on DigitalOcean, node B on Linode, and everything between them.

Creation order matters because each node's first-boot data names its peer, and user data cannot
change after creation:
1. the reserved IP (node A's stable address) first, so node B's user data can name it;
2. node B (Linode), whose public address node A's user data then names;
3. node A (droplet), then the firewalls, which know every address by now;
4. the failover name, the apex registration the redirector reads, and, for proxied sites, the
   client's own records;
5. the converge of each running node (infra/components/node_converge.py): node A, its health
   gate, then node B. What may change after the first boot (app version, settings and secrets,
   SSH keys, admin networks, backup settings, and the peer's public address: a replaced Linode
   has a new one) reaches the nodes this way, as an update of those commands.

Node A's outbound traffic leaves from the droplet's own address, not the reserved IP, unless
routed: node B's cloud firewall allows the tinc port from both of node A's addresses, but node B's
own ufw can name only the reserved IP, because node B is created before node A (node A's user data
names node B's address) and so cannot know node A's own address. On DigitalOcean,
`twinhost-peer-route` makes node A's traffic to node B leave from the reserved IP (the anchor
address), which is what node B's ufw allows. If that route is missing, tinc's UDP from node A is
dropped at node B and tinc carries the mesh over its TCP connection instead (it probes UDP).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_digitalocean as digitalocean
import pulumi_tls as tls

from infra import catalog
from infra.bootstrap import converge, render_user_data
from infra.bootstrap.backup import BackupNode
from infra.bootstrap.database import cluster_name, connection_env, database_names
from infra.bootstrap.overrides import RenderOverrides
from infra.bootstrap.spec import (
    BackupSpec,
    DatabaseSpec,
    MeshPeer,
    NodeSpec,
    WitnessPeer,
    mesh_addresses,
    mesh_network,
    tinc_net_name,
    tinc_node_name,
)
from infra.components.apex_registration import ApexRegistration, ApexRegistrationArgs
from infra.components.cloud_firewalls import (
    DIGITALOCEAN_OUTBOUND,
    DigitalOceanFirewall,
    DigitalOceanFirewallArgs,
    LinodeFirewall,
    LinodeFirewallArgs,
)
from infra.components.digitalocean_node import DigitalOceanSiteNode, DigitalOceanSiteNodeArgs
from infra.components.dns_providers import cloudflare
from infra.components.failover_dns import FailoverDns, FailoverDnsArgs, OpsZone
from infra.components.firewall_rules import check_limits, node_inbound_rules
from infra.components.linode_node import LinodeSiteNode, LinodeSiteNodeArgs
from infra.components.node_converge import NodeConverge, NodeConvergeArgs
from infra.config import Provider, SiteConfig
from infra.constants import LETS_ENCRYPT_DIRECTORY
from infra.site_outputs import client_dns
from infra.witness import witness_mesh_address, witness_port

# tinc 1.0 authenticates peers with RSA keys; 3072 bits matches our floor for SSH keys.
TINC_RSA_BITS = 3072


@dataclass
class PlatformOutputs:
    """What a site reads from the platform stack (see `infra/platform.py` exports)."""

    redirector_address: pulumi.Input[str]
    ops_zone: OpsZone
    # The platform's `witness` output ({name, address, publicKeyPem}: infra/platform.py); None
    # (or an Output of None) when the platform has none: the pair then has no third vote.
    witness: pulumi.Input[dict[str, str] | None] = None
    # The platform's `backups` output ({bucket, region, endpoint}); None: the site has no backups.
    backups: pulumi.Input[dict[str, str]] | None = None
    # The platform's `notifyWebhook` output (secret); None: a failed backup alerts nobody.
    notify_webhook: pulumi.Input[str | None] = None


@dataclass
class SitePairArgs:
    config: SiteConfig
    platform: PlatformOutputs
    app_secrets: pulumi.Input[dict[str, str]] | None = None
    # The lab's render-time values (infra.bootstrap.overrides); `pulumi up` passes none.
    overrides: RenderOverrides | None = None


class SitePair(pulumi.ComponentResource):
    """Outputs: `failover_hostname`, `node_addresses` ({provider: address}), `client_dns`
    (the records the client must set, as plain text), `tinc_public_keys` ({provider: PEM})."""

    def __init__(self, name: str, args: SitePairArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("twinhost:site:SitePair", name, None, opts)
        self._config = args.config
        self._args = args
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        config = args.config

        self.failover_hostname = pulumi.Output.concat(config.site, ".", args.platform.ops_zone.name)
        self._create_tinc_keys()
        self.database = self._create_database_secrets()
        self.app_keys = self._create_app_keys()
        self.backups = self._create_backup_credentials()
        self.reserved_ip = digitalocean.ReservedIp(
            f"{name}-reserved-ip",
            region=config.digitalocean.region,
            # The address node A is known by (tinc peer, firewalls, DNS): it must outlive droplets.
            opts=self._child.merge(pulumi.ResourceOptions(protect=True)),
        )
        self.origin_tls = (
            cloudflare().origin_tls(f"{name}-origin-tls", config.site, self._server_names(), opts=self._child)
            if config.certificate_source == "cloudflare-origin"
            else None
        )
        self.linode_node = LinodeSiteNode(
            f"{name}-linode",
            LinodeSiteNodeArgs(
                site=config.site,
                settings=config.linode,
                debian=config.debian,
                user_data=self._user_data("linode"),
            ),
            opts=self._child,
        )
        self.digitalocean_node = DigitalOceanSiteNode(
            f"{name}-digitalocean",
            DigitalOceanSiteNodeArgs(
                site=config.site,
                settings=config.digitalocean,
                debian=config.debian,
                reserved_ip=self.reserved_ip,
                user_data=self._user_data("digitalocean"),
            ),
            opts=self._child,
        )
        self._create_firewalls()
        self.failover_dns = self._create_failover_dns()
        ApexRegistration(
            f"{name}-apex-registration",
            ApexRegistrationArgs(config.site, [d.name for d in config.domains], args.platform.ops_zone),
            opts=self._child,
        )
        self._create_client_records()
        self._create_converge()

        self.node_addresses = {
            "digitalocean": self.digitalocean_node.public_address,
            "linode": self.linode_node.public_address,
        }
        self.client_dns = self._client_instructions()
        # Public halves only: the platform's witness puts them in its host files.
        self.tinc_public_keys = {p: key.public_key_pem for p, key in self.tinc_keys.items()}
        self.witness_database, self.witness_database_key = self._witness_database()
        self.register_outputs(
            {
                "failover_hostname": self.failover_hostname,
                "node_addresses": self.node_addresses,
                "client_dns": self.client_dns,
                "tinc_public_keys": self.tinc_public_keys,
            }
        )

    # -- steps ---------------------------------------------------------------------------------

    def _create_tinc_keys(self) -> None:
        self.tinc_keys = {
            provider: tls.PrivateKey(
                f"{self._name}-tinc-{provider}",
                algorithm="RSA",
                rsa_bits=TINC_RSA_BITS,
                opts=self._child,
            )
            for provider in ("digitalocean", "linode")
        }

    def _create_database_secrets(self) -> Any:
        """The database password and the members' TLS, for a site with `database: mariadb`."""
        if self._config.database == "none":
            return None
        # Imported here: only a site with a database needs pulumi_random (a plan of a site
        # without one imports no SDK it does not use; tests/unit/test_sdk_imports.py).
        from infra.components.database_secrets import DatabaseSecrets, DatabaseSecretsArgs

        mesh = mesh_addresses(self._config.site)
        return DatabaseSecrets(
            f"{self._name}-database",
            DatabaseSecretsArgs(
                site=self._config.site,
                members={tinc_node_name(self._config.site, p): mesh[p] for p in ("digitalocean", "linode")},
                witness_address=witness_mesh_address(self._config.site),
            ),
            opts=self._child,
        )

    def _create_app_keys(self) -> Any:
        """WordPress's keys and salts, for app kind `wordpress` (which implies a database, so
        pulumi_random is imported already)."""
        if self._config.app.kind != "wordpress":
            return None
        from infra.components.wordpress_keys import WordPressKeys

        return WordPressKeys(f"{self._name}-wordpress", opts=self._child)

    def _create_backup_credentials(self) -> Any:
        """The restic key and the prefix-only S3 credentials, for a site with backups (on by
        default) whose platform has a backup bucket."""
        backups = self._args.platform.backups
        if not self._config.backups.enabled or backups is None:
            return None
        # Imported here: a site without backups imports neither pulumi_random nor this module.
        from infra.components.site_backups import SiteBackups, SiteBackupsArgs

        bucket = pulumi.Output.from_input(backups)
        return SiteBackups(
            f"{self._name}-backups",
            SiteBackupsArgs(
                site=self._config.site,
                bucket=bucket.apply(lambda b: str(b["bucket"])),
                region=bucket.apply(lambda b: str(b["region"])),
            ),
            opts=self._child,
        )

    def _witness_database(self) -> tuple[dict[str, Any] | None, pulumi.Output[str] | None]:
        """What the platform's witness needs to run this site's garbd: the cluster's name, the
        site's database CA and the witness's certificate (public), and its key (a secret, which
        the platform puts in SSM). (None, None) without a database."""
        if self.database is None or self.database.witness is None:
            return None, None
        public = {
            "cluster": cluster_name(self._config.site),
            "caPem": self.database.ca_certificate_pem,
            "certificatePem": self.database.witness.certificate_pem,
        }
        return public, self.database.witness.private_key_pem

    def _server_names(self) -> list[pulumi.Input[str]]:
        """Every name the web front answers for: www.<each domain>, then the failover name."""
        names: list[pulumi.Input[str]] = [f"www.{d.name}" for d in self._config.domains]
        return [*names, self.failover_hostname]

    def _http_sources(self) -> pulumi.Output[list[str]]:
        """Who may reach 80/443: everyone, or Cloudflare's edge (+ the watcher) when proxied."""
        if not self._config.proxied:
            return pulumi.Output.from_input([])
        ranges = catalog.cloudflare_ranges()
        edge = [*ranges["ipv4"], *ranges["ipv6"]]
        if self._config.failover.mode == "watchdog":
            # The platform's watcher checks /health directly at the node, not through Cloudflare.
            return pulumi.Output.from_input(self._args.platform.redirector_address).apply(
                lambda address: [*edge, f"{address}/32"]
            )
        return pulumi.Output.from_input(edge)

    def _peer_values(self, provider: Provider) -> dict[str, Any]:
        """What a node knows of its mesh peer, for its first boot and its converge alike: node
        A's peer is the Linode's public address (a new one when the Linode is replaced), node
        B's is node A's reserved IP (created first, never changes); and the witness."""
        peer: Provider = "linode" if provider == "digitalocean" else "digitalocean"
        return {
            "peer_public": self.tinc_keys[peer].public_key_pem,
            "peer_address": (
                self.linode_node.public_address if provider == "digitalocean" else self.reserved_ip.ip_address
            ),
            "witness": self._args.platform.witness,
        }

    def _mesh_peer(self, provider: Provider, resolved: dict[str, Any]) -> MeshPeer:
        """The peer as `_peer_values` resolved it. No other_source_addresses: node B is created
        before node A, so the droplet's own address is unknown to node B's first boot (module
        docstring); twinhost-peer-route makes node A's traffic to node B leave from the reserved
        IP instead."""
        site = self._config.site
        peer: Provider = "linode" if provider == "digitalocean" else "digitalocean"
        return MeshPeer(
            name=tinc_node_name(site, peer),
            public_address=resolved["peer_address"],
            mesh_address=mesh_addresses(site)[peer],
            tinc_public_key_pem=resolved["peer_public"],
        )

    def _user_data(self, provider: Provider) -> pulumi.Output[str]:
        """Render one node's #cloud-config once every value it names is known. Secret: it holds
        the node's tinc private key (and the origin key, and app secrets)."""
        config = self._config
        origin = self.origin_tls
        values: dict[str, Any] = {
            "own_key": self.tinc_keys[provider].private_key_pem,
            "own_public": self.tinc_keys[provider].public_key_pem,
            **self._peer_values(provider),
            "own_address": self.reserved_ip.ip_address if provider == "digitalocean" else None,
            "server_names": pulumi.Output.all(*self._server_names()),
            "http_sources": self._http_sources(),
            "watcher": self._args.platform.redirector_address,
            "origin_cert": origin.certificate_pem if origin else None,
            "origin_key": origin.private_key_pem if origin else None,
            "app_secrets": self._args.app_secrets or {},
            "db_password": self.database.password if self.database else None,
            "db_ca": self.database.ca_certificate_pem if self.database else None,
            "db_cert": (
                self.database.members[tinc_node_name(config.site, provider)].certificate_pem
                if self.database
                else None
            ),
            "db_key": (
                self.database.members[tinc_node_name(config.site, provider)].private_key_pem
                if self.database
                else None
            ),
            "app_keys": pulumi.Output.all(**self.app_keys.keys) if self.app_keys else {},
            **self._backup_values(),
        }
        settings = config.digitalocean if provider == "digitalocean" else config.linode
        mesh = mesh_addresses(config.site)
        overrides = self._args.overrides or RenderOverrides()  # production's values unless the lab's

        def database(resolved: dict[str, Any]) -> DatabaseSpec | None:
            if config.database == "none":
                return None
            name, user = database_names(config.site)
            return DatabaseSpec(
                cluster_name=cluster_name(config.site),
                name=name,
                user=user,
                password=resolved["db_password"],
                ca_pem=resolved["db_ca"],
                certificate_pem=resolved["db_cert"],
                private_key_pem=resolved["db_key"],
                # The witness's garbd is the third vote once the platform has a witness.
                witness_address=witness_mesh_address(config.site) if resolved["witness"] else None,
            )

        def render(resolved: dict[str, Any]) -> str:
            spec = NodeSpec(
                site=config.site,
                provider=provider,
                is_primary=provider == config.primary,
                hostname=f"{config.site}-{'do' if provider == 'digitalocean' else 'linode'}",
                debian=config.debian,
                memory_mib=settings.memory_mib,
                admin_user=config.admin_user,
                ssh_keys=tuple(config.ssh_keys),
                admin_cidrs=tuple(config.admin_cidrs),
                # Linode learns its own address only at boot; the renderer reads it on the node.
                public_address=resolved["own_address"] or "",
                tinc_net=tinc_net_name(config.site),
                tinc_node_name=tinc_node_name(config.site, provider),
                mesh_address=mesh[provider],
                mesh_prefix=mesh_network(config.site).prefixlen,
                tinc_private_key_pem=resolved["own_key"],
                tinc_public_key_pem=resolved["own_public"],
                peer=self._mesh_peer(provider, resolved),
                server_names=tuple(resolved["server_names"]),
                proxied=config.proxied,
                # The node's ufw separates Cloudflare's edge from the watcher's health checks.
                http_sources=tuple(s for s in resolved["http_sources"] if s != f"{resolved['watcher']}/32"),
                health_check_sources=(
                    (f"{resolved['watcher']}/32",)
                    if config.proxied and config.failover.mode == "watchdog"
                    else ()
                ),
                # Unattended reboots after kernel updates, never both nodes at once.
                reboot_time="03:30" if provider == "digitalocean" else "04:30",
                certificates=config.certificate_source,
                origin_certificate_pem=resolved["origin_cert"],
                origin_private_key_pem=resolved["origin_key"],
                acme_email=config.acme_email,
                app=config.app,
                apt_proxy=overrides.apt_proxy,
                extra_ca_pem=overrides.ca_pem,
                swap=overrides.swap,
                acme_directory=overrides.acme_directory or LETS_ENCRYPT_DIRECTORY,
                app_secrets=tuple(sorted((resolved["app_secrets"] or {}).items())),
                app_keys=tuple(sorted((resolved["app_keys"] or {}).items())),
                database=database(resolved),
                witness=_witness_peer(config.site, resolved["witness"]),
                backup=self._backup_spec(resolved),
            )
            return render_user_data(spec)

        return pulumi.Output.secret(pulumi.Output.all(**values).apply(render))

    def _backup_values(self) -> dict[str, Any]:
        """The outputs `_backup_spec` reads (all None without backups)."""
        backups = self.backups
        return {
            "backups": self._args.platform.backups if backups else None,
            "backup_key_id": backups.access_key_id if backups else None,
            "backup_secret": backups.secret_access_key if backups else None,
            "backup_password": backups.password if backups else None,
            "webhook": self._args.platform.notify_webhook if backups else None,
        }

    def _backup_spec(self, resolved: dict[str, Any]) -> BackupSpec | None:
        """The nodes' backups from the resolved `_backup_values`: for the first boot's user data
        and for the converge alike, so both write the same settings."""
        where = resolved["backups"]
        if not where:
            return None
        config = self._config
        settings = config.backups
        overrides = self._args.overrides or RenderOverrides()
        # The lab's S3 stand-in (plain http on the bridge) in place of the regional endpoint.
        endpoint = overrides.aws.endpoint_url.rstrip("/") if overrides.aws else where["endpoint"]
        return BackupSpec(
            repository=f"s3:{endpoint}/{where['bucket']}/{config.site}",
            region=where["region"],
            access_key_id=resolved["backup_key_id"],
            secret_access_key=resolved["backup_secret"],
            password=resolved["backup_password"],
            time=settings.time,
            keep_daily=settings.keep_daily,
            keep_weekly=settings.keep_weekly,
            keep_monthly=settings.keep_monthly,
            webhook=resolved["webhook"] or None,
        )

    def _create_firewalls(self) -> None:
        config = self._config
        admin = list(config.admin_cidrs)
        web = self._http_sources()
        # Node A (DigitalOcean) hears tinc from node B's address; node B from both of A's; both
        # from the witness (the redirector's Elastic IP), when the platform has one.
        witness = pulumi.Output.from_input(self._args.platform.witness).apply(
            lambda w: [w["address"]] if w else []
        )
        rules_a = pulumi.Output.all(web, self.linode_node.public_address, witness).apply(
            lambda v: node_inbound_rules(admin, v[0], [v[1]], v[2])
        )
        rules_b = pulumi.Output.all(
            web, self.digitalocean_node.public_address, self.digitalocean_node.egress_address, witness
        ).apply(lambda v: node_inbound_rules(admin, v[0], [v[1], v[2]], v[3]))
        # Check the provider limits with the largest rule set the config can produce, before
        # any resource is created (the addresses only change the count of peer sources).
        check_limits(
            node_inbound_rules(admin, self._static_http_sources(), ["192.0.2.1", "192.0.2.2"], ["192.0.2.4"]),
            outbound_rule_count=len(DIGITALOCEAN_OUTBOUND),
        )
        self.digitalocean_firewall = DigitalOceanFirewall(
            f"{self._name}-digitalocean-firewall",
            DigitalOceanFirewallArgs(config.site, self.digitalocean_node.droplet_id, rules_a),
            opts=self._child,
        )
        self.linode_firewall = LinodeFirewall(
            f"{self._name}-linode-firewall",
            LinodeFirewallArgs(config.site, self.linode_node.instance_id, rules_b),
            opts=self._child,
        )

    def _create_converge(self) -> None:
        """One node at a time: node A converges and must pass its health gate before node B
        starts, so a failure leaves node B serving what it served (module docstring, step 5)."""
        config = self._config
        self.digitalocean_converge = NodeConverge(
            f"{self._name}-digitalocean-converge",
            NodeConvergeArgs(
                host=self.digitalocean_node.public_address,
                admin_user=config.admin_user,
                # The web front's first name, as the first boot picks it (www.<first domain>).
                server_name=f"www.{config.domains[0].name}",
                desired_state=self._desired_state("digitalocean"),
                # The reserved IP must lead to this droplet, and the firewalls must hold the
                # admin networks (added ones too), before SSH can reach it.
                after=[
                    self.digitalocean_node.droplet,
                    self.digitalocean_node.assignment,
                    self.digitalocean_firewall,
                ],
            ),
            opts=self._child,
        )
        self.linode_converge = NodeConverge(
            f"{self._name}-linode-converge",
            NodeConvergeArgs(
                host=self.linode_node.public_address,
                admin_user=config.admin_user,
                # The web front's first name, as the first boot picks it (www.<first domain>).
                server_name=f"www.{config.domains[0].name}",
                desired_state=self._desired_state("linode"),
                after=[
                    self.linode_node.instance,
                    self.linode_firewall,
                    self.digitalocean_converge.converge,
                    self.digitalocean_converge.health,
                ],
            ),
            opts=self._child,
        )

    def _desired_state(self, provider: Provider) -> pulumi.Output[str]:
        """The JSON one node converges to (a secret: it holds appSecrets, generated keys and the
        backup credentials). The nodes differ only in their backup role."""
        config = self._config
        database = database_names(config.site) if config.database != "none" else None

        def render(resolved: dict[str, Any]) -> str:
            return converge.to_json(
                converge.desired_state(
                    admin_user=config.admin_user,
                    ssh_keys=config.ssh_keys,
                    admin_cidrs=config.admin_cidrs,
                    app=config.app,
                    app_secrets=resolved["app_secrets"] or {},
                    debian=config.debian,
                    # Kept in the environment file: a converge must not drop the DB_* settings
                    # or WordPress's keys that the first boot wrote.
                    database_env=connection_env(*database) if database else None,
                    app_keys=resolved["app_keys"] or None,
                    memory_mib=(
                        config.digitalocean if provider == "digitalocean" else config.linode
                    ).memory_mib,
                    # Always given: backups turned off reach the node too (its timer stops).
                    backup=BackupNode(
                        site=config.site,
                        provider=provider,
                        is_primary=provider == config.primary,
                        database_name=database[0] if database else None,
                        backup=self._backup_spec(resolved),
                    ),
                    # The peer's current address: a replaced Linode's new IP reaches node A here.
                    peer=converge.peer_state(
                        provider=provider,
                        tinc_net=tinc_net_name(config.site),
                        peer=self._mesh_peer(provider, resolved),
                        witness=_witness_peer(config.site, resolved["witness"]),
                    ),
                )
            )

        values: dict[str, Any] = {
            "app_secrets": pulumi.Output.from_input(self._args.app_secrets or {}),
            "app_keys": pulumi.Output.all(**self.app_keys.keys) if self.app_keys else {},
            **self._peer_values(provider),
            **self._backup_values(),
        }
        return pulumi.Output.secret(pulumi.Output.all(**values).apply(render))

    def _static_http_sources(self) -> list[str]:
        if not self._config.proxied:
            return []
        ranges = catalog.cloudflare_ranges()
        extra = ["192.0.2.3/32"] if self._config.failover.mode == "watchdog" else []
        return [*ranges["ipv4"], *ranges["ipv6"], *extra]

    def _create_failover_dns(self) -> FailoverDns:
        config = self._config
        return FailoverDns(
            f"{self._name}-failover",
            FailoverDnsArgs(
                site=config.site,
                mode=config.failover.mode,
                zone=self._args.platform.ops_zone,
                addresses={
                    "digitalocean": self.digitalocean_node.public_address,
                    "linode": self.linode_node.public_address,
                },
                primary=config.primary,
                active=config.failover.active,
                ttl=config.record_ttl,
                proxied=config.proxied,
                check_interval=config.failover.check_interval,
                failures=config.failover.failures,
                recoveries=config.failover.recoveries,
                cloudflare_account_id=config.failover.account_id,
            ),
            opts=self._child,
        )

    def _create_client_records(self) -> None:
        """Proxied sites keep their zone in the agency's Cloudflare account, so the stack sets the
        client's records itself: www -> failover name (proxied), apex -> redirector (DNS-only)."""
        for domain in self._config.domains:
            if domain.cloudflare_zone_id is None:
                continue
            cloudflare().client_records(
                self._name,
                self,
                domain.cloudflare_zone_id,
                domain.name,
                failover_hostname=self.failover_hostname,
                redirector_address=self._args.platform.redirector_address,
                proxied=self._config.proxied,
                ttl=self._config.record_ttl or 60,
            )

    def _client_instructions(self) -> pulumi.Output[str]:
        domains = [d.name for d in self._config.domains]
        return pulumi.Output.all(self.failover_hostname, self._args.platform.redirector_address).apply(
            lambda v: client_dns(domains, v[0], v[1])
        )


def _witness_peer(site: str, witness: dict[str, str] | None) -> WitnessPeer | None:
    """The platform's witness as this site's third mesh member (`infra.witness`: its port and
    its `.3` address are computed from the site name, the same way the platform does)."""
    if not witness:
        return None
    return WitnessPeer(
        name=witness["name"],
        public_address=witness["address"],
        port=witness_port(site),
        mesh_address=witness_mesh_address(site),
        tinc_public_key_pem=witness["publicKeyPem"],
    )
