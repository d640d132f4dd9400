"""The decision: which addresses a site's failover record should hold, and when to write it.

Rules, each enforced by a test named after it (tests/watcher/test_engine.py):
- Hysteresis: a node is marked down after `failures` consecutive failed checks and up again after
  `recoveries` consecutive good ones. Anything in between changes nothing, so a node that fails
  every other check never moves the record (no flapping). While such a streak is under way the
  next round comes `recheckInterval` after the last (rechecks), not a whole `interval`.
- The record holds exactly the addresses of the nodes that are up.
- The last address is never removed: when every node is down, the record is left as it is (a node
  that might be up beats no answer at all) and an alert is sent once.
- Read before write: the provider is read when the healthy set differs from what was last seen
  there (or every `reconcileInterval`, to repair hand edits), and written only when what it holds
  differs from the healthy set. Writing is idempotent; a failed call is simply redone next tick.
- A fresh watcher (no state) trusts the record: nodes in it start up, the others start down and
  must pass `recoveries` checks first. So a (re)start never moves the record by itself.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any, Protocol

from twinhost_watcher.backends import DnsBackend, DnsError, RateLimitedError
from twinhost_watcher.clock import Clock
from twinhost_watcher.config import Node, Site, WatcherConfig
from twinhost_watcher.health import Checker, Result, Target
from twinhost_watcher.log import EventLog
from twinhost_watcher.state import NodeState, SiteState, StateStore, Status


class Notifier(Protocol):
    def notify(self, message: dict[str, Any]) -> None: ...


class Engine:
    def __init__(
        self,
        config: WatcherConfig,
        backends: dict[str, DnsBackend],
        checker: Checker,
        store: StateStore,
        log: EventLog,
        clock: Clock,
        notifier: Notifier | None = None,
        heartbeat: Callable[[], None] = lambda: None,
    ):
        self.config = config
        self.backends = backends
        self.checker = checker
        self.store = store
        self.log = log
        self.clock = clock
        self.notifier = notifier
        self.heartbeat = heartbeat  # called after every round and site: systemd's watchdog
        self.state, warning = store.load()
        if warning:
            log.emit("state_reset", "warning", reason=warning)
        self._saved = self.state.to_json()
        # When each site's record was last read. Not kept on disk: a restart reads every record
        # once, which also re-checks what the state file says.
        self._last_read: dict[str, float] = {}
        configured = {s.site for s in config.sites}
        for gone in set(self.state.sites) - configured:
            del self.state.sites[gone]  # a site that left the config leaves the state too

    # -----------------------------------------------------------------------------------------
    # The loop

    def run(self, stopping: Callable[[], bool]) -> None:
        """Tick every `interval` seconds (start to start) until `stopping()` is true. While a node
        is in doubt, the next round starts `recheckInterval` after this one ended, if that is
        sooner: `failures` checks of a dead node then take about failures x (timeout + recheck)
        instead of failures x interval, and the schedule goes on from there."""
        interval = self.config.interval
        next_start = self.clock.monotonic()
        while not stopping():
            self.tick()
            next_start += interval
            if self.in_doubt():
                next_start = min(next_start, self.clock.monotonic() + self.config.recheck_interval)
            delay = next_start - self.clock.monotonic()
            if delay < 0:
                self.log.emit("tick_overrun", "warning", late_seconds=round(-delay, 3))
                next_start = self.clock.monotonic()
                delay = 0
            if not stopping():
                self.clock.sleep(delay)

    def in_doubt(self) -> bool:
        """Some node has a streak under way that would change its status if it went on."""
        return any(
            (node.status == "up" and node.fail_streak > 0) or (node.status == "down" and node.ok_streak > 0)
            for site in self.state.sites.values()
            for node in site.nodes.values()
        )

    def tick(self) -> None:
        """One round: check every node at once, then decide and act for each site."""
        targets = [
            Target(
                (site.site, node.name),
                node.url,
                site.tls_name(node),
                node.ca_bundle,
                node.pin_sha256,
                node.ca_pem,
            )
            for site in self.config.sites
            for node in site.nodes
        ]
        results = self.checker(targets)
        for site in self.config.sites:
            try:
                self._site_tick(site, results)
            except Exception as exc:  # noqa: BLE001 - one site's surprise must not stop the others
                self.log.emit("site_error", "error", site=site.site, error=_describe(exc))
            self.heartbeat()
        self._save()
        self.heartbeat()

    # -----------------------------------------------------------------------------------------
    # One site

    def _site_tick(self, site: Site, results: dict[tuple[str, str], Result]) -> None:
        state = self.state.sites.setdefault(site.site, SiteState())
        names = {n.name for n in site.nodes}
        for gone in set(state.nodes) - names:
            del state.nodes[gone]
        if not self._init_nodes(site, state):
            return
        for node in site.nodes:
            self._observe(site, node, state.nodes[node.name], results[(site.site, node.name)])
        self._decide(site, state)

    def _init_nodes(self, site: Site, state: SiteState) -> bool:
        """Give new nodes (or nodes with a new address) a status taken from the record."""
        new = [n for n in site.nodes if n.name not in state.nodes or state.nodes[n.name].address != n.address]
        if not new:
            return True
        current = self._read(site, state)
        if current is None:
            return False  # cannot judge new nodes without the record; try again next tick
        now = self.clock.now()
        for node in new:
            status: Status = "up" if node.address in current else "down"
            state.nodes[node.name] = NodeState(address=node.address, status=status, since=now)
            self.log.emit(
                "node_tracked",
                site=site.site,
                node=node.name,
                address=node.address,
                status=status,
                reason="in the record" if status == "up" else "not in the record: must pass checks first",
            )
        return True

    def _observe(self, site: Site, node: Node, ns: NodeState, result: Result) -> None:
        """Hysteresis: only a full streak of the opposite result changes a node's status."""
        fields = {"site": site.site, "node": node.name, "address": node.address}
        if result.ok:
            ns.fail_streak = 0
            if ns.status == "down":
                ns.ok_streak += 1
                self.log.emit(
                    "check_ok",
                    **fields,
                    streak=ns.ok_streak,
                    needed=self.config.recoveries,
                    detail=result.detail,
                )
                if ns.ok_streak >= self.config.recoveries:
                    ns.status, ns.ok_streak, ns.since, ns.last_error = "up", 0, self.clock.now(), None
                    self.log.emit("node_up", **fields, after_checks=self.config.recoveries)
            return
        ns.ok_streak = 0
        ns.last_error = result.detail
        if ns.status == "up":
            ns.fail_streak += 1
            self.log.emit(
                "check_failed",
                "warning",
                **fields,
                streak=ns.fail_streak,
                needed=self.config.failures,
                detail=result.detail,
                seconds=round(result.seconds, 3),
            )
            if ns.fail_streak >= self.config.failures:
                ns.status, ns.fail_streak, ns.since = "down", 0, self.clock.now()
                self.log.emit(
                    "node_down", "warning", **fields, after_checks=self.config.failures, detail=result.detail
                )

    def _decide(self, site: Site, state: SiteState) -> None:
        healthy = sorted(n.address for n in site.nodes if state.nodes[n.name].status == "up")
        if not healthy:
            if not state.all_down_alerted:
                state.all_down_alerted = True
                self.log.emit(
                    "all_nodes_down",
                    "error",
                    site=site.site,
                    record=site.record,
                    kept=state.published,
                    reason="no healthy node; the record is left as it is",
                )
                self._notify(
                    "all_nodes_down",
                    site,
                    state.published or [],
                    state.published or [],
                    f"{site.site}: ALL nodes are down; {site.record} left at {_fmt(state.published)}",
                )
            return
        if state.all_down_alerted:
            state.all_down_alerted = False
            self.log.emit("all_nodes_down_over", site=site.site, healthy=healthy)

        now = self.clock.now()
        if now < state.backoff_until:
            return  # the provider asked us to wait (429); checks go on meanwhile
        changed = state.published is None or sorted(set(state.published)) != healthy
        last_read = self._last_read.get(site.site)
        if not changed and last_read is not None and now - last_read < self.config.reconcile_interval:
            return
        current = self._read(site, state)
        if current is None:
            return
        if sorted(set(current)) == healthy:
            state.dns_failures, state.dns_alerted = 0, False
            return
        try:
            self.backends[site.site].set(healthy, site.record_ttl)
        except Exception as exc:  # noqa: BLE001 - as in _read
            self._dns_failed(
                site, state, "set", exc if isinstance(exc, DnsError) else DnsError(_describe(exc))
            )
            return
        state.published = healthy
        state.dns_failures, state.dns_alerted = 0, False
        reason = self._reason(site, state, current, healthy)
        self.log.emit(
            "record_moved",
            "warning",
            site=site.site,
            record=site.record,
            backend=self.backends[site.site].name,
            **{"from": current, "to": healthy},
            reason=reason,
        )
        self._save()  # before notifying: a restart must know the move happened and not redo it
        self._notify(
            "record_moved",
            site,
            current,
            healthy,
            f"{site.site}: {site.record} moved from {_fmt(current)} to {_fmt(healthy)} ({reason})",
        )

    def _read(self, site: Site, state: SiteState) -> list[str] | None:
        try:
            current = self.backends[site.site].get()
        except Exception as exc:  # noqa: BLE001 - DnsError, or a library's surprise: same handling
            self._dns_failed(
                site, state, "get", exc if isinstance(exc, DnsError) else DnsError(_describe(exc))
            )
            return None
        if state.published is not None and sorted(set(current)) != sorted(set(state.published)):
            self.log.emit(
                "record_differs",
                "warning",
                site=site.site,
                record=site.record,
                expected=state.published,
                found=current,
            )
        state.published = current
        self._last_read[site.site] = self.clock.now()
        return current

    def _dns_failed(self, site: Site, state: SiteState, op: str, exc: DnsError) -> None:
        state.published = None  # unknown now: read it again before the next decision
        state.dns_failures += 1
        fields: dict[str, Any] = {
            "site": site.site,
            "op": op,
            "error": str(exc),
            "consecutive": state.dns_failures,
        }
        if isinstance(exc, RateLimitedError):
            state.backoff_until = self.clock.now() + exc.retry_after
            fields["retry_after"] = exc.retry_after
        self.log.emit("dns_error", "error", **fields)
        if state.dns_failures >= self.config.failures and not state.dns_alerted:
            state.dns_alerted = True
            self._notify(
                "dns_failing",
                site,
                [],
                [],
                f"{site.site}: cannot {op} {site.record} at "
                f"{self.backends[site.site].name} ({state.dns_failures} tries): {exc}",
            )

    def _reason(self, site: Site, state: SiteState, before: list[str], after: list[str]) -> str:
        parts = []
        for node in site.nodes:
            ns = state.nodes[node.name]
            if node.address in before and node.address not in after:
                parts.append(f"{node.name} down: {ns.last_error}")
            elif node.address in after and node.address not in before:
                parts.append(f"{node.name} healthy")
        foreign = sorted(set(before) - {n.address for n in site.nodes})
        if foreign:
            parts.append(f"removed addresses of no configured node {foreign}")
        return "; ".join(parts) or "record differed from the healthy set"

    def _notify(self, event: str, site: Site, before: list[str], after: list[str], text: str) -> None:
        if self.notifier is None:
            return
        at = datetime.datetime.fromtimestamp(self.clock.now(), datetime.UTC)
        self.notifier.notify(
            {
                "text": text,
                "event": event,
                "site": site.site,
                "record": site.record,
                "from": before,
                "to": after,
                "at": at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            }
        )

    def _save(self) -> None:
        text = self.state.to_json()
        if text != self._saved:  # steady state writes nothing: no disk churn every 5 s
            self.store.save(self.state)
            self._saved = text


def _describe(exc: BaseException) -> str:
    """An unexpected exception, for the log: its type and a bounded message."""
    return f"{exc.__class__.__name__}: {str(exc)[:300]}"


def _fmt(addresses: list[str] | None) -> str:
    return ", ".join(addresses) if addresses else "(nothing)"
