"""The load generator's parts without a server: schedule, loops, statistics, metrics, the rate search."""

from __future__ import annotations

import asyncio
import itertools
import statistics as stats_mod
import time

import pytest

from taskc.bench.loadgen import (LoadResult, Sample, closed_loop, generator_ok, open_loop, percentile,
                                 poisson_schedule, statistics)
from taskc.bench.prom import (kv_cache_usage_name, memory, metrics_url, parse_prometheus, prefix_cache_hit_rate)
from taskc.bench.find_max import passes, search_max_rate
from taskc.bench.measure import cost_per_million


def test_poisson_schedule_is_seeded_and_exponential():
    a = list(itertools.islice(poisson_schedule(1000.0, seed=7), 20001))
    b = list(itertools.islice(poisson_schedule(1000.0, seed=7), 20001))
    c = list(itertools.islice(poisson_schedule(1000.0, seed=8), 20001))
    assert a == b and a != c
    assert a[0] == 0.0 and all(x < y for x, y in zip(a, a[1:]))
    gaps = [y - x for x, y in zip(a, a[1:])]
    mean = sum(gaps) / len(gaps)
    assert mean == pytest.approx(1e-3, rel=0.03)
    # exponential: standard deviation equals the mean, P(gap > mean) = 1/e
    assert stats_mod.pstdev(gaps) / mean == pytest.approx(1.0, rel=0.05)
    assert sum(g > mean for g in gaps) / len(gaps) == pytest.approx(0.3679, abs=0.015)
    with pytest.raises(ValueError):
        next(poisson_schedule(0.0))


def test_percentile_is_the_eval_definition():
    from taskc.evaluate import run

    assert run.percentile is percentile  # `taskc eval` and `taskc bench` share one definition
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 7.5]
    assert [percentile(values, q) for q in (0.0, 0.5, 1.0)] == [1.0, 4.0, 10.0]
    assert percentile(values, 0.95) == pytest.approx(9.25)
    assert percentile([], 0.5) is None
    assert percentile(list(range(101)), 0.95) == 95.0


def _sleeper(service_s: float, stall_at: int | None = None, stall_s: float = 0.0):
    """A send that answers after service_s; request number stall_at blocks the event loop for
    stall_s first (as a stalled client, or a GC pause, would)."""

    async def send(sample: Sample) -> None:
        sample.sent = time.monotonic()
        if sample.seq == stall_at:
            time.sleep(stall_s)  # blocks the whole loop: nothing else is sent meanwhile
        await asyncio.sleep(service_s)
        sample.done = time.monotonic()
        sample.raw = "ok"

    return send


def test_open_loop_counts_the_time_requests_waited_to_be_sent():
    """No coordinated omission: a 300 ms stall of the sender shows in the latency of every
    request scheduled during it, while a closed loop would report only its service times."""
    rate, service, stall = 200.0, 0.01, 0.3
    result = asyncio.run(open_loop(_sleeper(service, stall_at=100, stall_s=stall), rate, duration_s=1.5,
                                   warmup_s=0.2, seed=3, tail_s=0.5))
    out = statistics(result)
    stalled = [s for s in result.samples if s.seq > 100 and s.sent - s.scheduled > 0.05]
    # about rate * stall requests were due during the stall; each waited for it to end
    assert len(stalled) >= 0.5 * rate * stall
    for s in stalled:
        assert s.latency_s >= (s.sent - s.scheduled) + service * 0.9
    assert out["latency_ms"]["max"] >= 250  # the first request due in the stall waited ~300 ms
    assert out["send_lag_ms"]["max"] >= 250
    assert not generator_ok(out)
    # every request scheduled ran exactly once, in schedule order, rows cycled
    assert [s.seq for s in result.samples] == list(range(len(result.samples)))
    assert all(s.ok for s in result.samples if s.scheduled < result.window[1])

    closed = asyncio.run(closed_loop(_sleeper(service, stall_at=5, stall_s=stall), 2, duration_s=1.0, warmup_s=0.0))
    # a closed loop sees the stall in only C (= 2) requests, the ones in flight during it (a few
    # more allowed for the OS pausing this process on a loaded machine); the open loop in ~60
    slow_closed = sum(1 for s in closed.samples if s.ok and s.latency_s > 0.1)
    slow_open = sum(1 for s in result.samples if s.ok and s.latency_s > 0.1)
    assert slow_closed <= 6 and slow_open >= 0.3 * rate * stall


