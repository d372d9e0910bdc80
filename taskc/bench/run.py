"""`taskc bench`: a spec's test rows, rendered by its contract, as load on an OpenAI-compatible server.

Requests are the ones `taskc eval` sends (the openai backend's `render`, pre-encoded once per row,
rows cycled) through the same `JsonClient`, with retries off so every failure is counted. Each
answer is parsed by the backend and, after the run (so scoring never slows the sending), validated
and scored by the contract's `Scorer`. See `taskc.bench.loadgen` for how time is measured and
`taskc.bench.prom` for the server metrics.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import time
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable

from taskc.bench.loadgen import LoadResult, Sample, closed_loop, generator_ok, open_loop, statistics
from taskc.bench.prom import memory, metrics_url, prefix_cache_hit_rate, scrape
from taskc.errors import TaskcError

SUSTAINED_FRACTION = 0.98
MAX_ERROR_RATE = 0.01


@dataclass(frozen=True)
class BenchOptions:
    """How to load the server. Exactly one of `rate` (open loop) and `concurrency` (closed loop)."""

    base_url: str
    model: str
    rate: float | None = None
    concurrency: int | None = None
    duration_s: float = 10.0
    warmup_s: float = 2.0
    stream: bool = False
    seed: int = 0
    limit: int | None = None
    timeout_s: float = 60.0
    drain_s: float = 30.0
    mode: str | None = None
    api_key_env: str | None = None
    gpu_hourly_usd: float | None = None
    metrics_url: str | None = None  # None: <server>/metrics; "": do not scrape
    metrics_interval_s: float = 1.0
    max_connections: int = 8192
    temperature: float | None = None
    uvloop: bool = True
    processes: int | None = None  # open loop: sender processes sharing the Poisson stream; None: auto
    # --find-max
    find_max: bool = False
    p95_ms: float | None = None
    start_rate: float | None = None
    max_rate: float | None = None
    step_factor: float = 2.0
    bisect_steps: int = 4
    cooldown_s: float = 1.0


#: Above this rate one sender process spends most of a core on its requests (about 0.4 ms of CPU
#: each with aiohttp) and its own event loop delays the answers it times: split the stream.
RATE_PER_SENDER = 800.0


def sender_processes(requested: int | None, rate: float | None) -> int:
    """Sender processes for an open loop at `rate`: `requested`, or one per RATE_PER_SENDER
    requests/s up to the CPU count (1 for a closed loop)."""
    if rate is None:
        return 1
    if requested is not None:
        return requested
    return max(1, min(os.cpu_count() or 1, math.ceil(rate / RATE_PER_SENDER)))


class Target:
    """What to send: the contract's requests rendered by the openai backend, one payload per row."""

    def __init__(self, contract, options: BenchOptions) -> None:
        from taskc.backends.openai_chat import OpenAIChatBackend
        from taskc.evaluate.models import ModelConfig
        from taskc.evaluate.run import EvalOptions, plan
        from taskc.runner.http import dumps

        self.contract = contract
        config = ModelConfig(name=options.model, backend="openai", model=options.model, base_url=options.base_url,
                             api_key_env=options.api_key_env, mode=options.mode, gpu_hourly_usd=options.gpu_hourly_usd)
        requests, _, generation = plan(contract, config, EvalOptions(repeats=1, limit=options.limit,
                                                                     temperature=options.temperature))
        if not requests:
            raise TaskcError(f"{contract.name} has no test rows to send")
        self.requests = list(requests)
        self.generation = generation
        self.backend = OpenAIChatBackend(model=options.model, base_url=options.base_url,
                                         api_key_env=options.api_key_env or "OPENAI_API_KEY", mode=options.mode)
        self.url = self.backend.url
        self.headers = dict(getattr(self.backend, "_headers", {}))
        bodies = [self.backend.render(r) for r in self.requests]
        if options.stream:
            for body in bodies:
                body["stream"] = True
                body["stream_options"] = {"include_usage": True}
        self.payloads = [dumps(b) for b in bodies]
        self.stream = options.stream

    @property
    def n_rows(self) -> int:
        return len(self.requests)

    def wire(self, options: BenchOptions) -> "Wire":
        """What a sender (in this process or another) needs."""
        return Wire(self.url, dict(self.headers), list(self.payloads), self.stream, options.timeout_s,
                    options.max_connections)

    def postprocess(self, samples) -> None:
        """The backend's postprocessing of each answer (label unwrapping etc.), in place."""
        for s in samples:
            if s.ok and s.raw is not None:
                s.raw = self.backend.postprocess(s.raw, self.requests[s.row])


