"""Node bootstrap: renders a node's #cloud-config from a NodeSpec.

PROVISIONAL: the full renderers (hardening, tinc, GlusterFS, app, web front) are issue 5 and
replace this module. Until then this renders only the admin user and the tinc keys' placement,
so the plan has real user data to size and write.
"""

from __future__ import annotations

from typing import Any

import yaml

from infra.bootstrap.spec import NodeSpec

__all__ = ["render_user_data"]


def render_user_data(spec: NodeSpec) -> str:
    document: dict[str, Any] = {
        "hostname": spec.hostname,
        "locale": "C.UTF-8",
        "users": [{
            "name": spec.admin_user,
            "groups": ["sudo"],
            "shell": "/bin/bash",
            "ssh_authorized_keys": list(spec.ssh_keys),
        }],
        "write_files": [{
            "path": f"/etc/tinc/{spec.tinc_net}/rsa_key.priv",
            "permissions": "0600",
            "content": spec.tinc_private_key_pem,
        }],
    }
    if spec.origin_certificate_pem and spec.origin_private_key_pem:
        document["write_files"] += [
            {"path": "/etc/twinhost/tls/origin.pem", "permissions": "0644", "content": spec.origin_certificate_pem},
            {"path": "/etc/twinhost/tls/origin.key", "permissions": "0600", "content": spec.origin_private_key_pem},
        ]
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False)
