"""Helpers that run the redirector's real programs on 127.0.0.1: a DNS server holding the ops
zone, the apex ask service (Debian's python3 + dnspython, as on the redirector) and Caddy."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from infra.bootstrap.parts import static
from infra.redirector.parts import ASK_SCRIPT, MACHINE, apex_ask_part
from infra.redirector.registry import apex_record_content, apex_record_name
from infra.redirector.spec import RedirectorSpec

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"  # the redirector runs the ask service on Debian's python3
OPS_ZONE = "ops.example.test"
# Two registered client apexes (different TLDs, different sites), one name with a record of the
# wrong content, and the names the tests expect to be refused.
REGISTERED = {"client-one.test": "clientone", "client-two.example": "clienttwo"}
WRONG_CONTENT = "squatter.test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited ({process.returncode}):\n{log.read_text()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Zone:
    """The ops zone served by the test DNS server; `register` is what a site stack's up does."""

    path: Path
    port: int
    negative_ttl: int
    txt: dict[str, list[str]] = field(default_factory=dict)
    hosts: dict[str, list[str]] = field(default_factory=dict)  # client apexes' A/AAAA

    def write(self) -> None:
        document = {"zone": OPS_ZONE, "negative_ttl": self.negative_ttl, "txt": self.txt, "hosts": self.hosts}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(document))
        tmp.replace(self.path)  # the server reads the file per query: never a half-written one

    def register(self, apex: str, site: str) -> None:
        self.txt[apex_record_name(apex, OPS_ZONE)] = [apex_record_content(site)]
        self.write()


@dataclass
class AskService:
    port: int
    log: Path

    def ask(self, domain: str) -> int:
        """Caddy's on-demand question: may I get a certificate for `domain`?"""
        query = urllib.parse.urlencode({"domain": domain})
        return _status(f"http://127.0.0.1:{self.port}/ask?{query}")

    def gate(self, host: str) -> int:
        """Caddy's forward_auth question: may I redirect `host`?"""
        return _status(f"http://127.0.0.1:{self.port}/gate", {"X-Twinhost-Apex": host})


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - the test builds http(s) URLs to its own loopback servers
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - see above
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def start_ask_service(workdir: Path, spec: RedirectorSpec) -> tuple[subprocess.Popen[bytes], AskService]:
    """The ask service from the repo's own script, with the config the renderer writes."""
    part = apex_ask_part(spec)
    config = next(f.content for f in part.files if f.path.endswith(".json"))
    (workdir / "apex-ask.json").write_text(config)
    script = workdir / "twinhost-apex-ask"
    script.write_text(static(MACHINE + ASK_SCRIPT))
    log = workdir / "ask.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [SYSTEM_PYTHON, str(script), str(workdir / "apex-ask.json")],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    wait_for_port(spec.ask_port, process, log)
    return process, AskService(spec.ask_port, log)


def loopback_spec(zone: Zone, **overrides: object) -> RedirectorSpec:
    """The redirector's spec as the lab/tests use it: loopback, high ports, the test zone."""
    values: dict[str, object] = dict(
        hostname="redirector-test",
        debian=12,
        admin_user="ops",
        ssh_keys=(),
        ops_zone=OPS_ZONE,
        acme_email="hosting@example.test",
        resolvers=("127.0.0.1",),
        resolver_port=zone.port,
        ask_port=free_port(),
        negative_cache_s=1,
        positive_cache_s=300,
    )
    values.update(overrides)
    return RedirectorSpec(**values)  # type: ignore[arg-type]


@dataclass
class Caddy:
    http_port: int
    https_port: int
    data_dir: Path  # Caddy's storage (certificates, its local CA)
    log: Path
    caddyfile: Path
    admin_socket: Path
    ask: AskService

    @property
    def root_ca(self) -> Path:
        return self.data_dir / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    def certificate_dirs(self) -> list[str]:
        base = self.data_dir / "caddy" / "certificates"
        return sorted(p.name for p in base.glob("*/*")) if base.exists() else []
