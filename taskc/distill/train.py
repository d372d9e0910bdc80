"""`taskc train`: fine-tune a student on the contract's own token sequences with TRL's SFTTrainer
(and PEFT for LoRA), then publish a folder vLLM loads.

`prepare` builds and checks every training sequence before any weight is touched (see
`taskc.distill.parity`): a train split with rows, a student that is a causal LM with a chat
template, prompts rendered as the vllm backend sends them, answers the compiled grammar accepts,
sequences within `max_length`. `train` then runs SFTTrainer on those exact ids (labels -100 on
the prompt; the prepared dataset is checked again, row by row, before the first step) and writes
the output folder in a temporary sibling, published with one rename:

    DIR/config.json, model.safetensors   the merged model (LoRA merged with merge_and_unload)
    DIR/tokenizer*.json, chat template   copied verbatim from the student
    DIR/adapter/                         the LoRA adapter (method lora)
    DIR/taskc-train.json                 contract id, base model, settings, data hashes,
                                         steps, final loss, wall time
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskc import __version__
from taskc.atomic import publish_dir
from taskc.distill.answer_loss import LeftPadCollator, answer_only_trainer
from taskc.distill.lora import ADAPTER_DIR, peft_config
from taskc.distill.parity import (
    TrainSequence, build_sequences, check_masks, end_of_turn_id, grammar_refusals, inference_backend, prompt_ids,
    rendered_requests, sequences_sha256, stop_token_ids, train_rows,
)
from taskc.distill.settings import TrainSettings
from taskc.distill.student import TOKENIZER_FILES, TRAIN_RECORD, Student, check_student, load_tokenizer, read_train_record
from taskc.errors import TaskcError

MAX_LISTED = 20


@dataclass(frozen=True)
class Prepared:
    """Everything checked before training: the student, its tokenizer, the sequences."""

    contract: Any
    student: Student
    tokenizer: Any
    backend: Any
    sequences: tuple[TrainSequence, ...]
    end_of_turn: int
    stop_ids: tuple[int, ...]

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens over all rows."""
        return sum(len(s.prompt_ids) for s in self.sequences)

    @property
    def answer_tokens(self) -> int:
        """Answer tokens (the ones with loss) over all rows."""
        return sum(len(s.answer_ids) for s in self.sequences)


@dataclass(frozen=True)
class TrainResult:
    """A published training run."""

    out: Path
    record: dict[str, Any]


def prepare(contract, student_dir: str | Path, settings: TrainSettings,
            chat_template_kwargs: dict[str, Any] | None = None) -> Prepared:
    """Check the inputs and build every training sequence (nothing is written)."""
    quiet()
    train_rows(contract)
    student = check_student(student_dir)
    tokenizer = load_tokenizer(student)
    backend = inference_backend(student.path, chat_template_kwargs)
    stop = stop_token_ids(tokenizer, student.path)
    eot = end_of_turn_id(tokenizer, stop)
    sequences = build_sequences(contract, tokenizer, backend, eot)
    long = [s for s in sequences if len(s.input_ids) > settings.max_length]
    if long:
        rows = ", ".join(f"{s.index} ({len(s.input_ids)} tokens)" for s in long[:MAX_LISTED])
        raise TaskcError(f"{len(long)} train rows are longer than max_length {settings.max_length}: rows {rows}; "
                         "raise train.max_length (a truncated row would teach a cut-off answer)")
    refusals = grammar_refusals(contract, tokenizer, student.vocab_size, stop, backend, sequences)
    if refusals:
        lines = [r.format() for r in refusals[:MAX_LISTED]]
        if len(refusals) > MAX_LISTED:
            lines.append(f"... and {len(refusals) - MAX_LISTED} more")
        raise TaskcError(f"{len(refusals)} of {len(sequences)} train answers are refused by the compiled grammar "
                         "(a constrained model could never produce them):\n  " + "\n  ".join(lines))
    return Prepared(contract, student, tokenizer, backend, tuple(sequences), eot, tuple(stop))


