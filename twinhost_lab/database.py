"""The database in the lab (a site stack with `database: mariadb`): checks and two drills.

Checks (`twinhost lab check -k database`): both members in one synced cluster, with the witness's
garbd as its third member when the platform has a witness (size 3); a row written on each node
read on the other; /health over HTTPS reporting the member's wsrep state.

The partition drill (`twinhost lab drill --database`): a writer on each node inserts rows with
unique ids through the app's own credentials (DB_OPTION_FILE), recording every acknowledged
insert with its time; node A's mesh is cut (nftables on its tinc interface, both directions: it
reaches neither node B nor the witness) for `cut_seconds`, then healed; once both members are
synced again, every acknowledged id must be on both nodes. Node B and the witness's garbd are 2
of 3 votes: B keeps a primary component and keeps writing; A refuses writes until the heal (with
two members and no witness, both sides refuse). The drill reports the refused inserts and the
seconds of write unavailability per side.

The kill drill (`twinhost lab drill --database-kill`): the same writers; node A is killed (no
shutdown) mid-write, booted again after `down_seconds`, and rejoins by itself (IST); once both
are synced, every insert acknowledged on either node, before or after the kill, must be on both.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from infra.bootstrap.database import OPTION_FILE, STAGED_CONFIG
from twinhost_lab.host import LabError, run

if TYPE_CHECKING:
    from twinhost_lab.checks import CheckResult, RunningLab

NFT_TABLE = "twinhost_lab_partition"
TABLE = "twinhost_lab_drill"
SQL = ["mariadb", f"--defaults-extra-file={OPTION_FILE}", "-N", "-B"]
WSREP = ("wsrep_ready", "wsrep_local_state_comment", "wsrep_cluster_status", "wsrep_cluster_size")

# The writer, run on a node: one INSERT per attempt (each its own connection, as a web request
# would), a line per attempt in the log: "<ms since epoch> <id> ok|refused". Ids are unique
# per node and attempt.
WRITER = r"""
end=$(( $(date +%s) + {seconds} )); n=0
while [ "$(date +%s)" -lt "$end" ]; do
    n=$((n + 1)); id="{node}-$n"
    if timeout 10 {sql} -e "INSERT INTO {table} (id, node) VALUES ('$id', '{node}')" 2>/dev/null; then
        echo "$(date +%s%3N) $id ok"
    else
        echo "$(date +%s%3N) $id refused"
    fi
    sleep {pause}
done > {log}
"""


def has_database(lab: RunningLab) -> bool:
    box = lab.boxes[lab.primary]
    return box.exec(["test", "-e", "/etc/twinhost/db.env"], check=False).returncode == 0


def wsrep(lab: RunningLab, role: str) -> dict[str, str]:
    names = ",".join(f"'{n}'" for n in WSREP)
    result = lab.boxes[role].exec(
        [*SQL, "-e", f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})"], check=False, timeout=30
    )
    return dict(line.split("\t", 1) for line in result.stdout.splitlines() if "\t" in line)


def has_witness(lab: RunningLab) -> bool:
    """Whether the nodes name the witness's garbd as a member (the platform has a witness)."""
    box = lab.boxes[lab.primary]
    config = box.exec(["cat", STAGED_CONFIG], check=False).stdout
    return any(
        line.startswith("wsrep_cluster_address") and line.count(",") == 2 for line in config.splitlines()
    )


def cluster_size(lab: RunningLab) -> int:
    """The members a whole cluster has: the two nodes, and the witness's garbd when there is one."""
    return 3 if has_witness(lab) else 2


def wait_synced(lab: RunningLab, timeout: float = 300) -> float:
    """Seconds until both members report a primary cluster of every member (with the witness's
    garbd: 3), synced."""
    started = time.monotonic()
    size = str(cluster_size(lab))
    states: list[dict[str, str]] = []
    while time.monotonic() - started < timeout:
        states = [wsrep(lab, role) for role in lab.site_roles]
        if all(
            s.get("wsrep_ready") == "ON"
            and s.get("wsrep_local_state_comment") == "Synced"
            and s.get("wsrep_cluster_size") == size
            for s in states
        ):
            return time.monotonic() - started
        time.sleep(1)
    raise LabError(f"the database members did not sync within {timeout:.0f} s: {states}")


def sql(lab: RunningLab, role: str, statement: str) -> str:
    """`statement` on `role`'s member with the app's credentials; its rows, tab-separated."""
    return lab.boxes[role].exec([*SQL, "-e", statement], timeout=60).stdout


def ensure_table(lab: RunningLab) -> None:
    sql(
        lab,
        lab.primary,
        f"CREATE TABLE IF NOT EXISTS {TABLE} (id VARCHAR(64) PRIMARY KEY, node VARCHAR(32) NOT NULL, "
        "at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))",
    )


# -- checks ---------------------------------------------------------------------------------------


