"""Cloudflare's Origin CA roots as shipped (infra/data/cloudflare-origin-ca.yaml): real, self-signed
CA certificates with the recorded fingerprints; the watcher's config trusts the one twinhost's
origin certificates chain to for proxied sites' checks."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from infra.catalog import cloudflare_origin_ca, cloudflare_origin_ca_bundle
from infra.config import Watcher
from infra.platform_watcher import ORIGIN_CA_REQUEST_TYPE, WatchedSite, watcher_config
from twinhost_watcher.config import parse_config


def _verify_self_signed(cert: x509.Certificate) -> None:
    key = cert.public_key()
    algorithm = cert.signature_hash_algorithm
    assert algorithm is not None
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))


def test_each_root_is_a_self_signed_ca_with_its_recorded_fingerprint_and_expiry() -> None:
    data = cloudflare_origin_ca()
    assert data["collected"] and data["sources"]
    assert len(data["roots"]) == 2
    for root in data["roots"]:
        cert = x509.load_pem_x509_certificate(root["pem"].encode())
        assert cert.subject == cert.issuer
        ou = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
        assert ou == root["name"]
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        _verify_self_signed(cert)  # a single wrong character in the PEM fails here
        der_sha256 = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
        assert der_sha256 == root["sha256"] == cert.fingerprint(hashes.SHA256()).hex()
        assert cert.not_valid_after_utc.date() == root["notAfter"]
        # Still valid when collected; refresh the file before they expire (2029-08-15).
        collected = dt.datetime.combine(data["collected"], dt.time(), tzinfo=dt.UTC)
        assert cert.not_valid_before_utc < collected < cert.not_valid_after_utc


def test_the_watchers_config_trusts_the_origin_ca_root_for_cloudflare_origin_sites() -> None:
    """The root travels inline (`caPem`) in the config the platform publishes: nothing to
    install on the redirector, so nothing can be missing there."""
    site = WatchedSite(
        site="proxied",
        mode="watchdog",
        record="proxied.ops.example.net",
        zone="ops.example.net",
        addresses={"digitalocean": "203.0.113.10", "linode": "198.51.100.20"},
        ttl=None,
        proxied=True,
        certificates="cloudflare-origin",
    )
    config = watcher_config(Watcher(), [site], dns_provider="cloudflare", zone_id="0" * 32, notify=False)
    assert config is not None
    nodes = config["sites"][0]["nodes"]
    assert [n["caPem"] for n in nodes] == [cloudflare_origin_ca_bundle(ORIGIN_CA_REQUEST_TYPE)] * 2
    cert = x509.load_pem_x509_certificate(nodes[0]["caPem"].encode())
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert nodes[0]["caPem"].count("BEGIN CERTIFICATE") == 1
    parsed = parse_config(config)
    assert parsed.sites[0].nodes[0].ca_pem == nodes[0]["caPem"]


def test_the_installed_root_is_the_one_twinhosts_origin_certificates_chain_to() -> None:
    """origin_tls requests ECC certificates (signed by the ECC root); the watcher trusts that
    root. Changing one without the other would fail every proxied site's checks."""
    source = (Path(__file__).resolve().parents[2] / "infra/components/origin_tls.py").read_text()
    assert f'request_type="{ORIGIN_CA_REQUEST_TYPE}"' in source
    assert 'algorithm="ECDSA"' in source