def quiet() -> None:
    """No hub lookups, telemetry or dataset downloads from the libraries training loads."""
    from taskc.backends.offline import quiet_local_libraries

    quiet_local_libraries()
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def check_out_dir(out: Path) -> None:
    """DIR may be new, empty, or an earlier `taskc train` output (replaced); anything else is
    someone's files, and is refused rather than overwritten."""
    if out.exists() and not out.is_dir():
        raise TaskcError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and read_train_record(out) is None:
        raise TaskcError(f"--out {out} is a folder that holds files not written by taskc train; choose another")


def progress_callback(enabled: bool):
    """A transformers callback that records every logged loss and, when `enabled`, shows a tqdm
    bar over the optimizer steps with the latest loss."""
    from transformers import TrainerCallback

    class LossBar(TrainerCallback):
        def __init__(self) -> None:
            self.bar = None
            self.losses: list[tuple[int, float]] = []

        def on_train_begin(self, args, state, control, **kwargs):
            if enabled:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=state.max_steps, desc="train", unit="step", file=sys.stderr, dynamic_ncols=True)

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(1)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.losses.append((state.global_step, float(logs["loss"])))
                if self.bar is not None:
                    self.bar.set_postfix(loss=f"{logs['loss']:.4f}")

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()

    return LossBar()


def _torch_dtype(name: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float32, "fp32": torch.float32}.get(name) or getattr(torch, name)


def run_sft(prepared: Prepared, settings: TrainSettings, precision: str, work: Path, progress: bool):
    """SFTTrainer over the prepared sequences; returns (trainer, train output, loss log)."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig

    quiet()
    if not progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # loading and saving bars
    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(str(prepared.student.path), dtype=_torch_dtype(precision))
    dataset = Dataset.from_dict({"input_ids": [s.input_ids for s in prepared.sequences],
                                 "labels": [s.labels for s in prepared.sequences]})
    per_epoch = -(-len(prepared.sequences) // (settings.batch_size * settings.gradient_accumulation_steps))
    total = settings.max_steps or max(1, round(per_epoch * settings.epochs))
    args = SFTConfig(
        output_dir=str(work / "checkpoints"), num_train_epochs=settings.epochs, max_steps=settings.max_steps or -1,
        per_device_train_batch_size=settings.batch_size, gradient_accumulation_steps=settings.gradient_accumulation_steps,
        learning_rate=settings.lr, lr_scheduler_type=settings.lr_scheduler, warmup_steps=float(settings.warmup_ratio),
        weight_decay=settings.weight_decay, seed=settings.seed, data_seed=settings.seed,
        bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=not cuda, report_to="none", save_strategy="no",
        logging_steps=max(1, total // 50), disable_tqdm=True, max_length=None, packing=False, padding_free=False,
        dataloader_num_workers=0, dataset_num_proc=None, gradient_checkpointing=False,
    )
    bar = progress_callback(progress)
    pad = prepared.tokenizer.pad_token_id if prepared.tokenizer.pad_token_id is not None else prepared.end_of_turn
    trainer = answer_only_trainer()(
        model=model, args=args, train_dataset=dataset, processing_class=prepared.tokenizer,
        data_collator=LeftPadCollator(pad), callbacks=[bar],
        peft_config=peft_config(settings) if settings.method == "lora" else None)
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for printer in (PrinterCallback, ProgressCallback):  # the loss goes to our bar, not as dicts on stdout
        trainer.remove_callback(printer)
    check_masks(prepared.sequences, trainer.train_dataset)
    output = trainer.train()
    return trainer, output, bar.losses


def _save(prepared: Prepared, trainer, settings: TrainSettings, tmp: Path) -> None:
    """The merged model, the adapter, and the student's tokenizer files, into `tmp`."""
    model = trainer.model
    if settings.method == "lora":
        model.save_pretrained(str(tmp / ADAPTER_DIR))
        model = model.merge_and_unload()
    model = model.to(_torch_dtype(prepared.student.dtype))
    model.save_pretrained(str(tmp), safe_serialization=True)
    for name in TOKENIZER_FILES:
        source = prepared.student.path / name
        if source.is_file():
            shutil.copyfile(source, tmp / name)
    for stray in ("checkpoints", "README.md"):
        target = tmp / stray
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        elif target.is_file():
            target.unlink()
    adapter_readme = tmp / ADAPTER_DIR / "README.md"
    if adapter_readme.is_file():
        adapter_readme.unlink()


