"""Policy pack tests: the pack's rules run on the program's own resources, planned under mocks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
if str(POLICY_DIR) not in sys.path:
    sys.path.insert(0, str(POLICY_DIR))

from policy_harness import Plans  # noqa: E402


@pytest.fixture(scope="session")
def plans(tmp_path_factory: pytest.TempPathFactory) -> Plans:
    """Plans of the shipped stack files and of variants, each made once per session on demand."""
    return Plans(tmp_path_factory.mktemp("policy-stacks"))
