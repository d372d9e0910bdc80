"""`taskc distill`: synth -> train -> eval -> report as one resumable pipeline.

Each stage works in `distill/<task>/<stage>/` and ends by writing `stage.json`, holding the
sha256 of its inputs (canonical JSON of what it depends on: the contract id, settings, the
digests of the files an earlier stage produced). A stage whose `stage.json` names the same input
hash is skipped; anything else (no stage.json, another hash) is redone from scratch. Outputs are
built in a temporary sibling folder and renamed into place before `stage.json` is written, so a
pipeline killed at any moment resumes at the stage it was in and never reads a half-written one.

- synth: teacher data (`taskc.distill.synth`, contract-validated) -> `synth.jsonl`, `report.json`;
- train: the spec's train rows (the seed examples) plus the synth rows -> `train.jsonl`, and the
  student trained on them (`taskc.distill.train`) -> `model/`;
- eval: the trained student through the vllm backend on the test split, written as a run in
  `runs/<task>/<run-id>/` beside any others, and `summary.json` here;
- report: every run of the task in `runs/` side by side -> `report.md`, `report.html`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from taskc.atomic import publish_dir
from taskc.common.encoding import canonical_json, sha256_hex
from taskc.errors import TaskcError

STAGE_FILE = "stage.json"


@dataclass(frozen=True)
class DistillOptions:
    """What one pipeline run does."""

    teacher: Any                     # a ModelConfig
    student: Path
    n: int
    seed_examples: int = 50
    settings: Any = None             # TrainSettings
    precision: str = "fp32"
    out: Path = Path("distill")
    runs: Path = Path("runs")
    engine_args: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None
    progress: bool = False


@dataclass(frozen=True)
class StageOutcome:
    """One stage: whether it ran or was skipped, its folder and what it recorded."""

    stage: str
    ran: bool
    folder: Path
    record: dict[str, Any]


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def student_fingerprint(folder: Path) -> str:
    """A digest of a model folder: small files by content, weight files by name, size and
    modification time (hashing gigabytes of weights on every run would cost minutes)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        stat = path.stat()
        if path.suffix in (".safetensors", ".bin", ".pt", ".gguf") or stat.st_size > (16 << 20):
            h.update(f"{rel}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        else:
            h.update(f"{rel}:{file_sha256(path)}\n".encode())
    return h.hexdigest()


def inputs_hash(inputs: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a stage's inputs."""
    return sha256_hex(canonical_json(inputs))


def _done(folder: Path, digest: str) -> dict[str, Any] | None:
    try:
        record = json.loads((folder / STAGE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if record.get("inputs_sha256") == digest else None


def run_stage(folder: Path, inputs: dict[str, Any], build: Callable[[Path], dict[str, Any]],
              log: Callable[[str], None]) -> StageOutcome:
    """Skip the stage when `folder/stage.json` holds the same input hash; otherwise `build` its
    outputs into a fresh temporary folder, rename it to `folder`, then write stage.json."""
    digest = inputs_hash(inputs)
    stage = folder.name
    found = _done(folder, digest)
    if found is not None:
        log(f"{stage}: up to date (inputs {digest[:12]}), skipped")
        return StageOutcome(stage, False, folder, found)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{stage}.", dir=folder.parent))
    try:
        record = build(tmp)
        publish_dir(tmp, folder, lambda: False)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    record = {"stage": stage, "inputs_sha256": digest, "inputs": inputs, **record}
    staged = folder / (STAGE_FILE + ".tmp")
    staged.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    staged.replace(folder / STAGE_FILE)
    return StageOutcome(stage, True, folder, record)


# -- the stages -------------------------------------------------------------------------------------


def _synth(contract, options: DistillOptions, tmp: Path) -> dict[str, Any]:
    from taskc.backends.registry import make_backend
    from taskc.distill.synth import run_synth

    backend = make_backend(options.teacher, contract)
    report = run_synth(contract, backend, options.n, options.seed_examples, tmp / "synth.jsonl")
    if report.kept == 0:
        raise TaskcError(f"synth kept none of {report.candidates} teacher candidates ({report.rejected}); "
                         "nothing new to train on")
    return {"kept": report.kept, "candidates": report.candidates, "rejected": report.rejected,
            "synth_sha256": file_sha256(tmp / "synth.jsonl")}


def seed_rows(contract) -> list[dict[str, Any]]:
    """The spec's train rows as `{<inputs>..., answer}` (the parsed gold answers)."""
    if "train" not in contract.splits:
        return []
    return [{**contract.inputs_of("train", i), "answer": contract.gold["train"][i]}
            for i in range(len(contract.splits["train"].rows))]


def _train(contract, options: DistillOptions, synth_file: Path, tmp: Path) -> dict[str, Any]:
    from taskc.distill.parity import with_train_file
    from taskc.distill.train import train

    rows = seed_rows(contract) + [json.loads(line) for line in synth_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    train_file = tmp / "train.jsonl"
    train_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    student_contract = with_train_file(contract, train_file)
    result = train(student_contract, options.student, tmp / "model", options.settings, options.precision,
                   train_file=train_file, progress=options.progress)
    r = result.record
    return {"rows": len(rows), "steps": r["steps"], "final_loss": r["final_loss"], "wall_s": r["wall_s"],
            "model": "model", "train_record_sha256": file_sha256(tmp / "model" / "taskc-train.json")}


def evaluate_student(contract, model_dir: Path, options: DistillOptions) -> dict[str, Any]:
    """The student on the test split through the vllm backend; the run lands in `options.runs`.
    (The one place that calls taskc.evaluate.)"""
    from taskc.backends.config import ModelConfig
    from taskc.evaluate.run import EvalOptions, evaluate

    config = ModelConfig(name=f"student-{contract.name}", backend="vllm", model=str(model_dir.resolve()),
                         engine_args=dict(options.engine_args), local=True)
    # No result cache: a retrained student keeps its folder path, so cached answers would be stale.
    return evaluate(contract, config, EvalOptions(limit=options.limit, use_cache=False, out=options.runs,
                                                  progress=options.progress))


def write_report(task_runs: Path, tmp: Path, title: str) -> None:
    """Every run of the task side by side (the one place that calls taskc.report)."""
    from taskc.report.collect import find_runs, group_runs
    from taskc.report.html import html_page
    from taskc.report.tables import markdown

    groups = group_runs(find_runs([task_runs]))
    if not groups:
        raise TaskcError(f"no runs with a summary.json under {task_runs}")
    (tmp / "report.md").write_text(markdown(groups, {}, title=title), encoding="utf-8")
    (tmp / "report.html").write_text(html_page(groups, title=title), encoding="utf-8")


def _eval(contract, options: DistillOptions, model_dir: Path, tmp: Path) -> dict[str, Any]:
    from taskc.distill.student import student_contract_check

    student_contract_check(model_dir, contract.id)
    summary = evaluate_student(contract, model_dir, options)
    (tmp / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    run_dir = options.runs / contract.name / summary["run_id"]
    return {"run": str(run_dir), "metrics": {k: v.get("mean") for k, v in summary["metrics"].items()},
            "invalid": summary["invalid"], "errors": summary["errors"]}


def _runs_fingerprint(task_runs: Path) -> list[list[str]]:
    out = []
    for summary in sorted(task_runs.glob("*/summary.json")):
        out.append([summary.parent.name, file_sha256(summary)])
    return out


def distill(contract, options: DistillOptions, log: Callable[[str], None] = print) -> list[StageOutcome]:
    """Run (or resume) the pipeline for one contract; returns each stage's outcome."""
    base = options.out / contract.name
    outcomes: list[StageOutcome] = []
    synth_inputs = {"contract_id": contract.id, "teacher": options.teacher.settings(), "n": options.n,
                    "seed_examples": options.seed_examples}
    synth = run_stage(base / "synth", synth_inputs, lambda tmp: _synth(contract, options, tmp), log)
    outcomes.append(synth)
    log(f"synth: kept {synth.record['kept']} of {synth.record['candidates']} candidates")
    train_inputs = {"contract_id": contract.id, "synth_sha256": synth.record["synth_sha256"],
                    "student": str(options.student.resolve()), "student_sha256": student_fingerprint(options.student),
                    "settings": options.settings.to_dict(), "precision": options.precision}
    trained = run_stage(base / "train", train_inputs,
                        lambda tmp: _train(contract, options, base / "synth" / "synth.jsonl", tmp), log)
    outcomes.append(trained)
    log(f"train: {trained.record['rows']} rows, {trained.record['steps']} steps, final loss {trained.record['final_loss']:.4f}")
    model_dir = base / "train" / "model"
    eval_inputs = {"contract_id": contract.id, "train_record_sha256": trained.record["train_record_sha256"],
                   "engine_args": options.engine_args, "limit": options.limit}
    evaluated = run_stage(base / "eval", eval_inputs, lambda tmp: _eval(contract, options, model_dir, tmp), log)
    outcomes.append(evaluated)
    shown = ", ".join(f"{k} {v:.3f}" for k, v in evaluated.record["metrics"].items() if v is not None)
    log(f"eval: {shown} -> {evaluated.record['run']}")
    task_runs = options.runs / contract.name
    report_inputs = {"contract_id": contract.id, "runs": _runs_fingerprint(task_runs)}
    reported = run_stage(base / "report", report_inputs,
                         lambda tmp: (write_report(task_runs, tmp, f"taskc distill: {contract.name}") or
                                      {"report": "report.md", "runs": len(report_inputs["runs"])}), log)
    outcomes.append(reported)
    log(f"report: {reported.record['runs']} runs -> {base / 'report' / 'report.md'}")
    return outcomes
