"""`twinhost logs`: a site's logs from its nodes, or the watcher's from the redirector, over ssh.

What each `--unit` reads on a node (as root, through the admin user's sudo):
- `app`: the app's journal, both blue/green slots (`journalctl -u 'twinhost-app@*'`);
- `web`: nginx's journal and its logs (`/var/log/nginx/*.log`: access and errors);
- `cloud-init`: the first boot's output (`/var/log/cloud-init-output.log`).
`--watcher`: the failover watcher's journal on the redirector (one JSON event a line).
`--follow` keeps reading; with both nodes, their lines are interleaved, each prefixed.
"""

from __future__ import annotations

import shlex
import subprocess
import threading
from collections.abc import Callable, Sequence

from infra.ops.remote import SshSettings, Target

UNITS = ("app", "web", "cloud-init")


def node_command(unit: str, lines: int, follow: bool) -> list[str]:
    follow_journal = " -f" if follow else ""
    follow_tail = " -F" if follow else ""
    if unit == "app":
        script = f"sudo -n journalctl -u 'twinhost-app@*' --no-pager -n {lines}{follow_journal}"
    elif unit == "web":
        # The glob is expanded by root's shell: /var/log/nginx is not readable by the admin user.
        script = (
            f"sudo -n journalctl -u nginx --no-pager -n {lines}; "
            f"sudo -n sh -c 'tail -n {lines}{follow_tail} /var/log/nginx/*.log'"
        )
    elif unit == "cloud-init":
        script = f"sudo -n tail -n {lines}{follow_tail} /var/log/cloud-init-output.log"
    else:
        raise ValueError(f"--unit must be one of {', '.join(UNITS)}, not {unit!r}")
    return ["sh", "-c", script]


def watcher_command(lines: int, follow: bool) -> list[str]:
    follow_journal = " -f" if follow else ""
    return [
        "sh",
        "-c",
        f"sudo -n journalctl -u twinhost-watcher -o cat --no-pager -n {lines}{follow_journal}",
    ]


def stream(
    settings: SshSettings,
    targets: Sequence[Target],
    command: Sequence[str],
    out: Callable[[str], None],
) -> int:
    """Run `command` on every target at once, each line prefixed with its role when there are
    several; returns the worst exit code (255: ssh could not reach one)."""
    codes: list[int] = []
    lock = threading.Lock()

    def one(target: Target) -> None:
        prefix = f"[{target.role}] " if len(targets) > 1 else ""
        argv = settings.argv(target, command)
        with subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                with lock:
                    out(prefix + line.rstrip("\n"))
            code = process.wait()
        if code == 255:
            with lock:
                out(f"{prefix}ssh {target.user}@{target.address} failed (exit 255): {shlex.join(command)}")
        codes.append(code)

    threads = [threading.Thread(target=one, args=(t,), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.5)  # short waits: Ctrl-C reaches the main thread
    return max(codes, default=0)
