"""Cloudflare: the record set is the A records named `record` in the zone, via the official SDK.

A move never leaves the name without an address: a record that must go is first rewritten to an
address that must come (PUT), new addresses are then created (POST), and only the leftovers are
deleted (DELETE), last. The SDK's batch endpoint would be one call, but it applies deletes before
posts and Cloudflare propagates each change on its own, so resolvers could briefly see no address.

The SDK's own retries are off (`max_retries=0`): a retry with back-off inside a call would stall
the check loop for up to a minute on a 429. The loop is the retry: the next tick reads again, and a
429's Retry-After is honoured by skipping this site's DNS calls until then (see `RateLimitedError`).
"""

from __future__ import annotations

from typing import Any

import cloudflare
import httpx

from twinhost_watcher.backends import DnsError, RateLimitedError

# One page holds every A record of one name; a name with more than this is not ours to manage.
PAGE_SIZE = 100
DEFAULT_RETRY_AFTER = 10.0


class CloudflareBackend:
    name = "cloudflare"

    def __init__(
        self,
        record: str,
        zone_id: str,
        token: str,
        *,
        proxied: bool = False,
        timeout: float = 10.0,
        http_client: httpx.Client | None = None,
        base_url: str | None = None,
    ):
        self.record = record
        self.zone_id = zone_id
        self.proxied = proxied
        self._client = cloudflare.Cloudflare(
            api_token=token,
            max_retries=0,
            timeout=timeout,
            http_client=http_client,
            base_url=base_url,
        )

    def _records(self) -> list[Any]:
        page = self._call(
            "list",
            self._client.dns.records.list,
            zone_id=self.zone_id,
            type="A",
            name={"exact": self.record},
            per_page=PAGE_SIZE,
        )
        # Not iterated: the SDK's auto-paging asks for pages until one comes back empty, an extra
        # call per read for nothing.
        records = list(page.result or [])
        if len(records) >= PAGE_SIZE:
            raise DnsError(f"{self.record} has {len(records)}+ A records; refusing to manage it")
        return records

    def get(self) -> list[str]:
        return sorted(str(r.content) for r in self._records())

    def set(self, addresses: list[str], ttl: int) -> None:
        if not addresses:
            raise DnsError("refusing to empty the record")  # the engine never asks; be sure
        records = self._records()
        wanted = list(dict.fromkeys(addresses))
        keep: set[str] = set()
        stale = []
        for record in records:
            if record.content in wanted and record.content not in keep:
                keep.add(str(record.content))
            else:
                stale.append(record)
        missing = [a for a in wanted if a not in keep]
        body = {"name": self.record, "type": "A", "ttl": ttl, "proxied": self.proxied}
        # Rewrite before adding, add before deleting: the name always has an address.
        while stale and missing:
            record = stale.pop(0)
            self._call(
                "update",
                self._client.dns.records.update,
                record.id,
                zone_id=self.zone_id,
                content=missing.pop(0),
                **body,
            )
        for address in missing:
            self._call(
                "create", self._client.dns.records.create, zone_id=self.zone_id, content=address, **body
            )
        for record in stale:
            self._call("delete", self._client.dns.records.delete, record.id, zone_id=self.zone_id)

    def _call(self, what: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except cloudflare.RateLimitError as exc:
            raise RateLimitedError(
                f"cloudflare {what}: 429 rate limited", _retry_after(exc.response)
            ) from None
        except cloudflare.APIStatusError as exc:
            raise DnsError(f"cloudflare {what}: HTTP {exc.status_code}: {_errors(exc.body)}") from None
        except cloudflare.APITimeoutError:
            raise DnsError(f"cloudflare {what}: timed out") from None
        except cloudflare.APIConnectionError as exc:
            raise DnsError(f"cloudflare {what}: connection failed ({exc.__cause__ or exc})") from None


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "")
    try:
        return max(1.0, min(float(value), 300.0))
    except ValueError:
        return DEFAULT_RETRY_AFTER


def _errors(body: object) -> str:
    """Cloudflare's error list, e.g. '[9109] Invalid access token' (the API never echoes a token)."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        parts = [f"[{e.get('code')}] {e.get('message')}" for e in body["errors"] if isinstance(e, dict)]
        if parts:
            return "; ".join(parts)
    return "no error detail"
