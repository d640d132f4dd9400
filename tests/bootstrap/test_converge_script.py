"""twinhost-converge, run for real against a node's first-boot files, the way `pulumi up`'s
converge command installs and runs it: SSH keys replaced exactly,
admin networks replaced in ufw (new before old), a replaced peer's new address in tinc, ufw and
the droplet's peer route, the app redeployed only when it differs, and idempotence. ufw, systemctl and twinhost-deploy are stand-ins on PATH that log their calls; the
ufw stand-in keeps its rules and prints `ufw show added` the way ufw 0.36 formats it
(ufw/parser.py `get_command`), and the starting rules come from running the node's own rendered
twinhost-firewall through it. The real ufw is exercised in the lab (tests/lab/test_converge.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.bootstrap.app import environment_text
from infra.bootstrap.backup import ENV_FILE, TIMER, BackupNode, backup_parts
from infra.bootstrap.converge import desired_state, peer_state, to_json
from infra.bootstrap.database import database_env
from infra.bootstrap.parts import static, strip_comments
from infra.bootstrap.spec import MeshPeer, NodeSpec
from infra.bootstrap.tinc import (
    PEER_ROUTE_ENV,
    peer_host_file,
    peer_host_path,
    peer_route_env,
    routed_addresses,
)
from infra.components.node_converge import converge_command
from tests.bootstrap.bootstrap_nodes import rendered_files
from tests.bootstrap.bootstrap_specs import DROPLET_OWN_IP, PUBLIC, WITNESS_ADDRESS, make_spec

# ufw's rule store and `show added`, for the forms twinhost's firewall script uses.
FAKE_UFW = r"""#!/usr/bin/env python3
import json, os, shlex, sys
args = sys.argv[1:]
with open(os.environ["CALLS"], "a") as log:
    log.write("ufw " + shlex.join(args) + "\n")
path = os.environ["UFW_RULES"]
rules = json.load(open(path)) if os.path.exists(path) else []

def canonical(words):
    action, rest = words[0], words[1:]
    spec = {"in": False, "on": "", "proto": "any", "from": "any", "to": "any", "port": "any", "comment": ""}
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "in":
            i += 1
            continue
        spec[word] = rest[i + 1]
        i += 2
    if spec["from"] == "any" and spec["to"] == "any" and not spec["on"] and spec["port"] != "any":
        text = f"{action} {spec['port']}" + (f"/{spec['proto']}" if spec["proto"] != "any" else "")
    else:
        text = action + (f" in on {spec['on']}" if spec["on"] else "")
        for key, word in (("from", "from"), ("to", "to")):
            port = spec["port"] if key == "to" else "any"
            if spec[key] != "any" or port != "any":
                text += f" {word} {spec[key]}" + (f" port {port}" if port != "any" else "")
        if " to " not in text and " from " not in text and not spec["on"]:
            text += " to any"
        if spec["proto"] != "any":
            text += f" proto {spec['proto']}"
    return text, spec["comment"]

if args[:2] == ["--force", "reset"]:
    rules = []
elif args[0] in ("default", "--force", "enable"):
    pass
elif args[:2] == ["show", "added"]:
    print("Added user rules (see 'ufw status' for running firewall):")
    for text, comment in rules:
        print("ufw " + text + (f" comment '{comment}'" if comment else ""))
    sys.exit(0)
elif args[0] == "delete":
    text, _ = canonical(args[1:])
    left = [r for r in rules if r[0] != text]
    if len(left) == len(rules):
        print("Could not delete non-existent rule", file=sys.stderr)
        sys.exit(1)
    rules = left
else:
    text, comment = canonical(args)
    if any(r[0] == text for r in rules):
        print("Skipping adding existing rule")
    else:
        rules.append([text, comment])
