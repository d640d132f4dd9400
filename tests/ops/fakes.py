"""A fake pair for the ops commands: nodes that answer `twinhost-deploy` as the real script does
(tests/bootstrap/test_deploy.py proves the script itself), and a health checker that sees them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from infra.ops.health import Probe
from infra.ops.remote import Target


@dataclass
class FakeNode:
    active: str = "1"
    kept: list[str] = field(default_factory=lambda: ["1"])
    # Versions whose own /health fails on the node: twinhost-deploy refuses them (exit 1).
    fails_locally: set[str] = field(default_factory=set)
    # Versions the node accepts but that fail through the web front (the outside gate's case).
    fails_outside: set[str] = field(default_factory=set)


class FakePair:
    """Runner and Checker at once; `calls` records (role, command) and ("probe", address)."""

    def __init__(self, nodes: dict[str, tuple[str, FakeNode]]):
        self.nodes = nodes  # role -> (address, node)
        self.calls: list[tuple[str, str]] = []

    def node_at(self, address: str) -> FakeNode:
        return next(node for a, node in self.nodes.values() if a == address)

    def run(
        self,
        target: Target,
        command: Sequence[str],
        *,
        timeout: float = 600,
        on_line: Callable[[str], None] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        self.calls.append((target.role, " ".join(command)))
        _, node = self.nodes[target.role]
        if command[-1] == "--versions":
            text = f"active {node.active}\n" + "".join(f"kept {v}\n" for v in node.kept)
            return subprocess.CompletedProcess(list(command), 0, text, "")
        if command[:3] == ["sh", "-c", command[2]] and len(command) == 3:
            return subprocess.CompletedProcess(list(command), 0, "", "")
        version = command[-1]
        if on_line is not None:
            on_line(f"twinhost-deploy: deploying {version}")
        if version in node.fails_locally:
            if on_line is not None:
                on_line("twinhost-deploy: slot green is not healthy; rolling back")
            return subprocess.CompletedProcess(list(command), 1, "rolling back\n", "")
        node.active = version
        node.kept = [*[v for v in node.kept if v != version], version][-3:]
        return subprocess.CompletedProcess(list(command), 0, "done\n", "")

    def __call__(self, address: str, tls_name: str) -> Probe:
        self.calls.append(("probe", address))
        node = self.node_at(address)
        ok = node.active not in node.fails_outside
        return Probe(ok, "200" if ok else "503", 0.01, None, {"version": node.active})


def pair(**nodes: FakeNode) -> FakePair:
    addresses = {"digitalocean": "192.0.2.10", "linode": "192.0.2.20"}
    return FakePair({role: (addresses[role], node) for role, node in nodes.items()})


def targets(fake: FakePair, order: Sequence[str] = ("linode", "digitalocean")) -> list[Target]:
    return [Target(role, fake.nodes[role][0], "ops") for role in order]
