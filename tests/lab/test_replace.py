"""Issue 18 items 3 and 4 (replacing a node): node B lost with its disk, a new node B booted from
the plan's user data rejoins the survivor's volume (and database) with no manual gluster or
Galera command, and ends healthy, serving, and holding every file and row
(twinhost_lab/replace.py says how). It destroys node B: the LAST lab module, after the data
drill (tests/lab/conftest.py).

One module-scoped run; each test asserts one claim; the figures go to the "lab figures" summary."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lab.conftest import FIGURES
from twinhost_lab import checks, replace
from twinhost_lab.checks import RunningLab

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def replaced(running_lab: RunningLab, request: pytest.FixtureRequest) -> Iterator[replace.ReplaceResult]:
    result = replace.drill(running_lab, running_lab.standby, log=lambda _line: None)
    request.config.stash[FIGURES].extend(result.lines())
    yield result


def test_the_new_node_is_healthy_over_tls_and_serves(replaced, running_lab, proven):
    assert "healthy" in replaced.seconds, replaced.lines()
    for role in running_lab.site_roles:
        proven(checks.https_health(running_lab, role))


def test_the_new_node_took_back_the_lost_nodes_gluster_identity(replaced):
    assert replaced.identity["after"] == replaced.identity["before"], replaced.identity
    journal = replaced.journal
    assert f"replacement node: taking back UUID {replaced.identity['before']}" in journal, journal[-3000:]
    assert "restoring the empty brick" in journal and "heal complete" in journal, journal[-3000:]
    # The safety stays: nothing was refused on a fresh node's empty brick.
    assert "refusing" not in journal, journal[-3000:]


def test_the_new_brick_holds_every_file_byte_for_byte(replaced):
    assert "healed" in replaced.seconds, replaced.lines()
    drill = {p: v for p, v in replaced.brick_tree.items() if p.startswith(f"{replace.DRILL_DIR}/")}
    missing = sorted(set(replaced.drill_tree) - set(drill))
    different = sorted(p for p in replaced.drill_tree if p in drill and drill[p] != replaced.drill_tree[p])
    assert not missing and not different, f"missing {missing[:10]}, different {different[:10]}"
    # Files written through the survivor while B was gone are there too, and the deleted one is not.
    assert f"{replace.DRILL_DIR}/during/sub/new-20.bin" in drill
    assert f"{replace.DRILL_DIR}/before/docs/letters/letter-3.txt" not in drill
    # And the whole volume (certificates, app files, demo page): the survivor's view, exactly.
    brick, survivor = replaced.brick_tree, replaced.survivor_tree
    differ = sorted(p for p in {*brick, *survivor} if brick.get(p) != survivor.get(p))
    assert not differ, differ[:20]


def test_the_new_node_holds_every_row(replaced):
    if not replaced.database:
        pytest.skip("the lab site has no database (TWINHOST_LAB_DATABASE=1 boots one)")
    assert "db_synced" in replaced.seconds, replaced.lines()
    survivor, new = replaced.rows["after survivor"], replaced.rows["after replaced"]
    assert len(survivor.splitlines()) == replace.ROWS_BEFORE + replace.ROWS_DURING
    assert new == survivor