@dataclass(frozen=True)
class Wire:
    """The rendered requests and where to send them: all a sender process needs (picklable)."""

    url: str
    headers: dict[str, str]
    payloads: list[bytes]
    stream: bool
    timeout_s: float
    max_connections: int


def _usage(raw: dict[str, Any] | None):
    from taskc.runner.types import Usage

    raw = raw or {}
    details = raw.get("prompt_tokens_details") or {}
    return Usage(input_tokens=int(raw.get("prompt_tokens") or 0), output_tokens=int(raw.get("completion_tokens") or 0),
                 cached_input_tokens=int(details.get("cached_tokens") or 0))


def make_sender(wire: Wire, client, tag: str, clock: Callable[[], float] = time.monotonic) -> Callable[[Sample], Awaitable[None]]:
    """The coroutine that sends one sample's request and fills in its times and raw answer (the
    backend's postprocessing is applied after the run, `Target.postprocess`)."""
    from taskc.backends.openai_chat import parse

    url, auth, payloads = wire.url, wire.headers, wire.payloads

    async def send_plain(sample: Sample) -> None:
        headers = {**auth, "x-request-id": f"{tag}-{sample.seq}"}
        sample.sent = clock()
        resp = await client.post_json(url, payloads[sample.row], headers)
        sample.done = clock()
        sample.status = resp.status
        if not resp.ok:
            sample.error = resp.error
            return
        try:
            raw, usage = parse(resp.body)
            sample.extra["finish_reason"] = resp.body["choices"][0].get("finish_reason")
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            sample.error = f"malformed response: {type(exc).__name__}: {exc}"
            return
        sample.raw = raw
        sample.usage = usage

    async def send_stream(sample: Sample) -> None:
        import aiohttp

        from taskc.backends.base import tool_call_text
        from taskc.runner.http import loads, provider_message

        headers = {"Content-Type": "application/json", **auth, "x-request-id": f"{tag}-{sample.seq}"}
        session = client._get_session()  # the JsonClient's pooled session (it has no streaming call)
        parts: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage = None
        sample.sent = clock()
        try:
            async with session.post(url, data=payloads[sample.row], headers=headers) as resp:
                sample.status = resp.status
                if resp.status >= 300:
                    body = await resp.read()
                    sample.done = clock()
                    sample.error = provider_message(resp.status, body)
                    return
                async for line in resp.content:
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        break
                    chunk = loads(data)
                    if chunk.get("error"):
                        err = chunk["error"]
                        sample.error = f"stream error: {err.get('message') if isinstance(err, dict) else err}"
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        text = delta.get("content")
                        if text:
                            if sample.first_token is None:
                                sample.first_token = clock()
                            parts.append(text)
                        for call in delta.get("tool_calls") or ():
                            if sample.first_token is None:
                                sample.first_token = clock()
                            slot = calls.setdefault(call.get("index", 0), {"name": "", "arguments": ""})
                            fn = call.get("function") or {}
                            slot["name"] += fn.get("name") or ""
                            slot["arguments"] += fn.get("arguments") or ""
                        if choice.get("finish_reason"):
                            sample.extra["finish_reason"] = choice["finish_reason"]
            sample.done = clock()
        except asyncio.TimeoutError:
            sample.error = f"timeout after {client.timeout_s:g} s"
            return
        except aiohttp.ClientError as exc:
            sample.error = f"connection error: {type(exc).__name__}: {exc}"
            return
        except ValueError as exc:
            sample.error = f"malformed stream: {exc}"
            return
        if sample.error:
            return
        sample.raw = tool_call_text(calls[min(calls)]["name"], calls[min(calls)]["arguments"] or "{}") if calls else "".join(parts)
        sample.usage = _usage(usage)

    return send_stream if wire.stream else send_plain


