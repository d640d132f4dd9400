"""`pulumi up` converges a running pair: the program under mocks (issue 17, item 1).

What may change after the first boot (app version, app.env, appSecrets, sshKeys, adminCidrs,
backups, and the Linode's public address when it is replaced) is an
update of per-node converge commands, never a change the engine would act on for a node; node B's
converge waits for node A's converge and health gate.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.bootstrap.app import app_parts, environment_text, unit_text
from infra.bootstrap.backup import ENV_FILE, TIMER
from infra.bootstrap.converge import desired_state, summary, to_json
from infra.bootstrap.database import connection_env, database_env, database_names
from infra.bootstrap.parts import decoded_files, readable, strip_comments
from infra.bootstrap.wordpress import PHP_FPM_CONFIG
from infra.components.node_converge import CONVERGE_COMMAND, health_command
from infra.config import DemoApp
from infra.plan.mocks import DEFAULT_ADDRESSES
from infra.plan.report import key_settings
from infra.plan.runner import PlanResult, RecordedResource, is_secret_value, reveal, run_plan
from tests.bootstrap.bootstrap_specs import SITE, make_spec
from tests.conftest import stack_file_values, write_stack

NEW_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ1dP0Pz3qSg7GLBd7oPq4hpx0LBcZ6S5v8iGXyQ7Ywz new@brightpixel"
NODE_TYPES = {
    "digitalocean": "digitalocean:index/droplet:Droplet",
    "linode": "linode:index/instance:Instance",
}


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def apply(values: dict[str, Any]) -> dict[str, Any]:
        edited = copy.deepcopy(values)
        change(edited)
        return edited

    return apply


CHANGES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "app.version": _edit(lambda v: v["app"].update(version="2.0.1")),
    "app.env": _edit(lambda v: v["app"].update(env={"GREETING": "hello", "MODE": "busy"})),
    "appSecrets": _edit(lambda v: v.update(appSecrets='{"DB_PASSWORD": "rotated-s3cret"}')),
    "sshKeys": _edit(lambda v: v.update(sshKeys=[v["sshKeys"][0], NEW_KEY])),
    "adminCidrs": _edit(lambda v: v.update(adminCidrs=["198.51.100.64/27", *v["adminCidrs"]])),
    "backups.time": _edit(lambda v: v.update(backups={"time": "04:40"})),
    "backups.keepDaily": _edit(lambda v: v.update(backups={"keepDaily": 14, "keepMonthly": 12})),
}


def _base(values: dict[str, Any]) -> dict[str, Any]:
    values = copy.deepcopy(values)
    values["app"] = {"kind": "demo", "version": "1.0.0", "env": {"GREETING": "hi"}}
    values["appSecrets"] = '{"DB_PASSWORD": "first-s3cret"}'
    return values


def _plan(directory: Path, values: dict[str, Any]) -> PlanResult:
    directory.mkdir()
    return run_plan(write_stack(directory, "harbourlaw", values))


@pytest.fixture(scope="module")
def base_plan(tmp_path_factory: pytest.TempPathFactory) -> PlanResult:
    return _plan(tmp_path_factory.mktemp("base") / "p", _base(stack_file_values("harbourlaw")))


def _by_name(plan: PlanResult) -> dict[str, RecordedResource]:
    return {r.name: r for r in plan.resources}


def _apply(plan: PlanResult, provider: str) -> RecordedResource:
    return _by_name(plan)[f"harbourlaw-{provider}-converge-apply"]


def _state(resource: RecordedResource) -> dict[str, Any]:
    return dict(json.loads(reveal(resource.inputs["stdin"])))


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_a_day_two_change_updates_the_converge_and_leaves_every_node_input_alone(
    tmp_path: Path, base_plan: PlanResult, field: str
) -> None:
    changed = _plan(tmp_path / "p", CHANGES[field](_base(stack_file_values("harbourlaw"))))
    before, after = _by_name(base_plan), _by_name(changed)
    # The same resources, by name: nothing is added or removed (a replacement would be).
    assert set(before) == set(after)
    for provider, node_type in NODE_TYPES.items():
        old = next(r for r in before.values() if r.type == node_type)
        new = after[old.name]
        differing = {
            k for k in {*old.inputs, *new.inputs} if reveal(old.inputs.get(k)) != reveal(new.inputs.get(k))
        }
        # First-boot data is rendered from the config, so it does differ ...
        assert differing, provider
        # ... and only first-boot data differs, which the engine ignores for a node:
        # user_data (droplet) / metadatas (Linode) are in ignore_changes, so no diff, no replace.
        assert differing <= set(new.ignore_changes), (provider, differing, new.ignore_changes)
        assert new.ignore_changes == old.ignore_changes
        # The converge command is the same resource with the same commands: only its stdin changed,
        # which pulumi-command runs as an update (`update` is set).
        apply_old, apply_new = _apply(base_plan, provider), _apply(changed, provider)
        assert apply_new.inputs["create"] == apply_old.inputs["create"] == CONVERGE_COMMAND
        assert apply_new.inputs["update"] == CONVERGE_COMMAND
        assert _state(apply_new) != _state(apply_old)
        health = after[f"harbourlaw-{provider}-converge-health"]
        assert reveal(health.inputs["triggers"]) == [reveal(apply_new.inputs["stdin"])]


def _booted_files(plan: PlanResult, provider: str) -> dict[str, str]:
    [text] = [t for node, t in plan.user_data.items() if provider in node]
    return {e["path"]: e["content"] for e in decoded_files(yaml.safe_load(readable(text)))}


def _meaning(text: str) -> list[str]:
    """A file's lines without comments and blanks: what twinhost-converge compares (the first
    boot's copy may have lost its comment lines)."""
    return strip_comments(text).splitlines()


