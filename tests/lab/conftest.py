"""The lab, booted once for every test in this folder (`pytest -m lab` runs them alone).

`twinhost lab up` for the example site and the platform stack, then the checks; `twinhost lab
down` afterwards, whatever happened (a failed `up` removes what it made itself). Debian 12 by
default; TWINHOST_LAB_DEBIAN=13 boots trixie. TWINHOST_LAB=0 skips the lab (the GitHub job runs
in a container that cannot boot containers; the project's own CI, root on Debian, runs it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from twinhost_lab import checks, lab
from twinhost_lab.checks import CheckResult, RunningLab
from twinhost_lab.layout import Layout

REPO = Path(__file__).resolve().parents[2]


FIGURES = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Every check's figure, pass or fail, at the end of the run (the lab's measurements)."""
    figures = config.stash.get(FIGURES, [])
    if figures:
        terminalreporter.section("lab figures")
        for line in figures:
            terminalreporter.write_line(line)


@pytest.fixture
def proven(request: pytest.FixtureRequest) -> Callable[[CheckResult], None]:
    """Record a check's figure for the summary, then assert it passed."""

    def check(result: CheckResult) -> None:
        request.config.stash[FIGURES].append(result.line())
        assert result.ok, result.line()

    return check


@pytest.fixture(scope="session")
def lab_layout() -> Layout:
    return Layout(
        stack="harbourlaw", platform_stack="prod", debian=int(os.environ.get("TWINHOST_LAB_DEBIAN", "12"))
    )


FAILED_UP: list[str] = []  # pytest retries a failed session fixture per test: boot once only


def require_lab_host() -> None:
    """Skip unless this runner may boot the lab (root on Linux, TWINHOST_LAB not 0); then install
    the lab's Debian packages (a failure there is an error, not a skip)."""
    if os.environ.get("TWINHOST_LAB") == "0":
        pytest.skip("TWINHOST_LAB=0: the container lab is switched off on this runner")
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("the container lab needs root on Linux (systemd-nspawn, bridges, namespaces)")
    installed = subprocess.run(
        [str(REPO / "scripts" / "ensure-host-packages"), "lab"], capture_output=True, text=True
    )
    assert installed.returncode == 0, (
        f"could not install the lab's Debian packages: {installed.stderr[-1500:]}"
    )


@pytest.fixture(scope="session")
def running_lab(lab_layout: Layout) -> Iterator[RunningLab]:
    if FAILED_UP:
        pytest.fail(f"lab up failed (see the first error): {FAILED_UP[0]}", pytrace=False)
    require_lab_host()

    log = lab_layout.run_dir.parent / "pytest-lab-up.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:

        def write(line: str) -> None:
            out.write(line + "\n")
            out.flush()

        try:
            state = lab.up(lab_layout, _project(lab_layout), log=write)
        except Exception as exc:  # noqa: BLE001 - the progress log is the useful part of the failure
            FAILED_UP.append(str(exc)[:300])
            pytest.fail(f"lab up failed: {exc}\n{log.read_text()[-3000:]}", pytrace=False)
    print("\n" + lab.summary_table(lab_layout, state))
    try:
        yield checks.RunningLab(lab_layout)
    finally:
        lab.down(lab_layout, log=lambda _line: None)


def _project(layout: Layout) -> Path:
    """The repository, or with TWINHOST_LAB_DATABASE=1 a copy of its stack files in which the
    lab's site stack has `database: mariadb` (`twinhost lab up --database`). Not the default yet
    (docs/lab.md says what the last full run with it found)."""
    if os.environ.get("TWINHOST_LAB_DATABASE") != "1":
        return REPO
    return lab.with_database(REPO, layout.stack)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The backup drill (which restores the shared volume) after the checks and the day-2
    commands, before the database drills; the failover drill kills and reboots a node: after
    every other lab test; the data drill (which cuts the pair apart and kills the witness) after
    that; the replace drill (which destroys node B and boots a new one) after that; the WordPress
    drill (which downs the session's lab and boots its own) last."""
    order = (
        "tests/lab/test_backup.py",
        "tests/lab/test_database.py",
        "tests/lab/test_drill.py",
        "tests/lab/test_data_drill.py",
        "tests/lab/test_replace.py",
        "tests/lab/test_wordpress.py",  # last: downs the session's lab and boots its own
    )

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.replace("\\", "/")
        return next((index + 1 for index, name in enumerate(order) if name in path), 0)

    items.sort(key=rank)
