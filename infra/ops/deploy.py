"""The rolling, health-gated deploy of a site's app, and the rollback: one node at a time.

For each node in turn (the standby first, unless told otherwise: in manual mode it serves no
visitors, and in watchdog mode a bad version meets the node the record lists second):

1. ask the node which version it runs and which it keeps (`twinhost-deploy --versions`);
2. run the node-side blue/green deploy, `sudo twinhost-deploy VERSION` (the new version starts
   beside the old one and takes over only once its /health answers, through nginx too; on any
   failure the node puts itself back and exits non-zero);
3. wait until the node is healthy through its web front the way the failover watcher sees it
   (`infra.ops.health`: its address, the failover name as SNI, 2 checks in a row);
4. only then the next node.

A failure at 2 (the node already rolled itself back) or at 3 (this module runs `twinhost-deploy`
with the version the node ran before, which it keeps, so nothing is downloaded) stops the deploy:
the nodes not yet reached were never touched and keep serving the old version.

`rollback` is the same walk to an older version: the one before the current in the first node's
kept list, or a named one, which every node must still keep (the last `KEEP_VERSIONS` = 3).

No argparse, no printing: progress goes to a `log` callable, and the ssh and health seams are
objects the caller passes, so a Pulumi resource (or a test) can drive the same walk.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from infra.ops.health import Checker, Probe, wait_healthy
from infra.ops.remote import Target

# The node-side script's own rule (cloudinit/site/usr/local/sbin/twinhost-deploy), checked here
# first so a bad version is refused before any node is touched.
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+~@-]{0,127}$")
DEPLOY_COMMAND = ("sudo", "-n", "/usr/local/sbin/twinhost-deploy")
KEEP_VERSIONS = 3  # the node-side script's default (KEEP_VERSIONS)
# twinhost-deploy waits up to 60 s for the new slot, twice (direct, then through nginx), plus a
# package or image download: generous, but a hung node must not hang the deploy forever.
NODE_DEPLOY_TIMEOUT_SECONDS = 900
SSH_FAILED = 255

Log = Callable[[str], None]


class Runner(Protocol):
    def run(
        self,
        target: Target,
        command: Sequence[str],
        *,
        timeout: float = ...,
        on_line: Callable[[str], None] | None = ...,
    ) -> Any: ...


class DeployRefusedError(Exception):
    """Refused before any node was touched (exit 2): a bad version, one not kept for a rollback,
    a node that cannot say what it runs."""


@dataclass(frozen=True)
class Gate:
    """When a node counts as healthy after its deploy: `needed` good checks in a row within
    `timeout` seconds, one every `interval` (the watcher's recoveries: 2)."""

    needed: int = 2
    timeout: float = 90
    interval: float = 2


@dataclass(frozen=True)
class NodeVersions:
    active: str
    kept: tuple[str, ...]  # oldest first

    @classmethod
    def parse(cls, text: str) -> NodeVersions:
        active, kept = None, []
        for line in text.splitlines():
            word, _, value = line.strip().partition(" ")
            if word == "active" and value:
                active = value
            elif word == "kept" and value:
                kept.append(value)
        if active is None:
            raise ValueError("no 'active' line")
        return cls(active, tuple(kept))

    @property
    def previous(self) -> str | None:
        """The newest kept version other than the active one (after every deploy the active one
        is the newest kept), None when there is none."""
        older = [v for v in self.kept if v != self.active]
        return older[-1] if older else None


@dataclass
class NodeResult:
    role: str
    address: str
    before: str | None = None
    after: str | None = None
    outcome: str = "not reached"  # deployed | already there | rolled back | ROLLBACK FAILED | not reached
    detail: str = ""
    seconds: float = 0.0


@dataclass
class DeployResult:
    version: str
    nodes: list[NodeResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(n.outcome in ("deployed", "already there") for n in self.nodes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "ok": self.ok,
            "nodes": [
                {
                    "node": n.role,
                    "address": n.address,
                    "before": n.before,
                    "after": n.after,
                    "outcome": n.outcome,
                    "detail": n.detail,
                    "seconds": round(n.seconds, 1),
                }
                for n in self.nodes
            ],
        }


def check_version(version: str) -> str:
    if not VERSION_PATTERN.match(version):
        raise DeployRefusedError(
            f"{version!r} is not a version: a letter or digit, then letters, digits and . _ : + ~ @ - "
            "(at most 128)"
        )
    return version


def order_nodes(targets: Sequence[Target], serving: str, first: str | None = None) -> list[Target]:
    """The standby (the node other than `serving`) first (module doc), or `first` when given."""
    lead = first or next((t.role for t in targets if t.role != serving), serving)
    return sorted(targets, key=lambda t: t.role != lead)


def node_versions(remote: Runner, target: Target) -> NodeVersions:
    done = remote.run(target, [*DEPLOY_COMMAND, "--versions"], timeout=60)
    if done.returncode != 0:
        last = (str(done.stdout).strip().splitlines() or ["(no output)"])[-1]
        raise DeployRefusedError(f"{target.role} ({target.address}): cannot read its versions: {last}")
    try:
        return NodeVersions.parse(str(done.stdout))
    except ValueError:
        raise DeployRefusedError(
            f"{target.role} ({target.address}): `twinhost-deploy --versions` gave no active version "
            "(a node from before `--versions` existed: its twinhost-deploy needs the update)"
        ) from None


def rollback_target(remote: Runner, targets: Sequence[Target], version: str | None) -> str:
    """The version `rollback` goes to: `version`, or the one before the current on the first
    node; refused unless every node still keeps it (a rollback downloads nothing)."""
    found = {t.role: node_versions(remote, t) for t in targets}
    first = targets[0]
    if version is None:
        previous = found[first.role].previous
        if previous is None:
            raise DeployRefusedError(
                f"{first.role} keeps no version before {found[first.role].active}: nothing to roll back to"
            )
        version = previous
    check_version(version)
    for target in targets:
        if version not in found[target.role].kept:
            kept = ", ".join(found[target.role].kept) or "none"
            raise DeployRefusedError(
                f"{target.role} does not keep {version} (it keeps {kept}; the last {KEEP_VERSIONS} are "
                f"kept): `twinhost deploy {version}` installs it anew"
            )
    return version


def rolling_deploy(
    targets: Sequence[Target],
    version: str,
    *,
    remote: Runner,
    check: Checker,
    tls_name: str,
    log: Log,
    gate: Gate = Gate(),
    clock: Callable[[], float] | None = None,
) -> DeployResult:
    """Deploy `version` to `targets` in order (module doc). Never raises for a node's failure:
    the result says where it stopped and what each node runs."""
    import time

    now = clock or time.monotonic
    check_version(version)
    result = DeployResult(version, [NodeResult(t.role, t.address) for t in targets])
    for index, (target, node) in enumerate(zip(targets, result.nodes, strict=True), start=1):
        started = now()
        tag = f"[{index}/{len(targets)}] {target.role}"
        try:
            before = node_versions(remote, target)
        except DeployRefusedError as exc:
            node.outcome, node.detail = "failed", str(exc)
            log(f"{tag}: {exc}; stopping")
            break
        node.before = before.active
        if before.active == version:
            log(f"{tag} ({target.address}) already runs {version}; checking its health")
        else:
            log(f"{tag} ({target.address}): {before.active} -> {version}")
            done = remote.run(
                target,
                [*DEPLOY_COMMAND, version],
                timeout=NODE_DEPLOY_TIMEOUT_SECONDS,
                on_line=_prefixed(log, f"    {target.role}: "),
            )
            if done.returncode != 0:
                _stopped_by_node(remote, target, node, before, int(done.returncode), log, tag)
                node.seconds = now() - started
                break
        probe = wait_healthy(
            check,
            target.address,
            tls_name,
            needed=gate.needed,
            timeout=gate.timeout,
            interval=gate.interval,
            on_probe=_probe_logger(log, f"    {tag}: /health through the web front: "),
        )
        if probe.ok:
            node.after = version
            node.outcome = "deployed" if before.active != version else "already there"
            node.detail = f"healthy through the web front ({gate.needed} checks in a row)"
            node.seconds = now() - started
            log(f"{tag}: {version} healthy through the web front after {node.seconds:.0f} s")
            continue
        log(
            f"{tag}: not healthy through the web front within {gate.timeout:.0f} s ({probe.detail}); "
            f"rolling back to {before.active}"
        )
        _roll_back(remote, check, tls_name, target, node, before, probe, gate, log, tag)
        node.seconds = now() - started
        break
    return result


def _prefixed(log: Log, prefix: str) -> Callable[[str], None]:
    return lambda line: log(prefix + line)


def _probe_logger(log: Log, prefix: str) -> Callable[[Probe], None]:
    return lambda probe: log(prefix + probe.detail)


def _stopped_by_node(
    remote: Runner, target: Target, node: NodeResult, before: NodeVersions, code: int, log: Log, tag: str
) -> None:
    """twinhost-deploy failed: it put the node back itself; confirm what the node runs now."""
    if code == SSH_FAILED:
        node.detail = "ssh failed during the deploy: the node's state is unknown"
    else:
        node.detail = f"twinhost-deploy failed (exit {code}) and put the node back"
    try:
        node.after = node_versions(remote, target).active
    except DeployRefusedError as exc:
        node.after = None
        node.detail += f"; {exc}"
    node.outcome = "rolled back" if node.after == before.active else "ROLLBACK FAILED"
    log(f"{tag}: {node.detail}; it runs {node.after or 'an unknown version'}; stopping")


def _roll_back(
    remote: Runner,
    check: Checker,
    tls_name: str,
    target: Target,
    node: NodeResult,
    before: NodeVersions,
    failed: Probe,
    gate: Gate,
    log: Log,
    tag: str,
) -> None:
    node.detail = f"not healthy through the web front: {failed.detail}"
    back = remote.run(
        target,
        [*DEPLOY_COMMAND, before.active],
        timeout=NODE_DEPLOY_TIMEOUT_SECONDS,
        on_line=lambda line: log(f"    {target.role}: {line}"),
    )
    probe = wait_healthy(
        check, target.address, tls_name, needed=gate.needed, timeout=gate.timeout, interval=gate.interval
    )
    if back.returncode == 0 and probe.ok:
        node.after, node.outcome = before.active, "rolled back"
        log(f"{tag}: back on {before.active}, healthy; stopping")
    else:
        node.outcome = "ROLLBACK FAILED"
        node.detail += f"; rollback to {before.active}: exit {back.returncode}, /health {probe.detail}"
        log(f"{tag}: ROLLBACK FAILED ({node.detail}): look at it now (`twinhost ssh`, `twinhost logs`)")


def record_version(stack_file: Path, version: str) -> bool:
    """Set `twinhost:app.version` in the stack file (layout kept: infra.stack_edit), validated
    with the model `pulumi up` uses. Returns whether the file changed."""
    from infra.config import NAMESPACE, parse_config
    from infra.stack_edit import EditedStackFile, plain

    edited = EditedStackFile(stack_file)
    config = edited.config
    key = f"{NAMESPACE}:app"
    app = config.get(key)
    if app is None:
        config[key] = {"kind": "demo", "version": version}
    elif str(app.get("version")) == version:
        return False
    else:
        app["version"] = version
    values = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith(f"{NAMESPACE}:")}
    parse_config(plain(values))  # ConfigError: the file stays as it was
    edited.write()
    return True