@pytest.mark.parametrize("field", ["backups.time", "backups.keepDaily"])
def test_a_backup_setting_reaches_each_running_node_as_the_first_boot_would_write_it(
    tmp_path: Path, base_plan: PlanResult, field: str
) -> None:
    """The converge carries the backup files a node created with the new config would boot with:
    the settings (retention) and the timer (the primary at `time`, the standby an hour later)."""
    changed = _plan(tmp_path / "p", CHANGES[field](_base(stack_file_values("harbourlaw"))))
    for provider in NODE_TYPES:
        backup = _state(_apply(changed, provider))["backup"]
        sent = {f["path"]: f["content"] for f in backup["files"]}
        booted = _booted_files(changed, provider)
        assert set(sent) <= set(booted)
        for path, text in sent.items():
            assert _meaning(text) == _meaning(booted[path]), path
        assert backup["timer"] == TIMER and backup["packages"] == ["restic", "rsync"]
        before = {f["path"]: f["content"] for f in _state(_apply(base_plan, provider))["backup"]["files"]}
        new = {p for p in sent if sent[p] != before[p]}
        assert new and new <= {ENV_FILE, f"/etc/systemd/system/{TIMER}"}
    times = {p: _state(_apply(changed, p))["backup"]["shown"] for p in NODE_TYPES}
    if field == "backups.time":
        assert times == {
            "digitalocean": "04:40 UTC (primary), keep 7 daily, 4 weekly, 6 monthly",
            "linode": "05:40 UTC (standby), keep 7 daily, 4 weekly, 6 monthly",
        }
    else:
        assert "KEEP_DAILY=14\n" in sent[ENV_FILE] and "KEEP_MONTHLY=12\n" in sent[ENV_FILE]


def test_backups_turned_off_reach_the_running_nodes_which_stop_their_timer(
    tmp_path: Path, base_plan: PlanResult
) -> None:
    """`backups.enabled: false` drops the site's backup credentials; the nodes keep serving
    (no node input the engine acts on changes) and their converge says: no backup files."""
    off = _plan(
        tmp_path / "p",
        _edit(lambda v: v.update(backups={"enabled": False}))(_base(stack_file_values("harbourlaw"))),
    )
    before, after = _by_name(base_plan), _by_name(off)
    for provider, node_type in NODE_TYPES.items():
        old = next(r for r in before.values() if r.type == node_type)
        new = after[old.name]
        differing = {
            k for k in {*old.inputs, *new.inputs} if reveal(old.inputs.get(k)) != reveal(new.inputs.get(k))
        }
        assert differing <= set(new.ignore_changes), (provider, differing)
        backup = _state(_apply(off, provider))["backup"]
        assert backup["files"] == [] and backup["timer"] == TIMER and backup["shown"] == "off"
        assert key_settings(_apply(off, provider))["desired backups"] == "off"


