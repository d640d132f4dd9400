"""Shared test helpers. Tests are named after the rule they enforce."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def run_twinhost(*args: str) -> subprocess.CompletedProcess[str]:
    """`twinhost ARGS` in a fresh interpreter (exit code, stdout and stderr as a user sees them)."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from infra.cli import main; sys.exit(main())", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def stack_file_values(name: str) -> dict[str, Any]:
    """The `twinhost:` keys of a shipped stack file, namespace stripped, as plain YAML values."""
    config = yaml.safe_load((REPO / f"Pulumi.{name}.yaml").read_text())["config"]
    return {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("twinhost:")}


@pytest.fixture
def site_values() -> dict[str, Any]:
    return copy.deepcopy(stack_file_values("harbourlaw"))


@pytest.fixture
def platform_values() -> dict[str, Any]:
    return copy.deepcopy(stack_file_values("prod"))


def write_stack(
    directory: Path, name: str, values: dict[str, Any], extra: dict[str, Any] | None = None
) -> Path:
    """A stack file in a scratch project (with the repo's Pulumi.yaml and platform stack)."""
    (directory / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    if not (directory / "Pulumi.prod.yaml").exists() and name != "prod":
        (directory / "Pulumi.prod.yaml").write_text((REPO / "Pulumi.prod.yaml").read_text())
    # The platform watches the sites it lists (twinhost:sites), so their stack files come along.
    for site in stack_file_values("prod").get("sites", []):
        target = directory / f"Pulumi.{site}.yaml"
        if site != name and not target.exists():
            target.write_text((REPO / f"Pulumi.{site}.yaml").read_text())
    config = {f"twinhost:{k}": v for k, v in values.items()}
    config.update(extra or {})
    path = directory / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return path
