"""How a sample is shown in the side-by-side table: short text, an input preview, one cell per run."""

from __future__ import annotations

import math
from typing import Any

import orjson

PREVIEW = 400


def _num(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def short(text: Any, limit: int = PREVIEW) -> str | None:
    """`text` cut to `limit` characters (with an ellipsis), as a string; None stays None."""
    if text is None:
        return None
    text = text if isinstance(text, str) else str(text)
    return text if len(text) <= limit else text[:limit] + " …"


def preview(inputs: Any) -> str:
    """The input values of a row, short enough for a table cell."""
    if not isinstance(inputs, dict):
        return ""
    parts = []
    for name, value in inputs.items():
        shown = value if isinstance(value, str) else _json(value)
        parts.append(f"{name}: {shown}" if len(inputs) > 1 else shown)
    return short("\n".join(parts)) or ""


def _json(value: Any) -> str:

    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


def cell(record: dict | None, metric: str | None, present: bool) -> dict[str, Any]:
    """A sample as a table cell shows it (`present`: the run has the row at all)."""
    if not present:
        return {"present": False}
    if record is None:
        return {"present": True, "error": "this line changed on disk; reload"}
    raw = record.get("raw")
    scores = record.get("scores") if isinstance(record.get("scores"), dict) else {}
    valid = record.get("valid") if isinstance(record.get("valid"), bool) else record.get("parsed") is not None
    return {"present": True, "output": short(raw), "score": _num(scores.get(metric)) if metric else None,
            "valid": bool(valid) and not record.get("error"), "error": short(record.get("error"), 200),
            "invalid_reason": short(record.get("invalid_reason"), 200)}
