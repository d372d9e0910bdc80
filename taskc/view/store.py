"""The run folders under one runs folder, found with `taskc.report.collect`, and their columns.

Only folders inside the runs folder are served: a run (or a file in it) whose real path, after
symlinks, lies outside is skipped with a note. Runs are looked up by id (their folder relative to
the runs folder), never by a path taken from a URL. Folders holding samples.jsonl without a usable
summary.json (a run still being written, or one from an older taskc) are shown too, their
figures computed from the samples so far.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taskc.errors import TaskcError
from taskc.report.collect import Group, Run, find_runs, group_runs
from taskc.view.columns import Columns, read_columns

_RUN_ID = re.compile(r"^(\d{8}-\d{6})-(.+?)(?:-[0-9a-f]{8})?$")
#: A samples file at least this big, met for the first time beside another such, is read in a
#: worker process: two 100k-sample runs take ~0.5 s of CPU each, one core apiece on two.
PARALLEL_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Listing:
    """One scan of the runs folder: runs by id, groups by id, and what was skipped."""

    runs: dict[str, Run]
    groups: dict[str, Group]
    status: dict[str, str]  # run id -> "complete" | "in progress" | "no summary"
    notes: dict[str, tuple[str, ...]]
    skipped: tuple[str, ...]


def group_id(group: Group) -> str:
    """A group's id in URLs: the short contract id and the task."""
    return f"{group.contract_id[:12]}.{group.task}"


def inside(root: Path, path: Path) -> bool:
    """Whether `path`, with every symlink followed, lies in `root` (already resolved)."""
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):
        return False