def test_node_b_converges_only_after_node_a_is_converged_and_healthy(base_plan: PlanResult) -> None:
    resources = _by_name(base_plan)
    a_apply, a_health = (resources[f"harbourlaw-digitalocean-converge-{s}"] for s in ("apply", "health"))
    b_apply = resources["harbourlaw-linode-converge-apply"]
    assert a_apply.urn in a_health.dependencies
    assert {a_apply.urn, a_health.urn} <= set(b_apply.dependencies)
    # Each converge waits for its node and that node's cloud firewall (new admin networks open).
    droplet = next(r for r in resources.values() if r.type == NODE_TYPES["digitalocean"])
    instance = next(r for r in resources.values() if r.type == NODE_TYPES["linode"])
    assert droplet.urn in a_apply.dependencies and instance.urn in b_apply.dependencies
    assert not set(b_apply.dependencies) & {r.urn for r in resources.values() if "linode-converge" in r.name}


def test_the_desired_state_is_a_secret_and_matches_the_config(base_plan: PlanResult) -> None:
    for provider in NODE_TYPES:
        apply = _apply(base_plan, provider)
        assert is_secret_value(apply.inputs["stdin"])
        state = _state(apply)
        assert state["admin"] == {
            "user": "ops",
            "sshKeys": stack_file_values("harbourlaw")["sshKeys"],
            "cidrs": stack_file_values("harbourlaw")["adminCidrs"],
        }
        assert state["app"]["version"] == "1.0.0"
        assert state["app"]["env"] == {"GREETING": "hi"}
        assert state["app"]["secretNames"] == ["DB_PASSWORD"]
        assert state["app"]["environment"] == environment_text(
            {"GREETING": "hi"}, {"DB_PASSWORD": "first-s3cret"}
        )
        connection = reveal(apply.inputs["connection"])
        assert connection["user"] == "ops" and "privateKey" not in connection


def test_converge_connects_to_each_nodes_public_address(base_plan: PlanResult) -> None:
    hosts = {p: reveal(_apply(base_plan, p).inputs["connection"])["host"] for p in NODE_TYPES}
    assert hosts == {"digitalocean": "203.0.113.10", "linode": "198.51.100.20"}


def test_the_health_gate_asks_the_web_front_for_the_sites_name() -> None:
    command = health_command("www.harbour-law.co.uk")
    assert "--resolve www.harbour-law.co.uk:443:127.0.0.1 https://www.harbour-law.co.uk/health" in command
    assert "exit 1" in command


def test_the_node_gets_the_first_boots_own_files_back_for_an_unchanged_config() -> None:
    """Converging to the config a node booted with must change nothing: the same environment
    text (settings then secrets, sorted, escaped) and the same unit."""
    app = DemoApp(env={"B": 'say "hi" $HOME', "A": "1"})
    state = desired_state(
        admin_user="ops",
        ssh_keys=["k1"],
        admin_cidrs=["10.0.0.0/8"],
        app=app,
        app_secrets={"S": "x`y"},
        debian=12,
    )
    assert state["app"]["unit"] == unit_text(app, ["A", "B", "S"], 12)
    assert state["app"]["environment"] == environment_text(app.env, {"S": "x`y"})
    assert to_json(state) == to_json(json.loads(to_json(state)))  # stable text: no spurious updates


def test_the_plan_summary_shows_names_but_never_secret_values() -> None:
    state = desired_state(
        admin_user="ops",
        ssh_keys=[NEW_KEY],
        admin_cidrs=["10.0.0.0/8"],
        app=DemoApp(env={"GREETING": "hi"}),
        app_secrets={"DB_PASSWORD": "hunter2"},
        debian=12,
    )
    shown = summary(to_json(state))
    assert shown["appSecrets"] == "DB_PASSWORD=[secret]"
    assert shown["app.env"] == "GREETING=hi"
    assert shown["sshKeys"] == "1: new@brightpixel"
    assert "hunter2" not in json.dumps(shown)


