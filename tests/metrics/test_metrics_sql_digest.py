"""Result fingerprints: the comparison rule kept exactly, results of any size in bounded memory."""

from __future__ import annotations

import random
import sqlite3
import tracemalloc

from taskc.metrics import MetricInput, get_metric
from taskc.metrics.sql_digest import digest_rows, normalize_rows, results_match
from taskc.metrics.sql_exec import run_gold

SQL = {"kind": "sql", "dialect": "sqlite"}
MILLION = 1_000_000
VALUES = [None, 0, 1, 2, -1, 1.0, 2.0, -0.0, 0.5, 2.00000000001, 0.1 + 0.2, 0.3, 1e300,
          float("inf"), 12345678901234567890, "1", "a", "", "a\nb", "é", b"1", b"", "None", "(1,)"]


def inp(pred, gold, db):
    return MetricInput(raw=pred, parsed=pred, reference=gold, output=SQL, database=str(db))


def same(a: list[tuple], b: list[tuple], ordered: bool) -> bool:
    return digest_rows(a, ordered) == digest_rows(b, ordered)


def test_fingerprints_decide_exactly_as_the_row_comparison():
    rng = random.Random(0)
    checked = {True: [0, 0], False: [0, 0]}
    for _ in range(4000):
        width = rng.randint(1, 3)
        a = [tuple(rng.choice(VALUES) for _ in range(width)) for _ in range(rng.randint(0, 5))]
        kind = rng.randrange(4)
        if kind == 0:  # a permutation
            b = rng.sample(a, len(a))
        elif kind == 1:  # one value replaced
            b = list(a)
            if b:
                i = rng.randrange(len(b))
                row = list(b[i])
                row[rng.randrange(width)] = rng.choice(VALUES)
                b[i] = tuple(row)
        elif kind == 2:  # a row duplicated in place of another
            b = list(a)
            if len(b) > 1:
                b[0] = b[1]
        else:
            b = [tuple(rng.choice(VALUES) for _ in range(width)) for _ in range(len(a))]
        for ordered in (True, False):
            expected = results_match(normalize_rows(a), normalize_rows(b), ordered)
            assert same(a, b, ordered) == expected, (a, b, ordered)
            checked[ordered][expected] += 1
    assert min(min(v) for v in checked.values()) > 200  # both outcomes seen in both modes


def test_fingerprint_rules():
    assert same([(1,), (2.0,)], [(1.0,), (2,)], True)  # integral floats equal ints
    assert same([(2.00000000001,)], [(2,)], False)  # floats at 10 significant digits
    assert same([(0.1 + 0.2,)], [(0.3,)], False)
    assert not same([(0.5,)], [(0.50001,)], False)
    assert not same([("1",)], [(1,)], False) and not same([(b"1",)], [("1",)], False)
    assert not same([(None,)], [("None",)], False) and not same([(None,)], [(0,)], False)
    assert not same([("a", "b")], [("b", "a")], False)  # column order matters
    assert same([(1,), (2,)], [(2,), (1,)], False) and not same([(1,), (2,)], [(2,), (1,)], True)
    # multiplicities count: no cancellation the way an XOR of row hashes would allow
    assert not same([(1,), (1,)], [(2,), (2,)], False)
    assert not same([(1,), (1,), (3,)], [(3,), (2,), (2,)], False)
    assert not same([(1,), (1,), (2,)], [(1,), (2,), (2,)], False)
    assert not same([(1,)], [(1,), (1,)], False)
    assert same([(1,), (1,), (2,)], [(2,), (1,), (1,)], False)


def test_a_million_rows_match_themselves_and_one_changed_row_does_not(million_db):
    m = get_metric("execution_match")({})  # default options: no cap, default time limit
    gold = "SELECT id, name FROM t"
    assert m.score(inp(gold + " ;", gold, million_db)).value == 1.0
    assert run_gold(str(million_db), gold).count == MILLION
    one_off = "SELECT id, CASE WHEN id = 765432 THEN 'x' ELSE name END FROM t"
    assert m.score(inp(one_off, gold, million_db)).detail == {
        "reason": "different result", "rows": MILLION, "gold_rows": MILLION, "ordered": False}


def test_a_million_rows_in_order(million_db):
    m = get_metric("execution_match")({})
    gold = "SELECT id FROM t ORDER BY id DESC"
    assert m.score(inp(gold, gold, million_db)).value == 1.0
    swapped = ("SELECT id FROM t ORDER BY CASE id WHEN 500000 THEN 499999 WHEN 499999 "
               "THEN 500000 ELSE id END DESC")
    s = m.score(inp(swapped, gold, million_db))
    assert s.detail == {"reason": "different result", "rows": MILLION, "gold_rows": MILLION,
                        "ordered": True}


def test_a_million_rows_with_duplicates(million_db):
    m = get_metric("execution_match")({})
    gold = "SELECT grp FROM t"  # each value 1,000 times
    assert m.score(inp("SELECT id % 1000 FROM t", gold, million_db)).value == 1.0
    # value 1 now appears 999 times and value 2 1001 times
    moved = "SELECT CASE WHEN id = 1 THEN grp + 1 ELSE grp END FROM t"
    assert m.score(inp(moved, gold, million_db)).value == 0.0


def test_memory_stays_bounded(million_db):
    gold = "SELECT id, name, grp FROM t WHERE id <= 30000"
    tracemalloc.start()
    try:
        assert run_gold(str(million_db), gold).count == 30_000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    con = sqlite3.connect(million_db)
    tracemalloc.start()
    try:
        held = con.execute(gold).fetchall()  # what holding the rows would take
        _, held_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        con.close()
    assert len(held) == 30_000
    # streaming keeps about one chunk (~1 MB of row text), whatever the row count
    assert peak < 2 << 20 < held_peak, (peak, held_peak)
