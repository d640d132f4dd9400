"""The webhook notifier: POSTs a JSON message on every record move and alert.

Sending happens on a background thread from a bounded queue, so a slow or dead webhook never
delays a health check: `notify()` only enqueues. Each message is tried `attempts` times with a short
back-off, then dropped with a log line. Delivery is at most once: a message still queued when the
process dies is lost (the move itself is in the log and in the state file).

The body works with Slack-style incoming webhooks (they read `text`) and with ntfy (a POST to a
topic URL publishes the body); the other fields are for machines. The URL carries the webhook's
token, so it is never logged, and nothing secret is ever put in a body.
"""

from __future__ import annotations

import json
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from twinhost_watcher import VERSION
from twinhost_watcher.log import EventLog

QUEUE_SIZE = 100
MAX_BACKOFF = 10.0
_STOP = object()

Post = Callable[[bytes], int]


class WebhookNotifier:
    def __init__(
        self,
        url: str,
        log: EventLog,
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        sleep: Callable[[float], None],
        post: Post | None = None,
    ):
        self._url = url
        self._log = log
        self._timeout = timeout
        self._attempts = attempts
        self._sleep = sleep
        self._post = post or self._urllib_post
        self._queue: queue.Queue[Any] = queue.Queue(QUEUE_SIZE)
        self._thread = threading.Thread(target=self._worker, name="twinhost-notify", daemon=True)
        self._thread.start()

    def notify(self, message: dict[str, Any]) -> None:
        """Enqueue; never blocks."""
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            self._log.emit(
                "notify_dropped",
                "warning",
                reason="queue full",
                notice=message.get("event"),
                site=message.get("site"),
            )

    def close(self, timeout: float) -> None:
        """Let queued messages go out for at most `timeout` seconds, then give up."""
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _worker(self) -> None:
        while True:
            message = self._queue.get()
            if message is _STOP:
                return
            self._deliver(message)

    def _deliver(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode("utf-8")
        fields: dict[str, Any] = {"notice": message.get("event"), "site": message.get("site")}
        for attempt in range(1, self._attempts + 1):
            try:
                status = self._post(body)
            except Exception as exc:  # noqa: BLE001 - any failure is retried, then logged
                reason = _reason(exc)
            else:
                if 200 <= status < 300:
                    self._log.emit("notify_sent", status=status, attempt=attempt, **fields)
                    return
                reason = f"HTTP {status}"
            if attempt < self._attempts:
                self._log.emit("notify_retry", "warning", attempt=attempt, reason=reason, **fields)
                self._sleep(min(2.0 ** (attempt - 1), MAX_BACKOFF))
            else:
                self._log.emit("notify_failed", "error", attempts=attempt, reason=reason, **fields)

    def _urllib_post(self, body: bytes) -> int:
        request = urllib.request.Request(  # noqa: S310 - the config accepts https:// only (config.py)
            self._url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": f"twinhost-watcher/{VERSION}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - https enforced by config
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)


def _reason(exc: Exception) -> str:
    # Never str(exc) of an HTTPError or a Request: those can carry the URL and its token.
    cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(cause, OSError) and cause.strerror:
        return f"{cause.__class__.__name__}: {cause.strerror}"
    return cause.__class__.__name__
