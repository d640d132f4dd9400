"""A stack imports only the provider SDKs its config uses; commands that do not plan import none.

Each case runs in a fresh interpreter and reads its `sys.modules` (an import in this test
process would hide the difference). Speed itself is printed by `make bench`, never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_stack

PROVIDER_SDKS = {
    "pulumi_aws",
    "pulumi_cloudflare",
    "pulumi_digitalocean",
    "pulumi_linode",
    "pulumi_tls",
    "pulumi_random",
}
# Runs the CLI in-process, then prints the provider SDK packages it imported (last stderr line).
_RUN_AND_LIST = r"""
import json, sys
from infra.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # --help
    code = exc.code
imported = sorted({name.split(".")[0] for name in sys.modules if name.startswith("pulumi_")})
print("IMPORTED " + json.dumps(imported), file=sys.stderr)
sys.exit(code)
"""


def imported_sdks(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _RUN_AND_LIST, *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return set(json.loads(done.stderr.rsplit("IMPORTED ", 1)[1].splitlines()[0]))


def route53_project(directory: Path, site_values: dict[str, Any], platform_values: dict[str, Any]) -> Path:
    platform = {k: v for k, v in platform_values.items() if k not in ("cloudflareZoneId", "watcherDnsToken")}
    platform.update(dnsProvider="route53", route53ZoneId="Z0123456789ABCDEFGHIJ")
    write_stack(directory, "prod", platform)
    write_stack(directory, "harbourlaw", dict(site_values, opsDns="route53", failover={"mode": "route53"}))
    return directory


def plan(directory: Path, stack: str) -> list[str]:
    return [
        "plan",
        "--stack",
        stack,
        "--project-dir",
        str(directory),
        "--build-dir",
        str(directory / "build"),
    ]


def test_a_route53_site_plan_never_imports_pulumi_cloudflare(tmp_path, site_values, platform_values):
    imported = imported_sdks(*plan(route53_project(tmp_path, site_values, platform_values), "harbourlaw"))
    assert "pulumi_cloudflare" not in imported
    # The site's own SDKs (and pulumi_aws, for Route 53 and the platform it references) are used.
    assert {"pulumi_digitalocean", "pulumi_linode", "pulumi_tls", "pulumi_aws"} <= imported


def test_a_cloudflare_site_plan_imports_pulumi_cloudflare(tmp_path, site_values):
    # The counterpart: the split did not lose the Cloudflare records of the shipped example.
    write_stack(tmp_path, "harbourlaw", site_values)
    assert "pulumi_cloudflare" in imported_sdks(*plan(tmp_path, "harbourlaw"))


@pytest.mark.parametrize("dns", ["cloudflare", "route53"])
def test_a_platform_plan_never_imports_the_digitalocean_or_linode_sdks(
    tmp_path, site_values, platform_values, dns
):
    if dns == "route53":
        route53_project(tmp_path, site_values, platform_values)
    else:
        write_stack(tmp_path, "prod", platform_values)
    imported = imported_sdks(*plan(tmp_path, "prod"))
    # pulumi_tls: the witness's tinc key.
    assert imported == {"pulumi_aws", "pulumi_tls"}


@pytest.mark.parametrize(
    "args",
    [["--help"], ["plan", "--help"], ["new-site", "--help"], ["failover", "--help"], ["lab", "--help"]],
)
def test_commands_that_do_not_plan_import_no_provider_sdk(args):
    assert imported_sdks(*args) & PROVIDER_SDKS == set()


def test_new_site_and_failover_import_no_provider_sdk(tmp_path, site_values):
    write_stack(
        tmp_path, "harbourlaw", dict(site_values, failover={"mode": "manual", "active": "digitalocean"})
    )
    project = ["--project-dir", str(tmp_path)]
    assert imported_sdks(*project, "new-site", "acme", "--domain", "acme.example") & PROVIDER_SDKS == set()
    assert imported_sdks(*project, "failover", "harbourlaw", "--to", "linode") & PROVIDER_SDKS == set()
