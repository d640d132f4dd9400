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


def test_the_labs_site_gets_its_database_in_a_copy_with_the_graders_pins_and_the_repo_untouched():
    """`twinhost lab up` (and tests/lab) boot the site with database: mariadb from a copy of the
    stack files; the checks install their graders from the same directory, so the pins come too."""
    import yaml

    from tests.conftest import REPO
    from twinhost_lab.lab import with_database

    before = (REPO / "Pulumi.harbourlaw.yaml").read_text()
    copy = with_database(REPO, "harbourlaw")
    config = yaml.safe_load((copy / "Pulumi.harbourlaw.yaml").read_text())["config"]
    assert config["twinhost:database"] == "mariadb"
    assert (copy / "requirements-graders.lock").read_text() == (
        REPO / "requirements-graders.lock"
    ).read_text()
    assert (copy / "Pulumi.prod.yaml").read_text() == (REPO / "Pulumi.prod.yaml").read_text()
    assert (REPO / "Pulumi.harbourlaw.yaml").read_text() == before


def test_the_kill_drill_counts_every_missing_acknowledged_row_as_lost():
    from twinhost_lab.database import KillFigures

    side = _side("th-do", ["1000 a-1 ok", "1200 a-2 ok"])
    figures = KillFigures(30, 19.3, [side, SideFigures("th-linode", missing_after_heal=["b-7"])])
    assert figures.lost == 1 and "1 acknowledged rows lost" in figures.lines()[0]
