"""`twinhost plan --lab` renders the user data the local lab boots: same program, same stack
config, plus the lab's proxy, CA, ACME directory, resolvers, admin network and key. The lab's
render overrides are an argument of the render step (`build_stack(overrides)`), never a stack
config key: a real plan has none of them in any node's user data."""

from __future__ import annotations

import datetime
import json
import re

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from infra import platform_watcher as pw
from infra.bootstrap.parts import readable
from infra.cli import main
from infra.config import ConfigError
from infra.plan.lab_profile import LabProfile
from infra.plan.runner import run_plan
from tests.conftest import REPO
from twinhost_lab import aws
from twinhost_lab import lab as lab_module
from twinhost_lab.layout import Layout


def _ca_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "twinhost lab CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _profile_json() -> dict:
    """A profile as `twinhost plan --lab FILE` reads it (JSON)."""
    key = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
        + " lab-admin"
    )
    return {
        "addresses": {
            "digitalocean_reserved_ip": "198.51.100.10",
            "digitalocean_droplet": "198.51.100.11",
            "linode": "198.51.100.20",
            "redirector": "198.51.100.30",
        },
        "overrides": {
            "aptProxy": "http://198.51.100.1:3150",
            "caPem": _ca_pem(),
            "acmeDirectory": "https://198.51.100.1:14000/dir",
            "resolvers": ["198.51.100.1"],
        },
        "adminCidrs": ["198.51.100.208/29"],
        "sshKeys": [key],
    }


@pytest.fixture(scope="module")
def profile() -> LabProfile:
    return LabProfile.parse(_profile_json())


def test_site_nodes_get_the_lab_proxy_ca_acme_directory_and_admin(profile):
    result = run_plan(REPO / "Pulumi.harbourlaw.yaml", lab=profile)
    for node in ("digitalocean", "linode"):
        text = readable(result.user_data[node])  # packed (gz+b64) files decoded
        document = yaml.safe_load(text)
        assert "198.51.100.1:3150" in str(document.get("apt", {})), node
        assert "https://198.51.100.1:14000/dir" in text and "BEGIN CERTIFICATE" in text
        assert "198.51.100.208/29" in text and profile.ssh_keys[0] in text
        assert "203.0.113.0/28" in text  # the stack's own admin networks stay
    # The lab addresses stand in for the public ones, so the peers name each other by them.
    assert "198.51.100.20" in readable(result.user_data["digitalocean"])
    assert "198.51.100.10" in readable(result.user_data["linode"])


def test_the_redirector_gets_the_lab_resolvers_and_acme_server(profile):
    text = run_plan(REPO / "Pulumi.prod.yaml", lab=profile).user_data["redirector"]
    assert "https://198.51.100.1:14000/dir" in text and "198.51.100.1" in text and "BEGIN CERTIFICATE" in text


def test_without_a_profile_nothing_of_the_lab_leaks_in():
    text = readable(run_plan(REPO / "Pulumi.harbourlaw.yaml").user_data["digitalocean"])
    assert "198.51.100.1" not in text and "acme-v02.api.letsencrypt.org" in text


def test_lab_overrides_are_validated():
    values = dict(_profile_json(), overrides={"aptProxy": "ftp://mirror", "acmeDirectory": "http://x"})
    with pytest.raises(ConfigError) as caught:
        LabProfile.parse(values)
    keys = {issue.key for issue in caught.value.issues}
    assert {"overrides.aptProxy", "overrides.acmeDirectory"} <= keys


def test_an_unknown_override_is_refused_by_name():
    values = dict(
        _profile_json(), overrides={"aptProxy": "http://198.51.100.1:3150", "acmeDirectroy": "https://x"}
    )
    with pytest.raises(ConfigError) as caught:
        LabProfile.parse(values)
    assert [(issue.key, issue.message) for issue in caught.value.issues] == [
        ("overrides.acmeDirectroy", "is not a known key")
    ]


def test_the_profile_json_round_trips(profile):
    assert LabProfile.parse(json.loads(json.dumps(profile.to_json()))) == profile


def test_an_empty_profile_renders_exactly_the_production_user_data():
    """RenderOverrides() is production: every default is what `pulumi up` renders."""
    for stack in ("harbourlaw", "prod"):
        assert (
            run_plan(REPO / f"Pulumi.{stack}.yaml", lab=LabProfile()).user_data
            == run_plan(REPO / f"Pulumi.{stack}.yaml").user_data
        ), stack


def test_a_real_plan_has_none_of_the_lab_settings_in_any_nodes_user_data():
    """Every value the lab's own profile sets (proxy, CA, ACME directory, resolver, the AWS
    stand-in and its credentials, admin network and key), searched for in every node's user
    data of a plan without the lab; and the lab-only files and libraries are absent."""
    lab_profile = lab_module.lab_profile(
        Layout(), ca_pem=_ca_pem(), admin_public_key=_profile_json()["sshKeys"][0]
    )
    overrides = lab_profile.overrides
    assert overrides.aws is not None and overrides.apt_proxy and overrides.ca_pem and overrides.acme_directory
    assert overrides.resolvers and not overrides.swap and overrides.watcher_backends
    lab_values = [
        overrides.apt_proxy,
        overrides.ca_pem.strip().splitlines()[1],
        overrides.acme_directory,
        overrides.aws.endpoint_url,
        overrides.aws.access_key_id,
        overrides.aws.secret_access_key,
        *lab_profile.admin_cidrs,
        *lab_profile.ssh_keys,
        pw.LAB_WATCHER_CREDENTIALS,
        str(lab_profile.notify_webhook),
    ]
    assert lab_profile.notify_webhook
    platform = run_plan(REPO / "Pulumi.prod.yaml")
    site = run_plan(REPO / "Pulumi.harbourlaw.yaml", stack_outputs={"prod": platform.outputs})
    # Packed (gz+b64) files decoded: a lab value inside one must be found too.
    user_data = {node: readable(text) for node, text in {**site.user_data, **platform.user_data}.items()}
    assert set(user_data) == {"digitalocean", "linode", "redirector"}
    for node, text in user_data.items():
        found = [value for value in lab_values if value in text]
        found += [
            address
            for address in overrides.resolvers
            if re.search(rf"(?<![0-9.]){re.escape(address)}(?![0-9])", text)
        ]
        assert found == [], node
        document = yaml.safe_load(text)
        assert "proxy" not in str(document.get("apt", {})).lower(), node
    assert "acme-v02.api.letsencrypt.org" in user_data["digitalocean"]
    assert "acme-v02.api.letsencrypt.org" in user_data["linode"]


