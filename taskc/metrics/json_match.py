"""`json_match`: whole-object and per-field equality for object outputs.

Fields are the schema's declared properties (in schema order) followed by any other key found
in the reference or the prediction. A missing key equals null. Values are compared
structurally (see `taskc.metrics.values`). Fields named in the option `unordered` are
top-level lists compared as multisets (elements by canonical JSON, so `1 == 1.0`, dict key
order irrelevant, `True != 1`).

The score is 1.0 when every field is equal, else 0.0; `detail["fields"]` maps each field to
its equality. `aggregate` adds `per_field` accuracy, counting an invalid output as wrong on
every field.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from taskc.metrics.base import Metric, MetricInput, MetricScore, invalid_score, mean_aggregate
from taskc.metrics.values import comparable_json, struct_eq


def multiset_eq(a: Any, b: Any) -> bool:
    """Lists equal as multisets of canonical-JSON elements; other values structurally."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and Counter(map(comparable_json, a)) == Counter(
            map(comparable_json, b))
    return struct_eq(a, b)


def _field_names(output: dict, reference: Any, prediction: Any) -> list[str]:
    schema = (output or {}).get("schema") or {}
    props = schema.get("properties") if isinstance(schema, dict) else None
    names: list[str] = list(props) if isinstance(props, dict) else []
    seen = set(names)
    for obj in (reference, prediction):
        if isinstance(obj, dict):
            for k in obj:
                if k not in seen:
                    seen.add(k)
                    names.append(k)
    return names


class JsonMatch(Metric):
    """Whole-object equality (1/0) with per-field results and unordered list fields."""

    name = "json_match"
    OPTIONS = ("unordered",)
    kinds = frozenset({"object", "tool_call"})

    @classmethod
    def _check_values(cls, options: dict) -> list[tuple[str, str]]:
        value = options.get("unordered", [])
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            return [("unordered", f"option 'unordered' of metric {cls.name} must be a list "
                                  f"of field names")]
        return []

    def _configure(self, options: dict) -> None:
        self._unordered = frozenset(options.get("unordered", ()))

    def score(self, inp: MetricInput) -> MetricScore:
        """1.0 when all fields are equal; `detail["fields"]` holds each field's result."""
        pred, ref = inp.parsed, inp.reference
        if pred is None:
            return invalid_score()
        if not isinstance(pred, dict) or not isinstance(ref, dict):
            ok = struct_eq(pred, ref)
            return MetricScore(float(ok), {} if ok else {"reason": "not an object"})
        fields: dict[str, bool] = {}
        for name in _field_names(inp.output, ref, pred):
            a, b = pred.get(name), ref.get(name)
            fields[name] = multiset_eq(a, b) if name in self._unordered else struct_eq(a, b)
        ok = all(fields.values())
        detail: dict[str, Any] = {"fields": fields}
        if not ok:
            detail["reason"] = "fields differ: " + ", ".join(k for k, v in fields.items()
                                                              if not v)
        return MetricScore(float(ok), detail)

    def aggregate(self, scores: Sequence[MetricScore]) -> dict:
        """Mean, n, and `per_field`: the share of samples where each field was equal."""
        out = mean_aggregate(scores)
        correct: dict[str, int] = {}
        for s in scores:
            for name, ok in (s.detail.get("fields") or {}).items():
                correct[name] = correct.get(name, 0) + int(bool(ok))
        n = len(scores)
        out["per_field"] = {k: (v / n if n else 0.0) for k, v in correct.items()}
        return out
