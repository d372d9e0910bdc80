"""The load generator: open loop (Poisson arrivals) or closed loop (C in flight), and its statistics.

Open loop. Send times are scheduled in advance from a seeded exponential inter-arrival sequence
(`poisson_schedule`) and each request is launched at its time whether or not earlier ones have
answered. A request's latency is its completion minus its *scheduled* send time, so when the
client or the server falls behind, the waiting is counted (no coordinated omission). How late the
generator itself was (actual send minus scheduled) is reported as `send_lag_ms`; when it is large
the rate was not really offered, and the result says so.

Closed loop. C workers each send, wait for the answer, and send again; latency is completion
minus send.

Windows. Time 0 is the first scheduled arrival. Requests scheduled in [0, warmup) warm up; those
scheduled in [warmup, warmup + duration) are *measured*: latency percentiles, errors, accuracy.
Throughput is the number of successful completions that fall inside the window divided by its
length; `achieved` is that over the scheduled rate in the window, and `achieved_stderr` its
sampling noise from requests that straddle the window's edges (small for windows much longer than
the latency). In the open loop, arrivals keep coming after the window (while the generator is on
schedule) until every measured request has answered, so measured requests never see a lighter
load at the end; then the unmeasured tail is awaited briefly and cancelled.

Everything here is independent of what is sent: `send(sample)` is a coroutine the caller provides
(see `taskc.bench.sender.make_sender`) that fills in the sample's send and completion times and answer.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterator, Sequence

from taskc.common.percentiles import percentile

Clock = Callable[[], float]


@dataclass
class Sample:
    """One request as the generator saw it (times from `time.monotonic`)."""

    seq: int
    row: int
    scheduled: float
    sent: float = 0.0
    done: float | None = None
    first_token: float | None = None
    status: int = 0
    error: str | None = None
    raw: str | None = None
    usage: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def latency_s(self) -> float | None:
        return None if self.done is None else self.done - self.scheduled

    @property
    def ok(self) -> bool:
        return self.error is None and self.done is not None


Send = Callable[[Sample], Awaitable[None]]


@dataclass
class LoadResult:
    """What one run produced: every sample plus the window it was measured over."""

    mode: str  # "open" or "closed"
    rate: float | None
    concurrency: int | None
    t0: float
    warmup_s: float
    duration_s: float
    samples: list[Sample]
    drained: bool
    wall_s: float

    @property
    def window(self) -> tuple[float, float]:
        start = self.t0 + self.warmup_s
        return start, start + self.duration_s

    def measured(self) -> list[Sample]:
        """Samples scheduled inside the measurement window."""
        lo, hi = self.window
        return [s for s in self.samples if lo <= s.scheduled < hi]


def poisson_schedule(rate: float, seed: int = 0) -> Iterator[float]:
    """Arrival offsets (seconds from 0) of a Poisson process of `rate` per second, seeded.

    The first arrival is at 0; each later one follows an exponential gap of mean 1/rate.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    rng = random.Random(seed)
    t = 0.0
    while True:
        yield t
        t += rng.expovariate(rate)


async def open_loop(send: Send, rate: float, duration_s: float, warmup_s: float = 0.0, *, seed: int = 0,
                    n_rows: int = 1, drain_s: float = 30.0, tail_s: float = 1.0, clock: Clock = time.monotonic,
                    start_delay_s: float = 0.02, tail_slack_s: float = 0.05, t0: float | None = None,
                    seq_stride: int = 1, seq_offset: int = 0) -> LoadResult:
    """Send at Poisson times of `rate` for warmup + duration seconds, then on (while on schedule)
    until every measured request answered or `drain_s` passed. Request k gets number
    `k * seq_stride + seq_offset` (so several processes can share one numbering) and row
    number mod n_rows; `t0` (a `time.monotonic` value) fixes the start, else now + start_delay_s."""
    loop = asyncio.get_running_loop()
    schedule = poisson_schedule(rate, seed)
    t0 = clock() + start_delay_s if t0 is None else t0
    window_end = t0 + warmup_s + duration_s
    window_start = t0 + warmup_s
    samples: list[Sample] = []
    tasks: set[asyncio.Task] = set()
    outstanding_measured = 0
    all_measured_done = asyncio.Event()
    started = clock()

    async def one(sample: Sample, measured: bool) -> None:
        nonlocal outstanding_measured
        try:
            await send(sample)
        finally:
            if measured:
                outstanding_measured -= 1
                if outstanding_measured == 0 and clock() >= window_end:
                    all_measured_done.set()

    seq = 0
    next_at = t0 + next(schedule)
    drained = True
    while True:
        now = clock()
        if next_at >= window_end and now - next_at > tail_slack_s:
            # past the window and behind schedule: the unmeasured tail would only pile on more load
            next_at = math.inf
        while next_at <= now:
            measured = window_start <= next_at < window_end
            number = seq * seq_stride + seq_offset
            sample = Sample(seq=number, row=number % n_rows, scheduled=next_at)
            samples.append(sample)
            if measured:
                outstanding_measured += 1
            task = loop.create_task(one(sample, measured))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            seq += 1
            next_at = t0 + next(schedule)
        if next_at >= window_end:
            if outstanding_measured == 0:
                break
            if now > window_end + drain_s:
                drained = False
                break
        wait = min(next_at, window_end + drain_s + 0.001) - clock()
        if wait > 0:
            if next_at >= window_end and outstanding_measured:
                # past the window: sleep until the next arrival or until the last measured answer
                try:
                    await asyncio.wait_for(all_measured_done.wait(), timeout=wait)
                except asyncio.TimeoutError:
                    pass
            else:
                await asyncio.sleep(wait)
    await _finish(tasks, tail_s)
    return LoadResult("open", rate, None, t0, warmup_s, duration_s, samples, drained, clock() - started)


