"""The shared volume's write probe (twinhost-health-probe), run for real with a fake mount."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.bootstrap.glusterfs import HEALTH_FLAG
from tests.bootstrap.bootstrap_nodes import rendered_files
from tests.bootstrap.bootstrap_specs import make_spec
from tests.conftest import REPO

PROBE = "/usr/local/sbin/twinhost-health-probe"


@dataclass
class Probe:
    root: Path
    process: subprocess.Popen[str]

    @property
    def flag(self) -> Path:
        return self.root / HEALTH_FLAG.lstrip("/")

    def wait_for(self, present: bool, seconds: float = 15) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.flag.exists() == present:
                return True
            time.sleep(0.2)
        return False


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[Probe]:
    """The rendered probe with its paths under tmp_path; `findmnt` answers "mounted" while
    tmp_path/mounted exists; `dd` fails while tmp_path/fail exists, hangs while tmp_path/hang does."""
    files = rendered_files(make_spec())
    env_file = tmp_path / "gluster.env"
    env_file.write_text(
        "".join(
            line.replace("=/", f"={tmp_path}/", 1)
            if line.split("=")[0] in ("SHARED_DIR", "HEALTH_FLAG")
            else line
            for line in files["/etc/twinhost/gluster.env"].content.splitlines(keepends=True)
        )
    )
    (tmp_path / "srv/shared").mkdir(parents=True)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "findmnt").write_text(f"#!/bin/sh\n[ -e {tmp_path}/mounted ]\n")
    (fake / "dd").write_text(
        f"#!/bin/sh\nwhile [ -e {tmp_path}/hang ]; do sleep 0.2; done\n"
        f'[ -e {tmp_path}/fail ] && exit 1\nexec /bin/dd "$@"\n'
    )
    # The GlusterFS client's process: alive while tmp_path/client exists; a remount is recorded.
    (fake / "pgrep").write_text(f"#!/bin/sh\n[ -e {tmp_path}/client ]\n")
    for tool in ("umount", "systemctl"):
        (fake / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >>{tmp_path}/remounts\n')
    # twinhost-galera's stand-in: records fence/unfence (called only when db.env exists).
    (fake / "twinhost-galera").write_text(f'#!/bin/sh\necho "$1" >>{tmp_path}/galera-calls\n')
    for path in fake.iterdir():
        path.chmod(0o755)
    script = tmp_path / "probe"
    script.write_text(files[PROBE].content)
    script.chmod(0o755)
    process = subprocess.Popen(
        ["/bin/sh", str(script)],
        env={
            "PATH": f"{fake}:/usr/bin:/bin",
            "TWINHOST_GLUSTER_ENV": str(env_file),
            "PROBE_INTERVAL": "0.2",
            "PROBE_TIMEOUT": "2",
            "TWINHOST_DB_ENV": str(tmp_path / "db.env"),
            "TWINHOST_GALERA": str(fake / "twinhost-galera"),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    (tmp_path / "client").touch()
    try:
        yield Probe(tmp_path, process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_health_fails_while_writes_to_the_shared_volume_fail(probe: Probe) -> None:
    (probe.root / "mounted").touch()
    time.sleep(1)
    assert not probe.flag.exists()
    assert (probe.root / "srv/shared/.twinhost-health").is_dir()  # it did write
    (probe.root / "fail").touch()
    assert probe.wait_for(True), "a failing write did not fail /health"
    (probe.root / "fail").unlink()
    assert probe.wait_for(False), "a good write did not clear the failure"


def test_health_fails_while_a_write_hangs(probe: Probe) -> None:
    """A GlusterFS client blocks up to its ping-timeout: a write still pending fails /health."""
    (probe.root / "mounted").touch()
    time.sleep(1)
    (probe.root / "hang").touch()
    assert probe.wait_for(True, seconds=10), "a hanging write did not fail /health"
    (probe.root / "hang").unlink()
    assert probe.wait_for(False), "the write that finished did not clear the failure"


def test_a_volume_never_mounted_since_boot_is_not_probed_but_a_lost_mount_fails(probe: Probe) -> None:
    time.sleep(1)
    assert not probe.flag.exists()
    (probe.root / "mounted").touch()
    time.sleep(1)
    (probe.root / "mounted").unlink()
    assert probe.wait_for(True), "an unmounted volume did not fail /health"


def test_the_probe_writes_through_a_file_it_keeps_open(probe: Probe) -> None:
    """A lookup on a volume that lost a brick fails without asking the thin-arbiter; only a write
    does. So the probe keeps its file open: moved away, the same file keeps being written and
    no new one appears at the path."""
    (probe.root / "mounted").touch()
    health = probe.root / "srv/shared/.twinhost-health"
    deadline = time.monotonic() + 5
    while not any(health.glob("*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    (written,) = list(health.iterdir())
    moved = probe.root / "srv/moved"
    health.rename(moved)
    size = (moved / written.name).stat().st_size
    time.sleep(1.5)
    assert (moved / written.name).stat().st_size > size, "the open file is no longer written"
    assert not health.exists(), "the probe reopened its file by path"
    assert not probe.flag.exists()


def test_a_crashed_glusterfs_client_is_mounted_again(probe: Probe) -> None:
    """glusterfs 10.3's client segfaulted in the lab when a partition cut it off from the
    thin-arbiter: the mount stays listed and fails every access until it is mounted again."""
    (probe.root / "mounted").touch()
    time.sleep(1)
    (probe.root / "fail").touch()
    assert probe.wait_for(True)
    time.sleep(1)
    assert not (probe.root / "remounts").exists(), "remounted a client that is still running"
    (probe.root / "client").unlink()
    deadline = time.monotonic() + 5
    while not (probe.root / "remounts").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    remounts = (probe.root / "remounts").read_text()
    assert f"umount -l {probe.root}/srv/shared" in remounts
    assert "systemctl start srv-shared.mount" in remounts


def galera_calls(probe: Probe) -> list[str]:
    calls = probe.root / "galera-calls"
    return calls.read_text().split() if calls.exists() else []


def test_with_a_database_the_side_whose_writes_fail_fences_its_galera_member(probe: Probe) -> None:
    """The thin-arbiter's loser also leaves the Galera cluster (twinhost-galera fence), so the
    witness's garbd joins the side that keeps the files; it rejoins once writes work again."""
    (probe.root / "db.env").write_text("GALERA_PORT=4567\n")
    (probe.root / "mounted").touch()
    time.sleep(1)
    assert galera_calls(probe) == []
    (probe.root / "fail").touch()
    assert probe.wait_for(True)
    assert galera_calls(probe)[:1] == ["fence"]
    (probe.root / "fail").unlink()
    assert probe.wait_for(False)
    time.sleep(0.5)
    calls = galera_calls(probe)
    assert set(calls) == {"fence", "unfence"} and calls[-1] == "unfence", calls
    assert calls.count("unfence") == 1, calls  # once, when the failure clears