def score(target: Target, samples: list[Sample]) -> dict[str, Any]:
    """Validate and score every answered sample with the contract's Scorer (once per distinct
    (row, answer)): accuracy per metric over answered requests, and invalid outputs."""
    from taskc.evaluate.scoring import Scorer
    from taskc.runner.types import Result, Usage

    scorer = Scorer(target.contract)
    cache: dict[tuple[int, str | None], dict[str, Any]] = {}
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    invalid = answered = 0
    reasons: dict[str, int] = {}
    for s in samples:
        if not s.ok:
            continue
        answered += 1
        key = (s.row, s.raw)
        record = cache.get(key)
        if record is None:
            request = target.requests[s.row]
            record = scorer.sample(request, Result(request.index, 0, raw=s.raw, usage=s.usage or Usage()))
            cache[key] = record
        if not record["valid"]:
            invalid += 1
            reason = str(record.get("invalid_reason") or "invalid")[:120]
            reasons[reason] = reasons.get(reason, 0) + 1
        for name, value in record["scores"].items():
            totals[name] = totals.get(name, 0.0) + float(value)
            counts[name] = counts.get(name, 0) + 1
    accuracy = {name: round(totals[name] / counts[name], 6) for name in totals} if answered else None
    top = sorted(reasons.items(), key=lambda kv: -kv[1])[:3]
    return {"accuracy": accuracy, "answered": answered, "invalid": invalid,
            "invalid_rate": round(invalid / answered, 6) if answered else None,
            "invalid_reasons": [f"{n} x {r}" for r, n in top]}


def static_prefix(contract) -> dict[str, Any] | None:
    """The contract's static prefix (messages, chars, scope) and its length in Qwen tokens."""
    prefix = contract.body.get("prefix")
    if not prefix:
        return None
    out = {k: v for k, v in prefix.items() if k != "sha256"}
    # counted at compile time (cached by content); None where the Qwen vocabulary is not installed
    tokens = (getattr(contract, "analysis", None) or {}).get("prefix_tokens")
    out["tokens"] = tokens
    out["tokenizer"] = "qwen" if tokens is not None else None
    return out


def cost_per_million(gpu_hourly_usd: float | None, requests_per_s: float | None) -> float | None:
    """USD per million requests at `requests_per_s` on a machine costing `gpu_hourly_usd` an hour."""
    if gpu_hourly_usd is None or not requests_per_s:
        return None
    return round(gpu_hourly_usd / 3600.0 / requests_per_s * 1e6, 6)


async def measure(target: Target, options: BenchOptions, rate: float | None = None,
                  concurrency: int | None = None) -> dict[str, Any]:
    """One run at `rate` (open loop) or `concurrency` (closed loop): the full statistics."""
    from taskc.runner.http import JsonClient

    rate = options.rate if rate is None and concurrency is None else rate
    concurrency = options.concurrency if rate is None and concurrency is None else concurrency
    if (rate is None) == (concurrency is None):
        raise TaskcError("give either --rate or --concurrency")
    tag = f"taskc-bench-{os.urandom(4).hex()}"
    client = JsonClient(concurrency=options.max_connections, timeout_s=options.timeout_s, max_attempts=1)
    murl = metrics_url(options.base_url) if options.metrics_url is None else options.metrics_url
    during: list[dict[str, float]] = []
    try:
        session = client._get_session()
        before = await scrape(session, murl) if murl else None
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
                    found = await scrape(session, murl)
                    if found:
                        during.append(found)

        wire = target.wire(options)
        send = make_sender(wire, client, tag)
        processes = sender_processes(options.processes, rate)
        if processes <= 1:
            from taskc.bench.workers import warm_up

            await warm_up(client, wire.url)  # a connection and warm code paths before the first send
        scraper = asyncio.ensure_future(scrape_loop()) if before is not None else None
        now = time.monotonic()
        window[:] = [now + options.warmup_s, now + options.warmup_s + options.duration_s + 0.05]
        gc.collect()
        gc.freeze()
        try:
            if rate is not None and processes > 1:
                from taskc.bench.workers import open_loop_processes

                result: LoadResult = await open_loop_processes(
                    wire, tag, rate, options.duration_s, options.warmup_s, seed=options.seed, n_rows=target.n_rows,
                    drain_s=options.drain_s, processes=processes, use_uvloop=options.uvloop,
                    on_start=lambda t0: window.__setitem__(slice(None), [t0 + options.warmup_s,
                                                                         t0 + options.warmup_s + options.duration_s + 0.05]))
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
        after = await scrape(session, murl) if before is not None else None
    finally:
        await client.close()
    target.postprocess(result.samples)
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
    stats["_samples"] = result  # removed before printing; tests and find-max may look
    return stats


