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


@pytest.fixture(scope="session")
def running_lab(lab_layout: Layout) -> Iterator[RunningLab]:
    if FAILED_UP:
        pytest.fail(f"lab up failed (see the first error): {FAILED_UP[0]}", pytrace=False)
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
    lab's site stack has `database: mariadb` (tests/lab/test_database.py needs that lab)."""
    if os.environ.get("TWINHOST_LAB_DATABASE") != "1":
        return REPO
    import tempfile

    import yaml

    project = Path(tempfile.mkdtemp(prefix="twinhost-lab-database-"))
    for source in [REPO / "Pulumi.yaml", *REPO.glob("Pulumi.*.yaml")]:
        (project / source.name).write_text(source.read_text())
    stack = project / f"Pulumi.{layout.stack}.yaml"
    document = yaml.safe_load(stack.read_text())
    document["config"]["twinhost:database"] = "mariadb"
    stack.write_text(yaml.safe_dump(document, sort_keys=False))
    return project


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The failover drill kills and reboots a node: after every other lab test."""
    items.sort(key=lambda item: "tests/lab/test_drill.py" in item.nodeid.replace("\\", "/"))
