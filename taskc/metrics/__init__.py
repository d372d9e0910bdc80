"""Metrics: the scoring half of the evaluation contract.

`get_metric(name)` returns a metric class (see `taskc.metrics.base.Metric`);
`option_errors(name, options)` lists the problems with a metric's options for the compiler;
`METRIC_NAMES` lists the known names. Metric modules are imported lazily, on first use, so
importing this package stays cheap.
"""

from __future__ import annotations

from importlib import import_module

from taskc.metrics.base import (Metric, MetricInput, MetricOptionError, MetricScore,
                                UnknownMetricError)

_REGISTRY: dict[str, tuple[str, str]] = {
    "exact_match": ("taskc.metrics.text", "ExactMatch"),
    "f1": ("taskc.metrics.text", "F1"),
    "rouge_l": ("taskc.metrics.text", "RougeL"),
    "tool_call_equivalence": ("taskc.metrics.tool_call", "ToolCallEquivalence"),
    "binary_tool_call": ("taskc.metrics.tool_call", "BinaryToolCall"),
    "staged_tool_call": ("taskc.metrics.tool_call", "StagedToolCall"),
    "json_match": ("taskc.metrics.json_match", "JsonMatch"),
    "execution_match": ("taskc.metrics.sql", "ExecutionMatch"),
    "test_suite_match": ("taskc.metrics.sql", "TestSuiteMatch"),
    "llm_judge": ("taskc.metrics.llm_judge", "LLMJudge"),
}

METRIC_NAMES: tuple[str, ...] = tuple(_REGISTRY)

__all__ = ["METRIC_NAMES", "Metric", "MetricInput", "MetricOptionError", "MetricScore",
           "UnknownMetricError", "get_metric", "option_errors", "make_metric"]


def get_metric(name: str) -> type[Metric]:
    """The metric class registered under `name`; UnknownMetricError lists the known names."""
    entry = _REGISTRY.get(name) if isinstance(name, str) else None
    if entry is None:
        raise UnknownMetricError(
            f"unknown metric '{name}' (expected one of: {', '.join(METRIC_NAMES)})")
    return getattr(import_module(entry[0]), entry[1])


def make_metric(name: str, options: dict | None = None) -> Metric:
    """An instance of metric `name` built from `options` (raises on bad options)."""
    return get_metric(name)(options or {})


def option_errors(name: str, options: dict | None) -> list[tuple[str, str]]:
    """Every problem with `options` for metric `name`, as (option key, message) pairs.

    Messages read like "unknown option 'foo' for metric exact_match (expected one of:
    normalize)". An unknown metric name raises UnknownMetricError.
    """
    return get_metric(name).check_options(options)
