"""The `transformers` backend: a local Hugging Face model, constrained by Outlines, in process.

Settings: `model` (a local folder or a hub id already in the local cache), `device` (`"auto"`:
cuda when available, else cpu; or any torch device string), `dtype` (None: bfloat16 on cuda,
float32 on cpu; `"auto"` takes the checkpoint's; or a torch dtype name such as `"float16"`),
`batch_size` (prompts per `generate` call, default 16), `grammar_backend` (Outlines' logits
processor backend, default `"llguidance"`; see below), `engine_args` (extra keyword arguments for
`AutoModelForCausalLM.from_pretrained`; the key `"tokenizer"` names a different tokenizer folder,
and the keys `device`, `dtype`, `batch_size` and `grammar_backend` set those settings, overriding
the arguments, since a models.yaml entry reaches the backend only as `model` + `engine_args`).

Nothing is imported or loaded until the first `generate`: the model and tokenizer are loaded with
`transformers` and wrapped with `outlines.from_transformers`. Each distinct constraint gets one
`outlines.Generator`, built once and cached, from `taskc.constraints.lower.to_outlines(constraint)`
(None, i.e. text, is an unconstrained generator). `to_outlines` asks for compact JSON with
`JsonSchema(..., whitespace_pattern="")`, which Outlines' llguidance backend rejects; for
llguidance the same request goes in the schema's `x-guidance` options instead (see `_adapt`).
The grammar backend object (for llguidance: its tokenizer index, a few seconds to build for a
150k vocabulary) is built once and shared by every constraint; Outlines itself would build a new
one per generator.

Why llguidance: Qwen checkpoints have 151,936 logits but 151,646 tokenizer entries, and Outlines'
xgrammar backend crashes on that ("bitmask's shape is not valid"); its outlines_core backend
takes seconds per generator and ignores some JSON Schema keywords. llguidance handles the padded
vocabulary. Note llguidance's logits kernel is `torch.compile`d: the first constrained step of a
process pays a one-off compilation (seconds; on CPU it can be disabled with
`TORCH_COMPILE_DISABLE=1`, which runs the same kernel eagerly).

Prompts: the request's chat messages go through the tokenizer's chat template with
`add_generation_prompt=True` and `enable_thinking=False` (templates that do not use the variable
ignore it); tools are not passed to the template (the system prompt and the constraint carry
them). Outlines is told not to apply the template a second time.

Generation: requests are grouped by (constraint, sampling settings), sorted by prompt length
(less padding) and run `batch_size` at a time through `generator.batch(prompts, ...)`.
`max_tokens` -> `max_new_tokens`; temperature 0 (or absent) is greedy, otherwise sampling with
`temperature`, `top_p` and `top_k` (-1/absent: off) and `seed` (+ repeat) for `torch.manual_seed`.
Stop strings are applied to unconstrained outputs only (the text is cut before the first one);
a constrained output ends where its grammar ends. A batch that raises is retried one request at a
time, so one bad request costs only its own `Result.error`; nothing raises out of `generate`.

Results: `raw` is the decoded text (special tokens skipped), `usage` the prompt and generated token
counts (exact: the generated ids are read with a `transformers` streamer, counted up to and
including the first end-of-turn token), `latency_s` the wall time of the batch the request was in,
`extra` `{"finish_reason": "stop"|"length", "batch_id", "batch_size", "decode_steps"}` plus `grammar_error` when
llguidance's matcher reported one for that row (the text is still scored as it is). A grammar
llguidance cannot compile fails its requests with `Result.error` before any generation.

`render(request)` is pure and never loads anything: the messages (the chat template is applied at
generation time, by the tokenizer), the output type kind and the constraint, and the generation
settings. It is the cache key, so it must not change once the model is loaded.
"""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from functools import cached_property
from typing import Any, Sequence

from taskc.backends.base import Backend, BackendUnavailable, folder_fingerprint
from taskc.backends.outlines_parts import (DEFAULT_MAX_NEW_TOKENS, IdRecorder, adapt_output_type, check_grammar,
                                           cut_at_stop, generator_with_backend, grammar_errors, sampling_kwargs,
                                           shared_grammar_backend)
from taskc.runner.http import JsonClient
from taskc.runner.types import Request, Result, Usage

GRAMMAR_BACKENDS = ("llguidance", "xgrammar", "outlines_core")
#: How `render` describes the prompt: the template is the tokenizer's, applied at generation time.
PROMPT_FORMAT = "messages through the tokenizer's chat template (add_generation_prompt=True, enable_thinking=False)"