json.dump(rules, open(path, "w"))
"""
FAKES = {
    # `enable`/`disable` of a timer link it into timers.target.wants, as systemd does.
    "systemctl": (
        'echo "systemctl $*" >> "$CALLS"; wants="$TWINHOST_ROOT/etc/systemd/system/timers.target.wants"; '
        'case "$1 $2" in "enable --now") mkdir -p "$wants"; ln -sf "../$3" "$wants/$3";; '
        '"disable --now") rm -f "$wants/$3";; esac'
    ),
    # Installed: the packages named in $INSTALLED.
    "dpkg-query": 'case " $INSTALLED " in *" $3 "*) printf "ii ";; *) printf "un ";; esac',
    "apt-get": 'echo "apt-get $* ($DEBIAN_FRONTEND)" >> "$CALLS"',
    # The real twinhost-deploy is tested in test_deploy.py; here: record, fail on request, and
    # do what it does to the slot files when it succeeds.
    # sudo as the admin would get it: root, the same environment (here: the test's).
    "sudo": '[ "$1" = -n ] && shift; exec "$@"',
    "cloud-init": 'echo "cloud-init $*" >> "$CALLS"; exit "${CLOUD_INIT_RC:-0}"',
    # The droplet's route to an old peer address: none off DigitalOcean, so `del` fails there.
    "ip": 'echo "ip $*" >> "$CALLS"; exit 2',
    "twinhost-deploy": (
        'echo "twinhost-deploy $*" >> "$CALLS"; [ -z "$DEPLOY_FAILS" ] || { echo "slot not healthy" >&2; exit 1; }; '
        'echo green > "$TWINHOST_STATE_DIR/active"; printf "PORT=8081\\nAPP_VERSION=%s\\n" "$1" > "$TWINHOST_APP_DIR/slot-green.env"'
    ),
}
SCRIPT = static("site/usr/local/sbin/twinhost-converge")
ADMIN = pwd.getpwuid(os.getuid()).pw_name  # the script looks the admin user up; tests run as anyone


def _node(
    tmp_path: Path, app: str = "demo", provider: str = "digitalocean", backup: bool = True
) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """A node as its first boot left it, the command that runs the script, and its environment."""
    spec = make_spec(provider, app=app, backup=backup)
    files = rendered_files(spec)
    etc, state, home, bin_dir, root = (tmp_path / d for d in ("etc", "state", "home", "bin", "root"))
    for directory in (etc, state, home, bin_dir, root):
        directory.mkdir()
    # The backup's files and its enabled timer, where the script is told the root is.
    for item in backup_parts(spec).files:
        target = root / item.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(files[item.path].content)
    # The files that name the mesh peer's address (the droplet's peer-route.env too).
    for path in (peer_host_path(spec.tinc_net, spec.peer), PEER_ROUTE_ENV):
        if path in files:
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(files[path].content)
    if spec.backup:
        (root / "etc/systemd/system/timers.target.wants").mkdir()
        (root / f"etc/systemd/system/timers.target.wants/{TIMER}").symlink_to(f"../{TIMER}")
    for name in ("environment", "slot-blue.env", "deploy.env", "php-fpm.conf"):
        if f"/etc/twinhost/app/{name}" in files:
            (etc / name).write_text(files[f"/etc/twinhost/app/{name}"].content)
    (state / "active").write_text(files["/var/lib/twinhost/app/active"].content)
    unit = tmp_path / "twinhost-app@.service"
    unit.write_text(files["/etc/systemd/system/twinhost-app@.service"].content)
    (home / ".ssh").mkdir(mode=0o700)
    (home / ".ssh/authorized_keys").write_text("".join(k + "\n" for k in spec.ssh_keys))
    (bin_dir / "ufw").write_text(FAKE_UFW)
    for name, body in FAKES.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CALLS": str(tmp_path / "calls"),
        "UFW_RULES": str(tmp_path / "ufw.json"),
        "TWINHOST_APP_DIR": str(etc),
        "TWINHOST_STATE_DIR": str(state),
        "TWINHOST_UNIT": str(unit),
        "TWINHOST_HOME": str(home),
        "TWINHOST_DEPLOY": str(bin_dir / "twinhost-deploy"),
        "DEPLOY_FAILS": "",
        "TWINHOST_ROOT": str(root),
        "INSTALLED": "restic rsync" if spec.backup else "",
    }
    # The first boot's firewall, through the ufw stand-in: the rules the node starts with.
    firewall = tmp_path / "twinhost-firewall"
    firewall.write_text(files["/usr/local/sbin/twinhost-firewall"].content)
    subprocess.run(["sh", str(firewall)], env=env, check=True)
    (tmp_path / "calls").unlink()
    booted = {
        "ssh_keys": list(spec.ssh_keys),
        "admin_cidrs": list(spec.admin_cidrs),
        "app": spec.app,
        "app_secrets": dict(spec.app_secrets),
        "debian": spec.debian,
        "backup": BackupNode.of(spec),
        "database_env": database_env(spec) or None,
        "app_keys": dict(spec.app_keys) or None,
        "memory_mib": spec.memory_mib,
        "peer": _peer(spec, spec.peer),
    }
    # Exactly the command the converge resource runs, installing the script here instead.
    command = ["bash", "-c", converge_command(SCRIPT, target=str(tmp_path / "sbin/twinhost-converge"))]
    (tmp_path / "sbin").mkdir()
    return command, env, booted


def _peer(spec: NodeSpec, peer: MeshPeer) -> dict[str, Any]:
    return peer_state(provider=spec.provider, tinc_net=spec.tinc_net, peer=peer, witness=spec.witness)


def _state(booted: dict[str, Any], **changes: Any) -> str:
    values = {**booted, **changes}
    return to_json(desired_state(admin_user=ADMIN, **values))


def _converge(
    command: list[str], env: dict[str, str], state: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, input=state, env={**env, **extra}, capture_output=True, text=True, timeout=60
    )


def _calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line for line in lines if line != "cloud-init status --wait"]


def _ssh_sources(tmp_path: Path) -> list[str]:
    rules = json.loads((tmp_path / "ufw.json").read_text())
    return [text.split()[2] for text, _ in rules if text.startswith("limit from ") and " port 22 " in text]


@pytest.mark.parametrize("app", ["demo", "container", "wordpress"])
def test_converging_to_the_config_a_node_booted_with_changes_nothing(tmp_path: Path, app: str) -> None:
    command, env, booted = _node(tmp_path, app)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "calls"}
    result = _converge(command, env, _state(booted))
    assert result.returncode == 0, result.stderr
    assert "ssh keys: unchanged" in result.stderr and "app: unchanged" in result.stderr
    assert "(0 added, 0 removed)" in result.stderr and "backups: unchanged" in result.stderr
    assert "mesh peer: unchanged" in result.stderr
    # Only `ufw show added` ran: no rule added or deleted, no deploy, no daemon-reload.
    assert _calls(tmp_path) == ["ufw show added"]
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize("app", ["demo", "container"])
def test_a_digitalocean_node_whose_first_boot_dropped_comment_lines_is_unchanged_too(
    tmp_path: Path, app: str
) -> None:
    """DigitalOcean's user data drops comment-only and blank lines from config files (`compact`):
    the node's unit and settings file differ from the full text only there, which is no change."""
    command, env, booted = _node(tmp_path, app)
    backup = [_root(tmp_path, f.path) for f in backup_parts(booted["backup"]).files if f.path != ENV_FILE]
    mesh = [_root(tmp_path, booted["peer"][k]["path"]) for k in ("hostFile", "route")]
    for path in (tmp_path / "etc/environment", tmp_path / "twinhost-app@.service", *backup, *mesh):
        stripped = strip_comments(path.read_text())
        assert stripped != path.read_text()
        path.write_text(stripped)
    result = _converge(command, env, _state(booted))
    assert result.returncode == 0, result.stderr
    assert "app: unchanged" in result.stderr and "backups: unchanged" in result.stderr
    assert "mesh peer: unchanged" in result.stderr
    assert _calls(tmp_path) == ["ufw show added"]


