"""A WordPress site's keys and salts, as Pulumi secrets (app kind `wordpress`).

WordPress signs its login cookies and nonces with eight keys and salts (`AUTH_KEY` ...
`NONCE_SALT`). Both nodes must hold the same ones, or a visitor logged in through one node is
logged out by the other; and they are secrets: whoever has them can forge a login cookie. So
the stack makes them once (pulumi_random), keeps them secret end to end, and each node gets them
only inside its user data (itself a secret), in the app's 0600 environment file
(infra/bootstrap/wordpress.py), never in a PHP file or a plain output.

What it deliberately does not do: rotate them (new values are new user data; rotation, which
logs every user out, is a runbook step in docs/wordpress.md).
"""

from __future__ import annotations

import pulumi
import pulumi_random as random

from infra.config.fields import WORDPRESS_ENV

# Letters and digits, 64 of them (about 380 bits): as long as WordPress's own generator's, and
# safe inside the systemd environment file and php-fpm's `env[]` without any quoting.
KEY_LENGTH = 64


class WordPressKeys(pulumi.ComponentResource):
    """Outputs: `keys`, {WORDPRESS_<NAME>: secret value} for the eight keys and salts."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("twinhost:site:WordPressKeys", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.keys: dict[str, pulumi.Output[str]] = {}
        for env_name in WORDPRESS_ENV:
            value = random.RandomPassword(
                f"{name}-{env_name.removeprefix('WORDPRESS_').lower().replace('_', '-')}",
                length=KEY_LENGTH,
                special=False,
                opts=child,
            )
            # The provider marks `result` secret; say so here too, so no code path can unwrap it.
            self.keys[env_name] = pulumi.Output.secret(value.result)
        self.register_outputs({"keys": self.keys})
