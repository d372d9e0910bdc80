"""The open loop over several sender processes, for rates one Python process cannot offer.

A Poisson process of rate R is the superposition of P independent Poisson processes of rate R/P,
so each of P spawned processes runs `open_loop` at R/P with its own seed (derived from the run's)
from one common start time, numbering its requests w, w + P, w + 2P, ... (so request ids and
row cycling stay those of one stream). Times are `time.monotonic` (the system-wide
CLOCK_MONOTONIC), comparable across processes; the samples are merged in the parent.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from taskc.bench.loadgen import LoadResult, open_loop
from taskc.bench.sender import loop_policy, make_sender, warm_up


def child_seed(seed: int, worker: int) -> int:
    return seed * 1_000_003 + worker


def _child(conn, wire, tag: str, rate: float, seed: int, duration_s: float, warmup_s: float, drain_s: float,
           n_rows: int, stride: int, offset: int, use_uvloop: bool) -> None:
    loop_policy(use_uvloop)
    try:
        result = asyncio.run(_child_run(conn, wire, tag, rate, seed, duration_s, warmup_s, drain_s, n_rows, stride,
                                        offset))
        conn.send((result.samples, result.drained))
    except BaseException as exc:  # noqa: BLE001 - report, do not hang the parent
        conn.send(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
    finally:
        conn.close()


async def _child_run(conn, wire, tag, rate, seed, duration_s, warmup_s, drain_s, n_rows, stride, offset) -> LoadResult:
    from taskc.runner.http import JsonClient

    client = JsonClient(concurrency=wire.max_connections, timeout_s=wire.timeout_s, max_attempts=1)
    try:
        send = make_sender(wire, client, tag)
        await warm_up(client, wire.url)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.send, "ready")
        t0 = await loop.run_in_executor(None, conn.recv)
        return await open_loop(send, rate, duration_s, warmup_s, seed=seed, n_rows=n_rows, drain_s=drain_s, t0=t0,
                               seq_stride=stride, seq_offset=offset)
    finally:
        await client.close()


async def open_loop_processes(wire, tag: str, rate: float, duration_s: float, warmup_s: float, *, seed: int,
                              n_rows: int, drain_s: float, processes: int, use_uvloop: bool = True,
                              start_lead_s: float = 0.1, on_start: Callable[[float], None] | None = None) -> LoadResult:
    """`open_loop` at `rate` split over `processes` spawned sender processes; merged samples."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    procs, conns = [], []
    try:
        for w in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_child, args=(child, wire, tag, rate / processes, child_seed(seed, w), duration_s,
                                                    warmup_s, drain_s, n_rows, processes, w, use_uvloop),
                               daemon=True, name=f"taskc-bench-sender-{w}")
            proc.start()
            child.close()
            procs.append(proc)
            conns.append(parent)
        for conn in conns:  # every sender imported and ready: then one common start
            if await loop.run_in_executor(None, conn.recv) != "ready":
                raise RuntimeError("a sender process failed to start")
        t0 = time.monotonic() + start_lead_s
        if on_start is not None:
            on_start(t0)
        for conn in conns:
            conn.send(t0)
        answers = await asyncio.gather(*(loop.run_in_executor(None, conn.recv) for conn in conns))
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    samples, drained = [], True
    for answer in answers:
        if isinstance(answer, Exception):
            raise RuntimeError(f"a sender process failed: {answer!r}")
        samples.extend(answer[0])
        drained = drained and answer[1]
    samples.sort(key=lambda s: s.scheduled)
    return LoadResult("open", rate, None, t0, warmup_s, duration_s, samples, drained, time.monotonic() - t0)
