"""Validate and score each result by the contract's rules; llm_judge verdicts through the runner."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from taskc.backends.config import ModelConfig
from taskc.common.encoding import messages_hash
from taskc.compiler.contract import Contract
from taskc.constraints.ir import Constraint
from taskc.evaluate.cost import total_usage
from taskc.evaluate.validate import parse_output
from taskc.metrics import MetricInput, make_metric
from taskc.metrics.base import MetricScore
from taskc.metrics.score import aggregate, score_sample
from taskc.runner.types import Request, Result, Usage


class Scorer:
    """Turns a (request, result) pair into one samples.jsonl record (pure: it holds only what
    the contract fixes, and no state between calls)."""

    def __init__(self, contract: Contract, split: str = "test"):
        self.contract = contract
        self.split = split
        self.output = contract.body["output"]
        self.validate_schema = contract.body["validate_schema"]
        self.metrics = [make_metric(m["name"], m["options"]) for m in contract.body["metrics"]]
        self.judges = [(m, spec) for m, spec in zip(self.metrics, contract.body["metrics"]) if spec["name"] == "llm_judge"]
        self.needs_judge = bool(self.judges)
        #: metrics scored in one batch once the answers are in (SQL execution, across processes)
        self.deferred = [m for m in self.metrics if m.batched]

    def metric_input(self, index: int, raw: str | None, parsed: Any, judge_raw: str | None = None) -> MetricInput:
        """What every metric sees for one sample."""
        db = self.contract.database_of(self.split, index)
        return MetricInput(
            raw=raw, parsed=parsed, reference=self.contract.gold[self.split][index], output=self.output,
            database=str(db.path) if db else None, inputs=self.contract.inputs_of(self.split, index), judge_raw=judge_raw,
        )

    def sample(self, request: Request, result: Result) -> dict[str, Any]:
        """Validate and score one result (llm_judge scores are added by `judge_samples`)."""
        parsed = parse_output(self.output, self.validate_schema, result.raw) if result.error is None else None
        valid = bool(parsed and parsed.valid)
        value = parsed.value if valid else None
        scores = score_sample([m for m in self.metrics if m.name != "llm_judge" and not m.batched],
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
            "usage": usage_dict(result.usage),
            "attempts": result.attempts,
            "cached": result.cached,
            "error": result.error,
        }

    def score_deferred(self, samples: Sequence[dict[str, Any]], jobs: int | None = None) -> tuple[dict[str, Any], ...]:
        """The samples with the batched metrics' scores added (`jobs` worker processes; None: one
        per core); new records, in order."""
        if not self.deferred or not samples:
            return tuple(samples)
        from taskc.metrics.batch import score_many

        inputs = [self.metric_input(s["index"], s["raw"], s["parsed"] if s["valid"] else None) for s in samples]
        out = [dict(s, scores=dict(s["scores"]), details=dict(s["details"])) for s in samples]
        for metric in self.deferred:
            for record, score in zip(out, score_many(metric, inputs, jobs)):
                record["scores"][metric.name] = score.value
                if score.detail:
                    record["details"][metric.name] = score.detail
        return tuple(out)

    def aggregate(self, samples: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """`{metric: metric.aggregate(...)}` over the samples that carry its score (extra keys such
        as `per_field` or `stages` come from the metric itself)."""
        return aggregate(self.metrics, [{name: MetricScore(value, s["details"].get(name, {}))
                                         for name, value in s["scores"].items()} for s in samples])


def usage_dict(usage: Usage) -> dict[str, int]:
    """Token counts as samples.jsonl and summary.json write them."""
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cached_input_tokens": usage.cached_input_tokens}


@dataclass(frozen=True)
class JudgeSpec:
    """Which model judges an llm_judge metric: `config` the one that scores, `spec` the one the
    spec's `judge:` option names; `overridden` when they are not the same backend and model."""

    config: ModelConfig
    spec: ModelConfig | None = None

    @property
    def overridden(self) -> bool:
        """True when another backend or model than the spec's judge scores (`--judge`)."""
        return self.spec is not None and (self.config.backend, self.config.model) != (self.spec.backend, self.spec.model)

    @classmethod
    def of(cls, options: dict[str, Any], judge: str | None = None, judge_base_url: str | None = None,
           models_file: Path | None = None) -> "JudgeSpec":
        """The judge of a metric's options, or the `--judge NAME|BACKEND:MODEL` override (a
        models-file name or BACKEND:MODEL; `--judge-base-url` points it, or the spec's own judge
        when no `--judge` is given, at another endpoint). A `TaskcError` for an unknown name."""
        from dataclasses import replace

        from taskc.backends.config import resolve_model

        named = options.get("judge", {})
        spec = ModelConfig(name=f"judge:{named.get('model')}", backend=named.get("backend", "openai"),
                           model=named.get("model", ""), base_url=named.get("base_url"),
                           api_key_env=named.get("api_key_env"), price=named.get("price"))
        if judge:
            config = resolve_model(judge, models_file or Path("models.yaml"), judge_base_url, role="judge")
        else:
            config = spec
        if judge_base_url:
            config = replace(config, base_url=judge_base_url)
        return cls(config, spec)

    def describe(self) -> dict[str, Any]:
        """What summary.json records about this judge (no secrets: the key's variable name)."""
        from taskc.common.endpoints import redact_url

        c = self.config
        out: dict[str, Any] = {"model": c.model, "backend": c.backend, "scored_by": f"{c.backend}:{c.model}",
                               "base_url": redact_url(c.base_url), "overridden": self.overridden}
        if self.spec is not None:
            out["spec_judge"] = f"{self.spec.backend}:{self.spec.model}"
        return out


