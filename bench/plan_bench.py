"""Speed figures for `twinhost plan` (printed, never asserted; see README "Measured").

1. the import floor: a fresh interpreter importing only the SDKs the example site stack uses;
2. the wall time of `twinhost plan --stack harbourlaw` (a fresh process, as a user runs it);
3. the marginal time per extra site: N copies of the example site planned in one process
   (the same code path as `twinhost plan --all`), for N = 1, 10, 50.
Target (DESIGN.md): 2 <= 1.3 x 1, and 3 < 100 ms per site.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SITE_SDKS = ["pulumi", "pulumi_digitalocean", "pulumi_linode", "pulumi_cloudflare", "pulumi_tls", "pulumi_aws"]
RUNS = 3


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - start


def import_floor() -> float:
    code = "import warnings; warnings.simplefilter('ignore'); " + "; ".join(f"import {m}" for m in SITE_SDKS)
    return statistics.median(wall([sys.executable, "-c", code]) for _ in range(RUNS))


def plan_wall() -> float:
    command = [sys.executable, "-c", "import sys; from infra.cli import main; sys.exit(main())",
               "plan", "--stack", "harbourlaw", "--build-dir", tempfile.mkdtemp()]
    return statistics.median(wall(command) for _ in range(RUNS))


def marginal_per_site(counts: tuple[int, ...] = (1, 10, 50)) -> dict[int, float]:
    """Plan N site stacks in one process (fresh interpreter per N); returns seconds per N."""
    example = yaml.safe_load((REPO / "Pulumi.harbourlaw.yaml").read_text())
    results = {}
    for count in counts:
        project = Path(tempfile.mkdtemp())
        (project / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
        (project / "Pulumi.prod.yaml").write_text((REPO / "Pulumi.prod.yaml").read_text())
        for index in range(count):
            config = dict(example["config"], **{"twinhost:site": f"client{index}"})
            (project / f"Pulumi.client{index}.yaml").write_text(yaml.safe_dump({"config": config}))
        code = (
            "import sys, time, warnings; warnings.simplefilter('ignore');"
            "from infra.cli import main; start = time.perf_counter();"
            f"main(['plan', '--all', '--json', '--project-dir', '{project}', '--build-dir', '{project}/build']);"
            "print('ELAPSED', time.perf_counter() - start, file=sys.stderr)"
        )
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True)
        results[count] = float(done.stderr.rsplit("ELAPSED", 1)[1])
    return results


def main() -> None:
    floor = import_floor()
    plan = plan_wall()
    print(f"import floor (site SDKs: {', '.join(SITE_SDKS[1:])}): {floor:.2f} s (median of {RUNS})")
    print(f"twinhost plan --stack harbourlaw:                 {plan:.2f} s (median of {RUNS}) = {plan / floor:.2f} x floor (target <= 1.3)")
    per_count = marginal_per_site()
    for count, seconds in per_count.items():
        print(f"plan --all with {count:2d} site stacks + platform, one process: {seconds:.2f} s")
    first, last = min(per_count), max(per_count)
    marginal = (per_count[last] - per_count[first]) / (last - first)
    print(f"marginal time per extra site: {marginal * 1000:.0f} ms (target < 100 ms)")


if __name__ == "__main__":
    main()
