"""The ops commands end to end through `twinhost ...` (argparse, exit codes, the stack file), with
the fake pair standing in for ssh and the web front; where addresses come from."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from infra.cli import main
from infra.ops import addresses as addresses_module
from infra.ops import deploy
from tests.conftest import REPO, write_stack
from tests.ops import fakes
from tests.ops.fakes import FakeNode

SITE_OUTPUTS = {
    "site": "harbourlaw",
    "failoverHostname": "harbourlaw.ops.brightpixel.agency",
    "failoverMode": "watchdog",
    "nodeAddresses": {"digitalocean": "192.0.2.10", "linode": "192.0.2.20"},
    "domains": ["harbour-law.co.uk"],
    "primary": "digitalocean",
    "certificates": "acme",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.prod.yaml").write_text((REPO / "Pulumi.prod.yaml").read_text())
    (tmp_path / "Pulumi.harbourlaw.yaml").write_text((REPO / "Pulumi.harbourlaw.yaml").read_text())
    (tmp_path / "addresses.json").write_text(
        json.dumps({"harbourlaw": SITE_OUTPUTS, "prod": {"redirectorAddress": "192.0.2.30"}})
    )
    return tmp_path


@pytest.fixture
def fake_pair(monkeypatch: pytest.MonkeyPatch):
    fake = fakes.pair(digitalocean=FakeNode(), linode=FakeNode())
    monkeypatch.setattr("infra.ops.remote.Remote", lambda settings: fake)
    monkeypatch.setattr("infra.ops.health.HealthChecker", lambda **kwargs: fake)
    real_gate = deploy.Gate
    monkeypatch.setattr(deploy, "Gate", lambda timeout: real_gate(needed=2, timeout=0.01, interval=0))
    return fake


def run(project: Path, *args: str) -> int:
    return main(["--project-dir", str(project), *args])


def test_deploy_records_the_version_in_the_stack_file_and_keeps_every_other_byte(project, fake_pair, capsys):
    before = (project / "Pulumi.harbourlaw.yaml").read_text()
    code = run(project, "deploy", "harbourlaw", "2", "--addresses", str(project / "addresses.json"))
    assert code == 0, capsys.readouterr().err
    after = (project / "Pulumi.harbourlaw.yaml").read_text()
    assert after == before.replace("    kind: demo\n", "    kind: demo\n    version: '2'\n")
    assert "twinhost:app.version 2" in capsys.readouterr().out
    # `pulumi up` reads the same file: the model agrees.
    from infra.config import parse_config
    from infra.config.files import config_section

    values = {k.split(":", 1)[1]: v for k, v in config_section(project / "Pulumi.harbourlaw.yaml").items()}
    assert parse_config(values).app.version == "2"  # type: ignore[union-attr]


def test_a_failed_deploy_exits_1_and_leaves_the_stack_file_alone(project, fake_pair, capsys):
    fake_pair.nodes["linode"][1].fails_locally.add("2-unhealthy")
    before = (project / "Pulumi.harbourlaw.yaml").read_text()
    code = run(project, "deploy", "harbourlaw", "2-unhealthy", "--addresses", str(project / "addresses.json"))
    assert code == 1
    assert (project / "Pulumi.harbourlaw.yaml").read_text() == before
    err = capsys.readouterr().err
    assert "digitalocean not touched" in err
    assert fake_pair.nodes["digitalocean"][1].active == "1"


def test_rollback_goes_back_and_records_it(project, fake_pair, capsys):
    addresses = str(project / "addresses.json")
    assert run(project, "deploy", "harbourlaw", "2", "--addresses", addresses) == 0
    capsys.readouterr()
    assert run(project, "rollback", "harbourlaw", "--addresses", addresses, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["version"] == "1" and [n["outcome"] for n in result["nodes"]] == ["deployed", "deployed"]
    assert {node.active for _, node in fake_pair.nodes.values()} == {"1"}
    assert "version: '1'" in (project / "Pulumi.harbourlaw.yaml").read_text()


def test_rollback_to_a_version_not_kept_exits_2_before_touching_a_node(project, fake_pair, capsys):
    code = run(project, "rollback", "harbourlaw", "0.9", "--addresses", str(project / "addresses.json"))
    assert code == 2
    assert "does not keep 0.9" in capsys.readouterr().err
    assert all("--versions" in cmd for _, cmd in fake_pair.calls)


def test_without_the_pulumi_cli_or_an_addresses_file_the_commands_exit_2_and_say_what_to_do(
    project, monkeypatch, capsys
):
    monkeypatch.setenv("PATH", str(project))  # no pulumi here
    for command in (["status", "harbourlaw"], ["deploy", "harbourlaw", "2"], ["logs", "harbourlaw"]):
        assert run(project, *command) == 2
        err = capsys.readouterr().err
        assert "Pulumi CLI is not on PATH" in err and "--addresses FILE" in err


def test_addresses_come_from_pulumi_stack_output_when_the_cli_is_there(project, monkeypatch):
    bin_dir = project / "bin"
    bin_dir.mkdir()
    log = project / "pulumi-calls"
    fake = bin_dir / "pulumi"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'case "$*" in\n'
        f"  *harbourlaw*) echo '{json.dumps(SITE_OUTPUTS)}' ;;\n"
        '  *prod*) echo \'{"redirectorAddress": "192.0.2.30"}\' ;;\n'
        "  *) exit 1 ;;\n"
        "esac\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    facts = addresses_module.stack_facts(project, "harbourlaw")
    found = addresses_module.load(project, facts, None)
    assert found.node("linode") == "192.0.2.20" and found.redirector == "192.0.2.30"
    assert found.redirector_admin_user == "ops"
    calls = log.read_text().splitlines()
    assert calls == [
        "stack output --json --stack harbourlaw",
        "stack output --json --stack brightpixel/twinhost/prod",
    ]


def test_a_failing_pulumi_stack_output_is_an_address_error_naming_the_command(project, monkeypatch):
    bin_dir = project / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(
        "#!/bin/sh\necho 'error: no stack named harbourlaw found' >&2\nexit 255\n"
    )
    (bin_dir / "pulumi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    facts = addresses_module.stack_facts(project, "harbourlaw")
    with pytest.raises(addresses_module.AddressError, match="no stack named harbourlaw"):
        addresses_module.load(project, facts, None)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"other": SITE_OUTPUTS}, "has no outputs for harbourlaw"),
        ({"harbourlaw": {"site": "harbourlaw"}}, "have no failoverHostname, failoverMode, nodeAddresses"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_an_addresses_file_without_the_site_contract_is_refused(project, document, message):
    path = project / "bad.json"
    path.write_text(json.dumps(document))
    facts = addresses_module.stack_facts(project, "harbourlaw")
    with pytest.raises(addresses_module.AddressError, match=message):
        addresses_module.load(project, facts, path)


def test_one_stacks_outputs_alone_are_accepted_as_the_addresses_file(project):
    path = project / "one.json"
    path.write_text(json.dumps({**SITE_OUTPUTS, "redirectorAddress": "192.0.2.30"}))
    found = addresses_module.load(project, addresses_module.stack_facts(project, "harbourlaw"), path)
    assert found.providers == ("digitalocean", "linode") and found.redirector == "192.0.2.30"


def test_one_stacks_outputs_for_another_site_are_refused(project):
    path = project / "other.json"
    path.write_text(json.dumps({**SITE_OUTPUTS, "site": "acme"}))
    with pytest.raises(addresses_module.AddressError, match="outputs of site acme, not harbourlaw"):
        addresses_module.load(project, addresses_module.stack_facts(project, "harbourlaw"), path)


def test_a_platform_stack_is_not_a_site_for_the_ops_commands(project):
    with pytest.raises(addresses_module.AddressError, match="not a site stack"):
        addresses_module.stack_facts(project, "prod")


def test_ssh_runs_ssh_as_the_admin_user_at_the_nodes_address(project, monkeypatch):
    seen: list[list[str]] = []
    monkeypatch.setattr(os, "execvp", lambda file, argv: seen.append(argv))
    addresses = str(project / "addresses.json")
    run(project, "ssh", "harbourlaw", "linode", "--addresses", addresses)
    run(project, "ssh", "--addresses", addresses, "harbourlaw", "redirector", "--", "uptime")
    run(project, "ssh", "harbourlaw", "--addresses", addresses)
    assert seen[0][-1] == "ops@192.0.2.20" and "BatchMode=yes" not in seen[0]
    assert seen[1][-3:] == ["ops@192.0.2.30", "--", "uptime"] and "BatchMode=yes" in seen[1]
    assert seen[2][-1] == "ops@192.0.2.10"  # the primary by default
    assert "StrictHostKeyChecking=accept-new" in seen[0]


def test_list_shows_every_stack_its_mode_primary_and_the_plans_cost(project, capsys):
    write_stack(
        project, "acme", {**_site_values(), "site": "acme", "domains": ["acme.example"], "primary": "linode"}
    )
    assert run(project, "list", "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    rows = {row["stack"]: row for row in listing["stacks"]}
    assert rows["acme"]["primary"] == "linode" and rows["acme"]["mode"] == "watchdog"
    assert (
        rows["harbourlaw"]["monthly_cost_usd"] == 11.15
    )  # the plan's figure (README): $11.00 of nodes + $0.15 of backups
    assert rows["prod"]["role"] == "platform"
    assert listing["total_monthly_cost_usd"] == round(sum(r["monthly_cost_usd"] for r in rows.values()), 2)


def test_list_and_plan_all_plan_through_the_same_function(project, monkeypatch, capsys):
    """`twinhost list` is `plan --all` summed up: one plan loop (`infra.cli.plan_stacks`), the
    same stacks in the same order, not a second copy of it."""
    import infra.cli

    seen: dict[str, list[str]] = {}
    original = infra.cli.plan_stacks

    def spy(project_dir, files, **kwargs):
        seen[command] = [p.name for p in files]
        return original(project_dir, files, **kwargs)

    monkeypatch.setattr(infra.cli, "plan_stacks", spy)
    for command in ("list", "plan"):
        args = ["--all", "--build-dir", str(project / "build")] if command == "plan" else []
        assert run(project, command, *args) == 0
    assert seen["list"] == seen["plan"] == ["Pulumi.prod.yaml", "Pulumi.harbourlaw.yaml"]
    out = capsys.readouterr().out
    assert "harbourlaw  site      watchdog  digitalocean  harbour-law.co.uk  11.15" in out


def _site_values():
    from tests.conftest import stack_file_values

    return stack_file_values("harbourlaw")


@pytest.mark.parametrize("command", ["deploy", "rollback", "status", "logs", "ssh", "list"])
def test_the_ops_commands_help_imports_no_provider_sdk(command):
    from tests.unit.test_sdk_imports import PROVIDER_SDKS, imported_sdks

    assert imported_sdks(command, "--help") & PROVIDER_SDKS == set()


def test_in_manual_mode_the_node_not_serving_goes_first(project, fake_pair, capsys):
    path = project / "Pulumi.harbourlaw.yaml"
    path.write_text(
        path.read_text().replace("    mode: watchdog\n", "    mode: manual\n    active: linode\n")
    )
    assert run(project, "deploy", "harbourlaw", "2", "--addresses", str(project / "addresses.json")) == 0
    deployed = [role for role, cmd in fake_pair.calls if cmd.endswith("twinhost-deploy 2")]
    assert deployed == ["digitalocean", "linode"]
