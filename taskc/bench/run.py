"""`taskc bench`: a spec's test rows, rendered by its contract, as load on an OpenAI-compatible server.

The stages live apart: `target` (what is sent), `sender` (how one request is sent, through the
runner's client), `measure` (one run and its statistics), `find_max` (the rate search); this
module runs one of them, or the search, in its own event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from taskc.bench.find_max import search_max_rate
from taskc.bench.measure import measure
from taskc.bench.sender import loop_policy
from taskc.bench.target import BenchOptions, Target, static_prefix
from taskc.common.endpoints import redact_url
from taskc.errors import TaskcError


async def bench_async(contract, options: BenchOptions) -> dict[str, Any]:
    """A single run, or the --find-max search; one JSON-ready dict."""
    target = Target(contract, options)
    header = {
        "task": contract.name,
        "contract_id": contract.id,
        "base_url": redact_url(options.base_url),
        "model": options.model,
        "mode": target.backend.mode,
        "stream": options.stream,
        "seed": options.seed,
        "rows": target.n_rows,
        "static_prefix": static_prefix(contract),
    }
    if options.find_max:
        if options.p95_ms is None:
            raise TaskcError("--find-max needs --p95-ms (the latency target)")

        async def trial(rate: float) -> dict[str, Any]:
            return (await measure(target, options, rate=rate)).stats

        async def cooldown() -> None:
            await asyncio.sleep(options.cooldown_s)

        search = await search_max_rate(trial, options.p95_ms, options.start_rate or options.rate or 10.0,
                                       factor=options.step_factor, max_rate=options.max_rate,
                                       bisect_steps=options.bisect_steps, cooldown=cooldown)
        best = search["best"]
        found = best if best else {"requests_per_s": None, "latency_ms": {"p50": None, "p95": None, "p99": None},
                                   "errors": None}
        return {**header, **found, "find_max": {k: v for k, v in search.items() if k != "best"}}
    return {**header, **(await measure(target, options)).stats}


def run_bench(contract, options: BenchOptions) -> dict[str, Any]:
    """`bench_async` in its own event loop (uvloop when installed and asked for)."""
    loop_name = loop_policy(options.uvloop)
    try:
        out = asyncio.run(bench_async(contract, options))
    finally:
        asyncio.set_event_loop_policy(None)
    out["loop"] = loop_name
    return out

