"""ssh to a node as the stack's admin user.

The operator's own ssh does the work (their keys, agent and `~/.ssh/config` apply), with:
- `BatchMode=yes` for commands (a prompt would hang a deploy), none for `twinhost ssh`;
- `StrictHostKeyChecking=accept-new`: a node's host key is learnt on the first connection and
  checked on every later one (nodes are new machines; their keys are not known beforehand);
- one multiplexed connection per node (`ControlMaster`, kept 60 s): a deploy, its version query
  and its rollback open one TCP connection, not one each, which also keeps the admin address
  under the nodes' `ufw limit` on SSH (6 connections in 30 s);
- `--ssh-config FILE` (`ssh -F`): another ssh config, as the lab uses (its throwaway key, no
  known-hosts file); options given there win over the defaults above.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

CONTROL_PERSIST_SECONDS = 60
CONNECT_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Target:
    """One machine: its role (digitalocean, linode, redirector), address and admin user."""

    role: str
    address: str
    user: str


@dataclass(frozen=True)
class SshSettings:
    config_file: Path | None = None
    multiplex: bool = True

    def argv(self, target: Target, command: Sequence[str] | None, *, interactive: bool = False) -> list[str]:
        """The ssh command line; `command` runs through the remote login shell, each word quoted."""
        options = ["ssh"]
        if self.config_file is not None:
            options += ["-F", str(self.config_file)]
        else:
            options += ["-o", "StrictHostKeyChecking=accept-new"]
        options += ["-o", f"ConnectTimeout={CONNECT_TIMEOUT_SECONDS}"]
        if not interactive:
            options += ["-o", "BatchMode=yes", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]
        if self.multiplex:
            control = control_dir()
            options += [
                "-o",
                "ControlMaster=auto",
                "-o",
                f"ControlPath={control}/%C",
                "-o",
                f"ControlPersist={CONTROL_PERSIST_SECONDS}",
            ]
        options.append(f"{target.user}@{target.address}")
        if command:
            options += ["--", shlex.join(command)]
        return options


def control_dir() -> Path:
    """Where the multiplexed connections' sockets live (0700: a socket is a logged-in session)."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or Path.home() / ".cache")
    path = base / "twinhost" / "ssh"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


Line = Callable[[str], None]


class Remote:
    """Runs commands on nodes over ssh. Tests replace it with a fake of the same shape."""

    def __init__(self, settings: SshSettings):
        self.settings = settings

    def run(
        self, target: Target, command: Sequence[str], *, timeout: float = 600, on_line: Line | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `command`; stdout and stderr together, each line handed to `on_line` as it comes.
        Exit 255 is ssh's own failure (unreachable, refused key)."""
        argv = self.settings.argv(target, command)
        with subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        ) as process:
            assert process.stdout is not None
            lines: list[str] = []
            try:
                for line in process.stdout:
                    lines.append(line)
                    if on_line is not None:
                        on_line(line.rstrip("\n"))
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                code = 124
                lines.append(f"timed out after {timeout:.0f} s\n")
        return subprocess.CompletedProcess(argv, code, "".join(lines), "")