def test_rotated_ssh_keys_replace_authorized_keys_exactly(tmp_path: Path) -> None:
    command, env, booted = _node(tmp_path)
    new_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ1dP0Pz3qSg7GLBd7oPq4hpx0LBcZ6S5v8iGXyQ7Ywz new@agency"]
    result = _converge(command, env, _state(booted, ssh_keys=new_keys))
    assert result.returncode == 0, result.stderr
    authorized = tmp_path / "home/.ssh/authorized_keys"
    assert authorized.read_text() == new_keys[0] + "\n"  # the old key is gone
    assert authorized.stat().st_mode & 0o777 == 0o600
    assert "ssh keys: replaced (1)" in result.stderr


def test_admin_networks_are_replaced_new_ones_added_before_old_ones_go(tmp_path: Path) -> None:
    command, env, booted = _node(tmp_path)
    assert _ssh_sources(tmp_path) == booted["admin_cidrs"]
    before = json.loads((tmp_path / "ufw.json").read_text())
    assert len(before) > len(booted["admin_cidrs"])  # web, tinc and mesh openings too
    kept, dropped = booted["admin_cidrs"]
    result = _converge(command, env, _state(booted, admin_cidrs=["198.51.100.64/27", kept]))
    assert result.returncode == 0, result.stderr
    assert sorted(_ssh_sources(tmp_path)) == sorted(["198.51.100.64/27", kept])
    calls = _calls(tmp_path)
    add = calls.index(
        "ufw limit from 198.51.100.64/27 to any port 22 proto tcp comment 'ssh from admin networks, rate-limited'"
    )
    # Without its comment: ufw deletes a rule that matches all but the comment when none is given
    # (ufw/backend_iptables.py, `ret == -2 and rule.remove and rule.comment == ''`).
    delete = calls.index(f"ufw delete limit from {dropped} to any port 22 proto tcp")
    assert add < delete
    # The other openings (web, tinc, the mesh) are untouched.
    rules = json.loads((tmp_path / "ufw.json").read_text())
    assert [text for text, _ in rules if " port 22 " not in text] == [
        text for text, _ in before if " port 22 " not in text
    ]
    assert "(1 added, 1 removed)" in result.stderr


