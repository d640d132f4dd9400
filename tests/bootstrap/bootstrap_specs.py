"""Specs for the bootstrap tests: one factory, keys made at test time, fakes for golden files.

No real private key is stored in the repository: `generated_keys` makes fresh ones per session,
and golden files use obviously fake placeholders (`FAKE_KEYS`).
"""

from __future__ import annotations

import datetime
import itertools
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from infra.bootstrap.spec import (
    BackupSpec,
    DatabaseSpec,
    MeshPeer,
    NodeSpec,
    WitnessPeer,
    mesh_addresses,
    mesh_network,
    tinc_node_name,
)
from infra.config import App, CommandApp, ContainerApp, DebApp, DemoApp, WordPressApp
from infra.config.fields import WORDPRESS_ENV
from infra.witness import WITNESS_TINC_NAME, witness_mesh_address, witness_port

SITE = "acme-shop"
ADMIN_CIDRS = ("203.0.113.0/24", "2001:db8:100::/48")
PUBLIC = {"digitalocean": "198.51.100.10", "linode": "192.0.2.20"}
DROPLET_OWN_IP = "198.51.100.77"  # a droplet sends from this, not from its reserved IP
WITNESS_ADDRESS = "192.0.2.250"  # the platform's Elastic IP


@dataclass(frozen=True)
class Keys:
    """Everything secret or key-shaped a pair of specs needs."""

    tinc_private: dict[str, str]
    tinc_public: dict[str, str]
    ssh_public: str
    origin_cert: str
    origin_key: str
    app_secret: str
    extra_ca: str


FAKE_KEYS = Keys(
    tinc_private={
        p: f"-----BEGIN RSA PRIVATE KEY-----\nFAKE-TINC-PRIVATE-KEY-OF-{p.upper()}\n-----END RSA PRIVATE KEY-----"
        for p in ("digitalocean", "linode")
    },
    tinc_public={
        p: f"-----BEGIN PUBLIC KEY-----\nFAKE-TINC-PUBLIC-KEY-OF-{p.upper()}\n-----END PUBLIC KEY-----"
        for p in ("digitalocean", "linode", "witness")
    },
    ssh_public="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAK ops@example",
    origin_cert="-----BEGIN CERTIFICATE-----\nFAKE-CLOUDFLARE-ORIGIN-CERTIFICATE\n-----END CERTIFICATE-----",
    origin_key="-----BEGIN PRIVATE KEY-----\nFAKE-CLOUDFLARE-ORIGIN-PRIVATE-KEY\n-----END PRIVATE KEY-----",
    app_secret="FAKE-APP-SECRET-VALUE",
    extra_ca="-----BEGIN CERTIFICATE-----\nFAKE-LAB-CA\n-----END CERTIFICATE-----",
)


def _rsa_pair() -> tuple[str, str]:
    """An RSA key in the formats pulumi_tls gives: PKCS#1 private, SubjectPublicKeyInfo public."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def self_signed(names: tuple[str, ...], days: int = 90) -> tuple[str, str]:
    """A self-signed ECDSA P-256 certificate and its PKCS#8 key, PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )


def make_keys() -> Keys:
    pairs = {p: _rsa_pair() for p in ("digitalocean", "linode", "witness")}
    ssh = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    cert, key = self_signed(("www.acme-shop.example",), days=3650)
    ca, _ = self_signed(("lab ca",))
    return Keys(
        tinc_private={p: pairs[p][0] for p in pairs},
        tinc_public={p: pairs[p][1] for p in pairs},
        ssh_public=f"{ssh} ops@test",
        origin_cert=cert,
        origin_key=key,
        app_secret="s3cr3t-"
        + rsa.generate_private_key(65537, 1024).private_numbers().p.to_bytes(64, "big").hex()[:24],
        extra_ca=ca,
    )


APPS: dict[str, App] = {
    "demo": DemoApp(),
    "container": ContainerApp(
        kind="container", image="ghcr.io/acme/shop", version="1.4.2", port=8080, env={"LOG_LEVEL": "info"}
    ),
    "deb": DebApp(
        kind="deb",
        package="acme-shop",
        version="2.0.1-1",
        command="/usr/bin/acme-shop --port $PORT",
        port=9000,
        env={"SHOP_MODE": "production"},
    ),
    "command": CommandApp(
        kind="command", command="/usr/bin/python3 -m http.server --bind 127.0.0.1 $PORT", port=8080
    ),
    # Needs the database (make_spec gives it one).
    "wordpress": WordPressApp(kind="wordpress"),
}


def wordpress_keys(keys: Keys) -> tuple[tuple[str, str], ...]:
    """WordPress's eight keys and salts, derived from the (fake or fresh) app secret: distinct,
    and long enough (32+) for the renderer's check."""
    return tuple((name, f"{name.replace('_', '-')}-{keys.app_secret}") for name in WORDPRESS_ENV)


