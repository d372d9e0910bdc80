"""The `taskc` command line. Each command imports what it needs when it runs (fast start-up)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from taskc.errors import SpecError, TaskcError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Compile declarative LLM task specs into contracts, then evaluate any model against them.")


def _version(value: bool) -> None:
    if value:
        from taskc import __version__

        typer.echo(f"taskc {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Compile declarative LLM task specs into contracts, then evaluate any model against them."""


def _fail(error: Exception) -> None:
    if isinstance(error, SpecError):
        for diagnostic in error.diagnostics:
            typer.echo(diagnostic.format(), err=True)
        count = len(error.diagnostics)
        typer.echo(f"{count} error{'s' if count != 1 else ''}", err=True)
        raise typer.Exit(2)
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(2)


def _allow_outside() -> typer.models.OptionInfo:
    return typer.Option(None, "--allow-outside", metavar="PATH",
                        help="Let the spec name files inside PATH, outside its project root (repeatable).")


def _compile_all(specs: List[Path], allow_outside: Optional[List[Path]] = None):
    # a spec whose inputs are unchanged is loaded, not recompiled (taskc.compiler.cached)
    from taskc.compiler.cached import compile_cached

    contracts, problems = [], []
    for spec in specs:
        try:
            contracts.append(compile_cached(spec, tuple(allow_outside or ())))
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
    allow_outside: Optional[List[Path]] = _allow_outside(),
) -> None:
    """Compile specs into contracts, schemas, grammars, request templates and training data."""
    from taskc.compiler.cli import compile_command

    raise typer.Exit(compile_command(_compile_all(specs, allow_outside), out, check))


@app.command("validate")
def validate_cmd(specs: List[Path] = typer.Argument(..., help="Spec files."),
                 allow_outside: Optional[List[Path]] = _allow_outside()) -> None:
    """Check specs, their templates and their data; print every error; exit 2 on any."""
    from taskc.compiler.cli import validate_command

    raise typer.Exit(validate_command(_compile_all(specs, allow_outside)))


@app.command("show")
def show_cmd(
    spec: Path = typer.Argument(..., help="Spec file."),
    example: int = typer.Option(0, "--example", "-n", help="Row of the split to show."),
    split: str = typer.Option("test", "--split", help="test or train."),
    allow_outside: Optional[List[Path]] = _allow_outside(),
) -> None:
    """Print the exact messages one example sends, the constraint kind and the gold answer."""
    from taskc.compiler.cli import show_command

    contract = _compile_all([spec], allow_outside)[0]
    try:
        code = show_command(contract, example, split)
    except TaskcError as exc:
        _fail(exc)
    raise typer.Exit(code)


