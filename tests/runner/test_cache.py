"""ResultCache: keys, round trip, bulk reads, batched commits visible to other processes."""

import sqlite3
from contextlib import closing

from taskc.runner.cache import ResultCache, cache_key, decode_result, encode_result
from taskc.runner.types import Result, Usage

RESULT = Result(4, 1, raw='{"a":1}', usage=Usage(10, 2, 8), latency_s=0.25, attempts=3, extra={"finish_reason": "stop"})


def test_key_is_canonical_and_covers_every_part():
    payload = {"model": "m", "messages": [{"role": "user", "content": "é"}], "temperature": 0}
    reordered = {"temperature": 0, "messages": [{"content": "é", "role": "user"}], "model": "m"}
    key = cache_key("c1", "openai", "m", payload, 0)
    assert key == cache_key("c1", "openai", "m", reordered, 0) and len(key) == 64
    variants = [("c2", "openai", "m", payload, 0), ("c1", "anthropic", "m", payload, 0),
                ("c1", "openai", "m2", payload, 0), ("c1", "openai", "m", {**payload, "seed": 1}, 0),
                ("c1", "openai", "m", payload, 1)]
    assert len({cache_key(*v) for v in variants} | {key}) == 6


def test_round_trip_places_result_at_the_asking_row():
    text = encode_result(RESULT)
    assert '"index"' not in text and '"cached"' not in text
    back = decode_result(text, 9, 2)
    assert back == Result(9, 2, raw='{"a":1}', usage=Usage(10, 2, 8), latency_s=0.25, attempts=3, cached=True,
                          extra={"finish_reason": "stop"})


def test_put_get_many_and_errors_skipped(tmp_path):
    with ResultCache(tmp_path / "c.sqlite") as cache:
        cache.put("k1", RESULT)
        cache.put("k2", Result(0, 0, raw=None, error="HTTP 500"))
        assert cache.get("k1", 4, 1) == Result(4, 1, raw='{"a":1}', usage=Usage(10, 2, 8), latency_s=0.25, attempts=3,
                                               cached=True, extra={"finish_reason": "stop"})
        assert cache.get("k2") is None and cache.get("nope") is None
        for i in range(1200):
            cache.put(f"bulk{i}", RESULT)
        found = cache.get_many([f"bulk{i}" for i in range(0, 1300, 2)] + ["k1"])
        assert len(found) == 601 and len(cache) == 1201


def test_commits_are_batched_and_visible_to_another_process(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = ResultCache(path, flush_interval_s=60.0, max_pending=3)

    def seen() -> int:
        with closing(sqlite3.connect(path)) as db:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    cache.put("a", RESULT)
    cache.put("b", RESULT)
    assert cache.pending == 2 and seen() == 0
    cache.put("c", RESULT)  # max_pending reached: one commit
    assert cache.pending == 0 and seen() == 3
    cache.put("d", RESULT)
    cache.close()  # close commits the rest
    assert seen() == 4
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_interval_commit(tmp_path):
    path = tmp_path / "c.sqlite"
    with ResultCache(path, flush_interval_s=0.0) as cache:
        cache.put("a", RESULT)
        assert cache.pending == 0
