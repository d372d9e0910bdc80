"""The terminal side of `taskc eval` and `taskc score`: run, print, exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from taskc.backends.config import ModelConfig, ModelSelection
from taskc.evaluate.interrupt import EXIT_INTERRUPTED
from taskc.errors import TaskcError


def _fmt(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def eval_command(contracts, models: ModelSelection, options) -> int:
    """Evaluate every (contract, model) pair; 0 when all ran, 1 when every request of a run failed."""
    from taskc.backends.base import BackendUnavailable
    from taskc.evaluate.run import evaluate

    code = 0
    configs = models.configs()
    options = check_batch_and_judge_options(contracts, configs, options)
    for config in configs:
        for contract in contracts:
            try:
                summary = evaluate(contract, config, options)
            except BackendUnavailable as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            code = max(code, _report(summary, options.out))
            if summary["partial"]:
                print(f"interrupted: {summary['n']} of {summary['planned']} samples done -> "
                      f"{options.out / summary['task'] / summary['run_id']}/ (summary marked partial)", file=sys.stderr)
                print(resume_hint(options, options.out / summary["task"] / summary["run_id"]), file=sys.stderr)
                return EXIT_INTERRUPTED
    return code


def resume_hint(options, run_dir: Path) -> str:
    """How to pick up an interrupted run: the same command with `--resume RUN_DIR`, which keeps
    the run folder and answers what is done from the cache."""
    import shlex

    args = list(sys.argv[1:]) if len(sys.argv) > 1 else ["eval", "..."]
    if "--resume" in args:
        at = args.index("--resume")
        del args[at:at + 2]
    if not options.use_cache:
        args = [a for a in args if a != "--no-cache"]
        return f"nothing was cached (--no-cache): a rerun starts over: {shlex.join(['taskc', *args])}"
    return f"resume with: {shlex.join(['taskc', *args, '--resume', str(run_dir)])}"


def check_batch_and_judge_options(contracts, configs: list[ModelConfig], options):
    """Refuse contradictory options before anything runs; notes for `--batch` where a backend
    has no batch API; `--resume RUN_DIR` checked against the specs and models."""
    from taskc.backends import backend_class

    if options.no_judge and (options.judge or options.judge_base_url):
        raise TaskcError("--no-judge skips the judge metrics: it cannot be used with --judge or --judge-base-url")
    from taskc.evaluate.preflight import check_run_judges
    from taskc.evaluate.scoring import Scorer

    for contract in contracts:  # every judge resolved and buildable before the first request of any run
        check_run_judges(contract, Scorer(contract), options)
    if options.batch:
        for config in configs:
            try:
                supported = backend_class(config.backend).supports_batch
            except Exception:  # an unavailable backend is reported when the run builds it
                continue
            if not supported:
                print(f"note: --batch: the {config.backend} backend has no batch API; {config.name} runs as usual "
                      "(its judge, if any, still uses one)", file=sys.stderr)
    if (options.judge or options.judge_base_url or options.no_judge) and not any(
            m["name"] == "llm_judge" for c in contracts for m in c.body["metrics"]):
        print("note: no llm_judge metric in these specs: the judge options change nothing", file=sys.stderr)
    if options.resume is not None:
        from taskc.evaluate.batches import resume_options

        options = resume_options(options, contracts, configs)
    return options


def _metric_text(name: str, value: dict[str, Any]) -> str:
    if value.get("computed") is False:
        return f"{name} not computed"
    return f"{name} {_fmt(value['mean'])} ± {_fmt(value['std'])}"


def cost_text(cost: dict[str, Any]) -> str:
    """The cost per million requests as the terminal line says it ("not priced" for a local
    model without a GPU-hour price, never $0)."""
    value = cost.get("usd_per_million_requests")
    if value is None:
        return "not priced" if cost.get("basis") == "local" else "cost unknown"
    return f"${_fmt(value, 2)} per 1M requests"


def _report(summary: dict[str, Any], out: Path) -> int:
    metrics = ", ".join(_metric_text(k, v) for k, v in summary["metrics"].items())
    lat = summary["latency_ms"]
    pricing = {"batch": " (batch price)", "partial": " (partly batch price)"}.get(summary["cost"].get("pricing"), "")
    print(f"{summary['task']} · {summary['model_name']} · contract {summary['contract_id'][:12]} · n={summary['n']}")
    print(f"  {metrics}")
    print(f"  invalid {summary['invalid']} ({summary['invalid_rate']:.1%}) · errors {summary['errors']} · cached {summary['cached']}"
          f" · p50 {_fmt(lat['p50'], 1)} ms · p95 {_fmt(lat['p95'], 1)} ms · {_fmt(summary['requests_per_s'], 1)} req/s"
          f" · {cost_text(summary['cost'])}{pricing}")
    if summary.get("timeouts"):
        print("  timeouts (scored 0, counted apart from wrong answers): "
              + ", ".join(f"{name} {n}" for name, n in summary["timeouts"].items()))
    judge = summary.get("judge") or {}
    if judge.get("overridden"):
        print(f"  judged by {judge['scored_by']} instead of the spec's {judge.get('spec_judge')}")
    print(f"  -> {out / summary['task'] / summary['run_id']}/")
    for warning in summary["warnings"]:
        print(f"  warning: {warning}", file=sys.stderr)
    if summary["n"] and summary["errors"] == summary["n"]:
        print("error: every request failed; first errors:", file=sys.stderr)
        for error in summary["first_errors"]:
            print(f"  {error}", file=sys.stderr)
        return 1
    return 0


def recorded_contract_id(predictions: Path) -> tuple[str | None, str | None]:
    """(contract id, task) of the run a samples.jsonl belongs to, from the summary.json or
    contract.json beside it; (None, None) for a file outside a run folder."""
    for name in ("summary.json", "contract.json"):
        path = predictions.parent / name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("contract_id"), str):
            return data["contract_id"], data.get("task") or data.get("name")
    return None, None


def score_command(contract, predictions: Path, as_json: bool, allow_other_contract: bool = False,
                  require_complete: bool = False, jobs: int | None = None) -> int:
    """Re-score a predictions file; print a table or one JSON object. Refuses a run of another
    contract (unless allowed); a file that misses test rows is scored with a warning, and with
    `require_complete` exits 1."""
    from taskc.evaluate.scoring import rescore

    theirs, task = recorded_contract_id(predictions)
    if theirs is not None and theirs != contract.id and not allow_other_contract:
        raise TaskcError(
            f"{predictions} comes from a run of contract {theirs[:12]} (task {task or '?'}), not {contract.short_id} "
            f"({contract.name}): its answers belong to other rows, prompts or scoring; pass --allow-other-contract "
            "to score it anyway")
    try:
        lines = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as exc:
        raise TaskcError(f"cannot read {predictions}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise TaskcError(f"{predictions}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    try:
        from taskc.evaluate.batches import batch_output_predictions

        result = rescore(contract, batch_output_predictions(lines), jobs)
    except ValueError as exc:
        raise TaskcError(str(exc)) from None
    if theirs is not None and theirs != contract.id:
        result["other_contract"] = theirs
    if as_json:
        print(json.dumps(result))
    else:
        print(f"{contract.name}: n={result['n']} invalid={result['invalid']} rows {result['rows_scored']} of {result['rows']}")
        for name, mean in result["metrics"].items():
            print(f"  {name}: {_fmt(mean, 4)}")
    if result["partial"]:
        print(f"warning: {predictions} covers {result['rows_scored']} of {result['rows']} test rows "
              f"({result['rows_missing']} missing): the scores are over those rows only", file=sys.stderr)
        if require_complete:
            print("error: --require-complete: the predictions do not cover every test row", file=sys.stderr)
            return 1
    return 0


def batches_command(runs: Path, cancel: str | None = None, show_all: bool = False, as_json: bool = False,
                    live: bool = True) -> int:
    """`taskc batches`: the provider batches in flight under a runs folder (every recorded one
    with `show_all`), with their live status; `--cancel ID` cancels one. 0, or a TaskcError."""
    from taskc.evaluate.batches import cancel_batch, list_batches

    if cancel:
        status = cancel_batch(runs, cancel)
        print(f"{cancel}: {status}")
        return 0
    rows = list_batches(runs, show_all=show_all, live=live)
    if as_json:
        print(json.dumps([{k: v for k, v in r.items() if k != "custom_ids"} for r in rows], indent=1))
        return 0
    if not rows:
        print(f"no batches {'recorded' if show_all else 'in flight'} under {runs}")
        return 0
    for r in rows:
        live_status = f" · provider: {r['live']}" if "live" in r else ""
        print(f"{r['id']} · {r.get('backend')}:{r.get('model')} · {r.get('requests')} requests · {r.get('state')}"
              f"{live_status} · submitted {r.get('submitted_at')} · {r['runs'][-1]}")
    return 0