class RunStore:
    """The runs under `root`, rescanned on each `listing()`; columns cached per samples file."""

    def __init__(self, root: Path):
        root = Path(root)
        if not root.is_dir():
            raise TaskcError(f"no such runs folder: {root}")
        self.root = root.resolve()
        self._columns: dict[str, Columns] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._pending: dict[str, Future] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._listing: Listing | None = None

    # --- finding runs ----------------------------------------------------------------------------
    def listing(self, rescan: bool = True) -> Listing:
        """Every run under the root (rescanned unless `rescan` is False and a scan exists)."""
        if self._listing is not None and not rescan:
            return self._listing
        skipped: list[str] = []
        runs: dict[str, Run] = {}
        status: dict[str, str] = {}
        notes: dict[str, tuple[str, ...]] = {}
        try:
            found = find_runs([self.root])
        except TaskcError:
            found = []
        reshaped: dict[str, list[str]] = {}
        for run in found:
            run_id = self._run_id(run.path, skipped)
            if run_id is None:
                continue
            if not inside(self.root, run.path / "summary.json"):
                skipped.append(f"{run_id}: summary.json points outside the runs folder; skipped")
                continue
            summary, reshaped[run_id] = _reshape(run.summary)
            runs[run_id] = Run(run.path, summary)
            status[run_id] = "complete"
        for samples in sorted(self.root.rglob("samples.jsonl")):
            folder = samples.parent
            rel = folder.relative_to(self.root)
            if any(part.startswith(".") for part in rel.parts) or rel.as_posix() in runs:
                continue
            run_id = self._run_id(folder, skipped)
            if run_id is None or run_id in runs:
                continue
            summary = _read_json(folder / "summary.json") if inside(self.root, folder / "summary.json") else None
            has_summary = isinstance(summary, dict)
            status[run_id] = "no summary" if has_summary else "in progress"
            summary, reshaped[run_id] = _reshape(self._partial_summary(run_id, folder, summary if has_summary else {}))
            runs[run_id] = Run(folder, summary)
        for run_id, run in runs.items():
            notes[run_id] = tuple(self._notes(run_id, run, status[run_id]) + reshaped.get(run_id, []))
        groups = {group_id(g): g for g in group_runs(runs.values())}
        self._listing = Listing(runs, groups, status, notes, tuple(skipped))
        return self._listing

    def _run_id(self, folder: Path, skipped: list[str]) -> str | None:
        try:
            rel = folder.relative_to(self.root)
        except ValueError:
            rel = None
        if rel is None or not inside(self.root, folder):
            skipped.append(f"{folder.name}: the folder lies outside the runs folder (a symlink?); skipped")
            return None
        return rel.as_posix() if rel.parts else "."

    def _partial_summary(self, run_id: str, folder: Path, summary: dict[str, Any]) -> dict[str, Any]:
        """A summary for a run without a usable summary.json: what it has, plus figures from its samples."""
        contract = _read_json(folder / "contract.json") if inside(self.root, folder / "contract.json") else None
        contract = contract if isinstance(contract, dict) else {}
        match = _RUN_ID.match(folder.name)
        out = dict(summary)
        out.setdefault("task", contract.get("name") or folder.parent.name)
        out.setdefault("contract_id", contract.get("contract_id") or "unknown")
        out.setdefault("run_id", folder.name)
        out.setdefault("model_name", match.group(2) if match else folder.name)
        if match and "started" not in out:
            d, t = match.group(1).split("-")
            out["started"] = f"{d[:4]}-{d[4:6]}-{d[6:]}T{t[:2]}:{t[2:4]}:{t[4:]}+00:00"
        try:
            cols = self.columns(run_id, folder)
        except OSError:
            cols = None
        if cols is not None:
            names = [m.get("name") for m in contract.get("metrics", []) if isinstance(m, dict)] or list(cols.scores)
            metrics = {}
            for name in names:
                values = cols.score(name)
                values = values[~np.isnan(values)]
                metrics[name] = {"mean": float(values.mean()) if len(values) else None, "std": None}
            out.setdefault("metrics", metrics)
            out.setdefault("n", cols.n)
            out.setdefault("invalid", int(cols.invalid.sum()))
            out.setdefault("invalid_rate", float(cols.invalid.mean()) if cols.n else 0.0)
            out.setdefault("errors", int(cols.error.sum()))
            lat = cols.latency_ms[~np.isnan(cols.latency_ms)]
            if len(lat):
                out.setdefault("latency_ms", {"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95))})
        out.setdefault("metrics", {})
        return out

    def _notes(self, run_id: str, run: Run, status: str) -> list[str]:
        out = []
        if status == "in progress":
            out.append("no summary.json yet: the run is still being written (or was stopped); figures from the samples so far")
        elif status == "no summary":
            out.append("summary.json has no metrics (an older taskc?); figures from the samples")
        missing = [k for k in ("contract_id", "model_name", "started", "latency_ms", "cost", "invalid_rate") if k not in run.summary]
        if status == "complete" and missing:
            out.append("summary.json lacks " + ", ".join(missing) + " (an older taskc?)")
        if not (run.path / "contract.json").is_file():
            out.append("no contract.json in this run folder (an older taskc?)")
        elif not inside(self.root, run.path / "contract.json"):
            out.append("contract.json points outside the runs folder; ignored")
        if not (run.path / "samples.jsonl").is_file():
            out.append("no samples.jsonl: nothing to compare")
        elif not inside(self.root, run.path / "samples.jsonl"):
            out.append("samples.jsonl points outside the runs folder; it is not read")
        return out

    # --- reading ---------------------------------------------------------------------------------
    def samples_path(self, run_id: str, folder: Path | None = None) -> Path:
        """samples.jsonl of a run, if it lies in the runs folder; raises OSError otherwise."""
        folder = folder if folder is not None else self.listing(rescan=False).runs[run_id].path
        path = folder / "samples.jsonl"
        if not inside(self.root, path):
            raise OSError(f"{run_id}/samples.jsonl points outside the runs folder")
        return path

    def columns(self, run_id: str, folder: Path | None = None) -> Columns:
        """The run's columns, refreshed when samples.jsonl changed; raises OSError when unreadable."""
        with self._lock:
            lock = self._locks.setdefault(run_id, threading.Lock())
            pending = self._pending.pop(run_id, None)
        with lock:
            path = self.samples_path(run_id, folder)
            previous = self._columns.get(run_id)
            if pending is not None:
                try:
                    previous = pending.result()
                except Exception:  # noqa: BLE001 - a worker that failed or died: read here instead
                    pass
            found = read_columns(path, previous)  # the worker's read, brought up to date if the file grew
            self._columns[run_id] = found
            return found

    def prefetch(self, run_ids: list[str]) -> None:
        """Start reading, in worker processes, the big samples files of `run_ids` not read yet,
        when there are two or more of them and cores to spare; `columns()` then collects them."""
        if (os.cpu_count() or 1) < 2:
            return
        todo: list[tuple[str, Path]] = []
        with self._lock:
            for run_id in dict.fromkeys(run_ids):
                if run_id in self._columns or run_id in self._pending:
                    continue
                try:
                    path = self.samples_path(run_id)
                    if path.stat().st_size >= PARALLEL_BYTES:
                        todo.append((run_id, path))
                except (OSError, KeyError):
                    continue
            if len(todo) < 2:
                return
            if self._pool is None:
                # spawn, not fork: the server's threads are running
                self._pool = ProcessPoolExecutor(max_workers=min(len(todo), os.cpu_count() or 2, 4),
                                                 mp_context=multiprocessing.get_context("spawn"))
            try:
                for run_id, path in todo:
                    self._pending[run_id] = self._pool.submit(read_columns, path)
            except Exception:  # noqa: BLE001 - a broken pool (a worker was killed): read here from now on
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def close(self) -> None:
        """Stop the worker processes (reads in progress are dropped)."""
        with self._lock:
            pool, self._pool = self._pool, None
            self._pending.clear()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def contract_body(self, run: Run) -> dict[str, Any] | None:
        """The run's contract.json (None when absent, unreadable or outside the runs folder)."""
        path = run.path / "contract.json"
        if not inside(self.root, path):
            return None
        found = run.contract
        return found if isinstance(found, dict) else None


def _reshape(summary: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """summary.json in the shape `taskc report` reads (metrics as {mean, std}; latency_ms, cost and
    tokens as objects), and a note per field that had another shape (an older taskc)."""
    out = dict(summary)
    notes = []
    metrics = out.get("metrics")
    if not isinstance(metrics, dict):
        out["metrics"], metrics = {}, {}
        notes.append("summary.json: metrics is not an object; ignored")
    fixed = {}
    for name, value in metrics.items():
        if isinstance(value, dict):
            fixed[name] = value
        else:
            number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
            fixed[name] = {"mean": number, "std": None}
            notes.append(f"summary.json: metric {name} is a bare value (an older taskc?)")
    out["metrics"] = fixed
    for key in ("latency_ms", "cost", "tokens"):
        if key in out and not isinstance(out[key], dict):
            out[key] = {}
            notes.append(f"summary.json: {key} is not an object; ignored")
    return out, notes


def _read_json(path: Path) -> Any:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
