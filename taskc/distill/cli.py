"""The terminal side of `taskc synth`, `taskc train` and `taskc distill`: settings from the spec and
the flags, the checks, the summary lines and exit codes (errors are raised as TaskcError /
SpecError and printed by the command line with exit code 2)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from taskc.errors import TaskcError

#: The training flags both commands take (each named as its TrainSettings field).
OVERRIDES = ("method", "epochs", "learning_rate", "max_steps", "batch_size", "seed", "lora_rank", "lora_alpha",
             "max_length", "precision")


def synth_command(contract, teacher: str, n: int, seed_examples: int, models_file: Path, base_url: str | None,
                  out: Path | None, use_cache: bool) -> int:
    """`taskc synth`: teacher rows kept only where they meet the contract, written to `out`
    (default synth/<task>.jsonl); prints what was kept and why the rest was not."""
    from taskc.backends.base import BackendUnavailable
    from taskc.backends.config import resolve_model
    from taskc.backends.registry import make_backend
    from taskc.distill.synth import run_synth
    from taskc.runner.cache import ResultCache

    try:
        backend = make_backend(resolve_model(teacher, models_file, base_url), contract)
    except BackendUnavailable as exc:
        raise TaskcError(str(exc)) from None
    target = out or Path("synth") / f"{contract.name}.jsonl"
    cache = ResultCache(Path("runs") / ".cache.sqlite") if use_cache else None
    try:
        report = run_synth(contract, backend, n, seed_examples, target, cache=cache)
    finally:
        if cache is not None:
            cache.close()
    print(f"{contract.name}: kept {report.kept}/{report.candidates} candidates -> {target}")
    for reason, count in report.rejected.items():
        print(f"  rejected {count}: {reason}")
    return 0


def _needs(*modules: str) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise TaskcError(f"training needs {', '.join(missing)}: pip install 'taskc[train]'")


def settings_for(contract, flags: dict[str, Any]):
    """The run's TrainSettings and precision (the spec's `train:` section, the `OVERRIDES` among
    `flags` on top)."""
    from taskc.distill.settings import resolve_precision, resolve_settings

    overrides = {k: flags.get(k) for k in OVERRIDES}
    loaded = contract.loaded
    settings = resolve_settings(loaded.sections.get("train"), overrides)
    from_cli = overrides.get("precision") is not None
    return settings, resolve_precision(settings, loaded, from_cli=from_cli)


def train_command(contract, *, student: Path, out: Path | None, train_file: Path | None = None, check: bool = False,
                  progress: bool | None = None, **overrides: Any) -> int:
    """`taskc train`: 0 when trained (or, with --check, when every row passes), 1 when --check
    finds a mismatch."""
    _needs("torch", "transformers", "trl", "peft", "xgrammar")
    from taskc.distill.parity import with_train_file
    from taskc.distill.train import default_progress, prepare, train

    settings, precision = settings_for(contract, overrides)
    if train_file is not None:
        contract = with_train_file(contract, train_file)
    if check:
        return check_command(contract, student, settings)
    if out is None:
        raise TaskcError("--out is required (the folder the trained model is written to)")
    from taskc.distill.train import check_out_dir

    check_out_dir(out)
    prepared = prepare(contract, student, settings)
    print(f"{contract.name}: {len(prepared.sequences)} rows, {prepared.prompt_tokens} prompt + "
          f"{prepared.answer_tokens} answer tokens; {settings.method} on {prepared.student.architecture}, {precision}",
          file=sys.stderr)
    result = train(contract, student, out, settings, precision, train_file=train_file,
                   progress=default_progress() if progress is None else progress, prepared=prepared)
    r = result.record
    print(f"{contract.name}: {r['steps']} steps in {r['wall_s']:.1f}s, final loss {r['final_loss']:.4f} "
          f"(contract {contract.short_id}) -> {out}/")
    return 0


def check_command(contract, student: Path, settings) -> int:
    """`taskc train --check`: every row's prompt tokens against vLLM's own renderer and every
    answer against the grammar; prints one line per problem and a summary; writes nothing."""
    from taskc.distill.parity import prompt_mismatches, rendered_requests, vllm_prompt_ids
    from taskc.distill.train import prepare

    prepared = prepare(contract, student, settings)  # raises on a refused answer, listing the rows
    rendered = [r for _, r in rendered_requests(prepared.contract, prepared.backend)]
    try:
        sent = vllm_prompt_ids(prepared.student.path, rendered)
        source = "vLLM's renderer"
    except ImportError:
        print("note: vLLM is not installed; prompts were rendered by transformers only", file=sys.stderr)
        sent, source = [list(s.prompt_ids) for s in prepared.sequences], None
    mismatches = prompt_mismatches(prepared.sequences, sent)
    for m in mismatches[:20]:
        print(m.format(prepared.tokenizer))
    n = len(prepared.sequences)
    grammar = "no constraint" if all(r.constraint is None for r in contract.requests(split="train")) else \
        f"{n}/{n} answers accepted by the grammar"
    print(f"{contract.name}: {n - len(mismatches)}/{n} prompts identical to {source or 'transformers'} · {grammar} · "
          f"answer mask non-empty on every row · end of turn {prepared.tokenizer.convert_ids_to_tokens(prepared.end_of_turn)!r}")
    return 1 if mismatches else 0


def distill_command(contract, *, teacher: str, student: Path, n: int, seed_examples: int, models_file: Path,
                    base_url: str | None, out: Path, runs: Path, engine_args: str | None, limit: int | None,
                    progress: bool | None = None, **overrides: Any) -> int:
    """`taskc distill`: run or resume synth -> train -> eval -> report; 0 when every stage ran."""
    _needs("torch", "transformers", "trl", "peft", "xgrammar")
    from taskc.distill.pipeline import DistillOptions, distill
    from taskc.distill.student import check_student
    from taskc.distill.train import default_progress
    from taskc.backends.config import resolve_model

    settings, precision = settings_for(contract, overrides)
    check_student(student)
    try:
        args = json.loads(engine_args) if engine_args else {}
    except ValueError as exc:
        raise TaskcError(f"--engine-args is not JSON: {exc}") from None
    if not isinstance(args, dict):
        raise TaskcError("--engine-args must be a JSON object of vllm.LLM arguments")
    options = DistillOptions(teacher=resolve_model(teacher, models_file, base_url), student=student, n=n,
                             seed_examples=seed_examples, settings=settings, precision=precision, out=out, runs=runs,
                             engine_args=args, limit=limit,
                             progress=default_progress() if progress is None else progress)
    distill(contract, options, log=lambda line: print(f"{contract.name}: {line}"))
    return 0
