"""What the watcher knows between checks, kept on disk so a restart resumes where it stopped.

Per node: its status (up/down) and the current success/failure streaks; per site: the address set
last seen in or written to DNS, and whether an all-down alert was already sent. A restarted watcher
therefore neither forgets a node that was going down nor notifies a move it already notified.

The file is written atomically (temp file in the same directory, fsync, rename): a crash or power
loss leaves the old state or the new one, never half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

STATE_FILE = "state.json"
STATE_VERSION = 1

Status = Literal["up", "down"]


@dataclass
class NodeState:
    address: str
    status: Status
    ok_streak: int = 0
    fail_streak: int = 0
    since: float = 0.0  # when the status last changed
    last_error: str | None = None


@dataclass
class SiteState:
    nodes: dict[str, NodeState] = field(default_factory=dict)
    # The A record as last read from or written to the provider; None = unknown, read it first.
    published: list[str] | None = None
    all_down_alerted: bool = False
    dns_failures: int = 0  # consecutive failed DNS calls while a change was due
    dns_alerted: bool = False
    backoff_until: float = 0.0  # a provider's rate limit asked us to wait until then


@dataclass
class State:
    sites: dict[str, SiteState] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"version": STATE_VERSION, "sites": {k: asdict(v) for k, v in self.sites.items()}}, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> State:
        data: dict[str, Any] = json.loads(text)
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"state version {data.get('version')!r} is not {STATE_VERSION}")
        sites = {}
        for name, raw in data["sites"].items():
            nodes = {n: NodeState(**v) for n, v in raw.pop("nodes", {}).items()}
            sites[name] = SiteState(nodes=nodes, **raw)
        return cls(sites=sites)


class StateStore:
    """Loads and atomically saves the state file in `directory`."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.path = Path(directory) / STATE_FILE

    def load(self) -> tuple[State, str | None]:
        """The saved state (empty if none), and a warning when a bad file was set aside."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return State(), None
        try:
            return State.from_json(text), None
        except (ValueError, KeyError, TypeError) as exc:
            # Starting empty is safe: nodes are then judged from what DNS publishes. Keep the bad
            # file for a post-mortem instead of overwriting it.
            aside = self.path.with_suffix(".bad")
            os.replace(self.path, aside)
            return State(), f"unreadable state file moved to {aside}: {exc}"

    def save(self, state: State) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(state.to_json())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        # The rename itself must reach the disk too.
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
