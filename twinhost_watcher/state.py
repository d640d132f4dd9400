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
        return json.dumps(
            {"version": STATE_VERSION, "sites": {k: asdict(v) for k, v in self.sites.items()}},
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> State:
        """Parse and check the shape of every value: a file of the wrong shape (hand-edited, from
        another version, damaged) raises ValueError here, never a crash later in the engine."""
        data = json.loads(text)
        _expect(isinstance(data, dict), "the file is not a JSON object")
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"state version {data.get('version')!r} is not {STATE_VERSION}")
        _expect(isinstance(data.get("sites"), dict), "'sites' is not an object")
        sites = {}
        for name, raw in data["sites"].items():
            _expect(isinstance(raw, dict), f"site {name!r} is not an object")
            raw = dict(raw)
            nodes_raw = raw.pop("nodes", {})
            _expect(isinstance(nodes_raw, dict), f"site {name!r}: 'nodes' is not an object")
            nodes = {}
            for node, values in nodes_raw.items():
                _expect(isinstance(values, dict), f"node {name}/{node} is not an object")
                _check_fields(f"node {name}/{node}", values, _NODE_FIELDS)
                _expect(values.get("status") in ("up", "down"), f"node {name}/{node}: bad status")
                nodes[node] = NodeState(**values)
            _check_fields(f"site {name!r}", raw, _SITE_FIELDS)
            sites[name] = SiteState(nodes=nodes, **raw)
        return cls(sites=sites)


def _expect(condition: bool, problem: str) -> None:
    if not condition:
        raise ValueError(problem)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_addresses(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(a, str) for a in value))


# Each field's check; a field missing from the file takes its default (required ones excepted).
_NODE_FIELDS = {
    "address": lambda v: isinstance(v, str),
    "status": lambda v: isinstance(v, str),
    "ok_streak": _is_int,
    "fail_streak": _is_int,
    "since": _is_number,
    "last_error": lambda v: v is None or isinstance(v, str),
}
_NODE_REQUIRED = ("address", "status")
_SITE_FIELDS = {
    "published": _is_addresses,
    "all_down_alerted": lambda v: isinstance(v, bool),
    "dns_failures": _is_int,
    "dns_alerted": lambda v: isinstance(v, bool),
    "backoff_until": _is_number,
}


def _check_fields(where: str, values: dict[str, Any], fields: dict[str, Any]) -> None:
    unknown = sorted(set(values) - set(fields))
    _expect(not unknown, f"{where}: unknown keys {unknown}")
    if fields is _NODE_FIELDS:
        missing = [k for k in _NODE_REQUIRED if k not in values]
        _expect(not missing, f"{where}: missing {missing}")
    for key, value in values.items():
        _expect(fields[key](value), f"{where}: bad {key} {value!r}")


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