NEW_PEER_ADDRESS = "192.0.2.99"  # a replaced peer's new public IP


def _tinc_sources(tmp_path: Path, comment: str = "tinc from the peer node") -> list[tuple[str, str]]:
    rules = json.loads((tmp_path / "ufw.json").read_text())
    return sorted(
        (text.split()[2], text.split()[-1])
        for text, c in rules
        if c == comment and text.startswith("allow from ")
    )


@pytest.mark.parametrize("provider", ["digitalocean", "linode"])
def test_a_replaced_peers_new_address_reaches_tinc_ufw_and_the_peer_route(
    tmp_path: Path, provider: str
) -> None:
    """Node A after `pulumi up --replace` of the Linode: the peer's host file names the new
    address, ufw lets tinc in from it (added before the old address's rules go, same rule and
    comment as the first boot's), the droplet routes it from the reserved IP, and tinc reloads.
    (Node B's peer is node A's reserved IP, which never changes; the script is the same.)"""
    command, env, booted = _node(tmp_path, provider=provider)
    spec = make_spec(provider)
    old = spec.peer.public_address
    kept = [DROPLET_OWN_IP] if provider == "linode" else []  # the droplet's own address stays
    assert _tinc_sources(tmp_path) == sorted((a, p) for a in (old, *kept) for p in ("tcp", "udp"))
    before = json.loads((tmp_path / "ufw.json").read_text())
    moved = dataclasses.replace(spec.peer, public_address=NEW_PEER_ADDRESS)
    result = _converge(command, env, _state(booted, peer=_peer(spec, moved)))
    assert result.returncode == 0, result.stderr
    host = _root(tmp_path, peer_host_path(spec.tinc_net, spec.peer))
    # The first boot's own file for a peer at the new address.
    assert host.read_text() == peer_host_file(moved)
    assert f"Address = {NEW_PEER_ADDRESS} 655\n" in host.read_text() and old not in host.read_text()
    assert _tinc_sources(tmp_path) == sorted(
        (a, p) for a in (NEW_PEER_ADDRESS, *kept) for p in ("tcp", "udp")
    )
    # Every other opening (ssh, web, the witness's tinc, the mesh) is untouched.
    rules = json.loads((tmp_path / "ufw.json").read_text())
    others = [r for r in before if r[1] != "tinc from the peer node"]
    assert [r for r in rules if r[1] != "tinc from the peer node"] == others
    assert _tinc_sources(tmp_path, "tinc from the witness") == [
        (WITNESS_ADDRESS, "tcp"),
        (WITNESS_ADDRESS, "udp"),
    ]
    calls = _calls(tmp_path)
    adds = [
        calls.index(
            f"ufw allow in proto {p} from {NEW_PEER_ADDRESS} to any port 655 comment 'tinc from the peer node'"
        )
        for p in ("tcp", "udp")
    ]
    # Deleted without the comment, in the form `ufw show added` prints it.
    deletes = [calls.index(f"ufw delete allow from {old} to any port 655 proto {p}") for p in ("tcp", "udp")]
    reload = calls.index(f"systemctl reload-or-restart tinc@{spec.tinc_net}.service")
    assert max(adds) < reload < min(deletes)
    route = _root(tmp_path, PEER_ROUTE_ENV)
    if provider == "digitalocean":
        assert route.read_text() == peer_route_env(routed_addresses(moved, spec.witness))
        assert f'PEER_ADDRESSES="{NEW_PEER_ADDRESS} {WITNESS_ADDRESS}"' in route.read_text()
        # The old address's route goes, then the service routes the new one, before tinc reloads.
        assert calls.index(f"ip route del {old}/32") < calls.index(
            "systemctl restart twinhost-peer-route.service"
        )
        assert calls.index("systemctl restart twinhost-peer-route.service") < reload
        shown = "new tinc host file, peer-route.env; tinc reloaded"
    else:
        assert not route.exists() and not any(c.startswith(("ip ", "systemctl restart")) for c in calls)
        shown = "new tinc host file; tinc reloaded"
    assert f"mesh peer: {NEW_PEER_ADDRESS} (tinc rules: 2 added, 2 removed; {shown})" in result.stderr
    assert not any(c.startswith("twinhost-deploy") for c in calls)  # the app is not touched
    # And again: nothing left to do.
    (tmp_path / "calls").unlink()
    again = _converge(command, env, _state(booted, peer=_peer(spec, moved)))
    assert again.returncode == 0 and f"mesh peer: unchanged ({NEW_PEER_ADDRESS})" in again.stderr
    assert _calls(tmp_path) == ["ufw show added"]


