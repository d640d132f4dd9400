"""Lab figures (printed, never asserted; see README "Measured" and docs/lab.md).

1. time from container start to both site nodes healthy over TLS: `/health` answering 200 through
   the web front with the certificate the lab's ACME server issued (verified), polled about every
   2 s from the internet namespace while `twinhost lab up` runs. Target (issue 6): under 3 minutes.
2. cloud-init done per container, and the whole `up` (network, services, root filesystem, boot);
3. the memory the running lab uses: proportional set size (PSS, shared pages split fairly) of every
   process in the containers' cgroups and of the lab's host services;
4. the failover drill (issue 7), `--drill-repeats` kills of the primary per DNS backend (Knot by
   RFC 2136, moto's Route 53), each at a random moment of the watcher's 5 s round: seconds from
   the kill to `node_down` (target <= 15 s) and to the record holding only the standby (target
   <= 20 s), and from the reboot to the record holding both again; min / median / max.

Root on Linux; boots and removes a lab (`twinhost lab down` afterwards, whatever happens).
Usage: python bench/lab_bench.py [--debian 12|13] [--drill-repeats N]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from twinhost_lab import drill, lab
from twinhost_lab.containers import lab_cgroup_pids
from twinhost_lab.host import alive
from twinhost_lab.layout import Layout

REPO = Path(__file__).resolve().parent.parent
TARGET_HEALTHY_S = 180


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def lab_memory(layout: Layout, state: lab.LabState) -> dict[str, float]:
    """MiB of PSS per container and for the host services."""
    figures: dict[str, float] = {}
    for node in layout.nodes:
        figures[node.name] = sum(pss_kib(pid) for pid in lab_cgroup_pids(node.name)) / 1024
    figures["host services"] = sum(pss_kib(pid) for pid in state.services.values() if alive(pid)) / 1024
    return figures


def print_drill(layout: Layout, repeats: int) -> None:
    results, _ = drill.drill(
        layout,
        drill.BACKENDS,
        flapping_rounds=0,
        repeats=repeats,
        log=lambda line: print(f"  {line}", flush=True),
    )
    for backend in drill.BACKENDS:
        runs = [r for r in results if r.backend == backend]
        for label, values, target in (
            ("kill -> node_down", [r.detection_s for r in runs], drill.TARGET_DETECTION_S),
            ("kill -> record on standby only", [r.moved_s for r in runs], drill.TARGET_MOVED_S),
            ("reboot -> record on both", [r.returned_s for r in runs], None),
        ):
            known = sorted(v for v in values if v is not None)
            spread = (
                f"min {known[0]:.1f} / median {statistics.median(known):.1f} / max {known[-1]:.1f} s"
                if known
                else "no figure"
            )
            missing = (
                f", {len(values) - len(known)} runs without a figure" if len(known) < len(values) else ""
            )
            goal = f" (target <= {target:.0f} s)" if target else ""
            print(f"drill {backend:<8} {label:<31} {spread} over {len(values)} kills{missing}{goal}")
    for line in drill.problems(results, None):
        print(f"drill PROBLEM: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debian", type=int, choices=(12, 13), default=12)
    parser.add_argument("--drill-repeats", type=int, default=3, help="kills per DNS backend (0: no drill)")
    args = parser.parse_args()
    layout = Layout(debian=args.debian)
    try:
        # `up` polls /health over TLS on both nodes every ~2 s while it follows cloud-init.
        state = lab.up(layout, REPO, log=lambda line: print(line, flush=True))
        print(lab.summary_table(layout, state))
        healthy = state.timings["healthy_tls_s"]
        print(
            f"both nodes healthy over TLS {healthy:.0f} s after container start (target under {TARGET_HEALTHY_S} s)"
        )
        memory = lab_memory(layout, state)
        for name, mib in memory.items():
            print(f"memory {name:<16} {mib:7.0f} MiB PSS")
        print(f"memory {'whole lab':<16} {sum(memory.values()):7.0f} MiB PSS")
        if args.drill_repeats:
            print_drill(layout, args.drill_repeats)
    finally:
        lab.down(layout, log=lambda line: None)


if __name__ == "__main__":
    main()
