"""`twinhost failover` switches a manual-mode site by editing its stack file, nothing else."""

from __future__ import annotations

import pytest

from infra.failover_cli import switch_active
from infra.plan.runner import run_plan
from tests.conftest import write_stack


@pytest.fixture
def manual_site(tmp_path, site_values):
    path = write_stack(tmp_path, "acme", dict(site_values, failover={"mode": "manual", "active": "digitalocean"}))
    path.write_text("# Acme's site: keep this comment\n" + path.read_text())
    return tmp_path, path


def test_switching_moves_the_failover_record_to_the_other_node(manual_site):
    project, path = manual_site
    _, previous = switch_active(project, "acme", "linode")
    assert previous == "digitalocean"
    result = run_plan(path)
    a_records = [r for r in result.resources if r.type == "cloudflare:index/dnsRecord:DnsRecord" and r.inputs["type"] == "A"]
    assert [r.inputs["content"] for r in a_records] == ["198.51.100.20"]


def test_switching_keeps_the_stack_file_comments(manual_site):
    project, path = manual_site
    switch_active(project, "acme", "both")
    assert path.read_text().startswith("# Acme's site: keep this comment\n")


def test_automatic_modes_are_not_switched_by_hand(tmp_path, site_values):
    path = write_stack(tmp_path, "auto", site_values)  # the example is in watchdog mode
    before = path.read_text()
    with pytest.raises(ValueError, match="only mode 'manual'"):
        switch_active(tmp_path, "auto", "linode")
    assert path.read_text() == before


def test_unknown_targets_are_refused(manual_site):
    project, path = manual_site
    with pytest.raises(ValueError, match="must be one of"):
        switch_active(project, "acme", "aws")
