"""Health checks against real HTTPS servers on 127.0.0.1, with certificates made at test time."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from twinhost_watcher.health import HttpsChecker, Target

from .servers import NAME, HealthServer, SilentServer, make_ca, make_leaf, make_self_signed


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d: Path = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "twinhost test CA")
    other_ca = make_ca(d, "some other CA")
    return {
        "ca": ca[0],
        "other_ca": other_ca[0],
        "leaf": make_leaf(d, ca, [NAME], "leaf"),
        "self_signed": make_self_signed(d, ["origin.invalid"], "self"),
        "other_self_signed": make_self_signed(d, ["origin.invalid"], "self2"),
    }


@pytest.fixture
def server(pki):
    servers = []

    def start(cert_name: str = "leaf", status: int = 200) -> HealthServer:
        s = HealthServer(pki[cert_name], status)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def check(target: Target, timeout: float = 2.0):
    return HttpsChecker(timeout)([target])[target.key]


def test_a_2xx_answer_is_healthy_and_sni_and_host_name_the_site(server, pki) -> None:
    s = server()
    result = check(Target(("acme", "a"), s.url + "?from=watcher", NAME, ca_bundle=str(pki["ca"].cert_pem)))
    assert result.ok and result.detail == "200"
    assert s.snis == [NAME]
    assert s.hosts == [f"{NAME}:{s.port}"]
    assert s.paths == ["/health?from=watcher"]


@pytest.mark.parametrize("status", [500, 503, 301, 404])
def test_a_non_2xx_answer_is_unhealthy(server, pki, status: int) -> None:
    s = server(status=status)
    result = check(Target(("acme", "a"), s.url, NAME, ca_bundle=str(pki["ca"].cert_pem)))
    assert not result.ok and result.detail == str(status)


def test_a_certificate_from_an_untrusted_ca_is_unhealthy(server, pki) -> None:
    s = server()
    result = check(Target(("acme", "a"), s.url, NAME, ca_bundle=str(pki["other_ca"].cert_pem)))
    assert not result.ok and result.detail.startswith("tls:")
    assert s.hosts == [], "no request is sent over an unverified connection"


def test_the_system_trust_store_does_not_trust_a_private_ca(server) -> None:
    s = server()
    result = check(Target(("acme", "a"), s.url, NAME))
    assert not result.ok and "certificate" in result.detail


def test_a_certificate_for_another_name_is_unhealthy(server, pki) -> None:
    s = server()
    result = check(Target(("acme", "a"), s.url, "other.ops.example.net", ca_bundle=str(pki["ca"].cert_pem)))
    assert not result.ok and "mismatch" in result.detail.lower()


def test_a_pinned_self_signed_certificate_is_trusted_and_no_other(server, pki) -> None:
    s = server("self_signed")
    good = check(Target(("acme", "a"), s.url, NAME, pin_sha256=pki["self_signed"].sha256))
    bad = check(Target(("acme", "a"), s.url, NAME, pin_sha256=pki["other_self_signed"].sha256))
    assert good.ok
    assert not bad.ok and "pinned" in bad.detail
    assert len(s.hosts) == 1, "the request goes only over the pinned connection"


def test_a_node_that_never_answers_fails_within_the_timeout() -> None:
    silent = SilentServer()
    try:
        start = time.monotonic()
        result = check(Target(("acme", "a"), silent.url, NAME), timeout=0.3)
        elapsed = time.monotonic() - start
    finally:
        silent.close()
    assert not result.ok and result.detail == "timeout after 0.3s"
    assert elapsed < 1.0


def test_a_refused_connection_is_unhealthy() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    result = check(Target(("acme", "a"), f"https://127.0.0.1:{port}/health", NAME))
    assert not result.ok and result.detail.startswith("connect:")


def test_all_nodes_are_checked_at_once_so_one_hung_node_costs_one_timeout(server, pki) -> None:
    silents = [SilentServer() for _ in range(6)]
    healthy = server()
    targets = [Target(("acme", f"hung{i}"), s.url, NAME) for i, s in enumerate(silents)]
    targets.append(Target(("acme", "ok"), healthy.url, NAME, ca_bundle=str(pki["ca"].cert_pem)))
    try:
        start = time.monotonic()
        results = HttpsChecker(0.4)(targets)
        elapsed = time.monotonic() - start
    finally:
        for s in silents:
            s.close()
    assert results[("acme", "ok")].ok
    assert [results[t.key].ok for t in targets[:-1]] == [False] * 6
    assert elapsed < 1.2, f"6 hung nodes took {elapsed:.2f}s: checks are not concurrent"


def test_ca_pem_text_is_a_trust_anchor_like_a_bundle_file(server, pki) -> None:
    """`caPem` (the CA as text in the config, as the platform writes Cloudflare's Origin CA root)
    verifies the chain exactly as `caBundle` does; another CA's PEM does not."""
    from infra.catalog import cloudflare_origin_ca_bundle

    s = server()
    own = Path(pki["ca"].cert_pem).read_text()
    assert check(Target(("acme", "a"), s.url, NAME, ca_pem=own)).ok
    result = check(Target(("acme", "b"), s.url, NAME, ca_pem=cloudflare_origin_ca_bundle("origin-ecc")))
    assert not result.ok and result.detail.startswith("tls:")
