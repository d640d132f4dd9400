"""`python -m twinhost_watcher --config /etc/twinhost/watcher.json [--once | --check-config]`

Exit codes: 0 ok (or stopped by SIGTERM/SIGINT), 2 bad config, a missing/unreadable `caBundle` or
a missing/unsafe secret (nothing was checked or changed), 1 an unexpected error (systemd restarts the service).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import TextIO

from twinhost_watcher import VERSION
from twinhost_watcher.backends import DnsBackend, DnsError, backend_for
from twinhost_watcher.clock import Clock, SystemClock
from twinhost_watcher.config import (
    SecretError,
    WatcherConfig,
    WatcherConfigError,
    check_trust_files,
    load_config,
    webhook_url,
)
from twinhost_watcher.engine import Engine
from twinhost_watcher.health import Checker, HttpsChecker
from twinhost_watcher.log import EventLog
from twinhost_watcher.notify import WebhookNotifier
from twinhost_watcher.sdnotify import SystemdNotifier
from twinhost_watcher.state import StateStore

DEFAULT_CONFIG = "/etc/twinhost/watcher.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m twinhost_watcher", description="twinhost failover watcher"
    )
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"the JSON config file (default {DEFAULT_CONFIG})"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--once",
        action="store_true",
        help="one round of checks and decisions, then exit (state is kept: repeated runs "
        "accumulate towards failures/recoveries, as ticks do)",
    )
    mode.add_argument(
        "--check-config",
        action="store_true",
        help="validate the config, that every caBundle loads and every secret is readable, "
        "print a summary, exit",
    )
    parser.add_argument("--state-dir", help="override the config's stateDir")
    parser.add_argument("--version", action="version", version=f"twinhost-watcher {VERSION}")
    return parser.parse_args(argv)


def build_engine(
    config: WatcherConfig,
    *,
    clock: Clock,
    log: EventLog,
    checker: Checker | None = None,
    backends: dict[str, DnsBackend] | None = None,
    notifier: WebhookNotifier | None = None,
    state_dir: str | None = None,
) -> Engine:
    """The engine with its real parts, each replaceable (tests, drills)."""
    if backends is None:
        backends = {site.site: backend_for(site, config, timeout=config.dns_timeout) for site in config.sites}
    return Engine(
        config,
        backends,
        checker or HttpsChecker(config.timeout),
        StateStore(state_dir or config.state_dir),
        log,
        clock,
        notifier,
    )


def main(
    argv: Sequence[str] | None = None,
    *,
    clock: SystemClock | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    args = parse_args(argv)
    clock = clock or SystemClock()
    out, err = stdout or sys.stdout, stderr or sys.stderr
    log = EventLog(clock.now, out)
    try:
        config = load_config(args.config)
        check_trust_files(config)  # a missing caBundle would judge every node of its site down
        backends = {site.site: backend_for(site, config, timeout=config.dns_timeout) for site in config.sites}
        url = webhook_url(config)
    except (WatcherConfigError, SecretError, DnsError) as exc:
        print(f"twinhost-watcher: {exc}", file=err)
        return 2

    if args.check_config:
        for site in config.sites:
            nodes = ", ".join(f"{n.name}={n.address}" for n in site.nodes)
            print(
                f"{site.site}: {site.record} via {site.dns.backend}, ttl {site.record_ttl}; nodes {nodes}",
                file=out,
            )
        print(
            f"notifications: {'on' if url else 'off'}; state in {args.state_dir or config.state_dir}",
            file=out,
        )
        return 0

    notifier = None
    if url:
        notifier = WebhookNotifier(
            url, log, timeout=config.notify.timeout, attempts=config.notify.attempts, sleep=clock.sleep
        )
    else:
        log.emit(
            "notify_disabled", "warning", reason="no notify.urlSecret and no $TWINHOST_WATCHER_WEBHOOK_URL"
        )
    engine = build_engine(
        config, clock=clock, log=log, backends=backends, notifier=notifier, state_dir=args.state_dir
    )
    systemd = SystemdNotifier()
    engine.heartbeat = systemd.watchdog

    def stop(signum: int, _frame: object) -> None:
        log.emit("watcher_stopping", signal=signal.Signals(signum).name)
        clock.stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    systemd.ready()
    log.emit(
        "watcher_started",
        version=VERSION,
        once=args.once,
        sites=[s.site for s in config.sites],
        interval=config.interval,
        failures=config.failures,
        recoveries=config.recoveries,
        timeout=config.timeout,
    )
    try:
        if args.once:
            engine.tick()
        else:
            engine.run(clock.stopping.is_set)
    finally:
        systemd.stopping()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if notifier is not None:
            # Give queued messages their retries, but never hang a stop for long.
            notifier.close(timeout=min(config.notify.attempts * (config.notify.timeout + 2), 30))
    log.emit("watcher_stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