def test_a_peer_host_file_that_differs_on_the_node_is_written_back_and_tinc_reloaded(tmp_path: Path) -> None:
    command, env, booted = _node(tmp_path)
    spec = make_spec("digitalocean")
    host = _root(tmp_path, peer_host_path(spec.tinc_net, spec.peer))
    host.write_text(host.read_text().replace(PUBLIC["linode"], "203.0.113.250"))  # a stale hand edit
    result = _converge(command, env, _state(booted))
    assert result.returncode == 0, result.stderr
    assert host.read_text() == peer_host_file(spec.peer)
    assert _calls(tmp_path) == ["ufw show added", f"systemctl reload-or-restart tinc@{spec.tinc_net}.service"]
    assert "(tinc rules: 0 added, 0 removed; new tinc host file; tinc reloaded)" in result.stderr


def test_a_peer_without_tinc_rules_is_refused_before_anything_changes(tmp_path: Path) -> None:
    """An empty rule list would delete the peer's tinc rules and shut it out of the mesh."""
    command, env, booted = _node(tmp_path)
    state = json.loads(_state(booted))
    state["peer"]["firewall"]["rules"] = []
    result = _converge(command, env, json.dumps(state))
    assert result.returncode == 1 and "the peer's tinc rules needed" in result.stderr
    assert _calls(tmp_path) == []


