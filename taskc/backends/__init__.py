"""Backends, loaded lazily by name: `make_backend(config, contract)` or `get_backend("openai", model=...)`.

A backend module is imported only when asked for, so an optional dependency that is missing
(vLLM, transformers, ...) raises `BackendUnavailable` with the pip command, never ImportError.

| name         | module                | needs                             | in-process |
|--------------|-----------------------|-----------------------------------|------------|
| openai       | openai_chat           | aiohttp (core)                    | no         |
| anthropic    | anthropic_messages    | aiohttp (core)                    | no         |
| replay       | replay                | -                                 | yes        |
| gold         | replay                | -                                 | yes        |
| baseline     | baseline              | scikit-learn (core)               | yes        |
| vllm         | vllm_local            | vLLM: pip install 'taskc[vllm]'   | yes        |
| transformers | transformers_outlines | pip install 'taskc[transformers]' | yes        |
"""

from taskc.backends.base import Backend, BackendUnavailable
from taskc.backends.config import ModelConfig
from taskc.backends.registry import (BackendEntry, backend_class, backend_entry, backend_names, get_backend,
                                     make_backend, register_backend, unregister_backend)

__all__ = ["Backend", "BackendEntry", "BackendUnavailable", "ModelConfig", "backend_class", "backend_entry",
           "backend_names", "get_backend", "make_backend", "register_backend", "unregister_backend"]
