"""Gold outputs of the seed tasks pass their constraints in xgrammar and llguidance (real Qwen
vocabulary); wrong ones are refused with a position."""

from __future__ import annotations

import json

import pytest

from taskc.constraints.ir import Constraint
from taskc.constraints.verify import ALL_ENGINES, VerifyItem, context_at, verify

pytest.importorskip("xgrammar")
pytest.importorskip("llguidance")


def test_text2sql_all_484_gold_queries(text2sql) -> None:
    dbs = text2sql["dbs"]
    items = [VerifyItem("test", i, dbs[r["db_id"]]["constraint"], r["query"].strip()) for i, r in enumerate(text2sql["rows"])]
    report = verify(items)
    assert report.rejected == []
    assert (report.accepted, report.total) == (484, 484) and report.ok
    for name in ("xgrammar", "llguidance"):
        info = report.engines[name]
        assert (info["accepted"], info["total"], info["skipped"]) == (484, 484, None)
        assert info["compile_ms"]["n"] == 10  # one compile per database


def test_text2sql_missing_column_is_refused(text2sql) -> None:
    constraint = text2sql["dbs"]["pets_1"]["constraint"]
    good = "SELECT count(*) FROM student WHERE age  >  20"
    bad = "SELECT count(*) FROM student WHERE salary  >  20"  # pets_1.student has no salary
    report = verify([VerifyItem("test", 0, constraint, good), VerifyItem("test", 1, constraint, bad)])
    assert (report.accepted, report.total) == (1, 2)
    assert {r["engine"] for r in report.rejected} == {"xgrammar", "llguidance"}
    for r in report.rejected:
        assert r["index"] == 1 and bad[r["position"] :].startswith(" salary")
        assert "WHERE\u2038 salary" in r["context"]


def test_banking77_labels(banking) -> None:
    rows = banking["rows"]
    items = [VerifyItem("test", i, banking["constraint"], r["category"]) for i, r in enumerate(rows)]
    report = verify(items)
    assert (report.accepted, report.total) == (3080, 3080), report.rejected[:3]
    assert report.engines["xgrammar"]["compile_ms"]["n"] == 1


def test_banking77_mislabelled_row_is_refused(banking) -> None:
    c = banking["constraint"]
    report = verify([VerifyItem("test", 7, c, "card_arrivals"), VerifyItem("test", 8, c, "lost card")])
    assert report.accepted == 0 and len(report.rejected) == 4
    by_text = {(r["text"], r["engine"]): r["position"] for r in report.rejected}
    for engine in ("xgrammar", "llguidance"):
        assert 0 < by_text[("card_arrivals", engine)] <= len("card_arrivals")
        assert by_text[("lost card", engine)] < len("lost card")


def test_git_assistant_gold_test_and_train(git) -> None:
    items = [VerifyItem(split, i, git["constraint"], text) for split, rows in git["gold"].items() for i, text in rows]
    assert len(items) == 116 + 43
    report = verify(items)
    assert report.rejected == [] and report.accepted == report.total == 159


def test_git_assistant_wrong_parameter_type_is_refused(git) -> None:
    gold = json.loads(git["gold"]["test"][0][1])  # git_switch {"branch": "HEAD~3", "detach": true}
    assert gold["name"] == "git_switch"
    wrong = json.dumps({"name": "git_switch", "parameters": {"branch": "HEAD~3", "detach": "true"}}, separators=(",", ":"))
    unknown = '{"name":"git_switch","parameters":{"branch":"main","force":true}}'
    report = verify([VerifyItem("test", 0, git["constraint"], wrong), VerifyItem("test", 1, git["constraint"], unknown)])
    assert report.accepted == 0
    for r in report.rejected:
        if r["index"] == 0:
            # refused at the token holding the quote where a boolean belongs
            assert wrong.index('"detach"') < r["position"] <= wrong.index('"true"'), r
        else:
            assert r["position"] is not None and r["position"] <= unknown.index("force")


def test_home_control_tools(home) -> None:
    items = [VerifyItem("test", i, home["constraint"], text) for i, text in enumerate(home["gold"])]
    bad = [
        '{"name":"set_thermostat","parameters":{"temperature":95}}',  # above maximum
        '{"name":"toggle_lights","parameters":{"room":"garage","state":"on"}}',  # not in the enum
        '{"name":"toggle_lights","parameters":{"room":"kitchen"}}',  # state is required
        '{"name":"set_thermostat", "parameters":{"temperature":70}}',  # free whitespace
    ]
    items += [VerifyItem("bad", i, home["constraint"], text) for i, text in enumerate(bad)]
    report = verify(items)
    assert report.accepted == len(home["gold"]) == 6
    refused = {(r["index"], r["engine"]) for r in report.rejected}
    assert refused == {(i, e) for i in range(4) for e in ("xgrammar", "llguidance")}
    assert all(r["split"] == "bad" for r in report.rejected)


def test_pii_object_schema(pii) -> None:
    items = [VerifyItem("test", i, pii["constraint"], text) for i, text in enumerate(pii["gold"])]
    wrong = pii["gold"][0].replace('"entity_type":"ORGANIZATION"', '"entity_type":"COMPANY"')
    items.append(VerifyItem("bad", 0, pii["constraint"], wrong))
    report = verify(items)
    assert report.accepted == 100 and report.total == 101
    assert {r["index"] for r in report.rejected} == {0} and all(r["split"] == "bad" for r in report.rejected)


def test_outlines_core_where_it_applies(home, text2sql) -> None:
    pytest.importorskip("outlines_core")
    sql = text2sql["dbs"]["voter_1"]["constraint"]
    items = [VerifyItem("test", i, home["constraint"], t) for i, t in enumerate(home["gold"])]
    items.append(VerifyItem("test", 99, sql, "SELECT count(*) FROM area_code_state"))
    items.append(VerifyItem("test", 100, Constraint("regex", pattern="[0-9]{3}-[0-9]{4}"), "555-0199"))
    report = verify(items, engines=ALL_ENGINES)
    assert report.ok and report.accepted == 8
    oc = report.engines["outlines-core"]
    assert (oc["accepted"], oc["total"]) == (7, 7)
    assert "no context-free grammars" in oc["skipped"]
    assert set(report.to_json()) == {"accepted", "total", "engines", "rejected"}


def test_context_marks_the_position() -> None:
    assert context_at("SELECT x FROM t", 7) == "SELECT \u2038x FROM t"
    long = "a" * 50 + "b" * 50
    assert context_at(long, 50) == "\u2026" + "a" * 30 + "\u2038" + "b" * 30 + "\u2026"
