"""execution_match and its sandbox on the 484 Spider dev queries (on copies of the databases)."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from taskc.metrics import MetricInput, get_metric
from taskc.metrics.sql_exec import clean_sql, clear_caches, has_top_level_order_by, run_gold

SQL = {"kind": "sql", "dialect": "sqlite"}


def inp(pred, gold, db):
    return MetricInput(raw=pred, parsed=pred, reference=gold, output=SQL,
                       database=None if db is None else str(db))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("wrap", [
    lambda q: q,
    lambda q: f"  \n\t{q} ;  \n",
    lambda q: f"{q};",
    lambda q: f"```sql\n{q};\n```",
    lambda q: f"Here is the query:\n```\n{q}\n```\n",
])
def test_every_gold_query_matches_itself(sql_rows, db_copies, wrap):
    m = get_metric("execution_match")({})
    assert len(sql_rows) == 484
    for row in sql_rows:
        db = db_copies / f"{row['db_id']}.sqlite"
        s = m.score(inp(wrap(row["query"]), row["query"], db))
        assert (s.value, s.detail) == (1.0, {}), row["query"]


def test_hostile_predictions_are_refused(private_dbs, hostile_cases, tmp_path):
    m = get_metric("execution_match")({})  # timeout_s 2.0
    before = {p.name: sha(p) for p in private_dbs.iterdir()}
    for db, pred, gold, detail in hostile_cases:
        t = time.thread_time()  # the limit is CPU time: a loaded machine does not change it
        s = m.score(inp(pred, gold, db))
        elapsed = time.thread_time() - t
        assert (s.value, s.detail) == (0.0, detail), pred
        assert elapsed < 2.5, (pred, elapsed)
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "y.db").exists()
    assert {p.name: sha(p) for p in private_dbs.iterdir()} == before
    # the connection still works after all that
    singer = private_dbs / "concert_singer.sqlite"
    assert m.score(inp("SELECT Name FROM singer", "SELECT name FROM singer", singer)).value == 1.0


def test_timeout_option(private_dbs):
    m = get_metric("execution_match")({"timeout_s": 0.3})
    q = "SELECT count(*) FROM flights a, flights b, flights c"
    t = time.thread_time()
    s = m.score(inp(q, "SELECT 1", private_dbs / "flight_2.sqlite"))
    assert s.detail == {"reason": "timeout", "timeout_s": 0.3}
    assert time.thread_time() - t < 0.8
    gold = m.score(inp("SELECT 1", q, private_dbs / "flight_2.sqlite"))
    assert gold.detail == {"reason": "gold failed: timeout after 0.3s"}
    assert m.aggregate([s, gold]) == {"mean": 0.0, "n": 2, "timeouts": 1}


def test_no_row_cap_decides_a_score(db_copies):
    db = db_copies / "flight_2.sqlite"
    m = get_metric("execution_match")({"max_rows": 100})  # accepted, no longer a cap
    assert m.score(inp("SELECT * FROM flights", "SELECT * FROM flights", db)).value == 1.0
    s = m.score(inp("SELECT * FROM flights", "SELECT * FROM airports LIMIT 5", db))
    assert s.detail == {"reason": "different result", "rows": 6, "gold_rows": 5,
                        "ordered": False, "more_rows": True}
    s = m.score(inp("SELECT * FROM airports LIMIT 5", "SELECT * FROM flights", db))
    assert s.detail == {"reason": "different result", "rows": 5, "gold_rows": 1200,
                        "ordered": False}


def test_result_comparison(db_copies):
    m = get_metric("execution_match")({})
    db = db_copies / "concert_singer.sqlite"
    gold_ordered = "SELECT name ,  country ,  age FROM singer ORDER BY age DESC"
    cases = [
        # order matters only when gold has a top-level ORDER BY
        ("SELECT name, country, age FROM singer ORDER BY age ASC", gold_ordered, 0.0),
        ("SELECT name, country, age FROM singer ORDER BY age DESC", gold_ordered, 1.0),
        ("SELECT name FROM singer ORDER BY name DESC", "SELECT name FROM singer", 1.0),
        ("SELECT name FROM singer WHERE Singer_ID IN (SELECT Singer_ID FROM singer ORDER BY age)",
         "SELECT name FROM singer", 1.0),
        # 1 and 1.0 are the same value
        ("SELECT count(*) * 1.0 FROM singer", "SELECT count(*) FROM singer", 1.0),
        ("SELECT count(*) + 0.5 FROM singer", "SELECT count(*) FROM singer", 0.0),
        # column order and duplicates matter
        ("SELECT age, name FROM singer", "SELECT name, age FROM singer", 0.0),
        ("SELECT DISTINCT country FROM singer", "SELECT country FROM singer", 0.0),
        ("SELECT country FROM singer", "SELECT country FROM singer", 1.0),
    ]
    for pred, gold, expected in cases:
        assert m.score(inp(pred, gold, db)).value == expected, pred
    s = m.score(inp("SELECT age, name FROM singer", "SELECT name, age FROM singer", db))
    assert s.detail == {"reason": "different result", "rows": 6, "gold_rows": 6,
                        "ordered": False}


def test_failures_are_reasons(db_copies, tmp_path):
    m = get_metric("execution_match")({})
    db = db_copies / "concert_singer.sqlite"
    assert m.score(MetricInput(None, None, "SELECT 1", SQL, str(db))).detail == {
        "reason": "invalid output"}
    assert m.score(inp("SELECT 1", "SELECT 1", None)).detail == {"reason": "no database"}
    assert m.score(inp(" ; ", "SELECT 1", db)).detail == {"reason": "empty query"}
    assert m.score(inp("SELEC name FROM singer", "SELECT 1", db)).detail == {
        "reason": 'error: near "SELEC": syntax error'}
    assert m.score(inp("SELECT nope FROM singer", "SELECT 1", db)).detail == {
        "reason": "error: no such column: nope"}
    assert m.score(inp("DROP VIEW IF EXISTS v", "SELECT 1", db)).detail == {
        "reason": "error: not a query (returns no columns)"}
    missing = tmp_path / "missing.sqlite"
    reason = m.score(inp("SELECT 1", "SELECT 1", missing)).detail["reason"]
    assert reason.startswith("gold failed: error: cannot open database")
    assert not missing.exists()


def test_gold_results_are_cached(db_copies):
    db = str(db_copies / "pets_1.sqlite")
    first = run_gold(db, "SELECT count(*) FROM Student")
    assert run_gold(db, "SELECT count(*) FROM Student") is first
    clear_caches()
    assert run_gold(db, "SELECT count(*) FROM Student") is not first


def test_scoring_from_other_threads(sql_rows, db_copies):
    m = get_metric("execution_match")({})
    results = []

    def work(rows):
        results.extend(m.score(inp(r["query"], r["query"], db_copies / f"{r['db_id']}.sqlite"))
                       .value for r in rows)

    threads = [threading.Thread(target=work, args=(sql_rows[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [1.0] * 484


def test_clean_sql_and_order_by_detection():
    assert clean_sql("  SELECT 1 ;;\n") == "SELECT 1"
    assert clean_sql("```sql\nSELECT 1;\n```") == "SELECT 1"
    assert clean_sql("```SQLite\nSELECT 1\n```") == "SELECT 1"
    assert has_top_level_order_by("SELECT a FROM t ORDER BY a")
    assert has_top_level_order_by("select a from t union select b from u order  by 1")
    assert not has_top_level_order_by("SELECT a FROM (SELECT a FROM t ORDER BY a)")
    assert not has_top_level_order_by("SELECT 'ORDER BY' FROM t")
    assert not has_top_level_order_by("SELECT rank() OVER (ORDER BY a) FROM t")
    assert not has_top_level_order_by("SELECT a FROM t -- ORDER BY a")
    assert not has_top_level_order_by('SELECT "order" FROM t')
