"""The site's off-pair backups: restic snapshots of the shared volume and a database dump, in the
platform's backup bucket under this site's own prefix (docs/backups.md).

Both nodes get the same script and a daily timer, so either can back up; only one does:
- the primary node (the one that also creates the GlusterFS volume) backs up at `time`;
- the standby's timer fires an hour later and backs up only when no backup succeeded in the
  last `STALE_HOURS` (the primary was down, or its run failed). The last success is recorded
  on the shared volume (`STATE_DIR`), so both nodes see it; restic's own repository lock keeps
  two runs from writing at once if they ever overlap.

What is backed up: `/srv/shared` (the GlusterFS mount: both bricks hold the same files, so one
node's view is the whole volume) without `.twinhost/` (the nodes' coordination state), and for a
`database: mariadb` site a dump of the site's database made by `mariadb-dump --single-transaction`
on the local Galera member (a consistent InnoDB snapshot without locking the tables; Galera
replicates InnoDB only). Everything is encrypted by restic before it leaves the node; the key is
a Pulumi secret (pulumi_random), and the S3 credentials (an IAM user per site) reach this site's
prefix only. A failed run posts to the platform's notification webhook.

What it deliberately does not do: restore on its own (an operator runs `twinhost restore`), or
back up a node's own state (`/etc`, app slots): a node is rebuilt from its user data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from infra.bootstrap.database import OPTION_FILE
from infra.bootstrap.glusterfs import SHARED_DIR
from infra.bootstrap.parts import SCRIPT_MODE, File, Parts, static, template
from infra.bootstrap.spec import BackupSpec, NodeSpec

SCRIPT = "/usr/local/sbin/twinhost-backup"
ENV_FILE = "/etc/twinhost/backup.env"
# On the shared volume: both nodes read the last success (the standby's rule, `twinhost status`).
STATE_DIR = f"{SHARED_DIR}/.twinhost/backup"
# Local disk: the database dump before it is snapshotted, and restores being staged.
WORK_DIR = "/var/lib/twinhost/backup"
DUMP_DIR = f"{WORK_DIR}/dump"
# The standby backs up when the last success is older than this; the primary's daily run
# is then at least 2 hours late (it runs every 24 h, the standby an hour after it).
STALE_HOURS = 26
STANDBY_DELAY_MINUTES = 60
SECRET_MODE = 0o600
PACKAGES = ("restic", "rsync")
TIMER = "twinhost-backup.timer"


@dataclass(frozen=True)
class BackupNode:
    """What the backup files say of their node: the first boot takes it from the node's spec
    (`of`), the converge from the stack config (infra/bootstrap/converge.py), so both render
    the same files with the same functions."""

    site: str
    provider: str
    is_primary: bool
    database_name: str | None  # the site's database (`database: mariadb`); None: no dump
    backup: BackupSpec | None  # None: no backups on this node

    @classmethod
    def of(cls, spec: NodeSpec) -> BackupNode:
        database = spec.database.name if spec.database else None
        return cls(spec.site, spec.provider, spec.is_primary, database, spec.backup)


def standby_time(time: str) -> str:
    """The standby's time: an hour after the primary's, across midnight too."""
    hours, minutes = (int(part) for part in time.split(":"))
    total = (hours * 60 + minutes + STANDBY_DELAY_MINUTES) % (24 * 60)
    return f"{total // 60:02d}:{total % 60:02d}"


def backup_env(node: BackupNode, backup: BackupSpec) -> str:
    """The settings of twinhost-backup on this node (root only: it holds the S3 secret key,
    the repository password and the webhook URL)."""
    _check(backup)
    database = node.database_name
    lines = [
        "# twinhost-backup settings (from the stack). Secret: root only.",
        f"SITE={node.site}",
        f"NODE={node.provider}",
        f"ROLE={'primary' if node.is_primary else 'standby'}",
        f"SHARED_DIR={SHARED_DIR}",
        f"STATE_DIR={STATE_DIR}",
        f"WORK_DIR={WORK_DIR}",
        f"DUMP_DIR={DUMP_DIR}",
        f"STALE_HOURS={STALE_HOURS}",
        f"KEEP_DAILY={backup.keep_daily}",
        f"KEEP_WEEKLY={backup.keep_weekly}",
        f"KEEP_MONTHLY={backup.keep_monthly}",
        f"DB_NAME={database or ''}",
        f"DB_OPTION_FILE={OPTION_FILE if database else ''}",
        f"RESTIC_REPOSITORY={backup.repository}",
        f"RESTIC_PASSWORD={backup.password}",
        f"AWS_ACCESS_KEY_ID={backup.access_key_id}",
        f"AWS_SECRET_ACCESS_KEY={backup.secret_access_key}",
        f"AWS_DEFAULT_REGION={backup.region}",
        f"WEBHOOK={backup.webhook or ''}",
    ]
    return "\n".join(lines) + "\n"


def backup_parts(spec: NodeSpec | BackupNode) -> Parts:
    """twinhost-backup, its settings and its daily timer; empty Parts without backups. The
    first boot writes these; the converge writes the same files when they differ and runs the
    same commands (docs/converge.md)."""
    node = spec if isinstance(spec, BackupNode) else BackupNode.of(spec)
    backup = node.backup
    if backup is None:
        return Parts(name="backup")
    time = backup.time if node.is_primary else standby_time(backup.time)
    files = (
        File(ENV_FILE, backup_env(node, backup), SECRET_MODE, secret=True),
        File(SCRIPT, static("site/usr/local/sbin/twinhost-backup"), SCRIPT_MODE),
        File(
            "/etc/systemd/system/twinhost-backup.service",
            static("site/etc/systemd/system/twinhost-backup.service"),
        ),
        File(
            "/etc/systemd/system/twinhost-backup.timer",
            template("site/etc/systemd/system/twinhost-backup.timer.j2", time=time),
        ),
    )
    return Parts(
        name="backup",
        files=files,
        packages=PACKAGES,
        runcmd=(
            ("systemctl", "daemon-reload"),
            ("systemctl", "enable", "--now", TIMER),
        ),
    )


def _check(backup: BackupSpec) -> None:
    problems = []
    if not re.fullmatch(r"s3:https?://[A-Za-z0-9.:-]+/[a-z0-9.-]{3,63}/[a-z0-9-]{1,63}", backup.repository):
        problems.append(f"repository {backup.repository!r} must be s3:<endpoint>/<bucket>/<site>")
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", backup.time):
        problems.append(f"time {backup.time!r} must be HH:MM")
    # One line each, no quoting in an EnvironmentFile: letters, digits and the few characters
    # AWS keys, restic passwords and webhook URLs use.
    for label, value in (
        ("access key id", backup.access_key_id),
        ("secret access key", backup.secret_access_key),
        ("password", backup.password),
        ("webhook", backup.webhook or "x"),
    ):
        if not re.fullmatch(r"[A-Za-z0-9/+=:._?&%~-]+", value):
            problems.append(f"the {label} must be one line without spaces or quotes (value not shown)")
    if backup.keep_daily + backup.keep_weekly + backup.keep_monthly < 1:
        problems.append("keep at least one snapshot")
    if problems:
        raise ValueError("backup: " + "; ".join(problems))
