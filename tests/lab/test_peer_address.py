"""A replaced peer's new public address, on the booted lab (issue 18): node A's converge, run the
way `pulumi up` runs it (the recorded `converge-apply` command over SSH from the lab's admin
network, its stdin on standard input), with real ufw, real tincd and the booted files.

The lab's addresses are fixed, so the new Linode's address is played twice: node A's desired
state is first pointed at an address nobody has (`MOVED`, what node A would be told if node B
had been replaced by a node there), then back at node B's real address (as if node B had been
replaced by the node that is there). The second converge must rewrite what the first did and
the mesh must form again with nothing else done. The round ends as the lab booted.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import stack_file_values
from tests.lab.conftest import FIGURES
from tests.lab.test_converge import _commands, _ssh
from twinhost_lab import database
from twinhost_lab import lab as lab_module
from twinhost_lab.checks import RunningLab
from twinhost_lab.host import run
from twinhost_lab.network import in_namespace

pytestmark = pytest.mark.lab

MOVED = "192.0.2.199"  # TEST-NET-1: no lab machine has it
SOURCE = "198.51.100.212"  # its own admin address: ufw's `limit` counts SSH connections per source
MESH_SECONDS = 120


def _apply(lab: RunningLab, command: str, stdin: str) -> str:
    ssh = _ssh(lab, "digitalocean", command, key=lab_module.admin_key_path(lab.layout), source=SOURCE)
    done = run(in_namespace(lab.layout.admin_namespace, ssh), input=stdin, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-1500:]
    return done.stderr


def _moved(stdin: str, old: str, new: str) -> str:
    """Node A's desired state with its peer at `new`: every mention of `old` in the peer's part."""
    state = json.loads(stdin)
    text = re.sub(rf"(?<![\d.]){re.escape(old)}(?![\d.])", new, json.dumps(state["peer"]))
    state["peer"] = json.loads(text)
    return json.dumps(state)


def _tinc_sources(lab: RunningLab) -> set[str]:
    shown = lab.boxes["digitalocean"].exec(["ufw", "show", "added"]).stdout.splitlines()
    return {
        line.split()[3]
        for line in shown
        if line.startswith("ufw allow from ") and line.endswith("comment 'tinc from the peer node'")
    }


def _mesh_up(lab: RunningLab) -> bool:
    ping = ["ping", "-c", "1", "-W", "1", lab.mesh["linode"]]
    return lab.boxes["digitalocean"].exec(ping, check=False, timeout=10).returncode == 0


@pytest.fixture(scope="module")
def moves(running_lab: RunningLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    lab = running_lab
    run(
        in_namespace(
            lab.layout.admin_namespace,
            ["ip", "address", "replace", f"{SOURCE}/{lab.layout.prefixlen}", "dev", "thl1-ns"],
        )
    )
    shipped = stack_file_values(lab.layout.stack)
    if database.has_database(lab):
        shipped["database"] = "mariadb"
    node_a = _commands(lab, tmp_path_factory.mktemp("plans") / "shipped", copy.deepcopy(shipped))[
        "digitalocean"
    ]
    peer = lab.address("linode")
    result: dict[str, Any] = {"peer": peer, "service": json.loads(node_a["stdin"])["peer"]["service"]}
    try:
        result["booted"] = _apply(lab, node_a["apply"], node_a["stdin"])
        result["booted sources"] = _tinc_sources(lab)
        result["moved"] = _apply(lab, node_a["apply"], _moved(node_a["stdin"], peer, MOVED))
        result["moved sources"] = _tinc_sources(lab)
        result["moved host file"] = (
            lab.boxes["digitalocean"].exec(f"cat /etc/tinc/*/hosts/{lab.site['site']}_linode").stdout
        )
        result["moved tinc"] = (
            lab.boxes["digitalocean"]
            .exec(["systemctl", "is-active", result["service"]], check=False)
            .stdout.strip()
        )
        started = time.monotonic()
        result["back"] = _apply(lab, node_a["apply"], node_a["stdin"])
        result["back sources"] = _tinc_sources(lab)
        while not _mesh_up(lab) and time.monotonic() - started < MESH_SECONDS:
            time.sleep(1)
        result["mesh seconds"] = time.monotonic() - started if _mesh_up(lab) else None
        yield result
    finally:
        _apply(lab, node_a["apply"], node_a["stdin"])  # as booted, whatever failed above


def test_a_converge_to_the_address_node_a_booted_with_changes_nothing(moves: dict[str, Any]) -> None:
    """Real ufw's `show added` and the booted host file and peer-route.env are read as the first
    boot wrote them: nothing to add, delete or rewrite."""
    assert f"mesh peer: unchanged ({moves['peer']})" in moves["booted"]
    assert moves["booted sources"] == {moves["peer"]}


def test_a_new_peer_address_is_written_to_tinc_and_ufw_and_tinc_keeps_running(moves: dict[str, Any]) -> None:
    assert (
        f"mesh peer: {MOVED} (tinc rules: 2 added, 2 removed; new tinc host file, peer-route.env; "
        "tinc reloaded)" in moves["moved"]
    ), moves["moved"]
    assert moves["moved sources"] == {MOVED}
    assert (
        f"Address = {MOVED} 655" in moves["moved host file"] and moves["peer"] not in moves["moved host file"]
    )
    assert moves["moved tinc"] == "active"


def test_the_mesh_forms_again_once_node_a_is_told_the_peers_address(
    moves: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    assert (
        "tinc rules: 2 added, 2 removed; new tinc host file, peer-route.env; tinc reloaded" in moves["back"]
    )
    assert moves["back sources"] == {moves["peer"]}
    seconds = moves["mesh seconds"]
    request.config.stash[FIGURES].append(
        f"PEER ADDRESS: mesh A->B answering {seconds:.1f} s after node A's converge started"
        if seconds is not None
        else f"PEER ADDRESS: mesh A->B not answering within {MESH_SECONDS} s"
    )
    assert seconds is not None, f"node A does not reach node B over the mesh within {MESH_SECONDS} s"
