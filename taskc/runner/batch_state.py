"""What a run folder records about its provider batches (`batches.json`), written before polling.

One file per run folder, rewritten atomically (temporary file, fsync, rename) on every change,
so a kill at any moment leaves either the old or the new version. Each record is one batch:

    {"id": "batch_...", "state": "submitting|submitted|collected|failed|gone|abandoned",
     "backend": "openai", "model": "...", "base_url": "...", "api_key_env": "...", "mode": "...",
     "namespace": "<contract id>[:judge]", "key": "<sha256 of the custom ids>",
     "custom_ids": [...], "requests": N, "bytes": B, "submitted_at": "...", "status": "<provider's>",
     "updated_at": "...", "adopted_from": "<other run folder>"?}

`submitting` is written before the create call (its `id` is null): after a kill in that window
the next run asks the provider whether a batch with that key exists before creating another.
Only the run that owns a folder writes it; other runs read it (`sibling_records`) to adopt its
in-flight batches instead of submitting the same requests again.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

STATE_FILE = "batches.json"
FORMAT = 1
#: States whose batch may still hold answers for its requests.
LIVE = ("submitting", "submitted", "collected")


def now_iso() -> str:
    """The current UTC time, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of one `batches.json` (an empty list when it is missing or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    batches = data.get("batches") if isinstance(data, dict) else None
    return [b for b in batches if isinstance(b, dict)] if isinstance(batches, list) else []


class BatchState:
    """The batch records of one run folder (`folder` None: kept in memory only)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.path = folder / STATE_FILE if folder is not None else None
        self.records: list[dict[str, Any]] = read_records(self.path) if self.path is not None else []

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append a record and save; returns it (update it with `update`)."""
        record.setdefault("updated_at", now_iso())
        self.records.append(record)
        self.save()
        return record

    def update(self, record: dict[str, Any], **changes: Any) -> None:
        """Change fields of a record of this file and save."""
        record.update(changes, updated_at=now_iso())
        self.save()

    def save(self) -> None:
        """Write the file atomically (nothing to do for an in-memory state)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"format": FORMAT, "batches": self.records}, indent=1, ensure_ascii=False) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=".batches.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


def sibling_records(folder: Path | None) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(run folder, record) of every batch recorded by the other run folders next to `folder`
    (the same task's runs), oldest folder first."""
    if folder is None or not folder.parent.is_dir():
        return
    mine = folder.resolve()
    for path in sorted(folder.parent.glob(f"*/{STATE_FILE}")):
        if path.parent.resolve() == mine:
            continue
        for record in read_records(path):
            yield path.parent, record


def all_records(root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(run folder, record) of every batch recorded at or under `root` (a runs folder, a task
    folder or one run folder)."""
    paths = [root / STATE_FILE] if (root / STATE_FILE).is_file() else sorted(root.rglob(STATE_FILE))
    for path in paths:
        for record in read_records(path):
            yield path.parent, record
