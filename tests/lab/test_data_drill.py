"""The data drill, files half (issue 16 item 6) on the booted lab: a partition between the two
nodes while both write to the shared volume, then the witness (the redirector: tinc member and
thin-arbiter) lost while both write. Each fault lasts 30 s here (60 s in `twinhost lab drill
--data`). Runs once, after the failover drill (tests/lab/conftest.py orders it last); the figures
go to the "lab figures" summary."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.lab.conftest import FIGURES
from twinhost_lab import data_drill
from twinhost_lab.checks import RunningLab

pytestmark = pytest.mark.lab
SECONDS = 30.0
# Not in `make test` yet: in 1 of 3 runs the volume was not healed 300 s after node A came back
# (docs/lab.md "The data drill"); `twinhost lab drill --data` always runs it.
PEER_KILLED = os.environ.get("TWINHOST_LAB_PEER_KILLED") == "1"
PEER_KILLED_SKIP = (
    "the peer-killed fault runs with TWINHOST_LAB_PEER_KILLED=1 (and in `twinhost lab drill --data`): "
    "not in make test yet, one run in three did not heal within 300 s after node A returned"
)


@pytest.fixture(scope="module")
def drilled(
    running_lab: RunningLab, request: pytest.FixtureRequest
) -> Iterator[dict[str, data_drill.DataFigures]]:
    log = running_lab.layout.run_dir.parent / "pytest-lab-data-drill.log"
    with log.open("w") as out:

        def write(line: str) -> None:
            out.write(line + "\n")
            out.flush()

        results = data_drill.data_drill(running_lab.layout, SECONDS, log=write, peer_killed=PEER_KILLED)
    request.config.stash[FIGURES] += [f"DATA {line}" for r in results for line in r.lines()]
    yield {r.fault: r for r in results}


def test_a_partition_loses_no_acknowledged_write(drilled) -> None:
    result = drilled["partition"]
    assert result.lost == 0, result.lines()
    assert result.split_brain == 0, result.lines()
    assert all(side.acknowledged for side in result.sides), result.lines()


def test_during_a_partition_only_one_side_keeps_writing(drilled) -> None:
    """The thin-arbiter sides with one node: the other's writes are refused, not acknowledged and
    dropped later."""
    result = drilled["partition"]
    refused = [side for side in result.sides if side.refused]
    assert len(refused) == 1, result.lines()


def test_the_side_whose_writes_are_refused_fails_its_health(drilled) -> None:
    """The write probe: /health answers 503 on the refused side (so the watcher drops it), 200 on
    the side that keeps writing."""
    result = drilled["partition"]
    for side in result.sides:
        assert side.health == ("503" if side.refused else "200"), result.lines()


def test_with_a_database_a_partition_loses_no_acknowledged_row(drilled) -> None:
    result = drilled["partition"]
    if result.rows is None:
        pytest.skip("the lab's site has no database: TWINHOST_LAB_DATABASE=1 boots it with database: mariadb")
    assert result.rows_lost == 0, result.lines()
    assert all(side.acknowledged for side in result.rows), result.lines()


def test_with_a_database_the_same_side_keeps_the_files_and_the_rows(drilled) -> None:
    """The thin-arbiter and garbd are two third votes: in a cut between the nodes alone both must
    pick the same node (the fence), or each node fails half of /health and the site is down."""
    result = drilled["partition"]
    if result.rows is None:
        pytest.skip("the lab's site has no database: TWINHOST_LAB_DATABASE=1 boots it with database: mariadb")
    # /health includes the member's wsrep state: 200 only where both the files and the rows go on.
    assert sorted(side.health for side in result.sides) == ["200", "503"], result.lines()
    for files, rows in zip(result.sides, result.rows, strict=True):
        if files.refused:  # the node that lost the files vote was fenced out of the cluster too
            assert rows.refused, result.lines()


def test_with_the_witness_lost_both_nodes_keep_writing(drilled) -> None:
    result = drilled["witness-lost"]
    assert result.lost == 0, result.lines()
    assert all(side.refused == 0 and side.acknowledged for side in result.sides), result.lines()


def test_a_dead_peers_survivor_keeps_writing(drilled) -> None:
    """Node A powered off mid-write: node B's client drops A's brick, the thin-arbiter lets it mark
    A bad, and B goes on writing, its /health 200. Before the volume's quorum fix, B refused every
    write until A was back (brick 0 was AFR's tie-breaker). The few writes B loses while its
    client drops the dead brick are printed (refused), never in the second half of the fault."""
    if "peer-killed" not in drilled:
        pytest.skip(PEER_KILLED_SKIP)
    result = drilled["peer-killed"]
    survivor = result.sides[1]
    assert survivor.refused_late == 0 and survivor.acknowledged, result.lines()
    assert survivor.health == "200", result.lines()


def test_a_killed_node_rejoins_and_nothing_acknowledged_is_lost(drilled) -> None:
    if "peer-killed" not in drilled:
        pytest.skip(PEER_KILLED_SKIP)
    result = drilled["peer-killed"]
    assert result.heal_s is not None, result.lines()
    assert result.lost == 0 and result.split_brain == 0, result.lines()
