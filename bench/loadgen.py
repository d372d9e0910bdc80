"""Load generator accuracy: `taskc bench`'s figures against the truth of a server with known latency.

Starts tests/fakes/latency_server.py (lognormal delay cycle of 1,000 quantiles, median 100 ms, sigma 0.5; no
capacity limit; `--server-workers` processes on one port) in subprocesses, then for each rate runs
the open-loop generator exactly as `taskc bench` does (banking77's requests through JsonClient,
retries off, uvloop) and compares, over the same requests (matched by x-request-id):

- latency p50/p95/p99 reported (completion - scheduled send) vs the server's own recorded
  queue + service times, and vs the delay cycle's exact percentiles;
- requests/s reported (completions in the window) vs completions the server counted in the window;
- rate the server received in the window vs the rate scheduled (did the client offer it?);
- the client's send lag and CPU per request.

    python bench/loadgen.py [--rates 500,1000,2000] [--duration 5] [--warmup 1] [--server-workers 2]
                            [--processes 1,2]

`--processes 1,2` runs every rate with one sender process and with two (the Poisson stream split
in two, `taskc bench --processes 2`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from taskc.bench.measure import measure  # noqa: E402
from taskc.bench.sender import loop_policy  # noqa: E402
from taskc.bench.target import BenchOptions, Target, sender_processes  # noqa: E402
from taskc.common.percentiles import percentile  # noqa: E402
from taskc.compiler.build import compile_spec  # noqa: E402
from tests.fakes.latency_server import LatencyServer  # noqa: E402

QS = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def compare(measurement, server: LatencyServer) -> dict:
    tag = measurement.stats["request_id_prefix"]
    records = server.records(tag)
    result = measurement.load
    lo, hi = result.window
    pairs = [(s, records[f"{tag}-{s.seq}"]) for s in result.measured() if s.ok and f"{tag}-{s.seq}" in records]
    server_ms = [(r["t_out"] - r["t_in"]) * 1000 for _, r in pairs]
    overhead = [((s.done - s.scheduled) - (r["t_out"] - r["t_in"])) * 1000 for s, r in pairs]
    return {
        "server": {k: percentile(server_ms, q) for k, q in QS},
        "cycle": {k: server.true_percentile_ms(q) for k, q in QS},
        "server_completions_per_s": sum(1 for r in records.values() if r["status"] == 200 and lo <= r["t_out"] < hi) / (hi - lo),
        "server_arrivals_per_s": sum(1 for r in records.values() if lo <= r["t_in"] < hi) / (hi - lo),
        "overhead_p50": percentile(overhead, 0.5),
        "overhead_p99": percentile(overhead, 0.99),
        "matched": len(pairs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="500,1000,2000")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument("--median-ms", type=float, default=100.0)
    parser.add_argument("--cycle", type=int, default=1000,
                        help="delay quantiles per cycle: with 100 the p99 falls between the 99th and 100th "
                             "quantiles, 66 ms apart, where a few ms of jitter on one request moves it")
    parser.add_argument("--spec", default=str(ROOT / "specs" / "banking77.yaml"))
    parser.add_argument("--processes", default="auto",
                        help="comma-separated sender process counts to try ('auto': taskc bench's default)")
    args = parser.parse_args()
    contract = compile_spec(Path(args.spec))
    loop = loop_policy(True)
    print(f"cpus={os.cpu_count()} load1={os.getloadavg()[0]:.2f} loop={loop} server_workers={args.server_workers} "
          f"delays: lognormal median {args.median_ms:g} ms sigma 0.5 (cycle of {args.cycle}), window {args.duration:g} s "
          f"after {args.warmup:g} s warm-up, spec {Path(args.spec).name}")
    with LatencyServer(workers=args.server_workers, median_ms=args.median_ms, answer="card_arrival",
                       cycle=args.cycle) as server:
        for rate, asked in [(float(r), None if p == "auto" else int(p)) for r in args.rates.split(",")
                            for p in args.processes.split(",")]:
            processes = sender_processes(asked, rate)
            opts = BenchOptions(base_url=server.base_url, model="fake", rate=rate, duration_s=args.duration,
                                warmup_s=args.warmup, drain_s=20.0, processes=processes)
            target = Target(contract, opts)
            load_before = os.getloadavg()[0]
            cpu0 = time.process_time()
            measurement = asyncio.run(measure(target, opts))
            stats = measurement.stats
            cpu = time.process_time() - cpu0
            truth = compare(measurement, server)
            n = len(measurement.load.samples)
            lat = stats["latency_ms"]
            print(f"\nrate {rate:,.0f}/s, {processes} sender process{'es' if processes > 1 else ''}"
                  f" (load1 {load_before:.1f} -> {os.getloadavg()[0]:.1f})")
            print(f"  offered in window   {stats['offered_in_window']:9,.1f}/s   server received {truth['server_arrivals_per_s']:9,.1f}/s"
                  f"   ({truth['server_arrivals_per_s'] / stats['offered_in_window'] - 1:+.2%})")
            print(f"  reported req/s      {stats['requests_per_s']:9,.1f}/s   server completed {truth['server_completions_per_s']:9,.1f}/s"
                  f"   ({stats['requests_per_s'] / truth['server_completions_per_s'] - 1:+.2%}); achieved {stats['achieved']:.2%}"
                  f" of offered (edge noise +-{stats['achieved_stderr']:.2%})")
            for k, _ in QS:
                print(f"  latency {k}         {lat[k]:9,.1f} ms  server {truth['server'][k]:9,.1f} ms"
                      f"   ({lat[k] / truth['server'][k] - 1:+.2%});  cycle {truth['cycle'][k]:7,.1f} ms ({lat[k] / truth['cycle'][k] - 1:+.2%})")
            print(f"  client adds         p50 {truth['overhead_p50']:.2f} ms, p99 {truth['overhead_p99']:.2f} ms;"
                  f" send lag p50 {stats['send_lag_ms']['p50']} ms p99 {stats['send_lag_ms']['p99']} ms;"
                  f" on schedule: {stats['generator_ok']}")
            cpu_note = f"{cpu / n * 1e3:.3f} ms/request" if processes == 1 else "(in the sender processes, not counted)"
            print(f"  client CPU          {cpu_note} ({n} requests incl. warm-up and tail);"
                  f" errors {stats['errors']}; matched {truth['matched']}/{stats['measured']}")


if __name__ == "__main__":
    main()
