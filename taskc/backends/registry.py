"""The backend registry: name -> module, class, optional dependency; imported only on use."""


from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from typing import TYPE_CHECKING

from taskc.backends.base import Backend, BackendUnavailable

if TYPE_CHECKING:
    from taskc.backends.config import ModelConfig


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend lives, which optional dependency it needs, and what the command line
    must know before importing it."""

    module: str
    attr: str
    needs: tuple[str, ...] = ()  # top-level import names of optional dependencies
    hint: str = ""  # "<what>: pip install ..." shown when one is missing
    in_process: bool = False  # runs on this machine: temperature 0, one repeat by default
    needs_model: bool = False  # --backend NAME needs --model
    default_model: str | None = None


_REGISTRY: dict[str, BackendEntry] = {
    "openai": BackendEntry("taskc.backends.openai_chat", "OpenAIChatBackend", needs_model=True),
    "anthropic": BackendEntry("taskc.backends.anthropic_messages", "AnthropicMessagesBackend", needs_model=True),
    "replay": BackendEntry("taskc.backends.replay", "ReplayBackend", in_process=True, needs_model=True),
    "gold": BackendEntry("taskc.backends.replay", "GoldBackend", in_process=True, default_model="gold"),
    "baseline": BackendEntry("taskc.backends.baseline", "BaselineBackend", ("sklearn",), "scikit-learn: pip install scikit-learn",
                             in_process=True, default_model="tfidf-1nn"),
    "vllm": BackendEntry("taskc.backends.vllm_local", "VLLMBackend", ("vllm",), "vLLM: pip install 'taskc[vllm]'",
                         in_process=True, needs_model=True),
    "transformers": BackendEntry(
        "taskc.backends.transformers_outlines", "TransformersBackend", ("transformers", "outlines"),
        "transformers and Outlines: pip install 'taskc[transformers]'", in_process=True, needs_model=True,
    ),
}


def register_backend(name: str, module: str, attr: str, needs: tuple[str, ...] = (), hint: str = "",
                     in_process: bool = False, needs_model: bool = False) -> None:
    """Add (or replace) a backend in the registry; the module is imported only on use."""
    _REGISTRY[name] = BackendEntry(module, attr, tuple(needs), hint, in_process, needs_model)


def unregister_backend(name: str) -> None:
    """Remove a backend added with `register_backend` (unknown names are ignored)."""
    _REGISTRY.pop(name, None)


def backend_names() -> list[str]:
    """The registered backend names, sorted."""
    return sorted(_REGISTRY)


def backend_entry(name: str) -> BackendEntry | None:
    """The registry entry of `name` (None when unknown); imports nothing."""
    return _REGISTRY.get(name)


def is_in_process(name: str) -> bool:
    """True for a known backend that loads its model in this process (nothing billed per token)."""
    entry = _REGISTRY.get(name)
    return entry is not None and entry.in_process


def backend_class(name: str) -> type[Backend]:
    """Import backend `name` on demand and return its class.

    Raises `BackendUnavailable` when an optional dependency is missing (with the pip command);
    `ValueError` for an unknown name.
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
    return getattr(module, entry.attr)


def get_backend(name: str, **settings: Any) -> Backend:
    """Construct backend `name` from explicit settings (its constructor's keyword arguments).
    Raises like `backend_class`; a configuration it cannot use (e.g. no API key for a remote
    endpoint) raises `BackendUnavailable`."""
    return backend_class(name)(**settings)


def make_backend(config: "ModelConfig", contract: Any) -> Backend:
    """The backend for one model of a run: its class reads what it needs from `config` and, for
    gold and baseline, the contract's data (`Backend.from_config`)."""
    return backend_class(config.backend).from_config(config, contract)
