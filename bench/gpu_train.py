"""Training throughput of `taskc train` for a real-size student: Qwen3-0.6B's configuration with
random weights (nothing can be downloaded), the real Qwen tokenizer, on CUDA.

For each method (LoRA on all linear layers, full fine-tuning) it trains the same sequences twice
in one run: with taskc's trainer (answer-only logits, `taskc.distill.answer_loss`) and with TRL's
stock SFTTrainer on the same pre-tokenized rows (its fused LM head, right padding) as the
baseline, and prints tokens/s (all tokens of the trained sequences, prompt and answer, per
second of optimizer steps after the warm-up steps), peak GPU memory, and the ratio
taskc / stock. Rows are the spec's train split (repeated to `--rows`), rendered exactly as
`taskc train` renders them.

    python bench/gpu_train.py [--spec specs/banking77.yaml] [--steps 30] [--batch-size 16] [--json OUT]
    python bench/gpu_train.py --smoke      # tiny Qwen3 on the CPU, 3 steps: checks the script runs

It needs a CUDA GPU unless `--smoke`; see bench/RESULTS.md ("Training") for whether it has run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QWEN3_0_6B = dict(vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                  num_attention_heads=16, num_key_value_heads=8, head_dim=128, tie_word_embeddings=True,
                  max_position_embeddings=40960, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
                  eos_token_id=151645, pad_token_id=151643, bos_token_id=151643)


def build_student(folder: Path, dtype: str) -> Path:
    """Qwen3-0.6B's shape with random weights, saved beside the real Qwen tokenizer."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from taskc.constraints.qwen_vocab import qwen_tokenizer_dir

    torch.manual_seed(0)
    model = Qwen3ForCausalLM(Qwen3Config(**QWEN3_0_6B, torch_dtype=dtype)).to(getattr(torch, dtype))
    model.generation_config.eos_token_id = [151645, 151643]
    model.save_pretrained(str(folder), safe_serialization=True)
    for item in qwen_tokenizer_dir().iterdir():
        if item.is_file() and not item.name.startswith(".taskc-"):
            shutil.copyfile(item, folder / item.name)
    return folder


class StepClock:
    """Wall time of every optimizer step (a transformers callback), synchronized on CUDA."""

    def __new__(cls):
        import torch
        from transformers import TrainerCallback

        class Clock(TrainerCallback):
            def __init__(self):
                self.ends: list[float] = []

            def on_step_end(self, args, state, control, **kwargs):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                self.ends.append(time.perf_counter())

        return Clock()


def run_once(prepared, settings, precision: str, stock: bool, warmup: int) -> dict:
    """One training run; tokens/s over the steps after `warmup`, peak memory."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer
    from transformers import AutoModelForCausalLM

    from taskc.distill.answer_loss import LeftPadCollator, answer_only_trainer
    from taskc.distill.lora import peft_config
    from taskc.distill.train import _torch_dtype

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model = AutoModelForCausalLM.from_pretrained(str(prepared.student.path), dtype=_torch_dtype(precision))
    rows = prepared.sequences
    data = Dataset.from_dict({"input_ids": [s.input_ids for s in rows], "labels": [s.labels for s in rows]})
    work = Path(tempfile.mkdtemp(prefix="gpu-train-"))
    args = SFTConfig(output_dir=str(work), max_steps=settings.max_steps, per_device_train_batch_size=settings.batch_size,
                     learning_rate=settings.lr, bf16=precision == "bf16", use_cpu=not cuda, report_to="none",
                     save_strategy="no", logging_steps=10_000, disable_tqdm=True, max_length=None,
                     gradient_checkpointing=False, dataloader_num_workers=0, seed=0)
    clock = StepClock()
    kwargs = dict(model=model, args=args, train_dataset=data, processing_class=prepared.tokenizer, callbacks=[clock],
                  peft_config=peft_config(settings) if settings.method == "lora" else None)
    if stock:
        trainer = SFTTrainer(**kwargs)
    else:
        trainer = answer_only_trainer()(data_collator=LeftPadCollator(prepared.tokenizer.pad_token_id), **kwargs)
    trainer.train()
    shutil.rmtree(work, ignore_errors=True)
    ends = clock.ends
    timed = ends[warmup:]
    per_step_tokens = sum(len(s.input_ids) for s in rows) / len(rows) * settings.batch_size
    seconds = timed[-1] - ends[warmup - 1] if len(timed) > 0 and warmup > 0 else ends[-1] - ends[0]
    steps = len(timed) if warmup > 0 else len(ends) - 1
    out = {"method": settings.method, "trainer": "trl-stock" if stock else "taskc", "steps_timed": steps,
           "tokens_per_s": round(per_step_tokens * steps / seconds, 1) if seconds > 0 else None,
           "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
           "final_loss": float(trainer.state.log_history[-1].get("train_loss", float("nan")))}
    del trainer, model
    if cuda:
        torch.cuda.empty_cache()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "banking77.yaml")
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--methods", default="lora,full")
    parser.add_argument("--smoke", action="store_true", help="tiny Qwen3 on the CPU, 3 steps (checks the script)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    from taskc.compiler.build import compile_spec
    from taskc.distill.settings import TrainSettings, resolve_precision
    from taskc.distill.train import prepare

    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("bench/gpu_train.py needs a CUDA GPU (or --smoke for the CPU check)")
    contract = compile_spec(args.spec)
    tmp = Path(tempfile.mkdtemp(prefix="gpu-train-student-"))
    try:
        if args.smoke:
            from taskc.testing import build_tiny_qwen3

            student, steps, warmup, rows = build_tiny_qwen3(closer_bias=0), 3, 1, 16
        else:
            student, steps, warmup, rows = build_student(tmp / "qwen3-0.6b-random", "bfloat16"), args.steps, args.warmup, args.rows
        base = TrainSettings(max_steps=steps, batch_size=args.batch_size if not args.smoke else 4, max_length=4096)
        prepared = prepare(contract, student, base)
        reps = -(-rows // len(prepared.sequences))
        prepared = replace(prepared, sequences=(prepared.sequences * reps)[:rows])
        results = []
        for method in args.methods.split(","):
            settings = replace(base, method=method)
            precision = resolve_precision(settings)
            pair = [run_once(prepared, settings, precision, stock, warmup) for stock in (True, False)]
            ratio = (pair[1]["tokens_per_s"] / pair[0]["tokens_per_s"]) if pair[0]["tokens_per_s"] else None
            for r in pair:
                print(json.dumps({**r, "precision": precision}))
            print(f"{method}: taskc {pair[1]['tokens_per_s']} tok/s vs TRL stock {pair[0]['tokens_per_s']} tok/s "
                  f"(ratio {ratio:.2f}); peak {pair[1]['peak_gib']} vs {pair[0]['peak_gib']} GiB")
            results.append({"method": method, "precision": precision, "runs": pair, "ratio": ratio})
        summary = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                   "model": "tiny-qwen3" if args.smoke else "qwen3-0.6b (random weights)", "spec": str(args.spec),
                   "rows": len(prepared.sequences), "mean_tokens": sum(len(s.input_ids) for s in prepared.sequences) / len(prepared.sequences),
                   "results": results}
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
