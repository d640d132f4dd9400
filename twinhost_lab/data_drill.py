"""The data drill (`twinhost lab drill --data`), files half: what the shared volume keeps.

Both site nodes run a writer at once (a small Python program inside each container) that writes
numbered files to the shared volume (`/srv/shared/drill/<token>/<node>-<n>`), fsyncs and closes
each, and records every write: acknowledged (fsync and close returned) or refused (the errno),
and how long it took. Two faults:

1. partition: the private link between node A and node B is cut (an nftables rule in node A's
   network namespace drops everything between the two nodes' public addresses; both still reach
   the witness), for `seconds`, while both write; then healed: tinc reconnects, the volume is
   healed (`gluster volume heal`, until no entry is pending).
2. witness lost: the redirector (the witness: tinc member, thin-arbiter) is killed, both nodes
   write for `seconds`; then it boots again.
3. peer killed: node A is powered off a few seconds into the writes and stays off for the rest of
   `seconds`; node B must go on writing (its writes wait out the volume's 10 s ping-timeout, then
   the thin-arbiter lets it mark A bad); then A boots, rejoins and is healed.

With a database (`database: mariadb`), the partition also runs the database drill's row writers
(twinhost_lab.database: an INSERT per attempt on each node) for the same time: the cut between
the nodes alone is where the files' third vote (the thin-arbiter) and the database's (garbd) must
pick the same side, which the health probe's fence ensures (docs/database.md).

Afterwards every acknowledged file is read back on both nodes: one missing there, or with other
content, is an acknowledged write lost. Per side: writes acknowledged, refused, and the seconds of
write unavailability (each refused write, or one that took over 1 s, counts its own duration plus
the pause before the next). The target is 0 lost; a refused write is the price of the partition
(the side the thin-arbiter did not side with), not a loss.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from infra.bootstrap.glusterfs import SHARED_DIR, volume_name
from twinhost_lab import database
from twinhost_lab import lab as lab_module
from twinhost_lab.checks import RunningLab
from twinhost_lab.containers import Container
from twinhost_lab.host import LabError, run, wait_for
from twinhost_lab.layout import Layout

NFT_TABLE = "twinhost_partition"
SLOW_WRITE_S = 1.0
WRITE_INTERVAL_S = 0.2
HEAL_TIMEOUT_S = 300.0

# Runs inside a node with Debian's python3: argv = directory, node, seconds, interval.
WRITER = r"""
import json, os, sys, time
base, node, seconds, interval = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
end, n = time.time() + seconds, 0
while time.time() < end:
    n += 1
    ident, start, error = f"{node}-{n}", time.time(), None
    fd = None
    try:
        fd = os.open(os.path.join(base, ident), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, ident.encode())
        os.fsync(fd)
    except OSError as exc:
        error = exc.strerror or str(exc)
    finally:
        if fd is not None:
            try:
                os.close(fd)
            except OSError as exc:
                error = error or exc.strerror or str(exc)
    print(json.dumps({"id": ident, "ok": error is None, "t": start, "d": round(time.time() - start, 3),
                      "e": error}), flush=True)
    time.sleep(interval)
"""

# Runs inside a node: argv = directory; stdin = the ids; prints the ids not there as written.
CHECKER = r"""
import os, sys
base = sys.argv[1]
for ident in sys.stdin.read().split():
    try:
        with open(os.path.join(base, ident)) as handle:
            if handle.read() != ident:
                print(ident)
    except OSError:
        print(ident)
