"""twinhost-galera's one dangerous decision, run for real against stand-ins for systemctl, the
mariadb client and galera_new_cluster: a new cluster is bootstrapped only by the primary node,
only with no data of its own, only when the peer has published that it holds none, and only
after a join failed. Anything else keeps trying to join (the script loops: we stop it)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "cloudinit/site/usr/local/sbin/twinhost-galera"
UUID = "6b3f1c2e-1111-2222-3333-444455556666"
PASSWORD = "Pw" + "7" * 30

FAKE_SYSTEMCTL = """#!/bin/bash
echo "systemctl $*" >>"$FAKE/calls"
if [ "$1 $2" = "start mariadb.service" ]; then
    [ -e "$FAKE/primary" ] && { touch "$FAKE/running"; exit 0; }
    exit 1
fi
[ "$1" = "is-active" ] && { [ -e "$FAKE/running" ]; exit $?; }
exit 0
"""
FAKE_MARIADB = """#!/bin/bash
echo "mariadb $*" >>"$FAKE/calls"
case "$*" in
    *wsrep_ready*) printf 'wsrep_ready\\tON\\n' ;;
    *wsrep_local_state_comment*) printf 'wsrep_local_state_comment\\tSynced\\n' ;;
    *) cat >>"$FAKE/sql" ;;