def test_the_lab_redirector_installs_the_drills_dns_backends_with_lab_credentials(profile):
    """The overrides' watcherBackends put dnspython and boto3 in the watcher's venv (the drill
    switches it to Knot and to moto's Route 53); their `aws` gives the watcher unit the lab's
    fixed credentials in a root-only drop-in. Neither is there without the lab profile."""
    lab_values = profile.model_copy(
        update={
            "overrides": profile.overrides.model_copy(
                update={
                    "watcher_backends": ("rfc2136", "route53"),
                    "aws": aws.stand_in(Layout(), host="198.51.100.1"),
                }
            )
        }
    )
    real = yaml.safe_load(run_plan(REPO / "Pulumi.prod.yaml").user_data["redirector"])
    lab = yaml.safe_load(run_plan(REPO / "Pulumi.prod.yaml", lab=lab_values).user_data["redirector"])

    def requirements(document: dict) -> str:
        return "".join(
            f["content"] for f in document["write_files"] if f["path"].endswith("requirements.txt")
        )

    assert "dnspython==" in requirements(lab) and "boto3==" in requirements(lab)
    assert "dnspython==" not in requirements(real) and "boto3==" not in requirements(real)
    assert "cloudflare==" in requirements(lab) and "cloudflare==" in requirements(real)
    drop_ins = {f["path"]: f for f in lab["write_files"] if f["path"] == pw.LAB_WATCHER_CREDENTIALS}
    assert drop_ins and drop_ins[pw.LAB_WATCHER_CREDENTIALS]["permissions"] == "0600"
    assert f"AWS_ACCESS_KEY_ID={aws.ACCESS_KEY_ID}" in drop_ins[pw.LAB_WATCHER_CREDENTIALS]["content"]
    assert not any(f["path"] == pw.LAB_WATCHER_CREDENTIALS for f in real["write_files"])


def test_plan_refuses_a_bad_lab_profile_with_exit_2_naming_the_key(tmp_path, capsys):
    bad = tmp_path / "lab.json"
    bad.write_text(json.dumps(dict(_profile_json(), overrides={"aptProxy": "ftp://mirror"})))
    code = main(
        [
            "plan",
            "--stack",
            "harbourlaw",
            "--project-dir",
            str(REPO),
            "--lab",
            str(bad),
            "--build-dir",
            str(tmp_path / "build"),
        ]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert "overrides.aptProxy" in error and "Traceback" not in error
    assert not (tmp_path / "build").exists()  # refused before anything was planned or written


def test_the_lab_webhook_is_the_platforms_secret_notify_webhook_and_reaches_the_backup_settings():
    """`notifyWebhook` in a profile is set as the platform stack's secret notifyWebhook (as
    `pulumi config set --secret` would): the platform exports it as a secret, and the site's
    nodes, planned against that platform, post a failed backup's alert there."""
    url = "https://198.51.100.1:8443/twinhost-lab-webhook"
    profile = LabProfile.parse({**_profile_json(), "notifyWebhook": url})
    platform = run_plan(REPO / "Pulumi.prod.yaml", lab=profile)
    assert platform.secret_outputs["notifyWebhook"] == url
    assert platform.outputs["notifyWebhook"] == "[secret]"
    site = run_plan(
        REPO / "Pulumi.harbourlaw.yaml", lab=profile, stack_outputs={"prod": platform.reference_outputs()}
    )
    for node in ("digitalocean", "linode"):
        assert f"WEBHOOK={url}\n" in readable(site.user_data[node]), node
    # Planned alone, the site plans its platform with the same profile: the same webhook.
    alone = run_plan(REPO / "Pulumi.harbourlaw.yaml", lab=profile)
    assert f"WEBHOOK={url}\n" in readable(alone.user_data["digitalocean"])


def test_the_lab_webhook_changes_only_a_platform_stacks_config():
    profile = LabProfile(notify_webhook="https://198.51.100.1:8443/hook")
    site = {"twinhost:role": "site", "twinhost:site": "x"}
    assert profile.with_lab_webhook(site, []) == (site, [])
    platform = {"twinhost:role": "platform", "twinhost:notifyWebhook": "[secret]"}
    assert profile.with_lab_webhook(platform, ["twinhost:notifyWebhook"]) == (
        {"twinhost:role": "platform", "twinhost:notifyWebhook": "https://198.51.100.1:8443/hook"},
        ["twinhost:notifyWebhook"],
    )
    assert LabProfile().with_lab_webhook(platform, []) == (platform, [])


def test_the_lab_webhook_must_be_https():
    with pytest.raises(ConfigError) as caught:
        LabProfile.parse({**_profile_json(), "notifyWebhook": "http://198.51.100.1:8443/hook"})
    assert [issue.key for issue in caught.value.issues] == ["notifyWebhook"]
