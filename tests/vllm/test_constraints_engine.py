"""Constraints on a real engine: the tiny model through vLLM, 64 generations per output kind.

Each kind runs under the structured-output backend its contract chose (`engine.
structured_outputs_config.backend`, `taskc.constraints.lower.ENGINE_BACKENDS`): xgrammar kinds
on the session's engine (built with xgrammar), the others on an engine of their own backend,
built here after the session engine is released (one engine at a time). Sampled at temperature
1.0 with a seed per request (seed = position), so the outputs vary and a run is repeatable.
Constrained, every output must be valid for the contract; the same requests without the
constraint must not all be valid - the constraint, not the model, does the work.
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
SESSION_BACKEND = "xgrammar"  # what tests/vllm/conftest.py builds (taskc.testing.vllm_engine_kwargs)


def _chosen(kind: str) -> str:
    from taskc.constraints.lower import ENGINE_BACKENDS

    return ENGINE_BACKENDS[kind]


ON_SESSION_ENGINE = [k for k in KINDS if _chosen(k) == SESSION_BACKEND]
ON_OWN_ENGINE = [k for k in KINDS if _chosen(k) != SESSION_BACKEND]


@pytest.fixture(scope="module")
def own_engines(vllm_resources):
    """`get(backend)`: an engine built with that structured-output backend (one at a time; the
    session engine is released first). Shut down when the module's tests are done."""
    import os

    from taskc.backends.vllm_local import shutdown_engine
    from taskc.testing import vllm_engine_kwargs

    held: dict[str, object] = {}
    saved = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")

    def get(backend: str):
        if backend not in held:
            for other in list(held):
                shutdown_engine(held.pop(other))
            vllm_resources.release_engine()
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
            from vllm import LLM

            config = {"backend": backend, "disable_any_whitespace": True}
            held[backend] = LLM(**vllm_engine_kwargs(vllm_resources.model_dir, distributed_executor_backend="uni",
                                                     structured_outputs_config=config))
        return held[backend]

    yield get
    for engine in held.values():
        shutdown_engine(engine)
    if saved is None:
        os.environ.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)
    else:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = saved


#: SQL string literals bounded for the random model (it opens a '...' string and never closes it:
#: its planted preference is for `"` tokens, which are text there). A query of the bounded grammar
#: is a query of the contract's grammar, which the test checks with Lark.
SQL_STRING_BOUND = 16


@lru_cache(maxsize=32)
def _bounded_sql(path: str, form: str):
    from taskc.constraints.ir import Constraint
    from taskc.constraints.sql_grammar import sql_grammar, sqlite_tables

    return Constraint("grammar", grammar=sql_grammar(sqlite_tables(path), max_string=SQL_STRING_BOUND, form=form))


def _requests(contract, constrained: bool):
    base = list(contract.requests(limit=N))
    out = []
    for i in range(N):
        r = base[i % len(base)]
        r = replace(r, repeat=i // len(base), generation=replace(r.generation, temperature=1.0, seed=i))
        if not constrained:
            r = replace(r, constraint=None, tools=())
        elif contract.output.kind == "sql":
            form = contract.body["output"].get("grammar", "permissive")
            r = replace(r, constraint=_bounded_sql(str(contract.database_of("test", r.index).path), form))
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


def _check_constrained(kind, engine, contracts, record_property):
    from taskc.backends.vllm_local import engine_backend

    contract = contracts(KINDS[kind])
    chosen = contract.body["engine"]["structured_outputs_config"]["backend"]
    assert chosen == _chosen(kind) and engine_backend(engine) == chosen
    record_property("backend", chosen)
    requests, results, wall = _run(engine, contract, constrained=True)
    raws = [r.raw for r in results]
    valid = [_valid(contract, raw) for raw in raws]
    finish = [r.extra["finish_reason"] for r in results]
    record_property("valid", f"{sum(valid)}/{N}")
    record_property("wall_s", round(wall, 2))
    print(f"\n{kind} ({chosen}): constrained {sum(valid)}/{N} valid in {wall:.1f}s; e.g. {raws[:3]}")
    bad = [(raw, f) for raw, ok, f in zip(raws, valid, finish) if not ok]
    assert not bad, f"{len(bad)}/{N} constrained outputs invalid, e.g. {bad[:3]}"
    # (an output may end at max_tokens and still be complete: a label spelled in 24 small tokens)
    if kind == "sql":
        # the constraint held: every query is a whole sentence of its database's grammar (not
        # cut off at max_tokens), and SQLite's parser accepts it (name resolution: next test)
        grammar_of = {i: contract.constraint_for("test", i).grammar for i in {r.index for r in requests}}
        not_in_grammar = [raw for r, raw in zip(requests, raws) if not _grammar_ok(grammar_of[r.index], raw)]
        assert not not_in_grammar, not_in_grammar[:3]
        errors = [_explain(contract, r.index, raw) for r, raw in zip(requests, raws)]
        syntax = [(raw, e) for raw, e in zip(raws, errors) if e and any(s in e for s in SQL_SYNTAX_ERRORS)]
        assert not syntax, syntax[:3]


@pytest.mark.parametrize("kind", ON_SESSION_ENGINE)
def test_constrained_outputs_are_all_valid(kind, vllm_engine, contracts, record_property):
    _check_constrained(kind, vllm_engine, contracts, record_property)


@pytest.mark.parametrize("kind", ON_OWN_ENGINE)
def test_constrained_outputs_are_all_valid_on_the_chosen_backend(kind, own_engines, contracts, record_property):
    _check_constrained(kind, own_engines(_chosen(kind)), contracts, record_property)


@pytest.mark.xfail(strict=True, reason=(
    "the SQL grammar (taskc/constraints/sql_grammar.py) admits names SQLite cannot resolve: a "
    "column with no FROM clause and a qualifier alias never declared (SELECT T9.name); a random "
    "model writes those, so EXPLAIN prepares only a few of 64 (2/64 measured). Strict: when the "
    "grammar scopes names, this turns red and the mark goes"))
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
