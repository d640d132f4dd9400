"""Shared fakes for the watcher tests: a clock that never really sleeps, scripted health checks,
an in-memory DNS backend, and a log that the tests can read back as events."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from twinhost_watcher.backends import DnsError
from twinhost_watcher.config import WatcherConfig, parse_config
from twinhost_watcher.engine import Engine
from twinhost_watcher.health import Result, Target
from twinhost_watcher.log import EventLog
from twinhost_watcher.state import StateStore

A, B = "192.0.2.10", "198.51.100.20"  # documentation addresses: data only, never contacted


class FakeClock:
    """Starts at a fixed time; `sleep` advances it instead of waiting."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.wall = start
        self.mono = 1000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


class ScriptedChecker:
    """Health results from a script: `health[node] = True/False` for the next tick, or a function
    of the tick number. Records every call."""

    def __init__(self, default: bool = True):
        self.health: dict[str, bool | Callable[[int], bool]] = {}
        self.default = default
        self.ticks = 0
        self.calls: list[list[Target]] = []

    def __call__(self, targets: Sequence[Target]) -> dict[tuple[str, str], Result]:
        self.ticks += 1
        self.calls.append(list(targets))
        out = {}
        for target in targets:
            rule = self.health.get(target.key[1], self.default)
            ok = rule(self.ticks) if callable(rule) else rule
            out[target.key] = Result(ok, "200" if ok else "timeout after 3s", 0.01)
        return out


class MemoryBackend:
    """A DNS provider in memory; counts reads and writes; can be told to fail."""

    name = "memory"

    def __init__(self, addresses: list[str] | None = None):
        self.addresses = list(addresses or [])
        self.ttl: int | None = None
        self.gets = 0
        self.sets: list[list[str]] = []
        self.fail_next: list[DnsError] = []

    def get(self) -> list[str]:
        self.gets += 1
        if self.fail_next:
            raise self.fail_next.pop(0)
        return sorted(self.addresses)

    def set(self, addresses: list[str], ttl: int) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)
        assert addresses, "the engine asked to empty the record"
        self.sets.append(list(addresses))
        self.addresses, self.ttl = list(addresses), ttl


class RecordingNotifier:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def notify(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


class Events:
    """The JSON log lines written so far, decoded."""

    def __init__(self, stream: io.StringIO):
        self.stream = stream

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.all() if e["event"] == event]


def site_config(**overrides: Any) -> WatcherConfig:
    """One site, two nodes, an RFC 2136 backend (unused: engine tests inject MemoryBackend)."""
    data: dict[str, Any] = {
        "interval": 5,
        "failures": 3,
        "recoveries": 2,
        "timeout": 3,
        "stateDir": "/nonexistent",
        "sites": [
            {
                "site": "acme",
                "record": "acme.ops.example.net",
                "zone": "ops.example.net",
                "dns": {
                    "backend": "rfc2136",
                    "server": "127.0.0.1",
                    "tsigKeyName": "watcher.",
                    "tsigSecret": "tsig",
                },
                "nodes": [{"name": "digitalocean", "address": A}, {"name": "linode", "address": B}],
            }
        ],
    }
    data.update(overrides)
    return parse_config(data)


class Harness:
    """An engine wired to fakes, plus a way to build a fresh one on the same state (a restart)."""

    def __init__(self, tmp_path: Any, record: list[str], config: WatcherConfig | None = None):
        self.config = config or site_config()
        self.clock = FakeClock()
        self.checker = ScriptedChecker()
        self.backend = MemoryBackend(record)
        self.notifier = RecordingNotifier()
        self.stream = io.StringIO()
        self.events = Events(self.stream)
        self.state_dir = tmp_path / "state"
        self.engine = self.restart()

    def restart(self) -> Engine:
        self.engine = Engine(
            self.config,
            {"acme": self.backend},
            self.checker,
            StateStore(self.state_dir),
            EventLog(self.clock.now, self.stream),
            self.clock,
            self.notifier,
        )
        return self.engine

    def ticks(self, count: int) -> None:
        for _ in range(count):
            self.engine.tick()
            self.clock.advance(self.config.interval)


@pytest.fixture
def both_up(tmp_path: Any) -> Harness:
    """Both nodes in the record and healthy: the normal state."""
    return Harness(tmp_path, [A, B])


@pytest.fixture(scope="session")
def knot(tmp_path_factory: pytest.TempPathFactory):
    """One real Knot DNS server on 127.0.0.1 for the whole run (installed if missing)."""
    from .knot import start_knot, stop_knot

    server = start_knot(tmp_path_factory.mktemp("knot"))
    yield server
    stop_knot(server)
