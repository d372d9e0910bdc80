"""Scoring across worker processes: same scores as in process, hard time bounds, budgets."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from taskc.compiler.build import compile_spec
from taskc.errors import SpecError
from taskc.metrics import MetricInput, MetricScore, get_metric, option_errors
from taskc.metrics.base import Metric
from taskc.metrics.batch import count_timeouts, is_timeout, score_batch, score_many

SQL = {"kind": "sql", "dialect": "sqlite"}
BOMB = "SELECT printf('%.*c', 2000000000, 'x')"  # 11-19 s inside one C call, unbounded
SLOW = "SELECT count(*) FROM flights a, flights b, flights c, airports d, airports e"


def inp(pred, gold, db):
    return MetricInput(raw=pred, parsed=pred, reference=gold, output=SQL,
                       database=None if db is None else str(db))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def spider_inputs(sql_rows, db_copies) -> list[MetricInput]:
    """Every gold query against itself, and against the next question's gold on its database."""
    out = []
    by_db: dict[str, list[str]] = {}
    for row in sql_rows:
        by_db.setdefault(row["db_id"], [])
        if row["query"] not in by_db[row["db_id"]]:
            by_db[row["db_id"]].append(row["query"])
    for row in sql_rows:
        db = db_copies / f"{row['db_id']}.sqlite"
        queries = by_db[row["db_id"]]
        other = queries[(queries.index(row["query"]) + 1) % len(queries)]
        out += [inp(row["query"], row["query"], db), inp(other, row["query"], db)]
    return out


@pytest.mark.parametrize("name", ["execution_match", "test_suite_match"])
def test_pool_scores_equal_the_serial_path(name, sql_rows, db_copies, hostile_cases):
    m = get_metric(name)({})
    inputs = spider_inputs(sql_rows, db_copies)
    hostile = [c for c in hostile_cases if name == "execution_match" or
               c[3]["reason"] != "timeout"]  # one timeout case is enough (2 s each way)
    inputs += [inp(p, g, db) for db, p, g, _ in hostile]
    pets = db_copies / "pets_1.sqlite"
    inputs += [MetricInput(None, None, "SELECT 1", SQL, str(pets)),
               inp("SELECT 1", "SELECT 1", None), inp(" ; ", "SELECT 1", pets)]
    serial = [m.score(i) for i in inputs]
    pooled = score_many(m, inputs, jobs=2)
    assert pooled == serial
    assert sum(s.value for s in serial[:2 * len(sql_rows):2]) == len(sql_rows)  # gold vs gold
    assert 0 < sum(s.value for s in serial[1:2 * len(sql_rows):2]) < len(sql_rows) / 2
    assert [s.detail for s in pooled[-len(hostile) - 3:-3]] == [d for *_, d in hostile]
    if name == "execution_match":
        assert score_many(m, inputs[:300], jobs=1) == serial[:300]


def test_hostile_predictions_under_the_pool(private_dbs, hostile_cases, tmp_path):
    m = get_metric("execution_match")({})
    before = {p.name: sha(p) for p in private_dbs.iterdir()}
    scores = score_many(m, [inp(p, g, db) for db, p, g, _ in hostile_cases], jobs=2)
    assert [(s.value, s.detail) for s in scores] == [(0.0, d) for *_, d in hostile_cases]
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "y.db").exists()
    assert {p.name: sha(p) for p in private_dbs.iterdir()} == before
    assert sorted(os.listdir(tmp_path)) == ["dbs"]


def test_one_long_call_is_bounded(private_dbs):
    """Issue 19.6: the time limit holds inside one SQLite call (the worker is ended)."""
    m = get_metric("execution_match")({"timeout_s": 0.5})
    singer = private_dbs / "concert_singer.sqlite"
    before = sha(singer)
    fast = inp("SELECT name FROM singer", "SELECT Name FROM singer", singer)
    # tasks queued behind the stuck one go to the fresh worker
    batch = [fast] * 12 + [inp(BOMB, "SELECT 1", singer)] + [fast] * 6 + \
        [inp("SELECT 1", BOMB, singer)]
    t = time.perf_counter()
    scores = score_many(m, batch, jobs=1)
    elapsed = time.perf_counter() - t
    assert [s.value for s in scores] == [1.0] * 12 + [0.0] + [1.0] * 6 + [0.0]
    assert scores[12].detail == {"reason": "timeout", "timeout_s": 0.5}
    assert scores[-1].detail == {"reason": "gold failed: timeout after 0.5s"}
    # two kills at 0.5 s CPU + 0.5 s grace each, plus three worker starts (on a busy machine
    # CPU time runs slower than the clock); unbounded, the two calls run 22 s or more
    assert elapsed < 12, elapsed
    assert sha(singer) == before


def test_a_million_rows_in_the_pool(million_db):
    m = get_metric("execution_match")({})
    gold = "SELECT id FROM t"
    changed = "SELECT CASE WHEN id = 123456 THEN 0 ELSE id END FROM t"
    scores = score_many(m, [inp(gold, gold, million_db), inp(changed, gold, million_db)], jobs=2)
    assert [s.value for s in scores] == [1.0, 0.0], scores
    assert scores[1].detail["rows"] == scores[1].detail["gold_rows"] == 1_000_000


