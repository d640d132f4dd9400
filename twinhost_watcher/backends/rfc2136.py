"""RFC 2136 dynamic update: the record lives on an authoritative server (Knot, BIND, PowerDNS...).

Reads are TSIG-signed queries to the same server, so the answer that read-before-write trusts is
authenticated too. A write is one UPDATE message that deletes the A set and adds the new one; the
server applies a message atomically (RFC 2136 section 3.7), so the name is never seen empty.
Both go over TCP: no truncation, no spoofed UDP answers.
"""

from __future__ import annotations

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.update

from twinhost_watcher.backends import DnsError

ALGORITHMS = {
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
}


class Rfc2136Backend:
    name = "rfc2136"

    def __init__(
        self,
        record: str,
        zone: str,
        server: str,
        port: int = 53,
        *,
        key_name: str,
        algorithm: str,
        secret: str,
        timeout: float = 5.0,
    ):
        self.record = dns.name.from_text(record)
        self.zone = dns.name.from_text(zone)
        self.server = server
        self.port = port
        self.timeout = timeout
        try:
            self._key = dns.tsig.Key(key_name, secret, ALGORITHMS[algorithm])
        except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError: not base64
            raise DnsError(
                f"rfc2136: the TSIG secret is not valid base64 ({exc.__class__.__name__})"
            ) from None

    def get(self) -> list[str]:
        query = dns.message.make_query(self.record, dns.rdatatype.A)
        query.use_tsig(self._key)
        response = self._send("query", query)
        rcode = response.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            return []
        if rcode != dns.rcode.NOERROR:
            raise DnsError(f"rfc2136 query: {dns.rcode.to_text(rcode)}")
        for rrset in response.answer:
            if rrset.name == self.record and rrset.rdtype == dns.rdatatype.A:
                return sorted(rdata.address for rdata in rrset)
        return []

    def set(self, addresses: list[str], ttl: int) -> None:
        if not addresses:
            raise DnsError("refusing to empty the record")  # the engine never asks; be sure
        update = dns.update.UpdateMessage(self.zone, keyring=self._key)
        update.replace(self.record, ttl, dns.rdatatype.A, *addresses)
        response = self._send("update", update)
        if response.rcode() != dns.rcode.NOERROR:
            raise DnsError(f"rfc2136 update: {dns.rcode.to_text(response.rcode())}")

    def _send(self, what: str, message: dns.message.Message) -> dns.message.Message:
        try:
            return dns.query.tcp(message, self.server, port=self.port, timeout=self.timeout)
        except dns.tsig.PeerError as exc:  # the server rejected our signature (BADKEY, BADSIG...)
            raise DnsError(f"rfc2136 {what}: TSIG refused by the server ({exc.__class__.__name__})") from None
        except dns.exception.Timeout:
            raise DnsError(f"rfc2136 {what}: timed out after {self.timeout:g}s") from None
        except (OSError, dns.exception.DNSException) as exc:
            raise DnsError(f"rfc2136 {what}: {exc.__class__.__name__}: {exc}") from None
