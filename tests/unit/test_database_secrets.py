"""The database's secrets under the plan's mocks: the password a Pulumi secret made by
pulumi_random, a site CA and member certificates by pulumi_tls, the keys secret, all of it shown
as [secret] by `twinhost plan`."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from infra.bootstrap.spec import mesh_addresses
from infra.config.files import SECRET_PLACEHOLDER
from infra.plan.runner import PlanResult, is_secret_value, reveal, run_plan
from infra.witness import witness_mesh_address
from tests.conftest import REPO, run_twinhost, write_stack

# -- the secrets, under the plan's mocks -----------------------------------------------------------


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> PlanResult:
    from tests.conftest import stack_file_values

    directory = tmp_path_factory.mktemp("database")
    write_stack(directory, "harbourlaw", dict(stack_file_values("harbourlaw"), database="mariadb"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return run_plan(directory / "Pulumi.harbourlaw.yaml")


def _of_type(plan: PlanResult, type_: str) -> list[Any]:
    return [r for r in plan.resources if r.type == type_]


def test_a_site_without_a_database_makes_no_database_secrets():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        plain = run_plan(REPO / "Pulumi.harbourlaw.yaml")
    # (The one random password it has is its backups' restic key: infra/components/site_backups.py.)
    assert not any(
        (r.type.startswith("random:") and "restic" not in r.name) or "database" in r.name
        for r in plain.resources
    )


def test_the_password_is_random_letters_and_digits(plan):
    [password] = [
        p for p in _of_type(plan, "random:index/randomPassword:RandomPassword") if "db-password" in p.name
    ]
    assert password.inputs["length"] >= 32 and password.inputs["special"] is False
    assert password.parent and "DatabaseSecrets" in password.parent


def test_the_site_has_its_own_ca_and_one_certificate_per_member(plan):
    """Both nodes, and the witness's garbd (the third vote, at .3 of the site's mesh)."""
    [ca] = _of_type(plan, "tls:index/selfSignedCert:SelfSignedCert")
    assert ca.inputs["isCaCertificate"] is True
    assert set(ca.inputs["allowedUses"]) == {"cert_signing", "crl_signing"}
    certs = _of_type(plan, "tls:index/locallySignedCert:LocallySignedCert")
    assert len(certs) == 3
    for cert in certs:
        assert {"server_auth", "client_auth"} <= set(cert.inputs["allowedUses"])
        assert is_secret_value(cert.inputs["caPrivateKeyPem"])
    requests = _of_type(plan, "tls:index/certRequest:CertRequest")
    assert sorted(reveal(r.inputs["ipAddresses"])[0] for r in requests) == sorted(
        [*mesh_addresses("harbourlaw").values(), witness_mesh_address("harbourlaw")]
    )


def test_the_witness_key_is_exported_only_as_a_secret_and_its_certificate_in_the_clear(plan):
    """The platform reads both (its witness runs the site's garbd); the key only as a secret."""
    assert plan.outputs["witnessDatabaseKey"] == SECRET_PLACEHOLDER
    assert "PRIVATE KEY" in plan.secret_outputs["witnessDatabaseKey"]
    public = plan.outputs["witnessDatabase"]
    assert public["cluster"] == "twinhost-harbourlaw"
    assert "CERTIFICATE" in public["certificatePem"] and "PRIVATE" not in json.dumps(public)


def test_private_keys_are_secret_inputs_wherever_they_go(plan):
    for request in _of_type(plan, "tls:index/certRequest:CertRequest"):
        assert is_secret_value(request.inputs["privateKeyPem"])
    [ca] = _of_type(plan, "tls:index/selfSignedCert:SelfSignedCert")
    assert is_secret_value(ca.inputs["privateKeyPem"])


def test_each_node_boots_with_a_certificate_of_the_site_ca_for_its_mesh_address(plan):
    import yaml

    from infra.bootstrap.parts import decoded_files, readable

    fingerprints = set()
    for text in plan.user_data.values():
        files = {e["path"]: e["content"] for e in decoded_files(yaml.safe_load(readable(text)))}
        ca = x509.load_pem_x509_certificate(files["/etc/twinhost/db/tls/ca.pem"].encode())
        cert = x509.load_pem_x509_certificate(files["/etc/twinhost/db/tls/cert.pem"].encode())
        public = ca.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        cert.verify_directly_issued_by(ca)
        address = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert files["/etc/twinhost/db/password"].strip().isalnum()
        assert [str(a) for a in address.get_values_for_type(x509.IPAddress)] == [
            files["/etc/twinhost/db/galera.cnf"].split("wsrep_node_address = ")[1].split()[0]
        ]
        fingerprints.add(ca.fingerprint(hashes.SHA256()))
    assert len(plan.user_data) == 2 and len(fingerprints) == 1  # one CA for the pair


def test_the_plan_shows_the_database_secrets_as_secret(tmp_path, site_values):
    write_stack(tmp_path, "harbourlaw", dict(site_values, database="mariadb"))
    result = run_twinhost(
        *["plan", "--stack", "harbourlaw", "--project-dir", str(tmp_path), "--json"],
        *["--build-dir", str(tmp_path / "build")],
    )
    assert result.returncode == 0, result.stderr
    site = json.loads(result.stdout)
    by_name = {r["name"]: r for r in site["resources"]}
    assert by_name["harbourlaw-database-db-password"]["settings"]["result"] == "[secret]"
    assert by_name["harbourlaw-database-db-ca-key"]["settings"]["privateKeyPem"] == "[secret]"
    # The value itself is only in the nodes' own user data files, never in what is printed.
    import yaml

    document = yaml.safe_load((tmp_path / "build/harbourlaw/linode.readable.yaml").read_text())
    [password] = [
        f["content"].strip() for f in document["write_files"] if f["path"] == "/etc/twinhost/db/password"
    ]
    assert password.isalnum() and len(password) >= 32
    assert password not in result.stdout + result.stderr
