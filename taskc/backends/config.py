"""What names a model: `ModelConfig` (one model to run: backend, model id, endpoint, prices) and
models.yaml, the file of named ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskc.common.endpoints import is_local, redact_url
from taskc.errors import TaskcError


@dataclass(frozen=True)
class ModelConfig:
    """One model to evaluate: which backend, which model id, where, and what it costs.

    Each backend class reads the fields it uses in its `from_config`; `local` (models.yaml)
    overrides the guess of `is_local`.
    """

    name: str
    backend: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    mode: str | None = None
    price: dict[str, float] | None = None
    gpu_hourly_usd: float | None = None
    engine_args: dict[str, Any] = field(default_factory=dict)
    predictions: str | None = None
    local: bool | None = None
    lora: str | None = None  # vllm: a LoRA adapter folder served on `model` (e.g. `taskc train`'s DIR/adapter)
    batch_discount: float | None = None  # share off the list price through the batch API (cost.py)

    @property
    def is_local(self) -> bool:
        """Local models run at temperature 0 once; API models 3 times at their default: an
        in-process backend, a loopback endpoint or a machine priced by the hour is local."""
        if self.local is not None:
            return self.local
        from taskc.backends.registry import is_in_process

        if is_in_process(self.backend):
            return True
        return is_local(self.base_url) or self.gpu_hourly_usd is not None

    def settings(self) -> dict[str, Any]:
        """The settings recorded in summary.json: everything but secrets (key names only)."""
        out = {"backend": self.backend, "model": self.model}
        for key in ("base_url", "api_key_env", "mode", "gpu_hourly_usd", "price", "predictions", "batch_discount", "lora"):
            value = getattr(self, key)
            if value is not None:
                out[key] = redact_url(value) if key == "base_url" else value
        if self.engine_args:
            out["engine_args"] = self.engine_args
        return out


_KNOWN = ("backend", "model", "base_url", "api_key_env", "mode", "price", "gpu_hourly_usd", "engine_args", "engine",
          "predictions", "local", "batch_discount", "lora")


def load_models(path: Path) -> dict[str, ModelConfig]:
    """Read models.yaml: `models: {name: {backend, model, base_url?, api_key_env?, price?, ...}}`."""
    from taskc.spec.yaml_source import load_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaskcError(f"cannot read models file {path}: {exc.strerror}") from None
    doc, problems = load_yaml(text, str(path))
    if problems or doc is None:
        raise TaskcError("\n".join(p.format() for p in problems))
    models = (doc.data or {}).get("models")
    if not isinstance(models, dict):
        raise TaskcError(doc.at((), "models file needs a 'models:' mapping").format())
    out = {}
    for name, entry in models.items():
        if not isinstance(entry, dict) or "backend" not in entry:
            raise TaskcError(doc.at(("models", name), f"model '{name}' needs a 'backend'").format())
        unknown = sorted(set(entry) - set(_KNOWN))
        if unknown:
            raise TaskcError(doc.at(("models", name, unknown[0]), f"unknown field '{unknown[0]}' in model '{name}'", key=True).format())
        args = dict(entry.get("engine_args") or entry.get("engine") or {})
        discount = entry.get("batch_discount")
        if discount is not None and (isinstance(discount, bool) or not isinstance(discount, (int, float))
                                     or not 0 <= discount < 1):
            raise TaskcError(doc.at(("models", name, "batch_discount"),
                                    f"batch_discount of model '{name}' must be a number from 0 to below 1 "
                                    f"(the share taken off the list price), not {discount!r}").format())
        out[name] = ModelConfig(name=name, backend=entry["backend"], model=str(entry.get("model", name)),
                                base_url=entry.get("base_url"), api_key_env=entry.get("api_key_env"),
                                mode=entry.get("mode"), price=entry.get("price"),
                                gpu_hourly_usd=entry.get("gpu_hourly_usd"), engine_args=args,
                                predictions=entry.get("predictions"), local=entry.get("local"), lora=entry.get("lora"),
                                batch_discount=None if discount is None else float(discount))
    return out


#: A model family named where a backend was expected: the backend that serves it.
_MODEL_FAMILIES = (("gpt", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"), ("claude", "anthropic"),
                   ("qwen", "vllm"), ("llama", "vllm"), ("mistral", "vllm"), ("gemma", "vllm"))


def unknown_backend_message(name: str) -> str:
    """`unknown backend 'x' (known: ...; did you mean ...)`."""
    import difflib

    from taskc.backends.registry import backend_names

    known = backend_names()
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5) or [
        backend for prefix, backend in _MODEL_FAMILIES if name.lower().startswith(prefix) and backend in known]
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown backend '{name}' (known: {', '.join(known)}{hint})"


@dataclass(frozen=True)
class ModelSelection:
    """Which models a command runs, as the command line gives them: named entries of a models
    file (`--models a,b`), or one `--backend` with `--model`, `--base-url`, `--api-key-env` and
    `--mode`."""

    backend: str | None = None
    model: str | None = None
    models: str | None = None
    models_file: Path = Path("models.yaml")
    base_url: str | None = None
    api_key_env: str | None = None
    mode: str | None = None

    def configs(self) -> list[ModelConfig]:
        """The models to run, in order; a `TaskcError` for a name or backend that is not known."""
        from taskc.backends.registry import backend_entry

        if self.models:
            table = load_models(self.models_file)
            chosen = []
            for name in [m.strip() for m in self.models.split(",") if m.strip()]:
                if name not in table:
                    import difflib

                    close = difflib.get_close_matches(name, list(table), n=1, cutoff=0.6)
                    hint = f"; did you mean '{close[0]}'?" if close else ""
                    raise TaskcError(f"model '{name}' is not in {self.models_file} (known: {', '.join(sorted(table))}{hint})")
                chosen.append(table[name])
            return chosen
        backend = self.backend or "baseline"
        entry = backend_entry(backend)
        if entry is None:
            raise TaskcError(unknown_backend_message(backend))
        if entry.needs_model and not self.model:
            raise TaskcError(f"--backend {backend} needs --model")
        model = self.model or entry.default_model or backend
        name = backend if entry.default_model else f"{backend}:{model}"
        return [ModelConfig(name=name, backend=backend, model=model, base_url=self.base_url, api_key_env=self.api_key_env,
                            mode=self.mode, predictions=self.model if backend == "replay" else None)]


def resolve_model(spec: str, models_file: Path, base_url: str | None = None, role: str = "teacher") -> ModelConfig:
    """A model named on the command line: a models-file name, or BACKEND:MODEL (with --base-url)."""
    if models_file.is_file():
        table = load_models(models_file)
        if spec in table:
            return table[spec]
    if ":" not in spec:
        raise TaskcError(f"{role} '{spec}' is neither in {models_file} nor of the form BACKEND:MODEL")
    backend, model = spec.split(":", 1)
    from taskc.backends.registry import backend_entry

    if backend_entry(backend) is None:
        raise TaskcError(unknown_backend_message(backend))
    return ModelConfig(name=f"{role}:{spec}", backend=backend, model=model, base_url=base_url)