def test_a_new_version_or_new_settings_deploy_blue_green_with_the_new_environment(tmp_path: Path) -> None:
    command, env, booted = _node(tmp_path)
    app = booted["app"].model_copy(update={"version": "2.0", "env": {"GREETING": 'say "hi"'}})
    secrets = {"SHOP_API_TOKEN": "rotated-token"}
    result = _converge(command, env, _state(booted, app=app, app_secrets=secrets))
    assert result.returncode == 0, result.stderr
    assert "twinhost-deploy 2.0" in _calls(tmp_path)
    environment = tmp_path / "etc/environment"
    assert environment.read_text() == environment_text(app.env, secrets)
    assert environment.stat().st_mode & 0o777 == 0o600
    assert "rotated-token" not in result.stderr + result.stdout
    # And again: now everything matches, nothing is deployed.
    (tmp_path / "calls").unlink()
    again = _converge(command, env, _state(booted, app=app, app_secrets=secrets))
    assert again.returncode == 0 and "app: unchanged (2.0)" in again.stderr
    assert not any(c.startswith("twinhost-deploy") for c in _calls(tmp_path))


def test_settings_alone_redeploy_the_running_version(tmp_path: Path) -> None:
    command, env, booted = _node(tmp_path)
    app = booted["app"].model_copy(update={"env": {"MODE": "maintenance"}})
    result = _converge(command, env, _state(booted, app=app))
    assert result.returncode == 0, result.stderr
    assert f"twinhost-deploy {booted['app'].version}" in _calls(tmp_path)
    assert 'MODE="maintenance"' in (tmp_path / "etc/environment").read_text()


def test_a_container_app_with_a_new_variable_gets_its_unit_rewritten_before_the_deploy(
    tmp_path: Path,
) -> None:
    command, env, booted = _node(tmp_path, "container")
    app = booted["app"].model_copy(update={"env": {**booted["app"].env, "NEW_FLAG": "1"}})
    result = _converge(command, env, _state(booted, app=app))
    assert result.returncode == 0, result.stderr
    assert "--env NEW_FLAG" in (tmp_path / "twinhost-app@.service").read_text()
    calls = _calls(tmp_path)
    assert calls.index("systemctl daemon-reload") < next(
        i for i, c in enumerate(calls) if c.startswith("twinhost-deploy")
    )


def test_a_failed_deploy_exits_1_and_puts_the_old_settings_back(tmp_path: Path) -> None:
    command, env, booted = _node(tmp_path)
    environment = tmp_path / "etc/environment"
    before = environment.read_text()
    app = booted["app"].model_copy(update={"version": "3.0", "env": {"BROKEN": "yes"}})
    result = _converge(command, env, _state(booted, app=app), DEPLOY_FAILS="1")
    assert result.returncode == 1
    assert "FAILED: deploying 3.0 failed" in result.stderr and "keeps serving" in result.stderr
    assert environment.read_text() == before


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("not json", "cannot read the desired state"),
        ('{"format": 1}', "cannot read the desired state"),
    ],
)
def test_an_unreadable_state_exits_1_with_a_clear_message_and_changes_nothing(
    tmp_path: Path, state: str, message: str
) -> None:
    command, env, _booted = _node(tmp_path)
    result = _converge(command, env, state)
    assert result.returncode == 1 and message in result.stderr
    assert _calls(tmp_path) == []


