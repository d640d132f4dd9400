"""Origin TLS for proxied sites: a Cloudflare Origin CA certificate for the site's hostnames.

Cloudflare's proxy is the only client of a proxied origin, and it trusts its own Origin CA, so
the certificate is long-lived and needs no ACME on the nodes. The private key is made by Pulumi
(`pulumi_tls`), stays a secret in state, and reaches the nodes only inside their user data.
DNS-only sites do not get one: their nodes obtain ACME certificates (see the bootstrap).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare
import pulumi_tls as tls

# 15 years, the longest Cloudflare offers: renewing means a new key on every node.
ORIGIN_CERT_VALIDITY_DAYS = 5475


@dataclass
class OriginTlsArgs:
    site: str
    hostnames: list[pulumi.Input[str]]


class OriginTls(pulumi.ComponentResource):
    """Outputs: `certificate_pem`, `private_key_pem` (secret)."""

    certificate_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]

    def __init__(self, name: str, args: OriginTlsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("twinhost:site:OriginTls", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        key = tls.PrivateKey(f"{name}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        csr = tls.CertRequest(
            f"{name}-csr",
            private_key_pem=key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=args.hostnames[0], organization="twinhost"),
            dns_names=args.hostnames,
            opts=child,
        )
        certificate = cloudflare.OriginCaCertificate(
            f"{name}-certificate",
            csr=csr.cert_request_pem,
            hostnames=args.hostnames,
            request_type="origin-ecc",
            requested_validity=ORIGIN_CERT_VALIDITY_DAYS,
            opts=child,
        )
        self.certificate_pem = certificate.certificate
        self.private_key_pem = pulumi.Output.secret(key.private_key_pem)
        self.register_outputs(
            {"certificate_pem": self.certificate_pem, "private_key_pem": self.private_key_pem}
        )
