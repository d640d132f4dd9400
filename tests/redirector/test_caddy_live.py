"""The real Caddy (Debian's package) with the rendered Caddyfile, on 127.0.0.1 high ports.

Proves the redirect itself (301 to https://www.<apex><path>?<query>, for two different apexes,
over HTTP and HTTPS) and the gate (no redirect and no certificate for a name that is not a
registered apex). Certificates come from Caddy's internal CA instead of ACME; everything else is
the Caddyfile the redirector boots with.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import time

import pytest

from .loopback import REGISTERED, Caddy, Zone

APEXES = sorted(REGISTERED)  # two registered apexes with different TLDs


class _LoopbackHTTPS(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with the SNI and Host of `host`, verified against `cafile`."""

    def __init__(self, host: str, port: int, cafile: str):
        super().__init__(host, port, context=ssl.create_default_context(cafile=cafile), timeout=15)

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=15)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def http_get(caddy: Caddy, host: str, target: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", caddy.http_port, timeout=15)
    connection.request("GET", target, headers={"Host": host})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def https_get(caddy: Caddy, host: str, target: str) -> http.client.HTTPResponse:
    connection = _LoopbackHTTPS(host, caddy.https_port, str(caddy.root_ca))
    connection.request("GET", target)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def _first_https(caddy: Caddy, host: str, target: str) -> http.client.HTTPResponse:
    """The first HTTPS request for a name obtains its certificate, and the CA's root appears
    with it; allow that first handshake a few tries."""
    deadline = time.monotonic() + 20
    while True:
        try:
            if caddy.root_ca.exists():
                return https_get(caddy, host, target)
            with socket.create_connection(("127.0.0.1", caddy.https_port), timeout=5) as raw:
                unverified = ssl.create_default_context()
                unverified.check_hostname = False
                unverified.verify_mode = ssl.CERT_NONE
                with unverified.wrap_socket(raw, server_hostname=host):
                    pass  # triggers on-demand issuance, which also creates the local CA
        except (ssl.SSLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize("apex", APEXES)
@pytest.mark.parametrize(
    ("target", "suffix"),
    [
        ("/", "/"),
        (
            "/practice-areas/family?lang=en&ref=ad%20campaign",
            "/practice-areas/family?lang=en&ref=ad%20campaign",
        ),
        ("/contact", "/contact"),
    ],
)
def test_http_redirects_a_registered_apex_to_www_with_path_and_query(
    caddy: Caddy, apex: str, target: str, suffix: str
) -> None:
    response = http_get(caddy, apex, target)
    assert response.status == 301, caddy.log.read_text()[-2000:]
    assert response.getheader("Location") == f"https://www.{apex}{suffix}"


@pytest.mark.parametrize("apex", APEXES)
def test_https_redirects_a_registered_apex_to_www_with_a_certificate_for_it(caddy: Caddy, apex: str) -> None:
    response = _first_https(caddy, apex, "/news/2026?page=2")
    assert response.status == 301
    assert response.getheader("Location") == f"https://www.{apex}/news/2026?page=2"
    assert apex in caddy.certificate_dirs()


def test_http_port_keeps_the_port_out_of_the_redirect(caddy: Caddy) -> None:
    """A Host header with a port still redirects to the default HTTPS port of www."""
    apex = APEXES[0]
    response = http_get(caddy, f"{apex}:{caddy.http_port}", "/a?b=c")
    assert response.getheader("Location") == f"https://www.{apex}/a?b=c"


@pytest.mark.parametrize("host", ["unknown.test", f"www.{APEXES[0]}", "203.0.113.7"])
def test_a_name_that_is_not_a_registered_apex_gets_no_redirect(caddy: Caddy, host: str) -> None:
    response = http_get(caddy, host, "/anything?x=1")
    assert response.status in (400, 404)
    assert response.getheader("Location") is None


def test_a_name_that_is_not_a_registered_apex_gets_no_certificate(caddy: Caddy) -> None:
    _first_https(caddy, APEXES[0], "/")  # the CA exists, so a refusal is the gate, not a race
    context = ssl.create_default_context(cafile=str(caddy.root_ca))
    with (
        socket.create_connection(("127.0.0.1", caddy.https_port), timeout=10) as raw,
        pytest.raises(ssl.SSLError),
        context.wrap_socket(raw, server_hostname="unknown-client.test"),
    ):
        pass
    assert "unknown-client.test" not in caddy.certificate_dirs()
    assert "lookup unknown-client.test -> unknown" in caddy.ask.log.read_text()


def test_a_new_apex_gets_redirects_and_a_certificate_once_its_record_exists(
    caddy: Caddy, dns_zone: Zone
) -> None:
    """`pulumi up` of a new site adds its registry record; the redirector needs nothing else."""
    apex = "new-client.example"
    assert http_get(caddy, apex, "/").status == 404
    dns_zone.register(apex, "newclient")
    deadline = time.monotonic() + 15
    while http_get(caddy, apex, "/").status != 301:
        assert time.monotonic() < deadline, "the newly registered apex stayed unknown"
        time.sleep(0.25)
    response = https_get(caddy, apex, "/welcome?utm=1")
    assert response.getheader("Location") == f"https://www.{apex}/welcome?utm=1"


def test_caddy_reloads_through_the_admin_socket(caddy: Caddy) -> None:
    """caddy.service's ExecReload talks to the unix admin socket the Caddyfile sets."""
    result = subprocess.run(
        [
            "caddy",
            "reload",
            "--adapter",
            "caddyfile",
            "--config",
            str(caddy.caddyfile),
            "--address",
            f"unix/{caddy.admin_socket}",
            "--force",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert http_get(caddy, APEXES[1], "/after-reload").status == 301