def _check_saved(prepared: Prepared, tmp: Path) -> None:
    """The published folder renders every prompt to the ids that were trained on."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tmp))
    backend = inference_backend(tmp, prepared.backend.chat_template_kwargs)
    by_index = {s.index: s for s in prepared.sequences}
    for request, rendered in rendered_requests(prepared.contract, backend):
        if tuple(prompt_ids(tokenizer, rendered)) != by_index[request.index].prompt_ids:
            raise TaskcError(f"the trained model's tokenizer renders train row {request.index} differently from the student's")


def train(contract, student_dir: str | Path, out: str | Path, settings: TrainSettings, precision: str, *,
          train_file: Path | None = None, progress: bool = False,
          chat_template_kwargs: dict[str, Any] | None = None, prepared: Prepared | None = None) -> TrainResult:
    """Train and publish `out` atomically (nothing is left in `out` if anything fails)."""
    out = Path(out)
    check_out_dir(out)
    prepared = prepared or prepare(contract, student_dir, settings, chat_template_kwargs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    work = Path(tempfile.mkdtemp(prefix=".taskc-train-"))
    try:
        started = time.perf_counter()
        trainer, output, losses = run_sft(prepared, settings, precision, work, progress)
        wall = time.perf_counter() - started
        _save(prepared, trainer, settings, tmp)
        _check_saved(prepared, tmp)
        record = _record(prepared, settings, precision, trainer, output, losses, wall, train_file)
        (tmp / TRAIN_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        publish_dir(tmp, out, lambda: False)
        return TrainResult(out=out, record=record)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _record(prepared: Prepared, settings, precision, trainer, output, losses, wall, train_file) -> dict[str, Any]:
    import torch

    contract = prepared.contract
    split = contract.splits["train"]
    final = losses[-1][1] if losses else float(output.training_loss)
    return {
        "taskc": __version__,
        "task": contract.name,
        "contract_id": contract.id,
        "base_model": str(prepared.student.path.resolve()),
        "base_architecture": prepared.student.architecture,
        "method": settings.method,
        "settings": settings.to_dict(),
        "precision": precision,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "chat_template_kwargs": dict(prepared.backend.chat_template_kwargs),
        "end_of_turn_id": prepared.end_of_turn,
        "adapter": ADAPTER_DIR if settings.method == "lora" else None,
        "data": {"source": str(train_file) if train_file else "spec train split", "rows": len(prepared.sequences),
                 "sha256": split.sha256, "sequences_sha256": sequences_sha256(prepared.sequences),
                 "prompt_tokens": prepared.prompt_tokens, "answer_tokens": prepared.answer_tokens},
        "steps": int(trainer.state.global_step),
        "epochs": float(trainer.state.epoch or 0.0),
        "final_loss": final,
        "mean_loss": float(output.training_loss),
        "loss_log": [[step, round(loss, 6)] for step, loss in losses],
        "wall_s": round(wall, 3),
        "tokens_per_s": round((prepared.prompt_tokens + prepared.answer_tokens) * (trainer.state.epoch or 0.0) / wall, 1)
        if wall > 0 else None,
    }


def default_progress() -> bool:
    """A progress bar when standard error is a terminal."""
    return sys.stderr.isatty() and os.environ.get("CI") != "true"
