"""LoRA adapters: the PEFT configuration taskc trains with, and what vLLM needs to serve one.

vLLM serves an unmerged adapter on its base model: in-process with ``LLM(enable_lora=True,
max_lora_rank=R)`` and a ``LoRARequest`` per call (the vllm backend's `lora` setting does both),
on a server with ``--enable-lora --lora-modules NAME=PATH --max-lora-rank R``. Its
``max_lora_rank`` (default 16) must be at least the adapter's rank and is one of a fixed set;
an adapter with ``modules_to_save`` is refused, so taskc never trains one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from taskc.backends.base import BackendUnavailable
from taskc.backends.vllm_local import lora_adapter_dir, lora_engine_args
from taskc.errors import TaskcError

ADAPTER_DIR = "adapter"


def peft_config(settings) -> Any:
    """The `peft.LoraConfig` of `settings` (causal LM, no modules_to_save, no bias)."""
    from peft import LoraConfig

    targets = settings.target_modules
    return LoraConfig(r=settings.lora_rank, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules=list(targets) if isinstance(targets, tuple) else targets,
                      bias="none", task_type="CAUSAL_LM")


def adapter_engine_args(path: str | Path) -> dict[str, Any]:
    """``{"enable_lora": True, "max_lora_rank": R}`` for an adapter (or a `taskc train` output
    folder holding one); a TaskcError when vLLM could not serve it."""
    try:
        return lora_engine_args(str(path))
    except (BackendUnavailable, OSError, ValueError) as exc:
        raise TaskcError(str(exc)) from None


def lora_server_flags(name: str, path: str | Path) -> list[str]:
    """Flags of an OpenAI-compatible vLLM server that serves the adapter as model `name`
    (argv form): ``--enable-lora --lora-modules NAME=PATH --max-lora-rank R``."""
    rank = adapter_engine_args(path)["max_lora_rank"]
    return ["--enable-lora", "--lora-modules", f"{name}={lora_adapter_dir(str(path))}", "--max-lora-rank", str(rank)]