"""


@dataclass
class SideFigures:
    node: str
    attempted: int = 0
    acknowledged: int = 0
    refused: int = 0
    # Refused in the second half of the writer's run: a survivor may lose a few writes while its
    # client drops the dead brick, never after that.
    refused_late: int = 0
    unavailable_s: float = 0.0
    longest_write_s: float = 0.0
    # /health (nginx on the node, port 80) at the end of the fault: 503 while the write probe fails.
    health: str = ""
    errors: list[str] = field(default_factory=list)
    acknowledged_ids: list[str] = field(default_factory=list, repr=False)


@dataclass
class DataFigures:
    fault: str  # partition | witness-lost | peer-killed
    seconds: float
    sides: list[SideFigures]
    lost: int | None = None  # acknowledged, then missing or different on a node after the heal
    lost_ids: list[str] = field(default_factory=list)
    heal_s: float | None = None
    split_brain: int | None = None
    # With a database: each node's row writer, and seconds until both members synced after the heal.
    rows: list[database.SideFigures] | None = None
    rows_synced_s: float | None = None

    @property
    def rows_lost(self) -> int:
        return sum(len(side.missing_after_heal) for side in self.rows or [])

    def lines(self) -> list[str]:
        lines = [
            f"{self.fault} ({self.seconds:.0f} s): acknowledged writes lost: "
            f"{'not checked' if self.lost is None else self.lost}"
            + (f", heal {self.heal_s:.0f} s" if self.heal_s is not None else "")
            + (f", split-brain entries {self.split_brain}" if self.split_brain is not None else "")
        ]
        for side in self.sides:
            lines.append(
                f"  {side.node}: {side.acknowledged} acknowledged, {side.refused} refused "
                f"({side.refused_late} in the second half) of {side.attempted}; write unavailability {side.unavailable_s:.1f} s (longest write "
                f"{side.longest_write_s:.1f} s)"
                + (f"; /health during the fault {side.health}" if side.health else "")
                + (f"; errors: {', '.join(sorted(set(side.errors)))}" if side.errors else "")
            )
        if self.rows is not None:
            synced = f", both synced {self.rows_synced_s:.1f} s after the heal" if self.rows_synced_s else ""
            lines.append(f"  database rows: {self.rows_lost} acknowledged rows lost{synced}")
            lines += [f"    {side.line()}" for side in self.rows]
        return lines

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        for side in data["sides"]:
            side.pop("acknowledged_ids")
        return data


def side_figures(node: str, records: list[dict[str, Any]], interval: float = WRITE_INTERVAL_S) -> SideFigures:
    """One writer's records -> its figures (pure: unit-tested)."""
    figures = SideFigures(node=node, attempted=len(records))
    starts = [float(record["t"]) for record in records]
    middle = (min(starts) + max(starts)) / 2 if starts else 0.0
    for record in records:
        duration = float(record["d"])
        figures.longest_write_s = max(figures.longest_write_s, duration)
        if record["ok"]:
            figures.acknowledged += 1
            figures.acknowledged_ids.append(str(record["id"]))
        else:
            figures.refused += 1
            figures.refused_late += float(record["t"]) > middle
            figures.errors.append(str(record.get("e")))
        if not record["ok"] or duration >= SLOW_WRITE_S:
            figures.unavailable_s += duration + interval
    figures.unavailable_s = round(figures.unavailable_s, 1)
    return figures