def test_open_loop_offers_the_rate_and_measures_the_window():
    rate = 400.0
    result = asyncio.run(open_loop(_sleeper(0.005), rate, duration_s=1.0, warmup_s=0.25, seed=1, n_rows=7))
    out = statistics(result)
    lo, hi = result.window
    measured = result.measured()
    assert out["measured"] == len(measured) == sum(1 for s in result.samples if lo <= s.scheduled < hi)
    assert out["offered_in_window"] == pytest.approx(len(measured) / 1.0)
    assert out["completed_in_window"] == sum(1 for s in result.samples if s.ok and lo <= s.done < hi)
    assert out["requests_per_s"] == pytest.approx(out["completed_in_window"] / 1.0)
    assert {s.row for s in result.samples} == set(range(7))
    assert all(s.row == s.seq % 7 for s in result.samples)
    # the realised schedule is the seeded Poisson sequence
    offsets = list(itertools.islice(poisson_schedule(rate, seed=1), len(result.samples)))
    assert [round(s.scheduled - result.t0, 9) for s in result.samples] == [round(x, 9) for x in offsets]
    assert out["errors"] == 0 and out["error_rate"] == 0.0


def test_closed_loop_keeps_c_in_flight():
    in_flight = peak = 0

    async def send(sample: Sample) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        sample.sent = time.monotonic()
        await asyncio.sleep(0.01)
        sample.done = time.monotonic()
        in_flight -= 1

    result = asyncio.run(closed_loop(send, 8, duration_s=0.5, warmup_s=0.1))
    out = statistics(result)
    assert peak == 8
    assert out["mode"] == "closed" and out["offered_rate"] is None and out["concurrency"] == 8
    # 8 workers x 10 ms: at most 800 completions/s
    assert 0 < out["requests_per_s"] <= 8 / 0.01 * 1.02


def test_errors_and_unanswered_requests_count_against_the_window():
    t0 = 100.0
    samples = [Sample(seq=i, row=0, scheduled=t0 + 0.1 * i, sent=t0 + 0.1 * i) for i in range(20)]
    for s in samples:
        s.done = s.scheduled + 0.05
    samples[12].error = "HTTP 500 server_error: boom"
    samples[13].done = None  # never answered
    result = LoadResult("open", 10.0, None, t0, 1.0, 1.0, samples, True, 3.0)
    out = statistics(result)
    assert out["measured"] == 10  # scheduled in [101, 102)
    assert out["errors"] == 2 and out["error_rate"] == 0.2
    assert out["first_errors"] == ["HTTP 500 server_error: boom", "no answer"]
    assert out["latency_ms"]["p50"] == pytest.approx(50.0)
    # completions inside [101, 102): seq 10..19 done at +0.05, minus the two failures
    assert out["completed_in_window"] == 8 and out["requests_per_s"] == 8.0
    # edge noise: sqrt(2 x 10/s x 0.05 s) / 10 measured
    assert out["achieved_stderr"] == pytest.approx(0.1, abs=1e-4)


PROM = """\
# HELP vllm:prefix_cache_queries_total Prefix cache queries
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 1000.0
vllm:prefix_cache_queries_total{engine="1",model_name="m"} 500.0
vllm:prefix_cache_hits_total{engine="0",model_name="m"} 600.0
vllm:prefix_cache_hits_total{engine="1",model_name="m"} 150.0
vllm:prefix_cache_queries_created{engine="0",model_name="m"} 1.7e9
vllm:external_prefix_cache_hits_total{engine="0",model_name="m"} 99.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="m"} 12.0
process_resident_memory_bytes 1.048576e+09
weird_nan NaN
"""


