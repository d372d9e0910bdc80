"""Run requests through a backend: cache first, then bounded concurrency, results as they come.

`run_requests` is the one place where caching, concurrency, retries (through the shared
`JsonClient`) and progress live; backends only render and parse. Nothing here raises for a
failed request: a backend exception for one request becomes that request's `Result(error=...)`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from dataclasses import replace
from typing import Any, Callable, Protocol, Sequence

from taskc.runner.cache import ResultCache, decode_result, request_keys
from taskc.runner.http import JsonClient, redact
from taskc.runner.types import Request, Result

OnResult = Callable[[Result], None]


class StopFlag(Protocol):
    """What `run_requests` checks before sending more (a `threading.Event` will do)."""

    def is_set(self) -> bool: ...


def _error_result(request: Request, backend, exc: BaseException, started: float) -> Result:
    message = redact(f"{type(exc).__name__}: {exc}", backend.secrets())
    return Result(request.index, request.repeat, raw=None, error=message, latency_s=time.perf_counter() - started)


class _Progress:
    """A rich progress bar on stderr (rate and ETA), or nothing."""

    def __init__(self, total: int, enabled: bool | None, label: str) -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        self._bar = None
        if enabled and total:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn,
                                       TextColumn, TimeElapsedColumn, TimeRemainingColumn)
            from rich.text import Text

            class _Rate(ProgressColumn):
                def render(self, task):  # type: ignore[override]
                    speed = task.finished_speed or task.speed
                    return Text(f"{speed:,.1f} req/s" if speed else "- req/s")

            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _Rate(),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


#: Below this many answers per second each answer is committed to the cache as it comes (a
#: commit costs about 0.1 ms, so this is under 2% of a core); above it answers are committed in
#: batches every `flush_interval_s`. Answers from a paid (non-loopback) endpoint are always
#: committed at once: after a kill, a rerun re-sends only what was in flight.
COMMIT_EACH_BELOW_PER_S = 200.0
#: Workers are started this many at a time, each group given a turn of the loop before the next.
RAMP_STEP = 16


class _CommitPolicy:
    """Decides, per answer, whether the cache commits now or within its flush interval."""

    def __init__(self, always: bool, window_s: float = 0.5) -> None:
        self.always = always
        self.window_s = window_s
        self._times: deque[float] = deque()

    def commit_now(self) -> bool:
        if self.always:
            return True
        now = time.monotonic()
        times = self._times
        times.append(now)
        while times and now - times[0] > self.window_s:
            times.popleft()
        return len(times) / self.window_s < COMMIT_EACH_BELOW_PER_S


async def run_requests(
    backend,
    requests: Sequence[Request],
    *,
    concurrency: int = 64,
    cache: ResultCache | None = None,
    cache_namespace: str = "",
    timeout_s: float = 60.0,
    max_attempts: int = 5,
    on_result: OnResult | None = None,
    progress: bool | None = None,
    client: JsonClient | None = None,
    stop: StopFlag | None = None,
) -> list[Result]:
    """Answer every request; return results in the order of `requests`.

    When `stop` is set (Ctrl-C), nothing more is sent: the requests in flight (a batched
    backend's current chunk of `backend.chunk_size`) finish and are delivered, and the results
    returned are those that exist, still in request order.

    Cached results (same namespace, backend, model, rendered payload and repeat) are served
    first without sending anything and come back with `cached=True`. The rest go to
    `backend.generate(requests, client, payloads)` at once when `backend.batched`, else to
    `backend.generate_one(request, client, payload)` with at most `concurrency` in flight; each
    request is rendered once, and that payload is both the cache key and what is sent. Every
    result is passed to `on_result` as soon as it exists (cached ones first) and, when
    successful and the backend is cacheable, handed to `cache` before that: committed at once
    for a paid endpoint or at low rates, else within the cache's `flush_interval_s`, and at the
    end of the run. HTTP backends share one `JsonClient(concurrency, timeout_s, max_attempts)`
    (or the `client` given, left open). `progress`: None shows a bar on a terminal stderr only.
    """
    requests = list(requests)
    results: list[Result | None] = [None] * len(requests)
    use_cache = cache is not None and backend.cacheable
    keys: list[str | None] = [None] * len(requests)
    payloads: list[Any] | None = None
    todo: list[int] = []
    bar = _Progress(len(requests), progress, f"{backend.name}:{backend.model}")
    policy = _CommitPolicy(always=backend.remote)

    timer: list[asyncio.TimerHandle] = []

    def flush_cache() -> None:
        timer.clear()
        cache.flush()  # type: ignore[union-attr]

    def deliver(i: int, result: Result) -> None:
        if use_cache and not result.cached and result.error is None:
            cache.put(keys[i], result)  # type: ignore[union-attr, arg-type]
            if policy.commit_now():
                cache.flush()  # type: ignore[union-attr]
            elif cache.pending and not timer:  # type: ignore[union-attr]
                timer.append(asyncio.get_running_loop().call_later(cache.flush_interval_s, flush_cache))  # type: ignore[union-attr]
        results[i] = result
        bar.advance()
        if on_result is not None:
            on_result(result)

    try:
        if use_cache:
            payloads = [backend.render(r) for r in requests]
            keys[:] = request_keys(cache_namespace, backend, requests, payloads)
            found = cache.get_many(k for k in keys if k is not None)  # type: ignore[union-attr]
            for i, r in enumerate(requests):
                value = found.get(keys[i])  # type: ignore[arg-type]
                if value is not None:
                    deliver(i, decode_result(value, r.index, r.repeat))
                else:
                    todo.append(i)
        else:
            todo = list(range(len(requests)))

        own_client = client is None and backend.needs_http and bool(todo)
        if own_client:
            client = JsonClient(concurrency=concurrency, timeout_s=timeout_s, max_attempts=max_attempts)
        try:
            if backend.batched:
                await _run_batched(backend, requests, payloads, todo, client, deliver, stop)
            else:
                await _run_each(backend, requests, payloads, todo, client, deliver, max(1, concurrency), stop)
        finally:
            if own_client and client is not None:
                await client.close()
    finally:
        for handle in timer:
            handle.cancel()
        if use_cache:
            cache.flush()  # type: ignore[union-attr]
        bar.close()
    if stop is not None and stop.is_set():
        return [r for r in results if r is not None]
    return results  # type: ignore[return-value]  (every slot is filled by now)


async def _run_batched(backend, requests, payloads, todo, client, deliver, stop) -> None:
    if not todo:
        return
    size = backend.chunk_size or len(todo)
    for start in range(0, len(todo), size):
        if stop is not None and stop.is_set():
            return
        chunk = todo[start : start + size]
        batch = [requests[i] for i in chunk]
        started = time.perf_counter()
        try:
            answers = await backend.generate(batch, client, None if payloads is None else [payloads[i] for i in chunk])
            if len(answers) != len(batch):
                raise RuntimeError(f"backend returned {len(answers)} results for {len(batch)} requests")
        except Exception as exc:  # one failure of a batched backend fails its whole batch, recorded
            answers = [_error_result(r, backend, exc, started) for r in batch]
        for i, result in zip(chunk, answers):
            r = requests[i]
            if (result.index, result.repeat) != (r.index, r.repeat):
                result = replace(result, index=r.index, repeat=r.repeat)
            deliver(i, result)


async def _run_each(backend, requests, payloads, todo, client, deliver, concurrency: int, stop) -> None:
    queue = iter(todo)

    async def worker() -> None:
        for i in queue:  # a shared iterator: each index is taken by exactly one worker
            if stop is not None and stop.is_set():
                return
            r = requests[i]
            started = time.perf_counter()
            try:
                result = await backend.generate_one(r, client, None if payloads is None else payloads[i])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                result = _error_result(r, backend, exc, started)
            deliver(i, result)

    workers: list[asyncio.Task] = []
    try:
        for n in range(min(concurrency, len(todo))):
            workers.append(asyncio.create_task(worker()))
            if n % RAMP_STEP == RAMP_STEP - 1:
                # let these connect and send before the next ones are set up: with all 256 set
                # up first, the first request left 50-200 ms after the run started (bench/vs_lm_eval.py)
                await asyncio.sleep(0)
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()


def run_requests_sync(backend, requests: Sequence[Request], **options) -> list[Result]:
    """`run_requests` from synchronous code (starts and closes its own event loop)."""
    return asyncio.run(run_requests(backend, requests, **options))