def passes(stats: dict[str, Any], p95_ms: float | None) -> tuple[bool, str]:
    """Whether a run sustained its rate: the client kept to its schedule (sent >= 98% of the
    scheduled requests inside the window, send lag p99 within 10% of the p95 target, at least
    10 ms), achieved >= 98% of offered (less two standard errors of its window-edge noise), error
    rate < 1%, p95 within the target. The reason when not."""
    lag = (stats.get("send_lag_ms") or {}).get("p99")
    if p95_ms is not None:  # what matters is the lag against the target the latency is judged by
        client_ok = lag is None or lag <= max(10.0, 0.1 * p95_ms)
    else:
        client_ok = stats.get("generator_ok", True)
    sent, offered = stats.get("sent_in_window"), stats.get("offered_in_window")
    if not client_ok or (sent is not None and offered and sent < SUSTAINED_FRACTION * offered):
        return False, f"client fell behind (send lag p99 {lag or 0:.1f} ms)"
    achieved = stats.get("achieved")
    allowance = 2 * (stats.get("achieved_stderr") or 0.0)
    if achieved is None or achieved < SUSTAINED_FRACTION - allowance:
        return False, f"achieved {0 if achieved is None else achieved:.1%} of offered"
    if (stats.get("error_rate") or 0.0) >= MAX_ERROR_RATE:
        return False, f"error rate {stats['error_rate']:.2%}"
    p95 = (stats.get("latency_ms") or {}).get("p95")
    if p95_ms is not None and (p95 is None or p95 > p95_ms):
        return False, f"p95 {p95 if p95 is None else round(p95, 1)} ms > {p95_ms:g} ms"
    return True, "sustained"


async def search_max_rate(trial: Callable[[float], Awaitable[dict[str, Any]]], p95_ms: float, start_rate: float,
                          factor: float = 2.0, max_rate: float | None = None, bisect_steps: int = 4,
                          tolerance: float = 0.05, max_doublings: int = 16, max_halvings: int = 4,
                          cooldown: Callable[[], Awaitable[None]] | None = None) -> dict[str, Any]:
    """Step the rate up geometrically from `start_rate` until a run fails `passes`, then bisect
    (geometric midpoints) between the last pass and the first failure for up to `bisect_steps`
    runs or until they are within `tolerance`. When `start_rate` already fails, step down first."""
    steps: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any]] | None = None
    fail: float | None = None
    limited_by = None

    async def run(rate: float) -> bool:
        nonlocal limited_by
        if steps and cooldown is not None:
            await cooldown()
        stats = await trial(rate)
        ok, reason = passes(stats, p95_ms)
        steps.append({"rate": round(rate, 3), "requests_per_s": stats.get("requests_per_s"),
                      "achieved": stats.get("achieved"), "p95_ms": (stats.get("latency_ms") or {}).get("p95"),
                      "error_rate": stats.get("error_rate"), "pass": ok, "reason": reason})
        if not ok and reason.startswith("client"):
            limited_by = "client"
        nonlocal best
        if ok and (best is None or rate > best[0]):
            best = (rate, stats)
        return ok

    rate = start_rate
    if await run(rate):
        for _ in range(max_doublings):
            if max_rate is not None and rate >= max_rate:
                break
            nxt = rate * factor if max_rate is None else min(rate * factor, max_rate)
            if await run(nxt):
                rate = nxt
            else:
                fail = nxt
                break
    else:
        fail = rate
        for _ in range(max_halvings):
            if limited_by:
                break
            rate = rate / factor
            if await run(rate):
                break
            fail = rate
    while (best is not None and fail is not None and limited_by is None and bisect_steps > 0
           and fail / best[0] > 1 + tolerance):
        bisect_steps -= 1
        mid = math.sqrt(best[0] * fail)
        if not await run(mid):
            fail = mid
    if best is not None and limited_by == "client" and fail is not None and fail > best[0]:
        pass  # the limit found is the client's, said below
    return {
        "p95_target_ms": p95_ms,
        "max_sustained_rate": round(best[0], 3) if best else None,
        "first_failing_rate": round(fail, 3) if fail is not None else None,
        "limited_by": limited_by or ("server" if fail is not None else "max_rate"),
        "steps": steps,
        "best": best[1] if best else None,
    }