def test_prometheus_parsing_and_vllm_figures():
    m = parse_prometheus(PROM)
    assert m["vllm:prefix_cache_queries_total"] == 1500.0
    assert m["vllm:prefix_cache_hits_total"] == 750.0
    assert m["process_resident_memory_bytes"] == 1048576 * 1000
    assert "weird_nan" not in m
    before = {"vllm:prefix_cache_queries_total": 500.0, "vllm:prefix_cache_hits_total": 250.0}
    assert prefix_cache_hit_rate(before, m) == 0.5  # (750-250)/(1500-500); the external counter is ignored
    assert prefix_cache_hit_rate(None, m) == 0.5
    # an older server: a gpu_ prefix and a gauge only
    assert prefix_cache_hit_rate({}, {"vllm:gpu_prefix_cache_queries_total": 10.0,
                                      "vllm:gpu_prefix_cache_hits_total": 4.0}) == 0.4
    assert prefix_cache_hit_rate({}, {"vllm:gpu_prefix_cache_hit_rate": 0.3}) == 0.3
    assert prefix_cache_hit_rate({}, {"process_resident_memory_bytes": 1.0}) is None
    assert prefix_cache_hit_rate(None, None) is None
    assert kv_cache_usage_name({"vllm:gpu_cache_usage_perc": 0.1}) == "vllm:gpu_cache_usage_perc"
    mem = memory({"process_resident_memory_bytes": 5.0}, [m, {**m, "vllm:kv_cache_usage_perc": 0.75}], m)
    assert mem == {"resident_bytes": 1048576000, "kv_cache_usage_max": 0.75, "kv_cache_usage_mean": 0.5,
                   "kv_cache_metric": "vllm:kv_cache_usage_perc"}
    assert memory(None, [], None) is None
    assert memory({"vllm:num_requests_running": 1.0}, [], None) is None
    assert metrics_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/metrics"
    assert metrics_url("https://host/v1/") == "https://host/metrics"


def test_cost_per_million_requests():
    assert cost_per_million(3.6, 100.0) == pytest.approx(10.0)  # $3.6/h = $0.001/s; 100 req/s -> $1e-5 each
    assert cost_per_million(None, 100.0) is None
    assert cost_per_million(2.0, 0.0) is None


def _model_server(capacity: float, base_ms: float = 20.0):
    """A synthetic server for the search: M/M/1-like p95 growth, nothing above capacity sustained."""
    calls: list[float] = []

    async def trial(rate: float) -> dict:
        calls.append(rate)
        util = rate / capacity
        if util >= 1:
            return {"achieved": capacity / rate, "error_rate": 0.0, "latency_ms": {"p95": 10_000.0},
                    "requests_per_s": capacity, "generator_ok": True, "send_lag_ms": {"p99": 0.1}}
        p95 = base_ms * 3.0 / (1 - util)
        return {"achieved": 1.0, "error_rate": 0.0, "latency_ms": {"p95": p95}, "requests_per_s": rate,
                "generator_ok": True, "send_lag_ms": {"p99": 0.1}}

    return trial, calls


def test_find_max_steps_up_then_bisects():
    trial, calls = _model_server(capacity=1000.0)
    # p95 = 60 / (1 - r/1000) <= 300 ms  <=>  r <= 800
    out = asyncio.run(search_max_rate(trial, p95_ms=300.0, start_rate=10.0, bisect_steps=6, tolerance=0.02))
    assert calls[:8] == [10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, 1280.0]
    assert 760 <= out["max_sustained_rate"] <= 800
    assert out["first_failing_rate"] > 800
    assert out["limited_by"] == "server"
    assert [s["pass"] for s in out["steps"][:7]] == [True] * 7 and out["steps"][7]["pass"] is False
    assert out["steps"][7]["reason"].startswith("achieved")
    assert out["best"]["requests_per_s"] == pytest.approx(out["max_sustained_rate"], abs=1e-3)


