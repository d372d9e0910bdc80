"""The terminal side of `taskc bench`: options in, a short report or one JSON object out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from taskc.errors import TaskcError


def _f(value: Any, digits: int = 1, suffix: str = "") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{suffix}"


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / 2**20:,.0f} MiB"


def format_text(out: dict[str, Any]) -> str:
    """The human-readable report of one bench result."""
    lines = []
    fm = out.get("find_max")
    if fm and fm.get("max_sustained_rate") is None:
        lines.append(f"{out['task']} · {out['model']} @ {out['base_url']} · contract {out['contract_id'][:12]} · find-max")
        lines.append(f"  find-max    p95 target {fm['p95_target_ms']:g} ms: no rate was sustained (limited by {fm['limited_by']})")
        for step in fm["steps"]:
            lines.append(f"    {step['rate']:>10,.1f}/s -> {_f(step['requests_per_s'])}/s, p95 {_f(step['p95_ms'])} ms,"
                         f" errors {_f((step['error_rate'] or 0) * 100, 2)}%: {step['reason']}")
        return "\n".join(lines)
    load = (f"open loop, Poisson {round(out['offered_rate'], 2):g} requests/s" if out.get("offered_rate") is not None
            else f"closed loop, {out.get('concurrency')} in flight")
    lines.append(f"{out['task']} · {out['model']} @ {out['base_url']} · contract {out['contract_id'][:12]} · {load}"
                 f"{' · stream' if out.get('stream') else ''}")
    lat = out.get("latency_ms") or {}
    lines.append(f"  throughput  {_f(out.get('requests_per_s'))} requests/s sustained over {out.get('window_s', 0):g} s"
                 f" (warm-up {out.get('warmup_s', 0):g} s excluded)"
                 + (f"; offered {_f(out.get('offered_in_window'))}/s, achieved {_f((out.get('achieved') or 0) * 100)}%"
                    if out.get("achieved") is not None else ""))
    if (out.get("processes") or 1) > 1:
        lines.append(f"  senders     {out['processes']} processes, each a Poisson stream of {out['offered_rate'] / out['processes']:g}/s")
    lines.append(f"  latency     p50 {_f(lat.get('p50'))} ms · p95 {_f(lat.get('p95'))} ms · p99 {_f(lat.get('p99'))} ms"
                 f" (from {'scheduled ' if out.get('mode') == 'open' else ''}send; {out.get('measured', 0)} measured requests)")
    if out.get("ttft_ms"):
        t = out["ttft_ms"]
        lines.append(f"  first token p50 {_f(t.get('p50'))} ms · p95 {_f(t.get('p95'))} ms · p99 {_f(t.get('p99'))} ms")
    lag = out.get("send_lag_ms") or {}
    if out.get("offered_rate") is not None:
        lines.append(f"  send lag    p50 {_f(lag.get('p50'), 2)} ms · p99 {_f(lag.get('p99'), 2)} ms"
                     f" ({'on schedule' if out.get('generator_ok') else 'BEHIND SCHEDULE'}; loop {out.get('loop', '?')})")
    acc = out.get("accuracy")
    acc_text = ", ".join(f"{k} {v:.3f}" for k, v in acc.items()) if acc else "-"
    lines.append(f"  errors      {out.get('errors')} ({_f((out.get('error_rate') or 0) * 100, 2)}%) · invalid {out.get('invalid')}"
                 f" · accuracy under load: {acc_text} (over {out.get('rows_measured', '?')} distinct rows)")
    mem = out.get("memory") or {}
    hit = out.get("prefix_cache_hit_rate")
    if out.get("metrics_found"):
        lines.append(f"  server      resident {_bytes(mem.get('resident_bytes'))} · KV cache max "
                     f"{_f((mem.get('kv_cache_usage_max') or 0) * 100) if mem.get('kv_cache_usage_max') is not None else '-'}%"
                     f" · prefix-cache hit rate {_f(hit * 100) + '%' if hit is not None else '-'}")
    else:
        lines.append(f"  server      no metrics at {out.get('metrics_url') or '(not scraped)'}")
    prefix = out.get("static_prefix")
    if prefix:
        lines.append(f"  prefix      {prefix.get('messages')} whole messages, {prefix.get('chars')} chars"
                     + (f", {prefix['tokens']} Qwen tokens" if prefix.get("tokens") is not None else "")
                     + f" shared by {prefix.get('scope')}")
    if out.get("gpu_hourly_usd") is not None:
        lines.append(f"  cost        ${_f(out.get('cost_per_million_requests'), 2)} per million requests"
                     f" at ${out['gpu_hourly_usd']:g}/hour")
    if fm:
        lines.append(f"  find-max    p95 target {fm['p95_target_ms']:g} ms: highest sustained rate "
                     f"{_f(fm['max_sustained_rate'])} requests/s (limited by {fm['limited_by']})")
        for step in fm["steps"]:
            lines.append(f"    {step['rate']:>10,.1f}/s -> {_f(step['requests_per_s'])}/s, p95 {_f(step['p95_ms'])} ms,"
                         f" errors {_f((step['error_rate'] or 0) * 100, 2)}%: {step['reason']}")
    for warning in out.get("warnings") or ():
        lines.append(f"  warning: {warning}")
    return "\n".join(lines)


def bench_options(*, base_url: str | None, model: str | None, rate: float | None, concurrency: int | None,
                  find_max: bool, processes: int | None, **settings: Any):
    """The command line's options as one `BenchOptions`, after the checks the loop modes need."""
    from taskc.bench.target import BenchOptions

    if find_max:
        if rate is None:
            rate = 10.0
        if concurrency is not None:
            raise TaskcError("--find-max steps the open-loop rate; do not give --concurrency")
    elif (rate is None) == (concurrency is None):
        raise TaskcError("give exactly one of --rate (open loop) and --concurrency (closed loop)")
    if processes is not None and (processes < 1 or (processes > 1 and concurrency is not None)):
        raise TaskcError("--processes splits the open loop's Poisson stream: give it with --rate, at least 1")
    return BenchOptions(base_url=base_url or "", model=model or "", rate=rate, concurrency=concurrency,
                        find_max=find_max, start_rate=rate, processes=processes, **settings)


def bench_command(contract, options, *, as_json: bool = False, out: Path | None = None,
                  models_file: Path | None = None, model_name: str | None = None) -> int:
    """Run `taskc bench` for one compiled contract; print; return the exit code (0 ok, 1 when every
    measured request failed or --find-max found no sustainable rate)."""
    from taskc.bench.run import run_bench
    from taskc.bench.target import with_model_entry

    if model_name:
        options = with_model_entry(options, models_file or Path("models.yaml"), model_name)
    if not options.base_url or not options.model:
        raise TaskcError("taskc bench needs --base-url and --model (or --model-name from --models-file)")
    result = run_bench(contract, options)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if as_json:
        print(json.dumps(result))
    else:
        print(format_text(result))
    for warning in result.get("warnings") or ():
        if as_json:
            print(f"warning: {warning}", file=sys.stderr)
    if options.find_max and (result.get("find_max") or {}).get("max_sustained_rate") is None:
        return 1
    if result.get("measured") and result.get("errors") == result.get("measured"):
        return 1
    return 0
