"""What `taskc bench` sends: the spec's test rows rendered by the openai backend, once per row.

Requests are the ones `taskc eval` sends (the openai backend's `render`, pre-encoded once per row,
rows cycled); `Wire` is the picklable part a sender process needs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any

from taskc.errors import TaskcError


@dataclass(frozen=True)
class BenchOptions:
    """How to load the server. Exactly one of `rate` (open loop) and `concurrency` (closed loop)."""

    base_url: str
    model: str
    rate: float | None = None
    concurrency: int | None = None
    duration_s: float = 10.0
    warmup_s: float = 2.0
    stream: bool = False
    seed: int = 0
    limit: int | None = None
    timeout_s: float = 60.0
    drain_s: float = 30.0
    mode: str | None = None
    api_key_env: str | None = None
    gpu_hourly_usd: float | None = None
    metrics_url: str | None = None  # None: <server>/metrics; "": do not scrape
    metrics_interval_s: float = 1.0
    max_connections: int = 8192
    temperature: float | None = None
    uvloop: bool = True
    processes: int | None = None  # open loop: sender processes sharing the Poisson stream; None: auto
    # --find-max
    find_max: bool = False
    p95_ms: float | None = None
    start_rate: float | None = None
    max_rate: float | None = None
    step_factor: float = 2.0
    bisect_steps: int = 4
    cooldown_s: float = 1.0


#: Above this rate one sender process spends most of a core on its requests (about 0.4 ms of CPU
#: each with aiohttp) and its own event loop delays the answers it times: split the stream.
RATE_PER_SENDER = 800.0


def sender_processes(requested: int | None, rate: float | None) -> int:
    """Sender processes for an open loop at `rate`: `requested`, or one per RATE_PER_SENDER
    requests/s up to the CPU count (1 for a closed loop)."""
    if rate is None:
        return 1
    if requested is not None:
        return requested
    return max(1, min(os.cpu_count() or 1, math.ceil(rate / RATE_PER_SENDER)))


class Target:
    """What to send: the contract's requests rendered by the openai backend, one payload per row."""

    def __init__(self, contract, options: BenchOptions) -> None:
        from taskc.backends import make_backend
        from taskc.backends.config import ModelConfig
        from taskc.common.encoding import dumps
        from taskc.evaluate.run import EvalOptions, plan

        self.contract = contract
        config = ModelConfig(name=options.model, backend="openai", model=options.model, base_url=options.base_url,
                             api_key_env=options.api_key_env, mode=options.mode, gpu_hourly_usd=options.gpu_hourly_usd)
        run = plan(contract, config, EvalOptions(repeats=1, limit=options.limit, temperature=options.temperature))
        if not run.requests:
            raise TaskcError(f"{contract.name} has no test rows to send")
        self.requests = list(run.requests)
        self.generation = run.generation
        self.backend = make_backend(config, contract)
        self.url = self.backend.url
        self.headers = self.backend.headers
        bodies = [self.backend.render(r) for r in self.requests]
        if options.stream:
            for body in bodies:
                body["stream"] = True
                body["stream_options"] = {"include_usage": True}
        self.payloads = [dumps(b) for b in bodies]
        self.stream = options.stream

    @property
    def n_rows(self) -> int:
        return len(self.requests)

    def wire(self, options: BenchOptions) -> "Wire":
        """What a sender (in this process or another) needs."""
        return Wire(self.url, dict(self.headers), list(self.payloads), self.stream, options.timeout_s,
                    options.max_connections)


@dataclass(frozen=True)
class Wire:
    """The rendered requests and where to send them: all a sender process needs (picklable)."""

    url: str
    headers: dict[str, str]
    payloads: list[bytes]
    stream: bool
    timeout_s: float
    max_connections: int


def static_prefix(contract) -> dict[str, Any] | None:
    """The contract's static prefix (messages, chars, scope) and its length in Qwen tokens."""
    prefix = contract.body.get("prefix")
    if not prefix:
        return None
    out = {k: v for k, v in prefix.items() if k != "sha256"}
    # counted at compile time (cached by content); None where the Qwen vocabulary is not installed
    tokens = (getattr(contract, "analysis", None) or {}).get("prefix_tokens")
    out["tokens"] = tokens
    out["tokenizer"] = "qwen" if tokens is not None else None
    return out


def with_model_entry(options: BenchOptions, models_file, model_name: str) -> BenchOptions:
    """Options completed from a models.yaml entry (endpoint, model id, mode, key, gpu_hourly_usd);
    what was given on the command line wins."""
    from taskc.backends.config import load_models

    table = load_models(models_file)
    if model_name not in table:
        raise TaskcError(f"model '{model_name}' is not in {models_file} (known: {', '.join(sorted(table))})")
    entry = table[model_name]
    if entry.backend != "openai":
        raise TaskcError(f"taskc bench loads OpenAI-compatible servers; model '{model_name}' uses the {entry.backend} backend")
    return replace(
        options,
        base_url=options.base_url or entry.base_url or "",
        model=options.model or entry.model,
        mode=options.mode or entry.mode,
        api_key_env=options.api_key_env or entry.api_key_env,
        gpu_hourly_usd=options.gpu_hourly_usd if options.gpu_hourly_usd is not None else entry.gpu_hourly_usd,
    )
