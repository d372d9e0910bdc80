"""test_suite_match and the generated database variants."""

from __future__ import annotations

import random
import sqlite3

import pytest

from taskc.metrics import MetricInput, get_metric
from taskc.metrics.sql_variants import (MAX_SAMPLES, build_variant, read_schema,
                                        variant_paths)

SQL = {"kind": "sql", "dialect": "sqlite"}
DBS = ("car_1", "concert_singer", "course_teach", "cre_Doc_Template_Mgt",
       "employee_hire_evaluation", "flight_2", "museum_visit", "pets_1", "poker_player", "voter_1")


def inp(pred, gold, db):
    return MetricInput(raw=pred, parsed=pred, reference=gold, output=SQL, database=str(db))


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def test_every_gold_query_matches_itself(sql_rows, db_copies):
    m = get_metric("test_suite_match")({})
    for row in sql_rows:
        s = m.score(inp(row["query"] + " ;", row["query"], db_copies / f"{row['db_id']}.sqlite"))
        assert s.value == 1.0, (row["query"], s.detail)


def test_tells_apart_queries_equal_only_on_the_real_data(db_copies):
    db = db_copies / "concert_singer.sqlite"
    real = sqlite3.connect(db)
    ages = [a for (a,) in real.execute("SELECT age FROM singer")]
    names = [n for (n,) in real.execute("SELECT name FROM singer WHERE age > 20")]
    real.close()
    assert min(ages) > 20  # so dropping the filter changes nothing on this data
    gold = "SELECT name FROM singer WHERE age > 20"
    listed = "SELECT name FROM singer WHERE name IN ({})".format(
        ", ".join("'" + n.replace("'", "''") + "'" for n in names))
    em = get_metric("execution_match")({})
    ts = get_metric("test_suite_match")({"variants": 3, "seed": 0})
    for pred in (listed, "SELECT name FROM singer"):
        assert em.score(inp(pred, gold, db)).value == 1.0
        s = ts.score(inp(pred, gold, db))
        assert s.value == 0.0
        assert s.detail["reason"].startswith("variant ")
    # equivalent in general (integer ages) stays correct
    assert ts.score(inp("SELECT name FROM singer WHERE age >= 21", gold, db)).value == 1.0
    assert ts.score(inp("SELECT name FROM singer WHERE NOT age <= 20", gold, db)).value == 1.0


def test_real_database_is_checked_first(db_copies):
    ts = get_metric("test_suite_match")({})
    db = db_copies / "concert_singer.sqlite"
    s = ts.score(inp("SELECT name FROM stadium", "SELECT name FROM singer", db))
    assert s.value == 0.0 and s.detail["reason"] == "different result"
    assert ts.score(inp("DELETE FROM singer", "SELECT 1", db)).detail == {
        "reason": "denied: DELETE singer"}


def _dump(path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def test_variants_are_deterministic(db_copies, tmp_path):
    src = str(db_copies / "car_1.sqlite")
    build_variant(src, str(tmp_path / "a.sqlite"), random.Random("s1"))
    build_variant(src, str(tmp_path / "b.sqlite"), random.Random("s1"))
    build_variant(src, str(tmp_path / "c.sqlite"), random.Random("s2"))
    assert _dump(tmp_path / "a.sqlite") == _dump(tmp_path / "b.sqlite")
    assert _dump(tmp_path / "a.sqlite") != _dump(tmp_path / "c.sqlite")
    paths = variant_paths(src, 2, seed=5, cache_dir=str(tmp_path / "cache"))
    again = variant_paths(src, 2, seed=5, cache_dir=str(tmp_path / "cache2"))
    assert [_dump(p) for p in paths] == [_dump(p) for p in again]
    assert _dump(paths[0]) != _dump(paths[1])


@pytest.mark.parametrize("db_id", DBS)
def test_variants_respect_schema_keys_and_types(db_copies, tmp_path, db_id):
    src = db_copies / f"{db_id}.sqlite"
    real = sqlite3.connect(src)
    tables = [r[0] for r in real.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
    real_ddl = sorted(r[0] for r in real.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"))
    for path in variant_paths(str(src), 3, seed=0, cache_dir=str(tmp_path)):
        var = sqlite3.connect(path)
        assert sorted(r[0] for r in var.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")) == real_ddl
        assert var.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        total = 0
        for t in tables:
            info = var.execute(f"PRAGMA table_info({q(t)})").fetchall()
            n = var.execute(f"SELECT count(*) FROM {q(t)}").fetchone()[0]
            total += n
            pk = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
            if pk:
                cols = ", ".join(map(q, pk))
                distinct = var.execute(
                    f"SELECT count(*) FROM (SELECT DISTINCT {cols} FROM {q(t)})").fetchone()[0]
                assert distinct == n, (t, pk)
                nulls = " OR ".join(f"{q(c)} IS NULL" for c in pk)
                assert var.execute(f"SELECT count(*) FROM {q(t)} WHERE {nulls}").fetchone()[0] == 0
            for _cid, col, ctype, *_ in info:
                if "INT" in (ctype or "").upper():
                    kinds = {k for (k,) in var.execute(
                        f"SELECT DISTINCT typeof({q(col)}) FROM {q(t)}")}
                    assert kinds <= {"integer", "null"}, (t, col, kinds)
            for fk in var.execute(f"PRAGMA foreign_key_list({q(t)})").fetchall():
                parent, frm, to = fk[2], fk[3], fk[4]
                if to is None:
                    to = next(r[1] for r in var.execute(f"PRAGMA table_info({q(parent)})")
                              if r[5])
                orphans = var.execute(
                    f"SELECT count(*) FROM {q(t)} WHERE {q(frm)} IS NOT NULL AND {q(frm)} "
                    f"NOT IN (SELECT {q(to)} FROM {q(parent)})").fetchone()[0]
                assert orphans == 0, (t, frm, parent, to)
        assert total > 0
        var.close()
    real.close()


def test_variants_sample_real_values(db_copies, tmp_path):
    src = db_copies / "concert_singer.sqlite"
    real = {n for (n,) in sqlite3.connect(src).execute("SELECT name FROM singer")}
    hits = 0
    for path in variant_paths(str(src), 3, seed=0, cache_dir=str(tmp_path)):
        names = {n for (n,) in sqlite3.connect(path).execute("SELECT name FROM singer")}
        hits += len(names & real)
    assert hits > 0


def test_a_large_database_is_sampled_in_bounded_memory(million_db):
    tables, _, _ = read_schema(str(million_db))
    samples = {c.name: c.samples for c in tables[0].columns}
    assert len(samples["id"]) == len(samples["name"]) == MAX_SAMPLES  # of 1,000,000
    assert samples["id"][:3] == (1, 101, 201) and samples["id"][-1] == 999_901
    assert len(samples["grp"]) == 1000  # every value of a small column
    ts = get_metric("test_suite_match")({"variants": 2})
    gold = "SELECT id, name FROM t WHERE grp = 7"
    assert ts.score(inp(gold, gold, million_db)).value == 1.0
    s = ts.score(inp("SELECT id, name FROM t WHERE grp = 7 AND id != 7", gold, million_db))
    assert s.detail == {"reason": "different result", "rows": 999, "gold_rows": 1000,
                        "ordered": False}
