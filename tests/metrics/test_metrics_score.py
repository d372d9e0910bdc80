"""score_sample and aggregate over several metrics."""

from __future__ import annotations

import json

from taskc.metrics import Metric, MetricInput, MetricScore, get_metric
from taskc.metrics.score import aggregate, score_sample


def test_score_and_aggregate_git_rows(git_rows, git_output):
    metrics = [get_metric(n)({}) for n in
               ("tool_call_equivalence", "binary_tool_call", "staged_tool_call", "exact_match")]
    rows = git_rows[:10]
    per_sample = []
    for i, row in enumerate(rows):
        raw = row["answer_text"] if i % 2 == 0 else '{"name": "git_status", "parameters": {}}'
        parsed = json.loads(raw)
        per_sample.append(score_sample(metrics, MetricInput(raw, parsed, row["answer"],
                                                            git_output)))
    assert set(per_sample[0]) == {"tool_call_equivalence", "binary_tool_call",
                                  "staged_tool_call", "exact_match"}
    assert all(isinstance(v, MetricScore) for v in per_sample[0].values())
    expected_equiv = sum(
        1 for i, r in enumerate(rows) if i % 2 == 0 or r["answer"] == {
            "name": "git_status", "parameters": {}})
    agg = aggregate(metrics, per_sample)
    assert agg["tool_call_equivalence"] == {"mean": expected_equiv / 10, "n": 10}
    assert agg["exact_match"]["n"] == 10
    assert agg["staged_tool_call"]["stages"]["1"] == expected_equiv
    json.dumps({k: [s[k].detail for s in per_sample] for k in agg})  # details are JSON


def test_metric_errors_become_reasons(git_rows, git_output):
    class Broken(Metric):
        name = "broken"

        def score(self, inp):
            raise RuntimeError("boom")

    metrics = [Broken({}), get_metric("tool_call_equivalence")({})]
    row = git_rows[0]
    out = score_sample(metrics, MetricInput(row["answer_text"], None, row["answer"], git_output))
    assert out["broken"] == MetricScore(0.0, {"reason": "metric error: RuntimeError: boom"})
    assert out["tool_call_equivalence"].value == 1.0


def test_rouge_l_reexported(docstrings):
    from taskc.metrics.score import RougeL
    m = RougeL({"normalize": ["strip", "casefold"]})
    doc = docstrings[3]["docstring"]
    s = score_sample([m], MetricInput(doc, doc.upper(), doc, {"kind": "text"}))
    assert s["rouge_l"].value == 1.0
