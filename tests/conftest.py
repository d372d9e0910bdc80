"""Shared test fixtures: where the repo and the shared data are, and a workspace holding the
spec examples exactly as published, next to the project's examples/ data."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so `tests.fakes` imports however pytest was started
    sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("TASKC_SHARED", REPO.parent / "shared"))
SPEC_EXAMPLES = SHARED / "spec-examples"


@pytest.fixture
def examples_workspace(tmp_path: Path) -> Path:
    """tmp/specs/<the spec examples, unchanged> and tmp/examples -> the repo's examples/."""
    if not SPEC_EXAMPLES.is_dir():
        pytest.skip(f"spec examples not found at {SPEC_EXAMPLES} (set TASKC_SHARED)")
    specs = tmp_path / "specs"
    specs.mkdir()
    for item in SPEC_EXAMPLES.iterdir():
        shutil.copyfile(item, specs / item.name)
    (tmp_path / "examples").symlink_to(REPO / "examples")
    return tmp_path


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
