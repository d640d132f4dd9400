"""Fixtures for the bootstrap tests (the spec factory lives in bootstrap_specs.py)."""

from __future__ import annotations

import pytest

from tests.bootstrap.bootstrap_specs import Keys, make_keys


@pytest.fixture(scope="session")
def keys() -> Keys:
    """Fresh keys for this test session: no real private key is stored in the repository."""
    return make_keys()
