"""Run requests through a backend: cache first, then bounded concurrency, results as they come.

`run_requests` is the one place where caching, concurrency, retries (through the shared
`JsonClient`) and progress live; backends only render and parse. Nothing here raises for a
failed request: a backend exception for one request becomes that request's `Result(error=...)`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import replace
from typing import Callable, Sequence

from taskc.runner.cache import ResultCache, cache_key, decode_result
from taskc.runner.http import JsonClient, redact
from taskc.runner.types import Request, Result

OnResult = Callable[[Result], None]


def _error_result(request: Request, backend: object, exc: BaseException, started: float) -> Result:
    secrets = getattr(backend, "secrets", lambda: ())()
    message = redact(f"{type(exc).__name__}: {exc}", secrets)
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
) -> list[Result]:
    """Answer every request; return results in the order of `requests`.

    Cached results (same namespace, backend, model, rendered payload and repeat) are served
    first without sending anything and come back with `cached=True`. The rest go to
    `backend.generate(requests, client)` at once when `backend.batched`, else to
    `backend.generate_one(request, client)` with at most `concurrency` in flight. Every result
    is passed to `on_result` as soon as it exists (cached ones first) and, when successful and
    the backend is cacheable, handed to `cache` before that (committed within its
    `flush_interval_s`, and at the end of the run). HTTP backends share one
    `JsonClient(concurrency, timeout_s, max_attempts)` (or the `client` given, left open).
    `progress`: None shows a bar on a terminal stderr only.
    """
    requests = list(requests)
    results: list[Result | None] = [None] * len(requests)
    use_cache = cache is not None and getattr(backend, "cacheable", True)
    keys: list[str | None] = [None] * len(requests)
    todo: list[int] = []
    bar = _Progress(len(requests), progress, f"{getattr(backend, 'name', 'backend')}:{getattr(backend, 'model', '')}")

    timer: list[asyncio.TimerHandle] = []

    def flush_cache() -> None:
        timer.clear()
        cache.flush()  # type: ignore[union-attr]

    def deliver(i: int, result: Result) -> None:
        if use_cache and not result.cached and result.error is None:
            cache.put(keys[i], result)  # type: ignore[union-attr, arg-type]
            if cache.pending and not timer:  # type: ignore[union-attr]
                timer.append(asyncio.get_running_loop().call_later(cache.flush_interval_s, flush_cache))  # type: ignore[union-attr]
        results[i] = result
        bar.advance()
        if on_result is not None:
            on_result(result)

    try:
        if use_cache:
            name, model = getattr(backend, "name", ""), getattr(backend, "model", "")
            for i, r in enumerate(requests):
                keys[i] = cache_key(cache_namespace, name, model, backend.render(r), r.repeat)
            found = cache.get_many(k for k in keys if k is not None)  # type: ignore[union-attr]
            for i, r in enumerate(requests):
                value = found.get(keys[i])  # type: ignore[arg-type]
                if value is not None:
                    deliver(i, decode_result(value, r.index, r.repeat))
                else:
                    todo.append(i)
        else:
            todo = list(range(len(requests)))

        own_client = client is None and getattr(backend, "needs_http", False) and bool(todo)
        if own_client:
            client = JsonClient(concurrency=concurrency, timeout_s=timeout_s, max_attempts=max_attempts)
        try:
            if getattr(backend, "batched", False):
                await _run_batched(backend, requests, todo, client, deliver)
            else:
                await _run_each(backend, requests, todo, client, deliver, max(1, concurrency))
        finally:
            if own_client and client is not None:
                await client.close()
    finally:
        for handle in timer:
            handle.cancel()
        if use_cache:
            cache.flush()  # type: ignore[union-attr]
        bar.close()
    return results  # type: ignore[return-value]  (every slot is filled by now)


async def _run_batched(backend, requests, todo, client, deliver) -> None:
    if not todo:
        return
    batch = [requests[i] for i in todo]
    started = time.perf_counter()
    try:
        answers = await backend.generate(batch, client)
        if len(answers) != len(batch):
            raise RuntimeError(f"backend returned {len(answers)} results for {len(batch)} requests")
    except Exception as exc:  # one failure of a batched backend fails its whole batch, recorded
        answers = [_error_result(r, backend, exc, started) for r in batch]
    for i, result in zip(todo, answers):
        r = requests[i]
        if (result.index, result.repeat) != (r.index, r.repeat):
            result = replace(result, index=r.index, repeat=r.repeat)
        deliver(i, result)


async def _run_each(backend, requests, todo, client, deliver, concurrency: int) -> None:
    queue = iter(todo)

    async def worker() -> None:
        for i in queue:  # a shared iterator: each index is taken by exactly one worker
            r = requests[i]
            started = time.perf_counter()
            try:
                result = await backend.generate_one(r, client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                result = _error_result(r, backend, exc, started)
            deliver(i, result)

    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(todo)))]
    try:
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()


def run_requests_sync(backend, requests: Sequence[Request], **options) -> list[Result]:
    """`run_requests` from synchronous code (starts and closes its own event loop)."""
    return asyncio.run(run_requests(backend, requests, **options))
