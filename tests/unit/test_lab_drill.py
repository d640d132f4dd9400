"""The drill's verdicts (`twinhost lab drill` exits 1 on any), without booting a lab."""

from __future__ import annotations

from dataclasses import replace

from twinhost_lab import drill

A, B = "198.51.100.10", "198.51.100.20"
GOOD = drill.DrillFigures(
    backend="rfc2136",
    killed="th-do",
    standby="th-linode",
    killed_address=A,
    standby_address=B,
    detection_s=11.0,
    moved_s=11.2,
    record_after_move=[B],
    client_address=B,
    client_status="200",
    node_up_s=8.8,
    returned_s=9.0,
    record_after_return=[A, B],
    record_moved_events=2,
)
CALM = drill.FlappingFigures(
    node="th-do",
    rounds=8,
    failed_checks=6,
    longest_streak=1,
    resets=6,
    node_down_events=0,
    record_moves=0,
    records_seen=[[A, B]],
)


def test_a_clean_drill_has_no_problems_and_meets_the_targets() -> None:
    assert drill.problems([GOOD], CALM) == []
    assert drill.targets([GOOD]) == ["rfc2136: detection met (<= 15 s), record moved met (<= 20 s)"]


def test_each_broken_behaviour_is_named() -> None:
    cases = {
        "did not move to the standby alone": replace(GOOD, moved_s=None, record_after_move=[A, B]),
        "did not move to the standby alone ([": replace(GOOD, record_after_move=[A]),
        "no node_down": replace(GOOD, detection_s=None),
        "client resolving the name was sent to 198.51.100.20 and got 503": replace(GOOD, client_status="503"),
        "was sent to 198.51.100.10 and got 200": replace(GOOD, client_address=A),
        "not restored to both nodes": replace(GOOD, returned_s=None, record_after_return=[B]),
        "3 record moves logged": replace(GOOD, record_moved_events=3),
    }
    for expected, figures in cases.items():
        found = drill.problems([figures], None)
        assert len(found) == 1 and expected in found[0], (expected, found)


def test_flapping_that_moved_the_record_or_never_failed_is_a_problem() -> None:
    moved = replace(CALM, node_down_events=1, record_moves=2, records_seen=[[A, B], [B], [A, B]])
    assert "flapping: the record moved" in drill.problems([], moved)[0]
    never_failed = replace(CALM, failed_checks=0, longest_streak=0, resets=0)
    assert "did not fail every other check" in drill.problems([], never_failed)[0]


def test_slow_figures_miss_the_targets_without_being_problems() -> None:
    slow = replace(GOOD, detection_s=16.9, moved_s=29.9)
    assert drill.problems([slow], None) == []
    assert drill.targets([slow]) == ["rfc2136: detection MISSED (<= 15 s), record moved MISSED (<= 20 s)"]
