"""The lab's webhook stand-in (twinhost_lab/webhook.py): HTTPS with the lab CA's certificate, every
POST's JSON body recorded in order, read back by the lab tests (a failed backup's alert)."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest

from twinhost_lab import services, webhook
from twinhost_lab.host import stop
from twinhost_lab.layout import Layout

HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def test_posts_over_https_are_recorded_in_order_and_the_url_is_the_lab_ones(tmp_path: Path) -> None:
    layout = Layout(state_dir=tmp_path, host_address=HOST, webhook_port=_free_port())
    ca = services.make_lab_ca(HOST)
    pid = webhook.start_webhook(layout, ca.server_cert_pem, ca.server_key_pem, ca.cert_pem)
    try:
        context = ssl.create_default_context(cadata=ca.cert_pem)
        bodies = [{"event": "backup_failed", "site": "acme", "n": 1}, {"event": "backup_failed", "n": 2}]
        for body in bodies:
            request = urllib.request.Request(  # noqa: S310 - the stand-in's https URL
                webhook.url(layout),
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10, context=context) as answer:  # noqa: S310
                assert answer.status == 200
        # curl, as the node's twinhost-backup posts, trusting the lab CA only.
        (tmp_path / "ca.pem").write_text(ca.cert_pem)
        curl = subprocess.run(
            [
                "curl",
                "-fsS",
                "--cacert",
                str(tmp_path / "ca.pem"),
                "-X",
                "POST",
                "--data",
                "plain text",
                webhook.url(layout),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert curl.returncode == 0, curl.stderr
        posts = webhook.posts(layout)
        assert [p["body"] for p in posts] == [*bodies, "plain text"]
        assert {p["path"] for p in posts} == {webhook.PATH}
        # Without the lab CA, the certificate is refused (the redirector's watcher's case).
        with pytest.raises(OSError):
            urllib.request.urlopen(webhook.url(layout), timeout=10)  # noqa: S310
    finally:
        stop(pid)
    assert webhook.url(Layout()) == "https://198.51.100.1:8443/twinhost-lab-webhook"
