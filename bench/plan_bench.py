"""Speed figures for `twinhost plan` (printed, never asserted; see README "Measured").

Per stack shape (a Cloudflare/watchdog site, a Route 53 site, the platform), measured side by
side in this one run, runs interleaved:
1. the import floor: a fresh interpreter that imports `pulumi` and exactly the provider SDK
   modules the shape's plan loaded (found from that plan's own `sys.modules`, lazily loaded
   `pulumi_aws` services included, lazy placeholders never touched), and nothing else;
2. the wall time of `twinhost plan --stack <stack>` in a fresh process, as a user runs it (a
   site's plan includes the plan of the platform stack it references), and its ratio to 1;
3. the provider SDKs that plan imported: a Route 53 site never needs `pulumi_cloudflare`, the
   platform never needs the DigitalOcean or Linode SDKs.
Then the wall time of the commands that do not plan (they import no provider SDK), and the
marginal time per extra site: N copies of the example site (each its own domain, all watched by
the platform) planned by `twinhost plan --all` in one process, N = 1, 10, 50.
Targets (DESIGN.md): 2 <= 1.3 x 1; marginal < 100 ms per site; every non-plan command < 1 s.

`--quick` (run by `make test`, tests/unit/test_plan_bench.py): one run of each, N = 1 and 4.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_SITE = "harbourlaw"
PLATFORM = "prod"
ROUTE53_ZONE_ID = "Z0123456789ABCDEFGHIJ"
# Every throwaway project of one run, removed at the end (plans write user data with keys there).
WORK = Path(tempfile.mkdtemp(prefix="twinhost-bench-"))

# Runs the CLI in-process, then reports which provider SDK modules it loaded (stderr, last line).
_PLAN_AND_REPORT = r"""
import json, sys
from infra.cli import main
code = main(sys.argv[1:])
# type(), not isinstance(): looking at a lazy module's attributes would load it.
loaded = sorted(name for name, module in list(sys.modules.items())
                if name.startswith("pulumi_") and name.count(".") <= 1
                and type(module).__name__ != "_LazyModule")
