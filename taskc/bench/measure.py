"""One measured run of `taskc bench`: load, server metrics, statistics, accuracy under load.

Each answer is parsed by the backend and, after the run (so scoring never slows the sending),
validated and scored by the contract's `Scorer`. See `taskc.bench.loadgen` for how time is
measured and `taskc.bench.prom` for the server metrics.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from dataclasses import dataclass
from typing import Any

from taskc.bench.loadgen import LoadResult, Sample, closed_loop, generator_ok, open_loop, statistics
from taskc.bench.prom import memory, metrics_url, prefix_cache_hit_rate, scrape
from taskc.bench.sender import make_sender, warm_up
from taskc.bench.target import BenchOptions, Target, sender_processes
from taskc.errors import TaskcError


@dataclass(frozen=True)
class Measurement:
    """A run's statistics (JSON-ready, what `taskc bench --json` prints) and its raw samples."""

    stats: dict[str, Any]
    load: LoadResult


def score(target: Target, samples: list[Sample]) -> dict[str, Any]:
    """Validate and score every answered sample with the contract's Scorer (once per distinct
    (row, answer); SQL execution in one batch): accuracy per metric over answered requests, and
    invalid outputs."""
    from taskc.evaluate.scoring import Scorer
    from taskc.runner.types import Result, Usage

    scorer = Scorer(target.contract)
    answered = [s for s in samples if s.ok]
    distinct: dict[tuple[int, str | None], dict[str, Any]] = {}
    for s in answered:
        key = (s.row, s.raw)
        if key not in distinct:
            request = target.requests[s.row]
            raw = target.backend.postprocess(s.raw, request) if s.raw is not None else None
            distinct[key] = scorer.sample(request, Result(request.index, 0, raw=raw, usage=s.usage or Usage()))
    records = dict(zip(distinct, scorer.score_deferred(list(distinct.values()))))
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    invalid = 0
    reasons: dict[str, int] = {}
    for s in answered:
        record = records[(s.row, s.raw)]
        if not record["valid"]:
            invalid += 1
            reason = str(record.get("invalid_reason") or "invalid")[:120]
            reasons[reason] = reasons.get(reason, 0) + 1
        for name, value in record["scores"].items():
            totals[name] = totals.get(name, 0.0) + float(value)
            counts[name] = counts.get(name, 0) + 1
    accuracy = {name: round(totals[name] / counts[name], 6) for name in totals} if answered else None
    top = sorted(reasons.items(), key=lambda kv: -kv[1])[:3]
    return {"accuracy": accuracy, "answered": len(answered), "invalid": invalid,
            "invalid_rate": round(invalid / len(answered), 6) if answered else None,
            "invalid_reasons": [f"{n} x {r}" for r, n in top]}


def cost_per_million(gpu_hourly_usd: float | None, requests_per_s: float | None) -> float | None:
    """USD per million requests at `requests_per_s` on a machine costing `gpu_hourly_usd` an hour."""
    if gpu_hourly_usd is None or not requests_per_s:
        return None
    return round(gpu_hourly_usd / 3600.0 / requests_per_s * 1e6, 6)


async def measure(target: Target, options: BenchOptions, rate: float | None = None,
                  concurrency: int | None = None) -> Measurement:
    """One run at `rate` (open loop) or `concurrency` (closed loop): the full statistics and the
    samples they came from."""
    from taskc.runner.http import JsonClient

    if rate is None and concurrency is None:  # the options' own: a rate if they give one, else the concurrency
        rate = options.rate
        concurrency = options.concurrency if rate is None else None
    if (rate is None) == (concurrency is None):
        raise TaskcError("give either --rate or --concurrency")
    tag = f"taskc-bench-{os.urandom(4).hex()}"
    client = JsonClient(concurrency=options.max_connections, timeout_s=options.timeout_s, max_attempts=1)
    murl = metrics_url(options.base_url) if options.metrics_url is None else options.metrics_url
    during: list[dict[str, float]] = []
    try:
        before = await scrape(client, murl) if murl else None
        stop = asyncio.Event()
        window: list[float] = []

        async def scrape_loop() -> None:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), timeout=options.metrics_interval_s)
                except asyncio.TimeoutError:
                    pass
                if stop.is_set():
                    return
                now = time.monotonic()
                if window and window[0] <= now <= window[1]:
                    found = await scrape(client, murl)
                    if found:
                        during.append(found)

        wire = target.wire(options)
        send = make_sender(wire, client, tag)
        processes = sender_processes(options.processes, rate)
        if processes <= 1:
            await warm_up(client, wire.url)  # a connection and warm code paths before the first send
        scraper = asyncio.ensure_future(scrape_loop()) if before is not None else None
        def set_window(t0: float) -> None:  # the measured window: after warm-up, for the duration
            window[:] = [t0 + options.warmup_s, t0 + options.warmup_s + options.duration_s + 0.05]

        set_window(time.monotonic())
        gc.collect()
        gc.freeze()
        try:
            if rate is not None and processes > 1:
                from taskc.bench.workers import open_loop_processes

                result: LoadResult = await open_loop_processes(
                    wire, tag, rate, options.duration_s, options.warmup_s, seed=options.seed, n_rows=target.n_rows,
                    drain_s=options.drain_s, processes=processes, use_uvloop=options.uvloop,
                    on_start=set_window)
            elif rate is not None:
                result = await open_loop(send, rate, options.duration_s, options.warmup_s, seed=options.seed,
                                         n_rows=target.n_rows, drain_s=options.drain_s)
            else:
                result = await closed_loop(send, int(concurrency), options.duration_s, options.warmup_s,  # type: ignore[arg-type]
                                           n_rows=target.n_rows, drain_s=options.drain_s)
        finally:
            gc.unfreeze()
            stop.set()
            if scraper is not None:
                await scraper
        after = await scrape(client, murl) if before is not None else None
    finally:
        await client.close()
    stats = statistics(result)
    stats["processes"] = processes
    measured = result.measured()
    stats.update(score(target, measured))
    stats["rows_measured"] = len({s.row for s in measured})
    stats["request_id_prefix"] = tag
    stats["generator_ok"] = generator_ok(stats) if rate is not None else True
    stats["memory"] = memory(before, during, after)
    stats["prefix_cache_hit_rate"] = prefix_cache_hit_rate(before, after)
    stats["metrics_url"] = murl or None
    stats["metrics_found"] = before is not None
    tokens = [s.usage for s in measured if s.ok and s.usage is not None]
    stats["tokens_per_request"] = ({
        "input": round(sum(u.input_tokens for u in tokens) / len(tokens), 2),
        "output": round(sum(u.output_tokens for u in tokens) / len(tokens), 2),
        "cached_input": round(sum(u.cached_input_tokens for u in tokens) / len(tokens), 2),
    } if tokens else None)
    stats["gpu_hourly_usd"] = options.gpu_hourly_usd
    stats["cost_per_million_requests"] = cost_per_million(options.gpu_hourly_usd, stats["requests_per_s"])
    warnings = []
    if not stats["generator_ok"]:
        warnings.append(f"the load generator fell behind its schedule (send lag p99 {stats['send_lag_ms']['p99']:.1f} ms): "
                        f"this client could not offer {rate:g} requests/s; latencies include that lag")
    if not result.drained:
        warnings.append(f"some measured requests had not answered {options.drain_s:g} s after the window; counted as errors")
    if stats["measured"] and stats["errors"] == stats["measured"]:
        warnings.append("every measured request failed")
    stats["warnings"] = warnings
    return Measurement(stats, result)

