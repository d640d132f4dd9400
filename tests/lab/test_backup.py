"""Issue 18 item 4 (backups): `twinhost backup|backups|restore` against the booted lab pair, from
the admin network, with the lab's moto as the platform's S3 bucket and its webhook stand-in as
the platform's notification webhook (twinhost_lab/aws.py, twinhost_lab/webhook.py).

One module-scoped run (it changes the shared volume), in order:
1. the nodes' user data names the repository in the stand-in's backup bucket under the site's
   prefix, the site's own backup key (not the lab's fixed AWS key), a 40-character password and
   the webhook; a tree of files is written to the shared volume (and, with TWINHOST_LAB_DATABASE=1,
   a table of rows to the site's database);
2. `twinhost backup` (the first: it makes the repository), `twinhost backups`, the repository's
   objects in moto (under the site's prefix only), a second `backup` of the unchanged volume;
3. through node B: files deleted, a file changed, one added (and the table dropped); `restore`
   without --yes is refused; `restore --yes`; every file's sha256 on both nodes is what it was
   at the backup (and every row); `status` shows the last good backup's age;
4. node A's connections to moto refused (iptables in the node): `twinhost backup` exits 1, the
   webhook stand-in receives the backup_failed alert, `status` shows FAILED; then the rule is
   removed and a backup succeeds again (so the modules after this one see a clean record).

Each test asserts one claim; the figures go to the "lab figures" summary. After the checks and
the day-2 commands, before the database and failover drills (tests/lab/conftest.py)."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from infra.bootstrap.backup import ENV_FILE
from infra.bootstrap.glusterfs import SHARED_DIR
from infra.bootstrap.parts import readable
from tests.lab.conftest import FIGURES, REPO
from twinhost_lab import aws, database, ops, webhook
from twinhost_lab.checks import RunningLab

pytestmark = pytest.mark.lab

DRILL_DIR = "backup-drill"  # under the shared volume
DEMO_FILE = "demo/backup-drill.txt"  # the demo page lists demo/: the app shows it back
TABLE = "twinhost_lab_backup"
ROWS = 200
BIG_MIB = 4

# Every file of the shared volume but the nodes' own state, which is not backed up (.twinhost/,
# and .twinhost-health/ that the health probe rewrites every 2 s): sha256, size.
TREE = r"""
import hashlib, json, os
root = "/srv/shared"
out = {}
for where, dirs, files in os.walk(root):
    if where == root:
        dirs[:] = [d for d in dirs if d not in (".twinhost", ".twinhost-health")]
    for name in files:
        path = os.path.join(where, name)
        if os.path.islink(path):
            out[os.path.relpath(path, root)] = ["link " + os.readlink(path), 0]
            continue
        with open(path, "rb") as f:
            out[os.path.relpath(path, root)] = [hashlib.sha256(f.read()).hexdigest(), os.path.getsize(path)]
