"""One lab container: a Debian tree unpacked from the cached root filesystem, a NoCloud seed
holding the plan's user data, and systemd-nspawn booting it on the lab bridge.

What this machine needs (shared/LAB-NOTES.md): no systemd on the host, so `--register=no
--keep-unit`, with each container in a cgroup of its own (moving the launching shell there before
exec), else one container's shutdown waits on the other's; `--network-bridge` gives CAP_NET_ADMIN
(tinc, ufw); /dev/fuse and /dev/net/tun bound in for GlusterFS and tinc.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from twinhost_lab.host import LabError, alive, run, start_background, stop, wait_for
from twinhost_lab.layout import Layout, Node
from twinhost_lab.rootfs import unpack

CGROUP_ROOTS = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"))
LAB_CLOUD_CFG = """\
# The lab's NoCloud seed (a provider's metadata service stands in here) and no cloud-init
# networking: the lab's networkd file gives host0 the addresses the plan's mocks handed out.
datasource_list: [ NoCloud, None ]
network: {config: disabled}
"""


@dataclass
class Container:
    node: Node
    layout: Layout
    pid: int | None = None  # the systemd-nspawn process

    @property
    def tree(self) -> Path:
        return self.layout.machines_dir / self.node.name

    @property
    def log(self) -> Path:
        return self.layout.run_dir / "logs" / f"{self.node.name}.console.log"

    def prepare(self, archive: Path, user_data: str) -> None:
        unpack(archive, self.tree)
        seed = self.tree / "var/lib/cloud/seed/nocloud"
        seed.mkdir(parents=True, exist_ok=True)
        (seed / "meta-data").write_text(
            f"instance-id: lab-{self.node.name}\nlocal-hostname: {self.node.name}\n"
        )
        user_data_file = seed / "user-data"
        user_data_file.touch(mode=0o600)  # secrets: tinc and origin keys
        user_data_file.write_text(user_data)
        (self.tree / "etc/cloud/cloud.cfg.d/90-twinhost-lab.cfg").write_text(LAB_CLOUD_CFG)
        # Before systemd's own 80-container-host0.network (link-local only), which would match first.
        network = self.tree / "etc/systemd/network/10-lab-host0.network"
        network.parent.mkdir(parents=True, exist_ok=True)
        addresses = "\n".join(f"Address={a}/{self.layout.prefixlen}" for a in self.node.addresses)
        # No gateway: nothing in the lab routes off the bridge. The provider's resolver is the lab DNS.
        network.write_text(
            f"[Match]\nName=host0\n\n[Network]\n{addresses}\nDNS={self.layout.host_address}\n"
            "LinkLocalAddressing=no\nIPv6AcceptRA=no\n"
        )
        wants = self.tree / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        link = wants / "systemd-networkd.service"
        if not link.exists():
            link.symlink_to("/lib/systemd/system/systemd-networkd.service")
        # The provider's network reaches PyPI; the lab's reaches its stand-in (the watcher's wheels).
        # Plain HTTP on the lab bridge; the install is hash-pinned (--require-hashes) all the same.
        (self.tree / "etc/pip.conf").write_text(
            f"[global]\nindex-url = {self.layout.pypi_index}\ntrusted-host = {self.layout.host_address}\n"
        )
        resolv = self.tree / "etc/resolv.conf"
        if resolv.is_symlink() or resolv.exists():
            resolv.unlink()
        resolv.write_text(f"nameserver {self.layout.host_address}\n")

    @property
    def host_veth(self) -> str | None:
        """nspawn's host side of --network-bridge: `vb-<machine>` when that fits in an interface
        name (15 characters: th-do, th-linode); nspawn hashes longer names (th-redirector)."""
        name = f"vb-{self.node.name}"
        return name if len(name) <= 15 else None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        # A container killed outright (the drills) can leave its veth behind for a while; nspawn
        # would refuse to boot it again ("File exists"). A long machine name's is hashed
        # (vb-th-redir<hash>), which `kill` cannot name: found by its prefix here.
        prefix = self.host_veth or f"vb-{self.node.name}"[:11]
        for name in os.listdir("/sys/class/net"):
            if name == prefix or (self.host_veth is None and name.startswith(prefix)):
                run(["ip", "link", "delete", name], check=False)
        cgroups = [root / "twinhost-lab" / self.node.name for root in CGROUP_ROOTS if root.is_dir()]
        enter = "; ".join(f"mkdir -p {c} && echo $$ > {c}/cgroup.procs" for c in cgroups)
        nspawn = [
            "systemd-nspawn",
            "--quiet",
            "--register=no",
            "--keep-unit",
            "--boot",
            f"--directory={self.tree}",
            f"--machine={self.node.name}",
            f"--hostname={self.node.name}",
            f"--network-bridge={self.layout.bridge}",
            "--resolv-conf=off",
            "--timezone=off",
            "--bind=/dev/fuse",
            "--bind=/dev/net/tun",
            "--console=read-only",
        ]
        env = {}
        if self.layout.debian >= 13:
            # trixie's systemd refuses to run cleanly on the hybrid v1 hierarchy (tainted
            # "cgroupsv1"): give it pure cgroup v2 in its own unified directory.
            env["SYSTEMD_NSPAWN_UNIFIED_HIERARCHY"] = "1"
        self.pid = start_background(["sh", "-c", f"{enter}; exec {shlex.join(nspawn)}"], self.log, env=env)
        wait_for(
            lambda: self.leader() is not None or not alive(self.pid),
            timeout=30,
            what=f"{self.node.name} to start",
        )
        if self.leader() is None:
            raise LabError(f"{self.node.name} did not boot: {self.log.read_text()[-1500:]}")

    def leader(self) -> int | None:
        """The container's PID 1 as the host sees it (the nspawn process's child)."""
        if not alive(self.pid):
            return None
        for task in Path(f"/proc/{self.pid}/task").glob("*/children"):
            for child in task.read_text().split():
                try:
                    if Path(f"/proc/{child}/comm").read_text().strip() in ("systemd", "init"):
                        return int(child)
                except OSError:
                    continue
        return None

    def exec(
        self,
        command: str | list[str],
        *,
        check: bool = True,
        timeout: float = 300,
        input: str | None = None,  # noqa: A002 - subprocess.run's own name
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside (all namespaces of PID 1), as root, with a login-like PATH."""
        leader = self.leader()
        if leader is None:
            raise LabError(f"{self.node.name} is not running")
        argv = ["bash", "-c", command] if isinstance(command, str) else command
        return run(
            [
                "nsenter",
                "-t",
                str(leader),
                "-a",
                "env",
                "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG=C.UTF-8",
                *argv,
            ],
            check=check,
            timeout=timeout,
            input=input,
        )

    def cloud_init_status(self) -> dict[str, object]:
        """`cloud-init status --format json` (22.4 and 25.1 both have it)."""
        result = self.exec(["cloud-init", "status", "--long", "--format", "json"], check=False, timeout=30)
        try:
            return dict(json.loads(result.stdout))
        except ValueError:
            return {"status": "unknown", "raw": result.stdout[-300:]}

    def stage(self) -> str:
        """Where cloud-init is now, for progress lines: the stage running, or done/error."""
        try:
            status = self.cloud_init_status()
        except LabError:
            return "not running"
        state = str(status.get("status", "unknown"))
        if state == "running":
            # 22.4 and 25.1: "detail": "Running in stage: modules-final"
            detail = str(status.get("detail") or "")
            stage = status.get("stage") or (
                detail.removeprefix("Running in stage: ") if detail.startswith("Running in stage: ") else ""
            )
            return f"running {stage}".strip()
        return state

    def failed_units(self) -> list[str]:
        result = self.exec(["systemctl", "list-units", "--failed", "--plain", "--no-legend"], check=False)
        return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]

    def kill(self) -> None:
        """Pull the plug (the failover drill): SIGKILL to nspawn and to every process in the
        container's cgroup at once, no shutdown, and its veth removed from the bridge."""
        for pid in {*lab_cgroup_pids(self.node.name), *([self.pid] if self.pid else [])}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        stop(self.pid, grace=5, sig=signal.SIGKILL)  # reaps nspawn
        deadline = time.monotonic() + 15
        while lab_cgroup_pids(self.node.name) and time.monotonic() < deadline:
            time.sleep(0.1)
        # The kernel may keep the dead container's network namespace (and its addresses, which
        # would still answer ARP and reset connections) a while: unplug the cable too.
        if self.host_veth:
            run(["ip", "link", "delete", self.host_veth], check=False)
        self.pid = None


def lab_cgroup_pids(container: str | None = None) -> set[int]:
    """Every process in the lab's own cgroups, or in one container's, sub-cgroups included."""
    pids: set[int] = set()
    for root in CGROUP_ROOTS:
        directory = root / "twinhost-lab" / (container or "")
        for procs in directory.glob("**/cgroup.procs"):
            try:
                pids |= {int(pid) for pid in procs.read_text().split()}
            except OSError:
                continue
    return pids


def kill_lab_cgroups(timeout: float = 15) -> list[int]:
    """SIGKILL whatever still runs in the lab's own cgroups (a container whose nspawn died
    leaves its PID 1 and everything under it there); returns the PIDs it found."""
    remaining = lab_cgroup_pids
    found = remaining()
    deadline = time.monotonic() + timeout
    pids = found
    while pids and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        pids = remaining()
    if pids:
        raise LabError(f"processes in the lab's cgroups did not end: {sorted(pids)}")
    return sorted(found)


def remove_lab_cgroups() -> None:
    for root in CGROUP_ROOTS:
        directory = root / "twinhost-lab"
        for sub in sorted(directory.glob("**/"), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                sub.rmdir()
