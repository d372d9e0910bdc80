"""The load generator against a server whose behaviour is known (tests/fakes/latency_server.py).

Each test first checks what holds on any machine, however loaded: every latency runs from the
scheduled send time, the server saw each request after it was sent and answered before the client
finished, the reported figures are exactly those of the samples, and a generator that fell behind
says so. Then it compares the figures with the server's truth: percentiles within 5% of the
server's own recorded queue + service times (and of the delay cycle's exact percentiles), requests/s
within 2% of the completions the server counted, the rate the server received within 2% of the
rate scheduled. Those comparisons fail the test when this machine kept up (the client added little
to the server's times and kept its schedule); when it did not, a miss is explained by the machine,
not the measurement, and the test is skipped with the figures. `bench/loadgen.py` records 2,000/s.
"""

from __future__ import annotations

import json
import warnings

import pytest

from tests.bench._truth import QS, Truth, rel, run
from tests.fakes.latency_server import LatencyServer, cycle_percentile

CORRECT_ROWS = {0, 3, 4, 7, 8, 9}  # yesno.csv rows whose text is their gold label
INVALID_ROWS = {2, 6}  # "maybe": not a label


def _healthy(truth: Truth, frac: float = 0.04) -> tuple[bool, str]:
    """Could this machine be expected to hit 5%? The client's own additions (send lag + both
    transfers) at p99 within `frac` of the server's median time, and the generator on schedule."""
    overhead = truth.overhead_ms()
    server_p50 = truth.server_latency_ms()["p50"]
    ok = overhead <= frac * server_p50 and truth.stats["generator_ok"]
    why = (f"machine too loaded for 5%: client overhead p99 {overhead:.1f} ms vs server p50 "
           f"{server_p50:.1f} ms, send lag p99 {truth.stats['send_lag_ms']['p99']} ms")
    return ok, why


def _kept_schedule(truth: Truth) -> tuple[bool, str]:
    """Did the client offer the rate (on schedule, answers read within 20 ms at p99)?"""
    overhead = truth.overhead_ms()
    ok = truth.stats["generator_ok"] and overhead <= 20.0
    return ok, (f"this machine could not offer {truth.stats['offered_rate']:g}/s: send lag p99 "
                f"{truth.stats['send_lag_ms']['p99']} ms, client overhead p99 {overhead:.1f} ms")


def _verdict(misses: list[str], expected: tuple[bool, str]) -> None:
    """Fail on any miss when the machine kept up. When it did not, the comparison with the
    server's truth is not this test's to make (timing on a loaded machine; bench/loadgen.py
    measures it on a quiet one): the misses are reported as a warning with the figures that
    explain them, and the exact checks above still hold."""
    if not misses:
        return
    ok, why = expected
    if ok:
        pytest.fail("; ".join(misses))
    warnings.warn(f"not compared to the server's truth: {why}; measured: {'; '.join(misses)}", stacklevel=2)


def _check_throughput(truth: Truth) -> None:
    stats = truth.stats
    # exact: what was reported is what the samples say
    lo, hi = truth.window
    done_in_window = [s for s in truth.load.samples if s.ok and lo <= s.done < hi]
    assert stats["completed_in_window"] == len(done_in_window)
    assert stats["requests_per_s"] == pytest.approx(len(done_in_window) / (hi - lo), abs=1e-3)
    if not stats["generator_ok"]:
        assert any("fell behind" in w for w in stats["warnings"])


def _rate_misses(truth: Truth, rate: float) -> list[str]:
    """Throughput against the server's own count, and the achieved rate against the offered one."""
    stats = truth.stats
    misses = []
    assert stats["errors"] == 0
    # the realised Poisson rate is the nominal one, up to its own sampling noise (4 sigma)
    n = stats["measured"]
    assert abs(n - rate * stats["window_s"]) <= 4 * (rate * stats["window_s"]) ** 0.5
    # the server counted the same completions in the window (each answer reaches the client
    # within a few ms of the server sending it)
    server_done = truth.server_completions_per_s()
    if rel(stats["requests_per_s"], server_done) > 0.02:
        misses.append(f"requests/s {stats['requests_per_s']} vs server-counted {server_done:.1f}")
    # the generator offered the rate: the server received the scheduled requests in the window
    received = truth.server_arrivals_per_s()
    if rel(received, stats["offered_in_window"]) > 0.02:
        misses.append(f"server received {received:.1f}/s of {stats['offered_in_window']}/s scheduled")
    # completions over scheduled in the window: 2%, or 3 standard errors of its window-edge noise
    # (requests straddling an edge) when that is larger (low rates, long latencies, short windows)
    tolerance = max(0.02, 3 * stats["achieved_stderr"])
    if abs(stats["achieved"] - 1.0) > tolerance:
        misses.append(f"achieved {stats['achieved']} (tolerance {tolerance:.3f})")
    return misses


