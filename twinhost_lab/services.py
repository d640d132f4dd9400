"""Host-side services of the lab, each bound to the bridge's host address:

- apt-cacher-ng: the only way out to Debian's mirror (and it caches, so reruns are offline);
- pebble: Let's Encrypt's test ACME server, validating HTTP-01 against the containers for real;
- dnsmasq: the lab's DNS, answering the client names with lab addresses (for pebble's
  validation and for the redirector's apex registrations).
"""

from __future__ import annotations

import datetime
import hashlib
import html
import ipaddress
import json
import platform
import re
import shutil
import ssl
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from infra import watcher_install as install
from twinhost_lab.host import LabError, pip_errors, run, start_service
from twinhost_lab.layout import Layout

FILES = Path(__file__).parent / "files"


def start_proxy(layout: Layout) -> int:
    """apt-cacher-ng on loopback (debootstrap) and the bridge (containers); cache kept across labs."""
    cache = layout.cache_dir / "apt-cacher-ng"
    logs = layout.run_dir / "apt-cacher-ng"
    for directory in (cache, logs):
        directory.mkdir(parents=True, exist_ok=True)
    # Its own command socket: a stale one left by a killed instance makes the bind fail.
    (logs / "socket").unlink(missing_ok=True)
    url = f"http://127.0.0.1:{layout.proxy_port}/acng-report.html"
    return start_service(
        [
            "/usr/sbin/apt-cacher-ng",
            "-c",
            str(FILES),
            "ForeGround=1",
            f"Port={layout.proxy_port}",
            f"BindAddress=127.0.0.1 {layout.host_address}",
            f"CacheDir={cache}",
            f"LogDir={logs}",
            f"PidFile={logs / 'pid'}",
            f"SocketPath={logs / 'socket'}",
        ],
        logs / "stdout.log",
        ready=lambda: _answers(url),
        what="apt-cacher-ng",
    )


def _answers(url: str, context: ssl.SSLContext | None = None) -> bool:
    """Any HTTP answer (an error status included) means the server is up."""
    try:
        with urllib.request.urlopen(url, timeout=2, context=context):  # noqa: S310 - the lab's own https ACME server
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@dataclass(frozen=True)
class LabCa:
    """The lab's own CA: it signs pebble's listener certificate, and the nodes and Caddy trust it
    (the render overrides' `ca_pem`) so their ACME clients can talk to pebble over HTTPS."""

    cert_pem: str
    server_cert_pem: str
    server_key_pem: str


def make_lab_ca(host_address: str) -> LabCa:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "twinhost lab CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "twinhost lab ACME server")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host_address)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return LabCa(
        cert_pem=ca.public_bytes(pem).decode(),
        server_cert_pem=server.public_bytes(pem).decode(),
        server_key_pem=key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )


LETS_ENCRYPT_VALIDITY_S = 90 * 24 * 3600


def start_pebble(layout: Layout, ca: LabCa) -> int:
    """pebble validating HTTP-01 on port 80 of the names' lab addresses (from the lab DNS)."""
    directory = layout.run_dir / "pebble"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cert.pem").write_text(ca.server_cert_pem)
    key_file = directory / "key.pem"
    key_file.touch(mode=0o600)
    key_file.write_text(ca.server_key_pem)
    (directory / "pebble.json").write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"{layout.host_address}:{layout.acme_port}",
                    "managementListenAddress": f"{layout.host_address}:{layout.acme_management_port}",
                    "certificate": str(directory / "cert.pem"),
                    "privateKey": str(key_file),
                    "httpPort": 80,
                    "tlsPort": 443,
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                    # Let's Encrypt's 90 days (pebble's default is 5 years, which no browser policy accepts).
                    "certificateValidityPeriod": LETS_ENCRYPT_VALIDITY_S,
                }
            },
            indent=2,
        )
    )
    context = ssl.create_default_context(cadata=ca.cert_pem)
    return start_service(
        [
            "pebble",
            "-config",
            str(directory / "pebble.json"),
            "-dnsserver",
            f"{layout.host_address}:{layout.dns_port}",
        ],
        directory / "pebble.log",
        ready=lambda: _answers(layout.acme_directory, context),
        what="pebble",
        # No random validation delays and no deliberately rejected nonces: the lab measures times.
        env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"},
    )