class DataDrill:
    def __init__(self, layout: Layout, log: Any = print):
        state = lab_module.load_state(layout)
        if state is None:
            raise LabError("no lab is running: `twinhost lab up` first")
        self.layout, self.state, self.log = layout, state, log
        self.boxes: dict[str, Container] = lab_module.containers(layout, state)
        for role in ("digitalocean", "linode", "redirector"):
            if self.boxes[role].leader() is None:
                raise LabError(f"{self.boxes[role].node.name} is not running")
        self.volume = volume_name(str(state.site.get("site") or layout.stack))

    # -- the writers -----------------------------------------------------------------------------

    def _write(self, role: str, base: str, seconds: float) -> list[dict[str, Any]]:
        box = self.boxes[role]
        result = box.exec(
            ["python3", "-c", WRITER, base, box.node.name, str(seconds), str(WRITE_INTERVAL_S)],
            timeout=seconds + 120,
            check=False,
        )
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    def _write_on_both(self, base: str, seconds: float, during: Any) -> list[SideFigures]:
        for role in ("digitalocean", "linode"):
            self.boxes[role].exec(["mkdir", "-p", base], timeout=60)
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {
                role: pool.submit(self._write, role, base, seconds) for role in ("digitalocean", "linode")
            }
            during()
            records = {role: future.result() for role, future in futures.items()}
        return [
            side_figures(self.boxes[role].node.name, records[role]) for role in ("digitalocean", "linode")
        ]

    def _lost(self, base: str, sides: list[SideFigures]) -> list[str]:
        ids = "\n".join(i for side in sides for i in side.acknowledged_ids)
        missing: set[str] = set()
        for role in ("digitalocean", "linode"):
            result = self.boxes[role].exec(
                ["python3", "-c", CHECKER, base], input=ids, timeout=300, check=False
            )
            missing |= {f"{line} (on {self.boxes[role].node.name})" for line in result.stdout.split()}
        return sorted(missing)

    # -- the faults ------------------------------------------------------------------------------

    def _cut(self) -> None:
        a, b = self.layout.node("digitalocean"), self.layout.node("linode")
        leader = self.boxes["digitalocean"].leader()
        peer = ", ".join(b.addresses)
        rule = (
            f"table inet {NFT_TABLE} {{\n"
            f"  chain input {{ type filter hook input priority -300; ip saddr {{ {peer} }} drop; }}\n"
            f"  chain output {{ type filter hook output priority -300; ip daddr {{ {peer} }} drop; }}\n"
            "}\n"
        )
        run(["nsenter", "-t", str(leader), "-n", "nft", "-f", "-"], input=rule)
        self.log(f"partition: {a.name} and {b.name} cut apart (both still reach the witness)")

    def _heal_link(self) -> None:
        leader = self.boxes["digitalocean"].leader()
        run(["nsenter", "-t", str(leader), "-n", "nft", "delete", "table", "inet", NFT_TABLE], check=False)
        self.log("partition healed")

    def _heal_volume(self) -> float:
        started = time.monotonic()
        box = self.boxes["digitalocean"]

        def pending() -> bool:
            box.exec(["gluster", "volume", "heal", self.volume], check=False, timeout=60)
            summary = box.exec(
                ["gluster", "volume", "heal", self.volume, "info", "summary"], check=False
            ).stdout
            # "-" for a brick the client cannot reach yet (tinc still reconnecting): not healed.
            counts = _numbers(summary, "Total Number of entries:")
            return len(counts) == 2 and all(n == "0" for n in counts)

        wait_for(pending, timeout=HEAL_TIMEOUT_S, interval=5, what=f"volume {self.volume} healed")
        return round(time.monotonic() - started, 1)

    def _health(self, roles: tuple[str, ...] = ("digitalocean", "linode")) -> dict[str, str]:
        codes = {}
        for role in roles:
            result = self.boxes[role].exec(
                ["curl", "-s", "-o", "/dev/null", "-m", "5", "-w", "%{http_code}", "http://127.0.0.1/health"],
                check=False,
                timeout=30,
            )
            codes[role] = result.stdout.strip() or "no answer"
        return codes

    def _split_brain(self) -> int:
        out = (
            self.boxes["digitalocean"]
            .exec(["gluster", "volume", "heal", self.volume, "info", "split-brain"], check=False)
            .stdout
        )
        return sum(int(n) for n in _numbers(out, "Number of entries in split-brain:"))

    def partition(self, seconds: float) -> DataFigures:
        base = f"{SHARED_DIR}/drill/partition-{uuid.uuid4().hex[:8]}"

        health: dict[str, str] = {}

        def during() -> None:
            lead = min(5.0, seconds / 6)
            time.sleep(lead)  # both writing before the cut
            self._cut()
            # /health at the end of the cut: the losing side's writes may hang ~20 s before they
            # fail (ping-timeout, then the thin-arbiter's answer), and its probe flags it only
            # then (a clean-clone run sampled it 22 s in, still 200).
            time.sleep(max(0.0, seconds - lead - 1))
            health.update(self._health())

        rows_lab = RunningLab(self.layout)
        row_logs: dict[str, str] | None = None
        if database.has_database(rows_lab):
            database.wait_synced(rows_lab)
            database.ensure_table(rows_lab)
            row_logs, row_writers = database.start_writers(rows_lab, int(seconds))
        try:
            sides = self._write_on_both(base, seconds, during)
        finally:
            self._heal_link()
        for side, role in zip(sides, ("digitalocean", "linode"), strict=True):
            side.health = health.get(role, "")
        figures = DataFigures("partition", seconds, sides)
        self._log(figures)  # the writes' figures, before the heal and the read-back
        if row_logs is not None:
            for writer in row_writers:
                writer.wait(timeout=seconds + 120)
            figures.rows_synced_s = round(database.wait_synced(rows_lab), 1)
            figures.rows = database.count_rows(rows_lab, row_logs)
        figures.heal_s = self._heal_volume()
        figures.split_brain = self._split_brain()
        figures.lost_ids = self._lost(base, sides)
        figures.lost = len(figures.lost_ids)
        self._log(figures)
        return figures

    def witness_lost(self, seconds: float) -> DataFigures:
        base = f"{SHARED_DIR}/drill/witness-{uuid.uuid4().hex[:8]}"
        redirector = self.boxes["redirector"]

        def during() -> None:
            time.sleep(2)
            self.log(f"witness lost: killing {redirector.node.name}")
            redirector.kill()
            self.state.containers[redirector.node.name] = 0

        try:
            sides = self._write_on_both(base, seconds, during)
        finally:
            self._boot("redirector")
        figures = DataFigures("witness-lost", seconds, sides)
        figures.lost_ids = self._lost(base, sides)
        figures.lost = len(figures.lost_ids)
        self._log(figures)
        return figures

    def peer_killed(self, seconds: float) -> DataFigures:
        """Node A is powered off mid-write and stays off for the fault; node B must keep writing
        (after the volume's 10 s ping-timeout, with the thin-arbiter's vote). Then A boots, the
        volume heals, and every write acknowledged on either side must be on both nodes."""
        base = f"{SHARED_DIR}/drill/killed-{uuid.uuid4().hex[:8]}"
        killed = self.boxes["digitalocean"]
        health: dict[str, str] = {}

        def during() -> None:
            lead = min(3.0, seconds / 10)
            time.sleep(lead)  # both writing before the kill
            self.log(f"peer killed: powering off {killed.node.name}")
            killed.kill()
            self.state.containers[killed.node.name] = 0
            time.sleep(max(0.0, seconds - lead - 1))
            health.update(self._health(("linode",)))

        try:
            sides = self._write_on_both(base, seconds, during)
        finally:
            self._boot("digitalocean")
        sides[1].health = health.get("linode", "")
        figures = DataFigures("peer-killed", seconds, sides)
        self._log(figures)  # the writes' figures, before the rejoin and the read-back
        figures.heal_s = self._heal_volume()
        figures.split_brain = self._split_brain()
        figures.lost_ids = self._lost(base, sides)
        figures.lost = len(figures.lost_ids)
        self._log(figures)
        return figures

    def _boot(self, role: str) -> None:
        box = self.boxes[role]
        self.log(f"booting {box.node.name} again")
        lab_module.boot_again(self.layout, self.state, box)

    def _log(self, figures: DataFigures) -> None:
        for line in figures.lines():
            self.log(line)