@app.command("new")
def new_cmd(
    name: str = typer.Argument(..., help="Task name (lower-case, digits, _ . -)."),
    kind: str = typer.Option(..., "--kind", help="label, tool_call, object, sql or text."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where to write the spec (default specs/NAME.yaml)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented starter spec (with a tiny data file beside it) that validates."""
    from taskc.spec.cli import new_command

    try:
        code = new_command(name, kind, out, force)
    except TaskcError as exc:
        _fail(exc)
    raise typer.Exit(code)


@app.command("verify")
def verify_cmd(
    specs: List[Path] = typer.Argument(..., help="Spec files."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    engines: str = typer.Option("xgrammar,llguidance,outlines-core", "--engines", help="Comma-separated grammar engines."),
    allow_outside: Optional[List[Path]] = _allow_outside(),
) -> None:
    """Check every gold answer token by token against the compiled constraint (real Qwen vocabulary)."""
    from taskc.constraints.cli import verify_command

    contracts = _compile_all(specs, allow_outside)
    try:
        code = verify_command(contracts, as_json=as_json, engines=tuple(e.strip() for e in engines.split(",") if e.strip()))
    except TaskcError as exc:
        _fail(exc)
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
    batch: bool = typer.Option(False, "--batch", help="openai/anthropic: send the run (and its judge) through the provider's batch API (half price, up to 24 h)."),
    judge: Optional[str] = typer.Option(None, "--judge", metavar="NAME|BACKEND:MODEL", help="llm_judge metrics: this judge instead of the spec's (a --models-file name, or BACKEND:MODEL)."),
    judge_base_url: Optional[str] = typer.Option(None, "--judge-base-url", metavar="URL", help="Endpoint of the judge (e.g. a local vLLM server)."),
    no_judge: bool = typer.Option(False, "--no-judge", help="Skip llm_judge metrics (reported as not computed)."),
    resume: Optional[Path] = typer.Option(None, "--resume", metavar="RUN_DIR", help="Pick up that run: its cached answers and its recorded batches (never submitted twice)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", min=1, help="Worker processes for SQL execution scoring (default: one per core)."),
    allow_other_contract: bool = typer.Option(False, "--allow-other-contract", help="Evaluate a model `taskc train` made for another contract id."),
    allow_outside: Optional[List[Path]] = _allow_outside(),
) -> None:
    """Run a backend on the test split, validate and score every output, write samples and a summary."""
    from taskc.backends.config import ModelSelection
    from taskc.evaluate.cli import eval_command
    from taskc.evaluate.run import EvalOptions

    chosen = ModelSelection(backend=backend, model=model, models=models, models_file=models_file, base_url=base_url,
                            api_key_env=api_key_env, mode=mode)
    options = EvalOptions(repeats=repeats, temperature=temperature, limit=limit, concurrency=concurrency,
                          use_cache=not no_cache, out=out, progress=progress, timeout_s=timeout, max_attempts=max_attempts,
                          batch=batch, judge=judge, judge_base_url=judge_base_url, no_judge=no_judge,
                          models_file=models_file, resume=resume, jobs=jobs, allow_other_contract=allow_other_contract)
    raise typer.Exit(eval_command(_compile_all(specs, allow_outside), chosen, options))


@app.command("batches")
def batches_cmd(
    runs: Path = typer.Argument(Path("runs"), help="Runs folder (or a task or run folder under it)."),
    cancel: Optional[str] = typer.Option(None, "--cancel", metavar="ID", help="Cancel this batch at its provider."),
    show_all: bool = typer.Option(False, "--all", help="Also the batches already collected, failed or gone."),
    offline: bool = typer.Option(False, "--offline", help="Only what the run folders recorded; ask no provider."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The provider batches (taskc eval --batch) that a runs folder has in flight; --cancel ID cancels one."""
    from taskc.evaluate.cli import batches_command

    raise typer.Exit(batches_command(runs, cancel=cancel, show_all=show_all, as_json=as_json, live=not offline))


@app.command("score")
def score_cmd(
    spec: Path = typer.Argument(..., help="Spec file."),
    predictions: Path = typer.Option(..., "--predictions", help="samples.jsonl of a run, or replay lines {index, output}."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    allow_other_contract: bool = typer.Option(False, "--allow-other-contract", help="Score a run made for another contract id."),
    require_complete: bool = typer.Option(False, "--require-complete", help="Exit 1 unless every test row has a prediction."),
    jobs: Optional[int] = typer.Option(None, "--jobs", min=1, help="Worker processes for SQL execution scoring (default: one per core)."),
    allow_outside: Optional[List[Path]] = _allow_outside(),
) -> None:
    """Re-score saved outputs without calling any model."""
    from taskc.evaluate.cli import score_command

    contract = _compile_all([spec], allow_outside)[0]
    try:
        code = score_command(contract, predictions, as_json, allow_other_contract, require_complete, jobs)
    except TaskcError as exc:
        _fail(exc)
    raise typer.Exit(code)


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
    allow_outside: Optional[List[Path]] = _allow_outside(),
) -> None:
    """Teacher-generated training data, kept only if it meets the contract and does not leak test rows."""
    from taskc.distill.cli import synth_command

    contract = _compile_all([spec], allow_outside)[0]
    try:
        code = synth_command(contract, teacher, n, seed_examples, models_file, base_url, out, not no_cache)
    except TaskcError as exc:
        _fail(exc)
    raise typer.Exit(code)


def _train_options() -> dict:
    return dict(
        method=typer.Option(None, "--method", help="lora (default) or full."),
        epochs=typer.Option(None, "--epochs", min=0.01, help="Passes over the train rows (default 3)."),
        learning_rate=typer.Option(None, "--lr", min=0.0, help="Learning rate (default 2e-4 lora, 2e-5 full)."),
        max_steps=typer.Option(None, "--max-steps", min=1, help="Stop after this many optimizer steps."),
        batch_size=typer.Option(None, "--batch-size", min=1, help="Rows per step (default 8)."),
        seed=typer.Option(None, "--seed", help="Training seed (default 0)."),
        lora_rank=typer.Option(None, "--lora-rank", min=1, help="LoRA rank (default 16)."),
        lora_alpha=typer.Option(None, "--lora-alpha", min=1, help="LoRA alpha (default 32)."),
        max_length=typer.Option(None, "--max-length", min=8, help="Longest training sequence in tokens (default 2048)."),
        precision=typer.Option(None, "--precision", help="auto (bf16 where the GPU has it), bf16, fp16 or fp32."),
    )


_T = _train_options()


@app.command("train")
def train_cmd(
    spec: Path = typer.Argument(..., help="Spec file."),
    student: Path = typer.Option(..., "--student", help="Local model folder to fine-tune (a causal LM with a chat template)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the trained model (published atomically)."),
    train_file: Optional[Path] = typer.Option(None, "--train", help="Train rows (JSONL of inputs + answer, e.g. from taskc synth) instead of the spec's train split."),
    check: bool = typer.Option(False, "--check", help="Write nothing: prove each row's prompt tokens equal what the vllm backend sends and its answer passes the grammar."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar with loss (default: on a terminal)."),
    method: Optional[str] = _T["method"], epochs: Optional[float] = _T["epochs"], learning_rate: Optional[float] = _T["learning_rate"],
    max_steps: Optional[int] = _T["max_steps"], batch_size: Optional[int] = _T["batch_size"], seed: Optional[int] = _T["seed"],
    lora_rank: Optional[int] = _T["lora_rank"], lora_alpha: Optional[int] = _T["lora_alpha"],
    max_length: Optional[int] = _T["max_length"], precision: Optional[str] = _T["precision"],
    allow_outside: Optional[List[Path]] = _allow_outside(),
) -> None:
    """Fine-tune a student (TRL SFTTrainer + PEFT) on the exact token sequences inference sends; the output folder loads in vLLM."""
    from taskc.distill.cli import train_command

    contract = _compile_all([spec], allow_outside)[0]
    try:
        code = train_command(contract, student=student, out=out, train_file=train_file, check=check, progress=progress,
                             method=method, epochs=epochs, learning_rate=learning_rate, max_steps=max_steps,
                             batch_size=batch_size, seed=seed, lora_rank=lora_rank, lora_alpha=lora_alpha,
                             max_length=max_length, precision=precision)
    except (TaskcError, SpecError) as exc:
        _fail(exc)
    raise typer.Exit(code)


@app.command("distill")
def distill_cmd(
    spec: Path = typer.Argument(..., help="Spec file."),
    teacher: str = typer.Option(..., "--teacher", help="A name from --models-file, or BACKEND:MODEL."),
    student: Path = typer.Option(..., "--student", help="Local model folder to fine-tune."),
    n: int = typer.Option(200, "--n", min=1, help="Teacher examples to keep."),
    seed_examples: int = typer.Option(50, "--seed-examples", min=1, help="Train rows shown to the teacher."),
    models_file: Path = typer.Option(Path("models.yaml"), "--models-file"),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="Endpoint for a BACKEND:MODEL teacher."),
    out: Path = typer.Option(Path("distill"), "--out", help="Stage folders: OUT/<task>/<stage>/."),
    runs: Path = typer.Option(Path("runs"), "--runs", help="Runs folder the student's eval joins."),
    engine_args: Optional[str] = typer.Option(None, "--engine-args", help="JSON object of vllm.LLM arguments for the student's eval."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate only the first N test rows."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bars (default: on a terminal)."),
    method: Optional[str] = _T["method"], epochs: Optional[float] = _T["epochs"], learning_rate: Optional[float] = _T["learning_rate"],
    max_steps: Optional[int] = _T["max_steps"], batch_size: Optional[int] = _T["batch_size"], seed: Optional[int] = _T["seed"],
    lora_rank: Optional[int] = _T["lora_rank"], lora_alpha: Optional[int] = _T["lora_alpha"],
    max_length: Optional[int] = _T["max_length"], precision: Optional[str] = _T["precision"],
    allow_outside: Optional[List[Path]] = _allow_outside(),
) -> None:
    """synth -> train -> eval -> report as one resumable pipeline (a stage whose inputs are unchanged is skipped)."""
    from taskc.distill.cli import distill_command

    contract = _compile_all([spec], allow_outside)[0]
    try:
        code = distill_command(contract, teacher=teacher, student=student, n=n, seed_examples=seed_examples,
                               models_file=models_file, base_url=base_url, out=out, runs=runs, engine_args=engine_args,
                               limit=limit, progress=progress, method=method, epochs=epochs, learning_rate=learning_rate,
                               max_steps=max_steps, batch_size=batch_size, seed=seed, lora_rank=lora_rank,
                               lora_alpha=lora_alpha, max_length=max_length, precision=precision)
    except (TaskcError, SpecError) as exc:
        _fail(exc)
    raise typer.Exit(code)


@app.command("export")
def export_cmd(
    spec: Path = typer.Argument(..., help="Spec file."),
    fmt: str = typer.Option("openai", "--format", help="openai, chatml or sharegpt."),
    split: str = typer.Option("train", "--split", help="train or test."),
    out: Optional[Path] = typer.Option(None, "--out", help="File to write (default: standard output)."),
    allow_outside: Optional[List[Path]] = _allow_outside(),
) -> None:
    """Fine-tuning files with the contract's exact prompts and canonical outputs."""
    from taskc.compiler.cli import export_command

    raise typer.Exit(export_command(_compile_all([spec], allow_outside)[0], fmt, split, out))


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
    allow_outside: Optional[List[Path]] = _allow_outside(),
) -> None:
    """Load-test a served model with the spec's own requests: sustained requests/s, latency percentiles, errors and accuracy under load."""
    from taskc.bench.cli import bench_command, bench_options

    contract = _compile_all([spec], allow_outside)[0]
    options = bench_options(base_url=base_url, model=model, rate=rate, concurrency=concurrency, find_max=find_max,
                            processes=processes, duration_s=duration, warmup_s=warmup, stream=stream, seed=seed,
                            limit=limit, timeout_s=timeout, mode=mode, api_key_env=api_key_env,
                            gpu_hourly_usd=gpu_hourly_usd, metrics_url=metrics_url, p95_ms=p95_ms, max_rate=max_rate)
    raise typer.Exit(bench_command(contract, options, as_json=as_json, out=out, models_file=models_file,
                                   model_name=model_name))


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
    from taskc.report.cli import report_command

    raise typer.Exit(report_command(runs or [Path("runs")], html=html, markdown=markdown, csv=csv, charts=charts, title=title))


@app.command("view")
def view_cmd(
    runs: Path = typer.Argument(Path("runs"), help="Runs folder (runs/<task>/<run-id>/)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: this machine only)."),
    specs: Optional[List[Path]] = typer.Option(None, "--specs", help="Spec files or folders holding them, for gold (default: specs/ and . here and beside RUNS)."),
) -> None:
    """A local web viewer over run folders: side-by-side samples, filters, per-kind views, regressions."""
    from taskc.view.cli import view_command

    raise typer.Exit(view_command(runs, host=host, port=port, specs=specs or []))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except TaskcError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    finally:
        _quick_shutdown()


def _quick_shutdown() -> None:
    """Leave the objects alive now out of the collections the interpreter runs while shutting
    down (they still go by reference count; every command has closed what it wrote): after an
    eval of 3,080 rows those passes cost about 0.1 s of CPU for nothing. Not done once a nanobind
    extension is loaded (triton under torch, xgrammar): it reports what is left as leaks."""
    if not any(name in sys.modules for name in ("triton", "xgrammar", "torch")):
        import gc

        gc.freeze()


if __name__ == "__main__":
    main()
