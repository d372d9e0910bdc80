"""Validate and score each result by the contract's rules; run llm_judge verdicts via the runner."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from taskc.compiler.contract import Contract
from taskc.compiler.schemas import canonical_json
from taskc.constraints.ir import Constraint
from taskc.evaluate.validate import parse_output
from taskc.metrics import MetricInput, make_metric
from taskc.metrics.score import score_sample
from taskc.runner.types import Request, Result


class Scorer:
    """Turns a (request, result) pair into one samples.jsonl record."""

    def __init__(self, contract: Contract, split: str = "test"):
        self.contract = contract
        self.split = split
        self.output = contract.body["output"]
        self.validate_schema = contract.body["validate_schema"]
        self.metrics = [make_metric(m["name"], m["options"]) for m in contract.body["metrics"]]
        self.judges = [(m, spec) for m, spec in zip(self.metrics, contract.body["metrics"]) if spec["name"] == "llm_judge"]
        self.needs_judge = bool(self.judges)
        self._judge_usage: dict[str, Any] = {}

    def metric_input(self, index: int, raw: str | None, parsed: Any, judge_raw: str | None = None) -> MetricInput:
        """What every metric sees for one sample."""
        db = self.contract.database_of(self.split, index)
        return MetricInput(
            raw=raw, parsed=parsed, reference=self.contract.gold[self.split][index], output=self.output,
            database=str(db.path) if db else None, inputs=self.contract.inputs_of(self.split, index), judge_raw=judge_raw,
        )

    def sample(self, request: Request, result: Result) -> dict[str, Any]:
        """Validate and score one result (llm_judge scores are filled in by `judge`)."""
        parsed = parse_output(self.output, self.validate_schema, result.raw) if result.error is None else None
        valid = bool(parsed and parsed.valid)
        value = parsed.value if valid else None
        scores = score_sample([m for m in self.metrics if m.name != "llm_judge"],
                              self.metric_input(request.index, result.raw, value))
        return {
            "index": request.index,
            "repeat": request.repeat,
            "inputs": self.contract.inputs_of(self.split, request.index),
            "messages_hash": request.messages_hash,
            "raw": result.raw,
            "parsed": value,
            "valid": valid,
            "invalid_reason": None if valid or result.error else (parsed.error if parsed else "no output"),
            "scores": {name: s.value for name, s in scores.items()},
            "details": {name: s.detail for name, s in scores.items() if s.detail},
            "latency_s": round(result.latency_s, 6),
            "usage": {"input_tokens": result.usage.input_tokens, "output_tokens": result.usage.output_tokens,
                      "cached_input_tokens": result.usage.cached_input_tokens},
            "attempts": result.attempts,
            "cached": result.cached,
            "error": result.error,
        }

    async def judge(self, samples: list[dict[str, Any]], options) -> list[dict[str, Any]]:
        """Ask each llm_judge for a verdict on every sample (cached, retried); new records."""
        from taskc.evaluate.models import ModelConfig, cost_summary, make_backend
        from taskc.metrics.llm_judge import JUDGE_SCHEMA, judge_messages
        from taskc.runner.cache import ResultCache
        from taskc.runner.engine import run_requests

        out = [dict(s, scores=dict(s["scores"]), details=dict(s["details"])) for s in samples]
        for metric, spec in self.judges:
            judge = spec["options"].get("judge", {})
            config = ModelConfig(name=f"judge:{judge.get('model')}", backend=judge.get("backend", "openai"),
                                 model=judge.get("model", ""), base_url=judge.get("base_url"),
                                 api_key_env=judge.get("api_key_env"), price=judge.get("price"))
            requests = []
            for i, s in enumerate(out):
                messages = tuple(judge_messages(spec["options"].get("rubric", ""), s["inputs"],
                                                self.contract.gold_text(self.split, s["index"]), s["raw"] or ""))
                digest = hashlib.sha256(canonical_json(list(messages)).encode()).hexdigest()
                requests.append(Request(index=i, repeat=0, messages=messages, constraint=Constraint.json(JUDGE_SCHEMA),
                                        output_kind="object", generation={"temperature": 0.0, "max_tokens": 256},
                                        messages_hash=digest, strict_schema=JUDGE_SCHEMA, name="verdict"))
            backend = make_backend(config, self.contract)
            cache = ResultCache(options.out / ".cache.sqlite") if options.use_cache else None
            try:
                results = await run_requests(backend, requests, concurrency=options.concurrency, cache=cache,
                                             cache_namespace=self.contract.id + ":judge", timeout_s=options.timeout_s,
                                             max_attempts=options.max_attempts, progress=options.progress)
            finally:
                if cache is not None:
                    cache.close()
            usage = {"input_tokens": sum(r.usage.input_tokens for r in results),
                     "output_tokens": sum(r.usage.output_tokens for r in results),
                     "cached_input_tokens": sum(r.usage.cached_input_tokens for r in results)}
            self._judge_usage = {"model": config.model, "backend": config.backend, "tokens": usage,
                                 "errors": sum(1 for r in results if r.error),
                                 "cost": cost_summary(config, usage, len(results), None)}
            for s, r in zip(out, results):
                score = metric.score(self.metric_input(s["index"], s["raw"], s["parsed"], judge_raw=r.raw))
                s["judge_raw"] = r.raw
                s["scores"]["llm_judge"] = score.value
                s["details"]["llm_judge"] = dict(score.detail, **({"judge_error": r.error} if r.error else {}))
        return out

    def judge_summary(self) -> dict[str, Any] | None:
        """Judge tokens and cost, reported apart from the model's."""
        return self._judge_usage or None


def rescore(contract: Contract, predictions: list[dict[str, Any]]) -> dict[str, Any]:
    """Score saved outputs (samples.jsonl records or replay lines) without calling any model."""
    scorer = Scorer(contract)
    n_rows = len(contract.splits["test"].rows)
    per_metric: dict[str, list[float]] = {m["name"]: [] for m in contract.body["metrics"]}
    invalid = 0
    for line in predictions:
        index = line.get("index")
        if not isinstance(index, int) or not 0 <= index < n_rows:
            raise ValueError(f"prediction index {index!r} is not a row of the test split (0..{n_rows - 1})")
        raw = line.get("raw", line.get("output"))
        raw = raw if isinstance(raw, str) or raw is None else json.dumps(raw, ensure_ascii=False)
        parsed = parse_output(scorer.output, scorer.validate_schema, raw)
        invalid += 0 if parsed.valid else 1
        judge_raw = line.get("judge_raw")
        scores = score_sample(scorer.metrics, scorer.metric_input(index, raw, parsed.value if parsed.valid else None, judge_raw))
        for name, score in scores.items():
            per_metric.setdefault(name, []).append(score.value)
    n = len(predictions)
    return {"n": n, "metrics": {k: (sum(v) / len(v) if v else None) for k, v in per_metric.items()}, "invalid": invalid}
