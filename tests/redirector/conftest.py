"""Fixtures that run the redirector's real programs on 127.0.0.1: a DNS server holding the ops
zone, the apex ask service (Debian's python3 + dnspython, as on the redirector) and Caddy.

Every process is started by a fixture, on free high ports of 127.0.0.1, and stopped by it.
Debian packages (caddy, python3-dnspython) come from scripts/ensure-host-packages, which
installs them without starting Debian's own caddy service.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.redirector.parts import render_caddyfile
from infra.redirector.registry import apex_record_content, apex_record_name

from .loopback import (
    OPS_ZONE,
    REGISTERED,
    REPO,
    SYSTEM_PYTHON,
    WRONG_CONTENT,
    AskService,
    Caddy,
    Zone,
    free_port,
    loopback_spec,
    start_ask_service,
    stop,
    wait_for_port,
)


@pytest.fixture(scope="session")
def host_packages() -> None:
    """caddy and python3-dnspython from Debian, installed when missing (root) or skipped."""

    def present() -> bool:
        if shutil.which("caddy") is None or not os.path.exists(SYSTEM_PYTHON):
            return False
        return (
            subprocess.run([SYSTEM_PYTHON, "-c", "import dns.resolver"], capture_output=True).returncode == 0
        )

    if not present():
        result = subprocess.run(
            [str(REPO / "scripts" / "ensure-host-packages"), "redirector"], capture_output=True, text=True
        )
        if result.returncode != 0 or not present():
            pytest.skip(f"caddy / python3-dnspython unavailable: {result.stderr.strip()}")


@pytest.fixture(scope="session")
def dns_zone(host_packages: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zone]:
    workdir = tmp_path_factory.mktemp("dns")
    zone = Zone(workdir / "zone.json", free_port(), negative_ttl=1)
    for apex, site in REGISTERED.items():
        zone.txt[apex_record_name(apex, OPS_ZONE)] = [apex_record_content(site)]
    zone.txt[apex_record_name(WRONG_CONTENT, OPS_ZONE)] = ["v=spf1 -all"]
    zone.write()
    log = workdir / "dns.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [SYSTEM_PYTHON, str(Path(__file__).parent / "dns_server.py"), str(zone.path), str(zone.port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(zone.port, process, log)  # the TCP listener starts with the UDP one
        yield zone
    finally:
        stop(process)


@pytest.fixture(scope="session")
def ask_service(dns_zone: Zone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AskService]:
    workdir = tmp_path_factory.mktemp("ask")
    process, service = start_ask_service(workdir, loopback_spec(dns_zone))
    try:
        yield service
    finally:
        stop(process)


@pytest.fixture(scope="session")
def caddy(dns_zone: Zone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Caddy]:
    """The real Caddy with the rendered Caddyfile; certificates from Caddy's own local CA,
    since no ACME server is reachable here (`issuer="internal"`, the only difference)."""
    workdir = tmp_path_factory.mktemp("caddy")
    admin_socket = workdir / "admin.sock"
    spec = loopback_spec(
        dns_zone,
        issuer="internal",
        http_port=free_port(),
        https_port=free_port(),
        bind="127.0.0.1",
        admin=f"unix/{admin_socket}",
    )
    ask_process, ask = start_ask_service(workdir, spec)
    caddyfile = workdir / "redirector.Caddyfile"
    caddyfile.write_text(render_caddyfile(spec))
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "XDG_DATA_HOME": str(workdir / "data"),
        "XDG_CONFIG_HOME": str(workdir / "config"),
    }
    log = workdir / "caddy.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            ["caddy", "run", "--adapter", "caddyfile", "--config", str(caddyfile)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=workdir,
        )
    try:
        wait_for_port(spec.https_port, process, log)
        wait_for_port(spec.http_port, process, log)
        yield Caddy(spec.http_port, spec.https_port, workdir / "data", log, caddyfile, admin_socket, ask)
    finally:
        stop(process)
        stop(ask_process)
