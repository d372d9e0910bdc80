"""`taskc report` says which price applied (the batch price is the one in the cost column), marks
a metric scored by another judge than the spec's, and shows --no-judge metrics as not computed."""

import json
from pathlib import Path

from taskc.report.cli import report_command
from taskc.report.collect import find_runs, group_runs
from taskc.report.tables import csv_text, detail, markdown

CID = "d" * 64


def write_run(root: Path, name: str, model: str, cost: dict, metrics: dict, judge: dict | None) -> None:
    folder = root / "capitals" / name
    folder.mkdir(parents=True)
    summary = {"run_id": name, "task": "capitals", "contract_id": CID, "model_name": model, "backend": "openai",
               "model": model, "started": f"2026-01-01T10:00:0{len(list(root.rglob('summary.json')))}+00:00",
               "n": 3, "metrics": metrics, "invalid_rate": 0.0, "errors": 0, "cost": cost,
               "latency_ms": {"p50": None, "p95": None}, "requests_per_s": None, "judge": judge}
    (folder / "summary.json").write_text(json.dumps(summary))


def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    judged = {"mean": 0.667, "std": 0.0}
    write_run(root, "r1", "gpt-5-nano",
              {"basis": "tokens", "pricing": "batch", "usd_total": 0.000015, "usd_per_million_requests": 5.0,
               "usd_total_at_list_price": 0.00003},
              {"exact_match": {"mean": 1.0, "std": 0.0}, "llm_judge": judged},
              {"scored_by": "openai:qwen-judge", "spec_judge": "openai:gpt-5-mini", "overridden": True})
    write_run(root, "r2", "claude-haiku-4-5",
              {"basis": "tokens", "pricing": "partial", "usd_total": 0.00004, "usd_per_million_requests": 13.3},
              {"exact_match": {"mean": 0.667, "std": 0.0}, "llm_judge": judged},
              {"scored_by": "openai:gpt-5-mini", "spec_judge": "openai:gpt-5-mini", "overridden": False})
    write_run(root, "r3", "gold", {"basis": "local", "usd_total": 0.0, "usd_per_million_requests": 0.0},
              {"exact_match": {"mean": 0.5, "std": 0.0},
               "llm_judge": {"mean": None, "std": None, "computed": False, "reason": "not computed (--no-judge)"}},
              {"computed": False})
    return root


def test_cost_column_marks_batch_pricing_and_judges_are_marked(tmp_path, capsys):
    (group,) = group_runs(find_runs([runs(tmp_path)]))
    header, rows = detail(group)
    assert header[:3] == ["model", "exact_match", "llm_judge"]
    by_model = {row[0]: row for row in rows}
    cost = header.index("$/1M requests")
    assert by_model["gpt-5-nano"][cost] == "$5.00 batch"
    assert by_model["claude-haiku-4-5"][cost] == "$13.30 part batch" and by_model["gold"][cost] == "not priced"
    assert by_model["gpt-5-nano"][2] == "0.667 ± 0.000 †" and by_model["claude-haiku-4-5"][2] == "0.667 ± 0.000"
    assert by_model["gold"][2] == "not computed"
    md = markdown([group])
    assert "† gpt-5-nano: llm_judge scored by openai:qwen-judge instead of the spec's openai:gpt-5-mini" in md
    assert "batch: the price paid through the provider's batch API" in md
    lines = csv_text([group]).splitlines()
    assert lines[0].endswith(",pricing,judge,judge_overridden")
    assert any(line.endswith(",batch,openai:qwen-judge,True") for line in lines)
    assert report_command([tmp_path / "runs"]) == 0
    out = capsys.readouterr().out
    assert "$5.00 batch" in out and "† gpt-5-nano: llm_judge scored by openai:qwen-judge" in out
