"""The database in the lab: TWINHOST_LAB_DATABASE=1 boots the example site with `database:
mariadb` (tests/lab/conftest.py), and the platform's witness runs its garbd. The default lab's
site has none, and these tests say so and skip: with the database, a cut between the two nodes
alone (both still reach the witness) can leave the files' third vote (the thin-arbiter) and the
database's (garbd) on different sides, and then both nodes fail /health (docs/database.md).

Both members and the witness's garbd in one synced cluster, a row written on each node read on
the other, /health reporting the member's wsrep state; the partition drill: node A's mesh cut
for 30 s while a writer on each node inserts rows: node B (with the witness: 2 of 3 votes) keeps
writing, node A refuses, and after the heal no acknowledged row is missing on either node; and
the kill drill: node A killed mid-write, booted again, rejoined: no acknowledged row missing.
Runs before the failover drill, which kills node A again and needs node B healthy without it."""

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
    assert database.has_witness(running_lab), "the lab's platform has a witness: the nodes name its garbd"
    database.wait_synced(running_lab)
    return running_lab


def test_both_members_and_the_witness_form_one_synced_cluster(
    database_lab: RunningLab, proven: Proven
) -> None:
    proven(database.cluster_synced(database_lab))


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
    # Node A was cut from node B and the witness: B and the witness's garbd are 2 of 3 votes.
    cut, with_witness = figures.sides  # digitalocean (node A), linode (node B)
    assert cut.refused > 0, figures.lines()
    assert with_witness.unavailable_seconds < figures.cut_seconds / 2, figures.lines()


def test_a_node_killed_mid_write_loses_no_acknowledged_row_and_rejoins(
    database_lab: RunningLab, proven: Proven
) -> None:
    figures = database.kill(database_lab, down_seconds=30)
    for line in figures.lines():
        proven(CheckResult("database kill drill", True, line.strip()))
    survivor = figures.sides[1]  # node B, with the witness's garbd: 2 of 3 votes
    assert survivor.acknowledged > 0 and survivor.unavailable_seconds < figures.down_seconds / 2, (
        figures.lines()
    )
    assert figures.lost == 0, figures.lines()
