"""Day 2 on the booted lab (issue 17, items 1 and 5): the converge `pulumi up` runs, run the way it
runs it, against both booted nodes. For each round the example site's stack file is edited and
planned with the lab's profile (as `twinhost lab up` rendered the nodes), and each node's
`converge-apply` and `converge-health` commands are taken from the recorded resources: their
`create` command, run over SSH as the admin user from the lab's admin network with the rendered
stdin, node A (apply, gate) then node B. pulumi-command connects with the ssh-agent's key; here
the lab admin key (in sshKeys through the lab profile) plays that part.

Round 1 lists a staff key K1; round 2 rotates it to K2 (K1 removed), changes the app's version
and settings, and swaps one admin network. Then: K2 logs in on both nodes, K1 is refused on both,
the new settings are in the running app's environment, the new version answers /health from the
internet namespace, and ufw holds exactly the new networks. The module ends by converging back
to the stack file as shipped, so the checks after it see the lab as booted.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from infra.plan.runner import reveal, run_plan
from tests.conftest import stack_file_values, write_stack
from tests.lab.conftest import FIGURES
from twinhost_lab import database
from twinhost_lab import lab as lab_module
from twinhost_lab.checks import AUDIT_SOURCE, FAIL2BAN_SOURCE, RunningLab
from twinhost_lab.host import run
from twinhost_lab.network import in_namespace

pytestmark = pytest.mark.lab

SITE_ROLES = ("digitalocean", "linode")
NEW_NETWORK = "192.0.2.128/25"
VERSION = "2.0-lab"
SETTING = ("TWINHOST_LAB_GREETING", "converged")
# ufw's `limit` refuses a source's 6th new SSH connection within 30 s, and each round makes two
# per node (apply, gate; as `pulumi up` does): the rounds and the key logins each come from their
# own address in the lab's admin network (198.51.100.208/29).
LOGIN_SOURCE = "198.51.100.213"
ROUND_SOURCES = {"first": AUDIT_SOURCE, "second": "198.51.100.214", "shipped": "198.51.100.215"}


def _key(directory: Path, name: str) -> tuple[Path, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    path = directory / name
    path.touch(mode=0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return path, f"{public.decode()} {name}@lab"


def _lab_admin_public(lab: RunningLab) -> str:
    private = serialization.load_ssh_private_key(lab_module.admin_key_path(lab.layout).read_bytes(), None)
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return public.decode() + " twinhost-lab-admin"


def _commands(lab: RunningLab, directory: Path, values: dict[str, Any]) -> dict[str, dict[str, str]]:
    """{role: {apply, health, stdin}} as the program declares them for this config."""
    directory.mkdir(parents=True)
    profile = lab_module.lab_profile(lab.layout, lab.state.ca_pem, _lab_admin_public(lab))
    plan = run_plan(write_stack(directory, lab.layout.stack, values), lab=profile)
    by_name = {r.name: r for r in plan.resources}
    site = lab.site["site"]
    found = {}
    for role in SITE_ROLES:
        apply = by_name[f"{site}-{role}-converge-apply"]
        health = by_name[f"{site}-{role}-converge-health"]
        assert reveal(apply.inputs["connection"])["host"] == lab.address(role)
        found[role] = {
            "apply": str(apply.inputs["create"]),
            "health": str(health.inputs["create"]),
            "stdin": str(reveal(apply.inputs["stdin"])),
        }
    return found


def _ssh(lab: RunningLab, role: str, command: str, *, key: Path, source: str = AUDIT_SOURCE) -> list[str]:
    options = ["BatchMode=yes", "StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null"]
    options += ["ConnectTimeout=5", "LogLevel=ERROR", "IdentitiesOnly=yes"]
    return [
        "ssh",
        *(word for option in options for word in ("-o", option)),
        "-i",
        str(key),
        "-b",
        source,
        f"{lab.site['admin_user']}@{lab.address(role)}",
        command,
    ]


def _converge(lab: RunningLab, commands: dict[str, dict[str, str]], source: str) -> dict[str, str]:
    """As `pulumi up` runs them: A apply, A gate, then B apply, B gate; stop at a failure."""
    admin_key = lab_module.admin_key_path(lab.layout)
    logs = {}
    for role in SITE_ROLES:
        for step in ("apply", "health"):
            started = time.monotonic()
            command = _ssh(lab, role, commands[role][step], key=admin_key, source=source)
            done = run(
                in_namespace(lab.layout.admin_namespace, command),
                input=commands[role]["stdin"] if step == "apply" else None,
                check=False,
                timeout=300,
            )
            assert done.returncode == 0, f"{role} {step}: {done.stderr[-1500:]}"
            logs[f"{role} {step}"] = done.stderr
            logs[f"{role} {step} seconds"] = f"{time.monotonic() - started:.1f}"
    return logs


def _logs_in(lab: RunningLab, role: str, key: Path, source: str = LOGIN_SOURCE) -> bool:
    command = _ssh(lab, role, "id -un", key=key, source=source)
    done = lab.admin(command, timeout=30)
    return done.returncode == 0 and done.stdout.strip() == lab.site["admin_user"]


@pytest.fixture(scope="module")
def rounds(
    running_lab: RunningLab, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[dict[str, Any]]:
    lab = running_lab
    for address in (LOGIN_SOURCE, *ROUND_SOURCES.values()):
        run(
            in_namespace(
                lab.layout.admin_namespace,
                ["ip", "address", "replace", f"{address}/{lab.layout.prefixlen}", "dev", "thl1-ns"],
            )
        )
    keys = tmp_path_factory.mktemp("keys")
    work = tmp_path_factory.mktemp("plans")
    k1, k1_public = _key(keys, "k1")
    k2, k2_public = _key(keys, "k2")
    shipped = stack_file_values(lab.layout.stack)
    if database.has_database(lab):
        # The lab booted a copy of the stack with `database: mariadb` (TWINHOST_LAB_DATABASE=1): plan
        # the same, or the converge's environment file would lack the DB_* settings the node has.
        shipped["database"] = "mariadb"
    kept_network, dropped_network = shipped["adminCidrs"][0], shipped["adminCidrs"][-1]

    first = copy.deepcopy(shipped)
    first["sshKeys"] = [*shipped["sshKeys"], k1_public]
    second = copy.deepcopy(shipped)
    second["sshKeys"] = [*shipped["sshKeys"], k2_public]
    second["app"] = {**shipped.get("app", {}), "version": VERSION, "env": dict([SETTING])}
    second["adminCidrs"] = [NEW_NETWORK, *shipped["adminCidrs"][:-1]]

    result: dict[str, Any] = {"keys": {"k1": k1, "k2": k2}, "networks": (kept_network, dropped_network)}
    # Each node's peer: node A's is node B's address, node B's node A's reserved IP (the second).
    result["peer addresses"] = {
        "digitalocean": lab.address("linode"),
        "linode": lab.layout.node("digitalocean").addresses[1],
    }
    try:
        result["first"] = _converge(lab, _commands(lab, work / "first", first), ROUND_SOURCES["first"])
        result["k1_before"] = {role: _logs_in(lab, role, k1) for role in SITE_ROLES}
        result["second"] = _converge(lab, _commands(lab, work / "second", second), ROUND_SOURCES["second"])
        figures = request.config.stash[FIGURES]
        for name in ("first", "second"):
            steps = ", ".join(
                f"{k.removesuffix(' seconds')} {v} s"
                for k, v in result[name].items()
                if k.endswith("seconds")
            )
            figures.append(f"CONVERGE {name} round: {steps}")
        yield result
    finally:
        # Back to the stack file as shipped (what the nodes booted with) for the checks that follow.
        _converge(lab, _commands(lab, work / "shipped", copy.deepcopy(shipped)), ROUND_SOURCES["shipped"])
        for role in SITE_ROLES:
            lab.unban(role, FAIL2BAN_SOURCE, LOGIN_SOURCE, *ROUND_SOURCES.values())


def test_the_first_converge_of_a_booted_node_adds_the_new_key_and_touches_nothing_else(
    rounds: dict[str, Any],
) -> None:
    for role in SITE_ROLES:
        log = rounds["first"][f"{role} apply"]
        assert "ssh keys: replaced" in log
        # Real ufw's `show added` was read: the booted rules were recognised, none re-added.
        assert "(0 added, 0 removed)" in log
        # ... the peer's tinc rules too (found by their comment), and its host file as booted.
        assert f"mesh peer: unchanged ({rounds['peer addresses'][role]})" in log
        assert "app: unchanged" in log
        assert "3 x 200" in rounds["first"][f"{role} health"]
    assert rounds["k1_before"] == {"digitalocean": True, "linode": True}


def test_a_rotated_key_list_lets_the_new_key_in_and_keeps_the_removed_one_out_on_both_nodes(
    running_lab: RunningLab, rounds: dict[str, Any]
) -> None:
    for role in SITE_ROLES:
        assert _logs_in(running_lab, role, rounds["keys"]["k2"]), f"K2 refused on {role}"
        # Another admin address: one refused login must not get the next checks' source banned.
        assert not _logs_in(running_lab, role, rounds["keys"]["k1"], source=FAIL2BAN_SOURCE), (
            f"the removed key K1 still logs in on {role}"
        )


def test_changed_settings_and_version_reach_the_running_app_on_both_nodes(
    running_lab: RunningLab, rounds: dict[str, Any]
) -> None:
    name, value = SETTING
    www = running_lab.site["www"][0]
    for role in SITE_ROLES:
        assert f"-> {VERSION} (new environment)" in rounds["second"][f"{role} apply"]
        box = running_lab.boxes[role]
        slot = box.exec(["cat", "/var/lib/twinhost/app/active"]).stdout.strip()
        pid = box.exec(
            ["systemctl", "show", "-p", "MainPID", "--value", f"twinhost-app@{slot}"]
        ).stdout.strip()
        environ = box.exec(["cat", f"/proc/{pid}/environ"]).stdout.split("\0")
        assert f"{name}={value}" in environ, f"{role}: {name} not in the running app's environment"
        health = running_lab.curl(f"https://{www}/health", www, running_lab.address(role))
        assert json.loads(health.stdout)["version"] == VERSION, (role, health.stdout, health.stderr)


def test_admin_networks_are_swapped_in_the_real_ufw(running_lab: RunningLab, rounds: dict[str, Any]) -> None:
    kept, dropped = rounds["networks"]
    for role in SITE_ROLES:
        assert "(1 added, 1 removed)" in rounds["second"][f"{role} apply"]
        shown = running_lab.boxes[role].exec(["ufw", "show", "added"]).stdout
        ssh_sources = {
            line.split()[3]
            for line in shown.splitlines()
            if line.startswith("ufw limit from ") and " port 22 " in line
        }
        assert NEW_NETWORK in ssh_sources and kept in ssh_sources and dropped not in ssh_sources
        assert running_lab.layout.admin_network in ssh_sources
