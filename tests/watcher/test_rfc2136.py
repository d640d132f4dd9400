"""The RFC 2136 backend against a real authoritative server (Knot DNS) on 127.0.0.1, with every
result checked by a real DNS query (kdig)."""

from __future__ import annotations

import base64
import os

import pytest

from twinhost_watcher.backends import DnsError
from twinhost_watcher.backends.rfc2136 import Rfc2136Backend

from .conftest import A, B, Harness
from .knot import ZONE, Knot, free_port

NAME = f"acme.{ZONE}"


def backend(
    knot: Knot, name: str = NAME, key: str = "watcher", secret: str | None = None, port: int | None = None
) -> Rfc2136Backend:
    return Rfc2136Backend(
        name,
        ZONE,
        "127.0.0.1",
        port or knot.port,
        key_name=key,
        algorithm="hmac-sha256",
        secret=secret or knot.secret,
        timeout=2,
    )


def test_get_reads_the_record_as_the_server_publishes_it(knot: Knot) -> None:
    assert backend(knot).get() == knot.dig(NAME) == [A, B]


def test_a_move_is_one_signed_update_that_resolvers_see(knot: Knot) -> None:
    dns = backend(knot)
    dns.set([B], 30)
    assert knot.dig(NAME) == [B]
    assert knot.dig_ttl(NAME) == 30
    dns.set([A, B], 60)
    assert knot.dig(NAME) == [A, B]
    assert dns.get() == [A, B]


def test_a_name_that_does_not_exist_reads_as_empty_and_can_be_created(knot: Knot) -> None:
    dns = backend(knot, name=f"new.{ZONE}")
    assert dns.get() == []
    dns.set([A], 60)
    assert knot.dig(f"new.{ZONE}") == [A]


def test_an_update_signed_with_a_key_without_rights_is_refused(knot: Knot) -> None:
    before = knot.dig(NAME)
    with pytest.raises(
        DnsError, match=r"rfc2136 update: (NOTAUTH|REFUSED|TSIG refused by the server \(PeerBadKey\))"
    ):
        backend(knot, key="intruder", secret=knot.intruder_secret).set(["203.0.113.66"], 60)
    assert knot.dig(NAME) == before


def test_an_update_with_a_wrong_secret_is_refused(knot: Knot) -> None:
    before = knot.dig(NAME)
    with pytest.raises(DnsError, match="rfc2136"):
        backend(knot, secret=base64.b64encode(os.urandom(32)).decode()).set(["203.0.113.66"], 60)
    assert knot.dig(NAME) == before


def test_a_secret_that_is_not_base64_is_an_error_that_does_not_show_it() -> None:
    with pytest.raises(DnsError) as caught:
        Rfc2136Backend(
            NAME, ZONE, "127.0.0.1", 53, key_name="watcher", algorithm="hmac-sha256", secret="not*base64!"
        )
    assert "not*base64!" not in str(caught.value)


def test_a_server_that_is_not_there_is_an_error() -> None:
    dns = Rfc2136Backend(
        NAME,
        ZONE,
        "127.0.0.1",
        free_port(),
        key_name="watcher",
        algorithm="hmac-sha256",
        secret="c2VjcmV0",
        timeout=1,
    )
    with pytest.raises(DnsError, match="rfc2136 query"):
        dns.get()


def test_the_watcher_moves_the_record_on_a_real_server_and_puts_it_back(tmp_path, knot: Knot) -> None:
    backend(knot).set([A, B], 60)
    h = Harness(tmp_path, [])
    h.backend = backend(knot)  # type: ignore[assignment]
    h.restart()
    h.checker.health["linode"] = False
    h.ticks(2)
    assert knot.dig(NAME) == [A, B]
    h.ticks(1)
    assert knot.dig(NAME) == [A]
    h.checker.health["linode"] = True
    h.ticks(2)
    assert knot.dig(NAME) == [A, B]
    assert [e["to"] for e in h.events.named("record_moved")] == [[A], [A, B]]
