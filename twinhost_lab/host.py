"""Commands and background processes on the lab host. Processes are ended only by the PIDs
this lab recorded when it started them (never by name)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class LabError(RuntimeError):
    """A lab step failed; the message says which and what was seen."""


def run(
    command: Sequence[str],
    *,
    check: bool = True,
    timeout: float | None = 600,
    input: str | None = None,  # noqa: A002 - subprocess.run's own name
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        env={**os.environ, **env} if env else None,
    )
    if check and result.returncode != 0:
        raise LabError(
            f"{' '.join(command)} exited {result.returncode}: {(result.stderr or result.stdout).strip()[-2000:]}"
        )
    return result


def pip_errors(stderr: str) -> str:
    """pip's stderr without the warning this machine's pip config causes once per package
    (it names local mirrors that may be absent)."""
    return " ".join(line for line in stderr.splitlines() if not line.startswith("WARNING: Location"))


def start_background(
    command: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> int:
    """Start a process in its own session, output to `log`; returns its PID."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(command),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=cwd,
            env={**os.environ, **env} if env else None,
        )
    return process.pid


def start_service(
    command: Sequence[str],
    log: Path,
    *,
    ready: Callable[[], object],
    what: str,
    timeout: float = 20,
    env: Mapping[str, str] | None = None,
) -> int:
    """start_background, then wait until `ready()`; a service that does not come up is ended
    (so a failed start leaves nothing running) and its log's tail is in the error."""
    pid = start_background(command, log, env=env)
    try:
        wait_for(lambda: ready() or not alive(pid), timeout=timeout, what=what)
        if not alive(pid):
            raise LabError(f"{what} exited")
    except LabError as exc:
        stop(pid)
        raise LabError(f"{exc}: {log.read_text(errors='replace')[-800:].strip()}") from None
    return pid


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop(pid: int | None, *, grace: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """End a process this lab started: `sig`, then SIGKILL after `grace` seconds."""
    stop_all([pid], grace=grace, sig=sig)


def stop_all(pids: Sequence[int | None], *, grace: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """`stop` for several processes at once: all get `sig` together, so their grace runs in
    parallel (three containers shutting down take one grace period, not three)."""
    running = [pid for pid in pids if pid and alive(pid)]
    for pid in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    deadline = time.monotonic() + grace
    while running and time.monotonic() < deadline:
        for pid in running:
            _reap(pid)
        running = [pid for pid in running if alive(pid)]
        time.sleep(0.2)
    for pid in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        for pid in running:
            _reap(pid)
        running = [pid for pid in running if alive(pid)]
        if not running:
            return
        time.sleep(0.1)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_for(predicate: Callable[[], object], *, timeout: float, interval: float = 0.5, what: str) -> float:
    """Poll until `predicate()` is true; returns the seconds it took, or raises LabError."""
    started = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (systemd-nspawn, bridges, namespaces)")
