"""`twinhost backup|backups|restore` and the status line: the node they run on, what they run,
the refusals before anything changes, and the last good backup's age."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence

from infra.ops import backup
from infra.ops.remote import Target

A = Target("digitalocean", "192.0.2.10", "ops")
B = Target("linode", "192.0.2.20", "ops")


class Nodes:
    def __init__(self, unreachable: Sequence[str] = (), answer: str = "", code: int = 0):
        self.unreachable = set(unreachable)
        self.answer, self.code = answer, code
        self.calls: list[tuple[str, list[str]]] = []

    def run(
        self,
        target: Target,
        command: Sequence[str],
        *,
        timeout: float = 600,
        on_line: Callable[[str], None] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        self.calls.append((target.role, list(command)))
        if target.role in self.unreachable:
            return subprocess.CompletedProcess(list(command), 255, "ssh: connect: refused\n", "")
        for line in self.answer.splitlines():
            if on_line:
                on_line(line)
        return subprocess.CompletedProcess(list(command), self.code, self.answer, "")


def test_the_primary_runs_the_backup_when_ssh_reaches_it():
    assert backup.pick_node(Nodes(), [B, A], "digitalocean") == A
    assert backup.pick_node(Nodes(), [A, B], "linode") == B


def test_the_other_node_runs_it_when_the_primary_is_unreachable():
    assert backup.pick_node(Nodes(unreachable=["digitalocean"]), [A, B], "digitalocean") == B


def test_no_reachable_node_is_an_error_naming_the_addresses():
    try:
        backup.pick_node(Nodes(unreachable=["digitalocean", "linode"]), [A, B], "digitalocean")
    except backup.NoNodeError as error:
        assert "192.0.2.10" in str(error) and "192.0.2.20" in str(error)
    else:
        raise AssertionError("no error")


def test_the_script_runs_as_root_and_its_progress_is_streamed():
    nodes = Nodes(answer='twinhost-backup: database dumped\n{"snapshot": "ab12cd34", "files": 3}\n')
    lines: list[str] = []
    outcome = backup.run(nodes, A, ["now"], lines.append, 60)
    assert nodes.calls == [("digitalocean", ["sudo", "-n", "/usr/local/sbin/twinhost-backup", "now"])]
    assert lines[0] == "twinhost-backup: database dumped"
    assert backup.json_tail(outcome.output) == {"snapshot": "ab12cd34", "files": 3}


def test_status_shows_the_last_good_backups_age_and_a_later_failure():
    record = {
        "now": 1_000_000,
        "success": {"time": 1_000_000 - 7200, "node": "linode", "snapshot": "ab12cd34"},
        "failure": {"time": 1_000_000 - 60, "step": "the snapshot"},
    }
    assert (
        backup.describe_last(record) == "last good 2.0 h ago (linode, ab12cd34); FAILED since at the snapshot"
    )
    assert backup.describe_last({"now": 5, "success": {}, "failure": {}}) == "no good backup yet"
    assert backup.describe_last(None) is None


def test_snapshots_are_listed_by_short_id_and_time():
    rows = backup.snapshot_rows(
        [{"short_id": "ab12cd34", "time": "2026-12-05T02:15:03.1Z", "paths": ["/srv/shared", "/var/x"]}]
    )
    assert rows == [("ab12cd34", "2026-12-05 02:15:03", "/srv/shared /var/x")]


def test_restore_in_place_is_refused_without_yes_before_any_ssh(tmp_path):
    from tests.conftest import run_twinhost

    result = run_twinhost("restore", "harbourlaw", "--addresses", str(tmp_path / "none.json"))
    assert result.returncode == 2
    assert "add --yes" in result.stderr