def _percentile_misses(truth: Truth, field: str = "latency_ms", server: dict | None = None) -> list[str]:
    server = server or truth.server_latency_ms()
    return [f"{field} {k} {truth.stats[field][k]} vs server {server[k]:.1f}"
            for k in QS if rel(truth.stats[field][k], server[k]) > 0.05]


def test_payloads_are_what_eval_sends(yesno):
    from taskc.backends.openai_chat import OpenAIChatBackend
    from taskc.bench.target import BenchOptions, Target
    from taskc.runner.http import loads

    opts = BenchOptions(base_url="http://127.0.0.1:9/v1", model="m", rate=1.0)
    target = Target(yesno, opts)
    backend = OpenAIChatBackend(model="m", base_url="http://127.0.0.1:9/v1")
    assert target.n_rows == 10
    for request, payload in zip(yesno.requests(), target.payloads):
        body = loads(payload)
        assert body == backend.render(request)
        assert body["structured_outputs"] == {"choice": ["yes", "no"]}
        assert not any(k.startswith("guided_") for k in body)
        assert "stream" not in body
    streamed = Target(yesno, BenchOptions(base_url="http://127.0.0.1:9/v1", model="m", rate=1.0, stream=True))
    body = loads(streamed.payloads[0])
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert Target(yesno, BenchOptions(base_url="http://127.0.0.1:9/v1", model="m", rate=1.0, limit=3)).n_rows == 3


def test_latency_percentiles_match_the_servers_own(yesno, slow_server):
    m = run(yesno, slow_server, rate=200.0, duration_s=3.0, warmup_s=0.5)
    stats = m.stats
    truth = Truth.of(m, slow_server)
    truth.check_causality()
    _check_throughput(truth)
    assert len(truth.pairs) == stats["measured"]  # every measured request reached the server
    # the server's own times are the delay cycle's (under capacity: no queue)
    server = truth.server_latency_ms()
    for k, q in QS.items():
        assert rel(server[k], cycle_percentile(slow_server.delays_ms, q)) <= 0.05
    misses = _rate_misses(truth, 200.0) + _percentile_misses(truth)
    misses += [f"{k} {stats['latency_ms'][k]} vs cycle {slow_server.true_percentile_ms(q):.1f}" for k, q in QS.items()
               if rel(stats["latency_ms"][k], slow_server.true_percentile_ms(q)) > 0.05]
    _verdict(misses, _healthy(truth))


@pytest.mark.parametrize("rate,duration", [(100.0, 3.0), (500.0, 2.0), (1000.0, 2.0), (2000.0, 2.0)])
def test_rates_up_to_2000_per_second(yesno, slow_server, rate, duration):
    m = run(yesno, slow_server, rate=rate, duration_s=duration, warmup_s=0.5)
    truth = Truth.of(m, slow_server)
    truth.check_causality()
    _check_throughput(truth)
    _verdict(_rate_misses(truth, rate), _kept_schedule(truth))
    _verdict(_percentile_misses(truth), _healthy(truth))


def test_queueing_beyond_capacity_is_in_the_latency(yesno):
    """8 slots, 40-60 ms service: about 160 requests/s at most. At 140/s requests queue, and the
    latency reported is the server's queue + service time."""
    with LatencyServer(workers=1, delays_ms=[40.0, 50.0, 60.0, 45.0, 55.0], capacity=8, echo=True) as server:
        m = run(yesno, server, rate=140.0, duration_s=3.0, warmup_s=0.5)
        stats = m.stats
        truth = Truth.of(m, server)
    truth.check_causality()
    _check_throughput(truth)
    waits = [r["t_start"] - r["t_in"] for _, r in truth.pairs]
    assert max(waits) > 0.02  # requests did queue
    assert stats["latency_ms"]["p99"] > 60.0  # above the longest service time: the queue is counted
    _verdict(_percentile_misses(truth), _healthy(truth))


