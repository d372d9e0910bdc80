"""What each page of the viewer shows, as plain JSON-ready dicts (the Starlette app only routes).

Every lookup goes through ids the viewer itself listed (group ids, run ids); an unknown id is a
`ViewError` with a 4xx status and a message for the page, never a path opened.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

from taskc.report.collect import Group, Run
from taskc.view import kinds
from taskc.view.columns import Columns, haystacks, read_records
from taskc.view.compare import FILTERS, Masks, Table, join, masks, select
from taskc.view.contracts import ContractFinder, Resolved, render_messages
from taskc.view.shapes import cell, preview, short
from taskc.view.store import RunStore, group_id as group_key

MAX_PAGE = 500
WARM_BYTES = 2 << 30  # samples.jsonl read ahead at start-up (about 4M samples)


class ViewError(Exception):
    """A request the viewer cannot answer: `status` (4xx) and a message for the page."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Viewer:
    """The viewer over one runs folder."""

    def __init__(self, root: Path, spec_search: Sequence[Path]):
        self.store = RunStore(root)
        self.finder = ContractFinder(spec_search)
        self._lock = threading.Lock()
        self._tables: OrderedDict[tuple, tuple[Table, Masks]] = OrderedDict()
        self._hay: dict[str, tuple[tuple[int, int], list[str]]] = {}
        self._kind_cache: dict[tuple, dict[str, Any]] = {}

    # --- lookups -----------------------------------------------------------------------------------
    def group(self, group_id: str | None) -> Group:
        """A group by id (rescanned when not in the last listing)."""
        listing = self.store.listing(rescan=False)
        if group_id not in listing.groups:
            listing = self.store.listing()
        if not group_id or group_id not in listing.groups:
            raise ViewError(404, f"no task group '{group_id}' in this runs folder")
        return listing.groups[group_id]

    def runs_of(self, group: Group, run_ids: Sequence[str]) -> list[tuple[str, Run]]:
        """The chosen runs of a group (default: the latest run of each model)."""
        members = {self._rid(r): r for r in group.runs + group.superseded}
        if not run_ids:
            return [(self._rid(r), r) for r in group.runs]
        out = []
        for rid in run_ids:
            run = members.get(rid)
            if run is None and rid not in self.store.listing(rescan=False).runs:
                raise ViewError(404, f"no run '{rid}' in this runs folder")
            if run is None:
                raise ViewError(400, f"run '{rid}' has a different contract than {group.label}: runs of different "
                                     "contracts are never compared")
            out.append((rid, run))
        if len(set(run_ids)) != len(run_ids):
            raise ViewError(400, "a run is chosen twice")
        return out

    def _rid(self, run: Run) -> str:
        rel = run.path.relative_to(self.store.root).as_posix()
        return rel if rel else "."

    def columns(self, rid: str) -> Columns:
        """A run's columns, or a 404 saying why they cannot be read."""
        try:
            return self.store.columns(rid)
        except (OSError, KeyError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ViewError(404, f"cannot read the samples of {rid}: {reason}") from None

    def resolved(self, group: Group) -> Resolved:
        """The test split behind a group (gold, databases), found beside its spec."""
        return self.finder.resolve(group.contract_id, self.body(group) or None)

    def body(self, group: Group) -> dict[str, Any]:
        """contract.json of the group (empty when no run has one)."""
        for run in group.runs + group.superseded:
            body = self.store.contract_body(run)
            if body:
                return body
        return {}

    def kind(self, group: Group) -> str:
        """The output kind of a group's contract ('unknown' without contract.json)."""
        return str((self.body(group).get("output") or {}).get("kind") or "unknown")

    def metric(self, group: Group, cols: Sequence[Columns]) -> str | None:
        """The metric rows are judged by: the contract's first, else the first the samples have."""
        if group.primary:
            return group.primary
        for c in cols:
            if c.scores:
                return next(iter(c.scores))
        return None

    # --- warm-up -----------------------------------------------------------------------------------
    def warm(self, budget_bytes: int = WARM_BYTES) -> threading.Thread:
        """Find the gold of every group and build the columns of the latest run of each model
        (newest groups first, up to `budget_bytes` of samples.jsonl), in a background thread."""
        def work() -> None:
            listing = self.store.listing(rescan=False)
            left = budget_bytes
            for group in sorted(listing.groups.values(), key=lambda g: g.started, reverse=True):
                chosen = []
                for run in group.runs:
                    try:
                        size = (run.path / "samples.jsonl").stat().st_size
                    except OSError:
                        continue
                    if size <= left:
                        left -= size
                        chosen.append(self._rid(run))
                self.store.prefetch(chosen)
                self.resolved(group)
                for rid in chosen:
                    try:
                        self.store.columns(rid)
                    except (OSError, KeyError):
                        pass

        thread = threading.Thread(target=work, name="taskc-view-warm", daemon=True)
        thread.start()
        return thread

    # --- pages -------------------------------------------------------------------------------------
    def index(self) -> dict[str, Any]:
        """Every group of runs with its figures (the index page)."""
        listing = self.store.listing()
        groups = []
        for gid, group in listing.groups.items():
            rows = []
            for run in group.runs + group.superseded:
                rid = self._rid(run)
                rows.append(self._run_row(rid, run, group, run in group.superseded, listing))
            groups.append({"id": gid, "task": group.task, "contract_id": group.contract_id, "kind": self.kind(group),
                           "primary": group.primary, "metrics": group.metrics, "runs": rows})
        return {"root": str(self.store.root), "groups": groups, "skipped": list(listing.skipped)}

    def _run_row(self, rid: str, run: Run, group: Group, superseded: bool, listing) -> dict[str, Any]:
        s = run.summary
        metrics = {}
        for name in group.metrics:
            mean, std = run.metric(name)
            metrics[name] = {"mean": mean, "std": std}
        return {"id": rid, "model": run.model, "run_id": run.run_id, "started": run.started, "n": s.get("n"),
                "metrics": metrics, "invalid_rate": s.get("invalid_rate"), "errors": s.get("errors"),
                "cost_per_million": run.cost_per_million, "cost_basis": run.cost_basis,
                "p50": run.latency("p50"), "p95": run.latency("p95"), "status": listing.status.get(rid),
                "notes": list(listing.notes.get(rid, ())), "superseded": superseded}

    def chart(self, group_id: str) -> str:
        """The accuracy-vs-cost chart of a group (SVG, drawn by `taskc report`'s chart code)."""
        from taskc.report.svg import PALETTE, accuracy_cost

        group = self.group(group_id)
        metric = group.primary or "metric"
        colors = {r.model: PALETTE[i % len(PALETTE)] for i, r in enumerate(group.runs)}
        points = [(r.model, r.cost_per_million, r.metric(metric)[0] if group.primary else None) for r in group.runs]
        return accuracy_cost(points, metric, f"{group.task}: {metric} against cost", True, colors)

    def _table(self, chosen: list[tuple[str, Run]], cols: list[Columns], metric: str | None) -> tuple[Table, Masks]:
        key = (metric,) + tuple((rid, c.size, c.mtime_ns, c.n) for (rid, _), c in zip(chosen, cols))
        with self._lock:
            hit = self._tables.get(key)
            if hit is not None:
                self._tables.move_to_end(key)
                return hit
        table = join(cols)
        found = (table, masks(table, cols, metric))
        with self._lock:
            self._tables[key] = found
            while len(self._tables) > 8:
                self._tables.popitem(last=False)
        return found

    def _haystack(self, rid: str, cols: Columns) -> list[str]:
        version = (cols.size, cols.mtime_ns)
        with self._lock:
            hit = self._hay.get(rid)
        if hit is not None and hit[0] == version:
            return hit[1]
        found = haystacks(self.store.samples_path(rid), cols)
        with self._lock:
            self._hay[rid] = (version, found)
        return found

    def compare(self, group_id: str, run_ids: Sequence[str], filters: Sequence[str], query: str,
                page: int, size: int) -> dict[str, Any]:
        """One page of the side-by-side table of the chosen runs."""
        group = self.group(group_id)
        chosen = self.runs_of(group, run_ids)
        unknown = [f for f in filters if f not in FILTERS]
        if unknown:
            raise ViewError(400, f"unknown filter '{unknown[0]}' (filters: {', '.join(FILTERS)})")
        if any(f in ("regressed", "fixed") for f in filters) and len(chosen) != 2:
            raise ViewError(400, "the regressed and fixed filters compare exactly two runs")
        size = max(1, min(int(size), MAX_PAGE))
        self.store.prefetch([rid for rid, _ in chosen])
        resolved = self.resolved(group)  # the gold, while worker processes read big samples files
        cols = [self.columns(rid) for rid, _ in chosen]
        metric = self.metric(group, cols)
        table, found = self._table(chosen, cols, metric)
        hays: dict[int, list[str]] = {}

        def hay(r: int, p: int) -> str | None:
            if r not in hays:
                hays[r] = self._haystack(chosen[r][0], cols[r])
            return hays[r][p] if p < len(hays[r]) else None

        rows = select(table, found, list(filters), query, hay, resolved.gold_text)
        pages = max(1, math.ceil(len(rows) / size))
        page = max(0, min(int(page), pages - 1))
        shown = rows[page * size:(page + 1) * size]
        per_run = []
        for (rid, _), c, pos in zip(chosen, cols, table.pos):
            positions = [int(pos[r]) for r in shown]
            present = [p for p in positions if p >= 0]
            records = dict(zip(present, read_records(self.store.samples_path(rid), c, present)))
            per_run.append([records.get(p) if p >= 0 else None for p in positions])
        out_rows = []
        for k, r in enumerate(shown.tolist()):
            index, repeat = int(table.index[r]), int(table.repeat[r])
            records = [per_run[j][k] for j in range(len(chosen))]
            first = next((rec for rec in records if rec), None)
            out_rows.append({
                "key": f"{index}.{repeat}", "index": index, "repeat": repeat,
                "input": preview(first.get("inputs")) if first else "",
                "gold": short(resolved.gold_text(index)),
                "cells": [cell(rec, metric, table.pos[j][r] >= 0) for j, rec in enumerate(records)],
            })
        return {
            "group": self._group_head(group, resolved), "metric": metric,
            "runs": [self._run_head(rid, run, c) for (rid, run), c in zip(chosen, cols)],
            "filters": list(filters), "query": query, "total": table.n, "matched": int(len(rows)),
            "counts": found.counts(), "page": page, "pages": pages, "size": size, "rows": out_rows,
        }

    def _group_head(self, group: Group, resolved: Resolved) -> dict[str, Any]:
        return {"id": group_key(group), "task": group.task, "contract_id": group.contract_id,
                "kind": self.kind(group), "gold_note": resolved.note, "gold": resolved.found}

    def _run_head(self, rid: str, run: Run, cols: Columns) -> dict[str, Any]:
        problems = list(cols.problems[:20])
        if len(cols.problems) > 20:
            problems.append(f"... and {len(cols.problems) - 20} more bad lines")
        if cols.unindexed:
            problems.append(f"{cols.unindexed} samples have no row index (an older taskc?): numbered by position")
        listing = self.store.listing(rescan=False)
        return {"id": rid, "model": run.model, "run_id": run.run_id, "n": cols.n, "problems": problems,
                "partial": cols.partial, "status": listing.status.get(rid), "notes": list(listing.notes.get(rid, ()))}

    def _row_records(self, group: Group, run_ids: Sequence[str], key: str):
        chosen = self.runs_of(group, run_ids)
        try:
            index, repeat = (int(x) for x in key.split("."))
        except ValueError:
            raise ViewError(400, f"a row is ROW.REPEAT (e.g. 12.0), not '{key}'") from None
        cols = [self.columns(rid) for rid, _ in chosen]
        metric = self.metric(group, cols)
        table, _ = self._table(chosen, cols, metric)
        row = table.find(index, repeat)
        if row is None:
            raise ViewError(404, f"row {key} is in none of the chosen runs")
        records = []
        for (rid, _), c, pos in zip(chosen, cols, table.pos):
            p = int(pos[row])
            records.append((read_records(self.store.samples_path(rid), c, [p])[0], int(c.line[p])) if p >= 0 else (None, None))
        return chosen, index, repeat, records, metric

    def sample(self, group_id: str, run_ids: Sequence[str], key: str) -> dict[str, Any]:
        """Everything about one row: inputs, gold, and each run's full sample."""
        group = self.group(group_id)
        chosen, index, repeat, records, metric = self._row_records(group, run_ids, key)
        resolved = self.resolved(group)
        first = next((rec for rec, _ in records if rec), None) or {}
        cells = []
        for (rid, run), (rec, line) in zip(chosen, records):
            entry = {"run": rid, "model": run.model, "present": rec is not None, "line": line}
            if rec is not None:
                for name in ("raw", "parsed", "valid", "invalid_reason", "error", "scores", "details", "latency_s",
                             "usage", "attempts", "cached", "judge_raw"):
                    if name in rec:
                        entry[name] = rec[name]
            cells.append(entry)
        return {"group": self._group_head(group, resolved), "metric": metric, "key": key, "index": index,
                "repeat": repeat, "inputs": first.get("inputs"), "gold": resolved.gold_text(index), "cells": cells}

    def messages(self, group_id: str, run_ids: Sequence[str], key: str) -> dict[str, Any]:
        """The rendered chat messages of one row (from contract.json and the sample's inputs)."""
        group = self.group(group_id)
        _, index, _, records, _ = self._row_records(group, run_ids, key)
        body = self.body(group)
        if not body:
            raise ViewError(404, "no contract.json in these runs: the messages cannot be rendered")
        inputs = next((rec.get("inputs") for rec, _ in records if rec and isinstance(rec.get("inputs"), dict)), None)
        if inputs is None:
            raise ViewError(404, "the samples do not hold their inputs (an older taskc?): the messages cannot be rendered")
        try:
            messages, note = render_messages(body, inputs, self.resolved(group))
        except Exception as exc:  # noqa: BLE001 - an old or odd contract.json is a note, not a crash
            raise ViewError(422, f"cannot render the messages from this contract.json ({type(exc).__name__}: {exc})") from None
        return {"messages": messages, "note": note}

    def sql(self, group_id: str, run_ids: Sequence[str], key: str) -> dict[str, Any]:
        """The gold query and each run's query, run read-only on the row's database."""
        group = self.group(group_id)
        if self.kind(group) != "sql":
            raise ViewError(400, "not a sql task")
        chosen, index, _, records, _ = self._row_records(group, run_ids, key)
        resolved = self.resolved(group)
        inputs = next((rec.get("inputs") for rec, _ in records if rec and isinstance(rec.get("inputs"), dict)), None)
        db = resolved.database(inputs, index)
        path = str(db.path) if db else None
        gold = resolved.gold_text(index)
        runs = []
        for (rid, run), (rec, _) in zip(chosen, records):
            sql = (rec.get("parsed") if isinstance(rec.get("parsed"), str) else rec.get("raw")) if rec else None
            runs.append({"run": rid, "model": run.model, **kinds.query_result(path, sql)})
        return {"database": db.key if db else None, "note": None if db else resolved.note,
                "gold": kinds.query_result(path, gold) if gold is not None else None, "runs": runs}

    def kind_view(self, group_id: str, run_ids: Sequence[str]) -> dict[str, Any]:
        """The per-kind view of each chosen run."""
        group = self.group(group_id)
        chosen = self.runs_of(group, run_ids)
        kind = self.kind(group)
        body = self.body(group)
        resolved = self.resolved(group)
        out = []
        for rid, run in chosen:
            cols = self.columns(rid)
            metric = self.metric(group, [cols])
            key = (rid, cols.size, cols.mtime_ns, kind)
            with self._lock:
                view = self._kind_cache.get(key)
            if view is None:
                view = self._kind(kind, body, rid, cols, metric, resolved)
                with self._lock:
                    for stale in [k for k in self._kind_cache if k[0] == rid]:
                        del self._kind_cache[stale]  # an older version of the same file
                    self._kind_cache[key] = view
            out.append({"run": rid, "model": run.model, "metric": metric, **view})
        return {"group": self._group_head(group, resolved), "kind": kind, "runs": out}

    def _kind(self, kind: str, body: dict, rid: str, cols: Columns, metric: str | None, resolved: Resolved) -> dict:
        output = body.get("output") or {}
        if kind == "label":
            return {"confusion": kinds.confusion(cols, output.get("labels") or [], resolved)}
        if kind == "text" or kind == "unknown":
            return {"histogram": kinds.histogram(cols, metric)}
        records = read_records(self.store.samples_path(rid), cols, range(cols.n))
        if kind == "tool_call":
            return {"tool_arguments": kinds.tool_arguments(records, output.get("tools") or [], metric, resolved)}
        if kind == "object":
            return {"object_fields": kinds.object_fields(records, metric, resolved)}
        if kind == "sql":
            return {"sql_reasons": kinds.sql_reasons(records, metric)}
        return {"histogram": kinds.histogram(cols, metric)}

