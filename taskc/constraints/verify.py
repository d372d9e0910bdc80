"""Check gold outputs against their constraints in real grammar engines.

`verify(items)` compiles each distinct constraint once per engine (real Qwen vocabulary), then
feeds every gold text token by token and requires end-of-sequence to be allowed. A gold answer
that the constraint refuses would be impossible for a constrained model to produce, so the
report lists each refusal with the engine, the character position and the text around it.

outlines-core takes seconds to build an index (77 banking labels: ~7 s), so the default engines
are xgrammar (what vLLM uses) and llguidance; pass ``engines=ALL_ENGINES`` to include it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .engines import ENGINES, CompiledConstraint, get_engine
from .ir import Constraint

DEFAULT_ENGINES: tuple[str, ...] = ("xgrammar", "llguidance")
ALL_ENGINES: tuple[str, ...] = ENGINES
_CONTEXT = 30
_MARK = "\u2038"  # ‸ marks the refused position in `context`


@dataclass(frozen=True)
class VerifyItem:
    """One gold output: where it comes from (`split`, row `index`), its constraint and text."""

    split: str
    index: int
    constraint: Constraint
    text: str


@dataclass
class VerifyReport:
    """What `verify` found; `to_json()` is its JSON form."""

    total: int = 0
    accepted: int = 0
    engines: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every item was accepted by every engine that applies to it."""
        return self.accepted == self.total

    def to_json(self) -> dict[str, Any]:
        """``{"accepted", "total", "engines": {name: {...}}, "rejected": [...]}``."""
        return {"accepted": self.accepted, "total": self.total, "engines": self.engines, "rejected": self.rejected}


def context_at(text: str, position: int | None, width: int = _CONTEXT) -> str:
    """The text around `position`, with ``‸`` marking the position itself."""
    if position is None:
        return text[: 2 * width]
    start = max(0, position - width)
    before = ("\u2026" if start else "") + text[start:position]
    after = text[position : position + width] + ("\u2026" if position + width < len(text) else "")
    return before + _MARK + after


def _compile_stats(times: list[float]) -> dict[str, float]:
    if not times:
        return {"n": 0}
    return {
        "n": len(times),
        "total": round(sum(times), 2),
        "mean": round(statistics.fmean(times), 2),
        "max": round(max(times), 2),
    }


def verify(items: Iterable[VerifyItem], engines: Iterable[str] = DEFAULT_ENGINES,
           on_engine: Callable[[str, int], None] | None = None) -> VerifyReport:
    """Check every item's text against its constraint in each engine (see the module doc).

    Per engine the report gives ``accepted`` / ``total`` (items it applies to), ``compile_ms``
    (n, total, mean, max over the distinct constraints) and ``skipped`` (why it did not apply to
    some or all items, else None). An item counts as accepted when every engine that applies to
    it accepts it. An engine that is not installed is skipped, not an error.
    """
    items = list(items)
    report = VerifyReport(total=len(items))
    refused: set[int] = set()
    checked: set[int] = set()
    for name in engines:
        if on_engine is not None:  # progress: this engine is about to check len(items) answers
            on_engine(name, len(items))
        engine = get_engine(name)
        info: dict[str, Any] = {"accepted": 0, "total": 0, "compile_ms": {"n": 0}, "skipped": None}
        report.engines[name] = info
        try:
            engine.warm_up()
        except ImportError as exc:
            info["skipped"] = f"not installed: {exc}"
            continue
        compiled: dict[Constraint, CompiledConstraint | str] = {}
        times: list[float] = []
        unsupported = 0
        reason = ""
        for pos, item in enumerate(items):
            c = item.constraint
            why = engine.supports(c)
            if why:
                unsupported += 1
                reason = why
                continue
            if c not in compiled:
                try:
                    compiled[c] = engine.compile(c)
                    times.append(compiled[c].compile_ms)  # type: ignore[union-attr]
                except Exception as exc:  # an invalid constraint refuses everything
                    compiled[c] = f"compile failed: {exc}"
            info["total"] += 1
            checked.add(pos)
            target = compiled[c]
            if isinstance(target, str):
                ok, where, why_not = False, None, target
            else:
                res = target.check(item.text)
                ok, where, why_not = res.ok, res.position, res.reason
            if ok:
                info["accepted"] += 1
                continue
            refused.add(pos)
            report.rejected.append(
                {
                    "split": item.split,
                    "index": item.index,
                    "text": item.text,
                    "engine": name,
                    "position": where,
                    "context": context_at(item.text, where),
                    "reason": why_not[:500],
                }
            )
        info["compile_ms"] = _compile_stats(times)
        if unsupported:
            info["skipped"] = f"{unsupported} item(s): {reason}"
    report.accepted = len(checked - refused)
    return report
