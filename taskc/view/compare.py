"""Runs side by side: one row per (test row, repeat), the runs' samples joined on it, filters
computed over the columns, pages read from the files.

A sample is *wrong* when its first metric is below 1 (or it has no score and failed or broke the
contract), *right* when that metric is 1. Filters combine (all must hold): only wrong (any run
wrong), only invalid, only errors, disagree (two runs' outputs differ: parsed values compared as
canonical JSON, an invalid output by its raw text), regressed / fixed (two runs: right in the
first and wrong in the second, or the reverse), and a text search (case-insensitive) over the
input values, the raw outputs and the gold answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from taskc.view.columns import Columns

FILTERS = ("wrong", "invalid", "errors", "disagree", "regressed", "fixed")
REPEAT_BITS = 20


@dataclass(frozen=True)
class Table:
    """Rows (sorted by test row, then repeat) and, per run, the position of its sample (-1: none)."""

    index: np.ndarray
    repeat: np.ndarray
    pos: tuple[np.ndarray, ...]

    @property
    def n(self) -> int:
        """Number of rows."""
        return len(self.index)

    def find(self, index: int, repeat: int) -> int | None:
        """The row of (index, repeat), or None."""
        key = (index << REPEAT_BITS) | repeat
        keys = (self.index << REPEAT_BITS) | self.repeat
        at = int(np.searchsorted(keys, key))
        return at if at < self.n and keys[at] == key else None


def _keys(cols: Columns) -> np.ndarray:
    return (np.maximum(cols.index, 0) << REPEAT_BITS) | np.clip(cols.repeat, 0, (1 << REPEAT_BITS) - 1)


def join(columns: Sequence[Columns]) -> Table:
    """Join runs on (row, repeat); where a run has the same row twice, its last line counts."""
    keys = [_keys(c) for c in columns]
    union = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
    pos = []
    for k in keys:
        if len(k) == 0:
            pos.append(np.full(len(union), -1, np.int64))
            continue
        order = np.argsort(k, kind="stable")
        ordered = k[order]
        at = np.maximum(np.searchsorted(ordered, union, side="right") - 1, 0)
        pos.append(np.where(ordered[at] == union, order[at], -1).astype(np.int64))
    return Table(union >> REPEAT_BITS, union & ((1 << REPEAT_BITS) - 1), tuple(pos))


def _take(column: np.ndarray, pos: np.ndarray, fill) -> np.ndarray:
    if len(column) == 0:
        return np.full(len(pos), fill)
    return np.where(pos >= 0, column[np.maximum(pos, 0)], fill)


@dataclass(frozen=True)
class Masks:
    """Per-row masks of every filter (before text search)."""

    masks: dict[str, np.ndarray]

    def counts(self) -> dict[str, int]:
        """How many rows each filter keeps on its own."""
        return {k: int(v.sum()) for k, v in self.masks.items()}


def masks(table: Table, columns: Sequence[Columns], metric: str | None) -> Masks:
    """The filter masks of a joined table (metric: the first metric of the contract)."""
    n = table.n
    wrong_any = np.zeros(n, bool)
    invalid_any = np.zeros(n, bool)
    error_any = np.zeros(n, bool)
    right, wrong, keys, present = [], [], [], []
    for cols, pos in zip(columns, table.pos):
        here = pos >= 0
        score = _take(cols.score(metric), pos, np.nan).astype(np.float64)
        err = _take(cols.error, pos, False).astype(bool)
        inv = _take(cols.invalid, pos, False).astype(bool)
        is_wrong = here & ((score < 1.0) | (np.isnan(score) & (err | inv)))
        right.append(here & (score >= 1.0))
        wrong.append(is_wrong)
        keys.append(_take(cols.out_key, pos, 0))
        present.append(here)
        wrong_any |= is_wrong
        invalid_any |= here & inv
        error_any |= here & err
    disagree = np.zeros(n, bool)
    for i in range(len(columns)):
        for j in range(i + 1, len(columns)):
            disagree |= present[i] & present[j] & (keys[i] != keys[j])
    out = {"wrong": wrong_any, "invalid": invalid_any, "errors": error_any, "disagree": disagree}
    if len(columns) == 2:
        out["regressed"] = right[0] & wrong[1]
        out["fixed"] = wrong[0] & right[1]
    return Masks(out)


def select(table: Table, found: Masks, filters: Sequence[str], query: str,
           hay: Callable[[int, int], str | None], gold_text: Callable[[int], str | None]) -> np.ndarray:
    """Rows that pass every filter and contain `query` (`hay(run, position)`: a sample's
    search text; `gold_text(index)`: the gold answer or None)."""
    keep = np.ones(table.n, bool)
    for name in filters:
        if name not in found.masks:
            raise ValueError(f"filter '{name}' needs {'exactly two runs' if name in ('regressed', 'fixed') else 'a known name'}"
                             f" (filters: {', '.join(FILTERS)})")
        keep &= found.masks[name]
    rows = np.flatnonzero(keep)
    q = query.strip().lower()
    if not q:
        return rows
    out = []
    for row in rows.tolist():
        hit = False
        for r, pos in enumerate(table.pos):
            p = int(pos[row])
            if p >= 0:
                text = hay(r, p)
                if text is not None and q in text:
                    hit = True
                    break
        if not hit:
            gold = gold_text(int(table.index[row]))
            hit = gold is not None and q in gold.lower()
        if hit:
            out.append(row)
    return np.asarray(out, dtype=np.int64)