def cluster_synced(lab: RunningLab) -> CheckResult:
    """Both nodes in one primary, synced cluster; with a witness, its garbd is the third member."""
    from twinhost_lab.checks import CheckResult

    size = str(cluster_size(lab))
    states = {role: wsrep(lab, role) for role in lab.site_roles}
    ok = all(
        s.get("wsrep_cluster_size") == size
        and s.get("wsrep_ready") == "ON"
        and s.get("wsrep_local_state_comment") == "Synced"
        and s.get("wsrep_cluster_status") == "Primary"
        for s in states.values()
    )
    figure = ", ".join(
        f"{role}: size {s.get('wsrep_cluster_size', '?')} {s.get('wsrep_cluster_status', '?')} "
        f"{s.get('wsrep_local_state_comment', '?')}"
        for role, s in states.items()
    )
    name = (
        "galera cluster of two nodes and the witness's garbd, synced"
        if size == "3"
        else "galera cluster of two, synced"
    )
    return CheckResult(name, ok, figure)


def replicates_both_ways(lab: RunningLab) -> CheckResult:
    from twinhost_lab.checks import CheckResult

    ensure_table(lab)
    token, figures, ok = f"{time.time_ns()}", [], True
    for writer, reader in (("digitalocean", "linode"), ("linode", "digitalocean")):
        row = f"check-{writer}-{token}"
        sql(lab, writer, f"INSERT INTO {TABLE} (id, node) VALUES ('{row}', '{writer}')")
        started = time.monotonic()
        seen = ""
        while time.monotonic() - started < 20 and not seen:
            seen = sql(lab, reader, f"SELECT id FROM {TABLE} WHERE id = '{row}'").strip()
        ok &= seen == row
        figures.append(
            f"{writer}->{reader} {'read' if seen else 'missing'} in {time.monotonic() - started:.2f} s"
        )
    return CheckResult("database row replicates both ways", ok, ", ".join(figures))


def health_reports_wsrep(lab: RunningLab, role: str) -> CheckResult:
    from twinhost_lab.checks import CheckResult

    www = lab.site["www"][0]
    result = lab.curl(f"https://{www}/health", www, lab.address(role))
    try:
        body = json.loads(result.stdout)
    except json.JSONDecodeError:
        body = {}
    db = body.get("database", {}) if isinstance(body, dict) else {}
    ok = db.get("wsrep_ready") == "ON" and db.get("wsrep_local_state_comment") == "Synced"
    return CheckResult(
        f"/health reports wsrep: {lab.boxes[role].node.name}",
        ok,
        json.dumps(db, sort_keys=True)[:200] if db else f"no database in /health: {result.stdout[:150]}",
    )


# -- the partition drill ---------------------------------------------------------------------------


@dataclass
class SideFigures:
    node: str
    attempts: int = 0
    acknowledged: int = 0
    refused: int = 0
    unavailable_seconds: float = 0.0  # from the first refused insert to the first success after it
    missing_after_heal: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.node}: {self.attempts} inserts, {self.acknowledged} acknowledged, {self.refused} refused, "
            f"{self.unavailable_seconds:.1f} s without writes, {len(self.missing_after_heal)} acknowledged "
            "rows missing after the heal"
        )


@dataclass
class PartitionFigures:
    cut_seconds: float
    synced_after_heal_seconds: float
    sides: list[SideFigures]

    @property
    def lost(self) -> int:
        return sum(len(s.missing_after_heal) for s in self.sides)

    def lines(self) -> list[str]:
        return [
            f"database partition: mesh cut {self.cut_seconds:.0f} s, both synced "
            f"{self.synced_after_heal_seconds:.1f} s after the heal, {self.lost} acknowledged rows lost",
            *(f"  {side.line()}" for side in self.sides),
        ]


def _cut(lab: RunningLab, role: str) -> list[str]:
    leader = lab.boxes[role].leader()
    if leader is None:
        raise LabError(f"{lab.boxes[role].node.name} is not running")
    nft = ["nsenter", "-t", str(leader), "-n", "nft"]
    rule = (
        f"table inet {NFT_TABLE} {{\n"
        ' chain input { type filter hook input priority -20; policy accept; iifname "tinc0" drop; }\n'
        ' chain output { type filter hook output priority -20; policy accept; oifname "tinc0" drop; }\n'
        "}\n"
    )
    run([*nft, "-f", "-"], input=rule)
    return nft


def _side(node: str, lines: list[str]) -> SideFigures:
    """One writer's figures from its log lines ("<ms> <id> ok|refused")."""
    figures = SideFigures(node)
    refused_at: int | None = None
    last = 0
    for line in lines:
        at, _id, outcome = line.split()
        last = int(at)
        figures.attempts += 1
        if outcome == "ok":
            figures.acknowledged += 1
            if refused_at is not None:
                figures.unavailable_seconds += (int(at) - refused_at) / 1000
                refused_at = None
        else:
            figures.refused += 1
            refused_at = refused_at if refused_at is not None else int(at)
    if refused_at is not None:  # refused until the writer stopped
        figures.unavailable_seconds += (last - refused_at) / 1000
    return figures


