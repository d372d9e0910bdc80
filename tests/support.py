"""Helpers the tests share: the `taskc` command as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def taskc(*args: str, cwd: Path, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    """Run `python -m taskc.cli ARGS` in `cwd` (text output captured; `env` added to ours)."""
    return subprocess.run([sys.executable, "-m", "taskc.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, **kw)
