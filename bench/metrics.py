"""Benchmark the scoring hot paths against naive baselines measured in the same run.

1. tool_call_equivalence over git_assistant pairs (test + train, 159 rows), single core,
   repeated to at least 1 s of work. Two prediction sets: the gold answer texts, and a mix of
   shapes (gold text, all defaults added, arguments as a JSON string, inside <tool_call>).
   Baseline: `json.loads(raw) == reference` in a loop. Three interleaved rounds, best of each.
2. execution_match over the 484 Spider dev queries, gold vs gold with a cold gold cache and
   cold connections (so each query runs twice). Baseline: plain `sqlite3` connections (one per
   database, opened once) executing each query twice with fetchall.
   test_suite_match (3 variants, variants already built) is reported for information.

Usage: python bench/metrics.py [--shared PATH]   (default $TASKC_SHARED or <repo>/../shared)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from taskc.metrics import MetricInput, get_metric  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=os.environ.get("TASKC_SHARED",
                                                           str(REPO.parent / "shared")))
    args = parser.parse_args()
    data = Path(args.shared) / "data"
    tc = bench_tool_calls(data)
    print(f"tool_call_equivalence, git_assistant ({tc['pairs']} pairs, repeated >= 1 s, "
          "single core, best of 3 interleaved rounds)")
    print(f"  baseline json.loads+==     : {tc['baseline']:>10,.0f} pairs/s")
    for key, label in (("gold", "gold answer texts"), ("mixed", "mixed shapes")):
        print(f"  metric, {label:<19}: {tc[key]:>10,.0f} pairs/s   target {TOOL_TARGET:,} "
              f"({tc[key] / TOOL_TARGET:.2f}x target, {tc[key] / tc['baseline']:.2f}x baseline)")
    sq = bench_sql(data)
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
