"""Shared fixtures of the nf unit tests."""

import pytest

from nf.schema import Schema


@pytest.fixture(scope="session")
def schema() -> Schema:
    """The loaded YANG schema (loading it once is enough)."""
    return Schema()
