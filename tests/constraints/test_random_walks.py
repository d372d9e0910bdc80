"""Soundness: random walks through the compiled constraints (uniform over the tokens each mask
allows, real Qwen vocabulary) only ever produce valid outputs.

Every completed walk must parse (label membership / json.loads + jsonschema / Lark) and, for SQL,
be a statement SQLite can prepare without a syntax-level error. Names are not resolved by the
grammar (an alias the query never declared gives "no such column"), so only syntax-level
errors fail the test.
"""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from taskc.constraints.walks import random_walk

jsonschema = pytest.importorskip("jsonschema")
lark = pytest.importorskip("lark")
pytest.importorskip("xgrammar")
pytest.importorskip("llguidance")

ENGINES = ("xgrammar", "llguidance")
WALKS = 200
SYNTAX_ERRORS = re.compile(
    r"syntax error|unrecognized token|incomplete input|wrong number of arguments|no such function|"
    r"not authorized|malformed|unterminated"
)


def _walk(compiled, engine, constraint, cap, seed=0):
    walks = random_walk(compiled(engine, constraint), WALKS, cap, seed=seed)
    assert not walks.not_utf8, walks.not_utf8[:3]
    assert len(walks.texts) + len(walks.truncated) == WALKS
    assert len(walks.texts) >= 0.9 * WALKS, f"only {len(walks.texts)} walks reached EOS"
    return walks


@pytest.mark.parametrize("engine", ENGINES)
def test_label_walks(engine, banking, compiled) -> None:
    walks = _walk(compiled, engine, banking["constraint"], cap=32)
    assert not walks.truncated
    assert set(walks.texts) <= set(banking["labels"])
    assert len(set(walks.texts)) > 40  # uniform token choice reaches most labels


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("task", ["git", "home", "pii"])
def test_json_walks(engine, task, request, compiled) -> None:
    data = request.getfixturevalue(task)
    constraint = data["constraint"]
    schema = constraint.schema
    walks = _walk(compiled, engine, constraint, cap=64)
    for text in walks.texts:
        value = json.loads(text)  # strict: no raw control characters in strings
        jsonschema.validate(value, schema)
        assert not _whitespace_outside_strings(text), text
    if task != "pii":
        names = {json.loads(t)["name"] for t in walks.texts}
        assert len(names) == len(data["tools"])  # every tool is reachable


def _whitespace_outside_strings(text: str) -> bool:
    """True when JSON text has whitespace between tokens (compact JSON has none)."""
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch.isspace():
            return True
    return False


