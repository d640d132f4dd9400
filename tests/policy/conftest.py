"""Policy pack tests: the pack's rules run on the program's own resources, planned under mocks."""

from __future__ import annotations

import pytest

from tests.policy.policy_harness import Plans


@pytest.fixture(scope="session")
def plans(tmp_path_factory: pytest.TempPathFactory) -> Plans:
    """Plans of the shipped stack files and of variants, each made once per session on demand."""
    return Plans(tmp_path_factory.mktemp("policy-stacks"))
