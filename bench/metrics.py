"""Benchmark the scoring hot paths against naive baselines measured in the same run.

1. tool_call_equivalence over git_assistant pairs (test + train, 159 rows), single core,
   repeated to at least 1 s of work. Two prediction sets: the gold answer texts, and a mix of
   shapes (gold text, all defaults added, arguments as a JSON string, inside <tool_call>).
   Baseline: `json.loads(raw) == reference` in a loop. Three interleaved rounds, best of each.
2. execution_match over the 484 Spider dev queries, gold vs gold with a cold gold cache and
   cold connections (so each query runs twice). Baseline: plain `sqlite3` connections (one per
   database, opened once) executing each query twice with fetchall.
   test_suite_match (3 variants, variants already built) is reported for information.
3. SQL scoring across worker processes (`score_many`, one worker per core) against one process
   scoring the same batch in the same run (`metric.score` in a loop), for: a batch where every
   prediction hits the time limit, the Spider batch (gold and a wrong query per question) with
   both SQL metrics, and large results (8 x 125,000 rows of a generated 1,000,000-row table).
   Then issue 19.6's query, `SELECT printf('%.*c', 2000000000, 'x')`, in the pool and in process.

Usage: python bench/metrics.py [--shared PATH] [--part all|tool|sql|pool]
       (shared default $TASKC_SHARED or <repo>/../shared)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from taskc.metrics import MetricInput, get_metric  # noqa: E402
from taskc.metrics.batch import default_jobs, score_many  # noqa: E402
from taskc.metrics.sql_exec import clear_caches  # noqa: E402

TOOL_TARGET = 50_000
SQL_TARGET = 300


def _repeat(fn, items, min_s: float = 1.0) -> float:
    """Items per second of `fn` over `items`, repeated for at least `min_s` seconds."""
    n = 0
    t0 = time.perf_counter()
    while True:
        for it in items:
            fn(it)
        n += len(items)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_s:
            return n / elapsed


def _mixed_shapes(call: dict, defaults: dict, rng: random.Random) -> str:
    params = call["parameters"]
    kind = rng.randrange(4)
    if kind == 0:
        return json.dumps(call)
    if kind == 1:
        return json.dumps({"name": call["name"], "parameters": {**defaults, **params}}, indent=2)
    if kind == 2:
        return json.dumps({"name": call["name"], "arguments": json.dumps(params)})
    return "<tool_call>\n" + json.dumps({"name": call["name"], "arguments": params}) + \
        "\n</tool_call>"


def bench_tool_calls(data: Path, rounds: int = 3) -> dict:
    doc = json.loads((data / "git_assistant" / "job_description.json").read_text())
    tools = [t["function"] for t in doc["tools"]]
    defaults = {t["name"]: {k: p["default"] for k, p in t["parameters"]["properties"].items()
                            if "default" in p} for t in tools}
    output = {"kind": "tool_call", "tools": tools}
    rows = [json.loads(line) for split in ("test", "train")
            for line in (data / "git_assistant" / f"{split}.jsonl").read_text().splitlines()
            if line.strip()]
    refs = [json.loads(r["answer"]) for r in rows]
    rng = random.Random(0)
    gold_inputs = [MetricInput(r["answer"], None, ref, output) for r, ref in zip(rows, refs)]
    mixed_inputs = [MetricInput(_mixed_shapes(ref, defaults[ref["name"]], rng), None, ref, output)
                    for ref in refs]
    metric = get_metric("tool_call_equivalence")({})
    assert all(metric.score(i).value == 1.0 for i in gold_inputs + mixed_inputs)
    loads = json.loads
    best = {"baseline": 0.0, "gold": 0.0, "mixed": 0.0}
    for _ in range(rounds):  # interleaved rounds, best of each: robust to a shared machine
        best["baseline"] = max(best["baseline"],
                               _repeat(lambda i: loads(i.raw) == i.reference, gold_inputs))
        best["gold"] = max(best["gold"], _repeat(metric.score, gold_inputs))
        best["mixed"] = max(best["mixed"], _repeat(metric.score, mixed_inputs))
    return {"pairs": len(rows), **best}


def _sql_once(metric, items) -> float:
    clear_caches()
    t0 = time.perf_counter()
    for it in items:
        if metric.score(it).value != 1.0:
            raise AssertionError(it.reference)
    return len(items) / (time.perf_counter() - t0)


def _raw_once(rows, dbdir: Path) -> float:
    t0 = time.perf_counter()
    conns: dict[str, sqlite3.Connection] = {}
    for r in rows:
        con = conns.get(r["db_id"])
        if con is None:
            con = conns[r["db_id"]] = sqlite3.connect(dbdir / r["db_id"] / f"{r['db_id']}.sqlite")
        con.execute(r["query"]).fetchall()
        con.execute(r["query"]).fetchall()
    rate = len(rows) / (time.perf_counter() - t0)
    for con in conns.values():
        con.close()
    return rate


def bench_sql(data: Path, repeats: int = 5) -> dict:
    dbdir = data / "text2sql" / "databases"
    rows = [json.loads(line) for line in (data / "text2sql" / "dev.jsonl").read_text().splitlines()
            if line.strip()]
    out = {"kind": "sql", "dialect": "sqlite"}
    items = [MetricInput(r["query"], r["query"], r["query"], out,
                         str(dbdir / r["db_id"] / f"{r['db_id']}.sqlite")) for r in rows]
    em = get_metric("execution_match")({})
    ts = get_metric("test_suite_match")({})
    _sql_once(ts, items)  # builds the variants (cached on disk) before timing
    return {
        "queries": len(rows),
        "baseline": statistics.median(_raw_once(rows, dbdir) for _ in range(repeats)),
        "execution_match": statistics.median(_sql_once(em, items) for _ in range(repeats)),
        "test_suite_match": statistics.median(_sql_once(ts, items) for _ in range(repeats)),
    }


SLOW = "SELECT count(*) FROM flights a, flights b, flights c, airports d, airports e"
BOMB = "SELECT printf('%.*c', 2000000000, 'x')"


def _timed(fn) -> tuple[float, list]:
    clear_caches()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _pool_vs_serial(metric, items, jobs: int) -> dict:
    """Wall seconds: one process (`score` in a loop), the pool with 1 worker, with `jobs`."""
    serial_s, serial = _timed(lambda: [metric.score(i) for i in items])
    one_s, one = _timed(lambda: score_many(metric, items, jobs=1))
    pool_s, pooled = _timed(lambda: score_many(metric, items, jobs=jobs))
    if not serial == one == pooled:
        raise AssertionError("the pool scored differently from the serial path")
    return {"n": len(items), "serial": serial_s, "one": one_s, "pool": pool_s,
            "timeouts": sum(1 for s in serial if s.detail.get("reason") == "timeout"),
            "mean": sum(s.value for s in serial) / len(serial)}


def _million_db(folder: str) -> str:
    path = os.path.join(folder, "million.sqlite")
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, grp INTEGER, name TEXT)")
    con.execute("INSERT INTO t SELECT x, x % 1000, 'n' || x FROM (WITH RECURSIVE c(x) AS "
                "(SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 1000000) SELECT x FROM c)")
    con.commit()
    con.close()
    return path


def bench_pool(data: Path, jobs: int) -> dict:
    dbdir = data / "text2sql" / "databases"
    out = {"kind": "sql", "dialect": "sqlite"}

    def item(pred, gold, db_id=None, path=None):
        return MetricInput(pred, pred, gold, out,
                           path or str(dbdir / db_id / f"{db_id}.sqlite"))

    rows = [json.loads(line) for line in (data / "text2sql" / "dev.jsonl").read_text().splitlines()
            if line.strip()]
    spider = []
    for i, r in enumerate(rows):
        other = next((o["query"] for o in rows[i + 1:] + rows[:i]
                      if o["db_id"] == r["db_id"] and o["query"] != r["query"]), r["query"])
        spider += [item(r["query"], r["query"], r["db_id"]), item(other, r["query"], r["db_id"])]
    slow = [item(SLOW, "SELECT 1", "flight_2")] * (4 * jobs)
    res: dict = {"jobs": jobs}
    res["timeouts"] = _pool_vs_serial(get_metric("execution_match")({"timeout_s": 0.5}), slow,
                                      jobs)
    get_metric("test_suite_match")({}).score_many(spider[:2], jobs=1)  # variants built once
    for name in ("execution_match", "test_suite_match"):
        res[name] = _pool_vs_serial(get_metric(name)({}), spider, jobs)
    with tempfile.TemporaryDirectory() as tmp:
        db = _million_db(tmp)
        big = []
        for k in range(8):
            q = f"SELECT id, name FROM t WHERE id > {k * 125_000} AND id <= {(k + 1) * 125_000}"
            big.append(item(q + (" ORDER BY id" if k % 2 else ""), q + (" ORDER BY id" if k % 2
                            else ""), path=db))
        res["large"] = _pool_vs_serial(get_metric("execution_match")({}), big, jobs)
    em = get_metric("execution_match")({})
    bomb = [item(BOMB, "SELECT 1", "concert_singer")]
    res["bomb_pool"], scores = _timed(lambda: score_many(em, bomb, jobs=1))
    res["bomb_pool_detail"] = scores[0].detail
    res["bomb_serial"], scores = _timed(lambda: [em.score(bomb[0])])
    res["bomb_serial_detail"] = scores[0].detail
    return res


def print_pool(res: dict) -> None:
    jobs = res["jobs"]
    print(f"SQL scoring across worker processes (jobs={jobs}, one per core; wall seconds, "
          "cold caches; 'one process' = metric.score in a loop)")
    labels = {"timeouts": "all time out (timeout_s 0.5)", "execution_match": "Spider, execution",
              "test_suite_match": "Spider, test suite", "large": "large results (8 x 125k)"}
    for key, label in labels.items():
        r = res[key]
        note = f"   count x timeout / jobs = {r['n'] * 0.5 / jobs:.2f} s" if key == "timeouts" \
            else ""
        print(f"  {label:<29} n={r['n']:<4} one process {r['serial']:6.2f}  pool(1) "
              f"{r['one']:6.2f}  pool({jobs}) {r['pool']:6.2f}   speed-up "
              f"{r['serial'] / r['pool']:.2f}x{note}")
    print(f"  issue 19.6 query in the pool : {res['bomb_pool']:6.2f} s  {res['bomb_pool_detail']}")
    print(f"  issue 19.6 query in process  : {res['bomb_serial']:6.2f} s  "
          f"{res['bomb_serial_detail']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=os.environ.get("TASKC_SHARED",
                                                           str(REPO.parent / "shared")))
    parser.add_argument("--part", choices=("all", "tool", "sql", "pool"), default="all")
    args = parser.parse_args()
    data = Path(args.shared) / "data"
    if args.part in ("all", "tool"):
        _print_tool(bench_tool_calls(data))
    if args.part in ("all", "sql"):
        _print_sql(bench_sql(data))
    if args.part in ("all", "pool"):
        print_pool(bench_pool(data, default_jobs()))


def _print_tool(tc: dict) -> None:
    print(f"tool_call_equivalence, git_assistant ({tc['pairs']} pairs, repeated >= 1 s, "
          "single core, best of 3 interleaved rounds)")
    print(f"  baseline json.loads+==     : {tc['baseline']:>10,.0f} pairs/s")
    for key, label in (("gold", "gold answer texts"), ("mixed", "mixed shapes")):
        print(f"  metric, {label:<19}: {tc[key]:>10,.0f} pairs/s   target {TOOL_TARGET:,} "
              f"({tc[key] / TOOL_TARGET:.2f}x target, {tc[key] / tc['baseline']:.2f}x baseline)")


def _print_sql(sq: dict) -> None:
    print(f"execution_match, Spider dev ({sq['queries']} queries, gold vs gold, cold gold cache "
          "and connections, median of 5)")
    print(f"  baseline raw sqlite3 (x2)  : {sq['baseline']:>10,.0f} queries/s")
    for key in ("execution_match", "test_suite_match"):
        target = f"target {SQL_TARGET} ({sq[key] / SQL_TARGET:.2f}x target, " \
            if key == "execution_match" else "("
        print(f"  {key:<27}: {sq[key]:>10,.0f} queries/s   {target}"
              f"{sq[key] / sq['baseline']:.2f}x baseline)")


if __name__ == "__main__":
    main()
