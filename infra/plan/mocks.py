"""Pulumi mocks for the offline plan: what each cloud would answer, made up safely.

Addresses come from the documentation ranges (RFC 5737) unless an address map is given (the lab
gives its own). Keys and certificates are generated for real, so the rendered user data is
exactly what a node would boot with; they live only in this process and in the node's own user
data file.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import itertools
import secrets
import string
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from infra.config import NAMESPACE, SiteConfig, parse_config
from infra.config.files import project_defaults, read_stack_file
from infra.site_outputs import SiteOutputs, client_dns

# State keys use the wire (camelCase) names, as a provider would return them.
# Stand-ins for the public addresses the providers would hand out (RFC 5737 documentation ranges).
DEFAULT_ADDRESSES: dict[str, str] = {
    "digitalocean_reserved_ip": "203.0.113.10",
    "digitalocean_droplet": "203.0.113.20",
    "linode": "198.51.100.20",
    "redirector": "192.0.2.10",
}


@dataclass(frozen=True)
class SecretOutput:
    """A stack output that a StackReference answers as a secret (`PlanResult.reference_outputs`)."""

    value: Any = field(repr=False)


@dataclass
class PlanMocks(pulumi.runtime.Mocks):
    """Answers resource creation and function calls for `twinhost plan`."""

    addresses: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ADDRESSES))
    stack_outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Where the stack files are: a StackReference to a SITE stack not planned yet is answered
    # from its stack file (the platform plans first; a real plan of the site would be a cycle).
    project_dir: Path | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100001))

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        handler = _RESOURCE_HANDLERS.get(args.typ)
        state = dict(args.inputs)
        resource_id = str(next(self._ids))
        if handler is not None:
            state.update(handler(self, args))
        # A handler may name the resource's id (an access key's id is its public half).
        resource_id = str(state.pop("__id__", resource_id))
        if args.typ == "pulumi:pulumi:StackReference":
            resource_id = args.inputs.get("name", args.name)
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        handler = _CALL_HANDLERS.get(args.token)
        # No check failures: an empty list (the SDK's mock monitor iterates it; None fails).
        return (handler(self, args) if handler else {}), []


def _stack_reference(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    name = str(args.inputs.get("name", args.name))
    stack = name.rsplit("/", 1)[-1]
    outputs = mocks.stack_outputs.get(stack)
    if outputs is None and mocks.project_dir is not None:
        outputs = _site_outputs_from_stack_file(mocks, mocks.project_dir / f"Pulumi.{stack}.yaml")
    if outputs is None:
        raise LookupError(
            f"StackReference {name!r}: no stack file Pulumi.{stack}.yaml to plan it from; "
            "add it, or fix platformStack (site) / sites (platform)"
        )
    secret = sorted(k for k, v in outputs.items() if isinstance(v, SecretOutput))
    plain = {k: (v.value if isinstance(v, SecretOutput) else v) for k, v in outputs.items()}
    return {"outputs": plain, "secretOutputNames": secret}


def _site_outputs_from_stack_file(mocks: PlanMocks, path: Path) -> dict[str, Any] | None:
    """What `pulumi up` of a site stack would export (infra/site.py), from its stack file and
    this plan's address map: every output of the contract (`infra.site_outputs`), deterministically."""
    if not path.exists():
        return None
    config = _parsed(path)
    if not isinstance(config, SiteConfig):
        return None
    platform_file = path.parent / f"Pulumi.{config.platform_stack.rsplit('/', 1)[-1]}.yaml"
    platform = _parsed(platform_file) if platform_file.exists() else None
    ops_zone = str(getattr(platform, "ops_zone", "ops.invalid"))
    failover_hostname = f"{config.site}.{ops_zone}"
    domains = [d.name for d in config.domains]
    witness_database, witness_key = (
        _witness_database(config.site) if config.database == "mariadb" else (None, None)
    )
    return SiteOutputs(
        site=config.site,
        failover_hostname=failover_hostname,
        failover_mode=config.failover.mode,
        # The droplet is reached on its reserved IP (infra/components/digitalocean_node.py).
        node_addresses={
            "digitalocean": mocks.addresses["digitalocean_reserved_ip"],
            "linode": mocks.addresses["linode"],
        },
        # The platform's redirector is the Elastic IP these mocks hand out.
        client_dns=client_dns(domains, failover_hostname, mocks.addresses["redirector"]),
        domains=domains,
        ops_zone=ops_zone,
        failover_ttl=config.record_ttl,
        proxied=config.proxied,
        primary=config.primary,
        certificates=config.certificate_source,
        # The keys a plan of the site hands out (`_private_key`: one per role, per process).
        tinc_public_keys={
            provider: _rsa_key(3072, provider)
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
            for provider in ("digitalocean", "linode")
        },
        witness_database=witness_database,
        witness_database_key=SecretOutput(witness_key) if witness_key else None,
    ).to_exports()


