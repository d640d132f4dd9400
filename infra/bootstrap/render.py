"""One node's `#cloud-config`, merged from the concerns in the order they must run.

    hardening (admin, sshd, firewall with every opening below, fail2ban, upgrades, rkhunter,
    sysctl, swap) -> tinc mesh -> GlusterFS -> app -> web front

`render_user_data(spec)` is the only function the Pulumi side needs. The result holds this
node's secrets (its tinc private key, the origin certificate key, app secrets): pass it to the
provider as a secret, and never print it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infra.bootstrap.app import app_parts, slot_ports
from infra.bootstrap.glusterfs import glusterfs_parts
from infra.bootstrap.hardening import hardening_parts
from infra.bootstrap.parts import Parts, cloud_config, dump_cloud_config, merge
from infra.bootstrap.spec import NodeSpec
from infra.bootstrap.tinc import tinc_firewall_rules, tinc_parts
from infra.bootstrap.webfront import web_firewall_rules, webfront_parts


def node_parts(spec: NodeSpec) -> Parts:
    """Every concern's parts for this node, merged; all problems in the spec reported at once."""
    problems: list[str] = []

    def attempt(build: Callable[[], Parts]) -> Parts:
        try:
            return build()
        except ValueError as exc:
            problems.append(str(exc))
            return Parts()

    server_name = spec.server_names[0] if spec.server_names else "localhost"
    parts = [
        attempt(
            lambda: hardening_parts(
                admin_user=spec.admin_user,
                ssh_keys=spec.ssh_keys,
                admin_cidrs=spec.admin_cidrs,
                debian=spec.debian,
                memory_mib=spec.memory_mib,
                apt_proxy=spec.apt_proxy,
                reboot_time=spec.reboot_time,
                swap=spec.swap,
                open_ports=(*web_firewall_rules(spec), *tinc_firewall_rules(spec)),
            )
        ),
        attempt(lambda: tinc_parts(spec)),
        attempt(lambda: glusterfs_parts(spec)),
        attempt(lambda: app_parts(spec, server_name=server_name)),
        attempt(lambda: webfront_parts(spec, app_port=slot_ports(spec.app.port)[0])),
    ]
    if problems:
        raise ValueError(f"cannot render user data for {spec.hostname}:\n  - " + "\n  - ".join(problems))
    return merge(parts)


def base_config(spec: NodeSpec) -> dict[str, Any]:
    short = spec.hostname.split(".", 1)[0]
    base: dict[str, Any] = {"hostname": short}
    if "." in spec.hostname:
        base["fqdn"] = spec.hostname
    # /etc/hosts names this host (sudo and glusterd resolve it).
    base["manage_etc_hosts"] = True
    if spec.extra_ca_pem:
        # The lab's ACME CA: certbot (via Debian's python3-certifi) trusts the system store.
        base["ca_certs"] = {"trusted": [spec.extra_ca_pem.strip() + "\n"]}
    return base


def render_user_data(spec: NodeSpec) -> str:
    """The node's complete `#cloud-config` user data."""
    return dump_cloud_config(cloud_config(node_parts(spec), base_config(spec)))


def secret_values(spec: NodeSpec) -> tuple[str, ...]:
    """The secret strings a spec carries (to check logs and files for leaks)."""
    values = [spec.tinc_private_key_pem.strip()]
    if spec.origin_private_key_pem:
        values.append(spec.origin_private_key_pem.strip())
    values += [value for _, value in spec.app_secrets if value]
    return tuple(values)


def render_parts(parts: Parts, *, hostname: str, extra: dict[str, Any] | None = None) -> str:
    """`#cloud-config` for any host from already merged parts (the redirector: its
    `hardening_parts(...)` merged with its own parts)."""
    base: dict[str, Any] = {"hostname": hostname.split(".", 1)[0], "manage_etc_hosts": True}
    base.update(extra or {})
    return dump_cloud_config(cloud_config(parts, base))
