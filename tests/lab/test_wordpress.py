"""The WordPress site in the lab (issue 16 items 4 and 6): its own boot, `twinhost lab up
--wordpress` (the example site with `app: {kind: wordpress}` and `database: mariadb`, a copy of
the stack files), then the WordPress drill (twinhost_lab/wordpress.py): WordPress installed through
its own install page over HTTPS via node A, a post and an upload through A read back on node B;
node A killed: node B serves both byte for byte and takes a post and an upload of its own; node A
booted again: it serves all four. Target: nothing acknowledged lost.

The session's lab is the demo site: this module runs last (tests/lab/conftest.py's order), downs
that lab, boots the WordPress one and downs it at the end (the session's own teardown, `lab
down`, then finds nothing left, which it accepts). The figures (boot, install, times, bytes, lost)
go to the "lab figures" summary."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.lab.conftest import FIGURES, REPO, require_lab_host
from twinhost_lab import lab, wordpress
from twinhost_lab.checks import RunningLab
from twinhost_lab.layout import Layout

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def wordpress_lab(lab_layout: Layout, request: pytest.FixtureRequest) -> Iterator[RunningLab]:
    require_lab_host()
    started = time.monotonic()
    lab.down(lab_layout, log=lambda _line: None)  # the session's demo lab, if it booted one
    down_s = time.monotonic() - started
    log = lab_layout.run_dir.parent / "pytest-lab-wordpress-up.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:

        def write(line: str) -> None:
            out.write(line + "\n")
            out.flush()

        try:
            state = lab.up(lab_layout, lab.with_wordpress(REPO, lab_layout.stack), log=write)
        except Exception as exc:  # noqa: BLE001 - the progress log is the useful part of the failure
            pytest.fail(f"lab up --wordpress failed: {exc}\n{log.read_text()[-3000:]}", pytrace=False)
    nodes = ", ".join(
        f"{name} cloud-init {info.get('cloud_init')} {info.get('cloud_init_s')} s"
        for name, info in state.nodes.items()
    )
    request.config.stash[FIGURES].append(
        f"WORDPRESS lab: previous lab down in {down_s:.0f} s; up --wordpress in "
        f"{state.timings.get('up_total_s')} s (healthy over TLS {state.timings.get('healthy_tls_s')} s "
        f"after the containers started); {nodes}"
    )
    try:
        yield RunningLab(lab_layout)
    finally:
        lab.down(lab_layout, log=lambda _line: None)


@pytest.fixture(scope="module")
def drilled(wordpress_lab: RunningLab, request: pytest.FixtureRequest) -> wordpress.WordPressFigures:
    log = wordpress_lab.layout.run_dir.parent / "pytest-lab-wordpress-drill.log"
    with log.open("w") as out:

        def write(line: str) -> None:
            out.write(line + "\n")
            out.flush()

        figures = wordpress.drill(wordpress_lab.layout, log=write)
    request.config.stash[FIGURES] += figures.lines()
    return figures


def test_the_lab_site_is_wordpress(wordpress_lab: RunningLab) -> None:
    assert wordpress.is_wordpress(wordpress_lab)


def test_a_post_and_an_upload_through_node_a_are_served_by_node_b(
    drilled: wordpress.WordPressFigures,
) -> None:
    assert drilled.upload_bytes > 100_000, drilled.lines()
    assert drilled.read_on_b_s is not None, [*drilled.lines(), *drilled.problems]


def test_node_b_alone_serves_them_byte_for_byte_and_takes_writes(drilled: wordpress.WordPressFigures) -> None:
    assert drilled.served_by_b_after_kill_s is not None, [*drilled.lines(), *drilled.problems]
    assert drilled.written_on_b_while_a_dead_s is not None, [*drilled.lines(), *drilled.problems]


def test_node_a_booted_again_serves_everything(drilled: wordpress.WordPressFigures) -> None:
    assert drilled.a_healthy_after_boot_s is not None, [*drilled.lines(), *drilled.problems]
    assert drilled.served_by_a_after_boot_s is not None, [*drilled.lines(), *drilled.problems]


def test_nothing_acknowledged_is_lost(drilled: wordpress.WordPressFigures) -> None:
    assert drilled.acknowledged == 4, drilled.lines()
    assert drilled.lost == [], drilled.lines()
    assert wordpress.problems(drilled) == [], drilled.lines()
