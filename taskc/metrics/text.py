"""String metrics: `exact_match`, `f1` (SQuAD token F1) and `rouge_l` (ROUGE-L F-measure).

All three take the option `normalize` (a name or list of names from strip, casefold, squad;
default strip). Values are compared as text: strings as they are, dicts and lists as canonical
JSON (sorted keys, integral floats as ints), anything else through `str()`.

For `text` outputs the reference may be a list of acceptable answers; the best one counts.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Sequence

from taskc.metrics.base import Metric, MetricInput, MetricScore, invalid_score
from taskc.metrics.normalize import check_normalize, make_normalizer
from taskc.metrics.values import comparable_json


def as_text(value: Any) -> str:
    """The text form of a prediction or reference (canonical JSON for dicts and lists)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        return comparable_json(value)
    return str(value)


def reference_alternatives(reference: Any, output: dict) -> list[Any]:
    """The acceptable references: a list of strings for text outputs, else the one value."""
    if (output or {}).get("kind") == "text" and isinstance(reference, (list, tuple)) \
            and reference and all(isinstance(r, str) for r in reference):
        return list(reference)
    return [reference]


def token_f1(prediction: Sequence[str], reference: Sequence[str]) -> float:
    """SQuAD token F1 over multisets of tokens (1.0 when both are empty, 0.0 when one is)."""
    if not prediction or not reference:
        return float(len(prediction) == len(reference))
    common = Counter(prediction) & Counter(reference)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(prediction)
    recall = same / len(reference)
    return 2 * precision * recall / (precision + recall)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l_f(prediction: Sequence[str], reference: Sequence[str]) -> float:
    """ROUGE-L F-measure (beta = 1) of two token sequences (1.0 when both are empty)."""
    if not prediction or not reference:
        return float(len(prediction) == len(reference))
    lcs = lcs_length(prediction, reference)
    if lcs == 0:
        return 0.0
    precision = lcs / len(prediction)
    recall = lcs / len(reference)
    return 2 * precision * recall / (precision + recall)


class _TextMetric(Metric):
    OPTIONS = ("normalize",)

    @classmethod
    def _check_values(cls, options: dict) -> list[tuple[str, str]]:
        if "normalize" in options:
            return check_normalize(cls.name, options["normalize"])
        return []

    def _configure(self, options: dict) -> None:
        self._norm: Callable[[str], str] = make_normalizer(options.get("normalize", "strip"))

    def _compare(self, prediction: str, reference: str) -> float:
        raise NotImplementedError

    def score(self, inp: MetricInput) -> MetricScore:
        """Best comparison of the normalized prediction against the reference(s)."""
        if inp.parsed is None:
            return invalid_score()
        pred = self._norm(as_text(inp.parsed))
        best = 0.0
        for ref in reference_alternatives(inp.reference, inp.output):
            best = max(best, self._compare(pred, self._norm(as_text(ref))))
            if best == 1.0:
                break
        return MetricScore(best, {"reason": "mismatch"} if best == 0.0 else {})


class ExactMatch(_TextMetric):
    """1.0 when the normalized prediction equals the normalized reference, else 0.0."""

    name = "exact_match"

    def _compare(self, prediction: str, reference: str) -> float:
        return float(prediction == reference)


class F1(_TextMetric):
    """SQuAD-style token F1 between the normalized prediction and reference."""

    name = "f1"

    def _compare(self, prediction: str, reference: str) -> float:
        return token_f1(prediction.split(), reference.split())


class RougeL(_TextMetric):
    """ROUGE-L F-measure over whitespace tokens of the normalized texts."""

    name = "rouge_l"

    def _compare(self, prediction: str, reference: str) -> float:
        return rouge_l_f(prediction.split(), reference.split())
