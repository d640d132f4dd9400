"""`twinhost status`: what a site's pair, its failover record and the watcher say now.

Per node: `/health` through the web front as the watcher checks it (status, the certificate's
expiry), and over ssh what the node runs (`twinhost-deploy --versions`), its GlusterFS state
(peer, bricks online, entries waiting to heal) and its Galera state when it has a database. The
failover record as DNS answers it now. The watcher on the redirector: whether it runs, and its last
events about this site (its JSON journal lines, docs/watcher.md). Anything that cannot be read is
shown as such, never guessed: a node that ssh cannot reach still gets its health row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from infra.ops.backup import describe_last, json_tail
from infra.ops.deploy import DEPLOY_COMMAND, NodeVersions, Runner
from infra.ops.health import Checker
from infra.ops.remote import Target

WATCHER_EVENTS = 5
WATCHER_JOURNAL_LINES = 2000
MARK = "@@twinhost-status "

# One ssh per node: each section marked, every tool optional (a node without a database has no
# mariadb; a node from before `--versions` prints no active line). gluster is looked for by path:
# /usr/sbin is not on the admin user's PATH (sudo's secure_path has it).
NODE_SCRIPT = (
    f"echo '{MARK}versions'; {' '.join(DEPLOY_COMMAND)} --versions 2>&1; "
    f"echo '{MARK}gluster'; test -x /usr/sbin/gluster && {{ "
    "sudo -n gluster --mode=script peer status 2>&1; "
    # The node's one volume, named after its site (infra.bootstrap.glusterfs.volume_name).
    "for v in $(sudo -n gluster --mode=script volume list 2>/dev/null); do "
    "sudo -n gluster --mode=script volume status $v 2>&1; "
    "sudo -n gluster --mode=script volume heal $v info summary 2>&1; done; }; "
    f"echo '{MARK}galera'; command -v mariadb >/dev/null && sudo -n mariadb -Nse "
    '"SHOW GLOBAL STATUS WHERE Variable_name IN '
    "('wsrep_cluster_size','wsrep_cluster_status','wsrep_local_state_comment')\" 2>&1; "
    f"echo '{MARK}backup'; test -x /usr/local/sbin/twinhost-backup && "
    "sudo -n /usr/local/sbin/twinhost-backup last 2>/dev/null; "
    f"echo '{MARK}end'"
)
WATCHER_SCRIPT = (
    f"echo '{MARK}active'; systemctl is-active twinhost-watcher 2>&1; "
    f"echo '{MARK}journal'; sudo -n journalctl -u twinhost-watcher -o cat --no-pager "
    f"-n {WATCHER_JOURNAL_LINES} 2>&1; echo '{MARK}end'"
)


@dataclass
class NodeStatus:
    node: str
    address: str
    healthy: bool = False
    health: str = ""
    certificate_expires: str | None = None
    certificate_days_left: float | None = None
    version: str | None = None
    kept: list[str] = field(default_factory=list)
    gluster: str | None = None
    galera: str | None = None
    # The last good backup's age (`twinhost-backup last`, docs/backups.md); None: no backups.
    backup: str | None = None
    ssh: str = "ok"


@dataclass
class WatcherStatus:
    address: str | None
    running: str = "unknown"
    events: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


@dataclass
class SiteStatus:
    site: str
    mode: str
    primary: str
    failover_name: str
    record: list[str] | None
    record_nodes: list[str]
    record_note: str
    nodes: list[NodeStatus]
    watcher: WatcherStatus | None

    @property
    def ok(self) -> bool:
        return all(n.healthy for n in self.nodes)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def sections(text: str) -> dict[str, str]:
    """The marked sections of a NODE_SCRIPT/WATCHER_SCRIPT output."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(MARK):
            current = found.setdefault(line[len(MARK) :].strip(), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in found.items()}


def gluster_summary(text: str) -> str | None:
    """'peer connected, 2/2 bricks online, 0 to heal' from peer status, volume status and heal
    info summary; None when the node has no GlusterFS."""
    if not text.strip():
        return None
    parts = []
    states = re.findall(r"State: (.+)", text)
    if states:
        connected = sum("Connected" in s for s in states)
        parts.append(f"{connected}/{len(states)} peers connected")
    bricks = re.findall(r"^Brick \S+\s+\S+\s+\S+\s+(Y|N)\b", text, flags=re.MULTILINE)
    if bricks:
        parts.append(f"{bricks.count('Y')}/{len(bricks)} bricks online")
    pending = [int(n) for n in re.findall(r"Total Number of entries:\s+(\d+)", text)]
    if pending:
        parts.append(f"{sum(pending)} to heal")
    if not parts:
        return text.strip().splitlines()[-1][:80]
    return ", ".join(parts)


def galera_summary(text: str) -> str | None:
    values = dict(line.split(None, 1) for line in text.splitlines() if len(line.split(None, 1)) == 2)
    if not values:
        return None
    return (
        f"{values.get('wsrep_cluster_status', '?')}, size {values.get('wsrep_cluster_size', '?')}, "
        f"{values.get('wsrep_local_state_comment', '?')}"
    )


def watcher_events(journal: str, site: str, count: int = WATCHER_EVENTS) -> list[dict[str, Any]]:
    """The last `count` watcher events about `site` (its JSON lines; other lines skipped)."""
    events = []
    for line in journal.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get("site") == site:
            events.append(event)
    return events[-count:]


