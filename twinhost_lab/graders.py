"""Outside graders that need a Python environment of their own.

sslyze pins `cryptography` below the version the project uses, so it cannot live in the
project's venv. Its venv is built from `requirements-graders.lock` once and cached under the
lab's cache directory, keyed by the lock file's hash (a changed pin builds a fresh one).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

from twinhost_lab.host import LabError, pip_errors, run
from twinhost_lab.layout import Layout

LOCK_NAME = "requirements-graders.lock"


def graders_python(layout: Layout, project_dir: Path) -> Path:
    """The interpreter of the cached graders venv, building it if missing or stale."""
    lock = project_dir / LOCK_NAME
    if not lock.is_file():
        raise LabError(f"{lock} is missing")
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
    venv = layout.cache_dir / f"graders-{digest}"
    python = venv / "bin" / "python"
    if (venv / ".complete").exists():
        return python
    for stale in layout.cache_dir.glob("graders-*"):  # this one half-built, or older pins
        shutil.rmtree(stale, ignore_errors=True)
    layout.cache_dir.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "venv", str(venv)])
    result = run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(lock)],
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        raise LabError(
            f"could not build the graders venv from {LOCK_NAME}: {pip_errors(result.stderr)[-600:]}"
        )
    (venv / ".complete").touch()
    return python
