"""The replace drill (issue 18 items 3 and 4): node B is lost with its disk, and a new node B
booted from the same user data rejoins the survivor's volume (and database) with no hand surgery.

In order: a known tree written through node A (nested texts, a binary; with a database, a table of
rows); node B's container killed and its tree (its disk) deleted; while B is gone, files added,
changed and deleted through A (and rows added); a fresh container unpacked from the root
filesystem archive with B's user data from the plan (what `pulumi up --replace` boots); then,
until each holds or the timeout: B healthy over TLS (both nodes), B's brick holding every file of
A's mount byte for byte (the self-heal done), no heal pending, and B's database rows those of A.
Figures: seconds to cloud-init done, to healthy, to healed; files and bytes on B's brick.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infra.bootstrap.glusterfs import BRICK_DIR, SHARED_DIR, volume_name
from twinhost_lab import database
from twinhost_lab import lab as lab_module
from twinhost_lab.checks import RunningLab
from twinhost_lab.host import LabError
from twinhost_lab.rootfs import archive_path

DRILL_DIR = "replace-drill"  # under the shared volume
TABLE = "twinhost_lab_replace"
ROWS_BEFORE = 100
ROWS_DURING = 50
BIG_MIB = 4
BRICK = BRICK_DIR
SHARED = SHARED_DIR

# Every file under ROOT but the nodes' own state (.twinhost/, .twinhost-health/ rewritten every
# 2 s) and, on a brick, gluster's own (.glusterfs/, .trashcan/): path -> [sha256, size].
TREE = r"""
import hashlib, json, os, sys
root = sys.argv[1]
skip = {".twinhost", ".twinhost-health", ".glusterfs", ".trashcan"}
out = {}
for where, dirs, files in os.walk(root):
    if where == root:
        dirs[:] = [d for d in dirs if d not in skip]
    for name in files:
        path = os.path.join(where, name)
        with open(path, "rb") as f:
            out[os.path.relpath(path, root)] = [hashlib.sha256(f.read()).hexdigest(), os.path.getsize(path)]
