"""systemd's notify protocol, just enough for Type=notify and WatchdogSec= (sd_notify(3)).

READY=1 once the config, the secrets and the state are loaded (so `systemctl start` fails on a bad
config instead of reporting success); WATCHDOG=1 after every round, so a watcher stuck in a call
that never returns is killed and restarted by systemd. Without $NOTIFY_SOCKET (run by hand, tests)
every call does nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket


class SystemdNotifier:
    def __init__(self, address: str | None = None):
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        # "@name" is an abstract socket: the leading byte is NUL on the wire.
        self._address = ("\0" + address[1:]) if address and address.startswith("@") else address

    def send(self, message: str) -> None:
        if not self._address:
            return
        with (
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock,
            contextlib.suppress(OSError),  # systemd went away (shutdown): nothing to tell
        ):
            sock.sendto(message.encode(), self._address)

    def ready(self) -> None:
        self.send("READY=1")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1")
