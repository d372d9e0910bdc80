"""Constraints on a real engine: the tiny model through vLLM, 64 generations per output kind.

Sampled at temperature 1.0 with a seed per request (seed = position), so the outputs vary and a
run is repeatable. Constrained, every output must be valid for the contract; the same requests
without the constraint must not all be valid - the constraint, not the model, does the work.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import replace
from functools import lru_cache

import pytest

pytestmark = [pytest.mark.vllm,
              pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")]

N = 64
KINDS = {"label": "banking77", "tool_call": "git_assistant", "object": "pii_redaction", "sql": "text2sql"}
SQL_SYNTAX_ERRORS = ("syntax error", "incomplete input", "unrecognized token")


def _requests(contract, constrained: bool):
    base = list(contract.requests(limit=N))
    out = []
    for i in range(N):
        r = base[i % len(base)]
        r = replace(r, repeat=i // len(base), generation={**r.generation, "temperature": 1.0, "seed": i})
        if not constrained:
            r = replace(r, constraint=None, tools=())
        out.append(r)
    return out


def _run(engine, contract, constrained: bool):
    from taskc.backends.vllm_local import VLLMBackend

    backend = VLLMBackend(model="tiny-qwen3", llm=engine, engine_settings=contract.body["engine"])
    requests = _requests(contract, constrained)
    for r in requests:
        assert ("structured_outputs" in backend.render(r)) is constrained
    started = time.perf_counter()
    results = asyncio.run(backend.generate(requests, None))
    wall = time.perf_counter() - started
    assert [r.error for r in results if r.error] == []
    return requests, results, wall


def _valid(contract, raw: str | None) -> bool:
    from taskc.evaluate.validate import parse_output

    return parse_output(contract.body["output"], contract.body["validate_schema"], raw).valid


@lru_cache(maxsize=32)
def _lark(grammar: str):
    import lark

    return lark.Lark(grammar, start="start", parser="earley")


def _grammar_ok(grammar: str, text: str) -> bool:
    import lark

    try:
        _lark(grammar).parse(text)
        return True
    except lark.exceptions.LarkError:
        return False


def _explain(contract, index: int, query: str) -> str | None:
    """SQLite's error preparing `query` on the row's database, read-only; None when it prepares."""
    db = contract.database_of("test", index)
    con = sqlite3.connect(f"file:{db.path}?mode=ro", uri=True)
    try:
        con.execute("EXPLAIN " + query.strip().rstrip(";"))
        return None
    except sqlite3.Error as exc:
        return str(exc)
    finally:
        con.close()


@pytest.mark.parametrize("kind", list(KINDS))
def test_constrained_outputs_are_all_valid(kind, vllm_engine, contracts, record_property):
    contract = contracts(KINDS[kind])
    requests, results, wall = _run(vllm_engine, contract, constrained=True)
    raws = [r.raw for r in results]
    valid = [_valid(contract, raw) for raw in raws]
    finish = [r.extra["finish_reason"] for r in results]
    record_property("valid", f"{sum(valid)}/{N}")
    record_property("wall_s", round(wall, 2))
    print(f"\n{kind}: constrained {sum(valid)}/{N} valid in {wall:.1f}s; e.g. {raws[:3]}")
    bad = [(raw, f) for raw, ok, f in zip(raws, valid, finish) if not ok]
    assert not bad, f"{len(bad)}/{N} constrained outputs invalid, e.g. {bad[:3]}"
    # (an output may end at max_tokens and still be complete: a label spelled in 24 small tokens)
    if kind == "sql":
        # the constraint held: every query is a whole sentence of its database's grammar (not
        # cut off at max_tokens), and SQLite's parser accepts it (name resolution: next test)
        not_in_grammar = [raw for r, raw in zip(requests, raws) if not _grammar_ok(r.constraint.grammar, raw)]
        assert not not_in_grammar, not_in_grammar[:3]
        errors = [_explain(contract, r.index, raw) for r, raw in zip(requests, raws)]
        syntax = [(raw, e) for raw, e in zip(raws, errors) if e and any(s in e for s in SQL_SYNTAX_ERRORS)]
        assert not syntax, syntax[:3]


@pytest.mark.xfail(strict=False, reason=(
    "the SQL grammar (taskc/constraints/sql_grammar.py) admits names SQLite cannot resolve: a "
    "column with no FROM clause and a qualifier alias never declared (SELECT T9.name); a random "
    "model writes those, so EXPLAIN prepares only a few of 64 (2/64 measured)"))
def test_constrained_sql_prepares_in_sqlite(vllm_engine, contracts, record_property):
    contract = contracts("text2sql")
    requests, results, _ = _run(vllm_engine, contract, constrained=True)
    errors = [_explain(contract, r.index, res.raw) for r, res in zip(requests, results)]
    ok = sum(e is None for e in errors)
    record_property("explain_ok", f"{ok}/{N}")
    print(f"\nsql: EXPLAIN prepared {ok}/{N}; errors e.g. {[e for e in errors if e][:4]}")
    assert ok == N


@pytest.mark.parametrize("kind", list(KINDS))
def test_unconstrained_outputs_are_not_all_valid(kind, vllm_engine, contracts, record_property):
    contract = contracts(KINDS[kind])
    requests, results, wall = _run(vllm_engine, contract, constrained=False)
    raws = [r.raw for r in results]
    if kind == "sql":  # parse_output only checks that a query is there; ask SQLite too
        valid = [_valid(contract, raw) and _explain(contract, r.index, raw) is None for r, raw in zip(requests, raws)]
    else:
        valid = [_valid(contract, raw) for raw in raws]
    record_property("valid", f"{sum(valid)}/{N}")
    print(f"\n{kind}: unconstrained {sum(valid)}/{N} valid in {wall:.1f}s; e.g. {raws[:3]}")
    assert sum(valid) < N