def _witness_database(site: str) -> tuple[dict[str, str], str]:
    """A site's `witnessDatabase` output and its key, as a plan of the site would make them: a
    database CA of its own and the witness's certificate for `.3` of the site's mesh (real, but
    not the CA a later plan of the site makes: the lab plans the platform again with the site's
    own outputs)."""
    from infra.bootstrap.database import cluster_name  # deliberate: only for a database site
    from infra.witness import witness_mesh_address

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"twinhost {site} database CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "witness")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(witness_mesh_address(site)))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return (
        {
            "cluster": cluster_name(site),
            "caPem": ca.public_bytes(pem).decode(),
            "certificatePem": certificate.public_bytes(pem).decode(),
        },
        key.private_bytes(
            pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode(),
    )


def _parsed(path: Path) -> Any:
    values, secret_keys = read_stack_file(path)
    prefix = NAMESPACE + ":"
    raw = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
    return parse_config(
        raw,
        [k[len(prefix) :] for k in secret_keys],
        declared_defaults=project_defaults(path.parent / "Pulumi.yaml"),
    )


def _droplet(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    return {
        "ipv4Address": mocks.addresses["digitalocean_droplet"],
        "ipv4AddressPrivate": "10.110.0.2",
        "status": "active",
    }


def _linode_instance(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    address = mocks.addresses["linode"]
    return {"ipAddress": address, "ipv4s": [address], "status": "running"}


def _private_key(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    algorithm = args.inputs.get("algorithm", "RSA")
    if algorithm == "RSA":
        # One key per role suffix ("...-tinc-digitalocean"), shared across stacks in a process:
        # the two nodes of a pair differ, and planning 50 sites does not generate 100 RSA keys
        # (at `pulumi up` the tls provider makes each stack its own keys).
        key: Any = _rsa_key(int(args.inputs.get("rsaBits", 2048)), args.name.rsplit("-", 1)[-1])
    else:
        curve = {"P256": ec.SECP256R1(), "P384": ec.SECP384R1()}[args.inputs.get("ecdsaCurve", "P256")]
        key = ec.generate_private_key(curve)
    public = key.public_key()
    return {
        "privateKeyPem": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode(),
        "publicKeyPem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        "publicKeyOpenssh": public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ).decode(),
    }


# The RSA keys a site stack asks for: its two tinc keys (infra/components/site_pair.py,
# TINC_RSA_BITS, one per node; tests/unit/test_plan.py checks the two agree). Only a hint: a key
# not prefetched is generated when asked for.
SITE_RSA_KEYS: tuple[tuple[int, str], ...] = ((3072, "digitalocean"), (3072, "linode"))

_rsa_keys: dict[tuple[int, str], Future[rsa.RSAPrivateKey]] = {}
_rsa_keys_lock = threading.Lock()
# One worker: OpenSSL generates keys without holding the GIL, so a key made here overlaps the
# plan's SDK imports on another core instead of following them (each 3072-bit key: 0.1-0.5 s).
_rsa_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twinhost-plan-keys")


def prefetch_rsa_keys(wanted: tuple[tuple[int, str], ...]) -> None:
    """Start generating the (bits, role) keys a plan is about to ask for."""
    with _rsa_keys_lock:
        for bits, role in wanted:
            if (bits, role) not in _rsa_keys:
                _rsa_keys[(bits, role)] = _rsa_worker.submit(
                    rsa.generate_private_key, public_exponent=65537, key_size=bits
                )


def _rsa_key(bits: int, role: str) -> rsa.RSAPrivateKey:
    prefetch_rsa_keys(((bits, role),))
    return _rsa_keys[(bits, role)].result()


def _cert_request(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """A real CSR when the key is known (the database members' certificates are signed from
    it, so a booted node holds a working certificate); a placeholder otherwise."""
    key_pem = _plain(args.inputs.get("privateKeyPem"))
    if not isinstance(key_pem, str):
        return {
            "certRequestPem": "-----BEGIN CERTIFICATE REQUEST-----\n(plan)\n-----END CERTIFICATE REQUEST-----\n"
        }
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    builder = x509.CertificateSigningRequestBuilder().subject_name(_subject(args.inputs.get("subject")))
    names = _alt_names(args.inputs)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    request = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
    return {"certRequestPem": request.public_bytes(serialization.Encoding.PEM).decode()}


def _plain(value: Any) -> Any:
    """An input's value without its secret wrapper (a key passed from another resource's
    secret output arrives wrapped)."""
    if isinstance(value, Mapping) and "value" in value and len(value) == 2:
        return _plain(value["value"])
    return value


def _subject(subject: Any) -> x509.Name:
    subject = subject if isinstance(subject, Mapping) else {}
    attributes = [
        x509.NameAttribute(oid, str(subject[key]))
        for key, oid in (("commonName", NameOID.COMMON_NAME), ("organization", NameOID.ORGANIZATION_NAME))
        if subject.get(key)
    ]
    return x509.Name(attributes or [x509.NameAttribute(NameOID.COMMON_NAME, "plan")])


def _alt_names(inputs: Mapping[str, Any]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(str(n)) for n in inputs.get("dnsNames") or []]
    names += [x509.IPAddress(ipaddress.ip_address(str(a))) for a in inputs.get("ipAddresses") or []]
    return names


def _validity(inputs: Mapping[str, Any]) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    return now, now + datetime.timedelta(hours=int(inputs.get("validityPeriodHours") or 24))


def _self_signed_cert(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """A real self-signed certificate (a CA when asked) from the given key."""
    key = serialization.load_pem_private_key(
        str(_plain(args.inputs["privateKeyPem"])).encode(), password=None
    )
    subject = _subject(args.inputs.get("subject"))
    start, end = _validity(args.inputs)
    is_ca = bool(args.inputs.get("isCaCertificate"))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)  # type: ignore[arg-type]
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return {"certPem": certificate.public_bytes(serialization.Encoding.PEM).decode()}


def _locally_signed_cert(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """A real certificate for the CSR, signed by the given CA (chains like the tls provider's)."""
    request = x509.load_pem_x509_csr(str(_plain(args.inputs["certRequestPem"])).encode())
    ca_key = serialization.load_pem_private_key(
        str(_plain(args.inputs["caPrivateKeyPem"])).encode(), password=None
    )
    ca = x509.load_pem_x509_certificate(str(_plain(args.inputs["caCertPem"])).encode())
    start, end = _validity(args.inputs)
    uses = set(args.inputs.get("allowedUses") or [])
    usages = [
        oid
        for use, oid in (
            ("server_auth", x509.oid.ExtendedKeyUsageOID.SERVER_AUTH),
            ("client_auth", x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH),
        )
        if use in uses
    ]
    builder = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(ca.subject)
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    for extension in request.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    certificate = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    return {"certPem": certificate.public_bytes(serialization.Encoding.PEM).decode()}


def _random_password(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """A real random password of the asked length (letters and digits when `special` is off)."""
    alphabet = string.ascii_letters + string.digits
    if args.inputs.get("special", True):
        alphabet += "!#$%&*()-_=+[]{}<>:?"
    return {"result": _stable(args.name, alphabet, int(args.inputs.get("length", 16)))}


_PLAN_SEED = secrets.token_bytes(16)  # one per process: two plans in one process render the same


def _stable(name: str, alphabet: str, length: int) -> str:
    """A random-looking value, the same for the same resource name within this process (so a plan
    renders the same user data twice), different in every process."""
    out: list[str] = []
    counter = 0
    while len(out) < length:
        digest = hashlib.sha256(_PLAN_SEED + name.encode() + counter.to_bytes(4, "big")).digest()
        out += [alphabet[b % len(alphabet)] for b in digest]
        counter += 1
    return "".join(out[:length])


def _origin_certificate(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """A self-signed stand-in for the Origin CA certificate, valid for the requested names."""
    hostnames = [str(h) for h in args.inputs.get("hostnames", [])] or ["plan.invalid"]
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=5475))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return {
        "certificate": certificate.public_bytes(serialization.Encoding.PEM).decode(),
        "expiresOn": (now + datetime.timedelta(days=5475)).isoformat(),
    }


def _reserved_ip(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    return {"ipAddress": mocks.addresses["digitalocean_reserved_ip"]}


def _eip(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    return {"publicIp": mocks.addresses["redirector"], "allocationId": "eipalloc-0plan"}


def _ec2_instance(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    return {"privateIp": "172.31.0.10", "publicIp": mocks.addresses["redirector"], "arn": "arn:aws:ec2:plan"}


PLAN_ACCOUNT = "123456789012"  # AWS's documentation account id
PLAN_REGION = "eu-west-1"


def _bucket(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    name = args.inputs.get("bucket") or f"{args.name}-0plan"  # AWS autonames with a suffix
    return {"bucket": name, "arn": f"arn:aws:s3:::{name}", "id": name}


def _ssm_parameter(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    name = str(args.inputs.get("name"))
    return {"arn": f"arn:aws:ssm:{PLAN_REGION}:{PLAN_ACCOUNT}:parameter{name}", "version": 1}


def _iam_role(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    name = args.inputs.get("name") or f"{args.name}-0plan"
    return {"name": name, "arn": f"arn:aws:iam::{PLAN_ACCOUNT}:role/{name}"}


def _instance_profile(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    name = args.inputs.get("name") or f"{args.name}-0plan"
    return {"name": name, "arn": f"arn:aws:iam::{PLAN_ACCOUNT}:instance-profile/{name}"}


def _iam_user(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    name = args.inputs.get("name") or f"{args.name}-0plan"
    path = args.inputs.get("path") or "/"
    return {"name": name, "arn": f"arn:aws:iam::{PLAN_ACCOUNT}:user{path}{name}"}


def _access_key(mocks: PlanMocks, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """A made-up key pair of AWS's shapes (AKIA + 16, 40 of base64): nothing real accepts it."""
    key_id = "AKIA" + _stable(args.name + "/id", string.ascii_uppercase + string.digits, 16)
    secret = _stable(args.name + "/secret", string.ascii_letters + string.digits, 40)
    return {"__id__": key_id, "secret": secret, "status": "Active"}


def _get_ami(mocks: PlanMocks, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
    """The image the lookup asked for: its name filter with the date part made up."""
    filters = {f.get("name"): list(f.get("values") or []) for f in args.args.get("filters") or []}
    pattern = (filters.get("name") or ["debian-12-arm64-*"])[0]
    architecture = (filters.get("architecture") or ["arm64"])[0]
    return {
        "id": "ami-0123456789abcdef0",
        "name": pattern.replace("*", "20261101-plan"),
        "architecture": architecture,
        "ownerId": (args.args.get("owners") or ["136693071363"])[0],
    }


Handler = Callable[[PlanMocks, Any], dict[str, Any]]
_RESOURCE_HANDLERS: dict[str, Handler] = {
    "pulumi:pulumi:StackReference": _stack_reference,
    "digitalocean:index/droplet:Droplet": _droplet,
    "digitalocean:index/reservedIp:ReservedIp": _reserved_ip,
    "linode:index/instance:Instance": _linode_instance,
    "tls:index/privateKey:PrivateKey": _private_key,
    "tls:index/certRequest:CertRequest": _cert_request,
    "tls:index/selfSignedCert:SelfSignedCert": _self_signed_cert,
    "tls:index/locallySignedCert:LocallySignedCert": _locally_signed_cert,
    "random:index/randomPassword:RandomPassword": _random_password,
    "cloudflare:index/originCaCertificate:OriginCaCertificate": _origin_certificate,
    "aws:ec2/eip:Eip": _eip,
    "aws:ec2/instance:Instance": _ec2_instance,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:ssm/parameter:Parameter": _ssm_parameter,
    "aws:iam/role:Role": _iam_role,
    "aws:iam/instanceProfile:InstanceProfile": _instance_profile,
    "aws:iam/user:User": _iam_user,
    "aws:iam/accessKey:AccessKey": _access_key,
}
_CALL_HANDLERS: dict[str, Handler] = {
    "aws:ec2/getAmi:getAmi": _get_ami,
}