print(json.dumps(out, sort_keys=True))
"""

WRITE_BEFORE = f"""
set -e
cd {SHARED}
mkdir -p {DRILL_DIR}/before/docs/letters {DRILL_DIR}/before/nested/deep/er
for i in $(seq 1 40); do echo "letter $i {{token}}" > {DRILL_DIR}/before/docs/letters/letter-$i.txt; done
for i in 1 2 3 4 5; do head -c 30000 /dev/urandom | base64 > {DRILL_DIR}/before/nested/deep/er/part-$i.txt; done
head -c {BIG_MIB * 2**20} /dev/urandom > {DRILL_DIR}/before/archive.bin
ln -sf docs/letters/letter-1.txt {DRILL_DIR}/before/first-letter
sync
"""

# Through A while B is gone: new files and a folder, one changed in place, one deleted.
WRITE_DURING = f"""
set -e
cd {SHARED}
mkdir -p {DRILL_DIR}/during/sub
for i in $(seq 1 20); do head -c 20000 /dev/urandom > {DRILL_DIR}/during/sub/new-$i.bin; done
echo "changed while B was gone {{token}}" > {DRILL_DIR}/before/docs/letters/letter-2.txt
dd if=/dev/urandom of={DRILL_DIR}/before/archive.bin bs=4096 count=1 seek=7 conv=notrunc status=none
rm -f {DRILL_DIR}/before/docs/letters/letter-3.txt
sync
"""


@dataclass
class ReplaceResult:
    role: str
    seconds: dict[str, float] = field(default_factory=dict)  # from the new container's start
    problems: list[str] = field(default_factory=list)
    survivor_tree: dict[str, list[Any]] = field(default_factory=dict)  # A's mount, at the end
    brick_tree: dict[str, list[Any]] = field(default_factory=dict)  # B's new brick, at the end
    drill_tree: dict[str, list[Any]] = field(default_factory=dict)  # the drill's files before the rebuild
    rows: dict[str, str] = field(default_factory=dict)
    identity: dict[str, str] = field(default_factory=dict)  # glusterd UUID of B: before, after
    journal: str = ""
    database: bool = False

    @property
    def files_healed(self) -> int:
        return len(self.brick_tree)

    @property
    def bytes_healed(self) -> int:
        return sum(size for _, size in self.brick_tree.values())

    def lines(self) -> list[str]:
        s = self.seconds
        out = [
            f"REPLACE {self.role}: new node cloud-init done {s.get('cloud_init', -1):.0f} s, "
            f"healthy over TLS {s.get('healthy', -1):.0f} s, brick healed {s.get('healed', -1):.0f} s "
            "after its container started",
            f"REPLACE {self.role}: {self.files_healed} files, {self.bytes_healed / 2**20:.1f} MiB healed onto "
            f"the new brick; glusterd identity {self.identity.get('before', '?')[:8]} -> "
            f"{self.identity.get('after', '?')[:8]}; the survivor wrote again "
            f"{s.get('survivor_writes', -1):.0f} s after the loss",
        ]
        if self.database:
            out.append(
                f"REPLACE {self.role}: database synced {s.get('db_synced', -1):.0f} s, rows equal: "
                f"{self.rows.get('after survivor') == self.rows.get('after replaced')}"
            )
        out += [f"REPLACE problem: {p}" for p in self.problems]
        return out


def tree(lab: RunningLab, role: str, root: str) -> dict[str, list[Any]]:
    done = lab.boxes[role].exec(["python3", "-c", TREE, root], timeout=180)
    return dict(json.loads(done.stdout))


def _glusterd_uuid(lab: RunningLab, role: str) -> str:
    done = lab.boxes[role].exec(["sed", "-n", "s/^UUID=//p", "/var/lib/glusterd/glusterd.info"], check=False)
    return done.stdout.strip()


def _pending_heals(lab: RunningLab, role: str) -> int | None:
    done = lab.boxes[role].exec(
        ["gluster", "volume", "heal", volume_name(str(lab.site["site"])), "statistics", "heal-count"],
        check=False,
        timeout=60,
    )
    counts = [
        line.split(":")[1].strip()
        for line in done.stdout.splitlines()
        if line.startswith("Number of entries:")
    ]
    if len(counts) != 2 or not all(c.isdigit() for c in counts):
        return None
    return sum(int(c) for c in counts)


def rebuild(lab: RunningLab, role: str) -> float:
    """Pull B's plug, delete its disk, boot a fresh container from its user data in the plan.
    Returns the monotonic time the new container started."""
    layout = lab.layout
    box = lab.boxes[role]
    if box.leader() is not None:
        box.kill()
    user_data = (layout.run_dir / "user-data" / f"{role}.yaml").read_text()
    box.prepare(archive_path(layout), user_data)  # unpack() deletes the old tree first
    started = time.monotonic()
    box.start()
    state = lab_module.load_state(layout)
    if state is not None:
        state.containers[box.node.name] = box.pid or 0
        lab_module.save_state(layout, state)
    return started


def drill(
    lab: RunningLab, role: str | None = None, timeout: float = 900, log: Callable[[str], None] = print
) -> ReplaceResult:
    role = role or lab.standby
    survivor = next(r for r in lab.site_roles if r != role)
    result = ReplaceResult(role=role, database=database.has_database(lab))
    token = f"replace-{secrets.token_hex(6)}"
    a = lab.boxes[survivor]

    # 1. what must survive
    a.exec(WRITE_BEFORE.replace("{token}", token), timeout=120)
    if result.database:
        database.wait_synced(lab)
        database.sql(lab, survivor, f"DROP TABLE IF EXISTS {TABLE}")
        database.sql(
            lab, survivor, f"CREATE TABLE {TABLE} (id INT PRIMARY KEY, payload VARCHAR(64) NOT NULL)"
        )
        values = ", ".join(f"({i}, '{secrets.token_hex(16)}')" for i in range(1, ROWS_BEFORE + 1))
        database.sql(lab, survivor, f"INSERT INTO {TABLE} (id, payload) VALUES {values}")
    result.identity["before"] = _glusterd_uuid(lab, role)

    # 2. B lost with its disk; A goes on writing
    lab.boxes[role].kill()
    log(f"replace: {role} killed; writing through {survivor} while it is gone")
    # The survivor's FUSE client may fail its first access after the peer's death (glusterfs 10.3;
    # the health probe mounts a crashed client again: docs/bootstrap.md): retry until it writes.
    lost_at = time.monotonic()
    while True:
        done = a.exec(WRITE_DURING.replace("{token}", token), timeout=180, check=False)
        if done.returncode == 0:
            break
        if time.monotonic() - lost_at > 180:
            raise LabError(
                f"{survivor} could not write for 180 s after {role} was lost: {done.stderr[-500:]}"
            )
        time.sleep(3)
    result.seconds["survivor_writes"] = time.monotonic() - lost_at
    if result.database:
        values = ", ".join(
            f"({i}, '{secrets.token_hex(16)}')" for i in range(ROWS_BEFORE + 1, ROWS_BEFORE + ROWS_DURING + 1)
        )
        database.sql(lab, survivor, f"INSERT INTO {TABLE} (id, payload) VALUES {values}")
    result.drill_tree = {
        p: v for p, v in tree(lab, survivor, SHARED).items() if p.startswith(f"{DRILL_DIR}/")
    }

    # 3. a new B from the same user data
    started = rebuild(lab, role)
    log(f"replace: a new {role} booted from its user data; waiting for it to rejoin and heal")
    state = lab_module.load_state(lab.layout)
    assert state is not None
    b = lab.boxes[role]
    while time.monotonic() - started < timeout:
        elapsed = time.monotonic() - started
        s = result.seconds
        if "cloud_init" not in s and b.stage() in ("done", "degraded done", "error"):
            s["cloud_init"] = elapsed
        if "healthy" not in s and lab_module.healthy_over_tls(lab.layout, state):
            s["healthy"] = elapsed
        if "healed" not in s and "cloud_init" in s and _pending_heals(lab, survivor) == 0:
            bricks = {p: v for p, v in tree(lab, role, BRICK).items() if p.startswith(f"{DRILL_DIR}/")}
            if bricks == result.drill_tree:
                s["healed"] = time.monotonic() - started
        if result.database and "db_synced" not in s and "cloud_init" in s:
            try:
                database.wait_synced(lab, timeout=1)
                s["db_synced"] = time.monotonic() - started
            except LabError:
                pass
        if all(k in s for k in ("cloud_init", "healthy", "healed")) and (
            not result.database or "db_synced" in s
        ):
            break
        time.sleep(3)
    for what in ("cloud_init", "healthy", "healed", *(("db_synced",) if result.database else ())):
        if what not in result.seconds:
            result.problems.append(f"not {what.replace('_', ' ')} within {timeout:.0f} s")

    # 4. the record
    result.identity["after"] = _glusterd_uuid(lab, role)
    result.journal = b.exec(
        ["journalctl", "-u", "twinhost-gluster-volume", "--no-pager", "-o", "cat"], check=False
    ).stdout
    result.survivor_tree = tree(lab, survivor, SHARED)
    result.brick_tree = tree(lab, role, BRICK)
    if result.database:
        for who, where in (("survivor", survivor), ("replaced", role)):
            result.rows[f"after {who}"] = database.sql(
                lab, where, f"SELECT id, payload FROM {TABLE} ORDER BY id"
            )
    for line in result.lines():
        log(line)
    return result
