"""`make bench` cannot rot: its quick mode runs here. Its figures are printed, never asserted."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_plan_bench_quick_mode_runs_and_prints_every_figure():
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "plan_bench.py"), "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout)  # the figures, for `pytest -s` / the CI log
    lines = done.stdout.splitlines()
    for shape in ("cloudflare/watchdog site", "route53 site", "platform"):
        figure = next((line for line in lines if line.startswith(shape)), "")
        assert "import floor" in figure and "x floor" in figure, (shape, done.stdout)
    for command in ("twinhost --help", "twinhost plan --help"):
        assert any(line.startswith(command) and line.rstrip().endswith("(target < 1 s)") for line in lines), (
            command
        )
    assert any(line.startswith("marginal time per extra site:") for line in lines), done.stdout
