"""The failover drill (issue 7) on the booted lab: the watcher on the redirector, fed through the
platform's S3/SSM stand-in, moves the failover record on a real authoritative server (Knot, RFC
2136) and on moto's Route 53 when the primary node's container is killed, and moves it back when
the node boots again; a node failing every other check never moves it. The drill runs once for
the module (it kills containers), after every other lab test (tests/lab/conftest.py orders it
last); each test asserts one behaviour, and the figures go to the "lab figures" summary. The
speed targets are printed here and by `make bench-lab`, not asserted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lab.conftest import FIGURES
from twinhost_lab import drill
from twinhost_lab.checks import RunningLab

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def drilled(
    running_lab: RunningLab, request: pytest.FixtureRequest
) -> Iterator[tuple[dict[str, drill.DrillFigures], drill.FlappingFigures | None]]:
    log = running_lab.layout.run_dir.parent / "pytest-lab-drill.log"
    with log.open("w") as out:

        def write(line: str) -> None:
            out.write(line + "\n")
            out.flush()

        results, flapping = drill.drill(running_lab.layout, drill.BACKENDS, log=write)
    figures = request.config.stash[FIGURES]
    for result in results:
        figures += [f"DRILL {line}" for line in result.lines()]
    if flapping is not None:
        figures += [f"DRILL {line}" for line in flapping.lines()]
    figures += [f"DRILL target: {line}" for line in drill.targets(results)]
    yield {r.backend: r for r in results}, flapping


@pytest.mark.parametrize("backend", drill.BACKENDS)
def test_killing_the_primary_leaves_only_the_standby_in_the_record(drilled, backend: str) -> None:
    result = drilled[0][backend]
    standby = result.standby_address
    assert result.detection_s is not None, "the watcher logged no node_down for the killed node"
    assert result.moved_s is not None and result.record_after_move == [standby], result.lines()


@pytest.mark.parametrize("backend", drill.BACKENDS)
def test_a_client_resolving_the_name_after_the_move_gets_a_healthy_answer(drilled, backend: str) -> None:
    result = drilled[0][backend]
    assert result.client_address == result.standby_address, result.lines()
    assert result.client_status == "200", result.lines()


@pytest.mark.parametrize("backend", drill.BACKENDS)
def test_the_record_is_restored_when_the_killed_node_boots_again(drilled, backend: str) -> None:
    result = drilled[0][backend]
    both = sorted([result.killed_address, result.standby_address])
    assert result.returned_s is not None and result.record_after_return == both, result.lines()
    assert result.node_up_s is not None and result.node_up_s <= result.returned_s
    assert result.record_moved_events == 2, "one move away, one back: nothing else"


def test_a_node_failing_every_other_check_never_moves_the_record(drilled) -> None:
    flapping = drilled[1]
    assert flapping is not None
    # It did fail, every other time: several single failures, never two in a row...
    assert flapping.resets >= 3 and flapping.failed_checks >= 3 and flapping.longest_streak == 1, (
        flapping.lines()
    )
    # ...and the record never changed.
    assert flapping.node_down_events == 0 and flapping.record_moves == 0, flapping.lines()
    assert len(flapping.records_seen) == 1 and len(flapping.records_seen[0]) == 2, flapping.lines()