def test_the_offline_plan_shows_the_converge_and_its_desired_state_with_secrets_hidden(
    base_plan: PlanResult,
) -> None:
    shown = {r.name: key_settings(r) for r in base_plan.resources if "converge" in r.name}
    apply = shown["harbourlaw-linode-converge-apply"]
    assert apply["connection"].startswith("ssh ops@198.51.100.20 port 22")
    assert apply["runs"] == "sudo -n /usr/local/sbin/twinhost-converge -"
    assert "bytes of base64>" in apply["create"]  # the inline script is named, not printed
    assert apply["desired app.version"] == "1.0.0"
    assert apply["desired app.env"] == "GREETING=hi"
    assert apply["desired appSecrets"] == "DB_PASSWORD=[secret]"
    assert apply["desired adminCidrs"] == ", ".join(stack_file_values("harbourlaw")["adminCidrs"])
    assert apply["desired backups"] == "03:15 UTC (standby), keep 7 daily, 4 weekly, 6 monthly"
    assert "secretAccessKey" not in json.dumps(shown) and "RESTIC_PASSWORD" not in json.dumps(shown)
    assert shown["harbourlaw-linode-converge-health"]["runs again when"] == "the desired state changes"
    assert "first-s3cret" not in json.dumps(shown)


def test_a_database_sites_converge_keeps_the_db_settings_the_first_boot_wrote() -> None:
    """With `database: mariadb` the first boot's environment file starts with the DB_* settings;
    the converge's must hold them too, or an unchanged config would deploy without them."""
    spec = make_spec("digitalocean", database=True)
    assert spec.database is not None
    booted = next(
        f for f in app_parts(spec, server_name="www.example.com").files if f.path.endswith("/environment")
    )
    state = desired_state(
        admin_user=spec.admin_user,
        ssh_keys=list(spec.ssh_keys),
        admin_cidrs=list(spec.admin_cidrs),
        app=spec.app,
        app_secrets=dict(spec.app_secrets),
        debian=spec.debian,
        database_env=connection_env(*database_names(SITE)),
    )
    assert 'DB_NAME="' in booted.content and "DB_PASSWORD_FILE=" in booted.content
    assert state["app"]["environment"] == booted.content
    assert state["app"]["unit"] == unit_text(
        spec.app, sorted({*database_env(spec), *dict(spec.app_secrets)}), spec.debian
    )


@pytest.mark.parametrize("debian", [12, 13])
def test_a_wordpress_sites_converge_writes_the_first_boots_keys_and_php_fpm_unit(debian: int) -> None:
    """WordPress's generated keys and salts live in the environment file and its unit runs the
    release's php-fpm: an unchanged config must converge to exactly what the first boot wrote."""
    spec = make_spec("digitalocean", app="wordpress", debian=debian)
    files = {f.path: f.content for f in app_parts(spec, server_name="www.example.com").files}
    state = desired_state(
        admin_user=spec.admin_user,
        ssh_keys=list(spec.ssh_keys),
        admin_cidrs=list(spec.admin_cidrs),
        app=spec.app,
        app_secrets=dict(spec.app_secrets),
        debian=spec.debian,
        database_env=connection_env(*database_names(SITE)),
        app_keys=dict(spec.app_keys),
        memory_mib=spec.memory_mib,
    )
    environment = next(text for path, text in files.items() if path.endswith("/environment"))
    # The pool that lists the names php-fpm passes to PHP, as the first boot wrote it.
    assert state["app"]["phpFpm"] == files[PHP_FPM_CONFIG]
    assert "WORDPRESS_AUTH_KEY=" in environment
    assert state["app"]["environment"] == environment
    assert state["app"]["unit"] == files["/etc/systemd/system/twinhost-app@.service"]
    assert "php-fpm" in state["app"]["unit"]


NEW_LINODE_ADDRESS = "198.51.100.99"  # what Linode hands the replacement instance


