"""Facts about the outside world the program depends on, each defined once (no imports here).

The policy pack (`policy/twinhost_policy/rules.py`) runs as its own program and keeps its own
copy of the user-data limits; tests/policy/test_policy_constants.py proves the copies are equal.
"""

from __future__ import annotations

# Provider limits on user data, in bytes, as each provider counts them (how each node's user data
# is kept within USER_DATA_BUDGET of its limit: infra/bootstrap/render.py).
USER_DATA_LIMITS: dict[str, int] = {
    # DigitalOcean: "User data is limited to 64 KiB" (Droplet create API, user_data).
    "digitalocean": 64 * 1024,
    # Linode: its documentation, as far as we could search it (2026-12-05), states no limit for
    # `metadata.user_data`; 65,535 is assumed, counted on the base64 text the API receives (the
    # stricter reading).
    "linode": 65535,
    # EC2: "user data is limited to 16 KB, in raw form, before it is base64-encoded" (the
    # redirector's is gzip-compressed, so the gzip bytes count).
    "aws": 16 * 1024,
}

# Let's Encrypt's production ACME directory (the default CA of site nodes and the redirector).
LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"