def acme_issuing_root(layout: Layout, ca: LabCa) -> str:
    """pebble makes a new issuing root each start: the PEM the nodes' certificates chain to."""
    context = ssl.create_default_context(cadata=ca.cert_pem)
    url = f"https://{layout.host_address}:{layout.acme_management_port}/roots/0"
    with urllib.request.urlopen(url, timeout=5, context=context) as answer:
        return str(answer.read().decode())


def start_dns(layout: Layout, hosts: dict[str, list[str]], txt: dict[str, str]) -> int:
    """dnsmasq answering exactly the lab's names (A and TXT), nothing forwarded anywhere."""
    directory = layout.run_dir / "dnsmasq"
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        "no-resolv",
        "no-hosts",
        "bind-interfaces",
        f"listen-address={layout.host_address}",
        f"port={layout.dns_port}",
        "log-queries",
        f"log-facility={directory / 'queries.log'}",
    ]
    lines += [f"host-record={name},{','.join(addresses)}" for name, addresses in sorted(hosts.items())]
    lines += [f'txt-record={name},"{text}"' for name, text in sorted(txt.items())]
    (directory / "dnsmasq.conf").write_text("\n".join(lines) + "\n")
    return start_service(
        [
            "dnsmasq",
            "--keep-in-foreground",
            f"--conf-file={directory / 'dnsmasq.conf'}",
            f"--pid-file={directory / 'pid'}",
            "--user=root",
        ],
        directory / "dnsmasq.log",
        ready=lambda: _dns_answers(layout),
        what="dnsmasq",
    )


def _dns_answers(layout: Layout) -> bool:
    try:
        dns.query.udp(
            dns.message.make_query("lab.invalid", "A"), layout.host_address, timeout=1, port=layout.dns_port
        )
        return True
    except (dns.exception.DNSException, OSError):
        return False


def start_pypi(layout: Layout) -> int:
    """A PyPI stand-in for the containers: exactly the wheels the watcher's hash-pinned install
    names (`infra.watcher_install.node_pins`), downloaded once from PyPI by the host's pip into
    the cache, served as a PEP 503 simple index. The node's `pip install --require-hashes` checks
    them against the hashes in the user data, so they must be PyPI's own files."""
    wheels = layout.cache_dir / f"wheels-py{layout.python_version}-{platform.machine()}"
    wheels.mkdir(parents=True, exist_ok=True)
    have = {f"{_project(w.name.split('-')[0])}=={w.name.split('-')[1]}" for w in wheels.glob("*.whl")}
    missing = [
        f"{name}=={version}"
        for name, version in install.node_pins(install.NODE_DISTRIBUTIONS)
        if f"{_project(name)}=={version}" not in have
    ]
    if missing:
        result = run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
                "--platform",
                f"manylinux2014_{platform.machine()}",
                "--python-version",
                layout.python_version,
                "--dest",
                str(wheels),
                *missing,
            ],
            check=False,
            timeout=600,
        )
        if result.returncode != 0:
            raise LabError(
                f"could not fetch the watcher's wheels for the lab's PyPI: {pip_errors(result.stderr)[-600:]}"
            )
    index = layout.run_dir / "pypi"
    shutil.rmtree(index, ignore_errors=True)
    for wheel in sorted(wheels.glob("*.whl")):
        page = index / "simple" / _project(wheel.name.split("-")[0])
        page.mkdir(parents=True, exist_ok=True)
        (index / wheel.name).symlink_to(wheel)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        with (page / "index.html").open("a") as out:
            out.write(
                f'<a href="../../{html.escape(wheel.name)}#sha256={digest}">{html.escape(wheel.name)}</a><br>\n'
            )
    return start_service(
        [
            sys.executable,
            "-m",
            "http.server",
            str(layout.pypi_port),
            "--bind",
            layout.host_address,
            "--directory",
            str(index),
        ],
        layout.run_dir / "pypi.log",
        ready=lambda: _answers(layout.pypi_index),
        what="the lab's PyPI stand-in",
    )


def _project(name: str) -> str:
    """A distribution's name as PEP 503 spells it (the simple index's page, wheel file names)."""
    return re.sub(r"[-_.]+", "-", name).lower()