BOUNDED = {
    "type": "object",
    "properties": {"body": {"type": "string", "minLength": 1}, "code": {"type": "string", "minLength": 2, "maxLength": 3}},
    "required": ["body", "code"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("text", "ok"), [
    ('{"body":"line 1\\nsays \\"hi\\"","code":"\u00e9\\""}', True),  # an escape is one character
    ('{"body":"\u00e9","code":"ab"}', True),
    ('{"body":"","code":"ab"}', False),  # minLength 1
    ('{"body":"a","code":"a"}', False),  # minLength 2
    ('{"body":"a","code":"abcd"}', False),  # maxLength 3
    ('{"body":"a\tb","code":"ab"}', False),  # a raw control character is not JSON
    ('{"body":"a\\qb","code":"ab"}', False),  # nor an unknown escape
])
def test_length_bounded_strings_keep_json_escapes(engine, text, ok, compiled) -> None:
    """xgrammar's own lowering of minLength/maxLength refuses every escape and admits raw control
    characters; taskc lowers such strings itself (taskc/constraints/xgrammar_json.py)."""
    from taskc.constraints.ir import Constraint

    assert compiled(engine, Constraint.json(BOUNDED)).accepts(text)[0] is ok


def _byte_token(value: int) -> int:
    """The Qwen token that is exactly this one byte (byte-level BPE has one for each)."""
    from taskc.constraints.engines import token_bytes

    return token_bytes().index(bytes([value]))


@pytest.mark.parametrize("engine", [
    pytest.param("xgrammar", marks=pytest.mark.xfail(
        strict=True, reason="xgrammar 0.2.8 admits UTF-8-encoded surrogates (ED A0-BF xx) in JSON strings")),
    "llguidance",
])
def test_a_utf8_encoded_surrogate_never_ends_a_string(engine, compiled) -> None:
    """ED B3 BB encodes U+DCFB, a lone surrogate: not UTF-8 (a 200-walk bench run through the
    pii schema in xgrammar ended one walk with it). The string must not close after it."""
    from taskc.constraints.ir import Constraint

    schema = {"type": "object", "properties": {"m": {"type": "string"}}, "required": ["m"]}
    m = compiled(engine, Constraint.json(schema)).matcher()
    assert all(m.advance(_byte_token(b)) for b in b'{"m":"')
    closes = all(m.advance(_byte_token(b)) for b in b'\xed\xb3\xbb"}') and m.accept_eos()
    assert not closes


SQL_DBS = ["concert_singer", "car_1", "cre_Doc_Template_Mgt", "flight_2", "pets_1", "voter_1",
           "course_teach", "employee_hire_evaluation", "museum_visit", "poker_player"]  # fmt: skip


@pytest.fixture(scope="module")
def sql_parsers():
    """Lark parsers, built on first use."""
    return {}


# xgrammar's masks on these Lark grammars cost milliseconds (see bench/RESULTS.md), so it walks
# one database; llguidance walks all ten. The grammar is the same text for both.
SQL_CASES = [(db, "llguidance") for db in SQL_DBS] + [("concert_singer", "xgrammar")]


@pytest.mark.parametrize(("db_id", "engine"), SQL_CASES)
def test_sql_walks(engine, db_id, text2sql, compiled, sql_parsers) -> None:
    info = text2sql["dbs"][db_id]
    walks = _walk(compiled, engine, info["constraint"], cap=48)
    con = sqlite3.connect(f"{info['path'].resolve().as_uri()}?mode=ro", uri=True)
    try:
        for query in walks.texts:
            try:
                con.execute("EXPLAIN " + query)
            except sqlite3.Error as exc:
                assert not SYNTAX_ERRORS.search(str(exc)), (str(exc), query)
    finally:
        con.close()
    if db_id not in sql_parsers:
        sql_parsers[db_id] = lark.Lark(info["constraint"].grammar, parser="earley", lexer="dynamic")
    for query in walks.texts[:50]:  # Earley is slow; SQLite above checked all of them
        sql_parsers[db_id].parse(query)


def test_walk_records_mask_times(banking, compiled) -> None:
    walks = random_walk(compiled("xgrammar", banking["constraint"]), 5, 16, seed=1)
    stats = walks.mask_percentiles()
    assert len(walks.mask_us) >= 5 and 0 < stats["p50"] <= stats["p99"] <= stats["max"]
    again = random_walk(compiled("xgrammar", banking["constraint"]), 5, 16, seed=1)
    assert again.texts == walks.texts  # seeded


# The canonical grammar: 2 databases per engine. Every walk must also be accepted by the other
# engine (llguidance's lexer is greedy and never backs off, so a grammar can be narrower in
# llguidance than in xgrammar without any walk of llguidance's own showing it) and by Lark; and
# the grammar admits (almost) only canonical SQL: canonical_sql gives a walk back unchanged,
# except where sqlglot adds parentheses, arguments or alias numbers a random walk left out.
SPECIAL_TOKEN = re.compile(r"<\|(im_start|im_end|endoftext)\|>")
CANONICAL_CASES = [("concert_singer", "llguidance"), ("car_1", "llguidance"), ("flight_2", "xgrammar"),
                   ("pets_1", "xgrammar")]


@pytest.mark.parametrize(("db_id", "engine"), CANONICAL_CASES)
def test_canonical_sql_walks(engine, db_id, text2sql, compiled) -> None:
    from taskc.constraints.canonical_sql import NotCanonical, canonical_sql

    info = text2sql["dbs"][db_id]
    constraint = info["canonical"]
    walks = random_walk(compiled(engine, constraint), WALKS, 48, seed=0)
    # xgrammar 0.2.8 lets UTF-8-encoded surrogates (ED A0-BF xx) into string literals, as into
    # JSON strings (test_a_utf8_encoded_surrogate_never_ends_a_string); nothing else may be wrong
    surrogate = re.compile(rb"\xed[\xa0-\xbf][\x80-\xbf]")
    assert all(surrogate.search(raw) for raw in walks.not_utf8), walks.not_utf8[:3]
    assert engine == "xgrammar" or not walks.not_utf8
    assert len(walks.texts) + len(walks.not_utf8) >= 0.9 * WALKS, f"only {len(walks.texts)} walks reached EOS"
    other = compiled("xgrammar" if engine == "llguidance" else "llguidance", constraint)
    parser = lark.Lark(constraint.grammar, parser="earley", lexer="dynamic")
    con = sqlite3.connect(f"{info['path'].resolve().as_uri()}?mode=ro", uri=True)
    unchanged = 0
    try:
        for query in walks.texts:
            # xgrammar takes <|im_start|> / <|endoftext|> for text inside a string (vLLM drops
            # them from the output text); llguidance never lets a special token be text
            if not SPECIAL_TOKEN.search(query):
                refused = other.check(query)
                assert refused.ok, (query, refused.position, refused.reason)
            try:
                con.execute("EXPLAIN " + query)
            except sqlite3.Error as exc:
                assert not SYNTAX_ERRORS.search(str(exc)), (str(exc), query)
            try:
                unchanged += canonical_sql(query, info["tables"]) == query
            except NotCanonical:
                pass  # an alias used but never declared: SQLite refuses it too
        for query in walks.texts[:50]:
            parser.parse(query)
    finally:
        con.close()
    assert unchanged >= 0.9 * len(walks.texts), f"only {unchanged}/{len(walks.texts)} walks are canonical"
