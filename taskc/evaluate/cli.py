"""The terminal side of `taskc eval` and `taskc score`: choose models, run, print, exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from taskc.errors import TaskcError
from taskc.evaluate.models import ModelConfig, load_models


def _configs(backend, model, models, models_file, base_url, api_key_env, mode) -> list[ModelConfig]:
    if models:
        table = load_models(models_file)
        chosen = []
        for name in [m.strip() for m in models.split(",") if m.strip()]:
            if name not in table:
                raise TaskcError(f"model '{name}' is not in {models_file} (known: {', '.join(sorted(table))})")
            chosen.append(table[name])
        return chosen
    backend = backend or "baseline"
    if backend in ("openai", "anthropic", "vllm", "transformers") and not model:
        raise TaskcError(f"--backend {backend} needs --model")
    default_model = {"baseline": "tfidf-1nn", "gold": "gold"}.get(backend, model or backend)
    return [ModelConfig(name=f"{backend}:{model or default_model}" if backend not in ("baseline", "gold") else backend,
                        backend=backend, model=model or default_model, base_url=base_url, api_key_env=api_key_env,
                        mode=mode, predictions=model if backend == "replay" else None)]


def _fmt(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def run_eval(contracts, *, backend, model, models, models_file, base_url, api_key_env, mode, repeats, temperature,
             limit, concurrency, use_cache, out, timeout, progress, max_attempts: int = 5) -> int:
    """Evaluate every (contract, model) pair; 0 when all ran, 1 when every request of a run failed."""
    from taskc.backends.base import BackendUnavailable
    from taskc.evaluate.run import EvalOptions, evaluate

    options = EvalOptions(repeats=repeats, temperature=temperature, limit=limit, concurrency=concurrency,
                          use_cache=use_cache, out=out, progress=progress, timeout_s=timeout,
                          max_attempts=max_attempts)
    code = 0
    for config in _configs(backend, model, models, models_file, base_url, api_key_env, mode):
        for contract in contracts:
            try:
                summary = evaluate(contract, config, options)
            except BackendUnavailable as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            code = max(code, _report(summary, out))
    return code


def _report(summary: dict[str, Any], out: Path) -> int:
    metrics = ", ".join(f"{k} {_fmt(v['mean'])} ± {_fmt(v['std'])}" for k, v in summary["metrics"].items())
    lat = summary["latency_ms"]
    cost = summary["cost"].get("usd_per_million_requests")
    print(f"{summary['task']} · {summary['model_name']} · contract {summary['contract_id'][:12]} · n={summary['n']}")
    print(f"  {metrics}")
    print(f"  invalid {summary['invalid']} ({summary['invalid_rate']:.1%}) · errors {summary['errors']} · cached {summary['cached']}"
          f" · p50 {_fmt(lat['p50'], 1)} ms · p95 {_fmt(lat['p95'], 1)} ms · {_fmt(summary['requests_per_s'], 1)} req/s"
          f" · ${_fmt(cost, 2)} per 1M requests")
    print(f"  -> {out / summary['task'] / summary['run_id']}/")
    for warning in summary["warnings"]:
        print(f"  warning: {warning}", file=sys.stderr)
    if summary["n"] and summary["errors"] == summary["n"]:
        print(f"error: every request failed; first errors:", file=sys.stderr)
        for error in summary["first_errors"]:
            print(f"  {error}", file=sys.stderr)
        return 1
    return 0


def run_score(contract, predictions: Path, as_json: bool) -> int:
    """Re-score a predictions file; print a table or one JSON object."""
    from taskc.evaluate.scoring import rescore

    try:
        lines = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as exc:
        raise TaskcError(f"cannot read {predictions}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise TaskcError(f"{predictions}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    try:
        result = rescore(contract, lines)
    except ValueError as exc:
        raise TaskcError(str(exc)) from None
    if as_json:
        print(json.dumps(result))
    else:
        print(f"{contract.name}: n={result['n']} invalid={result['invalid']}")
        for name, mean in result["metrics"].items():
            print(f"  {name}: {_fmt(mean, 4)}")
    return 0


def teacher_config(teacher: str, models_file: Path, base_url: str | None) -> ModelConfig:
    """A synth teacher: a models.yaml name, or BACKEND:MODEL (with --base-url)."""
    if models_file.is_file():
        table = load_models(models_file)
        if teacher in table:
            return table[teacher]
    if ":" not in teacher:
        raise TaskcError(f"teacher '{teacher}' is neither in {models_file} nor of the form BACKEND:MODEL")
    backend, model = teacher.split(":", 1)
    return ModelConfig(name=f"teacher:{teacher}", backend=backend, model=model, base_url=base_url)
