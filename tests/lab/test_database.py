"""The database in the lab: a site with `database: mariadb` (TWINHOST_LAB_DATABASE=1 boots the
example site with it; the default lab's site has none, and these tests say so and skip).

Both members in one synced cluster of two, a row written on each node read on the other, /health
reporting the member's wsrep state, and the partition drill: the mesh cut for 30 s while a writer
on each node inserts rows; after the heal no acknowledged row may be missing on either node.
The refused inserts and the seconds without writes are figures, not assertions: with two
members both sides lose the primary component during a cut (the witness's garbd fixes that)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from twinhost_lab import database
from twinhost_lab.checks import CheckResult, RunningLab

pytestmark = pytest.mark.lab
Proven = Callable[[CheckResult], None]


@pytest.fixture(scope="module")
def database_lab(running_lab: RunningLab) -> RunningLab:
    if not database.has_database(running_lab):
        pytest.skip("the lab's site has no database: TWINHOST_LAB_DATABASE=1 boots it with database: mariadb")
    database.wait_synced(running_lab)
    return running_lab


def test_both_members_form_one_synced_cluster_of_two(database_lab: RunningLab, proven: Proven) -> None:
    proven(database.cluster_of_two(database_lab))


def test_a_row_written_on_either_node_is_read_on_the_other(database_lab: RunningLab, proven: Proven) -> None:
    proven(database.replicates_both_ways(database_lab))


@pytest.mark.parametrize("role", ["digitalocean", "linode"])
def test_health_reports_the_members_wsrep_state(database_lab: RunningLab, role: str, proven: Proven) -> None:
    proven(database.health_reports_wsrep(database_lab, role))


def test_a_mesh_partition_loses_no_acknowledged_row(database_lab: RunningLab, proven: Proven) -> None:
    figures = database.partition(database_lab, cut_seconds=30)
    for line in figures.lines():
        proven(CheckResult("database partition drill", True, line.strip()))
    assert all(side.attempts > 0 and side.acknowledged > 0 for side in figures.sides), figures.lines()
    assert figures.lost == 0, figures.lines()