def _output_type_kind(request: Request) -> str:
    """What kind of Outlines output type a request gets: the constraint type, or `text`."""
    return request.constraint.type if request.constraint is not None else "text"


class TransformersBackend(Backend):
    """A local transformers model with Outlines-constrained decoding (see the module docstring)."""

    name = "transformers"
    batched = True
    chunk_size = 256  # results (and Ctrl-C) chunk by chunk
    cacheable = True
    needs_http = False
    constrained = True

    def __init__(
        self,
        model: str,
        device: str = "auto",
        dtype: str | None = None,
        batch_size: int = 16,
        grammar_backend: str = "llguidance",
        engine_args: dict[str, Any] | None = None,
    ) -> None:
        if not model:
            raise BackendUnavailable("the transformers backend needs --model (a local model folder or id)")
        engine_args = dict(engine_args or {})
        # models.yaml reaches a backend only through `engine_args`: these keys are backend settings.
        device = engine_args.pop("device", device)
        dtype = engine_args.pop("dtype", dtype)
        batch_size = engine_args.pop("batch_size", batch_size)
        grammar_backend = engine_args.pop("grammar_backend", grammar_backend)
        if grammar_backend not in GRAMMAR_BACKENDS:
            raise ValueError(f"grammar_backend must be one of {', '.join(GRAMMAR_BACKENDS)}, not {grammar_backend!r}")
        if int(batch_size) < 1:
            raise ValueError("batch_size must be at least 1")
        self.model = str(model)
        self.device = device
        self.dtype = dtype
        self.batch_size = int(batch_size)
        self.grammar_backend = grammar_backend
        self.engine_args = engine_args
        self._lock = threading.Lock()
        self._hf_model: Any = None
        self._tokenizer: Any = None
        self._outlines_model: Any = None
        self._grammar: Any = None  # the shared Outlines grammar backend object (or None: per generator)
        self._generators: dict[Any, Any] = {}
        self._eos_ids: frozenset[int] = frozenset()
        #: Seconds spent building each distinct constraint's generator (by constraint type), for benchmarks.
        self.build_seconds: list[tuple[str, float]] = []
        self._batches = 0
        self.load_seconds: float | None = None

    @classmethod
    def from_config(cls, config, contract) -> "TransformersBackend":
        """From models.yaml / the command line: model and engine_args (device, dtype, ...)."""
        return cls(model=config.model, engine_args=config.engine_args)

    @cached_property
    def cache_identity(self) -> str:
        """The model folder with a fingerprint of its files (a retrained folder is a new model)."""
        return folder_fingerprint(self.model)

    def __repr__(self) -> str:
        return f"TransformersBackend(model={self.model!r}, device={self.device!r}, grammar_backend={self.grammar_backend!r})"

    @classmethod
    def from_objects(cls, hf_model: Any, tokenizer: Any, model_name: str = "in-memory", **settings: Any) -> "TransformersBackend":
        """A backend around an already loaded `transformers` model and tokenizer (benchmarks,
        tests); the model stays on the device it is on."""
        backend = cls(model_name, device=str(hf_model.device), **settings)
        backend._attach(hf_model, tokenizer)
        return backend

    # ------------------------------------------------------------------ pure
    def render(self, request: Request) -> dict[str, Any]:
        """The payload: messages (templated at generation time), output type and settings. Pure."""
        generation = request.generation.as_dict()
        return {
            "model": self.model,
            "prompt": [dict(m) for m in request.messages],
            "prompt_format": PROMPT_FORMAT,
            "output_type": _output_type_kind(request),
            "constraint": request.constraint.to_dict() if request.constraint is not None else None,
            "grammar_backend": self.grammar_backend if request.constraint is not None else None,
            "max_new_tokens": int(generation.get("max_tokens") or DEFAULT_MAX_NEW_TOKENS),
            "generation": generation,
        }

    # ------------------------------------------------------------------ loading
    def _resolve_device(self) -> str:
        import torch

        if self.device in (None, "", "auto"):
            return "cuda" if torch.cuda.is_available() else "cpu"
        return str(self.device)

    def _resolve_dtype(self, device: str) -> Any:
        import torch

        if self.dtype == "auto":
            return "auto"
        if self.dtype is None:
            return torch.bfloat16 if device.startswith("cuda") else torch.float32
        value = getattr(torch, str(self.dtype).replace("torch.", ""), None)
        if not isinstance(value, torch.dtype):
            raise ValueError(f"unknown dtype {self.dtype!r}")
        return value

    def _ensure_loaded(self) -> None:
        with self._lock:
            if self._outlines_model is not None:
                return
            try:
                from taskc.backends.offline import quiet_local_libraries

                quiet_local_libraries()
                from transformers import AutoModelForCausalLM, AutoTokenizer
            except ImportError as exc:  # pragma: no cover - the registry checks first
                raise BackendUnavailable("the transformers backend needs transformers and Outlines: pip install 'taskc[transformers]'") from exc
            start = time.perf_counter()
            args = dict(self.engine_args)
            tokenizer_path = args.pop("tokenizer", None) or self.model
            device = self._resolve_device()
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path))
            hf_model = AutoModelForCausalLM.from_pretrained(self.model, dtype=self._resolve_dtype(device), **args)
            hf_model.to(device)
            self._attach(hf_model, tokenizer)
            self.load_seconds = time.perf_counter() - start

    def _attach(self, hf_model: Any, tokenizer: Any) -> None:
        try:
            import outlines
        except ImportError as exc:
            raise BackendUnavailable("the transformers backend needs transformers and Outlines: pip install 'taskc[transformers]'") from exc
        hf_model.eval()
        outlines_model = outlines.from_transformers(hf_model, tokenizer)
        # Prompts arrive already templated (with enable_thinking=False); Outlines would template a
        # plain string a second time when the tokenizer has a chat template.
        adapter = getattr(outlines_model, "type_adapter", None)
        if adapter is not None and hasattr(adapter, "has_chat_template"):
            adapter.has_chat_template = False
        eos: set[int] = set()
        for source in (tokenizer.eos_token_id, getattr(hf_model.generation_config, "eos_token_id", None)):
            if isinstance(source, int):
                eos.add(source)
            elif isinstance(source, (list, tuple)):
                eos.update(int(x) for x in source)
        self._eos_ids = frozenset(eos)
        self._hf_model, self._tokenizer, self._outlines_model = hf_model, tokenizer, outlines_model

    # ------------------------------------------------------------------ prompts
    def chat_prompt(self, request: Request) -> str:
        """The request's messages through the tokenizer's chat template (the model must be loaded)."""
        messages = [dict(m) for m in request.messages]
        try:
            return self._tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
            )
        except TypeError:  # a tokenizer whose apply_chat_template rejects extra variables
            return self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    # ------------------------------------------------------------------ generators
    def generator(self, constraint: Any) -> Any:
        """The cached `outlines.Generator` for a constraint (None: unconstrained)."""
        import outlines

        cached = self._generators.get(constraint)
        if cached is not None:
            return cached
        start = time.perf_counter()
        if constraint is None:
            gen = outlines.Generator(self._outlines_model, None)
        else:
            from taskc.constraints.lower import to_outlines

            output_type = adapt_output_type(to_outlines(constraint), self.grammar_backend)
            if self._grammar is None:
                self._grammar = shared_grammar_backend(self.grammar_backend, self._outlines_model)
            gen = generator_with_backend(self._outlines_model, self._grammar, output_type) if self._grammar else None
            if gen is None:
                gen = outlines.Generator(self._outlines_model, output_type, backend=self.grammar_backend)
            check_grammar(gen)
        self.build_seconds.append((constraint.type if constraint is not None else "text", time.perf_counter() - start))
        self._generators[constraint] = gen
        return gen

    # ------------------------------------------------------------------ generation
    async def generate(self, requests: Sequence[Request], client: JsonClient | None = None,
                       payloads: Sequence[Any] | None = None) -> list[Result]:
        """All requests, in order (the work runs in a thread so the event loop stays free)."""
        return await asyncio.to_thread(self.generate_sync, list(requests))

    async def generate_one(self, request: Request, client: JsonClient | None = None, payload: Any = None) -> Result:
        return (await self.generate([request], client))[0]

    def generate_sync(self, requests: Sequence[Request]) -> list[Result]:
        """All requests, in order, synchronously. Never raises: failures become `Result.error`."""
        requests = list(requests)
        if not requests:
            return []
        try:
            self._ensure_loaded()
        except Exception as exc:
            message = f"could not load {self.model!r}: {type(exc).__name__}: {exc}"
            return [Result(r.index, r.repeat, raw=None, error=message) for r in requests]
        results: list[Result | None] = [None] * len(requests)
        groups: dict[Any, list[int]] = {}
        prompts: dict[int, str] = {}
        lengths: dict[int, int] = {}
        for pos, request in enumerate(requests):
            try:
                prompts[pos] = self.chat_prompt(request)
                lengths[pos] = len(self._tokenizer(prompts[pos], add_special_tokens=False)["input_ids"])
            except Exception as exc:
                results[pos] = self._error(request, f"chat template failed: {type(exc).__name__}: {exc}")
                continue
            kwargs, seed = sampling_kwargs(request.generation.as_dict(), request.repeat)
            key = (request.constraint, tuple(sorted(kwargs.items())), seed)
            groups.setdefault(key, []).append(pos)
        with self._lock:
            for (constraint, kwargs_items, seed), members in groups.items():
                try:
                    gen = self.generator(constraint)
                except Exception as exc:
                    message = f"could not build the {constraint.type if constraint else 'text'} generator: {type(exc).__name__}: {exc}"
                    for pos in members:
                        results[pos] = self._error(requests[pos], message)
                    continue
                members.sort(key=lambda p: lengths[p])
                for start in range(0, len(members), self.batch_size):
                    chunk = members[start : start + self.batch_size]
                    self._run_chunk(gen, chunk, requests, prompts, lengths, dict(kwargs_items), seed, results)
        return [r if r is not None else self._error(requests[i], "no result") for i, r in enumerate(results)]

    def _run_chunk(self, gen, chunk, requests, prompts, lengths, kwargs, seed, results) -> None:
        try:
            out = self._generate_batch(gen, [prompts[p] for p in chunk], kwargs, seed)
        except Exception as exc:
            if len(chunk) == 1:
                results[chunk[0]] = self._error(requests[chunk[0]], f"generation failed: {type(exc).__name__}: {exc}")
                return
            for pos in chunk:  # find the request that fails; the others still get answers
                self._run_chunk(gen, [pos], requests, prompts, lengths, kwargs, seed, results)
            return
        texts, counts, finishes, steps, wall, grammar_errors = out
        self._batches += 1
        for pos, text, count, finish, grammar_error in zip(chunk, texts, counts, finishes, grammar_errors):
            request = requests[pos]
            if request.constraint is None:
                text = cut_at_stop(text, request.generation.get("stop"))
            results[pos] = Result(
                request.index,
                request.repeat,
                raw=text,
                usage=Usage(input_tokens=lengths[pos], output_tokens=count),
                latency_s=wall,
                extra={"finish_reason": finish, "batch_id": self._batches, "batch_size": len(chunk), "decode_steps": steps,
                       **({"grammar_error": grammar_error} if grammar_error else {})},
            )

    def _generate_batch(self, gen, prompts: list[str], kwargs: dict[str, Any], seed: int | None):
        """One `generator.batch` call: texts, generated-token counts, finish reasons, steps, seconds."""
        import torch

        recorder = IdRecorder.new()
        if seed is not None:
            torch.manual_seed(seed)
        # Greedy passes temperature/top_p/top_k as None, overriding a checkpoint's sampling defaults.
        call = dict(kwargs)
        pad = self._tokenizer.pad_token_id
        if pad is None:
            pad = self._tokenizer.eos_token_id
        start = time.perf_counter()
        with warnings.catch_warnings():
            # A finished row keeps receiving pad tokens, which its grammar matcher rejects; harmless.
            warnings.filterwarnings("ignore", message="Error in LLMatcher")
            with torch.inference_mode():
                texts = gen.batch(
                    prompts,
                    streamer=recorder,
                    pad_token_id=pad,
                    eos_token_id=sorted(self._eos_ids) or None,
                    **call,
                )
        if self._hf_model.device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - start
        if isinstance(texts, str):
            texts = [texts]
        counts, finishes = [], []
        for row in range(len(prompts)):
            n, finish = 0, "length"
            for step in recorder.steps:
                n += 1
                if step[row] in self._eos_ids:
                    finish = "stop"
                    break
            counts.append(n)
            finishes.append(finish)
        return list(texts), counts, finishes, len(recorder.steps), wall, grammar_errors(gen, len(prompts))

    @staticmethod
    def _error(request: Request, message: str) -> Result:
        return Result(request.index, request.repeat, raw=None, error=message)


__all__ = ["TransformersBackend", "DEFAULT_MAX_NEW_TOKENS", "PROMPT_FORMAT"]
