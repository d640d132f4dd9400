"""The Cloudflare backend against the API's recorded request/response shapes.

The official SDK runs for real; only its HTTP transport is replaced (httpx.MockTransport through
the SDK's `http_client` argument) by a small Cloudflare that answers with the v4 API's envelopes
and record objects, and that checks the exact method, path, query and JSON body of every call. An
SDK upgrade that changes what goes on the wire fails here.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from twinhost_watcher.backends import DnsError, RateLimitedError
from twinhost_watcher.backends.cloudflare import CloudflareBackend

from .conftest import A, B, Harness

ZONE = "023e105f4ecef8ad9ca31a8372d0c353"
NAME = "acme.ops.example.net"
TOKEN = "cf-test-token-7d1e0c4b"
BASE = f"https://api.cloudflare.com/client/v4/zones/{ZONE}/dns_records"


def envelope(result: Any, **extra: Any) -> dict[str, Any]:
    return {"success": True, "errors": [], "messages": [], "result": result, **extra}


def failure(code: int, message: str) -> dict[str, Any]:
    return {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}


class FakeCloudflare:
    """The DNS records API of one zone, as Cloudflare answers it."""

    def __init__(self, addresses: list[str], proxied: bool = False):
        self.records: dict[str, dict[str, Any]] = {}
        for address in addresses:
            self._add(address, 60, proxied)
        self.requests: list[tuple[str, str, Any]] = []
        self.fail_with: list[httpx.Response] = []
        self.min_records_seen = len(self.records)

    def _add(self, content: str, ttl: int, proxied: bool) -> dict[str, Any]:
        record = {
            "id": uuid.uuid4().hex,
            "zone_id": ZONE,
            "zone_name": "ops.example.net",
            "name": NAME,
            "type": "A",
            "content": content,
            "proxiable": True,
            "proxied": proxied,
            "ttl": ttl,
            "settings": {},
            "meta": {},
            "comment": None,
            "tags": [],
            "created_on": "2025-01-01T00:00:00.000000Z",
            "modified_on": "2025-01-01T00:00:00.000000Z",
        }
        self.records[record["id"]] = record
        return record

    def addresses(self) -> list[str]:
        return sorted(r["content"] for r in self.records.values())

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, str(request.url), body))
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        if self.fail_with:
            return self.fail_with.pop(0)
        path = request.url.path
        if request.method == "GET" and path == f"/client/v4/zones/{ZONE}/dns_records":
            params = dict(request.url.params)
            found = [
                r
                for r in self.records.values()
                if r["name"] == params["name.exact"] and r["type"] == params["type"]
            ]
            return httpx.Response(
                200,
                json=envelope(
                    found,
                    result_info={
                        "page": 1,
                        "per_page": int(params["per_page"]),
                        "count": len(found),
                        "total_count": len(found),
                        "total_pages": 1,
                    },
                ),
            )
        if request.method == "POST" and path == f"/client/v4/zones/{ZONE}/dns_records":
            return httpx.Response(
                200, json=envelope(self._add(body["content"], body["ttl"], body["proxied"]))
            )
        record_id = path.rsplit("/", 1)[-1]
        if record_id not in self.records:
            return httpx.Response(404, json=failure(81044, "Record does not exist."))
        if request.method == "PUT":
            self.records[record_id].update(content=body["content"], ttl=body["ttl"], proxied=body["proxied"])
            return httpx.Response(200, json=envelope(self.records[record_id]))
        if request.method == "DELETE":
            del self.records[record_id]
            self.min_records_seen = min(self.min_records_seen, len(self.records))
            return httpx.Response(200, json=envelope({"id": record_id}))
        raise AssertionError(f"unexpected call {request.method} {request.url}")

    def backend(self, proxied: bool = False) -> CloudflareBackend:
        client = httpx.Client(transport=httpx.MockTransport(self.handler))
        return CloudflareBackend(NAME, ZONE, TOKEN, proxied=proxied, timeout=3, http_client=client)

    def ids_by_address(self) -> dict[str, str]:
        return {r["content"]: r["id"] for r in self.records.values()}


LIST = ("GET", f"{BASE}?name.exact={NAME}&per_page=100&type=A", None)


def test_get_lists_the_a_records_of_the_exact_name_in_one_call() -> None:
    cf = FakeCloudflare([A, B])
    assert cf.backend().get() == [A, B]
    assert cf.requests == [LIST]


def test_a_failed_node_is_removed_with_a_delete_after_the_list() -> None:
    cf = FakeCloudflare([A, B])
    gone = cf.ids_by_address()[A]
    cf.backend().set([B], 60)
    assert cf.requests == [LIST, ("DELETE", f"{BASE}/{gone}", None)]
    assert cf.addresses() == [B]


def test_a_move_to_the_other_node_rewrites_the_record_so_the_name_is_never_empty() -> None:
    cf = FakeCloudflare([A])
    rid = cf.ids_by_address()[A]
    cf.backend().set([B], 60)
    assert cf.requests == [
        LIST,
        ("PUT", f"{BASE}/{rid}", {"name": NAME, "ttl": 60, "type": "A", "content": B, "proxied": False}),
    ]
    assert cf.addresses() == [B]
    assert cf.min_records_seen >= 1


def test_a_recovered_node_is_added_with_a_post() -> None:
    cf = FakeCloudflare([B])
    cf.backend().set([A, B], 60)
    assert cf.requests == [
        LIST,
        ("POST", BASE, {"name": NAME, "ttl": 60, "type": "A", "content": A, "proxied": False}),
    ]
    assert cf.addresses() == [A, B]


def test_duplicates_and_strays_are_cleaned_after_the_wanted_addresses_exist() -> None:
    cf = FakeCloudflare([A, A, "203.0.113.9"])
    cf.backend().set([B], 60)
    methods = [m for m, _, _ in cf.requests]
    assert methods == ["GET", "PUT", "DELETE", "DELETE"], "rewrite first, deletes last"
    assert cf.addresses() == [B]
    assert cf.min_records_seen >= 1


def test_proxied_records_are_written_with_automatic_ttl() -> None:
    cf = FakeCloudflare([A], proxied=True)
    cf.backend(proxied=True).set([A, B], 1)
    assert cf.requests[-1][2] == {"name": NAME, "ttl": 1, "type": "A", "content": B, "proxied": True}


def test_setting_what_is_already_there_only_reads() -> None:
    cf = FakeCloudflare([A, B])
    cf.backend().set([B, A], 60)
    assert cf.requests == [LIST]


def test_an_invalid_token_is_an_error_with_cloudflares_reason_and_not_the_token() -> None:
    cf = FakeCloudflare([A])
    cf.fail_with = [httpx.Response(403, json=failure(9109, "Invalid access token"))]
    with pytest.raises(DnsError) as caught:
        cf.backend().get()
    assert str(caught.value) == "cloudflare list: HTTP 403: [9109] Invalid access token"
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_is_an_error_without_retrying_inside_the_call(status: int) -> None:
    cf = FakeCloudflare([A])
    cf.fail_with = [httpx.Response(status, json=failure(10000, "Internal error"))]
    with pytest.raises(DnsError, match=f"HTTP {status}"):
        cf.backend().set([B], 60)
    assert len(cf.requests) == 1, "the SDK must not retry (and sleep) inside a call: the loop retries"


def test_a_rejected_write_is_an_error_naming_cloudflares_reason() -> None:
    cf = FakeCloudflare([A])
    backend = cf.backend()
    cf.fail_with = []
    cf.requests.clear()
    real = cf.handler

    def reject_put(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            cf.requests.append((request.method, str(request.url), json.loads(request.content)))
            return httpx.Response(400, json=failure(81058, "A record with the same settings already exists."))
        return real(request)

    backend._client = backend._client.with_options(
        http_client=httpx.Client(transport=httpx.MockTransport(reject_put))
    )
    with pytest.raises(DnsError, match=r"cloudflare update: HTTP 400: \[81058\]"):
        backend.set([B], 60)


@pytest.mark.parametrize(
    ("header", "expected"), [({"retry-after": "30"}, 30.0), ({}, 10.0), ({"retry-after": "0"}, 1.0)]
)
def test_a_429_is_rate_limited_with_its_retry_after(header: dict[str, str], expected: float) -> None:
    cf = FakeCloudflare([A])
    cf.fail_with = [
        httpx.Response(
            429, headers=header, json=failure(971, "Please wait and consider throttling your request speed")
        )
    ]
    with pytest.raises(RateLimitedError) as caught:
        cf.backend().get()
    assert caught.value.retry_after == expected
    assert len(cf.requests) == 1


def test_an_unreachable_api_is_an_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    backend = CloudflareBackend(
        NAME, ZONE, TOKEN, http_client=httpx.Client(transport=httpx.MockTransport(refuse))
    )
    with pytest.raises(DnsError, match="cloudflare list: connection failed"):
        backend.get()


def test_the_watcher_waits_out_a_cloudflare_429_then_moves_the_record(tmp_path) -> None:
    cf = FakeCloudflare([A, B])
    h = Harness(tmp_path, [A, B])
    h.backend = cf.backend()  # type: ignore[assignment]
    h.restart()
    h.checker.health["linode"] = False
    h.ticks(2)
    cf.fail_with = [httpx.Response(429, headers={"retry-after": "12"}, json=failure(971, "Please wait"))]
    h.ticks(1)  # the move is due, Cloudflare says wait 12 s
    assert cf.addresses() == [A, B]
    calls = len(cf.requests)
    h.ticks(2)  # 10 s later: still waiting, no call at all
    assert len(cf.requests) == calls
    h.ticks(1)
    assert cf.addresses() == [A]
    assert TOKEN not in h.stream.getvalue()
