"""`twinhost new-site`: a validated stack file, the next commands, and a stack that plans at once."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import yaml

from infra.cli import main
from infra.config import SiteConfig, parse_config
from infra.config.files import read_stack_file
from infra.pulumi_config import declared_defaults

PROJECT_DIR = Path(__file__).resolve().parents[2]
ZONE_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scratch project: Pulumi.yaml, the platform stack and the example site."""
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.harbourlaw.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    return tmp_path


def new_site(project: Path, *args: str) -> int:
    return main(["--project-dir", str(project), "new-site", *args])


def stack_config(path: Path) -> SiteConfig:
    """The file as the program reads it: Pulumi's string values, declared defaults applied."""
    values, secret_keys = read_stack_file(path)
    namespace = {k.removeprefix("twinhost:"): v for k, v in values.items() if k.startswith("twinhost:")}
    config = parse_config(namespace, secret_keys, declared_defaults())
    assert isinstance(config, SiteConfig)
    return config


def test_new_site_writes_a_stack_file_the_program_accepts(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        new_site(
            project,
            "acme",
            "--domain",
            "acme.example",
            "--domain",
            "acme-shop.example",
            "--primary",
            "linode",
            "--region-linode",
            "fr-par",
            "--region-do",
            "ams3",
        )
        == 0
    )
    config = stack_config(project / "Pulumi.acme.yaml")
    assert config.site == "acme" and config.primary == "linode"
    assert [d.name for d in config.domains] == ["acme.example", "acme-shop.example"]
    assert config.linode.region == "fr-par" and config.digitalocean.region == "ams3"
    assert config.failover.mode == "watchdog"
    assert "Wrote Pulumi.acme.yaml" in capsys.readouterr().out


def test_new_site_copies_shared_values_from_an_existing_site(project: Path) -> None:
    assert new_site(project, "acme", "--domain", "acme.example") == 0
    example = stack_config(project / "Pulumi.harbourlaw.yaml")
    config = stack_config(project / "Pulumi.acme.yaml")
    assert config.admin_cidrs == example.admin_cidrs
    assert config.ssh_keys == example.ssh_keys
    assert config.acme_email == example.acme_email
    assert config.platform_stack == example.platform_stack == "brightpixel/twinhost/prod"


def test_new_site_copies_from_the_platform_stack_when_no_site_exists(project: Path, capsys) -> None:
    (project / "Pulumi.harbourlaw.yaml").unlink()
    assert new_site(project, "acme", "--domain", "acme.example") == 0
    config = stack_config(project / "Pulumi.acme.yaml")
    platform = yaml.safe_load((project / "Pulumi.prod.yaml").read_text())["config"]
    assert config.ssh_keys == platform["twinhost:sshKeys"]
    assert config.admin_cidrs == platform["twinhost:adminCidrs"]
    # No site names the organization: a self-managed backend's fixed one, said out loud.
    assert config.platform_stack == "organization/twinhost/prod"
    assert "platformStack defaults to organization/twinhost/prod" in capsys.readouterr().out


def test_new_site_never_inherits_the_ssh_override(project: Path) -> None:
    source = project / "Pulumi.harbourlaw.yaml"
    document = yaml.safe_load(source.read_text())
    document["config"]["twinhost:dangerouslyAllowSshFromAnywhere"] = True
    source.write_text(yaml.safe_dump(document))
    assert new_site(project, "acme", "--domain", "acme.example") == 0
    text = (project / "Pulumi.acme.yaml").read_text()
    assert "dangerouslyAllowSshFromAnywhere" not in text


def test_new_site_refuses_a_name_whose_stack_file_exists(project: Path, capsys) -> None:
    before = (project / "Pulumi.harbourlaw.yaml").read_text()
    assert new_site(project, "harbourlaw", "--domain", "other.example") == 2
    assert (project / "Pulumi.harbourlaw.yaml").read_text() == before
    assert "already exists" in capsys.readouterr().err
    assert new_site(project, "prod", "--domain", "other.example") == 2  # nor the platform's


