"""Score one sample with several metrics, and aggregate per-sample scores per metric.

`rouge_l` lives in `taskc.metrics.text` (class `RougeL`, helper `rouge_l_f`) and is
re-exported here.
"""

from __future__ import annotations

from typing import Sequence

from taskc.metrics.base import Metric, MetricInput, MetricScore
from taskc.metrics.batch import score_one
from taskc.metrics.text import RougeL, rouge_l_f

__all__ = ["score_sample", "aggregate", "RougeL", "rouge_l_f"]


def score_sample(metrics: Sequence[Metric], inp: MetricInput) -> dict[str, MetricScore]:
    """`{metric name: score}` for one sample.

    A metric that raises scores 0 with `detail={"reason": "metric error: <Type>: <message>"}`
    instead of aborting the run. When two metrics share a name, the later one wins.
    """
    return {metric.name: score_one(metric, inp) for metric in metrics}


def aggregate(metrics: Sequence[Metric],
              per_sample: Sequence[dict[str, MetricScore]]) -> dict[str, dict]:
    """`{metric name: metric.aggregate(its scores)}`; samples missing a metric are skipped."""
    return {m.name: m.aggregate([s[m.name] for s in per_sample if m.name in s])
            for m in metrics}
