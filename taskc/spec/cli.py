"""The terminal side of `taskc new`: a commented starter spec that validates."""

from __future__ import annotations

from pathlib import Path


def new_command(name: str, kind: str, out: Path | None, force: bool) -> int:
    """Write specs/NAME.yaml (or `out`) and its tiny data file; print what was written."""
    from taskc.spec.scaffold import write_scaffold

    for path in write_scaffold(name, kind, out or Path("specs") / f"{name}.yaml", force=force):
        print(f"wrote {path}")
    return 0