def test_invalid_input_writes_nothing_and_lists_every_problem(project: Path, capsys) -> None:
    before = sorted(p.name for p in project.iterdir())
    code = new_site(
        project,
        "Bad_Name",
        "--domain",
        "www.acme.example",
        "--region-linode",
        "us-east",
        "--failover-mode",
        "manual",
        "--zone-id",
        "nonsense",
        "--ttl",
        "5",
    )
    assert code == 2
    assert sorted(p.name for p in project.iterdir()) == before
    err = capsys.readouterr().err
    for key in (
        "--zone-id",
        "twinhost:site",
        "twinhost:domains[0].name",
        "twinhost:linode.region",
        "twinhost:ttl",
    ):
        assert key in err, f"{key} missing from:\n{err}"
    assert "Traceback" not in err


def test_new_site_prints_the_exact_next_commands(project: Path, capsys) -> None:
    assert new_site(project, "acme", "--domain", "acme.example") == 0
    out = capsys.readouterr().out
    expected = [
        "pulumi stack init brightpixel/acme",
        "pulumi config set --stack brightpixel/acme --secret digitalocean:token",
        "pulumi config set --stack brightpixel/acme --secret linode:token",
        "pulumi config set --stack brightpixel/acme --secret cloudflare:apiToken",
        "pulumi config set --stack brightpixel/acme --secret twinhost:appSecrets",
        "twinhost plan --stack acme",
        "pulumi preview --stack brightpixel/acme --policy-pack policy/",
    ]
    lines = [line.strip() for line in out.splitlines()]
    positions = [next(i for i, line in enumerate(lines) if line.startswith(command)) for command in expected]
    assert positions == sorted(positions), "commands are printed in the order to run them"


def test_route53_platform_gives_the_site_opsdns_and_an_aws_region(project: Path, capsys) -> None:
    platform = project / "Pulumi.prod.yaml"
    document = yaml.safe_load(platform.read_text())
    document["config"]["twinhost:dnsProvider"] = "route53"
    document["config"]["twinhost:route53ZoneId"] = "Z0123456789ABCDEFGHIJ"
    platform.write_text(yaml.safe_dump(document))
    (project / "Pulumi.harbourlaw.yaml").unlink()
    assert (
        new_site(
            project,
            "acme",
            "--domain",
            "acme.example",
            "--failover-mode",
            "route53",
            "--platform-stack",
            "brightpixel/twinhost/prod",
        )
        == 0
    )
    config = stack_config(project / "Pulumi.acme.yaml")
    assert config.ops_dns == "route53" and config.failover.mode == "route53"
    values, _ = read_stack_file(project / "Pulumi.acme.yaml")
    assert values["aws:region"] == "eu-west-1"
    out = capsys.readouterr().out
    assert "cloudflare:apiToken" not in out  # nothing of this site is on Cloudflare


def test_manual_mode_points_the_name_at_the_primary_by_default(project: Path) -> None:
    assert (
        new_site(
            project, "acme", "--domain", "acme.example", "--failover-mode", "manual", "--primary", "linode"
        )
        == 0
    )
    assert stack_config(project / "Pulumi.acme.yaml").failover.active == "linode"


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--proxied", "--zone-id", f"acme.example={ZONE_ID}"],
        [
            "--proxied",
            "--zone-id",
            f"acme.example={ZONE_ID}",
            "--failover-mode",
            "cloudflare-lb",
            "--cloudflare-account-id",
            ZONE_ID,
        ],
    ],
)
def test_new_stack_plans_offline_at_once(project: Path, capsys, extra: list[str]) -> None:
    assert new_site(project, "acme", "--domain", "acme.example", *extra) == 0
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        code = main(
            [
                "--project-dir",
                str(project),
                "plan",
                "--stack",
                "acme",
                "--json",
                "--build-dir",
                str(project / "build"),
            ]
        )
    assert code == 0
    plan = json.loads(capsys.readouterr().out)
    types = {r["type"] for r in plan["resources"]}
    assert {"digitalocean:index/droplet:Droplet", "linode:index/instance:Instance"} <= types
    assert plan["outputs"]["site"] == "acme"
    assert (project / "build" / "acme" / "linode.yaml").exists()
