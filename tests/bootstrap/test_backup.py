"""The node's backups: the rendered settings, units and timer, and `twinhost-backup` itself run
stand-alone against a local restic repository (Debian's restic and rsync, as on a node): a backup,
files deleted, a restore that brings them back byte for byte, the refusals, the standby's rule,
and a failed backup that posts to the webhook."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.bootstrap import render_user_data
from infra.bootstrap.backup import ENV_FILE, STALE_HOURS, BackupNode, backup_env, backup_parts, standby_time
from infra.bootstrap.parts import CLOUDINIT_DIR, decoded_files, strip_comments
from infra.bootstrap.render import secret_values
from tests.bootstrap.bootstrap_specs import make_backup, make_spec

SCRIPT = CLOUDINIT_DIR / "site/usr/local/sbin/twinhost-backup"
REPO = Path(__file__).resolve().parents[2]


def _files(spec) -> dict[str, str]:
    return {f.path: f.content for f in backup_parts(spec).files}


def test_the_primary_backs_up_at_its_time_and_the_standby_an_hour_later() -> None:
    primary = _files(make_spec("digitalocean"))
    standby = _files(make_spec("linode"))
    assert "OnCalendar=*-*-* 02:15:00 UTC" in primary["/etc/systemd/system/twinhost-backup.timer"]
    assert "OnCalendar=*-*-* 03:15:00 UTC" in standby["/etc/systemd/system/twinhost-backup.timer"]
    assert "ROLE=primary" in primary[ENV_FILE] and "ROLE=standby" in standby[ENV_FILE]
    assert standby_time("23:30") == "00:30"


def test_the_settings_file_is_root_only_and_marked_secret() -> None:
    [env] = [f for f in backup_parts(make_spec()).files if f.path == ENV_FILE]
    assert env.secret and env.mode == 0o600 and env.owner == "root:root"
    spec = make_spec()
    assert spec.backup is not None
    for value in (spec.backup.secret_access_key, spec.backup.password, spec.backup.webhook):
        assert value in env.content and value in secret_values(spec)


def test_the_retention_and_the_database_reach_the_settings() -> None:
    spec = make_spec("digitalocean", database=True)
    assert spec.backup is not None
    env = backup_env(
        BackupNode.of(spec), dataclasses.replace(spec.backup, keep_daily=3, keep_weekly=0, keep_monthly=12)
    )
    assert "KEEP_DAILY=3\nKEEP_WEEKLY=0\nKEEP_MONTHLY=12\n" in env
    assert "DB_NAME=acme_shop\n" in env
    assert "DB_NAME=\n" in backup_env(BackupNode.of(make_spec()), make_backup())


def test_no_backup_spec_renders_nothing() -> None:
    assert backup_parts(make_spec(backup=False)).files == ()
    assert "twinhost-backup" not in render_user_data(make_spec(backup=False))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"repository": "s3:ftp://x/bucket/site"}, "repository"),
        ({"password": "has space"}, "password"),
        ({"keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}, "keep at least one"),
    ],
)
def test_a_bad_backup_spec_is_refused_naming_the_value(change, problem) -> None:
    with pytest.raises(ValueError, match=problem):
        backup_parts(dataclasses.replace(make_spec(), backup=dataclasses.replace(make_backup(), **change)))


def test_the_node_gets_the_script_and_the_timer_enabled() -> None:
    """The script as in the repository, less the comment block after its `#!` line."""
    text = render_user_data(make_spec("linode"))
    import yaml

    document = yaml.safe_load(text)
    files = {e["path"]: e for e in decoded_files(document)}
    assert files["/usr/local/sbin/twinhost-backup"]["content"] == strip_comments(SCRIPT.read_text())
    assert files["/usr/local/sbin/twinhost-backup"]["content"].startswith("#!")
    assert ["systemctl", "enable", "--now", "twinhost-backup.timer"] in document["runcmd"]
    assert {"restic", "rsync"} <= set(document["packages"])


# -- the script itself, stand-alone ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tools() -> None:
    if shutil.which("restic") is None or shutil.which("rsync") is None:
        subprocess.run([str(REPO / "scripts" / "ensure-host-packages"), "backup"], check=False)
    assert shutil.which("restic") and shutil.which("rsync"), (
        "restic and rsync: scripts/ensure-host-packages backup"
    )


class Node:
    """One node's view: a plain shared directory, a local restic repository, a settings file."""

    def __init__(self, root: Path, *, role: str = "primary", webhook: str = "", db: bool = False):
        self.root = root
        self.shared = root / "shared"
        (self.shared / ".twinhost/galera").mkdir(parents=True, exist_ok=True)
        self.env = root / "backup.env"
        self.values = {
            "SITE": "acme-shop",
            "NODE": "digitalocean",
            "ROLE": role,
            "SHARED_DIR": str(self.shared),
            "STATE_DIR": str(self.shared / ".twinhost/backup"),
            "WORK_DIR": str(root / "work"),
            "DUMP_DIR": str(root / "work/dump"),
            "STALE_HOURS": str(STALE_HOURS),
            "KEEP_DAILY": "7",
            "KEEP_WEEKLY": "4",
            "KEEP_MONTHLY": "6",
            "DB_NAME": "acme_shop" if db else "",
            "RESTIC_REPOSITORY": str(root / "repo"),
            "RESTIC_PASSWORD": "Rp4" + "w" * 37,
            "WEBHOOK": webhook,
        }
        self.write()

    def write(self) -> None:
        self.env.write_text("".join(f"{k}={v}\n" for k, v in self.values.items()))

    def run(self, *args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "TWINHOST_BACKUP_ENV": str(self.env),
            "REQUIRE_MOUNT": "0",
            "RESTIC_CACHE_DIR": str(self.root / "cache"),
            **(extra or {}),
        }
        return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300)


def digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and ".twinhost" not in p.parts and ".twinhost-health" not in p.parts
    }


def test_a_restore_brings_deleted_files_back_byte_for_byte(tools, tmp_path) -> None:
    node = Node(tmp_path)
    (node.shared / "media").mkdir()
    (node.shared / "media/photo.bin").write_bytes(os.urandom(300_000))
    (node.shared / "index.txt").write_text("hello\n")
    (node.shared / ".twinhost/galera/state").write_text("uuid:7\n")
    # The health probe's file (twinhost-health-probe rewrites it every 2 s): not the site's data.
    (node.shared / ".twinhost-health").mkdir()
    (node.shared / ".twinhost-health/acme-do").write_text("1000\n")
    before = digest(node.shared)

    done = node.run("now")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert record["files"] == 2 and record["snapshot"]
    assert json.loads(node.run("last").stdout)["success"]["snapshot"] == record["snapshot"]
    [snapshot] = json.loads(node.run("snapshots").stdout)
    assert snapshot["hostname"] == "acme-shop" and "twinhost" in snapshot["tags"]

    (node.shared / "media/photo.bin").unlink()
    (node.shared / "index.txt").write_text("defaced\n")
    (node.shared / "new-since.txt").write_text("x\n")
    (node.shared / ".twinhost-health/acme-do").write_text("2000\n")
    refused = node.run("restore")
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    assert not (node.shared / "media/photo.bin").exists()

    restored = node.run("restore", record["snapshot"], "--yes")
    assert restored.returncode == 0, restored.stderr
    assert digest(node.shared) == before
    # The nodes' coordination state is neither backed up over nor deleted.
    assert (node.shared / ".twinhost/galera/state").read_text() == "uuid:7\n"
    # The probe's newer write stays: a restore never puts an old one back.
    assert (node.shared / ".twinhost-health/acme-do").read_text() == "2000\n"
    assert "1/3" in restored.stderr and "2/3" in restored.stderr


def test_a_restore_to_a_path_refuses_a_non_empty_one_without_yes(tools, tmp_path) -> None:
    node = Node(tmp_path)
    (node.shared / "a.txt").write_text("a\n")
    assert node.run("now").returncode == 0
    target = tmp_path / "elsewhere"
    assert node.run("restore", "--to-path", str(target)).returncode == 0
    assert (target / str(node.shared).lstrip("/") / "a.txt").read_text() == "a\n"
    again = node.run("restore", "--to-path", str(target))
    assert again.returncode == 2 and "not empty" in again.stderr
    assert node.run("restore", "--to-path", str(target), "--yes").returncode == 0


def test_the_database_dump_is_snapshotted_and_loaded_back(tools, tmp_path) -> None:
    node = Node(tmp_path, db=True)
    (node.shared / "a.txt").write_text("a\n")
    fake = tmp_path / "bin"
    fake.mkdir()
    loaded = tmp_path / "loaded.sql"
    (fake / "dump").write_text("#!/bin/sh\necho \"-- args: $*\"\necho 'CREATE TABLE t (id INT);'\n")
    (fake / "load").write_text(f"#!/bin/sh\ncat > {loaded}\n")
    for tool in fake.iterdir():
        tool.chmod(0o755)
    extra = {"MARIADB_DUMP": str(fake / "dump"), "MARIADB": str(fake / "load")}
    assert node.run("now", extra=extra).returncode == 0
    restored = node.run("restore", "--yes", extra=extra)
    assert restored.returncode == 0, restored.stderr
    text = loaded.read_text()
    assert "--single-transaction" in text and "--add-drop-database --databases acme_shop" in text
    assert "CREATE TABLE t" in text


def test_the_standby_backs_up_only_when_the_last_success_is_stale(tools, tmp_path) -> None:
    node = Node(tmp_path, role="standby")
    (node.shared / "a.txt").write_text("a\n")
    first = node.run("scheduled")
    assert first.returncode == 0 and "no backup in the last" in first.stderr
    second = node.run("scheduled")
    assert second.returncode == 0 and "nothing to do" in second.stderr
    assert len(json.loads(node.run("snapshots").stdout)) == 1


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, object]]]]:
    received: list[dict[str, object]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    server.shutdown()


def test_a_failed_backup_posts_to_the_webhook_and_is_recorded(tools, tmp_path, webhook) -> None:
    url, received = webhook
    node = Node(tmp_path, webhook=url)
    (node.shared / "a.txt").write_text("a\n")
    assert node.run("now").returncode == 0
    node.values["RESTIC_PASSWORD"] = "a-wrong-password-000000000000000000000000"  # wrong credentials
    node.write()
    failed = node.run("now")
    assert failed.returncode != 0
    [alert] = received
    assert alert["event"] == "backup_failed" and alert["site"] == "acme-shop"
    assert "failed on digitalocean at: the repository" in str(alert["text"])
    assert url not in failed.stderr  # the webhook's URL carries its token: never logged
    last = json.loads(node.run("last").stdout)
    assert last["failure"]["step"] == "the repository" and last["success"]["snapshot"]