esac
"""
FAKE_NEW_CLUSTER = """#!/bin/bash
echo "galera_new_cluster" >>"$FAKE/calls"
touch "$FAKE/primary" "$FAKE/running"
"""


@dataclass
class Run:
    calls: str
    sql: str
    output: str
    finished: bool

    @property
    def bootstrapped(self) -> bool:
        return "galera_new_cluster" in self.calls


def run(
    tmp_path: Path, *, role: str, own_uuid: str | None, peer: str | None, peer_primary: bool = False
) -> Run:
    fake, data, state = tmp_path / "fake", tmp_path / "data", tmp_path / "shared"
    for directory in (fake / "bin", data, state, tmp_path / "etc"):
        directory.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("systemctl", FAKE_SYSTEMCTL),
        ("mariadb", FAKE_MARIADB),
        ("galera_new_cluster", FAKE_NEW_CLUSTER),
    ):
        (fake / "bin" / name).write_text(text)
        (fake / "bin" / name).chmod(0o755)
    (fake / "calls").write_text("")
    if peer_primary:
        (fake / "primary").touch()
    if own_uuid is not None:
        (data / "grastate.dat").write_text(
            f"# GALERA saved state\nversion: 2.1\nuuid: {own_uuid}\nseqno: 7\n"
        )
    if peer is not None:
        (state / "node_b").write_text(peer + "\n")
    (tmp_path / "etc/galera.cnf").write_text("[mariadb]\nwsrep_on = ON\n")
    (tmp_path / "etc/password").write_text(PASSWORD + "\n")
    env_file = tmp_path / "db.env"
    env_file.write_text(
        "".join(
            f"{k}={v}\n"
            for k, v in {
                "ROLE": role,
                "NODE_NAME": "node_a",
                "PEER_NAME": "node_b",
                "DB_NAME": "acme_shop",
                "DB_USER": "acme_shop",
                "PASSWORD_FILE": tmp_path / "etc/password",
                "OPTION_FILE": tmp_path / "etc/client.cnf",
                "STATE_DIR": state,
                "STAGED_CONFIG": tmp_path / "etc/galera.cnf",
                "GALERA_CONFIG": tmp_path / "etc/60-twinhost-galera.cnf",
            }.items()
        )
    )
    env = {
        **os.environ,
        "PATH": f"{fake / 'bin'}:{os.environ['PATH']}",
        "FAKE": str(fake),
        "TWINHOST_DB_ENV": str(env_file),
        "DATADIR": str(data),
        "RETRY_SECONDS": "0.2",
    }
    try:
        done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=4)
        output, finished = done.stdout + done.stderr, done.returncode == 0
    except subprocess.TimeoutExpired as exc:
        output, finished = str(exc.stdout or b"", "utf-8", "replace"), False
    sql = (fake / "sql").read_text() if (fake / "sql").exists() else ""
    return Run((fake / "calls").read_text(), sql, output, finished)


def test_a_fresh_primary_bootstraps_when_the_fresh_peer_has_no_primary_component(tmp_path):
    result = run(tmp_path, role="bootstrap", own_uuid=None, peer="empty")
    assert result.finished and result.bootstrapped, result.output
    # It tried to join first.
    assert result.calls.index("systemctl start mariadb.service") < result.calls.index("galera_new_cluster")
    assert (tmp_path / "shared/node_a").read_text().strip() == "empty"  # published before deciding


def test_the_database_and_user_are_made_without_the_password_on_a_command_line(tmp_path):
    result = run(tmp_path, role="bootstrap", own_uuid=None, peer="empty")
    assert "CREATE DATABASE IF NOT EXISTS `acme_shop`" in result.sql
    assert f"CREATE USER IF NOT EXISTS 'acme_shop'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'" in result.sql
    assert "GRANT ALL PRIVILEGES ON `acme_shop`.* TO 'acme_shop'@'localhost'" in result.sql
    assert PASSWORD not in result.calls  # every argv the stand-ins saw
    option_file = (tmp_path / "etc/client.cnf").read_text()
    assert f"password={PASSWORD}\n" in option_file and "host=127.0.0.1\n" in option_file
    assert (tmp_path / "etc/client.cnf").stat().st_mode & 0o777 == (
        tmp_path / "etc/password"
    ).stat().st_mode & 0o777
    assert (tmp_path / "etc/60-twinhost-galera.cnf").read_text() == "[mariadb]\nwsrep_on = ON\n"


def test_a_node_joins_an_existing_primary_component_and_never_bootstraps(tmp_path):
    result = run(tmp_path, role="bootstrap", own_uuid=None, peer=f"{UUID}:-1", peer_primary=True)
    assert result.finished and not result.bootstrapped, result.output


@pytest.mark.parametrize(
    ("own_uuid", "peer", "why"),
    [
        (UUID, "empty", "holds cluster data"),
        (None, f"{UUID}:12", "the peer's state is"),
        (None, None, "the peer's state is 'unknown'"),
    ],
    ids=["own data", "peer holds data", "peer state unknown"],
)
def test_the_primary_never_bootstraps_over_data_or_in_doubt(tmp_path, own_uuid, peer, why):
    result = run(tmp_path, role="bootstrap", own_uuid=own_uuid, peer=peer)
    assert not result.finished and not result.bootstrapped
    assert why in result.output and "waiting to join" in result.output


def test_a_zero_uuid_from_a_failed_join_is_no_data(tmp_path):
    result = run(tmp_path, role="bootstrap", own_uuid="00000000-0000-0000-0000-000000000000", peer="empty")
    assert result.finished and result.bootstrapped, result.output


def test_the_secondary_never_bootstraps(tmp_path):
    result = run(tmp_path, role="join", own_uuid=None, peer="empty")
    assert not result.finished and not result.bootstrapped
    assert result.calls.count("systemctl start mariadb.service") >= 2  # it keeps trying to join


def _fence_run(tmp_path, cluster_size: int, steps: str) -> subprocess.CompletedProcess[str]:
    """The script's fence|unfence steps in a private network namespace, with the real iptables and
    a stand-in mariadb reporting `cluster_size` members."""
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "bin/mariadb").write_text(f"#!/bin/sh\nprintf 'wsrep_cluster_size\\t{cluster_size}\\n'\n")
    (tmp_path / "bin/mariadb").chmod(0o755)
    env_file = tmp_path / "db.env"
    env_file.write_text("MESH_INTERFACE=tinc0\nGALERA_PORT=4567\n")
    return subprocess.run(
        ["unshare", "--net", "bash", "-c", steps],
        env={
            **os.environ,
            "TWINHOST_DB_ENV": str(env_file),
            "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        },
        capture_output=True,
        text=True,
        timeout=30,
    )


SHOW_FENCE = 'echo "rules=$(iptables -w -S | grep -c twinhost-galera-fence)"'
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root for a private network namespace (CI runs as root)"
)


@needs_root
def test_fence_drops_only_galera_group_traffic_on_the_mesh_and_unfence_restores_it(tmp_path):
    """`twinhost-galera fence|unfence` while all three members are in the cluster: idempotent both
    ways (the health probe calls fence at every failed write)."""
    steps = f"bash {SCRIPT} fence; bash {SCRIPT} fence; {SHOW_FENCE}; iptables -w -S; bash {SCRIPT} unfence; {SHOW_FENCE}"
    done = _fence_run(tmp_path, 3, steps)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    counts = [line for line in lines if line.startswith("rules=")]
    assert counts == ["rules=2", "rules=0"], done.stdout  # one rule each way, however often fenced
    rules = [line for line in lines if "twinhost-galera-fence" in line]
    assert any(r.startswith("-A INPUT -i tinc0 -p tcp -m multiport --ports 4567") for r in rules), rules
    assert any(r.startswith("-A OUTPUT -o tinc0 -p tcp -m multiport --ports 4567") for r in rules), rules
    assert all(r.endswith("-j DROP") for r in rules), rules
    assert done.stdout.count("twinhost-galera: fenced:") == 1 and "unfenced:" in done.stdout


@needs_root
def test_a_survivor_whose_cluster_already_dropped_the_peer_is_not_fenced(tmp_path):
    """A dead (or wholly cut) peer is dropped by this node and garbd within evs.suspect_timeout,
    before the volume's ping-timeout: fencing then would stop the database on the node left."""
    done = _fence_run(tmp_path, 2, f"bash {SCRIPT} fence; {SHOW_FENCE}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rules=0" in done.stdout.splitlines() and "fenced:" not in done.stdout
