"""Facts about the outside world the program depends on, each defined once (no imports here).

The policy pack (`policy/twinhost_policy/rules.py`) runs as its own program and keeps its own
copy of the user-data limits; tests/policy/test_policy_constants.py proves the copies are equal.
"""

from __future__ import annotations

# Provider limits on user data, in bytes, before any base64 the API needs.
USER_DATA_LIMITS: dict[str, int] = {
    # DigitalOcean: "User data is limited to 64 KiB" (Droplet create API, user_data).
    "digitalocean": 64 * 1024,
    # Linode Metadata: user_data is base64 of at most 65,535 bytes of plain text.
    "linode": 65535,
    # EC2: "user data is limited to 16 KB, in raw form, before it is base64-encoded" (the
    # redirector's is gzip-compressed, so the gzip bytes count).
    "aws": 16 * 1024,
}

# Let's Encrypt's production ACME directory (the default CA of site nodes and the redirector).
LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"
