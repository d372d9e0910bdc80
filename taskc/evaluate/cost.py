"""Named models (models.yaml), backend construction and cost accounting."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskc.errors import TaskcError

LOCAL_BACKENDS = {"vllm", "transformers", "baseline", "gold", "replay"}


@dataclass(frozen=True)
class ModelConfig:
    """One model to evaluate: which backend, which model id, where, and what it costs."""

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

    @property
    def is_local(self) -> bool:
        """Local models run at temperature 0 once; API models 3 times at their default.
        `local:` in models.yaml overrides the guess from the backend and endpoint."""
        if self.local is not None:
            return self.local
        if self.backend in LOCAL_BACKENDS:
            return True
        from urllib.parse import urlsplit

        host = urlsplit(self.base_url or "").hostname or ""
        return host in ("localhost", "127.0.0.1", "::1") or self.gpu_hourly_usd is not None

    def settings(self) -> dict[str, Any]:
        """The settings recorded in summary.json: everything but secrets (key names only)."""
        out = {"backend": self.backend, "model": self.model}
        for key in ("base_url", "api_key_env", "mode", "gpu_hourly_usd", "price", "predictions"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.engine_args:
            out["engine_args"] = self.engine_args
        return out


_KNOWN = {"backend", "model", "base_url", "api_key_env", "mode", "price", "gpu_hourly_usd", "engine_args", "predictions",
          "local"}


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
        unknown = set(entry) - _KNOWN - {"engine"}
        if unknown:
            raise TaskcError(doc.at(("models", name, sorted(unknown)[0]), f"unknown field '{sorted(unknown)[0]}' in model '{name}'", key=True).format())
        args = dict(entry.get("engine_args") or entry.get("engine") or {})
        out[name] = ModelConfig(name=name, backend=entry["backend"], model=str(entry.get("model", name)),
                                base_url=entry.get("base_url"), api_key_env=entry.get("api_key_env"),
                                mode=entry.get("mode"), price=entry.get("price"),
                                gpu_hourly_usd=entry.get("gpu_hourly_usd"), engine_args=args,
                                predictions=entry.get("predictions"), local=entry.get("local"))
    return out


def bundled_price(model: str) -> tuple[dict[str, float] | None, str | None]:
    """The dated price of `model` from the bundled table, and its date."""
    table = json.loads((Path(__file__).resolve().parent.parent / "data" / "prices.json").read_text(encoding="utf-8"))
    return table["models"].get(model), table["as_of"]


def make_backend(config: ModelConfig, contract) -> Any:
    """Construct the backend for `config` over `contract` (gold and baseline need its data)."""
    from taskc.backends import get_backend

    kind = config.backend
    if kind == "gold":
        n = len(contract.splits["test"].rows)
        return get_backend("gold", gold={i: contract.gold_text("test", i) for i in range(n)})
    if kind == "baseline":
        if "train" not in contract.splits:
            raise TaskcError(f"the baseline backend answers from the train split, and {contract.name} has none")
        n = len(contract.splits["train"].rows)
        return get_backend("baseline", train_texts=[contract.user_message("train", i) for i in range(n)],
                           train_outputs=[contract.gold_text("train", i) for i in range(n)])
    if kind == "replay":
        path = config.predictions or config.model
        return get_backend("replay", path=path)
    settings: dict[str, Any] = {"model": config.model}
    if kind in ("openai", "anthropic"):
        if config.base_url:
            settings["base_url"] = config.base_url
        if config.api_key_env:
            settings["api_key_env"] = config.api_key_env
        if config.mode and kind == "openai":
            settings["mode"] = config.mode
    elif config.engine_args:
        settings["engine_args"] = config.engine_args
    if kind == "vllm":
        settings["engine_settings"] = contract.body.get("engine", {})
    return get_backend(kind, **settings)


def cost_summary(config: ModelConfig, usage: dict[str, int], n_requests: int, requests_per_s: float | None) -> dict[str, Any]:
    """Total cost and cost per million requests, from token prices or GPU hours."""
    if n_requests == 0:
        return {"basis": None, "usd_total": None, "usd_per_million_requests": None}
    if config.gpu_hourly_usd is not None:
        if not requests_per_s:
            return {"basis": "gpu_hourly_usd", "gpu_hourly_usd": config.gpu_hourly_usd, "usd_per_million_requests": None}
        per_request = config.gpu_hourly_usd / 3600.0 / requests_per_s
        return {"basis": "gpu_hourly_usd", "gpu_hourly_usd": config.gpu_hourly_usd, "requests_per_s": requests_per_s,
                "usd_total": per_request * n_requests, "usd_per_million_requests": per_request * 1e6}
    price, as_of = (config.price, "models.yaml") if config.price else bundled_price(config.model)
    if config.backend in LOCAL_BACKENDS and not config.price:
        return {"basis": "local", "usd_total": 0.0, "usd_per_million_requests": 0.0}
    if not price:
        return {"basis": None, "usd_total": None, "usd_per_million_requests": None, "note": f"no price for {config.model}"}
    cached = usage.get("cached_input_tokens", 0)
    total = ((usage.get("input_tokens", 0) - cached) * price.get("input_per_mtok", 0)
             + cached * price.get("cached_input_per_mtok", price.get("input_per_mtok", 0))
             + usage.get("output_tokens", 0) * price.get("output_per_mtok", 0)) / 1e6
    return {"basis": "tokens", "price": price, "price_source": as_of, "usd_total": total,
            "usd_per_million_requests": total / n_requests * 1e6}
