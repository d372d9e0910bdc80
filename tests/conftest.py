"""Shared test fixtures: where the repo and the shared data are, and a workspace holding the
spec examples exactly as published, next to the project's examples/ data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so `tests.fakes` imports however pytest was started
    sys.path.insert(0, str(REPO))

from tests.shared_data import spec_examples_workspace  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """The test session's compiled-contract cache is its own (subprocesses inherit it), so no
    test meets records of another session or of the user's own runs."""
    import os
    import tempfile

    if "TASKC_CONTRACT_CACHE" not in os.environ:
        os.environ["TASKC_CONTRACT_CACHE"] = tempfile.mkdtemp(prefix="taskc-test-contracts-")


@pytest.fixture
def examples_workspace(tmp_path: Path) -> Path:
    """tmp/specs/<the spec examples, unchanged> and tmp/examples -> the repo's examples/."""
    return spec_examples_workspace(tmp_path)


@pytest.fixture
def chdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from tmp_path (diagnostics show paths relative to the working directory)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def fake():
    """A running fake provider (tests/fakes/provider_server.py) over real HTTP on 127.0.0.1,
    stopped after the test."""
    from tests.fakes.provider_server import FakeProvider

    with FakeProvider() as server:
        yield server