def test_find_max_steps_down_when_the_start_fails_and_stops_at_max_rate():
    trial, calls = _model_server(capacity=100.0)
    out = asyncio.run(search_max_rate(trial, p95_ms=100.0, start_rate=400.0, bisect_steps=3))
    # 400 and 200 and 100 fail (p95 limit 100 ms <=> r <= 40), 50 fails, 25 passes, then bisection
    assert calls[:5] == [400.0, 200.0, 100.0, 50.0, 25.0]
    assert 25 <= out["max_sustained_rate"] <= 40
    trial, calls = _model_server(capacity=1e6)
    out = asyncio.run(search_max_rate(trial, p95_ms=1000.0, start_rate=10.0, max_rate=50.0))
    assert calls == [10.0, 20.0, 40.0, 50.0] and out["max_sustained_rate"] == 50.0
    assert out["limited_by"] == "max_rate"


def test_find_max_reports_a_client_limit():
    async def trial(rate: float) -> dict:
        ok = rate < 300
        return {"achieved": 1.0, "error_rate": 0.0, "latency_ms": {"p95": 10.0}, "requests_per_s": rate,
                "generator_ok": ok, "send_lag_ms": {"p99": 0.1 if ok else 80.0}}

    out = asyncio.run(search_max_rate(trial, p95_ms=100.0, start_rate=100.0))
    assert out["limited_by"] == "client" and out["max_sustained_rate"] == 200.0
    assert out["steps"][-1]["reason"] == "client fell behind (send lag p99 80.0 ms)"
    assert len(out["steps"]) == 3  # no bisection against a client limit


def test_passes_criteria():
    good = {"achieved": 0.985, "error_rate": 0.009, "latency_ms": {"p95": 99.0}, "generator_ok": True}
    assert passes(good, 100.0) == (True, "sustained")
    assert passes({**good, "achieved": 0.97}, 100.0)[0] is False
    # a short window's edge noise is allowed for: 2 standard errors
    assert passes({**good, "achieved": 0.95, "achieved_stderr": 0.02}, 100.0)[0] is True
    assert passes({**good, "achieved": 0.95, "achieved_stderr": 0.01}, 100.0) == (False, "achieved 95.0% of offered")
    assert passes({**good, "error_rate": 0.01}, 100.0) == (False, "error rate 1.00%")
    assert passes({**good, "latency_ms": {"p95": 101.0}}, 100.0) == (False, "p95 101.0 ms > 100 ms")
    # the client's own lateness is judged against the target: within 10% of it (at least 10 ms)
    assert passes({**good, "send_lag_ms": {"p99": 9.0}}, 100.0)[0] is True
    assert passes({**good, "send_lag_ms": {"p99": 12.0}}, 100.0) == (False, "client fell behind (send lag p99 12.0 ms)")
    assert passes({**good, "send_lag_ms": {"p99": 12.0}, "latency_ms": {"p95": 500.0}}, 1000.0)[0] is True
    # ... and it must have sent what was scheduled inside the window
    assert passes({**good, "sent_in_window": 95.0, "offered_in_window": 100.0}, 100.0)[0] is False


def test_sender_processes_split_fast_open_loops_up_to_the_cpu_count(monkeypatch):
    import os

    from taskc.bench.target import sender_processes

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert sender_processes(None, 500.0) == 1
    assert sender_processes(None, 800.0) == 1
    assert sender_processes(None, 1000.0) == 2
    assert sender_processes(None, 5000.0) == 2  # never more than the cores
    assert sender_processes(3, 5000.0) == 3  # --processes wins
    assert sender_processes(None, None) == 1  # closed loop: one process
