"""The lab's database partition drill, its pure parts: the figures from a writer's log, and the
writer's shell text."""

from __future__ import annotations

import subprocess

from twinhost_lab.database import SQL, TABLE, WRITER, PartitionFigures, SideFigures, _side


def test_unavailability_runs_from_the_first_refusal_to_the_next_success():
    lines = [
        "1000 a-1 ok",
        "1200 a-2 refused",
        "1400 a-3 refused",
        "4200 a-4 ok",
        "4400 a-5 refused",
        "4900 a-6 refused",
    ]
    side = _side("th-do", lines)
    assert (side.attempts, side.acknowledged, side.refused) == (6, 2, 4)
    assert side.unavailable_seconds == (4200 - 1200) / 1000 + (4900 - 4400) / 1000


def test_the_drill_counts_every_missing_acknowledged_row_as_lost():
    sides = [SideFigures("th-do", missing_after_heal=["do-1"]), SideFigures("th-linode")]
    figures = PartitionFigures(30, 4.2, sides)
    assert figures.lost == 1
    assert "1 acknowledged rows lost" in figures.lines()[0]


def test_the_writer_is_valid_bash_and_records_each_attempt():
    script = WRITER.format(seconds=1, node="do1", sql=" ".join(SQL), table=TABLE, pause=0.2, log="/tmp/x")
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    assert 'echo "$(date +%s%3N) $id ok"' in script and 'echo "$(date +%s%3N) $id refused"' in script