def test_budget(private_dbs):
    m = get_metric("execution_match")({"timeout_s": 0.2, "budget_s": 2.5})
    flight = private_dbs / "flight_2.sqlite"
    # 20 x 0.2 s of CPU cannot fit in 2.5 s on one worker
    scores = score_many(m, [inp(SLOW, "SELECT 1", flight)] * 20, jobs=1)
    query, budget = {"reason": "timeout", "timeout_s": 0.2}, {"reason": "timeout", "budget_s": 2.5}
    assert {str(s.detail) for s in scores} == {str(query), str(budget)}
    assert scores[0].detail == query and scores[-1].detail == budget
    assert m.aggregate(scores) == {"mean": 0.0, "n": 20, "timeouts": 20}
    # the budget is the run's: once spent, even a correct prediction is not run
    ok = inp("SELECT 1", "SELECT 1", flight)
    assert m.score(ok).detail == budget
    assert score_many(m, [ok], jobs=1)[0].detail == budget
    fresh = get_metric("execution_match")({"timeout_s": 0.2, "budget_s": 2.5})
    assert fresh.score(ok).value == 1.0


def _workers() -> list[int]:
    me = str(os.getpid())
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == me and b"taskc.metrics.sql_worker" in cmd:
            out.append(int(pid))
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_worker_that_dies_costs_one_sample(private_dbs):
    m = get_metric("execution_match")({"timeout_s": 5})
    flight = private_dbs / "flight_2.sqlite"
    batch = [inp(SLOW, "SELECT 1", flight)] + [inp("SELECT 1", "SELECT 1", flight)] * 3
    out: list = []
    thread = threading.Thread(target=lambda: out.extend(score_many(m, batch, jobs=1)))
    thread.start()
    deadline = time.monotonic() + 10
    while not _workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # let it start the slow query
    for pid in _workers():
        os.kill(pid, signal.SIGKILL)
    thread.join(30)
    assert out[0].detail == {"reason": "metric error: sql worker exited with code -9"}
    assert [s.value for s in out[1:]] == [1.0, 1.0, 1.0]
    assert _workers() == []


class _Flaky(Metric):
    name = "flaky"

    def score(self, inp):
        if inp.raw == "boom":
            raise RuntimeError("no")
        return MetricScore(float(inp.raw == inp.reference), {})


def test_batch_api(db_copies):
    texts = [MetricInput(r, r, "a", {"kind": "text"}) for r in ("a", "b", "boom")]
    em = get_metric("exact_match")({})
    assert [s.value for s in score_many(em, texts, jobs=4)] == [1.0, 0.0, 0.0]
    assert score_many(_Flaky(), texts) == [
        MetricScore(1.0, {}), MetricScore(0.0, {}),
        MetricScore(0.0, {"reason": "metric error: RuntimeError: no"})]
    db = db_copies / "pets_1.sqlite"
    sql = [inp("SELECT 1", "SELECT 1", db), inp("SELECT 2", "SELECT 1", db)]
    rows = score_batch([get_metric("execution_match")({}), get_metric("test_suite_match")({})],
                       sql, jobs=2)
    assert [{k: s.value for k, s in r.items()} for r in rows] == [
        {"execution_match": 1.0, "test_suite_match": 1.0},
        {"execution_match": 0.0, "test_suite_match": 0.0}]
    assert score_many(get_metric("execution_match")({}), []) == []
    with pytest.raises(ValueError, match="jobs must be a positive integer, got 0"):
        score_many(get_metric("execution_match")({}), sql, jobs=0)
    timeout = MetricScore(0.0, {"reason": "timeout", "timeout_s": 2.0})
    assert is_timeout(timeout) and is_timeout(timeout.detail) and not is_timeout(sql and {})
    assert count_timeouts([timeout, MetricScore(0.0, {"reason": "different result"}),
                           timeout.detail]) == 2


def test_time_options_are_checked():
    assert option_errors("execution_match", {"timeout_s": -1, "budget_s": "10"}) == [
        ("timeout_s", "option 'timeout_s' of metric execution_match must be a positive number"),
        ("budget_s", "option 'budget_s' of metric execution_match must be a positive number")]
    assert option_errors("test_suite_match", {"timeout_s": 0.5, "budget_s": 600}) == []


def test_a_bad_time_option_is_a_located_spec_error(tmp_path, db_copies):
    (tmp_path / "db.sqlite").write_bytes((db_copies / "pets_1.sqlite").read_bytes())
    (tmp_path / "data.jsonl").write_text('{"question": "how many?", "answer": "SELECT 1"}\n')
    (tmp_path / "spec.yaml").write_text(
        "taskc: 1\nname: demo\ninputs:\n  question: string\noutput:\n  kind: sql\n"
        "  database: db.sqlite\nprompt:\n  user: \"{{ question }}\"\n"
        "data:\n  test: {file: data.jsonl}\n"
        "metric: {execution_match: {timeout_s: 0, budget_s: -5}}\n")
    with pytest.raises(SpecError) as info:
        compile_spec(tmp_path / "spec.yaml")
    assert [d.format().replace(str(tmp_path) + os.sep, "") for d in info.value.diagnostics] == [
        "spec.yaml:12:28: error: option 'timeout_s' of metric execution_match must be a "
        "positive number",
        "spec.yaml:12:42: error: option 'budget_s' of metric execution_match must be a "
        "positive number"]