def _loop_policy(use_uvloop: bool) -> str:
    if use_uvloop:
        try:
            import uvloop  # type: ignore[import-not-found]

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            return "uvloop"
        except ImportError:
            pass
    asyncio.set_event_loop_policy(None)
    return "asyncio"


def public(stats: dict[str, Any]) -> dict[str, Any]:
    """The statistics without private keys (what --json prints)."""
    return {k: v for k, v in stats.items() if not k.startswith("_")}


async def bench_async(contract, options: BenchOptions) -> dict[str, Any]:
    """A single run, or the --find-max search; one JSON-ready dict."""
    target = Target(contract, options)
    header = {
        "task": contract.name,
        "contract_id": contract.id,
        "base_url": options.base_url,
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
            return await measure(target, options, rate=rate)

        async def cooldown() -> None:
            await asyncio.sleep(options.cooldown_s)

        search = await search_max_rate(trial, options.p95_ms, options.start_rate or options.rate or 10.0,
                                       factor=options.step_factor, max_rate=options.max_rate,
                                       bisect_steps=options.bisect_steps, cooldown=cooldown)
        best = search.pop("best")
        out = {**header, **public(best)} if best else {**header, "requests_per_s": None,
                                                         "latency_ms": {"p50": None, "p95": None, "p99": None},
                                                         "errors": None}
        out["find_max"] = search
        return out
    stats = await measure(target, options)
    return {**header, **public(stats)}


def run_bench(contract, options: BenchOptions) -> dict[str, Any]:
    """`bench_async` in its own event loop (uvloop when installed and asked for)."""
    loop_name = _loop_policy(options.uvloop)
    try:
        out = asyncio.run(bench_async(contract, options))
    finally:
        asyncio.set_event_loop_policy(None)
    out["loop"] = loop_name
    return out


def with_model_entry(options: BenchOptions, models_file, model_name: str) -> BenchOptions:
    """Options completed from a models.yaml entry (endpoint, model id, mode, key, gpu_hourly_usd);
    what was given on the command line wins."""
    from taskc.evaluate.models import load_models

    table = load_models(models_file)
    if model_name not in table:
        raise TaskcError(f"model '{model_name}' is not in {models_file} (known: {', '.join(sorted(table))})")
    entry = table[model_name]
    if entry.backend != "openai":
        raise TaskcError(f"taskc bench loads OpenAI-compatible servers; model '{model_name}' uses the {entry.backend} backend")
    return replace(
        options,
        base_url=options.base_url or entry.base_url or "",
        model=options.model or entry.model,
        mode=options.mode or entry.mode,
        api_key_env=options.api_key_env or entry.api_key_env,
        gpu_hourly_usd=options.gpu_hourly_usd if options.gpu_hourly_usd is not None else entry.gpu_hourly_usd,
    )
