"""Cost accounting: token prices (bundled table or models.yaml) and GPU hours."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from taskc.backends.registry import is_in_process
from taskc.backends.config import ModelConfig


def _table() -> dict[str, Any]:
    return json.loads((Path(__file__).resolve().parent.parent / "data" / "prices.json").read_text(encoding="utf-8"))


def bundled_price(model: str) -> tuple[dict[str, float] | None, str | None]:
    """The dated price of `model` from the bundled table, and its date."""
    table = _table()
    return table["models"].get(model), table["as_of"]


def batch_discount(config: ModelConfig) -> float | None:
    """The share taken off the list price for answers from the provider's batch API: the
    model's `batch_discount` (models.yaml), else one inside its `price:`, else the bundled
    table's default for its backend (0.5 for openai and anthropic); None when unknown."""
    if config.batch_discount is not None:
        return float(config.batch_discount)
    if config.price and config.price.get("batch_discount") is not None:
        return float(config.price["batch_discount"])
    found = (_table().get("batch_discount") or {}).get(config.backend)
    return None if found is None else float(found)


def _token_cost(price: dict[str, float], usage: dict[str, int]) -> float:
    cached = usage.get("cached_input_tokens", 0)
    return ((usage.get("input_tokens", 0) - cached) * price.get("input_per_mtok", 0)
            + cached * price.get("cached_input_per_mtok", price.get("input_per_mtok", 0))
            + usage.get("output_tokens", 0) * price.get("output_per_mtok", 0)) / 1e6


def total_usage(results: Sequence[Any]) -> dict[str, int]:
    """The token counts of several results, summed."""
    return {"input_tokens": sum(r.usage.input_tokens for r in results),
            "output_tokens": sum(r.usage.output_tokens for r in results),
            "cached_input_tokens": sum(r.usage.cached_input_tokens for r in results)}


def batch_share(results: Sequence[Any]) -> dict[str, Any]:
    """How many of `results` were answered by a provider batch (`extra["batch"]`), their token
    counts, and how many the batch left to a synchronous retry (`extra["batch_retry"]`)."""
    from_batch = [r for r in results if r.extra.get("batch")]
    return {"requests": len(from_batch),
            "usage": total_usage(from_batch),
            "batches": sorted({r.extra["batch"] for r in from_batch}),
            "retried_sync": sum(1 for r in results if r.extra.get("batch_retry"))}


def cost_summary(config: ModelConfig, usage: dict[str, int], n_requests: int, requests_per_s: float | None,
                 batch: dict[str, Any] | None = None) -> dict[str, Any]:
    """Total cost and cost per million requests, from token prices or GPU hours. `batch`
    (`batch_share`) says which answers came from a provider batch: those are charged the list
    price less `batch_discount`; `pricing` says "list", "batch" (all of them) or "partial", and
    `usd_total_at_list_price` what the same tokens cost without the batch API."""
    if n_requests == 0:
        return {"basis": None, "usd_total": None, "usd_per_million_requests": None}
    if config.gpu_hourly_usd is not None:
        if not requests_per_s:
            return {"basis": "gpu_hourly_usd", "gpu_hourly_usd": config.gpu_hourly_usd, "usd_per_million_requests": None}
        per_request = config.gpu_hourly_usd / 3600.0 / requests_per_s
        return {"basis": "gpu_hourly_usd", "gpu_hourly_usd": config.gpu_hourly_usd, "requests_per_s": requests_per_s,
                "usd_total": per_request * n_requests, "usd_per_million_requests": per_request * 1e6}
    if is_in_process(config.backend) and not config.price:
        return {"basis": "local", "usd_total": None, "usd_per_million_requests": None,
                "note": "not priced: a local model; give gpu_hourly_usd (models.yaml or --gpu-hourly-usd) to price it"}
    price, as_of = (config.price, "models.yaml") if config.price else bundled_price(config.model)
    if not price:
        return {"basis": None, "usd_total": None, "usd_per_million_requests": None, "note": f"no price for {config.model}"}
    price = {k: v for k, v in price.items() if k != "batch_discount"}
    at_list = _token_cost(price, usage)
    out: dict[str, Any] = {"basis": "tokens", "price": price, "price_source": as_of}
    in_batch = (batch or {}).get("requests", 0)
    total = at_list
    if in_batch:
        discount = batch_discount(config)
        if discount is None:
            out["note"] = f"no batch discount known for {config.backend}: batch answers counted at the list price"
        total = at_list - _token_cost(price, batch["usage"]) * (discount or 0.0)  # type: ignore[index]
        out.update(pricing="batch" if in_batch >= n_requests else "partial", batch_discount=discount,
                   batch_requests=in_batch, usd_total_at_list_price=at_list)
    else:
        out["pricing"] = "list"
    out.update(usd_total=total, usd_per_million_requests=total / n_requests * 1e6)
    return out