def test_streaming_time_to_first_token_and_server_metrics(yesno):
    """Median 300 ms, the first token at half of it: TTFT p50 150 ms."""
    with LatencyServer(workers=1, median_ms=300.0, first_token_frac=0.5, echo=True) as slow_server:
        m = run(yesno, slow_server, rate=50.0, duration_s=2.0, warmup_s=0.5, stream=True)
        stats = m.stats
        truth = Truth.of(m, slow_server)
    truth.check_causality()
    for s, r in truth.pairs:
        assert r["t_first"] is not None and s.first_token >= r["t_first"]
        assert s.raw == ["yes", "no", "maybe", "yes", "no", "yes", "maybe", "yes", "no", "yes"][s.row]
        assert s.usage.output_tokens == 1
    assert stats["ttft_ms"] is not None
    # the fake's metrics: 75 hits per 100 queried tokens, its RSS, its slots in use
    assert stats["prefix_cache_hit_rate"] == 0.75
    assert stats["memory"]["resident_bytes"] > 10_000_000
    assert 0.0 <= stats["memory"]["kv_cache_usage_max"] <= 1.0
    assert stats["metrics_found"] is True
    misses = _percentile_misses(truth) + _percentile_misses(truth, "ttft_ms", truth.server_ttft_ms())
    # first token at half of each delay
    misses += [f"ttft {k} {stats['ttft_ms'][k]} vs 0.5 x cycle" for k, q in QS.items()
               if rel(stats["ttft_ms"][k], 0.5 * slow_server.true_percentile_ms(q)) > 0.05]
    _verdict(misses, _healthy(truth))


def test_errors_accuracy_and_invalid_outputs_under_load(yesno):
    """Every 7th request fails with HTTP 500; answers echo the row's text, so which are right,
    wrong and invalid is known for every request."""
    with LatencyServer(workers=1, median_ms=5.0, error_every=7, echo=True, metrics=False) as server:
        m = run(yesno, server, rate=300.0, duration_s=2.0, warmup_s=0.3)
        stats = m.stats
    measured = m.load.measured()
    failing = [s for s in measured if s.seq % 7 == 0]
    answered = [s for s in measured if s.seq % 7 != 0]
    assert stats["errors"] == len(failing) and all(not s.ok for s in failing)
    assert stats["error_rate"] == pytest.approx(len(failing) / len(measured), abs=1e-5)
    assert any(e.startswith("HTTP 500 server_error: scripted failure") for e in stats["first_errors"])
    assert stats["answered"] == len(answered)
    expected = sum(1 for s in answered if s.row in CORRECT_ROWS) / len(answered)
    assert stats["accuracy"] == {"exact_match": pytest.approx(expected, abs=1e-6)}
    assert stats["invalid"] == sum(1 for s in answered if s.row in INVALID_ROWS)
    assert stats["invalid_reasons"] and "maybe" in stats["invalid_reasons"][0]
    # no /metrics: nulls, not errors
    assert stats["memory"] is None and stats["prefix_cache_hit_rate"] is None and stats["metrics_found"] is False


def bench_cmd(contract, *, duration: float, warmup: float, as_json: bool = False, out=None, models_file=None,
              model_name=None, find_max: bool = False, **flags):
    """`taskc bench` as the command line calls it: the flags become one BenchOptions."""
    from taskc.bench.cli import bench_command, bench_options

    options = bench_options(duration_s=duration, warmup_s=warmup, find_max=find_max, processes=None, **flags)
    return bench_command(contract, options, as_json=as_json, out=out, models_file=models_file, model_name=model_name)


def test_bench_cmd_prints_one_json_object(yesno, fast_server, tmp_path, capsys):
    from taskc.bench.cli import format_text

    models = tmp_path / "models.yaml"
    models.write_text(f"models:\n  tiny:\n    backend: openai\n    model: fake\n    base_url: {fast_server.base_url}\n"
                      f"    gpu_hourly_usd: 3.6\n")
    out_file = tmp_path / "bench.json"
    code = bench_cmd(yesno, base_url=None, model=None, rate=50.0, concurrency=None, duration=1.0, warmup=0.2,
                     as_json=True, models_file=models, model_name="tiny", out=out_file)
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out_file.read_text())
    for key in ("requests_per_s", "latency_ms", "errors", "offered_rate", "achieved", "accuracy", "invalid",
                "memory", "prefix_cache_hit_rate", "static_prefix", "cost_per_million_requests"):
        assert key in printed, key
    assert set(printed["latency_ms"]) >= {"p50", "p95", "p99"}
    assert printed["offered_rate"] == 50.0 and printed["model"] == "fake" and printed["gpu_hourly_usd"] == 3.6
    assert printed["requests_per_s"] > 0
    assert printed["cost_per_million_requests"] == pytest.approx(3.6 / 3600 / printed["requests_per_s"] * 1e6, rel=1e-4)
    assert printed["static_prefix"] == {"scope": "all rows", "messages": 1, "chars": 136, "tokens": 28, "tokenizer": "qwen"}
    assert printed["task"] == "yesno" and printed["contract_id"] == yesno.id
    text = format_text(printed)
    assert "requests/s sustained" in text and "$" in text and "28 Qwen tokens" in text

    # closed loop, through the same command
    code = bench_cmd(yesno, base_url=fast_server.base_url, model="fake", rate=None, concurrency=4, duration=0.5,
                     warmup=0.1, as_json=True)
    closed = json.loads(capsys.readouterr().out)
    assert code == 0 and closed["mode"] == "closed" and closed["concurrency"] == 4 and closed["requests_per_s"] > 0


