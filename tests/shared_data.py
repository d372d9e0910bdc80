"""Where the tests find the shared folder (`$TASKC_SHARED`, default `<repo>/../shared`) and the
spec-example workspace built from it: one place for every conftest and test module."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TASKC_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"
SPEC_EXAMPLES = SHARED / "spec-examples"


def need(path: Path) -> Path:
    """`path`, or skip the test when the shared data is missing."""
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (set TASKC_SHARED)")
    return path


def spec_examples_workspace(root: Path) -> Path:
    """`root`/specs/<the spec examples, unchanged> and `root`/examples, the repo's examples/
    (skips the test when the spec examples are missing)."""
    need(SPEC_EXAMPLES)
    (root / "specs").mkdir(parents=True)
    for item in SPEC_EXAMPLES.iterdir():
        shutil.copyfile(item, root / "specs" / item.name)
    # a copy (hard links where the file system allows), not a symlink: a spec's files must lie
    # inside its project root with symlinks followed, and the root here is `root`
    shutil.copytree(REPO / "examples", root / "examples", copy_function=_link_or_copy)
    return root


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
