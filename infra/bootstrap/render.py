"""One node's `#cloud-config`, merged from the concerns in the order they must run.

    hardening (admin, sshd, firewall with every opening below, fail2ban, upgrades, rkhunter,
    sysctl, swap) -> tinc mesh -> GlusterFS -> database (optional) -> backups (optional) -> app
    -> web front

`render_user_data(spec)` is the only function the Pulumi side needs. The result holds this
node's secrets (its tinc private key, the origin certificate key, app secrets): pass it to the
provider as a secret, and never print it.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
from collections.abc import Callable
from typing import Any

from infra.bootstrap.app import app_parts, slot_ports
from infra.bootstrap.backup import backup_parts
from infra.bootstrap.database import database_firewall_rules, database_parts
from infra.bootstrap.glusterfs import glusterfs_parts
from infra.bootstrap.hardening import hardening_parts
from infra.bootstrap.parts import Parts, cloud_config, compact, dump_cloud_config, merge, pack
from infra.bootstrap.spec import NodeSpec
from infra.bootstrap.tinc import tinc_firewall_rules, tinc_parts
from infra.bootstrap.webfront import web_firewall_rules, webfront_parts
from infra.constants import USER_DATA_LIMITS

# How each provider receives the user data, and how it is kept under budget (the limits:
# infra.constants.USER_DATA_LIMITS):
# Every node's document drops comment-only lines (`compact`; secret files ship whole, a `#!`
# script loses only the comment block after its `#!` line): the repository keeps the commented copy.
# - digitalocean: the `#cloud-config` text itself (the API's user_data is a JSON string, so no
#   binary), files above PACK_ABOVE bytes shipped as gz+b64 (`pack`); the document stays YAML.
# - linode: the API's `metadata.user_data` is base64; the document is gzipped whole first
#   (cloud-init gunzips user data from any datasource; the Akamai datasource base64-decodes it).
#   Its limit is counted against the base64 form: Linode's documentation, as far as we could
#   search it, does not state the limit of `metadata.user_data`; we assume 65,535 bytes
#   on what the API receives, the base64 text.
# - aws: the redirector, gzipped whole (infra.redirector.user_data_base64); EC2 counts the
#   gzip bytes, before its base64.
# - digitalocean, when even the packed document is above USER_DATA_BUDGET (a site with a
#   database): the document with plain files, gzipped whole as the one part of a MIME message,
#   base64 (text, as the API needs); cloud-init decodes and gunzips such a part
#   (`digitalocean_user_data`). Documents within the budget ship as YAML, readable in the
#   provider's console.
GZIPPED_WHOLE = frozenset({"linode", "aws"})
# Every node's user data, as its provider counts it, stays within this share of the limit: room
# for what the data layer adds (issue 16). Checked in tests/bootstrap/test_user_data_budget.py.
USER_DATA_BUDGET = 0.60


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
                open_ports=(
                    *web_firewall_rules(spec),
                    *tinc_firewall_rules(spec),
                    *database_firewall_rules(spec),
                ),
            )
        ),
        attempt(lambda: tinc_parts(spec)),
        attempt(lambda: glusterfs_parts(spec)),
        attempt(lambda: database_parts(spec)),
        attempt(lambda: backup_parts(spec)),
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
    """The node's complete `#cloud-config` user data, as cloud-init reads it: comment-only lines
    dropped, and large files packed (gz+b64) unless the provider's copy is gzipped whole."""
    parts = node_parts(spec)
    # Comment-only lines out of every file but the secret ones (their lines are values: a quoted
    # multi-line secret may hold a line that looks like a comment): the repository keeps the
    # commented copy. Gzip then has a quarter less to carry.
    lean = compact(parts)
    lean = dataclasses.replace(
        lean,
        files=tuple(
            original if original.secret else stripped
            for original, stripped in zip(parts.files, lean.files, strict=True)
        ),
    )
    if spec.provider in GZIPPED_WHOLE:
        return dump_cloud_config(cloud_config(lean, base_config(spec)))
    packed = dump_cloud_config(cloud_config(pack(lean), base_config(spec)))
    if len(packed.encode()) <= _within_budget(spec.provider):
        return packed
    # Above the budget even packed: `digitalocean_user_data` gzips the document whole, and gzip
    # over gz+b64 files gains little, so that document keeps its files plain (a site with the
    # database: 51 % of the limit instead of 61 %).
    return dump_cloud_config(cloud_config(lean, base_config(spec)))


