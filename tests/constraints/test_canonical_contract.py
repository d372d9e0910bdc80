"""The canonical SQL form in the compiled contract: gold answers (train.jsonl, verify, few-shot)
in canonical SQL, the canonical grammar per database, scoring gold untouched; the permissive
grammar as a spec option, with its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskc.compiler.build import compile_spec
from taskc.constraints.canonical_sql import canonical_sql
from taskc.constraints.lower import ENGINE_BACKENDS
from taskc.constraints.sql_grammar import sql_grammar, sqlite_tables
from taskc.errors import SpecError

from tests.shared_data import spec_examples_workspace

pytest.importorskip("sqlglot")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """The spec examples, plus text2sql variants: with a train split (the first 40 dev rows) and
    with ``grammar: permissive``."""
    root = spec_examples_workspace(tmp_path_factory.mktemp("canon-contract"))
    spec = (root / "specs" / "text2sql.yaml").read_text()
    dev = (root / "examples" / "text2sql" / "dev.jsonl").read_text().splitlines()
    (root / "examples" / "text2sql" / "train40.jsonl").write_text("\n".join(dev[:40]) + "\n")
    train = spec.replace("data:\n  test: {file: ../examples/text2sql/dev.jsonl, columns: {answer: query}}",
                         "data:\n  test: {file: ../examples/text2sql/dev.jsonl, columns: {answer: query}}\n"
                         "  train: {file: ../examples/text2sql/train40.jsonl, columns: {answer: query}}")
    assert train != spec
    (root / "specs" / "text2sql_train.yaml").write_text(train.replace("name: text2sql", "name: text2sql-train"))
    permissive = spec.replace("  dialect: sqlite\n", "  dialect: sqlite\n  grammar: permissive\n")
    assert permissive != spec
    (root / "specs" / "text2sql_permissive.yaml").write_text(permissive)
    return root


def _tables(contract, split: str, index: int):
    return sqlite_tables(contract.database_of(split, index).path)


def test_gold_answers_are_canonical_and_scoring_gold_is_as_written(workspace) -> None:
    contract = compile_spec(workspace / "specs" / "text2sql.yaml")
    assert contract.body["output"]["grammar"] == "canonical"
    assert contract.body["engine"] == {"structured_outputs_config": {"backend": ENGINE_BACKENDS["sql"],
                                                                     "disable_any_whitespace": True}}
    rows = [json.loads(line) for line in (workspace / "examples/text2sql/dev.jsonl").read_text().splitlines()]
    assert contract.analysis["sql_canonical"] == {"rows_canonical": 484, "rows_as_written": 0, "examples": []}
    for i in (0, 2, 100, 483):
        assert contract.gold["test"][i] == rows[i]["query"]  # execution_match compares against this
        assert contract.gold_text("test", i) == canonical_sql(rows[i]["query"], _tables(contract, "test", i))
    assert contract.gold_text("test", 2) == "SELECT Name, Country, Age FROM singer ORDER BY Age DESC"
    for key, db in contract.databases.items():
        assert contract.constraints[key].grammar == sql_grammar(sqlite_tables(db.path), form="canonical")
        assert contract.body["constraint"]["per_database"][key] == contract.constraints[key].grammar


def test_taskc_verify_accepts_every_canonical_gold_query(workspace) -> None:
    pytest.importorskip("xgrammar")
    pytest.importorskip("llguidance")
    from taskc.constraints.cli import verify_items
    from taskc.constraints.verify import verify

    report = verify(verify_items(compile_spec(workspace / "specs" / "text2sql.yaml")))
    assert report.rejected == []
    assert (report.accepted, report.total) == (484, 484)
    assert {name: (info["accepted"], info["total"]) for name, info in report.engines.items()} == {
        "xgrammar": (484, 484), "llguidance": (484, 484)}


def test_train_jsonl_and_few_shot_use_the_canonical_form(workspace) -> None:
    from taskc.compiler.artifacts import train_jsonl

    contract = compile_spec(workspace / "specs" / "text2sql_train.yaml")
    lines = train_jsonl(contract, {"taskc": "test", "contract_id": contract.id}).splitlines()
    assert len(lines) == 40
    for i, line in enumerate(lines):
        answer = json.loads(line)["messages"][-1]
        assert answer["role"] == "assistant"
        assert answer["content"] == canonical_sql(contract.gold["train"][i], _tables(contract, "train", i))
    assert json.loads(lines[2])["messages"][-1]["content"] == "SELECT Name, Country, Age FROM singer ORDER BY Age DESC"


def test_permissive_keeps_gold_as_written_and_the_permissive_grammar(workspace) -> None:
    contract = compile_spec(workspace / "specs" / "text2sql_permissive.yaml")
    assert contract.body["output"]["grammar"] == "permissive"
    assert "sql_canonical" not in contract.analysis
    assert contract.gold_text("test", 2) == "SELECT name ,  country ,  age FROM singer ORDER BY age DESC"
    key = contract.row_databases["test"][0]
    assert contract.constraints[key].grammar == sql_grammar(sqlite_tables(contract.databases[key].path))
    canonical = compile_spec(workspace / "specs" / "text2sql.yaml")
    assert canonical.id != contract.id  # the option is part of the contract


def test_an_unknown_grammar_option_is_a_located_error(workspace) -> None:
    path = workspace / "specs" / "text2sql_bad.yaml"
    path.write_text((workspace / "specs" / "text2sql.yaml").read_text()
                    .replace("  dialect: sqlite\n", "  dialect: sqlite\n  grammar: lenient\n"))
    with pytest.raises(SpecError) as err:
        compile_spec(path)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "grammar: lenient" in text)
    assert [d.format() for d in err.value.diagnostics] == [f"{path}:{line}:12: error: 'grammar' should be 'canonical' or 'permissive'"]  # and no knock-on {{ schema }} error
