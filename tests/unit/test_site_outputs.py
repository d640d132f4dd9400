"""The contract for what a site stack exports (infra.site_outputs): the site program writes
exactly its keys, the offline plan fakes exactly them, and the platform reads what the site wrote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from infra.plan.mocks import DEFAULT_ADDRESSES, PlanMocks, _site_outputs_from_stack_file
from infra.plan.runner import PlanResult, reveal, run_plan
from infra.site_outputs import KEYS, REQUIRED, SiteOutputs
from tests.conftest import REPO

SITE = REPO / "Pulumi.harbourlaw.yaml"
PROD = REPO / "Pulumi.prod.yaml"


@pytest.fixture(scope="module")
def site() -> PlanResult:
    return run_plan(SITE)


def test_the_export_names_are_the_ones_deployed_stacks_have() -> None:
    # Renaming one is a breaking change for every deployed site stack the platform reads.
    assert KEYS == (
        "site",
        "failoverHostname",
        "failoverMode",
        "nodeAddresses",
        "clientDns",
        "domains",
        "opsZone",
        "failoverTtl",
        "proxied",
        "primary",
        "certificates",
        "tincPublicKeys",
        "witnessDatabase",
        "witnessDatabaseKey",
    )
    assert set(REQUIRED) <= set(KEYS)


def test_the_site_program_exports_exactly_the_contracts_keys(site: PlanResult) -> None:
    assert list(site.outputs) == list(KEYS)


def test_the_plans_mocks_fake_exactly_what_the_site_program_exports(site: PlanResult) -> None:
    synthesised = _site_outputs_from_stack_file(PlanMocks(), SITE)
    assert synthesised == site.outputs


def test_reading_the_exports_back_gives_the_same_exports(site: PlanResult) -> None:
    read = SiteOutputs.from_outputs(site.outputs, default_zone="unused.invalid")
    assert read.to_exports() == site.outputs
    assert read.failover_hostname == "harbourlaw.ops.brightpixel.agency"


def test_outputs_older_site_stacks_lack_fall_back_to_what_those_sites_had() -> None:
    old = {
        "failoverHostname": "acme.ops.example.net",
        "failoverMode": "watchdog",
        "nodeAddresses": {"digitalocean": "203.0.113.1", "linode": "198.51.100.1"},
    }
    read = SiteOutputs.from_outputs(old, default_zone="ops.example.net")
    assert (read.site, read.ops_zone, read.failover_ttl, read.proxied, read.primary, read.certificates) == (
        "acme",
        "ops.example.net",
        60,
        False,
        "digitalocean",
        "acme",
    )
    assert SiteOutputs.from_outputs({**old, "proxied": True}, default_zone="z").failover_ttl is None
    for key in REQUIRED:
        with pytest.raises(KeyError, match=key):
            SiteOutputs.from_outputs({k: v for k, v in old.items() if k != key}, default_zone="z")


def test_the_platform_reads_what_the_site_wrote(site: PlanResult, tmp_path: Path) -> None:
    """The platform's watcher config follows the site stack's real exports: changed values
    (addresses, TTL, primary) come through, so every key it uses is one the site writes."""
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(PROD, tmp_path / "Pulumi.prod.yaml")
    exported = dict(site.outputs)
    assert exported["failoverMode"] == "watchdog"
    changed = {
        **exported,
        "nodeAddresses": {"digitalocean": "203.0.113.77", "linode": "198.51.100.77"},
        "failoverTtl": 300,
        "primary": "linode",
    }
    platform = run_plan(tmp_path / "Pulumi.prod.yaml", stack_outputs={"harbourlaw": changed})
    (config,) = [r for r in platform.resources if r.name == "watcher-config"]
    (entry,) = json.loads(str(reveal(config.inputs["content"])))["sites"]
    assert entry["site"] == exported["site"] and entry["record"] == exported["failoverHostname"]
    assert entry["zone"] == exported["opsZone"] and entry["ttl"] == 300
    assert [(n["name"], n["address"]) for n in entry["nodes"]] == [
        ("linode", "198.51.100.77"),
        ("digitalocean", "203.0.113.77"),
    ]
    assert DEFAULT_ADDRESSES["linode"] not in json.dumps(entry)
