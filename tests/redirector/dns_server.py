#!/usr/bin/python3
"""A small authoritative DNS server for the redirector tests: one zone, TXT records, UDP + TCP.

Runs under Debian's python3 with python3-dnspython (the same dnspython the redirector uses).
The zone is read from a JSON file on every query, so a test registers a client apex by
rewriting the file, as a site stack's `pulumi up` adds a record to the real ops zone:

    {"zone": "ops.example.test", "negative_ttl": 1, "txt": {"<name>": ["<text>", ...]}}

Unknown names get NXDOMAIN with the zone's SOA (so a resolver's negative caching applies);
names outside the zone get REFUSED. Usage: dns_server.py ZONE_FILE PORT (listens on 127.0.0.1).
"""

from __future__ import annotations

import json
import socketserver
import struct
import sys
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

TXT_TTL = 60


def answer(wire: bytes, zone_file: str) -> bytes:
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    with open(zone_file, encoding="utf-8") as handle:
        data = json.load(handle)
    zone = dns.name.from_text(data["zone"])
    question = query.question[0]
    # Client apexes' own A/AAAA records (the client's DNS, outside the ops zone): "hosts".
    addresses = data.get("hosts", {}).get(question.name.to_text().rstrip(".").lower())
    if addresses is not None:
        rdtype = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 6}.get(question.rdtype)
        chosen = [a for a in addresses if rdtype and (":" in a) == (rdtype == 6)]
        if chosen:
            response.answer.append(
                dns.rrset.from_text_list(question.name, TXT_TTL, dns.rdataclass.IN, question.rdtype, chosen)
            )
        return response.to_wire()
    if not question.name.is_subdomain(zone):
        response.set_rcode(dns.rcode.REFUSED)
        response.flags &= ~dns.flags.AA
        return response.to_wire()
    records = {dns.name.from_text(k): v for k, v in data.get("txt", {}).items()}
    texts = records.get(question.name)
    if texts is not None and question.rdtype == dns.rdatatype.TXT:
        rrset = dns.rrset.from_text_list(
            question.name,
            TXT_TTL,
            dns.rdataclass.IN,
            dns.rdatatype.TXT,
            [json.dumps(text) for text in texts],  # a quoted TXT string
        )
        response.answer.append(rrset)
        return response.to_wire()
    negative_ttl = int(data.get("negative_ttl", 1))
    soa = dns.rrset.from_text(
        zone,
        negative_ttl,
        dns.rdataclass.IN,
        dns.rdatatype.SOA,
        f"ns1.{zone} hostmaster.{zone} 1 7200 900 1209600 {negative_ttl}",
    )
    response.authority.append(soa)
    if texts is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
    return response.to_wire()


def serve(zone_file: str, port: int) -> None:
    class Udp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data, sock = self.request
            sock.sendto(answer(data, zone_file), self.client_address)

    class Tcp(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            (length,) = struct.unpack("!H", self.rfile.read(2))
            reply = answer(self.rfile.read(length), zone_file)
            self.wfile.write(struct.pack("!H", len(reply)) + reply)

    socketserver.ThreadingUDPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    udp = socketserver.ThreadingUDPServer(("127.0.0.1", port), Udp)
    tcp = socketserver.ThreadingTCPServer(("127.0.0.1", port), Tcp)
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    print(f"ready {port}", flush=True)
    udp.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
