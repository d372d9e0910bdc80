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
    from taskc.spec.scaffold import write_scaffold

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
    from taskc.constraints.cli import run_verify

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
    from taskc.distill.synth import run_synth

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
    from taskc.compiler.export import export_cmd as run_export

    raise typer.Exit(run_export(_compile_all([spec])[0], fmt, split, out))


@app.command("bench")
def bench_cmd(
    spec: Path = typer.Argument(..., help="Spec file: its test rows (cycled) are the load."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model id the server serves."),
    rate: Optional[float] = typer.Option(None, "--rate", min=0.001, help="Open loop: Poisson arrivals at this many requests/s."),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", min=1, help="Closed loop: this many requests in flight."),
    duration: float = typer.Option(10.0, "--duration", min=0.1, help="Measurement window in seconds."),
    warmup: float = typer.Option(2.0, "--warmup", min=0.0, help="Seconds of load before the window (not measured)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    stream: bool = typer.Option(False, "--stream", help="Stream (SSE) and measure time to first token."),
    find_max: bool = typer.Option(False, "--find-max", help="Step the rate up, then bisect: the highest rate sustained within --p95-ms."),
    p95_ms: Optional[float] = typer.Option(None, "--p95-ms", help="--find-max: the p95 latency target in ms."),
    max_rate: Optional[float] = typer.Option(None, "--max-rate", help="--find-max: never offer more than this."),
    gpu_hourly_usd: Optional[float] = typer.Option(None, "--gpu-hourly-usd", help="Machine price per hour, for cost per million requests."),
    models_file: Path = typer.Option(Path("models.yaml"), "--models-file", help="Named models (endpoint, gpu_hourly_usd)."),
    model_name: Optional[str] = typer.Option(None, "--model-name", help="Take endpoint, model and price from this --models-file entry."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Cycle over only the first N test rows."),
    seed: int = typer.Option(0, "--seed", help="Seed of the arrival times."),
    mode: Optional[str] = typer.Option(None, "--mode", help="How to send the constraint (default: vllm for a self-hosted server)."),
    api_key_env: Optional[str] = typer.Option(None, "--api-key-env", help="Environment variable holding the API key."),
    timeout: float = typer.Option(60.0, "--timeout", help="Per-request timeout in seconds."),
    metrics_url: Optional[str] = typer.Option(None, "--metrics-url", help="Prometheus metrics (default: <server>/metrics; '' to skip)."),
    processes: Optional[int] = typer.Option(None, "--processes", min=1, help="Open loop: sender processes sharing the Poisson stream (default: one per 800 requests/s, up to the CPU count)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the JSON result here (e.g. <run folder>/bench.json for taskc report)."),
) -> None:
    """Load-test a served model with the spec's own requests: sustained requests/s, latency percentiles, errors and accuracy under load."""
    from taskc.bench.cli import bench_cmd as run_bench_cmd

    contract = _compile_all([spec])[0]
    raise typer.Exit(run_bench_cmd(
        contract, base_url=base_url, model=model, rate=rate, concurrency=concurrency, duration=duration, warmup=warmup,
        as_json=as_json, stream=stream, find_max=find_max, p95_ms=p95_ms, max_rate=max_rate, gpu_hourly_usd=gpu_hourly_usd,
        models_file=models_file, model_name=model_name, limit=limit, seed=seed, mode=mode, api_key_env=api_key_env,
        timeout=timeout, metrics_url=metrics_url, out=out, processes=processes))


@app.command("report")
def report_cmd(
    runs: List[Path] = typer.Argument(None, help="Run folders (runs/<task>/<run-id>/) or folders to search (default: runs)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write a self-contained HTML page with charts."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Write the tables as Markdown."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Write one CSV row per run."),
    charts: Optional[Path] = typer.Option(None, "--charts", help="Write the SVG charts into this folder (linked from --markdown)."),
    title: str = typer.Option("taskc report", "--title", help="Title of the Markdown and HTML reports."),
) -> None:
    """One table across models (and tasks) from run folders: metric mean ± std, invalid rate, cost, latency, requests/s."""
    from taskc.report.cli import report_cmd as run_report_cmd

    raise typer.Exit(run_report_cmd(runs or [Path("runs")], html=html, markdown=markdown, csv=csv, charts=charts, title=title))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except TaskcError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
