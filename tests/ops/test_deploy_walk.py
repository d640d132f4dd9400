"""The rolling deploy: one node at a time, the next only after the first is healthy through
its web front; a failure stops there, puts that node back, and never touches the other."""

from __future__ import annotations

import pytest

from infra.ops import deploy
from infra.ops.deploy import DeployRefusedError, Gate, NodeVersions
from infra.ops.remote import Target
from tests.ops.fakes import FakeNode, pair, targets

FAST = Gate(needed=2, timeout=0.05, interval=0)


def walk(fake, version, order=("linode", "digitalocean")):
    lines: list[str] = []
    result = deploy.rolling_deploy(
        targets(fake, order),
        version,
        remote=fake,
        check=fake,
        tls_name="h.ops.example",
        log=lines.append,
        gate=FAST,
    )
    return result, lines


def deploy_calls(fake):
    return [
        (role, cmd.rsplit(" ", 1)[1])
        for role, cmd in fake.calls
        if "twinhost-deploy" in cmd and "--versions" not in cmd
    ]


def test_both_nodes_get_the_version_one_after_the_other_each_gated_on_health():
    fake = pair(digitalocean=FakeNode(), linode=FakeNode())
    result, lines = walk(fake, "2")
    assert result.ok and [n.outcome for n in result.nodes] == ["deployed", "deployed"]
    assert deploy_calls(fake) == [("linode", "2"), ("digitalocean", "2")]
    # The second node's deploy starts only after two good probes of the first.
    second = fake.calls.index(("digitalocean", "sudo -n /usr/local/sbin/twinhost-deploy 2"))
    probes_before = [c for c in fake.calls[:second] if c == ("probe", "192.0.2.20")]
    assert len(probes_before) >= 2
    assert fake.nodes["linode"][1].kept == ["1", "2"]
    assert any("healthy through the web front" in line for line in lines)


def test_a_version_the_first_node_refuses_stops_there_and_the_second_is_never_touched():
    fake = pair(digitalocean=FakeNode(), linode=FakeNode(fails_locally={"2-unhealthy"}))
    result, _ = walk(fake, "2-unhealthy")
    assert not result.ok
    first, second = result.nodes
    assert (first.role, first.outcome, first.before, first.after) == ("linode", "rolled back", "1", "1")
    assert second.outcome == "not reached"
    assert not [c for c in fake.calls if c[0] == "digitalocean"]  # not even asked its version
    assert fake.nodes["digitalocean"][1].active == "1"


def test_a_node_unhealthy_through_the_web_front_is_rolled_back_to_its_previous_version():
    fake = pair(digitalocean=FakeNode(), linode=FakeNode(fails_outside={"2"}))
    result, _ = walk(fake, "2")
    assert not result.ok
    assert deploy_calls(fake) == [("linode", "2"), ("linode", "1")]  # the rollback: a deploy of 1
    assert result.nodes[0].outcome == "rolled back" and result.nodes[0].after == "1"
    assert "503" in result.nodes[0].detail
    assert result.nodes[1].outcome == "not reached"
    assert fake.nodes["digitalocean"][1].active == "1"


def test_a_rollback_that_does_not_come_back_healthy_is_reported_loudly():
    fake = pair(digitalocean=FakeNode(), linode=FakeNode(fails_outside={"1", "2"}))
    result, lines = walk(fake, "2")
    assert result.nodes[0].outcome == "ROLLBACK FAILED"
    assert any("ROLLBACK FAILED" in line for line in lines)


def test_a_node_already_on_the_version_is_only_health_checked():
    fake = pair(
        digitalocean=FakeNode(active="2", kept=["1", "2"]), linode=FakeNode(active="2", kept=["1", "2"])
    )
    result, _ = walk(fake, "2")
    assert result.ok and [n.outcome for n in result.nodes] == ["already there", "already there"]
    assert deploy_calls(fake) == []


def test_a_bad_version_is_refused_before_any_node_is_asked():
    fake = pair(digitalocean=FakeNode(), linode=FakeNode())
    with pytest.raises(DeployRefusedError, match="is not a version"):
        walk(fake, "1; rm -rf /")
    assert fake.calls == []


def test_the_standby_goes_first_unless_told():
    nodes = [Target("digitalocean", "a", "ops"), Target("linode", "b", "ops")]
    assert [t.role for t in deploy.order_nodes(nodes, "digitalocean")] == ["linode", "digitalocean"]
    assert [t.role for t in deploy.order_nodes(nodes, "linode")] == ["digitalocean", "linode"]
    assert [t.role for t in deploy.order_nodes(nodes, "digitalocean", "digitalocean")] == [
        "digitalocean",
        "linode",
    ]


def test_rollback_goes_to_the_version_before_the_current_one_kept_on_every_node():
    fake = pair(
        digitalocean=FakeNode(active="3", kept=["1", "2", "3"]),
        linode=FakeNode(active="3", kept=["1", "2", "3"]),
    )
    assert deploy.rollback_target(fake, targets(fake), None) == "2"
    assert deploy.rollback_target(fake, targets(fake), "1") == "1"


def test_rollback_to_a_version_a_node_no_longer_keeps_is_refused():
    fake = pair(
        digitalocean=FakeNode(active="4", kept=["2", "3", "4"]), linode=FakeNode(active="4", kept=["3", "4"])
    )
    with pytest.raises(DeployRefusedError, match="linode does not keep 2"):
        deploy.rollback_target(fake, targets(fake), "2")
    with pytest.raises(DeployRefusedError, match="nothing to roll back to"):
        deploy.rollback_target(pair(digitalocean=FakeNode(), linode=FakeNode()), targets(fake), None)


def test_node_versions_parse_the_scripts_answer():
    parsed = NodeVersions.parse("active 3\nkept 1\nkept 2\nkept 3\n")
    assert parsed == NodeVersions("3", ("1", "2", "3")) and parsed.previous == "2"
    with pytest.raises(ValueError):
        NodeVersions.parse("usage: twinhost-deploy VERSION\n")