def _numbers(text: str, label: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.strip().startswith(label)]


def data_drill(
    layout: Layout, seconds: float = 60.0, *, log: Any = print, peer_killed: bool = True
) -> list[DataFigures]:
    """The three faults (or the first two), partition first; figures saved to the lab's run directory (data-drill.json)."""
    runner = DataDrill(layout, log)
    results = [runner.partition(seconds), runner.witness_lost(seconds)]
    if peer_killed:
        results.append(runner.peer_killed(seconds))
    (layout.run_dir / "data-drill.json").write_text(json.dumps([r.summary() for r in results], indent=2))
    return results


def problems(results: list[DataFigures]) -> list[str]:
    """Behaviour, not speed: nothing acknowledged lost; with the witness lost, both sides write."""
    found = []
    for r in results:
        if r.lost:
            found.append(f"{r.fault}: {r.lost} acknowledged writes lost: {', '.join(r.lost_ids[:5])}")
        if r.rows_lost:
            found.append(f"{r.fault}: {r.rows_lost} acknowledged database rows lost")
        if r.fault == "witness-lost":
            for side in r.sides:
                if side.refused:
                    found.append(f"witness-lost: {side.node} had {side.refused} writes refused")
        if r.fault == "peer-killed":
            survivor = r.sides[1]
            if survivor.refused_late or not survivor.acknowledged:
                found.append(
                    f"peer-killed: the survivor {survivor.node} had {survivor.refused_late} writes refused "
                    f"in the second half, {survivor.acknowledged} acknowledged"
                )
    return found
