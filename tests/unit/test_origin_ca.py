"""Cloudflare's Origin CA roots as shipped (infra/data/cloudflare-origin-ca.yaml): real, self-signed
CA certificates with the recorded fingerprints, installed on the redirector where the watcher's
config points proxied sites' checks."""

from __future__ import annotations

import datetime as dt
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from infra.catalog import cloudflare_origin_ca, cloudflare_origin_ca_bundle
from infra.platform_watcher import ORIGIN_CA_BUNDLE, node_parts


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
        collected = dt.datetime.combine(data["collected"], dt.time(), tzinfo=dt.timezone.utc)
        assert cert.not_valid_before_utc < collected < cert.not_valid_after_utc


def test_the_redirector_installs_the_bundle_where_the_watcher_config_points() -> None:
    parts = node_parts(bucket="b", region="eu-west-1", backends=["cloudflare"])
    [bundle] = [f for f in parts.files if f.path == ORIGIN_CA_BUNDLE]
    assert bundle.content == cloudflare_origin_ca_bundle()
    assert bundle.mode == 0o644 and not bundle.secret
    assert bundle.content.count("BEGIN CERTIFICATE") == 2
