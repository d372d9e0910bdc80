"""The `taskc` command line. Each command imports what it needs when it runs (fast start-up)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from taskc.errors import SpecError, TaskcError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Compile declarative LLM task specs into contracts, then evaluate any model against them.")


def _fail(error: Exception) -> None:
    if isinstance(error, SpecError):
        for diagnostic in error.diagnostics:
            typer.echo(diagnostic.format(), err=True)
        count = len(error.diagnostics)
        typer.echo(f"{count} error{'s' if count != 1 else ''}", err=True)
        raise typer.Exit(2)
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(2)


def _compile_all(specs: List[Path]):
    from taskc.compiler.build import compile_spec

    contracts, problems = [], []
    for spec in specs:
        try:
            contracts.append(compile_spec(spec))
        except SpecError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        _fail(SpecError(problems))
    return contracts


@app.command("compile")
def compile_cmd(
    specs: List[Path] = typer.Argument(..., help="Spec files."),
    out: Path = typer.Option(Path("generated"), "--out", help="Folder for compiled output (one subfolder per task)."),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 if a compiled folder is stale."),
) -> None:
    """Compile specs into contracts, schemas, grammars, request templates and training data."""
    from taskc.compiler.artifacts import render_files, stale_files, write_files

    stale_any = False
    for contract in _compile_all(specs):
        files = render_files(contract)
        target = out / contract.name
        if check:
            stale = stale_files(target, files)
            if stale:
                stale_any = True
                typer.echo(f"{target}: stale ({len(stale)} files differ: {', '.join(stale[:5])}{' ...' if len(stale) > 5 else ''})")
            else:
                typer.echo(f"{target}: up to date (contract {contract.short_id})")
        else:
            write_files(target, files)
            typer.echo(f"{contract.name}: contract {contract.short_id} -> {target}/ ({len(files)} files)")
    if stale_any:
        raise typer.Exit(1)


@app.command("validate")
def validate_cmd(specs: List[Path] = typer.Argument(..., help="Spec files.")) -> None:
    """Check specs, their templates and their data; print every error; exit 2 on any."""
    for contract in _compile_all(specs):
        typer.echo(f"{contract.loaded.source.path}: ok (contract {contract.short_id})")


@app.command("show")
def show_cmd(
    spec: Path = typer.Argument(..., help="Spec file."),
    example: int = typer.Option(0, "--example", "-n", help="Row of the split to show."),
    split: str = typer.Option("test", "--split", help="test or train."),
) -> None:
    """Print the exact messages one example sends, the constraint kind and the gold answer."""
    contract = _compile_all([spec])[0]
    if split not in contract.splits:
        _fail(TaskcError(f"no {split} split in {spec}"))
    rows = len(contract.splits[split].rows)
    if not 0 <= example < rows:
        _fail(TaskcError(f"--example must be between 0 and {rows - 1}"))
    typer.echo(f"# {contract.name} (contract {contract.short_id}), {split} example {example} of {rows}")
    prefix = contract.body["prefix"]
    tokens = contract.analysis.get("prefix_tokens")
    typer.echo(f"# static prefix ({prefix['scope']}): {prefix['messages']} whole messages, {prefix['chars']} chars"
               + (f", {tokens} Qwen tokens" if tokens is not None else ""))
    for message in contract.messages(split, example):
        typer.echo(f"\n--- {message['role']} ---\n{message['content']}")
    constraint = contract.constraint_for(split, example)
    typer.echo(f"\n--- constraint ---\n{constraint.type if constraint else 'none'}")
    typer.echo(f"\n--- gold ---\n{contract.gold_text(split, example)}")


@app.command("new")
def new_cmd(
    name: str = typer.Argument(..., help="Task name (lower-case, digits, _ . -)."),
    kind: str = typer.Option(..., "--kind", help="label, tool_call, object, sql or text."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where to write the spec (default specs/NAME.yaml)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented starter spec (with a tiny data file beside it) that validates."""
    from taskc.scaffold import write_scaffold

    try:
        written = write_scaffold(name, kind, out or Path("specs") / f"{name}.yaml", force=force)
    except TaskcError as exc:
        _fail(exc)
    for path in written:
        typer.echo(f"wrote {path}")


