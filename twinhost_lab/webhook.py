"""The lab's stand-in for the platform's notification webhook (`twinhost:notifyWebhook`).

An HTTPS server on the bridge's host address, with the lab CA's server certificate (the site
nodes trust the lab CA, `RenderOverrides.ca_pem`), that answers every POST with 200 and appends
its body, one JSON line each, to <run_dir>/webhook/posts.jsonl. The lab sets the platform's
`notifyWebhook` to its URL (`LabProfile.notify_webhook`), as an operator would with `pulumi
config set --secret`: a failed backup's alert (docs/backups.md) is then read back by the lab
tests. It holds nothing secret: the lab's URL carries no token.

The redirector's watcher posts to the same URL, but trusts the lab CA for its ACME directory only
(`RedirectorSpec.acme_ca_root_pem`), so its posts fail TLS and it logs them as not delivered.

Run as `python -m twinhost_lab.webhook HOST PORT CERT KEY LOG` (`start_webhook` does).
"""

from __future__ import annotations

import json
import ssl
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from twinhost_lab.host import start_service
from twinhost_lab.layout import Layout

PATH = "/twinhost-lab-webhook"
MAX_BODY = 64 * 1024


def url(layout: Layout) -> str:
    return f"https://{layout.host_address}:{layout.webhook_port}{PATH}"


def posts_file(layout: Layout) -> Path:
    return layout.run_dir / "webhook" / "posts.jsonl"


def start_webhook(layout: Layout, server_cert_pem: str, server_key_pem: str, ca_pem: str) -> int:
    """Start the stand-in with the lab CA's server certificate (its SAN is the host address);
    returns its PID. Ready when it answers over TLS trusting only the lab CA."""
    directory = layout.run_dir / "webhook"
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    cert.write_text(server_cert_pem)
    key.touch(mode=0o600)
    key.write_text(server_key_pem)
    posts_file(layout).write_text("")
    context = ssl.create_default_context(cadata=ca_pem)
    command = [sys.executable, "-m", "twinhost_lab.webhook", layout.host_address, str(layout.webhook_port)]
    return start_service(
        [*command, str(cert), str(key), str(posts_file(layout))],
        directory / "webhook.log",
        ready=lambda: _answers(url(layout), context),
        what="the webhook stand-in",
    )


def posts(layout: Layout) -> list[dict[str, Any]]:
    """Every POST so far, oldest first: {"time", "path", "body"} (body parsed when it is JSON)."""
    try:
        lines = posts_file(layout).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def _answers(address: str, context: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(address, timeout=2, context=context):  # noqa: S310 - the lab's own stand-in
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _handler(log: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
            raw = self.rfile.read(length).decode(errors="replace")
            try:
                body: Any = json.loads(raw)
            except json.JSONDecodeError:
                body = raw
            with log.open("a") as out:
                out.write(json.dumps({"time": time.time(), "path": self.path, "body": body}) + "\n")
            self._answer(200, b"ok\n")

        def do_GET(self) -> None:
            self._answer(200, b"the twinhost lab's webhook stand-in: POST here\n")

        def _answer(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def main(argv: list[str]) -> int:
    host, port, cert, key, log = argv
    server = ThreadingHTTPServer((host, int(port)), _handler(Path(log)))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
