"""Publishing a folder built in a temporary place, atomically and safely against a racing process."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def publish_dir(tmp: Path, target: Path, is_current: Callable[[], bool]) -> Path:
    """Move the finished folder `tmp` to `target`. If another process already published a current
    one, keep theirs; a stale `target` is moved aside first, then removed."""
    if is_current():
        return target
    if target.exists():
        stale = Path(tempfile.mkdtemp(prefix=f".{target.name}.stale.", dir=target.parent))
        os.rename(target, stale / "old")
        shutil.rmtree(stale, ignore_errors=True)
    try:
        os.rename(tmp, target)
    except OSError:
        if not is_current():
            raise
    return target