print(json.dumps(out, sort_keys=True))
"""

# The drill's files: small texts in nested folders, a binary, and the demo page's file.
WRITE = f"""
set -e
cd {SHARED_DIR}
mkdir -p {DRILL_DIR}/docs/letters {DRILL_DIR}/nested/deep demo
for i in $(seq 1 12); do echo "letter $i {{token}}" > {DRILL_DIR}/docs/letters/letter-$i.txt; done
for i in 1 2 3; do head -c 20000 /dev/urandom | base64 > {DRILL_DIR}/nested/deep/part-$i.txt; done
head -c {BIG_MIB * 2**20} /dev/urandom > {DRILL_DIR}/archive.bin
echo "contract v1 {{token}}" > {DRILL_DIR}/docs/contract.txt
echo "{{token}}" > {DEMO_FILE}
sync
"""

# Through the other node: three files and a folder deleted, one changed (same size), one added.
MUTATE = f"""
set -e
cd {SHARED_DIR}
rm {DRILL_DIR}/docs/letters/letter-1.txt {DRILL_DIR}/docs/letters/letter-7.txt {DEMO_FILE}
rm -r {DRILL_DIR}/nested
echo "contract v2 {{token}}" > {DRILL_DIR}/docs/contract.txt
dd if=/dev/urandom of={DRILL_DIR}/archive.bin bs=4096 count=1 seek=10 conv=notrunc status=none
echo "made after the backup" > {DRILL_DIR}/docs/new-since.txt
sync
"""


@dataclass
class BackupRun:
    files: ops.OpsFiles
    database: bool
    env: dict[str, dict[str, str]] = field(default_factory=dict)  # per node: backup.env's values
    node_facts: dict[str, dict[str, str]] = field(default_factory=dict)  # per node: mode, timer
    steps: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    trees: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    rows: dict[str, str] = field(default_factory=dict)
    objects: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts_before: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)
    page: str = ""
    days: list[str] = field(default_factory=list)  # UTC dates: before the first, after the second backup
    token: str = ""

    def json(self, step: str) -> Any:
        return json.loads(self.steps[step].stdout)

    def backups(self, when: str) -> dict[str, str | None]:
        return {n["node"]: n.get("backup") for n in self.status[when].get("nodes", [])}


def _env_of(user_data: str) -> dict[str, str]:
    document = yaml.safe_load(readable(user_data))  # a packed (gz+b64) file decoded
    entries = [f for f in document.get("write_files") or [] if f.get("path") == ENV_FILE]
    if not entries:
        return {}
    lines = str(entries[0]["content"]).splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def _explain(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def backup_run(running_lab: RunningLab, request: pytest.FixtureRequest) -> Iterator[BackupRun]:
    lab, layout = running_lab, running_lab.layout
    stack = layout.stack
    files = ops.write_files(lab, REPO)
    run = BackupRun(files, database.has_database(lab), token=f"backup-{secrets.token_hex(6)}")
    figures = request.config.stash[FIGURES]
    primary, standby = lab.boxes[lab.primary], lab.boxes[lab.standby]

    for role in lab.site_roles:
        run.env[role] = _env_of((layout.run_dir / "user-data" / f"{role}.yaml").read_text())
        box = lab.boxes[role]
        run.node_facts[role] = {
            "mode": box.exec(["stat", "-c", "%a %U", ENV_FILE], check=False).stdout.strip(),
            "timer": box.exec(
                ["systemctl", "is-enabled", "twinhost-backup.timer"], check=False
            ).stdout.strip(),
        }

    def timed(step: str, *args: str) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        done = ops.twinhost(lab, files, *args)
        run.seconds[step] = time.monotonic() - started
        run.steps[step] = done
        try:
            last = f"{len(json.loads(done.stdout))} snapshots"
        except (json.JSONDecodeError, TypeError):
            last = (done.stdout.strip().splitlines() or done.stderr.strip().splitlines() or [""])[-1]
        figures.append(f"BACKUP {step}: exit {done.returncode} in {run.seconds[step]:.1f} s; {last[:160]}")
        return done

    def tree(when: str, box_role: str) -> None:
        done = lab.boxes[box_role].exec(["python3", "-c", TREE], timeout=120)
        run.trees[f"{when} {box_role}"] = json.loads(done.stdout)

    def status(when: str) -> None:
        done = ops.twinhost(lab, files, "status", stack, "--json")
        run.steps[f"status {when}"] = done
        run.status[when] = json.loads(done.stdout) if done.stdout.strip() else {"error": done.stderr}
        figures.append(f"BACKUP status {when}: {run.backups(when)}")

    def rows(when: str, role: str) -> None:
        run.rows[f"{when} {role}"] = database.sql(lab, role, f"SELECT id, payload FROM {TABLE} ORDER BY id")

    # 1. what to back up
    primary.exec(WRITE.replace("{token}", run.token), timeout=120)
    if run.database:
        database.wait_synced(lab)
        database.sql(lab, lab.primary, f"DROP TABLE IF EXISTS {TABLE}")
        database.sql(
            lab,
            lab.primary,
            f"CREATE TABLE {TABLE} (id INT PRIMARY KEY, payload VARCHAR(64) NOT NULL)",
        )
        values = ", ".join(f"({i}, '{secrets.token_hex(16)}')" for i in range(1, ROWS + 1))
        database.sql(lab, lab.primary, f"INSERT INTO {TABLE} (id, payload) VALUES {values}")
        rows("before", lab.primary)
    tree("before", lab.primary)

    # 2. back up, list, look in the bucket, back up again
    run.days.append(time.strftime("%Y-%m-%d", time.gmtime()))
    timed("first backup", "backup", stack)
    timed("list after the first", "backups", stack, "--json")
    backups = run.env[lab.primary].get("RESTIC_REPOSITORY", "").rsplit("/", 2)
    if len(backups) == 3:
        s3 = aws.client(
            "s3", aws.endpoint_url(layout.host_address), run.env[lab.primary]["AWS_DEFAULT_REGION"]
        )
        listed = s3.list_objects_v2(Bucket=backups[1])
        run.objects["all"] = [(o["Key"], int(o["Size"])) for o in listed.get("Contents", [])]
    timed("second backup (unchanged)", "backup", stack)
    run.days.append(time.strftime("%Y-%m-%d", time.gmtime()))
    timed("list after the second", "backups", stack)
    total = sum(size for _key, size in run.objects.get("all", []))
    figures.append(
        f"BACKUP repository after the first backup: {len(run.objects.get('all', []))} objects, "
        f"{total} bytes in moto"
    )

    # 3. lose files (and the table) through node B, restore
    standby.exec(MUTATE.replace("{token}", run.token), timeout=120)
    if run.database:
        database.sql(lab, lab.standby, f"DROP TABLE {TABLE}")
    tree("mutated", lab.primary)
    timed("restore without --yes", "restore", stack)
    timed("restore", "restore", stack, "--yes")
    for role in lab.site_roles:
        tree("restored", role)
        if run.database:
            rows("restored", role)
    www = running_lab.site["www"][0]
    run.page = lab.curl(f"https://{www}/", www, lab.address(lab.standby)).stdout
    status("after the restore")

    # 4. a failed backup: node A's connections to the stand-in refused
    rule = ["OUTPUT", "-p", "tcp", "-d", layout.host_address, "--dport", str(aws.PORT)]
    rule += ["-j", "REJECT", "--reject-with", "tcp-reset"]
    run.posts_before = len(webhook.posts(layout))
    primary.exec(["iptables", "-w", "-I", *rule])
    try:
        timed("backup with the repository unreachable", "backup", stack)
    finally:
        primary.exec(["iptables", "-w", "-D", *rule], check=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(webhook.posts(layout)) <= run.posts_before:
        time.sleep(1)
    run.posts = webhook.posts(layout)[run.posts_before :]
    figures.append(f"BACKUP webhook posts after the failed backup: {[p['body'] for p in run.posts]}")
    status("after the failed backup")
    timed("backup with the repository back", "backup", stack)
    yield run


def test_the_nodes_user_data_names_the_repository_in_the_standin_with_the_sites_own_key(
    backup_run: BackupRun, running_lab: RunningLab
) -> None:
    layout, site = running_lab.layout, str(running_lab.site["site"])
    for role, env in backup_run.env.items():
        assert env, f"{role}: no {ENV_FILE} in its user data"
        repository = env["RESTIC_REPOSITORY"]
        assert re.fullmatch(
            rf"s3:{re.escape(aws.endpoint_url(layout.host_address))}/[a-z0-9.-]+/{site}", repository
        ), (role, repository)
        # The site's own IAM key (made by the site stack), not the lab's fixed stand-in key.
        assert re.fullmatch(r"AKIA[A-Z0-9]{16}", env["AWS_ACCESS_KEY_ID"]), role
        assert env["AWS_ACCESS_KEY_ID"] != aws.ACCESS_KEY_ID, role
        password = env["RESTIC_PASSWORD"]
        well_formed = len(password) == 40 and password.isalnum()  # outside the assert: never shown
        assert well_formed, f"{role}: the repository password is not 40 letters and digits"
        assert env["WEBHOOK"] == webhook.url(layout), role
        assert backup_run.node_facts[role] == {"mode": "600 root", "timer": "enabled"}, (
            role,
            backup_run.node_facts[role],
        )
    # Both nodes back up to the same repository with the same key: either one's snapshot is the site's.
    keys = ("RESTIC_REPOSITORY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "RESTIC_PASSWORD", "WEBHOOK")
    same = len({tuple(env[k] for k in keys) for env in backup_run.env.values()}) == 1
    assert same, "the nodes' repository, key, password or webhook differ (values not shown)"
    assert {env["ROLE"] for env in backup_run.env.values()} == {"primary", "standby"}


def test_backup_succeeds_and_backups_lists_the_snapshot(
    backup_run: BackupRun, running_lab: RunningLab
) -> None:
    done = backup_run.steps["first backup"]
    assert done.returncode == 0, _explain(done)
    found = re.search(r"snapshot (\w{8}) on (\w+): (\d+) files, (\d+) bytes", done.stdout)
    assert found, done.stdout
    snapshot, node = found.group(1), found.group(2)
    assert node == running_lab.primary, done.stdout
    assert int(found.group(4)) >= BIG_MIB * 2**20, done.stdout
    listed = backup_run.steps["list after the first"]
    assert listed.returncode == 0, _explain(listed)
    snapshots = backup_run.json("list after the first")
    assert [s["short_id"] for s in snapshots] == [snapshot], snapshots
    assert snapshots[0]["hostname"] == running_lab.site["site"], snapshots
    assert SHARED_DIR in snapshots[0]["paths"], snapshots


def test_the_repository_is_in_the_standin_bucket_under_the_sites_prefix_only(
    backup_run: BackupRun, running_lab: RunningLab
) -> None:
    objects = backup_run.objects.get("all", [])
    prefix = f"{running_lab.site['site']}/"
    assert objects, "no objects in the stand-in's backup bucket"
    assert all(key.startswith(prefix) for key, _size in objects), [
        k for k, _ in objects if not k.startswith(prefix)
    ]
    kinds = {key[len(prefix) :].split("/", 1)[0] for key, _size in objects}
    assert {"config", "keys", "snapshots", "data", "index"} <= kinds, kinds
    # restic encrypts before upload: no token of the drill's files is readable in the bucket.
    assert sum(size for _key, size in objects) >= BIG_MIB * 2**20


def test_a_second_backup_of_the_unchanged_volume_adds_little_and_retention_keeps_one_a_day(
    backup_run: BackupRun,
) -> None:
    done = backup_run.steps["second backup (unchanged)"]
    assert done.returncode == 0, _explain(done)
    found = re.search(r"(\d+) bytes \((\d+) new\)", done.stdout)
    assert found, done.stdout
    assert int(found.group(2)) < 2**20, done.stdout  # metadata only: the data is deduplicated
    listed = backup_run.steps["list after the second"]
    assert listed.returncode == 0, _explain(listed)
    # keepDaily 7: the day's last snapshot only (the first was pruned, unless midnight UTC fell
    # between the two backups).
    kept = len(set(backup_run.days))
    assert re.search(rf": {kept} snapshots", listed.stdout), listed.stdout
    second = re.search(r"snapshot (\w{8})", done.stdout)
    assert second and second.group(1) in listed.stdout, listed.stdout


def test_restore_is_refused_without_yes(backup_run: BackupRun) -> None:
    done = backup_run.steps["restore without --yes"]
    assert done.returncode == 2, _explain(done)
    assert "--yes" in done.stderr, done.stderr


def test_restore_brings_every_file_back_byte_for_byte_on_both_nodes(
    backup_run: BackupRun, running_lab: RunningLab
) -> None:
    done = backup_run.steps["restore"]
    assert done.returncode == 0, _explain(done)
    before = backup_run.trees[f"before {running_lab.primary}"]
    mutated = backup_run.trees[f"mutated {running_lab.primary}"]
    drill = {p for p in before if p.startswith(DRILL_DIR + "/")}
    assert len(drill) == 17 and DEMO_FILE in before, sorted(drill)
    assert mutated != before and f"{DRILL_DIR}/docs/new-since.txt" in mutated  # the loss was real
    assert len(set(before) - set(mutated)) == 6, sorted(set(before) - set(mutated))
    for role in running_lab.site_roles:
        restored = backup_run.trees[f"restored {role}"]
        assert restored == before, (role, _difference(before, restored))
    assert backup_run.token in backup_run.page, "the demo page (node B) shows the restored file"


def test_status_shows_the_last_good_backups_age(backup_run: BackupRun, running_lab: RunningLab) -> None:
    done = backup_run.steps["status after the restore"]
    assert done.returncode == 0, _explain(done)
    backups = backup_run.backups("after the restore")
    assert set(backups) == set(running_lab.site_roles), backups
    for role, line in backups.items():
        assert line and re.match(rf"last good 0\.\d h ago \({running_lab.primary}, \w{{8}}\)$", line), (
            role,
            line,
        )


def test_a_dropped_table_is_restored_row_for_row(backup_run: BackupRun, running_lab: RunningLab) -> None:
    if not backup_run.database:
        pytest.skip(
            "the lab's site has no database: TWINHOST_LAB_DATABASE=1 boots it with database: mariadb "
            "(the files were restored without one)"
        )
    before = backup_run.rows[f"before {running_lab.primary}"]
    assert len(before.splitlines()) == ROWS, before[:300]
    for role in running_lab.site_roles:
        assert backup_run.rows[f"restored {role}"] == before, role


def test_a_failed_backup_alerts_the_webhook_exits_1_and_status_shows_failed(
    backup_run: BackupRun, running_lab: RunningLab
) -> None:
    done = backup_run.steps["backup with the repository unreachable"]
    assert done.returncode == 1, _explain(done)
    assert f"failed on {running_lab.primary}" in done.stderr, done.stderr[-1500:]
    alerts = [p["body"] for p in backup_run.posts if isinstance(p["body"], dict)]
    assert [(a.get("event"), a.get("site"), a.get("node")) for a in alerts] == [
        ("backup_failed", running_lab.site["site"], running_lab.primary)
    ], backup_run.posts
    assert alerts[0]["step"] == "the repository" and "failed" in alerts[0]["text"], alerts
    backups = backup_run.backups("after the failed backup")
    assert "FAILED since" in str(backups[running_lab.primary]), backups
    assert str(backups[running_lab.primary]).startswith("last good "), backups
    assert "FAILED" not in str(backups[running_lab.standby]), "the standby did not fail"
    back = backup_run.steps["backup with the repository back"]
    assert back.returncode == 0, _explain(back)


def _difference(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> dict[str, list[str]]:
    return {
        "missing": sorted(set(before) - set(after))[:10],
        "extra": sorted(set(after) - set(before))[:10],
        "changed": sorted(p for p in set(before) & set(after) if before[p] != after[p])[:10],
    }