def start_writers(lab: RunningLab, seconds: int) -> tuple[dict[str, str], list[subprocess.Popen[bytes]]]:
    """A writer on each node for `seconds`; returns their log paths (on each node) and processes."""
    token = f"{time.time_ns() % 10**9}"
    logs = {role: f"/root/twinhost-lab-drill-{token}.log" for role in lab.site_roles}
    writers = []
    for role in lab.site_roles:
        node = f"{role[:2]}{token}"
        script = WRITER.format(
            seconds=seconds, node=node, sql=" ".join(SQL), table=TABLE, pause=0.2, log=logs[role]
        )
        box = lab.boxes[role]
        leader = box.leader()
        if leader is None:
            raise LabError(f"{box.node.name} is not running")
        path = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
        writers.append(
            subprocess.Popen(["nsenter", "-t", str(leader), "-a", "env", "-i", path, "bash", "-c", script])
        )
    return logs, writers


def count_rows(lab: RunningLab, logs: dict[str, str]) -> list[SideFigures]:
    """Each writer's figures, and the acknowledged rows missing on either node."""
    sides = []
    present = {role: set(sql(lab, role, f"SELECT id FROM {TABLE}").split()) for role in lab.site_roles}
    for role in lab.site_roles:
        lines = lab.boxes[role].exec(["cat", logs[role]], check=False).stdout.splitlines()
        lines = [line for line in lines if len(line.split()) == 3]  # a line cut by a kill is no record
        side = _side(lab.boxes[role].node.name, lines)
        acknowledged = {line.split()[1] for line in lines if line.endswith(" ok")}
        side.missing_after_heal = sorted(
            row for row in acknowledged if any(row not in ids for ids in present.values())
        )
        sides.append(side)
    return sides


def partition(
    lab: RunningLab,
    cut_seconds: float = 30,
    before: float = 5,
    after: float = 40,
    log: Callable[[str], None] = print,
) -> PartitionFigures:
    """Cut node A's mesh for `cut_seconds` while a writer runs on each node; count acknowledged
    rows missing after the heal on either node."""
    wait_synced(lab)
    ensure_table(lab)
    seconds = int(before + cut_seconds + after)
    logs, writers = start_writers(lab, seconds)
    time.sleep(before)
    log(f"cutting node A's mesh for {cut_seconds:.0f} s (from node B and from the witness)")
    nft = _cut(lab, lab.primary)
    cut_started = time.monotonic()
    try:
        time.sleep(cut_seconds)
    finally:
        run([*nft, "delete", "table", "inet", NFT_TABLE], check=False)
    cut = time.monotonic() - cut_started
    log("mesh healed")
    synced = wait_synced(lab)  # the writers go on meanwhile: polled from the heal
    for writer in writers:
        writer.wait(timeout=seconds + 120)
    figures = PartitionFigures(cut, synced, count_rows(lab, logs))
    for line in figures.lines():
        log(line)
    return figures


# -- the kill drill ---------------------------------------------------------------------------------


@dataclass
class KillFigures:
    down_seconds: float  # node A off
    rejoined_seconds: float  # from A's boot to both members synced in the whole cluster again
    sides: list[SideFigures]

    @property
    def lost(self) -> int:
        return sum(len(s.missing_after_heal) for s in self.sides)

    def lines(self) -> list[str]:
        return [
            f"database kill: node A off {self.down_seconds:.0f} s, synced again {self.rejoined_seconds:.1f} s "
            f"after its boot, {self.lost} acknowledged rows lost",
            *(f"  {side.line()}" for side in self.sides),
        ]


def kill(
    lab: RunningLab,
    down_seconds: float = 30,
    before: float = 5,
    after: float = 20,
    log: Callable[[str], None] = print,
) -> KillFigures:
    """Kill node A (no shutdown) while a writer runs on each node, boot it again after
    `down_seconds`, wait until it rejoined; count acknowledged rows missing on either node."""
    from twinhost_lab import lab as lab_module  # deliberate: the container handling, for this drill only

    wait_synced(lab)
    ensure_table(lab)
    seconds = int(before + down_seconds + after)
    logs, writers = start_writers(lab, seconds)
    time.sleep(before)
    box = lab.boxes[lab.primary]
    log(f"killing {box.node.name} mid-write")
    box.kill()
    state = lab.state
    state.containers[box.node.name] = 0
    lab_module.save_state(lab.layout, state)
    try:
        time.sleep(down_seconds)
    finally:
        log(f"booting {box.node.name} again")
        lab_module.boot_again(lab.layout, state, box)
    booted = time.monotonic()
    for writer in writers:
        writer.wait(timeout=seconds + 120)
    wait_synced(lab, timeout=600)
    rejoined = time.monotonic() - booted
    figures = KillFigures(down_seconds, rejoined, count_rows(lab, logs))
    for line in figures.lines():
        log(line)
    return figures
