"""The per-database SQLite grammar: Lark parses all gold queries, schema names are enforced, and
the grammar survives every consumer (llguidance, xgrammar's Lark front end as vLLM calls it)."""

from __future__ import annotations

import sqlite3

import pytest

from taskc.constraints.ir import Constraint
from taskc.constraints.sql_grammar import alias_regex, sql_grammar, sqlite_tables

lark = pytest.importorskip("lark")


@pytest.fixture(scope="module")
def parsers(text2sql):
    """One Earley parser per database."""
    return {db: lark.Lark(info["constraint"].grammar, parser="earley", lexer="dynamic") for db, info in text2sql["dbs"].items()}


def test_sqlite_tables_reads_schema_order(text2sql) -> None:
    tables = text2sql["dbs"]["concert_singer"]["tables"]
    assert list(tables) == ["stadium", "singer", "concert", "singer_in_concert"]
    assert tables["singer"][:3] == ["Singer_ID", "Name", "Country"]


def test_sqlite_tables_opens_read_only(tmp_path) -> None:
    path = tmp_path / "t.sqlite"
    con = sqlite3.connect(path)
    con.execute('CREATE TABLE "my table" ("first name" TEXT, "order" INT, plain REAL)')
    con.commit()
    con.close()
    assert sqlite_tables(path) == {"my table": ["first name", "order", "plain"]}
    with pytest.raises(FileNotFoundError):
        sqlite_tables(tmp_path / "missing.sqlite")


def test_lark_parses_every_gold_query(text2sql, parsers) -> None:
    failures = []
    for row in text2sql["rows"]:
        try:
            parsers[row["db_id"]].parse(row["query"])
        except lark.exceptions.LarkError as exc:
            failures.append((row["query"], str(exc)[:200]))
    assert not failures, failures[:5]
    assert len(text2sql["rows"]) == 484


def test_unknown_names_are_rejected(text2sql, parsers, compiled) -> None:
    info = text2sql["dbs"]["concert_singer"]
    bad = [
        "SELECT nationality FROM singer",  # no such column anywhere in the db
        "SELECT T1.nationality FROM singer AS T1",
        "SELECT name FROM singers",  # no such table
        "SELECT name FROM singer WHERE age  >  (SELECT avg(height) FROM singer)",
    ]
    for query in bad:
        with pytest.raises(lark.exceptions.LarkError):
            parsers["concert_singer"].parse(query)
        for engine in ("xgrammar", "llguidance"):
            ok, position = compiled(engine, info["constraint"]).accepts(query)
            assert not ok and position is not None and position < len(query), (engine, query)
    ok, position = compiled("xgrammar", info["constraint"]).accepts(bad[0])
    assert bad[0][position:].startswith(" nationality")  # refused at the token naming it


def test_spelling_quoting_aliases_and_syntax(text2sql, parsers, compiled) -> None:
    good = [
        "select NAME, Country from SINGER where AGE >= 30 and not (country = 'France');",
        "SELECT s.name FROM singer s WHERE s.age BETWEEN 20 AND 30 ORDER BY s.age DESC NULLS LAST LIMIT 5 OFFSET 2",
        "SELECT T1.name, count(DISTINCT T2.concert_ID) FROM singer AS T1 LEFT JOIN singer_in_concert AS T2 "
        "USING (Singer_ID) GROUP BY T1.name HAVING count(*) > 1",
        "SELECT name FROM singer WHERE singer_id IN (SELECT singer_id FROM singer_in_concert) "
        "UNION ALL SELECT name FROM stadium INTERSECT SELECT \"y\"",
        "SELECT CASE WHEN age < 30 THEN 'young' ELSE 'old' END, CAST(age AS REAL) / 2, "
        "round(avg(age), 1), coalesce(name, 'O''Brien'), substr(name, 1, 3) FROM singer",
        "SELECT * FROM singer WHERE name LIKE '%a%' AND country IS NOT NULL AND age != 3 AND age <> 4",
        "SELECT strftime('%Y', 'now'), julianday('now') - julianday('2020-01-01'), length(name) FROM singer",
        "SELECT x.name FROM (SELECT name FROM singer) AS x",
        "SELECT singer.* FROM singer, concert CROSS JOIN stadium WHERE NOT EXISTS (SELECT 1 FROM concert)",
        "SELECT name\nFROM singer\nWHERE age > -1.5 AND (age < 3 OR name = 'x')",
        "SELECT * FROM singer WHERE age = (SELECT max(age) FROM singer) AND name IN ('a', 'b', \"c\")",
    ]
    constraint = text2sql["dbs"]["concert_singer"]["constraint"]
    for query in good:
        parsers["concert_singer"].parse(query)
        for engine in ("xgrammar", "llguidance"):
            assert compiled(engine, constraint).accepts(query) == (True, None), (engine, query)
    refused = [
        "SELECT name FROM singer AS on",  # alias that is a keyword
        "SELECTname FROM singer",  # words must be separated
        "SELECT name FROM singer     WHERE age = 1",  # whitespace runs are bounded
        "SELECT name FROM singer;;",
        "SELECT lower(name, 1) FROM singer",  # arity
        "SELECT age --1 FROM singer",  # "--" would start a comment
        "SELECT " + ", ".join(["name"] * 7) + " FROM singer",  # result columns are bounded
        "SELECT name FROM singer WHERE age IN (SELECT age FROM singer WHERE age IN (SELECT 1))",
    ]
    for query in refused:
        with pytest.raises(lark.exceptions.LarkError):
            parsers["concert_singer"].parse(query)
        assert not compiled("xgrammar", constraint).accepts(query)[0], query


