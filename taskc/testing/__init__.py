"""Helpers for tests and benchmarks that need a real (tiny, local) model."""

from taskc.testing.tiny_model import (
    TINY_MAX_MODEL_LEN,
    apply_cpu_env,
    build_tiny_qwen3,
    tiny_model_dir,
    vllm_engine_kwargs,
    vllm_server_command,
    vllm_server_env,
)

__all__ = [
    "TINY_MAX_MODEL_LEN",
    "apply_cpu_env",
    "build_tiny_qwen3",
    "tiny_model_dir",
    "vllm_engine_kwargs",
    "vllm_server_command",
    "vllm_server_env",
]
