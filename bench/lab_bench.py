"""Lab figures (printed, never asserted; see README "Measured" and docs/lab.md).

1. time from container start to both site nodes healthy over TLS: `/health` answering 200 through
   the web front with the certificate the lab's ACME server issued (verified), polled about every
   2 s from the internet namespace while `twinhost lab up` runs. Target (issue 6): under 3 minutes.
2. cloud-init done per container, and the whole `up` (network, services, root filesystem, boot);
3. the memory the running lab uses: proportional set size (PSS, shared pages split fairly) of every
   process in the containers' cgroups and of the lab's host services.

Root on Linux; boots and removes a lab (`twinhost lab down` afterwards, whatever happens).
Usage: python bench/lab_bench.py [--debian 12|13]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from infra.lab import lab
from infra.lab.containers import lab_cgroup_pids
from infra.lab.host import alive
from infra.lab.layout import Layout

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debian", type=int, choices=(12, 13), default=12)
    args = parser.parse_args()
    layout = Layout(debian=args.debian)
    try:
        # `up` polls /health over TLS on both nodes every ~2 s while it follows cloud-init.
        state = lab.up(layout, REPO, log=lambda line: print(line, flush=True))
        print(lab.summary_table(layout, state))
        healthy = state.timings["healthy_tls_s"]
        print(f"both nodes healthy over TLS {healthy:.0f} s after container start (target under {TARGET_HEALTHY_S} s)")
        memory = lab_memory(layout, state)
        for name, mib in memory.items():
            print(f"memory {name:<16} {mib:7.0f} MiB PSS")
        print(f"memory {'whole lab':<16} {sum(memory.values()):7.0f} MiB PSS")
    finally:
        lab.down(layout, log=lambda line: None)


if __name__ == "__main__":
    main()