def test_bench_cmd_rejects_bad_options(yesno):
    from taskc.errors import TaskcError

    common = dict(duration=1.0, warmup=0.0, as_json=True)
    with pytest.raises(TaskcError, match="exactly one of --rate"):
        bench_cmd(yesno, base_url="http://127.0.0.1:9/v1", model="m", rate=1.0, concurrency=2, **common)
    with pytest.raises(TaskcError, match="needs --base-url"):
        bench_cmd(yesno, base_url=None, model="m", rate=1.0, concurrency=None, **common)
    with pytest.raises(TaskcError, match="--find-max needs --p95-ms"):
        bench_cmd(yesno, base_url="http://127.0.0.1:9/v1", model="m", rate=None, concurrency=None, find_max=True, **common)


def test_find_max_against_a_capacity_limited_server(yesno):
    """4 slots of 20 ms: at most 200 requests/s. The search must stop below that."""
    from taskc.bench.run import bench_async
    from taskc.bench.sender import loop_policy as _loop_policy
    from taskc.bench.target import BenchOptions
    import asyncio

    with LatencyServer(workers=1, delays_ms=[20.0], capacity=4, echo=True) as server:
        opts = BenchOptions(base_url=server.base_url, model="fake", duration_s=0.8, warmup_s=0.2, find_max=True,
                            p95_ms=80.0, start_rate=50.0, bisect_steps=2, cooldown_s=0.2)
        _loop_policy(True)
        try:
            out = asyncio.run(bench_async(yesno, opts))
        finally:
            asyncio.set_event_loop_policy(None)
    fm = out["find_max"]
    rates = [s["rate"] for s in fm["steps"]]
    assert rates[0] == 50.0
    if fm["steps"][0]["pass"]:
        assert rates[1] == 100.0  # geometric steps up
    for step in fm["steps"]:
        if step["pass"]:
            assert step["p95_ms"] <= 80.0 and step["achieved"] >= 0.9 and step["error_rate"] < 0.01
    if fm["limited_by"] == "client":
        pytest.skip(f"the client could not offer the rates here: {fm['steps']}")
    assert fm["limited_by"] == "server"
    # (a 0.8 s window: achieved is allowed two standard errors of window-edge noise, a few %)
    assert fm["max_sustained_rate"] is not None and 25.0 <= fm["max_sustained_rate"] <= 200.0 * 1.06
    assert fm["first_failing_rate"] > fm["max_sustained_rate"]
    assert out["requests_per_s"] is not None and out["latency_ms"]["p95"] <= 80.0


def test_several_sender_processes_make_one_poisson_stream(yesno, fast_server):
    m = run(yesno, fast_server, rate=300.0, duration_s=2.0, warmup_s=1.0, processes=2)
    stats = m.stats
    truth = Truth.of(m, fast_server)
    truth.check_causality()
    _check_throughput(truth)
    samples = m.load.samples
    seqs = [s.seq for s in samples]
    assert len(set(seqs)) == len(seqs)  # one numbering: process w sends w, w + 2, w + 4, ...
    assert {s % 2 for s in seqs} == {0, 1} and all(s.row == s.seq % 10 for s in samples)
    assert [s.scheduled for s in samples] == sorted(s.scheduled for s in samples)
    assert stats["processes"] == 2
    # the superposition of two Poisson streams of 150/s is one of 300/s
    n = stats["measured"]
    assert abs(n - 300.0 * 2.0) <= 4 * (300.0 * 2.0) ** 0.5
    _verdict(_rate_misses(truth, 300.0), _kept_schedule(truth))
