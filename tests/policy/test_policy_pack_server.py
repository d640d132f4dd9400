"""The pack as the Pulumi CLI runs it: `policy/__main__.py` in its own process, serving the
analyzer gRPC protocol, with the stack's config in PULUMI_CONFIG as the CLI passes it.

This is the closest to `pulumi preview --policy-pack policy/` that runs without the CLI: the
requests are built from the program's own resources under mocks, sent over gRPC to the real
PolicyPack server, and the answers read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from infra.plan.runner import RecordedResource
from tests.policy.policy_harness import PROJECT_DIR, Plan, Plans
from twinhost_policy.rules import (
    DIGITALOCEAN_FIREWALL,
    DROPLET,
    LINODE_INSTANCE,
    RESERVED_IP,
    SSH_OVERRIDE_KEY,
)


class PackServer:
    """`python policy/__main__.py` with a stack's config; the port it prints is the gRPC server."""

    def __init__(self, config: dict[str, str]):
        env = {**os.environ, "PULUMI_CONFIG": json.dumps(config)}
        # Run from elsewhere: the pack must find its own modules, as when the CLI starts it.
        self.process = subprocess.Popen(
            [sys.executable, str(PROJECT_DIR / "policy" / "__main__.py")],
            cwd="/",
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        port = self.process.stdout.readline().strip()
        if not port.isdigit():
            self.process.kill()
            raise AssertionError(
                f"the pack did not start: {port!r} {self.process.stderr.read() if self.process.stderr else ''}"
            )
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        self.process.kill()
        self.process.wait(timeout=10)

    def analyze(
        self, resource: RecordedResource, protect: bool | None = None, props: dict[str, Any] | None = None
    ) -> list[Any]:
        request = analyzer_pb2.AnalyzeRequest(
            type=resource.type,
            urn=resource.urn,
            name=resource.name,
            properties=_struct(props if props is not None else resource.inputs),
            options=analyzer_pb2.AnalyzerResourceOptions(
                protect=resource.protect if protect is None else protect,
                ignoreChanges=resource.ignore_changes,
            ),
        )
        return list(self.stub.Analyze(request, timeout=30).diagnostics)

    def analyze_stack(self, resources: list[RecordedResource]) -> list[Any]:
        request = analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    type=r.type,
                    urn=r.urn,
                    name=r.name,
                    parent=r.parent or "",
                    properties=_struct(r.inputs),
                    options=analyzer_pb2.AnalyzerResourceOptions(protect=r.protect),
                )
                for r in resources
            ]
        )
        return list(self.stub.AnalyzeStack(request, timeout=30).diagnostics)


def _struct(inputs: dict[str, Any]) -> struct_pb2.Struct:
    # Secrets stay in their wire wrapper ({sig: secret, value}), as the engine sends them.
    return json_format.ParseDict(json.loads(json.dumps(inputs)), struct_pb2.Struct())


@pytest.fixture(scope="module")
def servers(plans: Plans) -> Iterator[dict[str, tuple[PackServer, Plan]]]:
    open_ssh = plans.variant("sshanywhere")
    without_override = {k: v for k, v in open_ssh.config.items() if k != SSH_OVERRIDE_KEY}
    started = {
        "override": (PackServer(open_ssh.config), open_ssh),
        "no-override": (PackServer(without_override), open_ssh),
    }
    try:
        yield started
    finally:
        for server, _ in started.values():
            server.close()


MANDATORY = analyzer_pb2.EnforcementLevel.Value("MANDATORY")
ADVISORY = analyzer_pb2.EnforcementLevel.Value("ADVISORY")


def _by_policy(diagnostics: list[Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for diagnostic in diagnostics:
        found.setdefault(diagnostic.policyName, []).append(diagnostic)
    return found


def test_pack_serves_every_policy_with_its_enforcement_level(servers) -> None:
    server, _ = servers["override"]
    info = server.stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == "twinhost"
    levels = {policy.name: policy.enforcementLevel for policy in info.policies}
    assert levels.pop("ssh-from-anywhere-override-in-use") == ADVISORY
    assert set(levels.values()) == {MANDATORY} and len(levels) == 7


def test_pack_reads_the_ssh_override_from_the_stack_config_the_cli_passes(servers) -> None:
    server, plan = servers["no-override"]
    firewall = plan.one(DIGITALOCEAN_FIREWALL)
    refused = _by_policy(server.analyze(firewall))
    assert [d.enforcementLevel for d in refused["no-ssh-from-anywhere"]] == [MANDATORY, MANDATORY]

    server, plan = servers["override"]
    allowed = _by_policy(server.analyze(firewall))
    assert "no-ssh-from-anywhere" not in allowed
    assert [d.enforcementLevel for d in allowed["ssh-from-anywhere-override-in-use"]] == [ADVISORY, ADVISORY]


def test_pack_refuses_an_unprotected_reserved_ip_over_grpc(servers) -> None:
    server, plan = servers["override"]
    reserved = plan.one(RESERVED_IP)
    assert server.analyze(reserved) == []
    found = _by_policy(server.analyze(reserved, protect=False))
    assert list(found) == ["addresses-and-records-protected"]


def test_pack_stack_policies_run_over_grpc(servers) -> None:
    server, plan = servers["override"]
    assert _by_policy(server.analyze_stack(plan.resources)) == {}
    without_linode = [r for r in plan.resources if r.type != LINODE_INSTANCE]
    assert list(_by_policy(server.analyze_stack(without_linode))) == ["site-on-both-providers"]


def test_unknown_user_data_at_preview_is_an_advisory_note_not_a_failure(servers) -> None:
    server, plan = servers["override"]
    droplet = plan.one(DROPLET)
    found = _by_policy(server.analyze(droplet, props={**droplet.inputs, "userData": UNKNOWN_STRING_VALUE}))
    notes = found["user-data-under-provider-limit"]
    assert len(notes) == 1 and notes[0].enforcementLevel == ADVISORY
    assert "can't run policy" in notes[0].message and "during preview" in notes[0].message
