"""Training settings: the spec's optional `train:` section, overridden by command-line flags.

Defaults suit Qwen3 students: LoRA of rank 16 (alpha 32) on every linear layer of the blocks,
learning rate 2e-4 for LoRA and 2e-5 for full fine-tuning with a cosine schedule, 3 epochs,
batch size 8, sequences up to 2,048 tokens, seed 0. `precision: auto` trains in bf16 where a CUDA device supports it and in
float32 elsewhere, so the same spec trains on a CPU; `bf16` and `fp16` are GPU-only and refused
on a machine without one (with the spec location when the spec asked for them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from taskc.errors import SpecError, TaskcError

DEFAULT_LR = {"lora": 2e-4, "full": 2e-5}


@dataclass(frozen=True)
class TrainSettings:
    """Every knob of one training run (None: the default for the method)."""

    method: str = "lora"
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] | str = "all-linear"
    epochs: float = 3.0
    learning_rate: float | None = None
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 2048
    max_steps: int | None = None
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    lr_scheduler: str = "cosine"
    seed: int = 0
    precision: str = "auto"

    @property
    def lr(self) -> float:
        """The learning rate used: the set one, else the method's default."""
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LR[self.method]

    def to_dict(self) -> dict[str, Any]:
        """As recorded in taskc-train.json (the learning rate resolved)."""
        out = asdict(self)
        out["learning_rate"] = self.lr
        if isinstance(self.target_modules, tuple):
            out["target_modules"] = list(self.target_modules)
        if self.method != "lora":
            for key in ("lora_rank", "lora_alpha", "lora_dropout", "target_modules"):
                out.pop(key)
        return out


_NAMES = {f.name for f in fields(TrainSettings)}


def resolve_settings(section: Any = None, overrides: dict[str, Any] | None = None) -> TrainSettings:
    """The spec's `train:` section (a `taskc.spec.model.TrainSpec` or None) with the non-None
    `overrides` (flag name -> value) on top."""
    values: dict[str, Any] = {}
    if section is not None:
        values.update({k: v for k, v in section.model_dump(exclude_none=True).items() if k in _NAMES})
    for key, value in (overrides or {}).items():
        if key not in _NAMES:
            raise TaskcError(f"unknown training setting '{key}'")
        if value is not None:
            values[key] = value
    if isinstance(values.get("target_modules"), list):
        values["target_modules"] = tuple(values["target_modules"])
    settings = replace(TrainSettings(), **values)
    if settings.method not in DEFAULT_LR:
        raise TaskcError(f"unknown training method '{settings.method}' (expected lora or full)")
    return settings


def cuda_bf16() -> tuple[bool, bool]:
    """(a CUDA device is present, it supports bf16)."""
    import torch

    if not torch.cuda.is_available():
        return False, False
    return True, bool(torch.cuda.is_bf16_supported())


def resolve_precision(settings: TrainSettings, loaded=None, from_cli: bool = False) -> str:
    """``bf16``, ``fp16`` or ``fp32`` for this machine; a GPU-only precision on a machine without
    the GPU for it is an error (at the spec's `train.precision` when the spec set it)."""
    cuda, bf16 = cuda_bf16()
    wanted = settings.precision
    if wanted == "auto":
        return "bf16" if bf16 else "fp32"
    if wanted == "fp32":
        return "fp32"
    ok = bf16 if wanted == "bf16" else cuda
    if ok:
        return wanted
    need = "a CUDA GPU with bf16 support" if wanted == "bf16" else "a CUDA GPU"
    message = (f"precision {wanted} needs {need}, and this machine has "
               f"{'a GPU without bf16' if cuda else 'no GPU'} (use precision auto or fp32)")
    section = loaded.source.data.get("train") if loaded is not None else None
    if not from_cli and isinstance(section, dict) and "precision" in section:
        raise SpecError([loaded.source.at(("train", "precision"), message)])
    raise TaskcError(message)