def make_spec(
    provider: str = "digitalocean",
    *,
    debian: int = 12,
    proxied: bool = False,
    app: str = "demo",
    keys: Keys = FAKE_KEYS,
    lab: bool = False,
    memory_mib: int = 1024,
    admin_keys: int = 1,
    admin_cidrs: tuple[str, ...] = ADMIN_CIDRS,
    database: bool = False,
    witness: bool = True,
    backup: bool = True,
) -> NodeSpec:
    """One node of the example site. Node A is DigitalOcean (primary), node B Linode."""
    other = "linode" if provider == "digitalocean" else "digitalocean"
    mesh = mesh_addresses(SITE)
    peer = MeshPeer(
        name=tinc_node_name(SITE, other),
        public_address=PUBLIC[other],
        mesh_address=mesh[other],
        tinc_public_key_pem=keys.tinc_public[other],
        other_source_addresses=(DROPLET_OWN_IP,) if other == "digitalocean" else (),
    )
    server_names = ("www.acme-shop.example", f"{SITE}.ops.example")
    return NodeSpec(
        site=SITE,
        provider=provider,  # type: ignore[arg-type]
        is_primary=provider == "digitalocean",
        hostname=f"{SITE}-{'a' if provider == 'digitalocean' else 'b'}.ops.example",
        debian=debian,
        memory_mib=memory_mib,
        admin_user="ops",
        ssh_keys=tuple(itertools.islice(itertools.repeat(keys.ssh_public), admin_keys)),
        admin_cidrs=admin_cidrs,
        public_address=PUBLIC[provider],
        tinc_net=SITE.replace("-", "_"),
        tinc_node_name=tinc_node_name(SITE, provider),  # type: ignore[arg-type]
        mesh_address=mesh[provider],
        mesh_prefix=mesh_network(SITE).prefixlen,
        tinc_private_key_pem=keys.tinc_private[provider],
        tinc_public_key_pem=keys.tinc_public[provider],
        peer=peer,
        server_names=server_names,
        proxied=proxied,
        http_sources=("173.245.48.0/20",) if False else (),
        certificates="cloudflare-origin" if proxied else "acme",
        origin_certificate_pem=keys.origin_cert if proxied else None,
        origin_private_key_pem=keys.origin_key if proxied else None,
        acme_email=None if proxied else "ops@acme-shop.example",
        app=APPS[app],
        app_secrets=(("SHOP_API_TOKEN", keys.app_secret),),
        app_keys=wordpress_keys(keys) if app == "wordpress" else (),
        apt_proxy="http://10.99.0.1:3142" if lab else None,
        extra_ca_pem=keys.extra_ca if lab else None,
        health_check_sources=("192.0.2.200/32",) if proxied else (),
        # WordPress keeps its posts in the database: a wordpress spec always has one.
        database=(
            make_database(tinc_node_name(SITE, provider))  # type: ignore[arg-type]
            if database or app == "wordpress"
            else None
        ),
        witness=WitnessPeer(
            name=WITNESS_TINC_NAME,
            public_address=WITNESS_ADDRESS,
            port=witness_port(SITE),
            mesh_address=witness_mesh_address(SITE),
            tinc_public_key_pem=keys.tinc_public["witness"],
        )
        if witness
        else None,
        backup=make_backup() if backup else None,
    )


BACKUP_SECRET_KEY = "Bk7" + "s" * 37  # AWS's shape: 40 characters
BACKUP_PASSWORD = "Rp4" + "w" * 37  # letters and digits, as pulumi_random makes it
BACKUP_WEBHOOK = "https://ntfy.example/twinhost-alerts-" + "t" * 16


def make_backup() -> BackupSpec:
    """The site's backups as the stack makes them: the platform bucket's regional endpoint, the
    site's prefix, a key pair and password of the real shapes (none of them real)."""
    return BackupSpec(
        repository=f"s3:https://s3.eu-west-1.amazonaws.com/twinhost-backups-20261205/{SITE}",
        region="eu-west-1",
        access_key_id="AKIAEXAMPLEBACKUP000",
        secret_access_key=BACKUP_SECRET_KEY,
        password=BACKUP_PASSWORD,
        webhook=BACKUP_WEBHOOK,
    )


DATABASE_PASSWORD = "Zx9" + "q" * 29  # letters and digits, as pulumi_random makes it


def make_database(member: str, witness: str | None = None) -> DatabaseSpec:
    """The site's Galera member with a fresh CA and certificate (ECDSA, as the stack makes them)."""
    ca, _ = self_signed(("db ca",))
    cert, key = self_signed((member,))
    return DatabaseSpec(
        cluster_name=f"twinhost-{SITE}",
        name=SITE.replace("-", "_"),
        user=SITE.replace("-", "_"),
        password=DATABASE_PASSWORD,
        ca_pem=ca,
        certificate_pem=cert,
        private_key_pem=key,
        witness_address=witness,
    )