print("LOADED " + json.dumps(loaded), file=sys.stderr)
sys.exit(code)
"""
# What the floor imports: the same warnings filter as the CLI, then the given modules. `import` of
# a lazily registered SDK module (pulumi_aws's services) returns its placeholder; touching an
# attribute loads it, as the program's first use does.
_IMPORT_ONLY = (
    "import importlib, warnings; warnings.simplefilter('ignore'); import pulumi\n"
    "for name in {modules!r}:\n    hasattr(importlib.import_module(name), '_floor')"
)


def wall(command: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done


def _stack_file(project: Path, name: str, config: dict) -> None:
    (project / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}))


def _project(platform: dict, sites: dict[str, dict]) -> Path:
    """A throwaway project: Pulumi.yaml, the platform watching `sites`, and the sites."""
    project = Path(tempfile.mkdtemp(dir=WORK))
    (project / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    _stack_file(project, PLATFORM, dict(platform, **{"twinhost:sites": sorted(sites)}))
    for name, config in sites.items():
        _stack_file(project, name, config)
    return project


def _example(name: str) -> dict:
    return yaml.safe_load((REPO / f"Pulumi.{name}.yaml").read_text())["config"]


def shapes() -> dict[str, tuple[Path, str]]:
    """{shape: (project dir, stack to plan)}: the shipped example, its Route 53 twin, the platform."""
    platform, site = _example(PLATFORM), _example(EXAMPLE_SITE)
    route53_platform = {
        k: v
        for k, v in platform.items()
        if k not in ("twinhost:cloudflareZoneId", "twinhost:watcherDnsToken")
    }
    route53_platform.update({"twinhost:dnsProvider": "route53", "twinhost:route53ZoneId": ROUTE53_ZONE_ID})
    route53_site = dict(site, **{"twinhost:opsDns": "route53", "twinhost:failover": {"mode": "route53"}})
    shipped = _project(platform, {EXAMPLE_SITE: site})
    return {
        "cloudflare/watchdog site": (shipped, EXAMPLE_SITE),
        "route53 site": (_project(route53_platform, {EXAMPLE_SITE: route53_site}), EXAMPLE_SITE),
        "platform": (shipped, PLATFORM),
    }


def plan_once(project: Path, stack: str) -> tuple[float, list[str]]:
    command = [
        sys.executable,
        "-c",
        _PLAN_AND_REPORT,
        "plan",
        "--stack",
        stack,
        "--project-dir",
        str(project),
        "--build-dir",
        str(project / "build"),
    ]
    seconds, done = wall(command)
    return seconds, json.loads(done.stderr.rsplit("LOADED ", 1)[1].splitlines()[0])


def floor_once(modules: list[str]) -> float:
    return wall([sys.executable, "-c", _IMPORT_ONLY.format(modules=modules)])[0]


def measure_shape(project: Path, stack: str, runs: int) -> dict:
    plans, floors, modules = [], [], []
    for _ in range(runs):  # interleaved, so both see the same machine load
        seconds, modules = plan_once(project, stack)
        plans.append(seconds)
        floors.append(floor_once(modules))
    sdks = sorted({name.split(".")[0] for name in modules})
    return {"plan": statistics.median(plans), "floor": statistics.median(floors), "sdks": sdks}


# Commands that never plan: what a user runs most, none may import a provider SDK.
def _non_plan_commands() -> dict[str, list[str]]:
    manual = dict(
        _example(EXAMPLE_SITE), **{"twinhost:failover": {"mode": "manual", "active": "digitalocean"}}
    )
    project = _project(_example(PLATFORM), {EXAMPLE_SITE: manual})
    return {
        "twinhost --help": ["--help"],
        "twinhost plan --help": ["plan", "--help"],
        "twinhost new-site (writes a stack file)": [
            "--project-dir",
            str(project),
            "new-site",
            "benchclient",
            "--domain",
            "bench-client.example",
        ],
        "twinhost failover --to linode": [
            "--project-dir",
            str(project),
            "failover",
            EXAMPLE_SITE,
            "--to",
            "linode",
        ],
    }


def non_plan_walls(runs: int) -> dict[str, float]:
    results = {}
    for label in _non_plan_commands():
        times = []
        for _ in range(runs):
            commands = _non_plan_commands()  # a fresh project each run: new-site writes once
            times.append(
                wall(
                    [
                        sys.executable,
                        "-c",
                        "import sys; from infra.cli import main; sys.exit(main())",
                        *commands[label],
                    ]
                )[0]
            )
        results[label] = statistics.median(times)
    return results


def marginal_per_site(counts: tuple[int, ...]) -> dict[int, float]:
    """Plan N site stacks + the platform in one process (fresh interpreter per N); seconds per N."""
    site = _example(EXAMPLE_SITE)
    results = {}
    for count in counts:
        sites = {
            f"client{index}": dict(
                site, **{"twinhost:site": f"client{index}", "twinhost:domains": [f"client{index}-law.co.uk"]}
            )
            for index in range(count)
        }
        project = _project(_example(PLATFORM), sites)
        code = (
            "import sys, time; from infra.cli import main; start = time.perf_counter();"
            f"main(['plan', '--all', '--json', '--project-dir', '{project}', '--build-dir', '{project}/build']);"
            "print('ELAPSED', time.perf_counter() - start, file=sys.stderr)"
        )
        done = wall([sys.executable, "-c", code])[1]
        results[count] = float(done.stderr.rsplit("ELAPSED", 1)[1])
    return results


def say(line: str) -> None:
    print(line, flush=True)  # each figure as soon as it is known (the whole run takes minutes)


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run of each, N = 1 and 4 (for `make test`)")
    args = parser.parse_args(argv)
    try:
        runs, counts = (1, (1, 4)) if args.quick else (3, (1, 10, 50))
        say(f"load average before: {load_average()} ({os.cpu_count()} cores); median of {runs} run(s) each")
        for shape, (project, stack) in shapes().items():
            result = measure_shape(project, stack, runs)
            say(
                f"{shape:26s} import floor {result['floor']:5.2f} s | twinhost plan --stack {stack}: "
                f"{result['plan']:5.2f} s = {result['plan'] / result['floor']:.2f} x floor (target <= 1.3)"
            )
            say(f"{'':26s} provider SDKs imported: {', '.join(result['sdks'])}")
        for label, seconds in non_plan_walls(runs).items():
            say(f"{label:42s} {seconds:5.2f} s (target < 1 s)")
        per_count = marginal_per_site(counts)
        for count, seconds in per_count.items():
            say(f"plan --all with {count:2d} site stacks + platform, one process: {seconds:.2f} s")
        first, last = min(per_count), max(per_count)
        marginal = (per_count[last] - per_count[first]) / (last - first)
        say(f"marginal time per extra site: {marginal * 1000:.0f} ms (target < 100 ms)")
        say(f"load average after: {load_average()}")
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