def test_an_invalid_state_exits_1_before_changing_anything(tmp_path: Path) -> None:
    command, env, booted = _node(tmp_path)
    state = json.loads(_state(booted))
    state["admin"]["sshKeys"] = []  # an empty list would lock every admin out
    result = _converge(command, env, json.dumps(state))
    assert result.returncode == 1
    assert "invalid desired state: format 1, admin.sshKeys and admin.cidrs" in result.stderr
    assert _calls(tmp_path) == []


def test_a_version_twinhost_deploy_refuses_changes_nothing_on_the_node(tmp_path: Path) -> None:
    """twinhost-deploy checks VERSION itself (test_deploy.py); the converge puts its files back."""
    command, env, booted = _node(tmp_path)
    before = (tmp_path / "etc/environment").read_text()
    app = booted["app"].model_copy(update={"version": "1.0; rm -rf /", "env": {"NEW": "1"}})
    result = _converge(command, env, _state(booted, app=app), DEPLOY_FAILS="1")
    assert result.returncode == 1 and "keeps serving" in result.stderr
    assert (tmp_path / "etc/environment").read_text() == before


def test_the_command_installs_the_repositorys_script_then_runs_it(tmp_path: Path) -> None:
    command, env, booted = _node(tmp_path)
    result = _converge(command, env, _state(booted))
    assert result.returncode == 0, result.stderr
    installed = tmp_path / "sbin/twinhost-converge"
    assert installed.read_text() == SCRIPT and installed.stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "calls").read_text().splitlines()[0] == "cloud-init status --wait"


def test_a_failed_first_boot_stops_the_converge_with_a_clear_message(tmp_path: Path) -> None:
    command, env, booted = _node(tmp_path)
    result = _converge(command, env, _state(booted), CLOUD_INIT_RC="1")
    assert result.returncode == 1
    assert "the first boot (cloud-init) failed" in result.stderr
    assert _calls(tmp_path) == [] and not (tmp_path / "sbin/twinhost-converge").exists()


def test_a_degraded_first_boot_still_converges(tmp_path: Path) -> None:
    """cloud-init 25 (Debian 13) exits 2 for a boot that finished with recoverable errors."""
    command, env, booted = _node(tmp_path)
    result = _converge(command, env, _state(booted), CLOUD_INIT_RC="2")
    assert result.returncode == 0, result.stderr


def _root(tmp_path: Path, path: str) -> Path:
    return tmp_path / "root" / path.lstrip("/")


@pytest.mark.parametrize("provider", ["digitalocean", "linode"])
def test_new_backup_settings_rewrite_the_settings_and_the_timer_without_a_deploy(
    tmp_path: Path, provider: str
) -> None:
    command, env, booted = _node(tmp_path, provider=provider)
    spec = booted["backup"]
    assert spec.backup is not None
    new = dataclasses.replace(spec, backup=dataclasses.replace(spec.backup, time="04:40", keep_daily=14))
    result = _converge(command, env, _state(booted, backup=new))
    assert result.returncode == 0, result.stderr
    written = {f.path: f for f in backup_parts(new).files}
    timer = f"/etc/systemd/system/{TIMER}"
    for path in (ENV_FILE, timer):
        assert _root(tmp_path, path).read_text() == written[path].content
    assert _root(tmp_path, ENV_FILE).stat().st_mode & 0o777 == 0o600
    assert "KEEP_DAILY=14" in _root(tmp_path, ENV_FILE).read_text()
    at = "04:40" if provider == "digitalocean" else "05:40"  # the standby an hour later
    assert f"OnCalendar=*-*-* {at}:00 UTC" in _root(tmp_path, timer).read_text()
    # The first boot's own commands; no package to install, no app deploy.
    assert _calls(tmp_path) == [
        "ufw show added",
        "systemctl daemon-reload",
        f"systemctl enable --now {TIMER}",
    ]
    assert f"backups: {at} UTC" in result.stderr and f"(new backup.env, {TIMER})" in result.stderr
    assert spec.backup.password not in result.stderr + result.stdout
    # And again: nothing left to do.
    (tmp_path / "calls").unlink()
    again = _converge(command, env, _state(booted, backup=new))
    assert "backups: unchanged" in again.stderr and _calls(tmp_path) == ["ufw show added"]


