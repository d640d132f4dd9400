"""`python -m twinhost_watcher` end to end: real HTTPS nodes, a real Knot DNS server, secrets on
disk, a real webhook receiver. Nothing here is a fake."""

from __future__ import annotations

import io
import json
import os
import signal
import socket as socket_module
import subprocess
import sys
import time
from pathlib import Path

import pytest

from twinhost_watcher.__main__ import main
from twinhost_watcher.backends.rfc2136 import Rfc2136Backend

from .conftest import A, B
from .knot import ZONE, Knot
from .servers import HealthServer, WebhookReceiver, make_self_signed

REPO = Path(__file__).resolve().parents[2]
NAME = f"cli.{ZONE}"
HOOK_TOKEN = "hk_91c2d7e4aa0b"


@pytest.fixture
def world(tmp_path, knot: Knot, monkeypatch):
    """Two nodes (pinned self-signed certs), the record on Knot, secrets, a webhook receiver."""
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    certs = {n: make_self_signed(tmp_path, ["origin.invalid"], n) for n in ("do", "li")}
    nodes = {"do": HealthServer(certs["do"]), "li": HealthServer(certs["li"])}
    receiver = WebhookReceiver()
    monkeypatch.setenv("TWINHOST_WATCHER_WEBHOOK_URL", receiver.url(f"/hook/{HOOK_TOKEN}"))
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "tsig").write_text(knot.secret + "\n")
    os.chmod(secrets / "tsig", 0o600)
    config = {
        "interval": 5,
        "failures": 3,
        "recoveries": 2,
        "timeout": 2,
        "stateDir": str(tmp_path / "state"),
        "secretsDir": str(secrets),
        "sites": [
            {
                "site": "cli",
                "record": NAME,
                "zone": ZONE,
                "ttl": 30,
                "dns": {
                    "backend": "rfc2136",
                    "server": "127.0.0.1",
                    "port": knot.port,
                    "tsigKeyName": "watcher",
                    "tsigSecret": "tsig",
                },
                "nodes": [
                    {
                        "name": "digitalocean",
                        "address": A,
                        "healthUrl": nodes["do"].url,
                        "pinSha256": certs["do"].sha256,
                    },
                    {
                        "name": "linode",
                        "address": B,
                        "healthUrl": nodes["li"].url,
                        "pinSha256": certs["li"].sha256,
                    },
                ],
            }
        ],
    }
    path = tmp_path / "watcher.json"
    path.write_text(json.dumps(config))
    Rfc2136Backend(
        NAME, ZONE, "127.0.0.1", knot.port, key_name="watcher", algorithm="hmac-sha256", secret=knot.secret
    ).set([A, B], 30)
    yield {"config": path, "nodes": nodes, "receiver": receiver, "knot": knot, "tmp": tmp_path}
    for server in nodes.values():
        server.close()
    receiver.close()


def run(*args: str) -> tuple[int, list[dict], str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    events = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    return code, events, out.getvalue() + err.getvalue()


def test_once_runs_accumulate_to_a_move_that_resolvers_see_and_is_notified_once(world) -> None:
    knot, receiver, config = world["knot"], world["receiver"], str(world["config"])
    world["nodes"]["li"].status = 503
    for _ in range(2):
        assert run("--config", config, "--once")[0] == 0
        assert knot.dig(NAME) == [A, B]
    code, events, text = run("--config", config, "--once")
    assert code == 0
    assert knot.dig(NAME) == [A]
    assert [e["event"] for e in events if e["event"] in ("node_down", "record_moved")] == [
        "node_down",
        "record_moved",
    ]
    assert [(b["from"], b["to"]) for b in receiver.bodies] == [([A, B], [A])]
    # Restarts (more --once runs) neither rewrite nor notify again.
    for _ in range(3):
        code, events, more = run("--config", config, "--once")
        text += more
    assert len(receiver.bodies) == 1
    assert HOOK_TOKEN not in text and world["knot"].secret not in text
    # The node comes back after `recoveries` good checks.
    world["nodes"]["li"].status = 200
    run("--config", config, "--once")
    assert knot.dig(NAME) == [A]
    run("--config", config, "--once")
    assert knot.dig(NAME) == [A, B]
    assert [b["to"] for b in receiver.bodies] == [[A], [A, B]]


def test_check_config_validates_secrets_and_prints_a_summary(world) -> None:
    code, _, text = run("--config", str(world["config"]), "--check-config")
    assert code == 0
    assert f"cli: {NAME} via rfc2136, ttl 30; nodes digitalocean={A}, linode={B}" in text
    assert "notifications: on" in text


def test_a_bad_config_exits_2_and_names_every_problem(tmp_path) -> None:
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"interval": 0, "sites": [{"site": "x"}]}))
    code, events, text = run("--config", str(path), "--once")
    assert code == 2 and events == []
    assert "interval: must be greater than or equal to 1 (got 0)" in text
    assert "sites[0].record: is required" in text and "sites[0].nodes: is required" in text


def test_a_missing_or_unsafe_secret_exits_2_before_any_check(world) -> None:
    tsig = world["tmp"] / "secrets" / "tsig"
    os.chmod(tsig, 0o644)
    code, events, text = run("--config", str(world["config"]), "--once")
    assert code == 2 and events == []
    assert "sites[0].dns.tsigSecret" in text and "chmod 0600" in text
    assert world["knot"].secret not in text
    assert world["nodes"]["do"].hosts == [], "nothing was checked"


def test_sigterm_stops_the_service_cleanly(world) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "twinhost_watcher", "--config", str(world["config"])],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 20
        for line in process.stdout:
            if '"event": "watcher_started"' in line or time.monotonic() > deadline:
                break
        time.sleep(0.2)  # into the first tick or its sleep
        start = time.monotonic()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert time.monotonic() - start < 5, "a stop must not wait for the next tick"
    events = [json.loads(line)["event"] for line in out.splitlines()]
    assert events[-2:] == ["watcher_stopping", "watcher_stopped"] or events[-1] == "watcher_stopped"


def test_systemd_is_told_ready_then_pinged_every_round_then_stopping(world, tmp_path, monkeypatch) -> None:
    path = str(tmp_path / "notify.sock")
    sock = socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(1)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    try:
        assert run("--config", str(world["config"]), "--once")[0] == 0
        messages = []
        while True:
            try:
                messages.append(sock.recv(256).decode())
            except TimeoutError:
                break
    finally:
        sock.close()
    assert messages == ["READY=1", "WATCHDOG=1", "WATCHDOG=1", "STOPPING=1"]  # one site, one round
