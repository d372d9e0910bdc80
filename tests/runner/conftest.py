"""Fixtures for the runner tests: the fake provider over real HTTP on 127.0.0.1."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # so `tests.fakes` imports however pytest was started
    sys.path.insert(0, str(ROOT))

from tests.fakes.provider_server import FakeProvider  # noqa: E402


@pytest.fixture
def fake():
    """A running fake provider, stopped after the test."""
    with FakeProvider() as server:
        yield server
