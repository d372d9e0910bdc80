"""Comparing what the load generator reports with what the latency server recorded itself."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from taskc.bench.measure import Measurement, measure
from taskc.bench.sender import loop_policy as _loop_policy
from taskc.bench.target import BenchOptions, Target
from taskc.common.percentiles import percentile

QS = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def run(contract, server, **options: Any) -> Measurement:
    """One `measure` against `server` (uvloop, as `taskc bench` runs)."""
    options.setdefault("drain_s", 10.0)
    opts = BenchOptions(base_url=server.base_url, model="fake", **options)
    _loop_policy(True)
    try:
        return asyncio.run(measure(Target(contract, opts), opts))
    finally:
        asyncio.set_event_loop_policy(None)


@dataclass
class Truth:
    """The server's view of the measured requests, matched to the client's samples by request id."""

    stats: dict[str, Any]
    load: Any  # the LoadResult the statistics came from
    pairs: list[tuple[Any, dict[str, Any]]]  # (Sample, server record) for measured, answered requests
    records: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, measurement: Measurement, server) -> "Truth":
        stats = measurement.stats
        records = server.records(stats["request_id_prefix"])
        tag = stats["request_id_prefix"]
        pairs = []
        for s in measurement.load.measured():
            rec = records.get(f"{tag}-{s.seq}")
            if s.ok and rec is not None:
                pairs.append((s, rec))
        return cls(stats, measurement.load, pairs, records)

    @property
    def window(self) -> tuple[float, float]:
        return self.load.window

    def server_latency_ms(self) -> dict[str, float]:
        """Percentiles of queue + service time as the server recorded them."""
        values = [(r["t_out"] - r["t_in"]) * 1000 for _, r in self.pairs]
        return {k: percentile(values, q) for k, q in QS.items()}

    def server_ttft_ms(self) -> dict[str, float]:
        values = [(r["t_first"] - r["t_in"]) * 1000 for _, r in self.pairs]
        return {k: percentile(values, q) for k, q in QS.items()}

    def overhead_ms(self) -> float:
        """p99 of what the client adds to the server's time (its own send lag + both transfers)."""
        values = [((s.done - s.scheduled) - (r["t_out"] - r["t_in"])) * 1000 for s, r in self.pairs]
        return percentile(values, 0.99) or 0.0

    def server_completions_per_s(self) -> float:
        """Successful responses the server finished inside the window, per second."""
        lo, hi = self.window
        n = sum(1 for r in self.records.values() if r["status"] == 200 and lo <= r["t_out"] < hi)
        return n / (hi - lo)

    def server_arrivals_per_s(self) -> float:
        """Requests that reached the server inside the window, per second."""
        lo, hi = self.window
        return sum(1 for r in self.records.values() if lo <= r["t_in"] < hi) / (hi - lo)

    def check_causality(self) -> None:
        """Exact, load-independent: every measured latency starts at the scheduled time, no request
        left before its time, and each answer came back after the server sent it."""
        assert self.pairs, "no measured request was answered"
        for s, r in self.pairs:
            assert s.sent >= s.scheduled
            assert r["t_in"] >= s.sent, "the server saw the request before the client sent it?"
            assert s.done >= r["t_out"], "the client finished before the server answered?"
            assert s.latency_s == s.done - s.scheduled
        lat = [s.latency_s * 1000 for s in (x for x in self.load.measured() if x.ok)]
        for k, q in QS.items():
            assert abs(self.stats["latency_ms"][k] - percentile(lat, q)) < 1e-2


def rel(a: float, b: float) -> float:
    """|a - b| / b."""
    return abs(a - b) / b
