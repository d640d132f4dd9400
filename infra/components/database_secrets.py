"""A site's database secrets: the app's database password and the Galera members' TLS.

Made only for a site with `database: mariadb` (infra/components/site_pair.py imports this module
then, so a site without a database never imports pulumi_random). Everything here is a Pulumi
secret end to end: the password and the private keys reach a node only inside its user data,
which is itself a secret.

- the password of the site's database user (pulumi_random): letters and digits only, so it is
  safe inside the SQL and the option file the node writes without any quoting;
- a CA of the site's own (pulumi_tls, self-signed) and one certificate per member, signed by it,
  for the address the member is known by on the mesh. Galera's replication and IST
  (`socket.ssl_*`) and the state snapshot transfer (stunnel, `[sst]`) both check the peer's
  certificate against this CA, so only this site's members and the witness's `garbd` can join
  the cluster;
- the witness's certificate and key (`witness`): one more member, for the platform's witness at
  `.3` of the site's mesh, where its `garbd` (the third vote) listens. The site stack exports the
  certificate and, as a secret, the key; the platform stack reads both through its
  StackReference and delivers the key to the redirector as an SSM SecureString (never in user
  data or in the witness's public document). Made for every site with a database, whether or not
  its platform has a witness yet: the address is the site's own, and the platform decides.

What it deliberately does not do: rotate anything (a new password or certificate is new user
data, which replaces a node; rotation is a runbook step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_random as random
import pulumi_tls as tls

# Letters and digits only (see the module docstring); 32 of them is about 190 bits.
PASSWORD_LENGTH = 32
# Ten years: a certificate that expires takes the cluster down, and rotation replaces nodes.
VALIDITY_HOURS = 10 * 365 * 24
# ECDSA P-256: accepted by OpenSSL 3 (Galera's asio sockets) and by stunnel on Debian 12 and 13.
KEY_ALGORITHM = "ECDSA"
KEY_CURVE = "P256"
# The witness's garbd as a member of the site's cluster (its certificate's common name).
WITNESS_MEMBER = "witness"


@dataclass
class DatabaseSecretsArgs:
    site: str
    # {member name: its mesh address}: one certificate each, valid for that address.
    members: Mapping[str, str]
    # The witness's mesh address in this site's net (infra.witness: `.3`): its garbd's certificate.
    witness_address: str | None = None


@dataclass(frozen=True)
class MemberTls:
    """One member's TLS material as Outputs (the key is a secret)."""

    certificate_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]


class DatabaseSecrets(pulumi.ComponentResource):
    """Outputs: `password` (secret), `ca_certificate_pem`, `members` ({name: MemberTls}) and
    `witness` (the witness garbd's MemberTls, or None)."""

    def __init__(self, name: str, args: DatabaseSecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("twinhost:site:DatabaseSecrets", name, None, opts)
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        password = random.RandomPassword(
            f"{name}-db-password",
            length=PASSWORD_LENGTH,
            special=False,
            opts=self._child,
        )
        # The provider marks `result` secret; say so here too, so no code path can unwrap it.
        self.password: pulumi.Output[str] = pulumi.Output.secret(password.result)
        self._create_ca(args.site)
        self.members = {
            member: self.member_certificate(member, address) for member, address in args.members.items()
        }
        self.witness = (
            self.member_certificate(WITNESS_MEMBER, args.witness_address) if args.witness_address else None
        )
        self.register_outputs({"password": self.password, "ca_certificate_pem": self.ca_certificate_pem})

    def _create_ca(self, site: str) -> None:
        self._ca_key = tls.PrivateKey(
            f"{self._name}-db-ca-key", algorithm=KEY_ALGORITHM, ecdsa_curve=KEY_CURVE, opts=self._child
        )
        self._ca = tls.SelfSignedCert(
            f"{self._name}-db-ca",
            private_key_pem=self._ca_key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(
                common_name=f"twinhost {site} database CA", organization="twinhost"
            ),
            is_ca_certificate=True,
            validity_period_hours=VALIDITY_HOURS,
            allowed_uses=["cert_signing", "crl_signing"],
            opts=self._child,
        )
        self.ca_certificate_pem: pulumi.Output[str] = self._ca.cert_pem

    def member_certificate(self, member: str, address: str, extra_addresses: Sequence[str] = ()) -> MemberTls:
        """A key and a certificate signed by this site's CA for one cluster member, valid for its
        mesh address(es) (the witness's garbd is one: `witness`)."""
        key = tls.PrivateKey(
            f"{self._name}-db-{member}-key", algorithm=KEY_ALGORITHM, ecdsa_curve=KEY_CURVE, opts=self._child
        )
        request = tls.CertRequest(
            f"{self._name}-db-{member}-csr",
            private_key_pem=key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=member, organization="twinhost"),
            ip_addresses=[address, *extra_addresses],
            opts=self._child,
        )
        certificate = tls.LocallySignedCert(
            f"{self._name}-db-{member}-cert",
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=self._ca_key.private_key_pem,
            ca_cert_pem=self._ca.cert_pem,
            validity_period_hours=VALIDITY_HOURS,
            # Each member is both: it accepts peers' connections and opens its own to them.
            allowed_uses=["digital_signature", "key_encipherment", "server_auth", "client_auth"],
            opts=self._child,
        )
        return MemberTls(certificate.cert_pem, pulumi.Output.secret(key.private_key_pem))
