"""Per-kind views of one run: a confusion matrix for labels, per-argument errors for tool calls,
per-field accuracy for objects, failure reasons and query results for sql, a score histogram
for text. Each takes the run's columns (and records, read by the caller) and the resolved
test split (for gold); where gold is missing it falls back on what the samples' score details hold.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np

from taskc.metrics.sql_exec import Sandbox, clean_sql, run_query
from taskc.metrics.tool_call import drop_defaults, tool_defaults
from taskc.metrics.values import struct_eq
from taskc.view.columns import Columns
from taskc.view.contracts import Resolved

INVALID, ERROR, OTHER = "(invalid)", "(error)", "(other)"
MAX_ROWS_SHOWN = 20


def confusion(cols: Columns, labels: Sequence[str], resolved: Resolved) -> dict[str, Any]:
    """Gold label x predicted label counts (predicted: the parsed label, or invalid / error)."""
    if not resolved.found:
        return {"note": resolved.note}
    known = set(labels)
    counts: Counter = Counter()
    no_gold = 0
    for p in range(cols.n):
        gold = resolved.gold_value(int(cols.index[p]))
        if gold is None:
            no_gold += 1
            continue
        if cols.error[p]:
            pred = ERROR
        elif cols.invalid[p]:
            pred = INVALID
        else:
            text = cols.output_text(p)
            pred = text if text in known else OTHER
        counts[(gold, pred)] += 1
    rows = [g for g in labels if any(counts[(g, p)] for p in list(labels) + [INVALID, ERROR, OTHER])]
    columns = [p for p in list(labels) + [INVALID, ERROR, OTHER] if any(counts[(g, p)] for g in rows)]
    matrix = [[counts[(g, p)] for p in columns] for g in rows]
    recall = [(m[columns.index(g)] / sum(m) if g in columns and sum(m) else 0.0) for g, m in zip(rows, matrix)]
    return {"rows": rows, "columns": columns, "matrix": matrix, "recall": recall, "no_gold": no_gold, "note": None}


def _call(value: Any) -> dict | None:
    if isinstance(value, dict) and isinstance(value.get("name"), str) and isinstance(value.get("parameters"), dict):
        return value
    return None


def tool_arguments(records: Iterable[dict | None], tools: Sequence[dict], metric: str | None,
                   resolved: Resolved) -> dict[str, Any]:
    """Per (tool, argument): how often gold had it, and how often it was missing, wrong or extra;
    plus wrong-function and no-call counts. Without gold: the metric's own first difference."""
    defaults = tool_defaults(tools)
    stats: dict[tuple[str, str], Counter] = {}
    totals: Counter = Counter()
    from_details = not resolved.found
    for record in records:
        if record is None:
            continue
        totals["samples"] += 1
        if from_details:
            _from_details(record, metric, stats, totals)
            continue
        gold = _call(resolved.gold_value(record.get("index", -1)))
        if gold is None:
            totals["no gold"] += 1
            continue
        pred = _call(record.get("parsed")) if record.get("valid", record.get("parsed") is not None) else None
        if pred is None:
            totals["no call (invalid or error)"] += 1
            continue
        if pred["name"] != gold["name"]:
            totals["wrong function"] += 1
            continue
        d = defaults.get(gold["name"], {})
        g, p = drop_defaults(gold["parameters"], d), drop_defaults(pred["parameters"], d)
        for arg in dict.fromkeys(list(g) + list(p)):
            c = stats.setdefault((gold["name"], arg), Counter())
            if arg in g:
                c["expected"] += 1
                if arg not in p:
                    c["missing"] += 1
                elif not struct_eq(p[arg], g[arg]):
                    c["wrong"] += 1
            else:
                c["extra"] += 1
    rows = [{"tool": t, "argument": a, "expected": c["expected"], "missing": c["missing"], "wrong": c["wrong"],
             "extra": c["extra"]} for (t, a), c in sorted(stats.items())]
    note = ("gold not available: counts from the metric's details (only the first difference of each call)"
            if from_details else None)
    return {"arguments": rows, "totals": dict(totals), "note": note}