def test_backups_turned_off_stop_the_timer_and_keep_the_repository_password(tmp_path: Path) -> None:
    command, env, booted = _node(tmp_path)
    off = dataclasses.replace(booted["backup"], backup=None)
    result = _converge(command, env, _state(booted, backup=off))
    assert result.returncode == 0, result.stderr
    assert _calls(tmp_path) == ["ufw show added", f"systemctl disable --now {TIMER}"]
    assert "backups: off (timer stopped)" in result.stderr
    assert _root(tmp_path, ENV_FILE).exists()  # the only copy of the password once the stack drops it
    (tmp_path / "calls").unlink()
    again = _converge(command, env, _state(booted, backup=off))
    assert "backups: off\n" in again.stderr and _calls(tmp_path) == ["ufw show added"]


def test_backups_turned_on_for_a_node_booted_without_install_everything_the_first_boot_would(
    tmp_path: Path,
) -> None:
    command, env, booted = _node(tmp_path, backup=False)
    on = BackupNode.of(make_spec("digitalocean"))
    result = _converge(command, env, _state(booted, backup=on))
    assert result.returncode == 0, result.stderr
    for item in backup_parts(on).files:
        assert _root(tmp_path, item.path).read_text() == item.content
        assert _root(tmp_path, item.path).stat().st_mode & 0o777 == item.mode
    assert _calls(tmp_path) == [
        "ufw show added",
        "apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 restic rsync (noninteractive)",
        "systemctl daemon-reload",
        f"systemctl enable --now {TIMER}",
    ]
    assert "installed restic, rsync" in result.stderr


@pytest.mark.parametrize("field", ["env", "appSecrets"])
def test_a_new_variable_of_a_wordpress_site_reaches_php_through_its_pool(tmp_path: Path, field: str) -> None:
    """php-fpm clears the environment and passes PHP only the names its pool lists: the converge
    rewrites the pool with the new name, then redeploys, so the new slot's php-fpm reads it."""
    command, env, booted = _node(tmp_path, "wordpress")
    pool = tmp_path / "etc/php-fpm.conf"
    assert "env[SHOP_MODE]" not in pool.read_text()
    if field == "env":
        change: dict[str, Any] = {"app": booted["app"].model_copy(update={"env": {"SHOP_MODE": "busy"}})}
    else:
        change = {"app_secrets": {**booted["app_secrets"], "SHOP_MODE": "s3cret"}}
    result = _converge(command, env, _state(booted, **change))
    assert result.returncode == 0, result.stderr
    assert "env[SHOP_MODE] = $SHOP_MODE" in pool.read_text()
    assert "SHOP_MODE=" in (tmp_path / "etc/environment").read_text()
    assert "php-fpm.conf" in result.stderr  # named among the new files
    calls = _calls(tmp_path)
    assert any(c.startswith("twinhost-deploy") for c in calls)
    # And again: the pool and the environment match, nothing is deployed.
    (tmp_path / "calls").unlink()
    again = _converge(command, env, _state(booted, **change))
    assert again.returncode == 0 and "app: unchanged" in again.stderr


def test_a_failed_wordpress_deploy_puts_the_old_pool_back(tmp_path: Path) -> None:
    command, env, booted = _node(tmp_path, "wordpress")
    pool = tmp_path / "etc/php-fpm.conf"
    before = pool.read_text()
    app = booted["app"].model_copy(update={"env": {"SHOP_MODE": "busy"}})
    result = _converge(command, env, _state(booted, app=app), DEPLOY_FAILS="1")
    assert result.returncode == 1 and "keeps serving" in result.stderr
    assert pool.read_text() == before
