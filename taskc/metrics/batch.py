"""Score a batch of samples: serial for most metrics, across worker processes for SQL.

`score_many(metric, inputs, jobs=None)` returns one `MetricScore` per input, in order. A
metric with its own `score_many` (execution_match, test_suite_match) uses it with `jobs`
worker processes (None: one per available core); every other metric scores the inputs one
by one in this process and ignores `jobs`. As in `taskc.metrics.score.score_sample`, a metric
that raises on a sample scores it 0 with `{"reason": "metric error: <Type>: <message>"}`.

`score_batch(metrics, inputs, jobs=None)` does the same for several metrics and returns
`{metric name: score}` per input, like `score_sample` does for one.

A prediction that ran out of time has `detail["reason"] == "timeout"` (`is_timeout`), with
`"timeout_s"` (the per-query limit it hit, plus `"variant"` for test_suite_match) or
`"budget_s"` (the run's budget was spent before it was scored); `count_timeouts` counts them.
"""

from __future__ import annotations

from typing import Sequence

from taskc.metrics.base import Metric, MetricInput, MetricScore

__all__ = ["score_many", "score_batch", "is_timeout", "count_timeouts", "default_jobs"]


def default_jobs() -> int:
    """The default worker count: one per core this process may run on."""
    from taskc.metrics.sql_pool import default_jobs as jobs

    return jobs()


def score_one(metric: Metric, inp: MetricInput) -> MetricScore:
    """`metric.score(inp)`; a metric that raises scores 0 with `detail={"reason": "metric error:
    <Type>: <message>"}` instead of aborting the run."""
    try:
        return metric.score(inp)
    except Exception as exc:  # noqa: BLE001 - one bad sample must not stop a run
        return MetricScore(0.0, {"reason": f"metric error: {type(exc).__name__}: {exc}"})


def score_many(metric: Metric, inputs: Sequence[MetricInput],
               jobs: int | None = None) -> list[MetricScore]:
    """One score per input, in order (see the module docstring)."""
    if metric.batched:
        return metric.score_many(list(inputs), jobs=jobs)
    return [score_one(metric, inp) for inp in inputs]


def score_batch(metrics: Sequence[Metric], inputs: Sequence[MetricInput],
                jobs: int | None = None) -> list[dict[str, MetricScore]]:
    """`{metric name: score}` for each input; when two metrics share a name the later wins."""
    inputs = list(inputs)
    out: list[dict[str, MetricScore]] = [{} for _ in inputs]
    for metric in metrics:
        for row, score in zip(out, score_many(metric, inputs, jobs)):
            row[metric.name] = score
    return out


def is_timeout(score: MetricScore | dict | None) -> bool:
    """Whether a score (or its detail) says the prediction ran out of time."""
    detail = score.detail if isinstance(score, MetricScore) else score
    return isinstance(detail, dict) and detail.get("reason") == "timeout"


def count_timeouts(scores: Sequence[MetricScore | dict | None]) -> int:
    """How many of `scores` (or details) are timeouts."""
    return sum(1 for s in scores if is_timeout(s))
