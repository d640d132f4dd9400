"""HTTPS health checks of every node, all at once, each bounded by one overall timeout.

A check connects to the URL's host and port (the node's address), sends the site's name as SNI and
Host header, verifies the certificate (system CAs, a CA bundle, or a pinned SHA-256 for self-signed
origins) and asks `GET <path>`. Healthy means a 2xx status line within `timeout` seconds, for the
whole exchange: connect, TLS handshake, request and status line. The body is not read.

HTTP/1.1 is spoken by hand over asyncio streams instead of through an HTTP client library: it
keeps the watcher's dependencies small, and `asyncio.timeout` bounds the whole check and cancels it
cleanly, which a thread blocked in a client library cannot offer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

USER_AGENT = "twinhost-watcher/1"
MAX_STATUS_LINE = 1024


@dataclass(frozen=True)
class Target:
    """What to check: a node of a site."""

    key: tuple[str, str]  # (site, node)
    url: str
    tls_name: str
    ca_bundle: str | None = None
    pin_sha256: str | None = None
    ca_pem: str | None = None  # trusted CAs as PEM text, instead of a file


@dataclass(frozen=True)
class Result:
    ok: bool
    detail: str  # "200" or a short reason, safe to log
    seconds: float


Checker = Callable[[Sequence[Target]], dict[tuple[str, str], Result]]


class HttpsChecker:
    """The real checker: `checker(targets)` returns a Result per target key."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._contexts: dict[tuple[str | None, str | None, bool], ssl.SSLContext] = {}

    def __call__(self, targets: Sequence[Target]) -> dict[tuple[str, str], Result]:
        return asyncio.run(self._check_all(targets))

    async def _check_all(self, targets: Sequence[Target]) -> dict[tuple[str, str], Result]:
        results = await asyncio.gather(*(self._check(t) for t in targets))
        return {t.key: r for t, r in zip(targets, results, strict=False)}

    def _context(self, target: Target) -> ssl.SSLContext:
        pinned = target.pin_sha256 is not None
        cache_key = (target.ca_bundle, target.ca_pem, pinned)
        if cache_key not in self._contexts:
            if pinned:
                # The pin replaces chain and name checks: self-signed origin certificates have
                # neither a trusted issuer nor, often, the right name.
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            else:
                context = ssl.create_default_context(cafile=target.ca_bundle, cadata=target.ca_pem)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self._contexts[cache_key] = context
        return self._contexts[cache_key]

    async def _check(self, target: Target) -> Result:
        start = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                detail, ok = await self._exchange(target)
        except TimeoutError:
            ok, detail = False, f"timeout after {self.timeout:g}s"
        except ssl.SSLCertVerificationError as exc:
            ok, detail = False, f"tls: {exc.verify_message or exc.reason}"
        except ssl.SSLError as exc:
            ok, detail = False, f"tls: {exc.reason or exc}"
        except OSError as exc:
            ok, detail = False, f"connect: {exc.strerror or exc.__class__.__name__}"
        except ValueError as exc:  # a malformed answer
            ok, detail = False, f"http: {exc}"
        except Exception as exc:  # noqa: BLE001 - a check that breaks is a failed check, not a dead watcher
            ok, detail = False, f"error: {exc.__class__.__name__}"
        return Result(ok, detail, time.monotonic() - start)

    async def _exchange(self, target: Target) -> tuple[str, bool]:
        url = urlsplit(target.url)
        port = url.port or 443
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        host_header = target.tls_name if port == 443 else f"{target.tls_name}:{port}"
        reader, writer = await asyncio.open_connection(
            url.hostname, port, ssl=self._context(target), server_hostname=target.tls_name
        )
        try:
            if target.pin_sha256 is not None:
                ssl_object = writer.get_extra_info("ssl_object")
                der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
                if not der or hashlib.sha256(der).hexdigest() != target.pin_sha256:
                    return "tls: certificate does not match the pinned SHA-256", False
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {USER_AGENT}\r\n"
                "Accept: */*\r\nConnection: close\r\n\r\n".encode("ascii")
            )
            await writer.drain()
            line = await reader.readline()
            if not line:
                raise ValueError("connection closed before a status line")
            parts = line[:MAX_STATUS_LINE].decode("latin-1").split(None, 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise ValueError("not an HTTP status line")
            status = int(parts[1])
            return str(status), 200 <= status < 300
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
