"""`twinhost plan` runs the real program under mocks with a stack file's own config."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from infra.bootstrap.render import USER_DATA_BUDGET
from infra.constants import USER_DATA_LIMITS
from tests.conftest import REPO, write_stack

TWINHOST = [sys.executable, "-c", "import sys; from infra.cli import main; sys.exit(main())"]


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TWINHOST, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def all_plans(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    build = tmp_path_factory.mktemp("build")
    return run_cli("plan", "--all", "--json", "--build-dir", str(build)), build


def test_every_shipped_stack_file_plans(all_plans):
    result, _ = all_plans
    assert result.returncode == 0, result.stderr
    plans = {plan["stack"]: plan for plan in json.loads(result.stdout)}
    shipped = {p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in REPO.glob("Pulumi.*.yaml")}
    assert set(plans) == shipped


def test_site_plan_holds_the_pair_firewalls_and_failover_name(all_plans):
    result, _ = all_plans
    site = next(p for p in json.loads(result.stdout) if p["role"] == "site")
    types = [r["type"] for r in site["resources"]]
    for expected in (
        "twinhost:site:SitePair",
        "digitalocean:index/droplet:Droplet",
        "digitalocean:index/reservedIp:ReservedIp",
        "digitalocean:index/reservedIpAssignment:ReservedIpAssignment",
        "linode:index/instance:Instance",
        "digitalocean:index/firewall:Firewall",
        "linode:index/firewall:Firewall",
        "cloudflare:index/dnsRecord:DnsRecord",
        "tls:index/privateKey:PrivateKey",
    ):
        assert expected in types, expected
    assert site["outputs"]["failoverHostname"] == "harbourlaw.ops.brightpixel.agency"


def test_plan_prints_monthly_cost_per_resource_and_site(all_plans):
    result, _ = all_plans
    site = next(p for p in json.loads(result.stdout) if p["role"] == "site")
    costs = {r["type"]: r["monthly_cost_usd"] for r in site["resources"] if r["monthly_cost_usd"]}
    assert costs["digitalocean:index/droplet:Droplet"] == 6.0
    assert costs["linode:index/instance:Instance"] == 5.0
    # The default sizes stay near $12 a month (DESIGN targets).
    assert 10 <= site["monthly_cost_usd"] <= 14


def test_user_data_is_written_per_node_readable_only_by_owner(all_plans):
    _result, build = all_plans
    for node in ("digitalocean", "linode"):
        path = build / "harbourlaw" / f"{node}.yaml"
        assert path.read_text().startswith("#cloud-config")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_user_data_is_also_written_readable_with_packed_files_decoded(all_plans):
    """build/<stack>/<node>.readable.yaml: the same files, gz+b64 ones shown decoded; 0600 too."""
    import yaml

    from infra.bootstrap.parts import decoded_files

    _, build = all_plans
    for node in ("digitalocean", "linode"):
        shipped = yaml.safe_load((build / "harbourlaw" / f"{node}.yaml").read_text())
        path = build / "harbourlaw" / f"{node}.readable.yaml"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        entries = yaml.safe_load(path.read_text())["write_files"]
        assert not any("encoding" in e for e in entries)
        assert [e["content"] for e in entries] == [e["content"] for e in decoded_files(shipped)]
    # DigitalOcean's large files are packed while the document ships as text (within the
    # budget); above it the document ships gzipped whole, and its files stay plain.

    text = (build / "harbourlaw" / "digitalocean.yaml").read_text()
    packed = yaml.safe_load(text)["write_files"]
    as_text = len(text.encode()) <= USER_DATA_BUDGET * USER_DATA_LIMITS["digitalocean"]
    assert any(e.get("encoding") == "gz+b64" for e in packed) == as_text


def test_plan_shows_each_nodes_user_data_size_as_its_provider_counts_it(all_plans):
    result, _ = all_plans
    site = next(p for p in json.loads(result.stdout) if p["role"] == "site")
    shown = {r["type"]: r["settings"]["userData"] for r in site["resources"] if "userData" in r["settings"]}
    assert "% of the limit" in shown["digitalocean:index/droplet:Droplet"]
    assert "base64 of gzip" in shown["linode:index/instance:Instance"]
    assert "% of the limit" in shown["linode:index/instance:Instance"]


def test_secrets_are_shown_as_placeholders_and_never_printed(all_plans):
    result, build = all_plans
    assert "PRIVATE KEY" not in result.stdout and "PRIVATE KEY" not in result.stderr
    site = next(p for p in json.loads(result.stdout) if p["role"] == "site")
    droplet = next(r for r in site["resources"] if r["type"] == "digitalocean:index/droplet:Droplet")
    assert droplet["settings"]["userData"].startswith("[secret]")
    # Nothing else under build/ holds a private key: only the nodes' own user data.
    for path in build.rglob("*"):
        if path.is_file() and path.suffix != ".yaml":
            assert "PRIVATE KEY" not in path.read_text()


def test_text_plan_shows_tree_protect_flags_and_outputs():
    result = run_cli("plan", "--stack", "harbourlaw")
    assert result.returncode == 0, result.stderr
    assert "+ harbourlaw  (twinhost:site:SitePair)" in result.stdout
    assert "harbourlaw-reserved-ip  (digitalocean:index/reservedIp:ReservedIp) [protected]" in result.stdout
    assert "[ignore_changes: userData" in result.stdout
    assert "clientDns: harbour-law.co.uk: www CNAME harbourlaw.ops.brightpixel.agency" in result.stdout
    assert "total for stack harbourlaw" in result.stdout


def test_invalid_config_exits_2_with_every_error_and_no_traceback(tmp_path, site_values):
    site_values.update(site="Not_A_Label", primary="aws")
    site_values["digitalocean"]["region"] = "mars1"
    write_stack(tmp_path, "broken", site_values)
    result = run_cli("plan", "--stack", "broken", "--project-dir", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for key in ("twinhost:site", "twinhost:primary", "twinhost:digitalocean.region"):
        assert key in result.stderr
    assert not (tmp_path / "build").exists(), "nothing is written for an invalid stack"


def test_missing_stack_file_is_a_clear_error(tmp_path):
    write_stack(tmp_path, "prod", {})
    result = run_cli("plan", "--stack", "nosuch", "--project-dir", str(tmp_path))
    assert result.returncode == 2 and "no stack file" in result.stderr


def test_the_plan_prefetches_the_tinc_keys_a_site_asks_for():
    # infra/plan/mocks.py generates these while the SDKs import: the hint must match the program.
    from infra.components.site_pair import TINC_RSA_BITS
    from infra.plan.mocks import SITE_RSA_KEYS

    assert SITE_RSA_KEYS == ((TINC_RSA_BITS, "digitalocean"), (TINC_RSA_BITS, "linode"))