def judge_specs(scorer: "Scorer", options: Any) -> list[JudgeSpec]:
    """The judge of each llm_judge metric of the contract under the run's options (`judge`,
    `judge_base_url`, `models_file`); [] with `no_judge`."""
    if getattr(options, "no_judge", False):
        return []
    return [JudgeSpec.of(spec["options"], getattr(options, "judge", None), getattr(options, "judge_base_url", None),
                         getattr(options, "models_file", None))
            for _, spec in scorer.judges]


@dataclass(frozen=True)
class Judged:
    """The samples with their llm_judge scores, and what judging used (reported apart)."""

    samples: tuple[dict[str, Any], ...]
    usage: dict[str, Any] | None
    not_computed: dict[str, dict[str, Any]] | None = None  # metric -> summary entry (`--no-judge`)


def judge_requests(scorer: Scorer, samples: Sequence[dict[str, Any]], rubric: str) -> list[Request]:
    """One verdict request per sample (its inputs, gold and answer under the rubric)."""
    from taskc.metrics.llm_judge import JUDGE_SCHEMA, judge_messages

    requests = []
    for i, s in enumerate(samples):
        messages = tuple(judge_messages(rubric, s["inputs"], scorer.contract.gold_text(scorer.split, s["index"]), s["raw"] or ""))
        requests.append(Request(index=i, repeat=0, messages=messages, constraint=Constraint.json(JUDGE_SCHEMA),
                                output_kind="object", generation={"temperature": 0.0, "max_tokens": 256},
                                messages_hash=messages_hash(messages), strict_schema=JUDGE_SCHEMA, name="verdict"))
    return requests


async def judge_samples(scorer: Scorer, samples: Sequence[dict[str, Any]], context) -> Judged:
    """Ask each llm_judge for a verdict on every sample through the run's context (the same
    cache, client, concurrency and `--batch` as the model's requests); new records, and what
    judging used: which judge scored (`--judge` overrides are marked `overridden`) and its
    tokens and cost. With `--no-judge` nothing is sent and the judge metrics are reported as not
    computed (`Judged.not_computed`), never as 0."""
    from taskc.backends import make_backend
    from taskc.evaluate.cost import batch_share, cost_summary

    options = getattr(context, "options", None)
    if getattr(options, "no_judge", False):
        entry = {"mean": None, "std": None, "per_repeat": [], "computed": False, "reason": "not computed (--no-judge)"}
        return Judged(tuple(samples), {"computed": False, "reason": "--no-judge"},
                      {metric.name: dict(entry) for metric, _ in scorer.judges})
    out = [dict(s, scores=dict(s["scores"]), details=dict(s["details"])) for s in samples]
    usage = None
    for (metric, spec), judge in zip(scorer.judges, judge_specs(scorer, options)):
        config = judge.config
        requests = judge_requests(scorer, out, spec["options"].get("rubric", ""))
        backend = make_backend(config, scorer.contract)
        results = await context.run(backend, requests, scorer.contract.id + ":judge")
        tokens = total_usage(results)
        share = batch_share(results)
        usage = {**judge.describe(), "tokens": tokens, "errors": sum(1 for r in results if r.error),
                 "cost": cost_summary(config, tokens, len(results), None, share),
                 "batch_requests": share["requests"]}
        for s, r in zip(out, results):
            score = metric.score(scorer.metric_input(s["index"], s["raw"], s["parsed"], judge_raw=r.raw))
            s["judge_raw"] = r.raw
            s["judge"] = usage["scored_by"]
            s["scores"]["llm_judge"] = score.value
            s["details"]["llm_judge"] = dict(score.detail, **({"judge_error": r.error} if r.error else {}))
    return Judged(tuple(out), usage)


def rescore(contract: Contract, predictions: list[dict[str, Any]], jobs: int | None = None) -> dict[str, Any]:
    """Score saved outputs (samples.jsonl records or replay lines) without calling any model: the
    metric means, invalid outputs, timeouts, and coverage (test rows scored and missing;
    `partial` when some rows have no prediction). Batched metrics (SQL execution) use `jobs`
    worker processes."""
    from taskc.metrics.batch import count_timeouts, score_batch

    scorer = Scorer(contract)
    n_rows = len(contract.splits["test"].rows)
    invalid = 0
    seen: set[int] = set()
    inputs = []
    for line in predictions:
        index = line.get("index")
        if not isinstance(index, int) or not 0 <= index < n_rows:
            raise ValueError(f"prediction index {index!r} is not a row of the test split (0..{n_rows - 1})")
        seen.add(index)
        raw = line.get("raw", line.get("output"))
        raw = raw if isinstance(raw, str) or raw is None else json.dumps(raw, ensure_ascii=False)
        parsed = parse_output(scorer.output, scorer.validate_schema, raw)
        invalid += 0 if parsed.valid else 1
        inputs.append(scorer.metric_input(index, raw, parsed.value if parsed.valid else None, line.get("judge_raw")))
    scored = score_batch(scorer.metrics, inputs, jobs)
    names = [m["name"] for m in contract.body["metrics"]]
    metrics = {name: (sum(s[name].value for s in scored) / len(scored) if scored else None) for name in names}
    timeouts = {name: count_timeouts([s[name] for s in scored]) for name in names if scorer_is_batched(scorer, name)}
    n = len(predictions)
    return {"n": n, "metrics": metrics, "invalid": invalid, **({"timeouts": timeouts} if timeouts else {}),
            "rows": n_rows, "rows_scored": len(seen), "rows_missing": n_rows - len(seen), "partial": len(seen) < n_rows,
            "contract_id": contract.id}


def scorer_is_batched(scorer: Scorer, name: str) -> bool:
    """Whether metric `name` is one of the scorer's batched (SQL execution) metrics."""
    return any(m.name == name for m in scorer.deferred)
