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


# -- the data drill's figures (twinhost_lab/data_drill.py) -----------------------------------------


def test_data_drill_counts_acknowledged_refused_and_unavailable_seconds() -> None:
    from twinhost_lab.data_drill import side_figures

    records = [
        {"id": "a-1", "ok": True, "t": 0.0, "d": 0.01},
        {"id": "a-2", "ok": True, "t": 0.2, "d": 9.5},  # hung until the thin-arbiter answered
        {"id": "a-3", "ok": False, "t": 9.9, "d": 0.02, "e": "Read-only file system"},
        {"id": "a-4", "ok": True, "t": 10.1, "d": 0.01},
    ]
    figures = side_figures("th-do", records, interval=0.2)
    assert (figures.attempted, figures.acknowledged, figures.refused) == (4, 3, 1)
    assert figures.acknowledged_ids == ["a-1", "a-2", "a-4"]
    assert figures.unavailable_s == round(9.5 + 0.2 + 0.02 + 0.2, 1)
    assert figures.longest_write_s == 9.5 and figures.errors == ["Read-only file system"]
    assert figures.refused_late == 1  # at 9.9 s, after the run's middle (5.05 s)
    early = side_figures("th-do", [{**r, "t": 11 - r["t"]} for r in records], interval=0.2)
    assert early.refused == 1 and early.refused_late == 0  # the same refusal at 1.1 s


def test_data_drill_problems_are_losses_and_refusals_without_a_partition() -> None:
    from twinhost_lab.data_drill import DataFigures, SideFigures, problems

    fine = DataFigures("partition", 60, [SideFigures("a", 10, 10), SideFigures("b", 10, 2, 8)], lost=0)
    assert problems([fine]) == []
    lost = DataFigures("partition", 60, [SideFigures("a", 10, 10)], lost=1, lost_ids=["a-3 (on b)"])
    assert problems([lost]) == ["partition: 1 acknowledged writes lost: a-3 (on b)"]
    refused = DataFigures("witness-lost", 60, [SideFigures("b", 10, 9, 1)], lost=0)
    assert problems([refused]) == ["witness-lost: b had 1 writes refused"]
    # A dead peer: its own refused writes (after the power-off) are expected, the survivor's not.
    # The survivor may lose a few writes while its client drops the dead brick, not later on.
    killed = [SideFigures("a", 10, 3, 7, 7), SideFigures("b", 10, 8, 2, 0)]
    assert problems([DataFigures("peer-killed", 60, killed, lost=0)]) == []
    stuck = [SideFigures("a", 10, 3, 7, 7), SideFigures("b", 10, 4, 6, 5)]
    assert problems([DataFigures("peer-killed", 60, stuck, lost=0)]) == [
        "peer-killed: the survivor b had 5 writes refused in the second half, 4 acknowledged"
    ]


def test_data_drill_lines_show_each_sides_health_during_the_fault() -> None:
    from twinhost_lab.data_drill import DataFigures, SideFigures

    figures = DataFigures(
        "partition",
        60,
        [SideFigures("th-do", 10, 10, health="200"), SideFigures("th-linode", 10, 2, 8, health="503")],
    )
    lines = figures.lines()
    assert "/health during the fault 200" in lines[1] and "/health during the fault 503" in lines[2]
