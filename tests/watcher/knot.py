"""A real authoritative DNS server for the tests: Knot DNS (Debian's `knot`) on 127.0.0.1.

The zone takes RFC 2136 updates signed with the TSIG key `watcher`; a second key, `intruder`, is
known to the server but not allowed to update. Answers are checked with `kdig`, a separate DNS
client, so the backend's own code is not what judges it.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from twinhost_lab.knot import knot_conf

REPO = Path(__file__).resolve().parents[2]
ZONE = "ops.example.net"


@dataclass
class Knot:
    port: int
    secret: str
    intruder_secret: str
    process: subprocess.Popen[bytes]
    directory: Path

    def dig(self, name: str, rdtype: str = "A") -> list[str]:
        """What a resolver would be told: kdig over TCP, answers only."""
        out = subprocess.run(
            [
                "kdig",
                "+tcp",
                "+short",
                "+timeout=2",
                "+retry=0",
                "@127.0.0.1",
                "-p",
                str(self.port),
                name,
                rdtype,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        return sorted(line for line in out.split() if line)

    def dig_ttl(self, name: str) -> int:
        out = subprocess.run(
            [
                "kdig",
                "+tcp",
                "+noall",
                "+answer",
                "+timeout=2",
                "@127.0.0.1",
                "-p",
                str(self.port),
                name,
                "A",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        return int(out.split()[1])


def ensure_knot() -> None:
    if shutil.which("knotd") and shutil.which("kdig"):
        return
    result = subprocess.run(
        [str(REPO / "scripts" / "ensure-host-packages"), "dns"], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"cannot install knot for the RFC 2136 tests: {result.stderr.strip()}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_knot(directory: Path) -> Knot:
    ensure_knot()
    secret = base64.b64encode(os.urandom(32)).decode()
    intruder = base64.b64encode(os.urandom(32)).decode()
    port = free_port()
    (directory / f"{ZONE}.zone").write_text(
        f"$ORIGIN {ZONE}.\n$TTL 300\n"
        f"@ SOA ns1 hostmaster 1 3600 600 86400 60\n"
        f"@ NS ns1\nns1 A 127.0.0.1\n"
        f"acme A 192.0.2.10\nacme A 198.51.100.20\n"
    )
    (directory / "knot.conf").write_text(
        knot_conf(
            listen=f"127.0.0.1@{port}",
            directory=directory,
            zone=ZONE,
            keys={"watcher": secret, "intruder": intruder},
            updater="watcher",
        )
    )
    log = open(directory / "knotd.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        ["knotd", "-c", str(directory / "knot.conf")], stdout=log, stderr=subprocess.STDOUT
    )
    knot = Knot(port, secret, intruder, process, directory)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"knotd exited: {(directory / 'knotd.log').read_text()}")
        try:
            if knot.dig(f"acme.{ZONE}"):
                return knot
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.05)
    process.terminate()
    raise RuntimeError(f"knotd did not answer within 15 s: {(directory / 'knotd.log').read_text()}")


def stop_knot(knot: Knot) -> None:
    knot.process.terminate()
    try:
        knot.process.wait(10)
    except subprocess.TimeoutExpired:
        knot.process.kill()