def _from_details(record: dict, metric: str | None, stats: dict, totals: Counter) -> None:
    detail = ((record.get("details") or {}).get(metric) or {}) if metric else {}
    reason = detail.get("reason")
    parsed = record.get("parsed")
    tool = str(detail.get("expected") or (parsed.get("name") if isinstance(parsed, dict) else None) or "?")
    if reason == "wrong function":
        totals["wrong function"] += 1
    elif reason in ("different parameter names", "different parameter values"):
        for key, what in (("missing", "missing"), ("extra", "extra"), ("different", "wrong")):
            for arg in detail.get(key) or ():
                stats.setdefault((tool, str(arg)), Counter())[what] += 1
    elif reason:
        totals[str(reason)] += 1


def object_fields(records: Iterable[dict | None], metric: str | None, resolved: Resolved) -> dict[str, Any]:
    """Per top-level field: the share of samples where it was right (the metric's `fields` detail,
    or a comparison with gold when the details have none)."""
    right: Counter = Counter()
    seen: Counter = Counter()
    source = "details"
    for record in records:
        if record is None:
            continue
        fields = ((record.get("details") or {}).get(metric) or {}).get("fields") if metric else None
        if not isinstance(fields, dict):
            gold = resolved.gold_value(record.get("index", -1))
            if not isinstance(gold, dict):
                continue
            source = "gold"
            parsed = record.get("parsed") if isinstance(record.get("parsed"), dict) else {}
            fields = {k: struct_eq(parsed.get(k), v) for k, v in gold.items()}
        for name, ok in fields.items():
            seen[name] += 1
            right[name] += 1 if ok else 0
    rows = [{"field": k, "n": seen[k], "accuracy": right[k] / seen[k]} for k in seen]
    rows.sort(key=lambda r: (r["accuracy"], r["field"]))
    note = "no per-field details and no gold: nothing to show" if not rows else (
        "computed against gold (the samples have no per-field details)" if source == "gold" else None)
    return {"fields": rows, "note": note}


def sql_reasons(records: Iterable[dict | None], metric: str | None) -> dict[str, Any]:
    """Why queries scored 0: the metric's reasons, most frequent first."""
    reasons: Counter = Counter()
    n = 0
    for record in records:
        if record is None:
            continue
        n += 1
        if record.get("error"):
            reasons["request failed"] += 1
            continue
        detail = ((record.get("details") or {}).get(metric) or {}) if metric else {}
        reason = detail.get("reason")
        if reason:
            reasons[str(reason)[:120]] += 1
    return {"reasons": [{"reason": r, "count": c} for r, c in reasons.most_common(25)], "n": n}


def histogram(cols: Columns, metric: str | None) -> dict[str, Any]:
    """Counts of the first metric's score in five bins (text outputs)."""
    score = cols.score(metric)
    score = score[~np.isnan(score)]
    edges = [0.0, 0.25, 0.5, 0.75, 1.0]
    counts, _ = np.histogram(score, bins=edges + [1.0000001])
    labels = ["0-0.25", "0.25-0.5", "0.5-0.75", "0.75-1", "1"]
    return {"bins": [{"range": lab, "count": int(c)} for lab, c in zip(labels, counts)], "n": int(len(score))}


def query_result(database_path: str | None, sql: str | None, timeout_s: float = 2.0) -> dict[str, Any]:
    """Run one query read-only in the scoring sandbox: its row count (or error) as the metric
    sees it, and its first rows."""
    if sql is None or not str(sql).strip():
        return {"sql": sql, "error": "no query"}
    text = clean_sql(str(sql))
    if database_path is None:
        return {"sql": text, "error": "database not reachable"}
    verdict = run_query(database_path, text, timeout_s)
    if verdict.error is not None:
        return {"sql": text, "error": verdict.error}
    count = getattr(verdict, "count", None)
    rows = _first_rows(database_path, text, timeout_s)
    if count is None and getattr(verdict, "rows", None) is not None:
        count = len(verdict.rows)
    return {"sql": text, "rows": rows or [], "total": count}


def _first_rows(database_path: str, sql: str, timeout_s: float) -> list[list[Any]] | None:
    """The first rows of a query, read through a sandbox of its own (same read-only connection
    and authorizer as scoring) with its own time limit; None when they cannot be read."""
    try:
        box = Sandbox(database_path)
    except sqlite3.Error:
        return None
    conn = getattr(box, "conn", None)
    if conn is None:
        return None
    deadline = time.monotonic() + timeout_s
    conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 1000)
    try:
        rows = conn.execute(sql).fetchmany(MAX_ROWS_SHOWN)
    except (sqlite3.Error, ValueError, OverflowError):
        return None
    finally:
        box.close()
    return [[_cell(v) for v in row] for row in rows]


def _cell(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value
