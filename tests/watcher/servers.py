"""Real servers on 127.0.0.1 for the watcher tests: HTTPS health endpoints with certificates made
at test time, a socket that accepts and never answers, and a plain HTTP webhook receiver."""

from __future__ import annotations

import datetime
import hashlib
import http.server
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NAME = "acme.ops.example.net"


@dataclass
class Cert:
    cert_pem: Path
    key_pem: Path
    sha256: str  # of the DER certificate, as pinSha256 takes it


def _write(directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Cert:
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Cert(
        cert_path, key_path, hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    )


def _build(
    subject: str, issuer_name: str, public_key: Any, signing_key: Any, *, ca: bool, names: list[str]
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256())


def make_ca(directory: Path, name: str) -> tuple[Cert, Any, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build(name, name, key.public_key(), key, ca=True, names=[])
    return _write(directory, name.replace(" ", "-"), cert, key), key, name


def make_leaf(directory: Path, ca: tuple[Cert, Any, str], names: list[str], stem: str) -> Cert:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build(names[0], ca[2], key.public_key(), ca[1], ca=False, names=names)
    return _write(directory, stem, cert, key)


def make_self_signed(directory: Path, names: list[str], stem: str) -> Cert:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build(names[0], names[0], key.public_key(), key, ca=False, names=names)
    return _write(directory, stem, cert, key)


@dataclass
class HealthServer:
    """An HTTPS server on 127.0.0.1 answering `status` to every GET; records Host and SNI."""

    cert: Cert
    status: int = 200
    hosts: list[str] = field(default_factory=list)
    snis: list[str | None] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hosts.append(self.headers.get("Host", ""))
                owner.paths.append(self.path)
                body = b"ok\n" if owner.status < 300 else b"unhealthy\n"
                self.send_response(owner.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert.cert_pem, self.cert.key_pem)
        context.sni_callback = lambda sock, name, ctx: owner.snis.append(name)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/health"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class SilentServer:
    """Accepts TCP connections and never says anything (a hung node, a stuck TLS handshake)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/health"

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


class WebhookReceiver:
    """A plain HTTP server on 127.0.0.1 that records POSTed JSON and answers from a script."""

    def __init__(self, answers: list[int] | None = None):
        self.answers = list(answers or [])
        self.bodies: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.paths: list[str] = []
        self.received = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner.raw.append(data)
                owner.paths.append(self.path)
                status = owner.answers.pop(0) if owner.answers else 200
                if status < 300:
                    owner.bodies.append(json.loads(data))
                    owner.received.set()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
