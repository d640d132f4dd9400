"""Knot DNS (Debian's `knot`) as an authoritative server for an ops zone that takes RFC 2136
updates signed with one TSIG key: the lab's failover drill and the watcher's RFC 2136 tests
(tests/watcher/knot.py) both run it from this config."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def knot_conf(*, listen: str, directory: Path, zone: str, keys: Mapping[str, str], updater: str) -> str:
    """knot.conf for `zone` (its file `<directory>/<zone>.zone`) on `listen` ("address@port").
    `keys`: TSIG key id -> base64 secret (hmac-sha256), all known to the server; only `updater`
    may update the zone."""
    if updater not in keys:
        raise ValueError(f"the updating key {updater!r} is not among the keys {sorted(keys)}")
    key_entries = "".join(
        f"  - id: {key}\n    algorithm: hmac-sha256\n    secret: {secret}\n" for key, secret in keys.items()
    )
    return f"""server:
    listen: {listen}
    rundir: "{directory}"
log:
  - target: stderr
    any: info
database:
    storage: "{directory}"
control:
    listen: "{directory}/knot.sock"
key:
{key_entries}acl:
  - id: updater
    key: {updater}
    action: update
template:
  - id: default
    storage: "{directory}"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: changes
zone:
  - domain: {zone}
    acl: updater
"""
