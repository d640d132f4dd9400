"""infra/, twinhost_watcher/ and twinhost_lab/ type-check under mypy --strict (pyproject.toml), infra
against the provider SDKs: a wrong argument name or type fails here."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

from tests.conftest import REPO

PROVIDER_CALL = re.compile(r"\b(digitalocean|linode|aws|cloudflare|tls|random)\.[A-Za-z_.]+\(")


def test_infra_passes_mypy_against_the_provider_sdks():
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_strict_on_every_python_package_that_ships_or_runs():
    settings = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    assert settings.get("strict") is True
    assert set(settings["files"]) == {"infra", "twinhost_watcher", "twinhost_lab"}


def test_no_type_ignores_on_provider_calls():
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in (REPO / "infra").rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "type: ignore" in line and PROVIDER_CALL.search(line)
    ]
    assert offenders == []


def test_ruff_finds_nothing_to_lint():
    """pyproject.toml [tool.ruff.lint]; a noqa that no longer silences anything fails too (RUF100)."""
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_leaves_every_file_as_it_is():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, "run `make format`:\n" + result.stdout + result.stderr
