"""A node's `/health` through its web front, checked the way the failover watcher checks it.

The watcher (twinhost_watcher/health.py) connects to the node's own address, sends the site's
failover name as SNI and Host, verifies the certificate and wants a 2xx. So does this, from the
workstation; it also reads what the certificate says (its expiry) and the body (the demo app's
`/health` names its version). Certificates from Cloudflare's Origin CA (`certificates:
cloudflare-origin`) are checked against that CA, as the watcher does; `ca_file` replaces the
system CAs (the lab's ACME server, a staging CA).
"""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HEALTH_PATH = "/health"
TIMEOUT_SECONDS = 5.0
MAX_BODY = 65536


@dataclass(frozen=True)
class Probe:
    ok: bool
    detail: str  # "200" or a short reason
    seconds: float
    certificate_expires: datetime.datetime | None = None
    body: dict[str, Any] | None = None  # /health's JSON, when it is JSON

    @property
    def days_left(self) -> float | None:
        if self.certificate_expires is None:
            return None
        return (self.certificate_expires - datetime.datetime.now(datetime.UTC)).total_seconds() / 86400


class HealthChecker:
    """`checker(address, tls_name)` -> Probe. Tests replace it with a fake of the same shape."""

    def __init__(
        self,
        ca_file: Path | None = None,
        ca_pem: str | None = None,
        timeout: float = TIMEOUT_SECONDS,
        port: int = 443,
    ):
        self.timeout = timeout
        self.port = port
        if ca_file is not None:
            self._context = ssl.create_default_context(cafile=str(ca_file))
        elif ca_pem is not None:
            self._context = ssl.create_default_context(cadata=ca_pem)
        else:
            self._context = ssl.create_default_context()
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2

    def __call__(self, address: str, tls_name: str, path: str = HEALTH_PATH) -> Probe:
        started = time.monotonic()
        try:
            return self._exchange(address, tls_name, path, started)
        except ssl.SSLCertVerificationError as exc:
            reason = f"tls: {exc.verify_message or exc.reason}"
            expires = _unverified_expiry(address, self.port, tls_name)
            return Probe(False, reason, time.monotonic() - started, expires)
        except ssl.SSLError as exc:
            return Probe(False, f"tls: {exc.reason or exc}", time.monotonic() - started)
        except TimeoutError:
            return Probe(False, f"timeout after {self.timeout:g}s", time.monotonic() - started)
        except OSError as exc:
            return Probe(
                False, f"connect: {exc.strerror or exc.__class__.__name__}", time.monotonic() - started
            )
        except ValueError as exc:
            return Probe(False, f"http: {exc}", time.monotonic() - started)

    def _exchange(self, address: str, tls_name: str, path: str, started: float) -> Probe:
        with (
            socket.create_connection((address, self.port), timeout=self.timeout) as raw,
            self._context.wrap_socket(raw, server_hostname=tls_name) as tls,
        ):
            expires = _expiry(tls.getpeercert())
            tls.sendall(
                f"GET {path} HTTP/1.1\r\nHost: {tls_name}\r\nUser-Agent: twinhost-ops/1\r\n"
                "Accept: */*\r\nConnection: close\r\n\r\n".encode("ascii")
            )
            data = b""
            while len(data) < MAX_BODY:
                chunk = tls.recv(16384)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1").split(None, 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/") or not status_line[1].isdigit():
            raise ValueError("not an HTTP status line")
        status = int(status_line[1])
        try:
            parsed = json.loads(body.decode("utf-8", "replace"))
        except json.JSONDecodeError:
            parsed = None
        return Probe(
            200 <= status < 300,
            str(status),
            time.monotonic() - started,
            expires,
            parsed if isinstance(parsed, dict) else None,
        )


def _expiry(certificate: Any) -> datetime.datetime | None:
    not_after = (certificate or {}).get("notAfter")
    if not not_after:
        return None
    return datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), datetime.UTC)


def _unverified_expiry(address: str, port: int, tls_name: str) -> datetime.datetime | None:
    """The expiry of a certificate that did not verify (what is served is still worth knowing)."""
    from cryptography import x509  # deferred: only on this path

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((address, port), timeout=TIMEOUT_SECONDS) as raw,
            context.wrap_socket(raw, server_hostname=tls_name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    if not der:
        return None
    return x509.load_der_x509_certificate(der).not_valid_after_utc


Checker = Callable[[str, str], Probe]


def wait_healthy(
    check: Checker,
    address: str,
    tls_name: str,
    *,
    needed: int = 2,
    timeout: float = 90,
    interval: float = 2,
    on_probe: Callable[[Probe], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Probe:
    """Check until `needed` checks in a row pass (the watcher's `recoveries`) or `timeout`
    passes; returns the last probe (ok only when the streak was reached)."""
    deadline = clock() + timeout
    streak = 0
    while True:
        probe = check(address, tls_name)
        if on_probe is not None:
            on_probe(probe)
        streak = streak + 1 if probe.ok else 0
        if streak >= needed:
            return probe
        if clock() >= deadline:
            return Probe(False, probe.detail, probe.seconds, probe.certificate_expires, probe.body)
        sleep(interval)
