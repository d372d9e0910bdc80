"""Why two contracts of one task differ: a path-by-path diff of their bodies (contract.json)."""

from __future__ import annotations

import json
from typing import Any

#: Keys that are derived from others or describe the file rather than the contract.
IGNORED = {"contract_id", "_generated", "analysis", "prefix"}

#: What a change under each top-level key means for a reader.
MEANING = {
    "prompt": "prompt",
    "data": "test/train data",
    "files": "content of referenced files",
    "output": "output contract",
    "schema": "output contract",
    "validate_schema": "output contract",
    "constraint": "output contract",
    "metrics": "scoring",
    "generation": "generation settings",
    "inputs": "inputs",
    "engine": "engine settings",
    "databases": "databases",
    "name": "task name",
    "description": "description",
    "format": "spec format",
}

MAX_VALUE = 48


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = json.dumps(text, ensure_ascii=False) if isinstance(value, str) else text
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _is_digest(s: str) -> bool:
    return len(s) >= 32 and all(c in "0123456789abcdef" for c in s)


def _string_change(a: str, b: str) -> str:
    """`"…context a…" → "…context b…"` around the first difference of two long strings (digests:
    their first 12 characters)."""
    if _is_digest(a) and _is_digest(b):
        return f'"{a[:12]}…" → "{b[:12]}…"'
    if len(a) <= MAX_VALUE and len(b) <= MAX_VALUE:
        return f"{_short(a)} → {_short(b)}"
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    start = max(0, i - 16)

    def window(s: str) -> str:
        piece = s[start:start + 36]
        return json.dumps(("…" if start else "") + piece + ("…" if start + 36 < len(s) else ""), ensure_ascii=False)

    return f"{window(a)} → {window(b)}"


def diff(a: Any, b: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, "old → new") for every leaf that differs between two JSON values."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[tuple[str, str]] = []
        for key in list(a) + [k for k in b if k not in a]:
            if not path and key in IGNORED:
                continue
            sub = f"{path}.{key}" if path else str(key)
            if key not in b:
                out.append((sub, f"{_short(a[key])} → (absent)"))
            elif key not in a:
                out.append((sub, f"(absent) → {_short(b[key])}"))
            else:
                out.extend(diff(a[key], b[key], sub))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if a == b:
            return []
        if len(a) == len(b) and len(a) <= 16:
            out = []
            for i, (x, y) in enumerate(zip(a, b)):
                out.extend(diff(x, y, f"{path}[{i}]"))
            return out
        added = [x for x in b if x not in a]
        removed = [x for x in a if x not in b]
        parts = [f"{len(a)} → {len(b)} items"]
        if removed:
            parts.append(f"removed {_short(removed if len(removed) > 1 else removed[0])}")
        if added:
            parts.append(f"added {_short(added if len(added) > 1 else added[0])}")
        if not added and not removed:
            parts.append("reordered")
        return [(path, ", ".join(parts))]
    if a == b and type(a) is type(b):
        return []
    if isinstance(a, str) and isinstance(b, str):
        return [(path, _string_change(a, b))]
    return [(path, f"{_short(a)} → {_short(b)}")]


def explain(a: dict[str, Any], b: dict[str, Any], limit: int = 8) -> dict[str, Any]:
    """What differs between two contract bodies: the areas (prompt, data, scoring, ...) and up to
    `limit` changed paths."""
    changes = diff(a, b)
    areas: list[str] = []
    for path, _ in changes:
        top = path.split(".")[0].split("[")[0]
        area = MEANING.get(top, top)
        if area not in areas:
            areas.append(area)
    return {"areas": areas, "changes": changes[:limit], "more": max(0, len(changes) - limit)}


def describe(group_a, group_b) -> str:
    """One line: why the contracts of two groups of the same task differ (or that we cannot tell)."""
    a, b = group_a.contract, group_b.contract
    head = f"{group_a.short_id} vs {group_b.short_id}"
    if a is None or b is None:
        which = " and ".join(g.short_id for g, c in ((group_a, a), (group_b, b)) if c is None)
        return f"{head}: cannot say why, no contract.json in the run folders of {which}"
    found = explain(a, b)
    if not found["changes"]:
        return f"{head}: the stored bodies are identical (ids from different taskc versions?)"
    detail = "; ".join(f"{p}: {c}" for p, c in found["changes"])
    more = f"; and {found['more']} more" if found["more"] else ""
    return f"{head}: {', '.join(found['areas'])} differ ({detail}{more})"