def test_a_replaced_linodes_new_address_is_an_update_of_node_as_converge_not_of_the_droplet(
    tmp_path: Path, base_plan: PlanResult
) -> None:
    """`pulumi up --replace` of the Linode (or a lost one rebuilt): the new instance has a new
    public IP. Node A's converge stdin names it in the same `up` (an update of the command);
    the droplet and its reserved IP do not move (its user data names the peer too, but the
    engine ignores that input for a running droplet)."""
    directory = tmp_path / "p"
    directory.mkdir()
    stack = write_stack(directory, "harbourlaw", _base(stack_file_values("harbourlaw")))
    replaced = run_plan(stack, addresses={**DEFAULT_ADDRESSES, "linode": NEW_LINODE_ADDRESS})
    before, after = _by_name(base_plan), _by_name(replaced)
    assert set(before) == set(after)
    droplet = next(r for r in before.values() if r.type == NODE_TYPES["digitalocean"])
    differing = {
        k
        for k in {*droplet.inputs, *after[droplet.name].inputs}
        if reveal(droplet.inputs.get(k)) != reveal(after[droplet.name].inputs.get(k))
    }
    assert differing <= set(droplet.ignore_changes), differing
    reserved = next(r for r in before.values() if r.type == "digitalocean:index/reservedIp:ReservedIp")
    assert reveal(after[reserved.name].inputs) == reveal(reserved.inputs)

    apply_old, apply_new = _apply(base_plan, "digitalocean"), _apply(replaced, "digitalocean")
    assert apply_new.inputs["create"] == apply_old.inputs["create"] == CONVERGE_COMMAND
    assert apply_new.inputs["update"] == CONVERGE_COMMAND
    old, new = _state(apply_old), _state(apply_new)
    # Only the peer's part of node A's desired state changes, and it names the new address.
    assert {k: v for k, v in old.items() if k != "peer"} == {k: v for k, v in new.items() if k != "peer"}
    assert (
        old["peer"]["address"] == DEFAULT_ADDRESSES["linode"] and new["peer"]["address"] == NEW_LINODE_ADDRESS
    )
    assert f"Address = {NEW_LINODE_ADDRESS} 655\n" in new["peer"]["hostFile"]["content"]
    assert {r["from"] for r in new["peer"]["firewall"]["rules"]} == {NEW_LINODE_ADDRESS}
    assert f'PEER_ADDRESSES="{NEW_LINODE_ADDRESS}' in new["peer"]["route"]["content"]
    assert key_settings(apply_new)["desired mesh peer"] == NEW_LINODE_ADDRESS
    health = after["harbourlaw-digitalocean-converge-health"]
    assert reveal(health.inputs["triggers"]) == [reveal(apply_new.inputs["stdin"])]
    # Node B's peer is node A's reserved IP: its desired state is the same; its converge
    # connects to the new instance.
    b_old, b_new = _apply(base_plan, "linode"), _apply(replaced, "linode")
    assert reveal(b_new.inputs["stdin"]) == reveal(b_old.inputs["stdin"])
    assert reveal(b_new.inputs["connection"])["host"] == NEW_LINODE_ADDRESS
    # The new address is in node A's desired state before node A's converge runs: the Linode
    # is created first (the stdin is its output), and the cloud firewall follows in the same up.
    instance = next(r for r in after.values() if r.type == NODE_TYPES["linode"])
    assert instance.urn in apply_new.dependencies


def test_an_unchanged_config_plans_the_same_stdin_and_the_first_boots_peer_files(
    tmp_path: Path, base_plan: PlanResult
) -> None:
    """No change, no update: a second plan of the same config gives each converge the same
    stdin; and what the desired state says of the peer is what the first boot wrote (the host
    file, the droplet's peer-route.env, the ufw rules of twinhost-firewall), so the first
    converge of a node booted before the peer travelled here changes nothing on it."""
    again = _plan(tmp_path / "p", _base(stack_file_values("harbourlaw")))
    for provider in NODE_TYPES:
        assert reveal(_apply(again, provider).inputs["stdin"]) == reveal(
            _apply(base_plan, provider).inputs["stdin"]
        )
        peer = _state(_apply(base_plan, provider))["peer"]
        booted = _booted_files(base_plan, provider)
        assert _meaning(peer["hostFile"]["content"]) == _meaning(booted[peer["hostFile"]["path"]])
        if provider == "digitalocean":
            assert _meaning(peer["route"]["content"]) == _meaning(booted[peer["route"]["path"]])
        else:
            assert "route" not in peer
        firewall = booted["/usr/local/sbin/twinhost-firewall"]
        for rule in peer["firewall"]["rules"]:
            assert f"$ufw {rule['ufw']}\n" in firewall
        assert peer["firewall"]["comment"] == "tinc from the peer node"
