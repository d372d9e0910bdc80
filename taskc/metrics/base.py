"""The scoring contract: what a metric receives (`MetricInput`), returns (`MetricScore`), and
the `Metric` base class every metric derives from.

A metric is built once per spec from its options (`Metric(options)`, which raises
`MetricOptionError` on a bad option), scores one sample at a time (`score`) and folds the
per-sample scores into a summary (`aggregate`, at least `{"mean", "n"}`).

Option checking is declarative: a subclass lists its option keys in `OPTIONS`, the required
ones in `REQUIRED`, and checks values in `_check_values`; `check_options` (used by the
compiler through `taskc.metrics.option_errors`) reports every problem, the constructor raises
on the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

INVALID_OUTPUT = "invalid output"


class MetricOptionError(ValueError):
    """A metric option is unknown, missing or has a bad value; `option_key` names it."""

    def __init__(self, message: str, option_key: str):
        super().__init__(message)
        self.message = message
        self.option_key = option_key


class UnknownMetricError(KeyError):
    """No metric has this name; the message lists the known names."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class MetricInput:
    """One sample to score.

    raw: the model's raw output text (None when the request failed).
    parsed: the runner's parsed and validated value, or None when the output was invalid.
    reference: the gold value in canonical Python form (label str, `{"name","parameters"}`
        dict, object dict, SQL str or text str).
    output: the contract's output declaration (`{"kind": ...}` plus kind-specific keys).
    database: absolute path of this example's SQLite file (sql only).
    inputs: the example's input values (llm_judge).
    judge_raw: the judge model's raw reply for this sample (llm_judge only; the runner makes
        the judge call, the metric only reads the verdict).
    """

    raw: str | None
    parsed: Any | None
    reference: Any
    output: dict
    database: str | None = None
    inputs: dict | None = None
    judge_raw: str | None = None


@dataclass(frozen=True)
class MetricScore:
    """A score in [0, 1] and a JSON-serializable `detail` (failure reason, per-field results)."""

    value: float
    detail: dict


def invalid_score() -> MetricScore:
    """The score of an invalid output: 0 with reason "invalid output"."""
    return MetricScore(0.0, {"reason": INVALID_OUTPUT})


def mean_aggregate(scores: Sequence[MetricScore]) -> dict:
    """`{"mean": average value (0.0 when empty), "n": number of scores}`."""
    n = len(scores)
    return {"mean": (sum(s.value for s in scores) / n) if n else 0.0, "n": n}


def option_message(metric: str, key: str, problem: str) -> str:
    """The standard wording of an option problem: "option 'k' of metric m <problem>"."""
    return f"option '{key}' of metric {metric} {problem}"


class Metric:
    """Base class. Subclasses set `name`, `OPTIONS`, optionally `REQUIRED` and `kinds`, and
    override `_check_values`, `_configure` and `score` (and `aggregate` when they report more
    than the mean)."""

    name: ClassVar[str] = ""
    OPTIONS: ClassVar[tuple[str, ...]] = ()
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    kinds: ClassVar[frozenset[str]] = frozenset({"label", "tool_call", "object", "sql", "text"})
    #: True for metrics whose `score_many` works across processes (SQL execution): the runner
    #: scores them in one batch after the answers are in, instead of one sample at a time.
    batched: ClassVar[bool] = False

    def __init__(self, options: dict | None = None):
        opts = dict(options or {})
        errors = type(self).check_options(opts)
        if errors:
            key, message = errors[0]
            raise MetricOptionError(message, key)
        self.options = opts
        self._configure(opts)

    @classmethod
    def check_options(cls, options: dict | None) -> list[tuple[str, str]]:
        """Every problem with `options` as (option key, message); empty when they are valid."""
        opts = options or {}
        if not isinstance(opts, dict):
            return [("", f"options of metric {cls.name} must be a mapping")]
        errors: list[tuple[str, str]] = []
        expected = ", ".join(cls.OPTIONS) if cls.OPTIONS else "no options"
        for key in opts:
            if key not in cls.OPTIONS:
                errors.append((str(key), f"unknown option '{key}' for metric {cls.name} "
                                         f"(expected one of: {expected})"))
        for key in cls.REQUIRED:
            if key not in opts:
                errors.append((key, f"missing option '{key}' for metric {cls.name}"))
        known = {k: v for k, v in opts.items() if k in cls.OPTIONS}
        errors.extend(cls._check_values(known))
        return errors

    @classmethod
    def _check_values(cls, options: dict) -> list[tuple[str, str]]:
        """Problems with the values of known options (subclasses override)."""
        return []

    def _configure(self, options: dict) -> None:
        """Set up from validated options (subclasses override)."""

    def score(self, inp: MetricInput) -> MetricScore:
        """Score one sample."""
        raise NotImplementedError

    def score_many(self, inputs: Sequence[MetricInput], jobs: int | None = None) -> list[MetricScore]:
        """Score several samples, in order (`jobs`: worker processes, for metrics that use them;
        here one by one in this process)."""
        return [self.score(inp) for inp in inputs]

    def aggregate(self, scores: Sequence[MetricScore]) -> dict:
        """Summarize per-sample scores: at least `{"mean": float, "n": int}`."""
        return mean_aggregate(scores)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options!r})"
