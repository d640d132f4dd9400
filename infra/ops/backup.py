"""`twinhost backup|backups|restore`: the site's off-pair backups, run on one node over ssh.

The node does the work (`/usr/local/sbin/twinhost-backup`, docs/backups.md): these functions pick
the node, run the script as root through sudo, stream its progress lines, and read its JSON.
One node is enough for everything: the shared volume and the Galera database replicate, so a
restore on one node restores the pair. The primary is asked first; when ssh cannot reach it,
the other node.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from infra.ops.deploy import Runner
from infra.ops.remote import Target

SCRIPT = "/usr/local/sbin/twinhost-backup"  # infra.bootstrap.backup.SCRIPT (not imported: Jinja)
BACKUP_TIMEOUT = 6 * 3600
REFUSED = 2  # the script's own exit code for a refusal (nothing changed)


class NoNodeError(Exception):
    """No node of the pair answered over ssh."""


@dataclass(frozen=True)
class Outcome:
    node: str
    code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def command(*args: str) -> list[str]:
    return ["sudo", "-n", SCRIPT, *args]


def pick_node(remote: Runner, targets: Sequence[Target], primary: str) -> Target:
    """The primary if ssh reaches it, else the other node."""
    ordered = sorted(targets, key=lambda t: t.role != primary)
    for target in ordered:
        if remote.run(target, ["true"], timeout=30).returncode != 255:
            return target
    raise NoNodeError("no node of the pair answers over ssh: " + ", ".join(t.address for t in ordered))


def run(
    remote: Runner, target: Target, args: Sequence[str], log: Callable[[str], None], timeout: float
) -> Outcome:
    done = remote.run(target, command(*args), timeout=timeout, on_line=log)
    return Outcome(target.role, done.returncode, str(done.stdout))


def json_tail(output: str) -> Any:
    """The last line of `output` that is JSON (the script's progress lines come before it)."""
    for line in reversed(output.splitlines()):
        if line.startswith(("{", "[")):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def snapshot_rows(snapshots: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(short id, time, paths) per snapshot, oldest first, as restic lists them."""
    return [
        (
            str(s.get("short_id") or str(s.get("id", ""))[:8]),
            str(s.get("time", ""))[:19].replace("T", " "),
            " ".join(s.get("paths", [])),
        )
        for s in snapshots
    ]


def describe_last(record: Any, now: float | None = None) -> str | None:
    """`twinhost-backup last` as one line for `twinhost status`: the last good backup's age."""
    if not isinstance(record, dict):
        return None
    success = record.get("success") or {}
    failure = record.get("failure") or {}
    current = now if now is not None else float(record.get("now") or time.time())
    parts = []
    if success.get("time"):
        age = (current - float(success["time"])) / 3600
        parts.append(
            f"last good {age:.1f} h ago ({success.get('node', '?')}, {success.get('snapshot', '?')})"
        )
    else:
        parts.append("no good backup yet")
    if failure.get("time") and float(failure["time"]) > float(success.get("time") or 0):
        parts.append(f"FAILED since at {failure.get('step', '?')}")
    return "; ".join(parts)