def test_without_a_database_nothing_is_fenced(probe: Probe) -> None:
    (probe.root / "mounted").touch()
    (probe.root / "fail").touch()
    assert probe.wait_for(True)
    (probe.root / "fail").unlink()
    assert probe.wait_for(False)
    assert galera_calls(probe) == []


def test_galera_picks_a_side_only_after_the_thin_arbiter_and_the_fence() -> None:
    """In a cut between the nodes alone, garbd sees both and Galera waits evs.inactive_timeout
    before it picks a side; the thin-arbiter picks one at the ping-timeout and the probe fences
    the loser at its next failed write. Galera must wait longer than both."""
    probe = (REPO / "cloudinit/site/usr/local/sbin/twinhost-health-probe").read_text()
    volume = (REPO / "cloudinit/site/usr/local/sbin/twinhost-gluster-volume").read_text()
    galera = (REPO / "cloudinit/site/etc/twinhost/db/galera.cnf.j2").read_text()
    interval = int(re.search(r"PROBE_INTERVAL=\$\{PROBE_INTERVAL:-(\d+)\}", probe).group(1))
    ping = int(re.search(r"network\.ping-timeout (\d+)", volume).group(1))
    inactive = int(re.search(r"evs\.inactive_timeout=PT(\d+)S", galera).group(1))
    assert inactive >= ping + interval + 2, (inactive, ping, interval)


def test_a_survivor_waiting_out_the_ping_timeout_is_not_flagged() -> None:
    """When the peer dies, the survivor's writes wait the volume's ping-timeout, up to twice,
    before the thin-arbiter lets it write on (lab: 10.4-10.6 s, and 14.4-19.4 s in the data
    drill's peer-killed fault); a probe timeout below it flagged the survivor too, and the
    failover moved the record to a node answering 503."""
    probe = (REPO / "cloudinit/site/usr/local/sbin/twinhost-health-probe").read_text()
    volume = (REPO / "cloudinit/site/usr/local/sbin/twinhost-gluster-volume").read_text()
    timeout = int(re.search(r"PROBE_TIMEOUT=\$\{PROBE_TIMEOUT:-(\d+)\}", probe).group(1))
    ping = int(re.search(r"network\.ping-timeout (\d+)", volume).group(1))
    assert timeout >= 2 * ping + 5, (timeout, ping)