async def closed_loop(send: Send, concurrency: int, duration_s: float, warmup_s: float = 0.0, *, n_rows: int = 1,
                      drain_s: float = 30.0, clock: Clock = time.monotonic) -> LoadResult:
    """`concurrency` workers, each sending its next request when its previous one answered, for
    warmup + duration seconds; requests started before the end are awaited (up to `drain_s`)."""
    t0 = clock()
    window_end = t0 + warmup_s + duration_s
    samples: list[Sample] = []
    counter = iter(range(1 << 62))

    async def worker() -> None:
        while True:
            now = clock()
            if now >= window_end:
                return
            seq = next(counter)
            sample = Sample(seq=seq, row=seq % n_rows, scheduled=now)
            samples.append(sample)
            await send(sample)

    workers = [asyncio.ensure_future(worker()) for _ in range(max(1, concurrency))]
    done, pending = await asyncio.wait(workers, timeout=warmup_s + duration_s + drain_s)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    return LoadResult("closed", None, concurrency, t0, warmup_s, duration_s, samples, not pending, clock() - t0)


async def _finish(tasks: set[asyncio.Task], tail_s: float) -> None:
    """Give the unmeasured tail `tail_s` to answer, then cancel what is left."""
    if not tasks:
        return
    pending = set(tasks)
    _, still = await asyncio.wait(pending, timeout=tail_s)
    for task in still:
        task.cancel()
    if still:
        await asyncio.gather(*still, return_exceptions=True)


def _ms(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50": _r(percentile(values, 0.50)),
        "p95": _r(percentile(values, 0.95)),
        "p99": _r(percentile(values, 0.99)),
        "mean": _r(sum(values) / len(values)) if values else None,
        "max": _r(max(values)) if values else None,
    }


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def statistics(result: LoadResult) -> dict[str, Any]:
    """Throughput, latency, TTFT, send lag and errors of one run (see the module docstring)."""
    lo, hi = result.window
    measured = result.measured()
    ok = [s for s in measured if s.ok]
    completions = sum(1 for s in result.samples if s.ok and lo <= s.done < hi)  # type: ignore[operator]
    sent_in_window = sum(1 for s in result.samples if s.sent and lo <= s.sent < hi)
    window = result.duration_s
    rps = completions / window if window > 0 else None
    latencies = [s.latency_s * 1000.0 for s in ok]  # type: ignore[operator]
    ttfts = [(s.first_token - s.scheduled) * 1000.0 for s in ok if s.first_token is not None]
    lags = [(s.sent - s.scheduled) * 1000.0 for s in measured if s.sent]
    errors = [s for s in measured if not s.ok]
    offered_in_window = len(measured) / window if window > 0 else None
    # Window-edge noise of "completions in the window / scheduled in the window": the requests that
    # straddle either edge (about rate x mean latency at each) are a Poisson count, so the ratio's
    # standard error is about sqrt(2 x rate x mean latency) / measured.
    mean_latency_s = sum(latencies) / len(latencies) / 1000.0 if latencies else 0.0
    stderr = ((2 * (offered_in_window or 0.0) * mean_latency_s) ** 0.5 / len(measured)) if measured else None
    out: dict[str, Any] = {
        "mode": result.mode,
        "offered_rate": result.rate,
        "concurrency": result.concurrency,
        "warmup_s": result.warmup_s,
        "window_s": window,
        "measured": len(measured),
        "offered_in_window": _r(offered_in_window),
        "sent_in_window": _r(sent_in_window / window if window > 0 else None),
        "requests_per_s": _r(rps),
        "completed_in_window": completions,
        "achieved": (_r(rps / offered_in_window, 4) if rps is not None and offered_in_window and result.mode == "open"
                     else None),
        "achieved_stderr": _r(stderr, 4) if result.mode == "open" else None,
        "latency_ms": _ms(latencies),
        "ttft_ms": _ms(ttfts) if ttfts else None,
        "send_lag_ms": {"p50": _r(percentile(lags, 0.5)), "p99": _r(percentile(lags, 0.99)),
                        "max": _r(max(lags)) if lags else None},
        "errors": len(errors),
        "error_rate": _r(len(errors) / len(measured), 5) if measured else None,
        "first_errors": sorted({(s.error or "no answer")[:200] for s in errors})[:3],
        "drained": result.drained,
        "wall_s": _r(result.wall_s),
    }
    return out


def generator_ok(stats: dict[str, Any], *, max_lag_ms: float = 10.0, max_lag_frac: float = 0.05) -> bool:
    """Whether the generator kept to its schedule: send lag p99 within max(max_lag_ms, max_lag_frac
    x the latency p50). When it did not, the server was offered less than the nominal rate."""
    lag = (stats.get("send_lag_ms") or {}).get("p99")
    if lag is None:
        return True
    p50 = (stats.get("latency_ms") or {}).get("p50") or 0.0
    return lag <= max(max_lag_ms, max_lag_frac * p50)
