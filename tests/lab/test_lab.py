"""Every node-side claim, proven from outside against the booted lab (see twinhost_lab/checks.py
for what each check does and why). In the order `twinhost lab check` runs them: read-only
checks first, the disruptive ones (bans, a brick outage) last. Each prints its figure."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from twinhost_lab import checks
from twinhost_lab.checks import CheckResult, RunningLab

pytestmark = pytest.mark.lab

SITE_ROLES = ("digitalocean", "linode")
ALL_ROLES = (*SITE_ROLES, "redirector")


Proven = Callable[[CheckResult], None]


@pytest.mark.parametrize("role", ALL_ROLES)
def test_cloud_init_done_without_errors_or_failed_units(
    running_lab: RunningLab, role: str, proven: Proven
) -> None:
    proven(checks.cloud_init_done(running_lab, role))


def test_each_node_pings_the_other_over_tinc(running_lab: RunningLab, proven: Proven) -> None:
    proven(checks.tinc_mesh(running_lab))


def test_the_witness_is_each_nodes_third_mesh_member_with_the_thin_arbiter(
    running_lab: RunningLab, proven: Proven
) -> None:
    proven(checks.witness_in_the_mesh(running_lab))


def test_glusterfs_replicates_both_ways(running_lab: RunningLab, proven: Proven) -> None:
    proven(checks.gluster_replicates(running_lab))


@pytest.mark.parametrize("role", SITE_ROLES)
def test_health_answers_over_https_through_the_web_front(
    running_lab: RunningLab, role: str, proven: Proven
) -> None:
    proven(checks.https_health(running_lab, role))


def test_demo_page_shows_the_shared_file(running_lab: RunningLab, proven: Proven) -> None:
    proven(checks.demo_page_shows_shared_file(running_lab))


def test_nodes_serve_one_real_acme_certificate(running_lab: RunningLab, proven: Proven) -> None:
    proven(checks.certificates_are_acme(running_lab))


@pytest.mark.parametrize("role", SITE_ROLES)
def test_sslyze_mozilla_intermediate_and_hsts(running_lab: RunningLab, role: str, proven: Proven) -> None:
    proven(checks.sslyze_grade(running_lab, role))


def test_redirector_redirects_two_client_apexes(running_lab: RunningLab, proven: Proven) -> None:
    apexes = running_lab.site["redirect_apexes"]
    assert len(apexes) >= 2
    for apex in apexes:
        proven(checks.redirector_redirects(running_lab, apex))


def test_redirector_refuses_an_unknown_apex(running_lab: RunningLab, proven: Proven) -> None:
    proven(checks.redirector_refuses_unknown(running_lab))


@pytest.mark.parametrize("role", ALL_ROLES)
def test_ssh_audit_finds_no_failures_or_warnings(running_lab: RunningLab, role: str, proven: Proven) -> None:
    proven(checks.ssh_audit(running_lab, role))


@pytest.mark.parametrize("role", ALL_ROLES)
def test_port_scan_from_the_internet_finds_only_intended_ports(
    running_lab: RunningLab, role: str, proven: Proven
) -> None:
    proven(checks.port_scan(running_lab, role))


@pytest.mark.parametrize("role", ALL_ROLES)
def test_ssh_from_a_non_admin_address_is_refused(running_lab: RunningLab, role: str, proven: Proven) -> None:
    proven(checks.ssh_refused_from_internet(running_lab, role))


@pytest.mark.parametrize("role", SITE_ROLES)
def test_ufw_limit_drops_an_ssh_burst(running_lab: RunningLab, role: str, proven: Proven) -> None:
    proven(checks.ufw_limit(running_lab, role))


@pytest.mark.parametrize("role", SITE_ROLES)
def test_fail2ban_bans_repeated_bad_logins(running_lab: RunningLab, role: str, proven: Proven) -> None:
    proven(checks.fail2ban_bans(running_lab, role))


def test_glusterfs_heals_after_a_brick_outage_without_losing_writes(
    running_lab: RunningLab, proven: Proven
) -> None:
    proven(checks.gluster_heals(running_lab))


@pytest.mark.parametrize("role", ALL_ROLES)
def test_lynis_hardening_index_reaches_the_target(running_lab: RunningLab, role: str, proven: Proven) -> None:
    proven(checks.lynis_index(running_lab, role))