def test_names_needing_quotes(compiled) -> None:
    grammar = sql_grammar({"my table": ["first name", "order", "plain"]})
    parser = lark.Lark(grammar, parser="earley", lexer="dynamic")
    query = 'SELECT "first name", [order], plain FROM [my table] WHERE "ORDER" > 1'
    parser.parse(query)
    for bad in ("SELECT order FROM [my table]", "SELECT plain FROM my table"):
        with pytest.raises(lark.exceptions.LarkError):
            parser.parse(bad)
    c = Constraint("grammar", grammar=grammar)
    assert compiled("xgrammar", c).accepts(query) == (True, None)
    assert compiled("llguidance", c).accepts(query) == (True, None)


def test_alias_regex_excludes_keywords() -> None:
    import re

    alias = re.compile(f"(?:{alias_regex()})\\Z")
    assert all(alias.match(a) for a in ("T1", "t2", "s", "sc1", "emp12", "a"))
    assert not any(alias.match(a) for a in ("on", "as", "AS", "where", "T123", "_t", "1t"))


def test_grammar_survives_vllm_and_xgrammar_front_ends(text2sql) -> None:
    """vLLM sends a grammar to xgrammar's Lark front end only if it looks like Lark (no ``::=``);
    its request validation calls ``xgrammar.Grammar.from_lark``."""
    xgr = pytest.importorskip("xgrammar")
    for info in text2sql["dbs"].values():
        grammar = info["constraint"].grammar
        assert "::=" not in grammar and "\\d" not in grammar
        xgr.Grammar.from_lark(grammar)
    try:
        from vllm.v1.structured_output.utils import grammar_is_likely_lark
    except ImportError:
        pytest.skip("vllm not installed")
    assert all(grammar_is_likely_lark(info["constraint"].grammar) for info in text2sql["dbs"].values())


def test_grammar_is_deterministic(text2sql) -> None:
    info = text2sql["dbs"]["car_1"]
    assert sql_grammar(info["tables"]) == sql_grammar(sqlite_tables(info["path"])) == info["constraint"].grammar
    with pytest.raises(ValueError):
        sql_grammar({})


def test_max_string_bounds_literals(text2sql, compiled) -> None:
    """For random-weight models: with max_string the language is finite (all gold still fits)."""
    tables = text2sql["dbs"]["concert_singer"]["tables"]
    c = Constraint("grammar", grammar=sql_grammar(tables, max_string=64))
    parser = lark.Lark(c.grammar, parser="earley", lexer="dynamic")
    fits = "SELECT name FROM singer WHERE name = '" + "x" * 62 + "''' OR name = \"" + "y" * 64 + '"'
    too_long = "SELECT name FROM singer WHERE name = '" + "x" * 65 + "'"
    parser.parse(fits)
    with pytest.raises(lark.exceptions.LarkError):
        parser.parse(too_long)
    for engine in ("xgrammar", "llguidance"):
        assert compiled(engine, c).accepts(fits) == (True, None)
        assert not compiled(engine, c).accepts(too_long)[0]
    gold = [r["query"] for r in text2sql["rows"] if r["db_id"] == "concert_singer"]
    assert all(compiled("llguidance", c).accepts(q)[0] for q in gold)
