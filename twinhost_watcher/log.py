"""Structured JSON log lines on stdout (journald keeps them; `journalctl -o cat` shows them).

One line per event: {"ts": ISO-8601 UTC, "level": ..., "event": ..., fields...}. Callers pass
only non-secret fields; there is no place here where a token or the webhook URL could go.
"""

from __future__ import annotations

import datetime
import json
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO


class EventLog:
    def __init__(self, now: Callable[[], float], stream: TextIO | None = None):
        self._now = now
        self._stream = stream
        self._lock = threading.Lock()  # the notifier thread logs too

    def emit(self, event: str, level: str = "info", **fields: Any) -> None:
        ts = datetime.datetime.fromtimestamp(self._now(), datetime.UTC)
        record = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level,
            "event": event,
        }
        record.update(fields)
        line = json.dumps(record, sort_keys=False, default=str)
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(line + "\n")
            stream.flush()