@app.command("verify")
def verify_cmd(
    specs: List[Path] = typer.Argument(..., help="Spec files."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    engines: str = typer.Option("xgrammar,llguidance,outlines-core", "--engines", help="Comma-separated grammar engines."),
) -> None:
    """Check every gold answer token by token against the compiled constraint (real Qwen vocabulary)."""
    from taskc.verify_cmd import run_verify

    code = run_verify(_compile_all(specs), as_json=as_json, engines=tuple(e for e in engines.split(",") if e))
    raise typer.Exit(code)


@app.command("eval")
def eval_cmd(
    specs: List[Path] = typer.Argument(..., help="Spec files."),
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="baseline (default), gold, replay, openai, anthropic, vllm, transformers."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model id for the backend (replay: the predictions file)."),
    models: Optional[str] = typer.Option(None, "--models", help="Comma-separated names from --models-file."),
    models_file: Path = typer.Option(Path("models.yaml"), "--models-file", help="Named models (backend, endpoint, prices)."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI- or Anthropic-compatible endpoint."),
    api_key_env: Optional[str] = typer.Option(None, "--api-key-env", help="Environment variable holding the API key."),
    mode: Optional[str] = typer.Option(None, "--mode", help="openai backend: how to send the constraint (openai, vllm, ...)."),
    repeats: Optional[int] = typer.Option(None, "--repeats", min=1, help="Default: 3 for API models, 1 for local ones."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Default: the API's own; 0 for local models."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N test rows."),
    concurrency: int = typer.Option(64, "--concurrency", min=1, help="Requests in flight at once."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Send every request even if a cached answer exists."),
    out: Path = typer.Option(Path("runs"), "--out", help="Runs folder: runs/<task>/<run-id>/."),
    timeout: float = typer.Option(60.0, "--timeout", help="Per-request timeout in seconds."),
    max_attempts: int = typer.Option(5, "--max-attempts", min=1, help="Tries per request (429, 5xx, timeouts are retried)."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a terminal)."),
) -> None:
    """Run a backend on the test split, validate and score every output, write samples and a summary."""
    from taskc.evaluate.cli_eval import run_eval

    code = run_eval(_compile_all(specs), backend=backend, model=model, models=models, models_file=models_file,
                    base_url=base_url, api_key_env=api_key_env, mode=mode, repeats=repeats, temperature=temperature,
                    limit=limit, concurrency=concurrency, use_cache=not no_cache, out=out, timeout=timeout,
                    max_attempts=max_attempts, progress=progress)
    raise typer.Exit(code)


@app.command("score")
def score_cmd(
    spec: Path = typer.Argument(..., help="Spec file."),
    predictions: Path = typer.Option(..., "--predictions", help="samples.jsonl of a run, or replay lines {index, output}."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Re-score saved outputs without calling any model."""
    from taskc.evaluate.cli_eval import run_score

    raise typer.Exit(run_score(_compile_all([spec])[0], predictions, as_json))


@app.command("synth")
def synth_cmd(
    spec: Path = typer.Argument(..., help="Spec file."),
    teacher: str = typer.Option(..., "--teacher", help="A name from --models-file, or BACKEND:MODEL."),
    n: int = typer.Option(..., "--n", min=1, help="How many examples to keep."),
    seed_examples: int = typer.Option(50, "--seed-examples", min=1, help="Train rows shown to the teacher."),
    models_file: Path = typer.Option(Path("models.yaml"), "--models-file"),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="Endpoint for a BACKEND:MODEL teacher."),
    out: Optional[Path] = typer.Option(None, "--out", help="Train file to write (default synth/<task>.jsonl)."),
    no_cache: bool = typer.Option(False, "--no-cache"),
) -> None:
    """Teacher-generated training data, kept only if it meets the contract and does not leak test rows."""
    from taskc.evaluate.cli_eval import teacher_config
    from taskc.evaluate.models import make_backend
    from taskc.runner.cache import ResultCache
    from taskc.synth import run_synth

    contract = _compile_all([spec])[0]
    try:
        backend = make_backend(teacher_config(teacher, models_file, base_url), contract)
    except TaskcError as exc:
        _fail(exc)
    target = out or Path("synth") / f"{contract.name}.jsonl"
    cache = None if no_cache else ResultCache(Path("runs") / ".cache.sqlite")
    try:
        report = run_synth(contract, backend, n, seed_examples, target, cache=cache)
    finally:
        if cache is not None:
            cache.close()
    typer.echo(f"{contract.name}: kept {report.kept}/{report.candidates} candidates -> {target}")
    for reason, count in report.rejected.items():
        typer.echo(f"  rejected {count}: {reason}")


@app.command("export")
def export_cmd(
    spec: Path = typer.Argument(..., help="Spec file."),
    fmt: str = typer.Option("openai", "--format", help="openai, chatml or sharegpt."),
    split: str = typer.Option("train", "--split", help="train or test."),
    out: Optional[Path] = typer.Option(None, "--out", help="File to write (default: standard output)."),
) -> None:
    """Fine-tuning files with the contract's exact prompts and canonical outputs."""
    from taskc.export import export_cmd as run_export

    raise typer.Exit(run_export(_compile_all([spec])[0], fmt, split, out))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except TaskcError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