def _within_budget(provider: str) -> float:
    return USER_DATA_BUDGET * USER_DATA_LIMITS[provider]


def linode_user_data(text: str) -> str:
    """What Linode's `metadata.user_data` takes: base64 of the gzipped document (reproducible:
    no timestamp in the gzip header, so the same text gives the same value)."""
    return base64.b64encode(gzip.compress(text.encode(), compresslevel=9, mtime=0)).decode("ascii")


MIME_BOUNDARY = "twinhost-user-data"  # base64 has no '-': never inside the part


def digitalocean_user_data(text: str) -> str:
    """What DigitalOcean's `user_data` takes: the document as is while it is within the budget;
    above it, one gzip MIME part (base64, lines of 76), which cloud-init decodes and gunzips
    before reading the `#cloud-config` inside (reproducible: no timestamp in the gzip)."""
    if len(text.encode()) <= _within_budget("digitalocean"):
        return text
    packed = base64.encodebytes(gzip.compress(text.encode(), compresslevel=9, mtime=0)).decode("ascii")
    return (
        f'Content-Type: multipart/mixed; boundary="{MIME_BOUNDARY}"\nMIME-Version: 1.0\n\n'
        f"--{MIME_BOUNDARY}\nContent-Type: application/x-gzip\nMIME-Version: 1.0\n"
        'Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="cloud-config.gz"\n\n'
        f"{packed}--{MIME_BOUNDARY}--\n"
    )


def digitalocean_document(user_data: str) -> str:
    """The `#cloud-config` inside what `digitalocean_user_data` made (the plan writes this)."""
    if not user_data.startswith("Content-Type: multipart/mixed"):
        return user_data
    body = user_data.split("\n\n", 2)[2].split(f"--{MIME_BOUNDARY}--", 1)[0]
    return gzip.decompress(base64.b64decode(body)).decode()


def provider_user_data_size(provider: str, text: str) -> int:
    """The size of `text` as `provider` counts it against USER_DATA_LIMITS: DigitalOcean the
    text, Linode the base64 it receives, AWS the gzip bytes (before EC2's base64)."""
    if provider == "linode":
        return len(linode_user_data(text))
    if provider == "aws":
        return len(gzip.compress(text.encode(), compresslevel=9, mtime=0))
    return len(digitalocean_user_data(text).encode())


def secret_values(spec: NodeSpec) -> tuple[str, ...]:
    """The secret strings a spec carries (to check logs and files for leaks)."""
    values = [spec.tinc_private_key_pem.strip()]
    if spec.origin_private_key_pem:
        values.append(spec.origin_private_key_pem.strip())
    values += [value for _, value in spec.app_secrets if value]
    values += [value for _, value in spec.app_keys if value]
    if spec.database is not None:
        values += [spec.database.password, spec.database.private_key_pem.strip()]
    if spec.backup is not None:
        values += [spec.backup.secret_access_key, spec.backup.password]
        values += [spec.backup.webhook] if spec.backup.webhook else []
    return tuple(values)


def render_parts(parts: Parts, *, hostname: str, extra: dict[str, Any] | None = None) -> str:
    """`#cloud-config` for any host from already merged parts (the redirector: its
    `hardening_parts(...)` merged with its own parts)."""
    base: dict[str, Any] = {"hostname": hostname.split(".", 1)[0], "manage_etc_hosts": True}
    base.update(extra or {})
    return dump_cloud_config(cloud_config(parts, base))
