"""Time, injected: the real clock in production, a fake one in tests (no real sleeping)."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch: log timestamps, state, rate-limit deadlines."""

    def monotonic(self) -> float:
        """Seconds for measuring intervals; never jumps."""

    def sleep(self, seconds: float) -> None:
        """Wait; may return early when the watcher is asked to stop."""


class SystemClock:
    """The real clock. `sleep` is an Event wait, so SIGTERM ends it at once."""

    def __init__(self) -> None:
        self.stopping = threading.Event()

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stopping.wait(seconds)
