"""A client that polls a site's page while something happens to it, and counts what failed.

Run in the lab's internet namespace (`python -m twinhost_lab.poller ...`): every `--interval`
seconds it asks `https://<name>/` once of every `--address` (the addresses the failover name holds,
so every node is polled the whole time), each on a new connection as a new visitor would, trusting
only `--cacert`. A request fails unless it answers 200 within `--timeout`. It stops when its stdin
closes, then prints one JSON summary: requests, failed, per address, versions served, failures.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import ssl
import sys
import threading
import time
from typing import Any

VERSION = re.compile(rb"version <b>([^<]+)</b>")
MAX_FAILURES_LISTED = 20


def fetch(context: ssl.SSLContext, address: str, name: str, timeout: float) -> tuple[bool, str, str | None]:
    """(ok, detail, version) of one GET / on a new connection."""
    try:
        with (
            socket.create_connection((address, 443), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=name) as tls,
        ):
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    except (OSError, ssl.SSLError) as exc:
        return False, f"{exc.__class__.__name__}: {exc}"[:160], None
    status = data.split(b"\r\n", 1)[0].decode("latin-1")
    found = VERSION.search(data)
    version = found.group(1).decode() if found else None
    return " 200 " in f"{status} ", status, version


def poll(args: argparse.Namespace, stop: threading.Event) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=args.cacert)
    summary: dict[str, Any] = {"requests": 0, "failed": 0, "by_address": {}, "versions": {}, "failures": []}
    started = time.monotonic()
    next_round = started
    while not stop.is_set():
        for address in args.address:
            ok, detail, version = fetch(context, address, args.name, args.timeout)
            entry = summary["by_address"].setdefault(address, {"requests": 0, "failed": 0})
            summary["requests"] += 1
            entry["requests"] += 1
            if version:
                summary["versions"][version] = summary["versions"].get(version, 0) + 1
            if not ok:
                summary["failed"] += 1
                entry["failed"] += 1
                if len(summary["failures"]) < MAX_FAILURES_LISTED:
                    at = round(time.monotonic() - started, 2)
                    summary["failures"].append({"at_s": at, "address": address, "detail": detail})
        next_round += args.interval
        stop.wait(max(0.0, next_round - time.monotonic()))
    summary["seconds"] = round(time.monotonic() - started, 1)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="twinhost_lab.poller", description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the site's name (SNI and Host), www.<apex>")
    parser.add_argument("--address", action="append", required=True, help="a node address (repeat)")
    parser.add_argument("--cacert", required=True, help="the CA the site's certificate chains to")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between rounds (default 0.1)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds a request may take")
    args = parser.parse_args(argv)
    stop = threading.Event()
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(poll(args, stop)), daemon=True)
    worker.start()
    print("polling", flush=True)  # the caller waits for this line before it starts its change
    sys.stdin.read()  # until the caller closes it
    stop.set()
    worker.join()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
