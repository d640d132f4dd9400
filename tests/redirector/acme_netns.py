#!/usr/bin/python3
"""Real ACME HTTP-01 for the redirector, inside a private network and mount namespace.

Run by test_acme_http01.py as `unshare --net --mount /usr/bin/python3 acme_netns.py WORKDIR`.
In the namespace the only interface is a fresh loopback, so the redirector's Caddy listens on
the real ports 80 and 443 without touching the host's, and /etc/hosts (bind-mounted over, in
this mount namespace only) sends the client apexes and the CA to 127.0.0.1. A second Caddy is
the ACME CA (Caddy's `acme_server`): it validates each order over HTTP-01 against port 80,
exactly as Let's Encrypt would reach the redirector.

WORKDIR holds what the test rendered: redirector.Caddyfile, ca.Caddyfile, apex-ask.json,
zone.json, hosts, run.json ({"apexes": [...], "unknown": "...", "dns_port": N, "ask_port": N}).
Prints one JSON object with what was observed; stdlib only (Debian's python3).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ASK_SCRIPT = (
    HERE.parents[1] / "cloudinit" / "redirector" / "opt" / "twinhost-watcher" / "lib" / "twinhost-apex-ask"
)
CA_PORT = 9443


def wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing on port {port}")


def https_get(host: str, path: str, cafile: Path) -> dict[str, object]:
    context = ssl.create_default_context(cafile=str(cafile))
    try:
        connection = http.client.HTTPSConnection(host, 443, context=context, timeout=30)
        connection.request("GET", path)
        response = connection.getresponse()
        certificate = connection.sock.getpeercert()  # type: ignore[union-attr]
        response.read()
        connection.close()
    except (ssl.SSLError, OSError) as error:
        return {"error": f"{error.__class__.__name__}: {error}"}
    issuer = dict(item[0] for item in certificate.get("issuer", ()))  # type: ignore[union-attr]
    names = [value for kind, value in certificate.get("subjectAltName", ()) if kind == "DNS"]  # type: ignore[union-attr]
    return {
        "status": response.status,
        "location": response.getheader("Location"),
        "issuer": issuer.get("commonName"),
        "names": names,
    }


def main(workdir: Path) -> dict[str, object]:
    run = json.loads((workdir / "run.json").read_text())
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["mount", "--bind", str(workdir / "hosts"), "/etc/hosts"], check=True)
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, argv: list[str], data: str | None = None) -> subprocess.Popen[bytes]:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(workdir)}
        if data:
            env.update(XDG_DATA_HOME=str(workdir / data), XDG_CONFIG_HOME=str(workdir / f"{data}-config"))
        with open(workdir / f"{name}.log", "wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
        processes.append(process)
        return process

    try:
        dns = start(
            "dns",
            [sys.executable, str(HERE / "dns_server.py"), str(workdir / "zone.json"), str(run["dns_port"])],
        )
        wait_port(run["dns_port"], dns)
        ask = start("ask", [sys.executable, str(ASK_SCRIPT), str(workdir / "apex-ask.json")])
        wait_port(run["ask_port"], ask)
        ca = start(
            "ca", ["caddy", "run", "--adapter", "caddyfile", "--config", "ca.Caddyfile"], data="ca-data"
        )
        wait_port(CA_PORT, ca)
        ca_root = workdir / "ca-data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        deadline = time.monotonic() + 20
        while not ca_root.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the ACME CA made no root certificate")
            time.sleep(0.05)
        redirector = start(
            "redirector",
            ["caddy", "run", "--adapter", "caddyfile", "--config", "redirector.Caddyfile"],
            data="redirector-data",
        )
        wait_port(443, redirector)
        wait_port(80, redirector)
        results = {apex: https_get(apex, "/fees?matter=conveyancing", ca_root) for apex in run["apexes"]}
        results[run["unknown"]] = https_get(run["unknown"], "/", ca_root)
        storage = workdir / "redirector-data" / "caddy" / "certificates"
        return {
            "https": results,
            "certificates": sorted(str(p.relative_to(storage)) for p in storage.glob("*/*"))
            if storage.exists()
            else [],
            "redirector_log": (workdir / "redirector.log").read_text(),
        }
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
