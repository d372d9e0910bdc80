"""Backends, loaded lazily by name: `get_backend("openai", model=..., base_url=...)`.

A backend module is imported only when asked for, so an optional dependency that is missing
(vLLM, transformers, ...) raises `BackendUnavailable` with the pip command, never ImportError.

| name      | module                  | needs                         |
|-----------|-------------------------|-------------------------------|
| openai    | openai_chat             | aiohttp (core)                |
| anthropic | anthropic_messages      | aiohttp (core)                |
| replay    | replay                  | -                             |
| gold      | replay                  | -                             |
| baseline  | baseline                | scikit-learn (core)           |
| vllm      | vllm_local              | vLLM: pip install 'taskc[vllm]' |
| transformers | transformers_outlines | pip install 'taskc[transformers]' |
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from taskc.backends.base import Backend, BackendUnavailable


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend lives and which optional dependency it needs."""

    module: str
    attr: str
    needs: tuple[str, ...] = ()  # top-level import names of optional dependencies
    hint: str = ""  # "<what>: pip install ..." shown when one is missing


_REGISTRY: dict[str, BackendEntry] = {
    "openai": BackendEntry("taskc.backends.openai_chat", "OpenAIChatBackend"),
    "anthropic": BackendEntry("taskc.backends.anthropic_messages", "AnthropicMessagesBackend"),
    "replay": BackendEntry("taskc.backends.replay", "ReplayBackend"),
    "gold": BackendEntry("taskc.backends.replay", "GoldBackend"),
    "baseline": BackendEntry("taskc.backends.baseline", "BaselineBackend", ("sklearn",), "scikit-learn: pip install scikit-learn"),
    "vllm": BackendEntry("taskc.backends.vllm_local", "VLLMBackend", ("vllm",), "vLLM: pip install 'taskc[vllm]'"),
    "transformers": BackendEntry(
        "taskc.backends.transformers_outlines", "TransformersBackend", ("transformers", "outlines"),
        "transformers and Outlines: pip install 'taskc[transformers]'",
    ),
}


def register_backend(name: str, module: str, attr: str, needs: tuple[str, ...] = (), hint: str = "") -> None:
    """Add (or replace) a backend in the registry; the module is imported only on use."""
    _REGISTRY[name] = BackendEntry(module, attr, tuple(needs), hint)


def backend_names() -> list[str]:
    """The registered backend names, sorted."""
    return sorted(_REGISTRY)


def get_backend(name: str, **settings: Any) -> Backend:
    """Import backend `name` on demand and construct it with `settings`.

    Raises `BackendUnavailable` when an optional dependency is missing (with the pip command)
    or the configuration is unusable (e.g. no API key for a remote endpoint); `ValueError` for
    an unknown name.
    """
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(backend_names())}")
    for dependency in entry.needs:  # found, not imported: heavy engines load on first use
        try:
            found = importlib.util.find_spec(dependency) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise BackendUnavailable(f"the {name} backend needs {entry.hint or dependency}")
    try:
        module = importlib.import_module(entry.module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if exc.name == entry.module:
            raise BackendUnavailable(f"the {name} backend is not part of this installation") from None
        hint = entry.hint or f"{missing}: pip install {missing}"
        raise BackendUnavailable(f"the {name} backend needs {hint}") from None
    return getattr(module, entry.attr)(**settings)


__all__ = ["Backend", "BackendUnavailable", "backend_names", "get_backend", "register_backend"]
