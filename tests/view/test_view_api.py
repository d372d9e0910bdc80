"""The viewer's JSON API over runs made by `taskc eval` (gold, baseline, replay backends)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from taskc.compiler.build import compile_spec
from tests.view.conftest import group_id
from tests.view.workspace import SCRIPT_OUTPUT, SCRIPT_TEXT


def _q(group: str, runs=(), **params) -> str:
    items = [("group", group)] + [("run", r) for r in runs]
    for k, v in params.items():
        items += [(k, x) for x in v] if isinstance(v, list) else [(k, v)]
    return urlencode(items)


def _rid(made, task: str, model: str) -> str:
    root, runs = made
    return runs[task][model].relative_to(root / "runs").as_posix()


def test_index_groups_runs_by_contract_with_their_figures(live, made):
    index = live.json("/api/index")
    assert sorted(g["task"] for g in index["groups"]) == ["reviews", "shop", "tickets", "timers"]
    tickets = next(g for g in index["groups"] if g["task"] == "tickets")
    assert tickets["kind"] == "label" and tickets["primary"] == "exact_match"
    by_model = {r["model"].split(":")[0]: r for r in tickets["runs"]}
    assert set(by_model) == {"gold", "baseline", "replay"}
    replay_dir = made[1]["tickets"]["replay"]
    summary = json.loads((replay_dir / "summary.json").read_text())
    replay = by_model["replay"]
    assert replay["metrics"]["exact_match"] == {"mean": summary["metrics"]["exact_match"]["mean"], "std": 0.0}
    assert replay["metrics"]["exact_match"]["mean"] == 7 / 12
    assert (replay["n"], replay["errors"], replay["invalid_rate"]) == (12, 1, 1 / 12)
    assert replay["cost_per_million"] == summary["cost"]["usd_per_million_requests"]
    assert replay["p50"] == summary["latency_ms"]["p50"] and replay["status"] == "complete"


def test_chart_is_the_report_svg(live):
    status, headers, body = live.raw("/api/chart?" + _q(group_id(live, "tickets")))
    assert status == 200 and headers["content-type"].startswith("image/svg+xml")
    assert body.startswith(b"<svg") and b"tickets: exact_match against cost" in body and b"<script" not in body


def test_compare_filters_count_and_select_rows(live, made):
    g = group_id(live, "tickets")
    runs = [_rid(made, "tickets", m) for m in ("gold", "baseline", "replay")]
    page = live.json("/api/compare?" + _q(g, runs))
    assert (page["total"], page["matched"], page["metric"]) == (12, 12, "exact_match")
    assert page["counts"] == {"wrong": 6, "invalid": 1, "errors": 1, "disagree": 6}
    assert page["group"]["gold"] is True and page["group"]["gold_note"].startswith("gold from ")
    wrong = live.json("/api/compare?" + _q(g, runs, filter=["wrong"]))
    assert [r["index"] for r in wrong["rows"]] == [2, 4, 5, 6, 8, 11]
    row5 = next(r for r in wrong["rows"] if r["index"] == 5)
    assert row5["gold"] == "card" and row5["input"] == "my card was swallowed by the machine"
    assert row5["cells"][2] == {"present": True, "output": SCRIPT_OUTPUT, "score": 0.0, "valid": False, "error": None,
                                "invalid_reason": row5["cells"][2]["invalid_reason"]}
    assert row5["cells"][2]["invalid_reason"].startswith("not one of the 4 labels")
    both = live.json("/api/compare?" + _q(g, runs, filter=["wrong", "invalid"]))
    assert [r["index"] for r in both["rows"]] == [5]
    errors = live.json("/api/compare?" + _q(g, runs, filter=["errors"]))
    assert [r["index"] for r in errors["rows"]] == [11] and errors["rows"][0]["cells"][2]["error"] == "no prediction for row 11"
    found = live.json("/api/compare?" + _q(g, runs, q="TWICE"))
    assert [r["index"] for r in found["rows"]] == [3, 7]
    assert found["rows"][0]["input"] == SCRIPT_TEXT


def test_paging(live, made):
    g = group_id(live, "tickets")
    first = live.json("/api/compare?" + _q(g, size="5"))
    last = live.json("/api/compare?" + _q(g, size="5", page="2"))
    beyond = live.json("/api/compare?" + _q(g, size="5", page="99"))
    assert (first["pages"], [r["index"] for r in first["rows"]]) == (3, [0, 1, 2, 3, 4])
    assert [r["index"] for r in last["rows"]] == [10, 11]
    assert beyond["page"] == 2


def test_regression_between_two_runs_of_one_contract(live, made):
    g = group_id(live, "tickets")
    a, b = _rid(made, "tickets", "baseline"), _rid(made, "tickets", "replay")
    regressed = live.json("/api/compare?" + _q(g, [a, b], filter=["regressed"]))
    fixed = live.json("/api/compare?" + _q(g, [a, b], filter=["fixed"]))
    assert [r["index"] for r in regressed["rows"]] == [2, 4, 5, 8, 11]
    assert [r["index"] for r in fixed["rows"]] == [6]
    assert regressed["counts"]["regressed"] == 5 and regressed["counts"]["fixed"] == 1


def test_sample_and_its_rendered_messages_match_the_compiler(live, made):
    root, _ = made
    g = group_id(live, "tickets")
    sample = live.json("/api/sample?" + _q(g, row="3.0"))
    assert sample["inputs"] == {"text": SCRIPT_TEXT} and sample["gold"] == "billing"
    assert [c["raw"] for c in sample["cells"]] == ["billing", "billing", "billing"]
    messages = live.json("/api/messages?" + _q(g, row="3.0"))
    contract = compile_spec(root / "specs" / "tickets.yaml")
    assert messages == {"messages": contract.messages("test", 3), "note": None}
    shop = live.json("/api/messages?" + _q(group_id(live, "shop"), row="1.0"))
    assert shop["messages"] == compile_spec(root / "specs" / "shop.yaml").messages("test", 1)
    assert "CREATE TABLE item" in shop["messages"][-1]["content"]


def test_confusion_matrix_for_labels(live, made):
    g = group_id(live, "tickets")
    view = live.json("/api/kind?" + _q(g, [_rid(made, "tickets", "replay")]))
    (run,) = view["runs"]
    c = run["confusion"]
    assert c["rows"] == ["billing", "card", "refund", "other"]
    assert c["columns"] == ["billing", "card", "refund", "other", "(invalid)", "(error)"]
    assert c["matrix"] == [[3, 0, 0, 0, 0, 1], [0, 1, 1, 0, 1, 0], [1, 0, 2, 0, 0, 0], [0, 1, 0, 1, 0, 0]]


def test_per_argument_errors_for_tool_calls(live, made):
    g = group_id(live, "timers")
    (run,) = live.json("/api/kind?" + _q(g, [_rid(made, "timers", "replay")]))["runs"]
    t = run["tool_arguments"]
    rows = {(a["tool"], a["argument"]): (a["expected"], a["missing"], a["wrong"], a["extra"]) for a in t["arguments"]}
    assert rows == {("play_music", "artist"): (1, 0, 0, 0), ("play_music", "volume"): (1, 1, 0, 0),
                    ("set_timer", "label"): (1, 0, 0, 1), ("set_timer", "minutes"): (3, 0, 1, 0)}
    assert t["totals"] == {"samples": 6, "wrong function": 1, "no call (invalid or error)": 1}


def test_per_field_accuracy_for_objects(live, made):
    g = group_id(live, "reviews")
    (run,) = live.json("/api/kind?" + _q(g, [_rid(made, "reviews", "replay")]))["runs"]
    assert run["object_fields"]["fields"] == [{"field": "keywords", "n": 4, "accuracy": 0.5},
                                              {"field": "sentiment", "n": 4, "accuracy": 0.5}]


def test_sql_and_its_execution_result(live, made):
    g = group_id(live, "shop")
    runs = [_rid(made, "shop", "gold"), _rid(made, "shop", "replay")]
    wrong = live.json("/api/sql?" + _q(g, runs, row="1.0"))
    assert wrong["database"] == "shop.sqlite"
    assert wrong["gold"] == {"sql": "SELECT name FROM item ORDER BY price DESC LIMIT 1", "rows": [["book"]], "total": 1}
    assert wrong["runs"][1]["rows"] == [["pen"]] and wrong["runs"][1]["sql"] == "SELECT name FROM item ORDER BY price LIMIT 1"
    denied = live.json("/api/sql?" + _q(g, runs, row="2.0"))
    assert denied["gold"]["rows"] == [["pen"], ["mug"]]
    assert denied["runs"][1]["error"].startswith("denied: ")
    (kind,) = live.json("/api/kind?" + _q(g, [runs[1]]))["runs"]
    reasons = {r["reason"] for r in kind["sql_reasons"]["reasons"]}
    assert "different result" in reasons and any(r.startswith("denied: ") for r in reasons)
    assert (made[0] / "specs" / "shop.sqlite").stat().st_size > 0  # the database is still there, untouched


def test_responses_forbid_foreign_scripts(live):
    status, headers, body = live.raw("/")
    assert status == 200 and b'<script src="/static/app.js"' in body
    assert "script-src 'self'" in headers["content-security-policy"] and "default-src 'none'" in headers["content-security-policy"]
    assert b"http://" not in body and b"https://" not in body
    status, _, js = live.raw("/static/app.js")
    assert status == 200 and b"innerHTML" not in js and b"http://" not in js and b"https://" not in js
