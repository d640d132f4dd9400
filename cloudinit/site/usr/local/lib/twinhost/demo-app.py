#!/usr/bin/python3
"""twinhost demo app: the default when a site configures no app.

Serves /health (JSON; 200, or 503 when the site's database member is not ready and synced)
and a page showing this node, the deployed version, and the files
under /srv/shared/demo/ (each node writes one when it mounts the shared volume, so a page that
lists both proves replication). Python's standard library only; listens on 127.0.0.1:$PORT.
A version whose name ends in "-unhealthy" answers /health with 503: a way to watch a failed
deploy stop at the first node and roll back (`twinhost deploy SITE 2-unhealthy`).
"""

import html
import json
import os
import socket
import subprocess
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SHARED = Path(os.environ.get("SHARED_DIR", "/srv/shared")) / "demo"
VERSION = os.environ.get("APP_VERSION", "unknown")
NODE = socket.gethostname()
HEALTHY = not VERSION.endswith("-unhealthy")
# Set by twinhost when the site has a database (infra/bootstrap/database.py, database_env).
DB_OPTION_FILE = os.environ.get("DB_OPTION_FILE")
WSREP = ("wsrep_ready", "wsrep_local_state_comment", "wsrep_cluster_status", "wsrep_cluster_size")


def database_status() -> dict[str, str]:
    """The local Galera member's wsrep status (SHOW STATUS needs no privilege), or an error."""
    names = ",".join(f"'{name}'" for name in WSREP)
    try:
        done = subprocess.run(
            ["mariadb", f"--defaults-extra-file={DB_OPTION_FILE}", "-N", "-B", "-e",
             f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})"],
            capture_output=True, text=True, timeout=3, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": type(exc).__name__}
    return dict(line.split("\t", 1) for line in done.stdout.splitlines() if "\t" in line)


def health() -> tuple[int, dict[str, object]]:
    """200 when this node can serve: with a database, only while its member is ready and
    synced (a member cut off from the primary component refuses writes: say so)."""
    body: dict[str, object] = {"status": "ok", "node": NODE, "version": VERSION}
    if not HEALTHY:
        body["status"] = "failing"
        return 503, body
    if DB_OPTION_FILE:
        db = database_status()
        body["database"] = db
        if db.get("wsrep_ready") != "ON" or db.get("wsrep_local_state_comment") != "Synced":
            body["status"] = "database not ready"
            return 503, body
    return 200, body


def shared_files() -> dict[str, str]:
    try:
        return {p.name: p.read_text(errors="replace")[:1000] for p in sorted(SHARED.glob("*.txt"))}
    except OSError as exc:  # the volume is not mounted (yet)
        return {"(shared volume)": f"not readable: {exc.strerror}"}


class Handler(BaseHTTPRequestHandler):
    server_version = "twinhost-demo"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/health":
            status, body = health()
            self.reply(status, "application/json", json.dumps(body))
            return
        if self.path != "/":
            self.reply(404, "text/plain; charset=utf-8", "not found\n")
            return
        items = "".join(f"<li><b>{html.escape(name)}</b>: {html.escape(text)}</li>"
                        for name, text in shared_files().items())
        page = (f"<!doctype html><title>twinhost demo</title><h1>twinhost demo</h1>"
                f"<p>Served by <b>{html.escape(NODE)}</b>, version <b>{html.escape(VERSION)}</b>.</p>"
                f"<h2>Files on the shared volume</h2><ul>{items}</ul>")
        self.reply(200, "text/html; charset=utf-8", page)

    def reply(self, status: int, content_type: str, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # nginx logs requests; the journal stays quiet


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
