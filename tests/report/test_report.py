"""`taskc report` on fixture run folders: exact tables, grouping by contract, diffs, charts, HTML."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from taskc.errors import TaskcError
from taskc.report.cli import report_command as report_cmd
from taskc.report.collect import find_runs, group_runs
from taskc.report.diff import diff, explain
from taskc.report.svg import accuracy_cost, latency_cdf
from taskc.report.tables import csv_text, detail, markdown, overview

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RUNS = FIXTURES / "run_folders"
EXPECTED = FIXTURES / "expected"


@pytest.fixture
def groups():
    return group_runs(find_runs([RUNS]))


def test_groups_by_task_and_contract_latest_run_per_model(groups):
    assert [(g.task, g.short_id) for g in groups] == [("banking77", "aaaaaaaa"), ("banking77", "bbbbbbbb"),
                                                      ("trec", "cccccccc")]
    a = groups[0]
    assert [r.model for r in a.runs] == ["baseline", "openai:tiny"]  # best first
    assert a.runs[0].run_id == "20260101-100000-baseline-aaaaaaaa"  # the later of two baseline runs
    assert [r.run_id for r in a.superseded] == ["20251231-090000-baseline-aaaaaaaa"]
    assert groups[2].metrics == ["exact_match", "f1"] and groups[2].primary == "exact_match"
    # latencies from samples.jsonl: errors and cached answers left out
    assert a.runs[1].latencies_ms == pytest.approx([700.0, 810.0, 1490.0])


def test_overview_never_puts_two_contracts_in_one_column(groups):
    header, rows = overview(groups)
    assert header == ["model", "banking77 · aaaaaaaa exact_match", "banking77 · bbbbbbbb exact_match",
                      "trec · cccccccc exact_match"]
    assert rows == [
        ["baseline", "0.812 ± 0.000", "0.800 ± 0.000", "0.710 ± 0.000"],
        ["openai:tiny", "0.013 ± 0.000", "", ""],
        ["gpt-5-nano", "", "", "0.913 ± 0.012"],
    ]


def test_detail_table_exact_values(groups):
    header, rows = detail(groups[0])
    assert header == ["model", "exact_match", "n", "invalid", "errors", "$/1M requests", "p50 ms", "p95 ms", "req/s",
                      "load req/s", "load p95 ms"]
    assert rows == [
        ["baseline", "0.812 ± 0.000", "4", "0.0%", "0", "not priced", "0.0412", "0.0534", "24,000.0", "-", "-"],
        ["openai:tiny", "0.013 ± 0.000", "4", "25.0%", "1", "$2.22", "812.3", "1,491", "12.5", "11.8", "1,700"],
    ]
    header, rows = detail(groups[2])
    assert header[:3] == ["model", "exact_match", "f1"] and "load req/s" not in header
    assert rows[0] == ["gpt-5-nano", "0.913 ± 0.012", "0.950 ± 0.010", "12", "0.0%", "0", "$175", "950.0", "2,100", "40.2"]


def test_markdown_and_csv_match_the_expected_files(groups, tmp_path):
    from taskc.report.html import charts_for

    charts = {}
    for g in groups:  # the charts that have something to show, and a line for each left out
        made = charts_for(g, {}, standalone=True)
        charts[g.key] = {"notes": made["notes"], **{kind: f"charts/{g.task}-{g.short_id}-{name}.svg"
                                                    for kind, name in (("accuracy_cost", "accuracy-cost"), ("latency", "latency"))
                                                    if kind in made}}
    assert markdown(groups, charts) == (EXPECTED / "report.md").read_text(encoding="utf-8")
    assert csv_text(groups) == (EXPECTED / "report.csv").read_text(encoding="utf-8")
    # the same through the command, with chart files written and linked relative to the Markdown
    code = report_cmd([RUNS], markdown=tmp_path / "out" / "report.md", csv=tmp_path / "out" / "report.csv",
                      charts=tmp_path / "out" / "charts", quiet=True)
    assert code == 0
    assert (tmp_path / "out" / "report.md").read_text(encoding="utf-8") == (EXPECTED / "report.md").read_text(encoding="utf-8")
    svgs = sorted(p.name for p in (tmp_path / "out" / "charts").iterdir())
    # the bbbbbbbb contract's only model is local and unpriced: no cost chart, a line instead
    assert svgs == ["banking77-aaaaaaaa-accuracy-cost.svg", "banking77-aaaaaaaa-latency.svg",
                    "banking77-bbbbbbbb-latency.svg", "trec-cccccccc-accuracy-cost.svg", "trec-cccccccc-latency.svg"]


def test_contract_differences_are_explained(groups):
    text = markdown(groups)
    assert ("- banking77: aaaaaaaa vs bbbbbbbb: prompt, generation settings differ (prompt.system: "
            '"…ox.\\nAnswer with one label." → "…ox.\\nAnswer with exactly one label."; generation.max_tokens: 24 → 32)') in text
    # without contract.json the report says it cannot tell
    from taskc.report.diff import describe

    line = describe(groups[2], groups[0])
    assert line == "cccccccc vs aaaaaaaa: cannot say why, no contract.json in the run folders of cccccccc"


def test_diff_paths():
    a = {"contract_id": "x", "prefix": {"chars": 1}, "generation": {"max_tokens": 24, "temperature": 0.0},
         "output": {"labels": ["a", "b", "c"]}, "metrics": [{"name": "exact_match"}], "data": {"sha256": "1" * 64}}
    b = {"contract_id": "y", "prefix": {"chars": 2}, "generation": {"max_tokens": 24, "temperature": 0.7, "seed": 1},
         "output": {"labels": ["a", "b"]}, "metrics": [{"name": "f1"}], "data": {"sha256": "2" * 64}}
    assert diff(a, b) == [
        ("generation.temperature", "0.0 → 0.7"),
        ("generation.seed", "(absent) → 1"),
        ("output.labels", '3 → 2 items, removed "c"'),
        ("metrics[0].name", '"exact_match" → "f1"'),
        ("data.sha256", '"111111111111…" → "222222222222…"'),
    ]
    found = explain(a, b, limit=2)
    assert found["areas"] == ["generation settings", "output contract", "scoring", "test/train data"]
    assert len(found["changes"]) == 2 and found["more"] == 3
    assert diff({"x": [1, 2]}, {"x": [2, 1, 3]}) == [("x", "2 → 3 items, added 3")]


def test_html_is_self_contained(groups, tmp_path):
    report_cmd([RUNS], html=tmp_path / "r.html", quiet=True)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"(?i)<script|<link|<img|\bsrc=|url\(|@import|https?://", page)
    # the group whose only model is local and unpriced has no cost chart, and says so
    assert page.count("<svg") == 5 and page.count("</svg>") == 5
    assert "no exact_match-against-cost chart: no model here has a price" in page
    assert "<td>openai:tiny</td><td>0.013 ± 0.000</td>" in page
    assert "Contracts that differ" in page and "generation.max_tokens: 24 → 32" in page


def test_accuracy_cost_chart_places_points_on_a_log_axis():
    svg = accuracy_cost([("free", 0.0, 0.8), ("cheap", 1.0, 0.5), ("dear", 100.0, 0.9), ("unknown", None, 0.4)],
                        "exact_match", "t")
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert svg.count("<circle") == 2  # an unpriced model is listed, never drawn at "$0"
    xs = {m: float(x) for x, m in re.findall(r'<circle cx="([\d.]+)"[^>]*><title>([^:]+):', svg)}
    assert xs["cheap"] < xs["dear"] and "$0" not in svg
    # $1 and $100 are two decades apart; the ticks are $1, $10, $100 equally spaced
    ticks = re.findall(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="middle" font-size="11" [^>]*>\$(1|10|100)</text>', svg)
    tx = [float(x) for x, _ in ticks]
    assert len(tx) == 3 and abs((tx[1] - tx[0]) - (tx[2] - tx[1])) < 0.2
    assert xs["cheap"] == pytest.approx(tx[0], abs=0.1) and xs["dear"] == pytest.approx(tx[2], abs=0.1)
    assert "not priced (give gpu_hourly_usd to place them): free, unknown" in svg
    assert "no exact_match: nometric" in accuracy_cost([("nometric", 1.0, None), ("a", 1.0, 0.5)], "exact_match", "t")
    assert accuracy_cost([("a", 1.0, 0.5)], "m", "t") == accuracy_cost([("a", 1.0, 0.5)], "m", "t")  # deterministic


def test_latency_cdf_chart():
    svg = latency_cdf([("a", [1.0, 2.0, 3.0, 4.0]), ("b", [])], "t", standalone=False)
    assert "xmlns" not in svg and svg.count("<polyline") == 1
    points = re.search(r'<polyline points="([^"]+)"', svg).group(1).split()
    assert len(points) == 8  # a rise at each of the 4 values
    assert "p50 3.0 ms, n=4" in svg
    assert "no latencies recorded" in latency_cdf([("a", [])], "t")
    assert "no latency above 0" in latency_cdf([("a", [1.0]), ("in-process", [0.0])], "t")


def test_finding_runs(tmp_path):
    run = RUNS / "trec" / "20260101-110500-baseline-cccccccc"
    assert [r.run_id for r in find_runs([run])] == ["20260101-110500-baseline-cccccccc"]
    assert [r.run_id for r in find_runs([run / "summary.json", run])] == ["20260101-110500-baseline-cccccccc"]
    hidden = tmp_path / "runs" / ".trash" / "x"
    shutil.copytree(run, hidden)
    assert find_runs([tmp_path / "runs"]) == []
    with pytest.raises(TaskcError, match="no run folders"):
        report_cmd([tmp_path / "runs"], quiet=True)
    with pytest.raises(TaskcError, match="no such run folder"):
        report_cmd([tmp_path / "nope"], quiet=True)


def test_terminal_output(groups):
    from rich.console import Console

    from taskc.report.tables import print_terminal

    console = Console(record=True, width=200)
    print_terminal(groups, console)
    text = console.export_text()
    assert "banking77 · contract aaaaaaaa1111" in text
    assert re.search(r"openai:tiny\s+│\s+0\.013 ± 0\.000\s+│\s+4\s+│\s+25\.0%", text)
    assert "1 older run(s) of baseline" in text
    assert "banking77: contracts differ: aaaaaaaa vs bbbbbbbb" in text
