"""An on-disk result cache that survives SIGKILL mid-run.

SQLite in WAL mode with `synchronous=NORMAL`. Results are buffered and committed together at
most `flush_interval_s` (50 ms) after the first of them arrived (the runner arms a timer for
that; `put` also commits once the interval has passed or 256 are waiting), or at once when the
runner says so (`flush`: answers from a paid endpoint, or answers arriving slowly; see
`taskc.runner.engine.COMMIT_EACH_BELOW_PER_S`), so a killed process loses at most the last 50 ms
of answers and never the file; those are simply asked again. A commit costs about 0.2 ms on
this disk, which one per result would pay 3,000 times a second at full speed. Keys are sha256 digests of
(namespace = contract id, backend name, model, canonical payload JSON, repeat index): the payload
is what `backend.render` returns, which holds no credentials (they travel in HTTP headers), so
neither keys nor values ever contain a secret. Only successful results are stored; errors are
retried on the next run.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Iterable, Sequence

from taskc.common.encoding import canonical_json, sha256_hex
from taskc.runner.types import Result, Usage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID
"""
_CHUNK = 500


def cache_key(namespace: str, backend: str, model: str, payload: Any, repeat: int) -> str:
    """The sha256 hex key of one request's result."""
    return sha256_hex(canonical_json([namespace, backend, model, payload, repeat]))


def request_keys(namespace: str, backend: Any, requests: Sequence[Any], payloads: Sequence[Any]) -> list[str]:
    """The cache key of each request (its rendered payload beside it), named by the backend's
    `cache_identity`: the keys `run_requests` and `run_batch` both look answers up by."""
    identity = backend.cache_identity
    return [cache_key(namespace, backend.name, identity, p, r.repeat) for p, r in zip(payloads, requests)]


_STORED = tuple(f.name for f in fields(Result) if f.name not in ("index", "repeat", "cached"))


def encode_result(result: Result) -> str:
    """A result as stored: the fields that describe the output, not its row, repeat or `cached`."""
    data = {name: getattr(result, name) for name in _STORED}
    data["usage"] = dict(vars(result.usage))
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def decode_result(text: str, index: int, repeat: int) -> Result:
    """Inverse of `encode_result`, placed at `index`/`repeat` and marked cached."""
    data = json.loads(text)
    usage = Usage(**data.pop("usage", {}))
    return Result(index=index, repeat=repeat, usage=usage, cached=True, **data)


class ResultCache:
    """A key -> Result store in one SQLite file; safe to open from several processes."""

    def __init__(self, path: str | Path, flush_interval_s: float = 0.05, max_pending: int = 256) -> None:
        self.path = Path(path)
        self.flush_interval_s = flush_interval_s
        self.max_pending = max_pending
        self._pending: list[tuple[str, str]] = []
        self._first_pending = 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def __repr__(self) -> str:
        return f"ResultCache({str(self.path)!r})"

    @property
    def pending(self) -> int:
        """How many stored results are not committed yet."""
        return len(self._pending)

    def get(self, key: str, index: int = 0, repeat: int = 0) -> Result | None:
        """The cached result for `key` (placed at index/repeat), or None."""
        value = self.get_many([key]).get(key)
        return None if value is None else decode_result(value, index, repeat)

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """The stored values (encoded results) of those keys present, in bulk; decode with
        `decode_result`."""
        self.flush()
        wanted = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        with self._lock:
            for i in range(0, len(wanted), _CHUNK):
                chunk = wanted[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, value in self._db.execute(f"SELECT key, value FROM results WHERE key IN ({marks})", chunk):
                    found[key] = value
        return found

    def put(self, key: str, result: Result) -> None:
        """Store a successful result (results with an error are skipped); commits when the
        oldest uncommitted result is `flush_interval_s` old or `max_pending` are waiting."""
        if result.error is not None or result.raw is None:
            return
        value = encode_result(result)
        now = time.monotonic()
        with self._lock:
            if not self._pending:
                self._first_pending = now
            self._pending.append((key, value))
            due = len(self._pending) >= self.max_pending or now - self._first_pending >= self.flush_interval_s
        if due:
            self.flush()

    def flush(self) -> None:
        """Commit every buffered result in one transaction."""
        with self._lock:
            if not self._pending:
                return
            rows, self._pending = self._pending, []
            # IMMEDIATE takes the write lock up front, so a second process writing the same file
            # waits in SQLite's busy handler (timeout=30 s) instead of failing on a lock upgrade
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO results (key, value) VALUES (?, ?)", rows)
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        self.flush()
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        """Commit what is buffered and close the database."""
        self.flush()
        with self._lock:
            self._db.close()

    def __enter__(self) -> "ResultCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
