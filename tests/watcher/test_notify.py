"""The webhook: posted on every move to a real HTTP receiver on 127.0.0.1, retried briefly, never
blocking the checks, and never carrying or logging a secret."""

from __future__ import annotations

import io
import socket
import threading
import time

import pytest

from twinhost_watcher.log import EventLog
from twinhost_watcher.notify import WebhookNotifier

from .conftest import A, B, Events, Harness
from .servers import WebhookReceiver

TOKEN = "tk_3f9a8b7c6d5e4f30"  # what a real webhook URL carries in its path


@pytest.fixture
def receiver():
    r = WebhookReceiver()
    yield r
    r.close()


def notifier_for(url: str, stream: io.StringIO, sleeps: list[float], attempts: int = 3) -> WebhookNotifier:
    return WebhookNotifier(
        url, EventLog(time.time, stream), timeout=2, attempts=attempts, sleep=sleeps.append
    )


def test_a_move_posts_the_webhook_with_site_from_and_to(tmp_path, receiver) -> None:
    h = Harness(tmp_path, [A, B])
    sleeps: list[float] = []
    h.notifier = notifier_for(receiver.url(f"/hook/{TOKEN}"), h.stream, sleeps)
    h.restart()
    h.checker.health["digitalocean"] = False
    h.ticks(3)
    h.notifier.close(timeout=5)
    [body] = receiver.bodies
    assert (
        body["event"] == "record_moved"
        and body["site"] == "acme"
        and body["record"] == "acme.ops.example.net"
    )
    assert body["from"] == [A, B] and body["to"] == [B]
    assert "digitalocean down" in body["text"] and A in body["text"]
    assert receiver.paths == [f"/hook/{TOKEN}"]
    assert h.events.named("notify_sent")[0]["status"] == 200


def test_a_failing_webhook_is_retried_with_backoff_then_delivered(receiver) -> None:
    receiver.answers = [500, 502]
    stream, sleeps = io.StringIO(), []
    notifier = notifier_for(receiver.url(), stream, sleeps)
    notifier.notify({"event": "record_moved", "site": "acme", "text": "x"})
    notifier.close(timeout=5)
    assert len(receiver.raw) == 3 and len(receiver.bodies) == 1
    assert sleeps == [1.0, 2.0]
    events = Events(stream)
    assert [e["reason"] for e in events.named("notify_retry")] == ["HTTP 500", "HTTP 502"]
    assert events.named("notify_sent")[0]["attempt"] == 3


def test_a_webhook_that_keeps_failing_is_given_up_after_its_attempts() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    stream, sleeps = io.StringIO(), []
    notifier = notifier_for(f"http://127.0.0.1:{port}/hook/{TOKEN}", stream, sleeps, attempts=2)
    notifier.notify({"event": "record_moved", "site": "acme", "text": "x"})
    notifier.close(timeout=5)
    [failed] = Events(stream).named("notify_failed")
    assert failed["attempts"] == 2 and "Connection refused" in failed["reason"]
    assert TOKEN not in stream.getvalue()


def test_a_hung_webhook_never_blocks_the_check_loop(tmp_path) -> None:
    release = threading.Event()
    posted: list[bytes] = []

    def hung_post(body: bytes) -> int:
        posted.append(body)
        release.wait(10)
        return 200

    h = Harness(tmp_path, [A, B])
    h.notifier = WebhookNotifier(
        "https://hooks.invalid/x", EventLog(h.clock.now, h.stream), sleep=lambda s: None, post=hung_post
    )
    h.restart()
    h.checker.health["digitalocean"] = False
    start = time.monotonic()
    h.ticks(3)  # the move: notification queued, the post hangs
    h.checker.health["digitalocean"] = True
    h.ticks(2)  # and the checks go on: the node comes back
    elapsed = time.monotonic() - start
    assert h.backend.sets == [[B], [A, B]]
    assert elapsed < 2, "the loop waited for the webhook"
    release.set()
    h.notifier.close(timeout=5)
    assert len(posted) == 2


def test_notifications_and_logs_never_contain_secrets(tmp_path, receiver, monkeypatch) -> None:
    h = Harness(tmp_path, [A, B])
    h.notifier = notifier_for(receiver.url(f"/hook/{TOKEN}"), h.stream, [])
    h.restart()
    h.checker.health["linode"] = False
    h.ticks(3)
    h.checker.default = False
    h.checker.health = {}
    h.ticks(3)
    h.notifier.close(timeout=5)
    assert [b["event"] for b in receiver.bodies] == ["record_moved", "all_nodes_down"]
    everything = h.stream.getvalue() + "".join(r.decode() for r in receiver.raw)
    assert TOKEN not in everything
    assert "hook" not in h.stream.getvalue(), "the webhook URL is not logged, not even its path"