def node_status(target: Target, tls_name: str, remote: Runner, check: Checker) -> NodeStatus:
    status = NodeStatus(target.role, target.address)
    probe = check(target.address, tls_name)
    status.healthy, status.health = probe.ok, probe.detail
    if probe.certificate_expires is not None:
        status.certificate_expires = probe.certificate_expires.strftime("%Y-%m-%d %H:%M UTC")
        days = probe.days_left
        status.certificate_days_left = None if days is None else round(days, 1)
    done = remote.run(target, ["sh", "-c", NODE_SCRIPT], timeout=60)
    if done.returncode == 255:
        status.ssh = f"unreachable: {(str(done.stdout).strip().splitlines() or ['?'])[-1][:100]}"
        return status
    found = sections(str(done.stdout))
    try:
        versions = NodeVersions.parse(found.get("versions", ""))
        status.version, status.kept = versions.active, list(versions.kept)
    except ValueError:
        status.version = None
    if status.version is None and probe.body is not None:
        status.version = probe.body.get("version")  # the demo app's /health names it
    status.gluster = gluster_summary(found.get("gluster", ""))
    status.galera = galera_summary(found.get("galera", ""))
    status.backup = describe_last(json_tail(found.get("backup", "")))
    return status


def watcher_status(target: Target | None, site: str, remote: Runner) -> WatcherStatus:
    if target is None:
        return WatcherStatus(None, note="the redirector's address is unknown (the platform stack's outputs)")
    status = WatcherStatus(target.address)
    done = remote.run(target, ["sh", "-c", WATCHER_SCRIPT], timeout=60)
    if done.returncode == 255:
        status.note = "unreachable over ssh"
        return status
    found = sections(str(done.stdout))
    status.running = (found.get("active", "").strip().splitlines() or ["unknown"])[-1]
    status.events = watcher_events(found.get("journal", ""), site)
    if not status.events:
        status.note = "no events about this site in the watcher's journal"
    return status


def resolve(name: str, resolver: str | None) -> tuple[list[str] | None, str]:
    """The A records of `name` now (sorted), from `resolver` or the system's; (None, why) when
    the name does not resolve."""
    import dns.exception
    import dns.resolver

    lookup = dns.resolver.Resolver(configure=resolver is None)
    if resolver is not None:
        lookup.nameservers = [resolver]
    lookup.lifetime = 5.0
    try:
        answer = lookup.resolve(name, "A")
    except (dns.exception.DNSException, OSError) as exc:
        return None, f"{exc.__class__.__name__}: {str(exc)[:100]}"
    return sorted(str(r) for r in answer), f"TTL {answer.rrset.ttl if answer.rrset else '?'}"


def site_status(
    site: str,
    mode: str,
    primary: str,
    failover_name: str,
    targets: Sequence[Target],
    redirector: Target | None,
    *,
    remote: Runner,
    check: Checker,
    resolver: str | None,
    watcher: bool = True,
    log: Callable[[str], None] = lambda _line: None,
) -> SiteStatus:
    nodes = []
    for target in targets:
        log(f"{site}: checking {target.role} ({target.address})")
        nodes.append(node_status(target, failover_name, remote, check))
    record, note = resolve(failover_name, resolver)
    by_address = {t.address: t.role for t in targets}
    record_nodes = [by_address.get(a, f"{a} (not a node of {site})") for a in record or []]
    return SiteStatus(
        site=site,
        mode=mode,
        primary=primary,
        failover_name=failover_name,
        record=record,
        record_nodes=record_nodes,
        record_note=note,
        nodes=nodes,
        watcher=watcher_status(redirector, site, remote) if watcher and mode == "watchdog" else None,
    )


def render(status: SiteStatus) -> str:
    lines = [f"{status.site}  (failover {status.mode}, primary {status.primary})"]
    rows = [("node", "address", "health", "version", "kept", "certificate expires", "GlusterFS", "ssh")]
    for n in status.nodes:
        expiry = "-"
        if n.certificate_expires:
            expiry = f"{n.certificate_expires[:10]} ({n.certificate_days_left:.0f} d)"
        gluster = n.gluster or "-"
        if n.galera:
            gluster += f"; Galera {n.galera}"
        rows.append(
            (
                n.node,
                n.address,
                ("ok " if n.healthy else "FAIL ") + n.health,
                n.version or "?",
                " ".join(n.kept) or "-",
                expiry,
                gluster,
                n.ssh,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    backups = sorted({n.backup for n in status.nodes if n.backup})
    if backups:
        lines.append(f"  backups: {' | '.join(backups)}")
    if status.record is None:
        lines.append(f"  failover record {status.failover_name}: no answer ({status.record_note})")
    else:
        lines.append(
            f"  failover record {status.failover_name}: {', '.join(status.record)} "
            f"= {', '.join(status.record_nodes)} ({status.record_note})"
        )
    if status.watcher is not None:
        w = status.watcher
        lines.append(
            f"  watcher ({w.address or 'redirector unknown'}): {w.running}"
            + (f"; {w.note}" if w.note else "")
        )
        for event in w.events:
            extra = {k: v for k, v in event.items() if k not in ("ts", "level", "event", "site")}
            lines.append(f"    {event.get('ts', '?')}  {event.get('event', '?')}  {json.dumps(extra)[:120]}")
    return "\n".join(lines)
