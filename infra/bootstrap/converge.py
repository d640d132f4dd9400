"""The desired state of a running node: what `pulumi up` sends to `twinhost-converge` on it.

First-boot user data is ignored after a node exists (the node resources ignore changes to it), so
everything that may change later travels this second path instead: the admin user's SSH keys,
the admin networks, the app's version, settings and secrets, the backup settings (time,
retention, on or off), and the mesh peer's public address (a replaced Linode has a new one).
`desired_state` is a pure
function of the config (tested without any engine); `infra/components/node_converge.py` sends
its JSON over SSH, and `cloudinit/site/usr/local/sbin/twinhost-converge` applies it. The files it
writes are the ones the first boot wrote, in the same format (`environment_text`, `unit_text`,
`backup_parts`), so converging a node to the config it booted with changes nothing. A node's
backup files name its role (primary or standby), so each node has its own desired state. See
docs/converge.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from infra.bootstrap import backup as backups
from infra.bootstrap import tinc, wordpress
from infra.bootstrap.app import environment_text, unit_text
from infra.bootstrap.spec import MeshPeer, WitnessPeer
from infra.config import App, Provider, WordPressApp

FORMAT = 1
SECRET_PLACEHOLDER = "[secret]"


def desired_state(
    *,
    admin_user: str,
    ssh_keys: Sequence[str],
    admin_cidrs: Sequence[str],
    app: App,
    app_secrets: Mapping[str, str],
    debian: int,
    database_env: Mapping[str, str] | None = None,
    app_keys: Mapping[str, str] | None = None,
    backup: backups.BackupNode | None = None,
    memory_mib: int | None = None,
    peer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The state `twinhost-converge` reads. It holds the `app_secrets` values (in the environment
    file's text) and the backup credentials: its JSON travels only as a Pulumi secret (`to_json`)
    and is shown through `summary`. `backup` None: the node's backups are left as they are.
    `memory_mib`: the node's, which sizes WordPress's php-fpm pool (required for kind
    `wordpress`). `peer`: the node's view of its mesh peer (`peer_state`); None: left as it is."""
    settings = dict(app.env)
    state: dict[str, Any] = {
        "format": FORMAT,
        "admin": {"user": admin_user, "sshKeys": list(ssh_keys), "cidrs": list(admin_cidrs)},
        "app": {
            "version": getattr(app, "version", "latest"),
            # The files the node compares and writes, made by the first boot's own functions.
            "environment": environment_text(settings, app_secrets, database_env, app_keys),
            # A container's unit names every variable it passes on: a new name changes the unit.
            "unit": unit_text(
                app, sorted({*(database_env or {}), *settings, *app_secrets, *(app_keys or {})}), debian
            ),
            # For people (the plan's summary); the node reads only the files above.
            "env": settings,
            "secretNames": sorted(app_secrets),
        },
    }
    if isinstance(app, WordPressApp):
        if memory_mib is None:
            raise ValueError("converge: kind 'wordpress' needs the node's memory_mib (its php-fpm pool)")
        # php-fpm passes PHP only the names its pool lists: a new name rewrites the pool, and
        # the redeploy the environment change causes starts the new slot's php-fpm with it.
        state["app"]["phpFpm"] = wordpress.php_fpm_config(
            debian=debian,
            env_names=wordpress.pool_env_names(database_env or {}, settings, app_secrets, app_keys or {}),
            max_children=wordpress.max_children(memory_mib),
        )
    if backup is not None:
        state["backup"] = backup_state(backup)
    if peer is not None:
        state["peer"] = dict(peer)
    return state


def peer_state(
    *, provider: Provider, tinc_net: str, peer: MeshPeer, witness: WitnessPeer | None
) -> dict[str, Any]:
    """Where the node reaches its mesh peer, as the first boot wrote it (the same functions):
    the peer's tinc host file, the ufw rules that let its tinc in, and on a droplet the addresses
    `twinhost-peer-route` routes. A replaced Linode has a new public IP: node A's converge gets
    it here in the same `pulumi up` and rewrites what differs (node B's peer, node A's reserved
    IP, never changes)."""
    rule = tinc.peer_tinc_rule(peer)
    state: dict[str, Any] = {
        # For people (the plan's summary); the node reads the entries below.
        "address": peer.public_address,
        "service": f"tinc@{tinc_net}.service",
        "hostFile": {"path": tinc.peer_host_path(tinc_net, peer), "content": tinc.peer_host_file(peer)},
        # ufw shows a rule with its comment: the node finds the peer's tinc rules by it.
        "firewall": {
            "comment": rule.reason[:60],
            "rules": [
                {"proto": proto, "from": source, "ufw": line} for proto, source, line in rule.entries()
            ],
        },
    }
    if provider == "digitalocean":
        state["route"] = {
            "path": tinc.PEER_ROUTE_ENV,
            "content": tinc.peer_route_env(tinc.routed_addresses(peer, witness)),
            "service": tinc.PEER_ROUTE_SERVICE,
        }
    return state


def backup_state(node: backups.BackupNode) -> dict[str, Any]:
    """The node's backup files and packages, made by the first boot's own `backup_parts`: the
    node writes the files that differ, installs missing packages and enables the timer (the first
    boot's commands). No files: backups are off, and the node stops its timer."""
    parts = backups.backup_parts(node)
    spec = node.backup
    return {
        "files": [{"path": f.path, "content": f.content, "mode": f.mode} for f in parts.files],
        "packages": list(parts.packages),
        "timer": backups.TIMER,
        # For people (the plan's summary); the node reads only the entries above.
        "shown": (
            f"{spec.time if node.is_primary else backups.standby_time(spec.time)} UTC "
            f"({'primary' if node.is_primary else 'standby'}), keep {spec.keep_daily} daily, "
            f"{spec.keep_weekly} weekly, {spec.keep_monthly} monthly"
            if spec
            else "off"
        ),
    }


def to_json(state: Mapping[str, Any]) -> str:
    """Stable text (sorted keys): the same config always gives the same stdin, so `pulumi
    preview` shows an update only when something really changed."""
    return json.dumps(state, sort_keys=True, separators=(",", ":"))


def summary(text: str) -> dict[str, str]:
    """What the offline plan shows of a desired state: everything but the secret values."""
    state = json.loads(text)
    admin, app = state["admin"], state["app"]
    settings = ", ".join(f"{k}={v}" for k, v in sorted(app["env"].items())) or "none"
    secrets = ", ".join(f"{k}={SECRET_PLACEHOLDER}" for k in app["secretNames"]) or "none"
    keys = [key.split()[2] if len(key.split()) > 2 else key.split()[0] for key in admin["sshKeys"]]
    shown = {
        "app.version": str(app["version"]),
        "app.env": settings,
        "appSecrets": secrets,
        "sshKeys": f"{len(keys)}: {', '.join(keys)}",
        "adminCidrs": ", ".join(admin["cidrs"]),
    }
    if "backup" in state:
        shown["backups"] = state["backup"]["shown"]
    if "peer" in state:
        shown["mesh peer"] = state["peer"]["address"]
    return shown
